//! LiteRT's requantization of an integer accumulator to an 8-bit output.

use tract_core::internal::*;

use super::i32s_to_tensor;
use crate::quant::FixedMultiplier;

/// `out = clamp(MultiplyByQuantizedMultiplier(acc + bias[c], m[c]) + zp, min, max)`, with `c` the
/// last axis. The accumulator may arrive as f32/f64 holding exact integers (the fast matmul path)
/// or as i32.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requantize {
    /// One multiplier per output channel, or a single one.
    pub multipliers: Vec<FixedMultiplier>,
    /// int32 bias per output channel (already folded), or empty.
    pub bias: Vec<i32>,
    /// Output zero point.
    pub zero_point: i32,
    /// Clamp range in the quantized domain (fused activation).
    pub min: i32,
    /// Upper clamp bound.
    pub max: i32,
    /// Output datum type (I8, U8, I16 or I32).
    pub out: DatumType,
}

impl Requantize {
    fn run(&self, acc: impl Iterator<Item = i64>, channels: usize, out: &mut [i32]) {
        for (i, (a, o)) in acc.zip(out.iter_mut()).enumerate() {
            let c = i % channels.max(1);
            let b = self.bias.get(c).copied().unwrap_or(0) as i64;
            let v = (a + b).clamp(i32::MIN as i64, i32::MAX as i64) as i32;
            let m = if self.multipliers.len() == 1 {
                self.multipliers[0]
            } else {
                self.multipliers[c]
            };
            let q = m.apply(v) as i64 + self.zero_point as i64;
            *o = q.clamp(self.min as i64, self.max as i64) as i32;
        }
    }
}

impl Op for Requantize {
    fn name(&self) -> StaticName {
        "LitehouseRequantize".into()
    }
    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{} multiplier(s), zp {}, range [{}, {}] -> {:?}",
            self.multipliers.len(),
            self.zero_point,
            self.min,
            self.max,
            self.out
        )])
    }
    op_as_typed_op!();
}

impl EvalOp for Requantize {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = input.shape().to_vec();
        let channels = shape.last().copied().unwrap_or(1);
        let mut out = vec![0i32; input.len()];
        match input.datum_type() {
            DatumType::F32 => {
                let v = input.to_plain_array_view::<f32>()?;
                self.run(v.iter().map(|&x| x as i64), channels, &mut out)
            }
            DatumType::F64 => {
                let v = input.to_plain_array_view::<f64>()?;
                self.run(v.iter().map(|&x| x as i64), channels, &mut out)
            }
            DatumType::I32 => {
                let v = input.to_plain_array_view::<i32>()?;
                self.run(v.iter().map(|&x| x as i64), channels, &mut out)
            }
            dt => bail!("Requantize expects an f32, f64 or i32 accumulator, got {dt:?}"),
        }
        Ok(tvec!(i32s_to_tensor(self.out, &shape, &out)?.into_tvalue()))
    }
}

impl TypedOp for Requantize {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(self.out.fact(inputs[0].shape.clone())))
    }
    as_op!();
}
