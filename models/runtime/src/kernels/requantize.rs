//! LiteRT's requantization of an integer accumulator to an 8-bit output, exact to its fixed-point
//! arithmetic: gemmlowp's two roundings written branch-free over i32 lanes (64-bit products), so
//! the compiler vectorizes them (AVX-512 where the CPU has it).

use tract_core::internal::*;

use super::{slice_of, tensor_with, with_int, Int};
use crate::quant::FixedMultiplier;

/// `out = clamp(MultiplyByQuantizedMultiplier(acc + bias[c], m[c]) + zp, min, max)`, with `c` the
/// last axis. The accumulator may arrive as f32/f64 holding exact integers (the fast matmul path)
/// or as i32.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requantize {
    multipliers: Vec<FixedMultiplier>,
    bias: Vec<i32>,
    zero_point: i32,
    min: i32,
    max: i32,
    out: DatumType,
    plan: CachedPlan,
}

/// The kernel's constants, derived once from the op's fields (so they take no part in its
/// identity: equality and hashing look at the fields alone).
#[derive(Clone)]
struct CachedPlan(Arc<Plan>);

impl PartialEq for CachedPlan {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for CachedPlan {}
impl std::hash::Hash for CachedPlan {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}
impl std::fmt::Debug for CachedPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "plan of {} lane(s)", self.0.bias.len())
    }
}

/// Per-channel constants as slices the row loop vectorizes over.
#[derive(Default)]
struct Plan {
    bias: Vec<i32>,
    /// Left shift (multipliers above 1).
    left: Vec<u32>,
    mantissa: Vec<i32>,
    /// Right shift of the rounding division, its mask `2^right - 1`, and half the mask.
    right: Vec<u32>,
    mask: Vec<i32>,
    half: Vec<i32>,
    /// A mantissa of i32::MIN (the one input gemmlowp's high multiply saturates on) sends the
    /// whole op to the scalar path.
    scalar: bool,
}

/// Shortest row the kernel runs on (per-tensor parameters, or a few channels repeated): long
/// enough to vectorize, short enough to stay in L1.
const MIN_ROW: usize = 256;

impl Requantize {
    /// `multipliers` and `bias` hold one value per output channel (the last axis) or a single one
    /// (an empty bias is zero); `min..=max` is the fused activation's range in the output's
    /// quantized domain; `out` is I8, U8, I16 or I32.
    pub fn new(
        multipliers: Vec<FixedMultiplier>,
        bias: Vec<i32>,
        zero_point: i32,
        (min, max): (i32, i32),
        out: DatumType,
    ) -> Self {
        let mut op = Requantize {
            multipliers,
            bias,
            zero_point,
            min,
            max,
            out,
            plan: CachedPlan(Arc::new(Plan::default())),
        };
        op.plan = CachedPlan(Arc::new(op.plan()));
        op
    }

    /// Channels along the last axis the op expects, or `None` when its parameters are per tensor.
    fn channels(&self) -> Option<usize> {
        let n = self.multipliers.len().max(self.bias.len());
        (n > 1).then_some(n)
    }

    /// Constants per output channel, repeated over whole pixels so every row is long enough to
    /// vectorize.
    fn plan(&self) -> Plan {
        let zero = FixedMultiplier {
            mantissa: 0,
            shift: 0,
        };
        let distinct = self.channels().unwrap_or(1);
        // Whole pixels of channels per row, repeated to at least `MIN_ROW` values.
        let width = distinct * (MIN_ROW / distinct).max(1);
        let mut plan = Plan::default();
        for j in 0..width {
            let c = j % distinct;
            let b = self.bias.get(c).or(self.bias.first()).copied().unwrap_or(0);
            let m = self.multipliers.get(c).or(self.multipliers.first());
            let m = m.copied().unwrap_or(zero);
            let right = (-m.shift).clamp(0, 31) as u32;
            let mask = ((1i64 << right) - 1) as i32;
            plan.bias.push(b);
            plan.left.push(m.shift.clamp(0, 31) as u32);
            plan.mantissa.push(m.mantissa);
            plan.right.push(right);
            plan.mask.push(mask);
            plan.half.push(mask >> 1);
            plan.scalar |= m.mantissa == i32::MIN;
        }
        plan
    }

