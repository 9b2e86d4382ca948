//! Direct NHWC convolution, and FULLY_CONNECTED as its 1x1 case, without an im2col buffer.
//!
//! The input is centered (integer inputs minus their zero point) into a zero-padded copy once;
//! then each tile of output pixels by output channels accumulates straight from that copy: NHWC
//! keeps every tap's input channels contiguous, so the tap offsets are the only indexing. The
//! weights are packed at load time into panels of `NR` output channels.
//!
//! Two inner loops. The multiply-add loop ([`super::conv_tiles`]) accumulates in f32 or i32: for
//! integer models the importer picks f32 only when every partial sum stays below 2^24, where f32
//! holds integers exactly and the order of additions cannot change the result; i32 otherwise.
//! Float models see the rounding of fused multiply-adds where the CPU has them, and of a
//! different summation order than LiteRT's, both well inside the float tolerance. The byte loop
//! ([`super::dot_tiles`]) takes 8-bit inputs and weights that fit in i8 on CPUs with a byte
//! dot-product instruction, accumulating exactly in i32.

use tract_core::internal::*;

use super::conv_tiles::{FusedClamp, Job, Mac, NR};
use super::dot_tiles::{self, DotJob, GROUP, ROW};
use super::window::{unsigned_offset, Window};
use super::{slice_of, tensor_with};

/// A direct convolution producing the raw accumulators (plus an initial per-channel value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectConv {
    /// The sliding window.
    pub window: Window,
    /// Zero point subtracted from integer inputs (0 for float inputs).
    pub input_zero_point: i32,
    /// The fused activation of a float convolution.
    clamp: FusedClamp,
    cin: usize,
    cout: usize,
    packed: Packed,
}

/// The weights packed for one of the two inner loops.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Packed {
    /// The multiply-add loop: f32 or i32 panels `[cout / NR rounded up][kh * kw * cin][NR]`,
    /// zero beyond `cout`, and start values per output channel (the float bias, or zeros).
    Mac {
        panels: Arc<Tensor>,
        init: Arc<Tensor>,
    },
    /// The byte loop: i8 panels `[cout / NR rounded up][runs * groups][NR][GROUP]`, zero beyond
    /// each run and beyond `cout`; start values that take the unsigned encoding's offset back
    /// out; the per-channel weight shifts (empty when all zero), padded to whole panels; the
    /// input type they assume (see [`DirectConv::bytes`]).
    Dot {
        panels: Arc<Vec<i8>>,
        init: Arc<Vec<i32>>,
        shifts: Arc<Vec<i32>>,
        groups: usize,
        input: DatumType,
    },
}

