//! Affine quantization between floats and integers, per tensor or per channel (last axis).

use tract_core::internal::*;

use super::{slice_of, tensor_with, with_int, Int};
use crate::quant::quantize_value;

/// f32 -> integer: `clamp(round(x / scale) + zp, min, max)`.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizeLinear {
    /// Scale of the output.
    pub scale: f32,
    /// Zero point of the output.
    pub zero_point: i32,
    /// Lower clamp bound (quantized domain).
    pub min: i32,
    /// Upper clamp bound (quantized domain).
    pub max: i32,
    /// Output datum type.
    pub out: DatumType,
}

impl Eq for QuantizeLinear {}

impl Op for QuantizeLinear {
    fn name(&self) -> StaticName {
        "LitehouseQuantize".into()
    }
    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "scale {} zp {} -> {:?}",
            self.scale, self.zero_point, self.out
        )])
    }
    op_as_typed_op!();
}

impl EvalOp for QuantizeLinear {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let x = input.cast_to::<f32>()?;
        let x = slice_of::<f32>(&x)?;
        let (scale, zp, lo, hi) = (self.scale, self.zero_point, self.min, self.max);
        let out = with_int!(self.out, O => tensor_with::<O>(self.out, input.shape(), |o| {
            for (o, &v) in o.iter_mut().zip(x) {
                *o = O::from_i32(quantize_value(v, scale, zp, lo, hi));
            }
        })?);
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for QuantizeLinear {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(self.out.fact(inputs[0].shape.clone())))
    }
    as_op!();
}

/// integer -> f32: `scale[c] * (q - zp[c])`, `c` along the last axis when per channel.
#[derive(Debug, Clone, PartialEq)]
pub struct DequantizeLinear {
    /// One scale, or one per channel of the last axis.
    pub scale: Vec<f32>,
    /// Zero points, same length as `scale`.
    pub zero_point: Vec<i32>,
}

impl Eq for DequantizeLinear {}

impl DequantizeLinear {
    /// Dequantizes a whole tensor (also used at import for constants).
    pub fn apply(&self, input: &Tensor) -> TractResult<Tensor> {
        with_int!(input.datum_type(), I => self.typed::<I>(input))
    }

    fn typed<I: Int>(&self, input: &Tensor) -> TractResult<Tensor> {
        let q = slice_of::<I>(input)?;
        let params: Vec<(f32, i32)> = self
            .scale
            .iter()
            .copied()
            .zip(self.zero_point.iter().copied())
            .collect();
        let width = params.len().max(1);
        tensor_with::<f32>(f32::datum_type(), input.shape(), |out| {
            if let [(scale, zp)] = params[..] {
                for (o, &v) in out.iter_mut().zip(q) {
                    *o = scale * (v.to_i32() - zp) as f32;
                }
            } else {
                for (o_row, q_row) in out.chunks_mut(width).zip(q.chunks(width)) {
                    for ((o, &v), &(scale, zp)) in o_row.iter_mut().zip(q_row).zip(&params) {
                        *o = scale * (v.to_i32() - zp) as f32;
                    }
                }
            }
        })
    }
}

impl Op for DequantizeLinear {
    fn name(&self) -> StaticName {
        "LitehouseDequantize".into()
    }
    op_as_typed_op!();
}

impl EvalOp for DequantizeLinear {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        Ok(tvec!(self.apply(&input)?.into_tvalue()))
    }
}

impl TypedOp for DequantizeLinear {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(inputs[0].shape.clone())))
    }
    as_op!();
}
