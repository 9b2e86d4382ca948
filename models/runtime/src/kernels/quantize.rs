//! Affine quantization between floats and integers, per tensor or per channel (last axis).

use tract_core::internal::*;

use super::{slice_of, tensor_with, with_int, Int, ROUNDER, ROUNDER_BITS};
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
            quantize_slice(x, scale, zp, (lo, hi), o)
        })?);
        Ok(tvec!(out.into_tvalue()))
    }
}

/// Largest |value| the vectorized path handles: beyond it every result is a clamp bound.
const LIMIT: f32 = (1u32 << 20) as f32;

/// `quantize_value` over a slice, bit-identical to it, written so the loop vectorizes (no libm
/// call, no branches). Ranges wider than 16 bits take the scalar path.
pub(crate) fn quantize_slice<O: Int>(
    x: &[f32],
    scale: f32,
    zp: i32,
    (lo, hi): (i32, i32),
    out: &mut [O],
) {
    if lo < -(1 << 16) || hi > 1 << 16 || zp.unsigned_abs() > 1 << 16 {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = O::from_i32(quantize_value(v, scale, zp, lo, hi));
        }
        return;
    }
    let (zpf, lof, hif) = (zp as f32, lo as f32, hi as f32);
    for (o, &v) in out.iter_mut().zip(x) {
        let q = v / scale;
        let a = q.abs();
        // NaN quantizes to the zero point; values beyond LIMIT clamp anyway.
        let a = if a < LIMIT {
            a
        } else if a >= LIMIT {
            LIMIT
        } else {
            0.0
        };
        let nearest = (a + ROUNDER) - ROUNDER;
        let trunc = if nearest > a { nearest - 1.0 } else { nearest };
        // Halves away from zero, as TfLiteRound does.
        let rounded = if a - trunc >= 0.5 { trunc + 1.0 } else { trunc };
        let y = rounded.copysign(q) + zpf;
        let y = if y < lof { lof } else { y };
        let y = if y > hif { hif } else { y };
        *o = O::from_i32((y + ROUNDER).to_bits() as i32 - ROUNDER_BITS);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectorized loop must give `quantize_value`'s answer on every value: halves, values
    /// one ulp either side of them, NaN, infinities, huge values, 8- and 16-bit ranges.
    #[test]
    fn quantize_slice_matches_quantize_value() {
        let mut next = super::super::test_rng(0x9e37_79b9_7f4a_7c15u64);
        let mut x = vec![
            0.0f32,
            -0.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e30,
            -1e30,
            f32::MAX,
            f32::MIN_POSITIVE,
        ];
        for k in -300..300 {
            let half = k as f32 + 0.5;
            x.extend([
                half,
                f32::from_bits(half.to_bits() + 1),
                f32::from_bits(half.to_bits() - 1),
            ]);
        }
        for _ in 0..20_000 {
            x.push(f32::from_bits(next() as u32));
            x.push(((next() % 2_000_000) as f32 - 1_000_000.0) / 997.0);
        }
        for &(scale, zp, lo, hi) in &[
            (1.0f32, 0, -128, 127),
            (0.00390625, -128, -128, 127),
            (0.0123, 7, -128, 127),
            (0.5, 128, 0, 255),
            (3.0517578e-5, 0, -32768, 32767),
            (0.25, 3, 0, 6),
        ] {
            let mut got = vec![0i32; x.len()];
            quantize_slice(&x, scale, zp, (lo, hi), &mut got);
            for (&v, &g) in x.iter().zip(&got) {
                let want = quantize_value(v, scale, zp, lo, hi);
                assert_eq!(
                    g,
                    want,
                    "x {v:e} ({:#x}), scale {scale}, zp {zp}",
                    v.to_bits()
                );
            }
        }
    }
}