    /// Requantizes rows of `channels` accumulators.
    fn fill<A: Acc, O: Int>(&self, acc: &[A], out: &mut [O]) {
        self.fill_with(acc, out, requantize_row_dispatch)
    }

    /// `fill` with a given row kernel (the dispatch, or one variant in tests).
    fn fill_with<A: Acc, O: Int>(
        &self,
        acc: &[A],
        out: &mut [O],
        row: impl Fn(&[A], &Plan, &RowConsts, &mut [O]),
    ) {
        let plan = &self.plan.0;
        let k = RowConsts {
            zp: self.zero_point,
            lo: self.min.saturating_sub(self.zero_point),
            hi: self.max.saturating_sub(self.zero_point),
        };
        let width = plan.bias.len();
        for (a_row, o_row) in acc.chunks(width).zip(out.chunks_mut(width)) {
            if plan.scalar {
                for (j, (a, o)) in a_row.iter().zip(o_row.iter_mut()).enumerate() {
                    let m = FixedMultiplier {
                        mantissa: plan.mantissa[j],
                        shift: plan.left[j] as i32 - plan.right[j] as i32,
                    };
                    let q = m.apply(a.plus_bias(plan.bias[j]));
                    let q = q.saturating_add(self.zero_point);
                    *o = O::from_i32(q.clamp(self.min, self.max));
                }
            } else {
                row(a_row, plan, &k, o_row);
            }
        }
    }
}

/// An accumulator element: an exact integer held as f32, f64 or i32.
trait Acc: Datum + Copy {
    /// `acc + bias`, clamped to i32's range (a NaN gives an arbitrary value, never a panic).
    fn plus_bias(self, bias: i32) -> i32;
}

/// 1.5 * 2^52: adding it to an integral f64 below 2^51 in magnitude leaves the integer in the
/// low bits of the sum's bit pattern, a conversion that vectorizes (Rust's saturating `as`
/// does not).
const F64_ROUNDER: f64 = 6_755_399_441_055_744.0;

/// An integral f64 within i32's range as i32 (NaN gives an arbitrary value, never a panic).
#[inline(always)]
fn f64_to_i32(x: f64) -> i32 {
    ((x + F64_ROUNDER).to_bits() as i64 - F64_ROUNDER.to_bits() as i64) as i32
}

impl Acc for f32 {
    /// f32 accumulators hold integers below 2^24 (the importer's choice): exact in f64.
    #[inline(always)]
    fn plus_bias(self, bias: i32) -> i32 {
        f64_to_i32(self as f64).saturating_add(bias)
    }
}
impl Acc for f64 {
    /// The sum is exact in f64; clamped before the conversion.
    #[inline(always)]
    fn plus_bias(self, bias: i32) -> i32 {
        let v = self + bias as f64;
        let v = if v < i32::MIN as f64 {
            i32::MIN as f64
        } else {
            v
        };
        let v = if v > i32::MAX as f64 {
            i32::MAX as f64
        } else {
            v
        };
        f64_to_i32(v)
    }
}
impl Acc for i32 {
    #[inline(always)]
    fn plus_bias(self, bias: i32) -> i32 {
        self.saturating_add(bias)
    }
}

/// Per-op constants of the row kernel.
struct RowConsts {
    zp: i32,
    /// The output range minus the zero point.
    lo: i32,
    hi: i32,
}

