//! Small tract-core operators for the integer semantics tract does not have: LiteRT's fixed-point
//! requantization, affine (de)quantization, 8-bit lookup tables and TFLite-style image resizing.

mod lut;
mod quantize;
mod requantize;
mod resize;
mod row_quantize;

pub use lut::Lut8;
pub use quantize::{DequantizeLinear, QuantizeLinear};
pub use requantize::Requantize;
pub use resize::{ResizeKind, ResizeNhwc};
pub use row_quantize::RowQuantize;

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

/// Builds a tensor of `dt` (i8, u8, i16 or i32) from `i32` values already in range.
pub(crate) fn i32s_to_tensor(
    dt: DatumType,
    shape: &[usize],
    values: &[i32],
) -> TractResult<Tensor> {
    Ok(match dt {
        DatumType::I8 => {
            Tensor::from_shape(shape, &values.iter().map(|&v| v as i8).collect::<Vec<_>>())?
        }
        DatumType::U8 => {
            Tensor::from_shape(shape, &values.iter().map(|&v| v as u8).collect::<Vec<_>>())?
        }
        DatumType::I16 => {
            Tensor::from_shape(shape, &values.iter().map(|&v| v as i16).collect::<Vec<_>>())?
        }
        DatumType::I32 => Tensor::from_shape(shape, values)?,
        dt => bail!("cannot produce quantized values as {dt:?}"),
    })
}