impl DirectConv {
    /// Builds the op from OHWI weights `[cout, kh, kw, cin]` (already centered for integer
    /// models) and per-channel start values; `acc` is f32 or i32.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        weights: &Tensor,
        init: &[f32],
        acc: DatumType,
        strides: [usize; 2],
        dilations: [usize; 2],
        same: bool,
        input_zero_point: i32,
    ) -> TractResult<DirectConv> {
        let [cout, kh, kw, cin] = Self::ohwi(weights)?;
        ensure!(
            init.len() == cout,
            "{} start values for {cout} channels",
            init.len()
        );
        let depth = kh * kw * cin;
        let tiles = cout.div_ceil(NR);
        let w = weights.cast_to::<f32>()?;
        let w = slice_of::<f32>(&w)?;
        let mut packed = vec![0f32; tiles * depth * NR];
        for o in 0..cout {
            let (t, j) = (o / NR, o % NR);
            for k in 0..depth {
                packed[(t * depth + k) * NR + j] = w[o * depth + k];
            }
        }
        let panels = Tensor::from_shape(&[tiles, depth, NR], &packed)?
            .cast_to_dt(acc)?
            .into_owned();
        let init = Tensor::from_shape(&[cout], init)?
            .cast_to_dt(acc)?
            .into_owned();
        Ok(DirectConv {
            window: Window::new([kh, kw], strides, dilations, same),
            input_zero_point,
            clamp: FusedClamp::default(),
            cin,
            cout,
            packed: Packed::Mac {
                panels: Arc::new(panels),
                init: Arc::new(init),
            },
        })
    }

    /// The dimensions of OHWI weights, checked.
    fn ohwi(weights: &Tensor) -> TractResult<[usize; 4]> {
        match *weights.shape() {
            [cout, kh, kw, cin] if kh > 0 && kw > 0 && cin > 0 => Ok([cout, kh, kw, cin]),
            [_, _, _, _] => bail!("empty convolution window {:?}", weights.shape()),
            _ => bail!("DirectConv weights must be OHWI, got {:?}", weights.shape()),
        }
    }

    /// Whether this CPU runs the byte loop natively (see [`DirectConv::bytes`]).
    pub fn bytes_native() -> bool {
        dot_tiles::native()
    }

    /// Per-channel shifts that bring OHWI integer weights into i8 (`w - shift`), zero for
    /// channels already there, or `None` when a channel spans more than 256 values.
    pub fn byte_shifts(weights: &Tensor) -> TractResult<Option<Vec<i32>>> {
        let [cout, ..] = Self::ohwi(weights)?;
        let w = weights.cast_to::<i32>()?;
        let w = slice_of::<i32>(&w)?;
        let depth = w.len() / cout.max(1);
        let mut shifts = Vec::with_capacity(cout);
        for channel in w.chunks_exact(depth.max(1)) {
            let lo = channel.iter().copied().min().unwrap_or(0);
            let hi = channel.iter().copied().max().unwrap_or(0);
            if hi - lo > 255 {
                return Ok(None);
            }
            shifts.push(if lo >= -128 && hi <= 127 { 0 } else { hi - 127 });
        }
        Ok(Some(shifts))
    }

    /// Builds the byte dot-product form for an int8 or uint8 input (`input`) with zero point
    /// `input_zero_point`, from OHWI weights already centered, each channel spanning at most
    /// 256 values ([`DirectConv::byte_shifts`]). Outputs i32 accumulators, the same values
    /// [`DirectConv::new`] computes.
    ///
    /// Inputs are read as unsigned bytes `u = x + offset` (128 for int8, 0 for uint8) and the
    /// padding holds `zu = zp + offset`. A channel whose weights do not fit in i8 (uint8
    /// weights centered on their zero point) is stored as `w' = w - q`. Over a window of `K`
    /// values, `sum (u - zu) w = sum u w' - zu sum w' + q (S - K zu)` with `S = sum u`: the
    /// second and fourth terms are the same for every pixel and go into the start values; `q S`
    /// is added per pixel from the window sums.
    pub fn bytes(
        weights: &Tensor,
        strides: [usize; 2],
        dilations: [usize; 2],
        same: bool,
        input: DatumType,
        input_zero_point: i32,
    ) -> TractResult<DirectConv> {
        let [cout, kh, kw, cin] = Self::ohwi(weights)?;
        let offset = unsigned_offset(input)?;
        let Some(shifts) = Self::byte_shifts(weights)? else {
            bail!("byte convolution weights must span at most 256 values per channel");
        };
        let depth = kh * kw * cin;
        let w = weights.cast_to::<i32>()?;
        let w = slice_of::<i32>(&w)?;
        // In i8's range by the choice of shifts.
        let w: Vec<i8> = w
            .iter()
            .enumerate()
            .map(|(i, &v)| (v - shifts[i / depth]) as i8)
            .collect();
        let window = Window::new([kh, kw], strides, dilations, same);
        let (runs, run) = Self::runs(&window, cin);
        let groups = run.div_ceil(GROUP);
        let tiles = cout.div_ceil(NR);
        let mut panels = vec![0i8; tiles * runs * groups * ROW];
        for o in 0..cout {
            let (t, j) = (o / NR, o % NR);
            for r in 0..runs {
                for d in 0..run {
                    let (g, i) = (d / GROUP, d % GROUP);
                    let at = ((t * runs + r) * groups + g) * ROW + j * GROUP + i;
                    panels[at] = w[o * depth + r * run + d];
                }
            }
        }
        let zu = (input_zero_point + offset) as i64;
        // Modulo 2^32 like the loop's sums: exact whenever the final result fits in i32.
        let init = (0..cout)
            .map(|o| {
                let sum: i64 = w[o * depth..][..depth].iter().map(|&v| v as i64).sum();
                (-zu * sum - shifts[o] as i64 * depth as i64 * zu) as i32
            })
            .collect();
        // Padded to whole panels, so the tile loop reads one full row per panel.
        let shifts = if shifts.iter().all(|&q| q == 0) {
            vec![]
        } else {
            let mut padded = vec![0; tiles * NR];
            padded[..cout].copy_from_slice(&shifts);
            padded
        };
        Ok(DirectConv {
            window,
            input_zero_point,
            clamp: FusedClamp::default(),
            cin,
            cout,
            packed: Packed::Dot {
                panels: Arc::new(panels),
                init: Arc::new(init),
                shifts: Arc::new(shifts),
                groups,
                input: input.unquantized(),
            },
        })
    }

    /// Runs per window and values per run: undilated, a window row's taps are adjacent in
    /// NHWC (one run of `kw * cin` per row); dilated, each tap is its own run of `cin`.
    fn runs(window: &Window, cin: usize) -> (usize, usize) {
        if window.dilations[1] == 1 {
            (window.kernel[0], window.kernel[1] * cin)
        } else {
            (window.kernel[0] * window.kernel[1], cin)
        }
    }

    /// Offset of each run from its window's base, in a padded buffer `cols` pixels wide, and
    /// the values per run (see [`DirectConv::runs`]).
    fn segments(&self, cols: usize) -> (Vec<usize>, usize) {
        let (win, c) = (&self.window, self.cin);
        let offsets = if win.dilations[1] == 1 {
            (0..win.kernel[0])
                .map(|ky| ky * win.dilations[0] * cols * c)
                .collect()
        } else {
            win.taps(cols, c)
        };
        (offsets, Self::runs(win, c).1)
    }

    /// Clamps the (float) results to `[lo, hi]` when given: the fused activation of a float
    /// convolution.
    pub fn with_clamp(mut self, bounds: Option<(f32, f32)>) -> DirectConv {
        self.clamp = FusedClamp::new(bounds);
        self
    }

    /// NHWC dimensions of an input of rank 4, or rank 2 (`[n, k]` read as `[n, 1, 1, k]`).
    fn nhwc(shape: &[usize]) -> TractResult<[usize; 4]> {
        match *shape {
            [n, h, w, c] => Ok([n, h, w, c]),
            [n, c] => Ok([n, 1, 1, c]),
            _ => bail!("DirectConv expects NHWC or [rows, depth], got {shape:?}"),
        }
    }

    /// Checks the input's channels and returns its NHWC dimensions and the output shape.
    fn shapes(&self, input: &Tensor) -> TractResult<([usize; 4], TVec<usize>)> {
        let dims = Self::nhwc(input.shape())?;
        ensure!(
            dims[3] == self.cin,
            "input has {} channels, weights expect {}",
            dims[3],
            self.cin
        );
        let [(oh, _), (ow, _)] = self.window.output_geometry(dims[1], dims[2])?;
        let shape = if input.rank() == 2 {
            tvec![dims[0], self.cout]
        } else {
            tvec![dims[0], oh, ow, self.cout]
        };
        Ok((dims, shape))
    }

    /// Runs the multiply-add form with `kernel` (`Job::dispatch`, or one variant in tests).
    fn run<A: Mac>(
        &self,
        input: &Tensor,
        kernel: impl Fn(&Job<A>, &mut [A]),
    ) -> TractResult<Tensor> {
        let Packed::Mac { panels, init } = &self.packed else {
            bail!("DirectConv: not the multiply-add form");
        };
        let (dims, shape) = self.shapes(input)?;
        let padded = self.window.pad::<A>(input, dims, self.input_zero_point)?;
        let (segments, run) = self.segments(padded.cols);
        let job = Job {
            xp: &padded.xp,
            bases: &padded.bases,
            segments: &segments,
            run,
            cout: self.cout,
            panels: slice_of::<A>(panels)?,
            init: slice_of::<A>(init)?,
        };
        tensor_with::<A>(A::datum_type(), &shape, |out| {
            kernel(&job, out);
            self.clamp.apply(out);
        })
    }

    /// Runs the byte form with `kernel` (`dot_tiles::dispatch`, or one variant in tests).
    fn run_bytes(
        &self,
        input: &Tensor,
        kernel: impl Fn(&DotJob, &mut [i32]),
    ) -> TractResult<Tensor> {
        let Packed::Dot {
            panels,
            init,
            shifts,
            groups,
            input: dt,
        } = &self.packed
        else {
            bail!("DirectConv: not the byte form");
        };
        ensure!(
            input.datum_type().unquantized() == *dt,
            "input is {:?}, the byte convolution was built for {dt:?}",
            input.datum_type()
        );
        let (dims, shape) = self.shapes(input)?;
        let padded = self
            .window
            .pad_unsigned(input, dims, self.input_zero_point, GROUP - 1)?;
        let (segments, run) = self.segments(padded.cols);
        let sums = if shifts.is_empty() {
            vec![]
        } else {
            window_sums(&padded.xp, &padded.bases, &segments, run)
        };
        let job = DotJob {
            xp: &padded.xp,
            bases: &padded.bases,
            segments: &segments,
            groups: *groups,
            cout: self.cout,
            panels,
            init,
            shifts,
            sums: &sums,
        };
        tensor_with::<i32>(i32::datum_type(), &shape, |out| kernel(&job, out))
    }

    /// The accumulator type.
    fn acc_type(&self) -> DatumType {
        match &self.packed {
            Packed::Mac { panels, .. } => panels.datum_type(),
            Packed::Dot { .. } => i32::datum_type(),
        }
    }
}