/// `requantize_row` compiled for the widest vector unit the CPU has: the baseline x86-64 build
/// only has SSE2 (no per-lane shifts, 4 lanes); AVX2 has 8 lanes, AVX-512 16 (with BW's byte
/// narrowing stores).
fn requantize_row_dispatch<A: Acc, O: Int>(a: &[A], plan: &Plan, k: &RowConsts, out: &mut [O]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512bw") {
            // SAFETY: the CPU supports AVX-512F and BW, checked just above.
            #[allow(unsafe_code)]
            unsafe {
                requantize_row_avx512(a, plan, k, out)
            };
            return;
        }
        if has!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            #[allow(unsafe_code)]
            unsafe {
                requantize_row_avx2(a, plan, k, out)
            };
            return;
        }
    }
    requantize_row(a, plan, k, out)
}

/// `requantize_row` compiled with extra target features (the caller checks the CPU has them).
macro_rules! requantize_row_with {
    ($name:ident, $feature:literal) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        fn $name<A: Acc, O: Int>(a: &[A], plan: &Plan, k: &RowConsts, out: &mut [O]) {
            requantize_row(a, plan, k, out)
        }
    };
}
requantize_row_with!(requantize_row_avx512, "avx512f,avx512bw");
requantize_row_with!(requantize_row_avx2, "avx2");

