//! Small tract-core operators for the integer semantics tract does not have (LiteRT's fixed-point
//! requantization, affine (de)quantization, 8-bit lookup tables, integer pooling,
//! TFLite-style image resizing), and direct NHWC convolutions (dense and depthwise) that need no
//! im2col buffer.

mod conv_tiles;
mod depthwise;
mod direct_conv;
mod dot_tiles;
mod int_pool;
mod lut;
mod quantize;
mod requantize;
mod resize;
mod row_quantize;
mod tile_order;
mod window;

pub use depthwise::DepthwiseConv;
pub use direct_conv::DirectConv;
pub use int_pool::{IntPool, PoolReduce};
pub use lut::Lut8;
pub use quantize::{DequantizeLinear, QuantizeLinear};
pub use requantize::Requantize;
pub use resize::{ResizeKind, ResizeNhwc};
pub use row_quantize::RowQuantize;
pub use window::Window;
pub(crate) use window::{unsigned_offset, window_geometry};

use tract_core::internal::*;

/// Reads an integer tensor of any plain integer type as `i32` values.
pub(crate) fn ints_as_i32(t: &Tensor) -> TractResult<Vec<i32>> {
    Ok(match t.datum_type().unquantized() {
        DatumType::I8 => t
            .to_plain_array_view::<i8>()?
            .iter()
            .map(|&v| v as i32)
            .collect(),
        DatumType::U8 => t
            .to_plain_array_view::<u8>()?
            .iter()
            .map(|&v| v as i32)
            .collect(),
        DatumType::I16 => t
            .to_plain_array_view::<i16>()?
            .iter()
            .map(|&v| v as i32)
            .collect(),
        DatumType::I32 => t.to_plain_array_view::<i32>()?.iter().copied().collect(),
        dt => bail!("expected an 8/16/32-bit integer tensor, got {dt:?}"),
    })
}

/// An integer element type the kernels read and write (values already in range on write).
pub(crate) trait Int: Datum + Copy + Ord {
    /// Widens to i32.
    fn to_i32(self) -> i32;
    /// Narrows an in-range i32.
    fn from_i32(v: i32) -> Self;
}

macro_rules! impl_int {
    ($($t:ty),*) => {$(
        impl Int for $t {
            #[inline(always)]
            fn to_i32(self) -> i32 {
                self as i32
            }
            #[inline(always)]
            fn from_i32(v: i32) -> Self {
                v as $t
            }
        }
    )*};
}
impl_int!(i8, u8, i16, i32);

/// Evaluates `$body` with the type alias `$T` bound to the Rust type of integer datum type `$dt`
/// (i8, u8, i16 or i32); other types are an error.
macro_rules! with_int {
    ($dt:expr, $T:ident => $body:expr) => {
        match $dt.unquantized() {
            DatumType::I8 => {
                type $T = i8;
                $body
            }
            DatumType::U8 => {
                type $T = u8;
                $body
            }
            DatumType::I16 => {
                type $T = i16;
                $body
            }
            DatumType::I32 => {
                type $T = i32;
                $body
            }
            dt => bail!("expected an 8/16/32-bit integer tensor, got {dt:?}"),
        }
    };
}
pub(crate) use with_int;

/// 1.5 * 2^23: adding and subtracting it rounds an f32 below 2^22 to the nearest integer with
/// plain arithmetic, which vectorizes on every x86-64, unlike `f32::round`.
pub(crate) const ROUNDER: f32 = 12_582_912.0;
/// Bit pattern of `ROUNDER`: an integral f32 `q` with `|q| < 2^22` has the bits
/// `ROUNDER_BITS + q` after adding `ROUNDER`, a float-to-int conversion that vectorizes (Rust's
/// saturating `as` does not).
pub(crate) const ROUNDER_BITS: i32 = 0x4B40_0000;

/// A tensor's elements as a typed slice (tract tensors are contiguous).
pub(crate) fn slice_of<T: Datum>(t: &Tensor) -> TractResult<&[T]> {
    t.try_as_plain_ram()?.as_slice::<T>()
}

/// Allocates a tensor of `dt` and lets `fill` write its elements as `T`.
pub(crate) fn tensor_with<T: Datum>(
    dt: DatumType,
    shape: &[usize],
    fill: impl FnOnce(&mut [T]),
) -> TractResult<Tensor> {
    let mut out = Tensor::zero_dt(dt, shape)?;
    {
        let mut view = out.try_as_plain_ram_mut()?;
        fill(view.as_slice_mut::<T>()?);
    }
    Ok(out)
}

/// A small deterministic xorshift generator for the kernels' randomized tests.
#[cfg(test)]
pub(crate) fn test_rng(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}
