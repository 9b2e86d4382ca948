//! Affine quantization between floats and integers, per tensor or per channel (last axis).

use tract_core::internal::*;

use super::{i32s_to_tensor, ints_as_i32};
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
        let values: Vec<i32> = x
            .to_plain_array_view::<f32>()?
            .iter()
            .map(|&v| quantize_value(v, self.scale, self.zero_point, self.min, self.max))
            .collect();
        Ok(tvec!(
            i32s_to_tensor(self.out, input.shape(), &values)?.into_tvalue()
        ))
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
        let q = ints_as_i32(input)?;
        let channels = if self.scale.len() > 1 {
            self.scale.len()
        } else {
            1
        };
        let values: Vec<f32> = q
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = i % channels;
                self.scale[c] * (v - self.zero_point[c]) as f32
            })
            .collect();
        Tensor::from_shape(input.shape(), &values)
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
