//! The sliding window shared by the direct convolutions: TFLite's output geometry, and the input
//! centered into a zero-padded NHWC copy from which every window is read in place.

use tract_core::internal::*;

use super::conv_tiles::Mac;
use super::{slice_of, with_int, Int};

/// Output size and leading padding along one spatial axis of a window op, as TFLite computes
/// them (SAME: half the total padding before, the odd one after), or `None` when a VALID window
/// does not fit in the input.
pub(crate) fn window_geometry(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    same: bool,
) -> Option<(usize, usize)> {
    let stride = stride.max(1);
    let effective = (kernel.max(1) - 1) * dilation.max(1) + 1;
    if same {
        let out = input.div_ceil(stride);
        let total = ((out.max(1) - 1) * stride + effective).saturating_sub(input);
        Some((out, total / 2))
    } else {
        let out = input.checked_sub(effective)? / stride + 1;
        Some((out, 0))
    }
}

/// What the byte convolution adds to an 8-bit input to read it as unsigned bytes: 128 for int8,
/// 0 for uint8; other types are an error.
pub(crate) fn unsigned_offset(dt: DatumType) -> TractResult<i32> {
    match dt.unquantized() {
        DatumType::I8 => Ok(128),
        DatumType::U8 => Ok(0),
        dt => bail!("the byte convolution takes int8 or uint8 inputs, got {dt:?}"),
    }
}

/// A 2-D window: size, strides, dilations (each at least 1) and padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    /// Window height and width.
    pub kernel: [usize; 2],
    /// Strides along height and width.
    pub strides: [usize; 2],
    /// Dilations along height and width.
    pub dilations: [usize; 2],
    /// TFLite SAME padding (otherwise VALID).
    pub same: bool,
}

/// An input centered into a zero-padded NHWC buffer, with the offset of each output pixel's
/// window (batch-major, then row-major).
pub(super) struct Padded<A> {
    /// The padded input: `[n, rows, cols, c]`.
    pub xp: Vec<A>,
    /// Offset in `xp` of each output pixel's top-left tap.
    pub bases: Vec<usize>,
    /// Output height and width.
    pub out: [usize; 2],
    /// Padded row length in pixels.
    pub cols: usize,
}

impl std::fmt::Display for Window {
    /// `3x3 stride [1, 1] dilation [1, 1] SAME`, for the ops' `info`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}x{} stride {:?} dilation {:?} {}",
            self.kernel[0],
            self.kernel[1],
            self.strides,
            self.dilations,
            if self.same { "SAME" } else { "VALID" }
        )
    }
}

impl Window {
    /// A window with strides and dilations of at least 1.
    pub fn new(
        kernel: [usize; 2],
        strides: [usize; 2],
        dilations: [usize; 2],
        same: bool,
    ) -> Window {
        Window {
            kernel,
            strides: strides.map(|s| s.max(1)),
            dilations: dilations.map(|d| d.max(1)),
            same,
        }
    }

    /// Output height and width with the leading paddings, or an error for a too-small input.
    pub(super) fn output_geometry(&self, h: usize, w: usize) -> TractResult<[(usize, usize); 2]> {
        let mut out = [(0, 0); 2];
        for (axis, size) in [h, w].into_iter().enumerate() {
            out[axis] = window_geometry(
                size,
                self.kernel[axis],
                self.strides[axis],
                self.dilations[axis],
                self.same,
            )
            .ok_or_else(|| {
                format_err!(
                    "input size {size} is smaller than the {} window (dilation {})",
                    self.kernel[axis],
                    self.dilations[axis]
                )
            })?;
        }
        Ok(out)
    }

    /// Offset of each tap (row-major) from its window's base, in a padded buffer `cols` pixels
    /// wide with `c` channels.
    pub(super) fn taps(&self, cols: usize, c: usize) -> Vec<usize> {
        (0..self.kernel[0])
            .flat_map(|ky| {
                (0..self.kernel[1])
                    .map(move |kx| (ky * self.dilations[0] * cols + kx * self.dilations[1]) * c)
            })
            .collect()
    }