/// One row: `clamp(MultiplyByQuantizedMultiplier(acc + bias) + zp, lo, hi)`, exactly as
/// gemmlowp computes it, without branches.
#[inline(always)]
fn requantize_row<A: Acc, O: Int>(a: &[A], plan: &Plan, k: &RowConsts, out: &mut [O]) {
    let n = a.len();
    let (bias, left, mantissa) = (&plan.bias[..n], &plan.left[..n], &plan.mantissa[..n]);
    let (right, mask, half) = (&plan.right[..n], &plan.mask[..n], &plan.half[..n]);
    let out = &mut out[..n];
    for j in 0..n {
        let v = a[j].plus_bias(bias[j]).wrapping_shl(left[j]);
        // SaturatingRoundingDoublingHighMul: its nudge and truncating division amount to
        // rounding half up, i.e. floor((ab + 2^30) / 2^31) (saturation is the scalar path's).
        let ab = v as i64 * mantissa[j] as i64;
        let high = ((ab + (1 << 30)) >> 31) as i32;
        // RoundingDivideByPOT: halves away from zero.
        let threshold = half[j] + (high < 0) as i32;
        let rounded = (high >> right[j]) + ((high & mask[j]) > threshold) as i32;
        // Clamped before the zero point is added, so the addition cannot overflow.
        let q = if rounded < k.lo { k.lo } else { rounded };
        let q = if q > k.hi { k.hi } else { q };
        out[j] = O::from_i32(q + k.zp);
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
        if let Some(want) = self.channels() {
            ensure!(
                want == ch,
                "Requantize has {want} channel parameters for a last axis of {ch}"
            );
        }
        let out = with_int!(self.out, O => match input.datum_type() {
            DatumType::F32 => {
                let acc = slice_of::<f32>(&input)?;
                tensor_with::<O>(self.out, input.shape(), |o| {
                    self.fill(acc, o)
                })?
            }
            DatumType::F64 => {
                let acc = slice_of::<f64>(&input)?;
                tensor_with::<O>(self.out, input.shape(), |o| {
                    self.fill(acc, o)
                })?
            }
            DatumType::I32 => {
                let acc = slice_of::<i32>(&input)?;
                tensor_with::<O>(self.out, input.shape(), |o| {
                    self.fill(acc, o)
                })?
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

    /// The vectorized row must agree with LiteRT's integer arithmetic everywhere: per-channel
    /// and per-tensor, multipliers above 1, 8- and 16-bit ranges, accumulators of every type,
    /// near and beyond i32's range.
    #[test]
    fn row_matches_fixed_point() {
        let mut next = super::super::test_rng(0x2545_f491_4f6c_dd1du64);
        let mut checked = 0usize;
        for round in 0..400 {
            let channels = 1 + (next() % 40) as usize;
            let per_tensor = round % 3 == 0;
            let count = if per_tensor { 1 } else { channels };
            let multipliers: Vec<FixedMultiplier> = (0..count)
                .map(|i| {
                    let unit = (next() % 1_000_000) as f64 / 1e6;
                    let real = match i % 5 {
                        // multipliers above 1 shift left first
                        0 if round % 7 == 0 => 1.0 + 3.0 * unit,
                        1 => unit * 0.999 + 1e-7,
                        _ => unit * 0.01 + 1e-7,
                    };
                    FixedMultiplier::from_real(real)
                })
                .collect();
            let bias: Vec<i32> = (0..count)
                .map(|i| match i % 6 {
                    5 => (next() % 40_000_001) as i32 - 20_000_000,
                    _ => (next() % 200_001) as i32 - 100_000,
                })
                .collect();
            let (min, max) = if round % 4 == 1 {
                (-32768, 32767)
            } else {
                (-128, 127)
            };
            let zero_point = if max > 127 {
                0
            } else {
                (next() % 256) as i32 - 128
            };
            let op = Requantize::new(multipliers, bias, zero_point, (min, max), DatumType::I32);
            let acc: Vec<f64> = (0..channels * 64)
                .map(|i| {
                    let r = next();
                    match i % 5 {
                        0 => (r % 4_194_304) as f64 - 2_097_152.0,
                        1 => (r % 33_554_432) as f64 - 16_777_216.0,
                        2 => (r % 2_000) as f64 - 1_000.0,
                        3 => (r % 200_000) as f64 - 100_000.0,
                        _ => ((r % 4_000_000_000) as i64 - 2_000_000_000) as f64,
                    }
                })
                .collect();
            let want: Vec<i32> = acc
                .iter()
                .enumerate()
                .map(|(i, &a)| {
                    let c = if per_tensor { 0 } else { i % channels };
                    let (b, m) = (op.bias[c] as i64, op.multipliers[c]);
                    let v = (a as i64 + b).clamp(i32::MIN as i64, i32::MAX as i64) as i32;
                    m.apply(v)
                        .saturating_add(op.zero_point)
                        .clamp(op.min, op.max)
                })
                .collect();
            let mut got = vec![0i32; acc.len()];
            op.fill(&acc, &mut got);
            assert_eq!(got, want, "round {round}: f64 accumulators");
            // The variants the dispatch does not pick on this CPU.
            op.fill_with(&acc, &mut got, requantize_row);
            assert_eq!(got, want, "round {round}: portable");
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                #[allow(unsafe_code)]
                // SAFETY: the CPU supports AVX2, checked just above.
                op.fill_with(&acc, &mut got, |a, p, k, o| unsafe {
                    requantize_row_avx2(a, p, k, o)
                });
                assert_eq!(got, want, "round {round}: avx2");
            }
            // The same through f32 and i32 accumulators and an 8-bit output, as the matmul path
            // feeds them (values beyond f32's exact integers are the f64 case above).
            if max == 127 {
                let exact: Vec<bool> = acc.iter().map(|a| a.abs() < 16_777_216.0).collect();
                let a32: Vec<f32> = acc.iter().map(|&a| a as f32).collect();
                let mut got8 = vec![0i8; acc.len()];
                op.fill(&a32, &mut got8);
                let ai: Vec<i32> = acc.iter().map(|&a| a as i32).collect();
                let mut goti = vec![0i8; acc.len()];
                op.fill(&ai, &mut goti);
                for i in 0..acc.len() {
                    assert_eq!(goti[i] as i32, want[i], "round {round}: i32 acc {}", acc[i]);
                    if exact[i] {
                        assert_eq!(got8[i] as i32, want[i], "round {round}: f32 acc {}", acc[i]);
                    }
                }
            }
            checked += acc.len();
        }
        assert!(checked > 100_000);
    }
}