/// Sum of the input bytes in each output pixel's window (padding included).
fn window_sums(xp: &[u8], bases: &[usize], segments: &[usize], run: usize) -> Vec<i32> {
    bases
        .iter()
        .map(|&b| {
            segments
                .iter()
                .map(|&s| xp[b + s..][..run].iter().map(|&v| v as i32).sum::<i32>())
                .sum()
        })
        .collect()
}

impl Op for DirectConv {
    fn name(&self) -> StaticName {
        "LitehouseDirectConv".into()
    }
    fn info(&self) -> TractResult<Vec<String>> {
        let form = match self.packed {
            Packed::Mac { .. } => "multiply-add",
            Packed::Dot { .. } => "byte dot product",
        };
        Ok(vec![format!(
            "{} channels -> {}, {}, zp {}, acc {:?}, {form}",
            self.cin,
            self.cout,
            self.window,
            self.input_zero_point,
            self.acc_type()
        )])
    }
    op_as_typed_op!();
}

impl EvalOp for DirectConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let out = match &self.packed {
            Packed::Dot { .. } => self.run_bytes(&input, dot_tiles::dispatch)?,
            Packed::Mac { panels, .. } => match panels.datum_type() {
                DatumType::F32 => self.run::<f32>(&input, f32::dispatch)?,
                DatumType::I32 => self.run::<i32>(&input, i32::dispatch)?,
                dt => bail!("DirectConv accumulates in f32 or i32, not {dt:?}"),
            },
        };
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for DirectConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let s = &inputs[0].shape;
        let dt = self.acc_type();
        match s.rank() {
            2 => Ok(tvec!(dt.fact(tvec![s[0].clone(), self.cout.to_dim()]))),
            4 => {
                let [(oh, _), (ow, _)] = self
                    .window
                    .output_geometry(s[1].to_usize()?, s[2].to_usize()?)?;
                Ok(tvec!(dt.fact(tvec![
                    s[0].clone(),
                    oh.to_dim(),
                    ow.to_dim(),
                    self.cout.to_dim()
                ])))
            }
            r => bail!("DirectConv expects NHWC or [rows, depth], got rank {r}"),
        }
    }
    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::conv_tiles::f32_variants;
    use crate::kernels::dot_tiles;
    use crate::kernels::test_rng;
    use crate::kernels::window::window_geometry;

    /// A convolution's shape: input `[n, h, w, c]`, `cout` filters of `kh x kw`, strides,
    /// dilations and padding.
    struct Geometry {
        input: [usize; 4],
        cout: usize,
        kernel: [usize; 2],
        strides: [usize; 2],
        dil: [usize; 2],
        same: bool,
    }

    impl Geometry {
        /// A random geometry with up to `max[0]` input and `max[1]` output channels.
        fn random(
            pick: &mut impl FnMut(usize, usize) -> usize,
            max: [usize; 2],
            same: bool,
        ) -> Self {
            Geometry {
                input: [pick(1, 3), pick(1, 9), pick(1, 9), pick(1, max[0])],
                cout: pick(1, max[1]),
                kernel: [pick(1, 3), pick(1, 3)],
                strides: [pick(1, 2), pick(1, 2)],
                dil: [pick(1, 2), pick(1, 2)],
                same,
            }
        }

        /// Values in the input and in the OHWI weights.
        fn sizes(&self) -> [usize; 2] {
            let [n, h, w, c] = self.input;
            [
                n * h * w * c,
                self.cout * self.kernel[0] * self.kernel[1] * c,
            ]
        }

        fn weight_shape(&self) -> [usize; 4] {
            [self.cout, self.kernel[0], self.kernel[1], self.input[3]]
        }

        /// The textbook loop: every output as a sum over the window of input minus zero point
        /// times weight, padding contributing nothing. Returns the outputs and `[oh, ow]`.
        fn reference(&self, x: &[i32], wt: &[i32], zp: i32) -> (Vec<i64>, [usize; 2]) {
            let ([n, h, w, c], cout, [kh, kw]) = (self.input, self.cout, self.kernel);
            let (strides, dil, same) = (self.strides, self.dil, self.same);
            let (oh, ph) = window_geometry(h, kh, strides[0], dil[0], same).unwrap_or((0, 0));
            let (ow, pw) = window_geometry(w, kw, strides[1], dil[1], same).unwrap_or((0, 0));
            let mut out = vec![0i64; n * oh * ow * cout];
            for b in 0..n {
                for oy in 0..oh {
                    for ox in 0..ow {
                        for o in 0..cout {
                            let mut acc = 0i64;
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let y = (oy * strides[0] + ky * dil[0]) as isize - ph as isize;
                                    let xx = (ox * strides[1] + kx * dil[1]) as isize - pw as isize;
                                    if y < 0 || xx < 0 || y as usize >= h || xx as usize >= w {
                                        continue;
                                    }
                                    for ci in 0..c {
                                        let xi = ((b * h + y as usize) * w + xx as usize) * c + ci;
                                        let wi = ((o * kh + ky) * kw + kx) * c + ci;
                                        acc += (x[xi] - zp) as i64 * wt[wi] as i64;
                                    }
                                }
                            }
                            out[((b * oh + oy) * ow + ox) * cout + o] = acc;
                        }
                    }
                }
            }
            (out, [oh, ow])
        }
    }

    /// Random geometries (odd channel counts, strides, dilations, both paddings, pixel counts
    /// off the tile size) in f32 and i32 against the reference loop, exactly.
    #[test]
    fn matches_the_reference_loop() {
        let mut rng = test_rng(0x5eed_c0de);
        let mut ran = 0;
        for case in 0..60 {
            let mut pick = |lo: usize, hi: usize| lo + (rng() as usize) % (hi - lo + 1);
            let g = Geometry::random(&mut pick, [19, 90], case % 2 == 0);
            let ([n, _, _, _], cout, [xlen, wlen]) = (g.input, g.cout, g.sizes());
            let (strides, dil, same) = (g.strides, g.dil, g.same);
            let zp = pick(0, 40) as i32 - 20;
            let x: Vec<i8> = (0..xlen).map(|_| pick(0, 255) as u8 as i8).collect();
            let wt: Vec<i32> = (0..wlen).map(|_| pick(0, 254) as i32 - 127).collect();
            let xs: Vec<i32> = x.iter().map(|&v| v as i32).collect();
            let (want, [oh, ow]) = g.reference(&xs, &wt, zp);
            if oh == 0 || ow == 0 {
                continue;
            }
            let wtensor = Tensor::from_shape(&g.weight_shape(), &wt).unwrap();
            let input = Tensor::from_shape(&g.input, &x).unwrap();
            for acc in [f32::datum_type(), i32::datum_type()] {
                let op = DirectConv::new(&wtensor, &vec![0.0; cout], acc, strides, dil, same, zp)
                    .unwrap();
                let got = op.eval(
                    &EvalContext::out_of_plan(),
                    tvec!(input.clone().into_tvalue()),
                );
                let got = got.unwrap().remove(0);
                let got = got.cast_to::<i64>().unwrap();
                assert_eq!(got.shape(), &[n, oh, ow, cout], "case {case}");
                let got = slice_of::<i64>(&got).unwrap();
                assert_eq!(got, &want[..], "case {case} acc {acc:?}");
            }
            // The variants the dispatch does not pick on this CPU.
            let op = DirectConv::new(
                &wtensor,
                &vec![0.0; cout],
                f32::datum_type(),
                strides,
                dil,
                same,
                zp,
            )
            .unwrap();
            for (name, kernel) in f32_variants() {
                let got = op.run::<f32>(&input, kernel).unwrap();
                let got: Vec<i64> = slice_of::<f32>(&got)
                    .unwrap()
                    .iter()
                    .map(|&v| v as i64)
                    .collect();
                assert_eq!(got, want, "case {case} {name}");
            }
            ran += 1;
        }
        assert!(ran >= 30, "only {ran} geometries were valid");
    }

    /// The byte form, int8 and uint8 inputs, every loop variant of this CPU, against the
    /// reference loop: odd channel counts leave runs that are not a multiple of four, extreme
    /// zero points and weights check the unsigned offset, weights beyond i8 the per-channel
    /// shifts, dilation splits runs per tap.
    #[test]
    fn byte_form_matches_the_reference_loop() {
        let mut rng = test_rng(0xb17e_5eed);
        let mut ran = 0;
        for case in 0..80 {
            let mut pick = |lo: usize, hi: usize| lo + (rng() as usize) % (hi - lo + 1);
            let g = Geometry::random(&mut pick, [21, 70], case % 2 == 0);
            let ([n, _, _, _], cout, [xlen, wlen]) = (g.input, g.cout, g.sizes());
            let (strides, dil, same) = (g.strides, g.dil, g.same);
            let signed = case % 3 != 0;
            let (dt, lo) = if signed {
                (i8::datum_type(), -128)
            } else {
                (u8::datum_type(), 0)
            };
            let zp = match case % 5 {
                0 => lo,
                1 => lo + 255,
                _ => lo + pick(0, 255) as i32,
            };
            let xs: Vec<i32> = (0..xlen).map(|_| lo + pick(0, 255) as i32).collect();
            // int8 weights, and uint8 ones centered on zero points from 0 to 255 (shifted).
            let wlo = match case % 4 {
                0 | 1 => -128,
                2 => -255,
                _ => -(pick(0, 255) as i32),
            };
            let wt: Vec<i32> = (0..wlen).map(|_| wlo + pick(0, 255) as i32).collect();
            let (want, [oh, ow]) = g.reference(&xs, &wt, zp);
            if oh == 0 || ow == 0 {
                continue;
            }
            let wtensor = Tensor::from_shape(&g.weight_shape(), &wt).unwrap();
            let input = Tensor::from_shape(&g.input, &xs)
                .unwrap()
                .cast_to_dt(dt)
                .unwrap()
                .into_owned();
            let op = DirectConv::bytes(&wtensor, strides, dil, same, dt, zp).unwrap();
            let want: Vec<i32> = want.iter().map(|&v| v as i32).collect();
            let got = op
                .eval(
                    &EvalContext::out_of_plan(),
                    tvec!(input.clone().into_tvalue()),
                )
                .unwrap()
                .remove(0);
            assert_eq!(got.shape(), &[n, oh, ow, cout], "case {case}");
            assert_eq!(slice_of::<i32>(&got).unwrap(), &want[..], "case {case}");
            for (name, kernel) in dot_tiles::variants() {
                let got = op.run_bytes(&input, kernel).unwrap();
                assert_eq!(
                    slice_of::<i32>(&got).unwrap(),
                    &want[..],
                    "case {case} {name}"
                );
            }
            ran += 1;
        }
        assert!(ran >= 40, "only {ran} geometries were valid");
    }

    /// The byte form refuses what it cannot represent, and an input of the other 8-bit type.
    #[test]
    fn byte_form_rejects_what_it_cannot_hold() {
        let wide = Tensor::from_shape(&[1, 1, 1, 2], &[200i32, -100]).unwrap();
        let err = DirectConv::bytes(&wide, [1, 1], [1, 1], false, i8::datum_type(), 0);
        assert!(err.unwrap_err().to_string().contains("at most 256 values"));
        assert_eq!(DirectConv::byte_shifts(&wide).unwrap(), None);
        let high = Tensor::from_shape(&[2, 1, 1, 2], &[200i32, 0, 5, -5]).unwrap();
        assert_eq!(DirectConv::byte_shifts(&high).unwrap(), Some(vec![73, 0]));
        let w = Tensor::from_shape(&[1, 1, 1, 2], &[1i32, -1]).unwrap();
        let f = DirectConv::bytes(&w, [1, 1], [1, 1], false, f32::datum_type(), 0);
        assert!(f.unwrap_err().to_string().contains("int8 or uint8"));
        let op = DirectConv::bytes(&w, [1, 1], [1, 1], false, i8::datum_type(), 0).unwrap();
        let x = Tensor::from_shape(&[1, 2], &[1u8, 2]).unwrap();
        let err = op.eval(&EvalContext::out_of_plan(), tvec!(x.into_tvalue()));
        assert!(err.unwrap_err().to_string().contains("built for"));
    }

    /// A rank-2 input is a fully connected layer: `[rows, k]` times `[cout, k]` plus the bias.
    #[test]
    fn rank_two_is_fully_connected() {
        let (rows, k, cout) = (6usize, 23usize, 19usize);
        let x: Vec<f32> = (0..rows * k).map(|i| (i % 7) as f32 - 3.0).collect();
        let wt: Vec<f32> = (0..cout * k).map(|i| (i % 5) as f32 * 0.5).collect();
        let bias: Vec<f32> = (0..cout).map(|o| o as f32).collect();
        let wtensor = Tensor::from_shape(&[cout, 1, 1, k], &wt).unwrap();
        let op =
            DirectConv::new(&wtensor, &bias, f32::datum_type(), [1, 1], [1, 1], false, 0).unwrap();
        let input = Tensor::from_shape(&[rows, k], &x).unwrap();
        let got = op
            .eval(&EvalContext::out_of_plan(), tvec!(input.into_tvalue()))
            .unwrap()
            .remove(0);
        assert_eq!(got.shape(), &[rows, cout]);
        let got = slice_of::<f32>(&got).unwrap();
        for r in 0..rows {
            for o in 0..cout {
                let want: f32 = bias[o] + (0..k).map(|i| x[r * k + i] * wt[o * k + i]).sum::<f32>();
                assert_eq!(got[r * cout + o], want, "row {r} channel {o}");
            }
        }
    }
}