    /// Copies the NHWC `input` (float, or integer minus `zero_point`) into a zero-padded
    /// buffer covering every window.
    pub(super) fn pad<A: Mac>(
        &self,
        input: &Tensor,
        dims: [usize; 4],
        zero_point: i32,
    ) -> TractResult<Padded<A>> {
        let center = |v: i32| A::from_i32(v - zero_point);
        self.pad_with(input, dims, A::default(), 0, center, A::from_f32)
    }

    /// Copies the 8-bit NHWC `input` as unsigned bytes (int8 values plus 128, uint8 values as
    /// they are) into a buffer padded with the input's zero point in the same encoding, plus
    /// `slack` bytes at the end, for the byte dot-product loop.
    pub(super) fn pad_unsigned(
        &self,
        input: &Tensor,
        dims: [usize; 4],
        zero_point: i32,
        slack: usize,
    ) -> TractResult<Padded<u8>> {
        let offset = unsigned_offset(input.datum_type())?;
        let fill = u8::try_from(zero_point + offset)
            .map_err(|_| format_err!("zero point {zero_point} is outside the input's range"))?;
        // In range for the two types matched above, so the narrowing is exact.
        let to_byte = |v: i32| (v + offset) as u8;
        self.pad_with(input, dims, fill, slack, to_byte, |_| fill)
    }

    /// The padded copy: `fill` around the input and in the `slack` values after it, integer
    /// elements converted by `from_int`, float ones by `from_float`.
    fn pad_with<A: Copy>(
        &self,
        input: &Tensor,
        [n, h, w, c]: [usize; 4],
        fill: A,
        slack: usize,
        from_int: impl Fn(i32) -> A,
        from_float: impl Fn(f32) -> A,
    ) -> TractResult<Padded<A>> {
        let [(oh, pad_h), (ow, pad_w)] = self.output_geometry(h, w)?;
        // The padded extent covers every window, including SAME's trailing padding.
        let extent = |out: usize, axis: usize| {
            (out.max(1) - 1) * self.strides[axis]
                + (self.kernel[axis] - 1) * self.dilations[axis]
                + 1
        };
        let rows = (h + pad_h).max(extent(oh, 0));
        let cols = (w + pad_w).max(extent(ow, 1));
        let mut xp = vec![fill; n * rows * cols * c + slack];
        let dt = input.datum_type();
        let geometry = [n, h, w, c];
        let pads = [pad_h, pad_w];
        if dt == f32::datum_type() {
            let x = slice_of::<f32>(input)?;
            pad_into(x, geometry, [rows, cols], pads, &mut xp, from_float);
        } else {
            with_int!(dt, T => {
                let x = slice_of::<T>(input)?;
                let convert = |v: T| from_int(v.to_i32());
                pad_into(x, geometry, [rows, cols], pads, &mut xp, convert);
            });
        }
        let mut bases = Vec::with_capacity(n * oh * ow);
        for b in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    let pixel = (b * rows + oy * self.strides[0]) * cols + ox * self.strides[1];
                    bases.push(pixel * c);
                }
            }
        }
        Ok(Padded {
            xp,
            bases,
            out: [oh, ow],
            cols,
        })
    }
}

/// Copies `x` into the zero-padded `xp`, converting each element.
fn pad_into<T: Copy, A: Copy>(
    x: &[T],
    [n, h, w, c]: [usize; 4],
    [rows, cols]: [usize; 2],
    [top, left]: [usize; 2],
    xp: &mut [A],
    convert: impl Fn(T) -> A,
) {
    let row = w * c;
    for b in 0..n {
        for y in 0..h {
            let src = &x[(b * h + y) * row..][..row];
            let dst = &mut xp[((b * rows + y + top) * cols + left) * c..][..row];
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = convert(s);
            }
        }
    }
}
