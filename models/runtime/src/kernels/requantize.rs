//! LiteRT's requantization of an integer accumulator to an 8-bit output.

use tract_core::internal::*;

use super::{slice_of, tensor_with, with_int, Int};
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

/// Accumulators below this magnitude take the f64 path, where every step is exact: `|acc| < 2^22`
/// times a 31-bit mantissa fits f64's 53 bits, and so do the two roundings that follow.
const EXACT_LIMIT: f64 = (1u32 << 22) as f64;
/// Adding and subtracting 1.5 * 2^52 rounds an f64 below 2^51 to the nearest integer (ties to
/// even) with plain arithmetic, which vectorizes on every x86-64, unlike `f64::floor`.
const ROUNDER: f64 = 6_755_399_441_055_744.0;

#[inline(always)]
fn floor_small(t: f64) -> f64 {
    let r = (t + ROUNDER) - ROUNDER;
    if r > t {
        r - 1.0
    } else {
        r
    }
}

/// Per-channel constants, as slices the inner loop can vectorize over.
struct Plan {
    bias: Vec<f64>,
    /// Q31 mantissa as a real in [0.5, 1).
    mantissa: Vec<f64>,
    /// `2^shift` for the (non-positive) shift.
    pot: Vec<f64>,
    fixed: Vec<(i64, FixedMultiplier)>,
    /// Every channel has a non-positive shift (multiplier below 1), the f64 path's premise.
    fast: bool,
}

impl Requantize {
    /// Bias and multiplier per position along the last axis: one pair when both are per tensor.
    fn plan(&self, channels: usize) -> Plan {
        let zero = FixedMultiplier {
            mantissa: 0,
            shift: 0,
        };
        let per_channel = self.multipliers.len() > 1 || self.bias.len() > 1;
        let width = if per_channel { channels.max(1) } else { 1 };
        let fixed: Vec<(i64, FixedMultiplier)> = (0..width)
            .map(|c| {
                let b = self.bias.get(c).or(self.bias.first()).copied().unwrap_or(0);
                let m = self.multipliers.get(c).or(self.multipliers.first());
                (b as i64, m.copied().unwrap_or(zero))
            })
            .collect();
        Plan {
            bias: fixed.iter().map(|&(b, _)| b as f64).collect(),
            mantissa: fixed
                .iter()
                .map(|(_, m)| m.mantissa as f64 / (1u64 << 31) as f64)
                .collect(),
            pot: fixed
                .iter()
                // 2^shift built from its exponent bits (shift is in -31..=0 here)
                .map(|(_, m)| f64::from_bits(((1023 + m.shift.clamp(-31, 0)) as u64) << 52))
                .collect(),
            fast: fixed.iter().all(|(_, m)| m.shift <= 0),
            fixed,
        }
    }

    fn fill<A: Copy, O: Int>(
        &self,
        acc: &[A],
        to_f64: impl Fn(A) -> f64,
        ch: usize,
        out: &mut [O],
    ) {
        let plan = self.plan(ch);
        let width = plan.fixed.len();
        let (zp, lo, hi) = (self.zero_point, self.min, self.max);
        let (zpf, lof, hif) = (zp as f64, lo as f64, hi as f64);
        for (a_row, o_row) in acc.chunks(width).zip(out.chunks_mut(width)) {
            let mut exact = plan.fast;
            if exact {
                let params = plan.bias.iter().zip(&plan.mantissa).zip(&plan.pot);
                for ((&a, o), ((&b, &m), &p)) in a_row.iter().zip(o_row.iter_mut()).zip(params) {
                    let x = to_f64(a) + b;
                    exact &= x.abs() < EXACT_LIMIT;
                    // SaturatingRoundingDoublingHighMul: x * M / 2^31 rounded half up.
                    let high = floor_small(x * m + 0.5);
                    // RoundingDivideByPOT: rounded half away from zero.
                    let y = high * p;
                    let z = floor_small(y.abs() + 0.5).copysign(y);
                    let q = z + zpf;
                    let q = if q < lof { lof } else { q };
                    let q = if q > hif { hif } else { q };
                    // q is an integer in i32 range: its low mantissa bits after adding ROUNDER
                    // are the two's complement value (a cast that vectorizes).
                    *o = O::from_i32((q + ROUNDER).to_bits() as i32);
                }
            }
            if !exact {
                for ((&a, o), &(b, m)) in a_row.iter().zip(o_row.iter_mut()).zip(&plan.fixed) {
                    let x = to_f64(a) as i64 + b;
                    let v = x.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
                    *o = O::from_i32(m.apply(v).saturating_add(zp).clamp(lo, hi));
                }
            }
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
        let ch = input.shape().last().copied().unwrap_or(1);
        let out = with_int!(self.out, O => match input.datum_type() {
            DatumType::F32 => {
                let acc = slice_of::<f32>(&input)?;
                tensor_with::<O>(self.out, input.shape(), |o| self.fill(acc, f64::from, ch, o))?
            }
            DatumType::F64 => {
                let acc = slice_of::<f64>(&input)?;
                tensor_with::<O>(self.out, input.shape(), |o| self.fill(acc, |x| x, ch, o))?
            }
            DatumType::I32 => {
                let acc = slice_of::<i32>(&input)?;
                tensor_with::<O>(self.out, input.shape(), |o| self.fill(acc, f64::from, ch, o))?
            }
            dt => bail!("Requantize expects an f32, f64 or i32 accumulator, got {dt:?}"),
        });
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for Requantize {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(self.out.fact(inputs[0].shape.clone())))
    }
    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectorizable f64 path must agree with LiteRT's integer arithmetic everywhere.
    #[test]
    fn f64_path_matches_fixed_point() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..200 {
            let channels = 1 + (next() % 9) as usize;
            let multipliers: Vec<FixedMultiplier> = (0..channels)
                .map(|_| {
                    FixedMultiplier::from_real((next() % 1_000_000) as f64 / 1e6 * 0.999 + 1e-7)
                })
                .collect();
            let bias: Vec<i32> = (0..channels)
                .map(|_| (next() % 200_001) as i32 - 100_000)
                .collect();
            let op = Requantize {
                multipliers,
                bias,
                zero_point: (next() % 256) as i32 - 128,
                min: -128,
                max: 127,
                out: DatumType::I32,
            };
            // Mostly small accumulators, some at the exact-path limit and beyond it.
            let acc: Vec<f64> = (0..channels * 64)
                .map(|i| {
                    let r = next();
                    match i % 4 {
                        0 => (r % 4_194_304) as f64 - 2_097_152.0,
                        1 => (r % 8_388_608) as f64 - 4_194_304.0,
                        2 => (r % 2_000) as f64 - 1_000.0,
                        _ => ((r % 4_000_000_000) as i64 - 2_000_000_000) as f64,
                    }
                })
                .collect();
            let mut got = vec![0i32; acc.len()];
            op.fill(&acc, |x| x, channels, &mut got);
            for (i, (&a, &g)) in acc.iter().zip(&got).enumerate() {
                let (b, m) = op.plan(channels).fixed[i % channels];
                let v = (a as i64 + b).clamp(i32::MIN as i64, i32::MAX as i64) as i32;
                let want = m
                    .apply(v)
                    .saturating_add(op.zero_point)
                    .clamp(op.min, op.max);
                assert_eq!(g, want, "round {round}, acc {a}, bias {b}, {m:?}");
            }
        }
    }
}
