//! LiteRT's requantization of an integer accumulator to an 8-bit output, exact to its fixed-point
//! arithmetic: a vectorized f32 estimate settles almost every element, the integer path the rest.

use tract_core::internal::*;

use super::{slice_of, tensor_with, with_int, Int, ROUNDER, ROUNDER_BITS};
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
        write!(f, "plan of {} channel(s)", self.0.fixed.len())
    }
}

/// Accumulators at or above this magnitude skip the f32 estimate: below it `acc + bias` (with
/// `|bias| < 2^23`) is an exact f32 integer.
const F32_EXACT: f32 = (1u32 << 23) as f32;

/// Per-channel constants of the f32 estimate, as slices the inner loop can vectorize over.
#[derive(Default)]
struct Plan {
    bias: Vec<f32>,
    /// `M * 2^(shift - 31)`, the real multiplier, rounded to f32.
    multiplier: Vec<f32>,
    /// Distance from a half-integer under which the estimate cannot decide the rounding; 1.0 for
    /// channels the estimate does not cover (those always take the exact path).
    band: Vec<f32>,
    fixed: Vec<(i64, FixedMultiplier)>,
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
        // The estimate is off from the real product by at most 2^-22 of its magnitude (two f32
        // roundings), and the magnitude is at most the clamp range plus one after clamping.
        let reach = (self.min - self.zero_point)
            .unsigned_abs()
            .max((self.max - self.zero_point).unsigned_abs()) as f64
            + 2.0;
        let estimate_error = reach * pow2(-22);
        let mut plan = Plan {
            bias: Vec::with_capacity(width),
            multiplier: Vec::with_capacity(width),
            band: Vec::with_capacity(width),
            fixed: Vec::with_capacity(width),
        };
        for c in 0..distinct {
            let b = self.bias.get(c).or(self.bias.first()).copied().unwrap_or(0) as i64;
            let m = self.multipliers.get(c).or(self.multipliers.first());
            let m = m.copied().unwrap_or(zero);
            let covered = m.shift <= 0 && m.mantissa >= 0 && b.abs() < 1 << 23;
            let right = -m.shift;
            // The fixed-point high multiply rounds once at 2^-31, i.e. by up to 0.5 / 2^right
            // in the final units, before the rounding shift.
            let band = pow2(-1 - right) + estimate_error;
            plan.bias.push(b as f32);
            plan.multiplier
                .push((m.mantissa as f64 * pow2(-31 - right)) as f32);
            plan.band
                .push(if covered { band.min(1.0) as f32 } else { 1.0 });
            plan.fixed.push((b, m));
        }
        for j in distinct..width {
            let c = j % distinct;
            plan.bias.push(plan.bias[c]);
            plan.multiplier.push(plan.multiplier[c]);
            plan.band.push(plan.band[c]);
            plan.fixed.push(plan.fixed[c]);
        }
        plan
    }

    /// Requantizes rows of `channels` accumulators. An f32 estimate decides almost every element
    /// exactly; the few whose real value lies too close to a rounding boundary (and channels the
    /// estimate does not cover) are recomputed with LiteRT's integer arithmetic.
    fn fill<A: Acc, O: Int>(&self, acc: &[A], out: &mut [O]) {
        let plan = &self.plan.0;
        let width = plan.fixed.len();
        let zp = self.zero_point as f32;
        let (lo, hi) = (self.min as f32, self.max as f32);
        let k = RowConsts {
            zp,
            lo,
            hi,
            // Clamp before rounding at one past the range: far values land on the bound exactly.
            ylo: lo - zp - 1.0,
            yhi: hi - zp + 1.0,
        };
        let mut unsure = vec![0u8; width];
        for (a_row, o_row) in acc.chunks(width).zip(out.chunks_mut(width)) {
            let unsure = &mut unsure[..a_row.len()];
            estimate_row_dispatch(a_row, plan, &k, o_row, unsure);
            // Scan the doubt flags a block at a time: they are rare.
            for (block, flags) in unsure.chunks(32).enumerate() {
                if flags.iter().fold(0u8, |a, &u| a | u) == 0 {
                    continue;
                }
                for (i, _) in flags.iter().enumerate().filter(|(_, &u)| u != 0) {
                    let j = block * 32 + i;
                    let (b, m) = plan.fixed[j];
                    let v = (a_row[j].to_i64() + b).clamp(i32::MIN as i64, i32::MAX as i64);
                    let exact = m.apply(v as i32).saturating_add(self.zero_point);
                    o_row[j] = O::from_i32(exact.clamp(self.min, self.max));
                }
            }
        }
    }
}

/// `2^e` for `e` in f64's normal exponent range, built from its bits (`powi` is a slow loop).
fn pow2(e: i32) -> f64 {
    f64::from_bits(((1023 + e.clamp(-1022, 1023)) as u64) << 52)
}

/// An accumulator element: an exact integer held as f32, f64 or i32.
trait Acc: Datum + Copy {
    /// As f32; values too large for f32 to hold exactly stay at or above 2^23, where the kernel
    /// flags them for the exact path.
    fn to_f32(self) -> f32;
    /// The exact integer.
    fn to_i64(self) -> i64;
}

macro_rules! impl_acc {
    ($($t:ty),*) => {$(
        impl Acc for $t {
            #[inline(always)]
            fn to_f32(self) -> f32 {
                self as f32
            }
            fn to_i64(self) -> i64 {
                self as i64
            }
        }
    )*};
}
impl_acc!(f32, f64, i32);

/// Per-op constants of the row kernel.
struct RowConsts {
    zp: f32,
    lo: f32,
    hi: f32,
    ylo: f32,
    yhi: f32,
}

/// `estimate_row` compiled for the widest vector unit the CPU has: the baseline x86-64 build
/// only has 4-lane SSE2; AVX2 doubles the lanes and AVX-512 doubles them again. The arithmetic
/// is identical (no fused multiply-add without fast-math), so the results are too.
fn estimate_row_dispatch<A: Acc, O: Int>(
    a: &[A],
    plan: &Plan,
    k: &RowConsts,
    out: &mut [O],
    unsure: &mut [u8],
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            #[allow(unsafe_code)]
            unsafe {
                estimate_row_avx512(a, plan, k, out, unsure)
            };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            #[allow(unsafe_code)]
            unsafe {
                estimate_row_avx2(a, plan, k, out, unsure)
            };
            return;
        }
    }
    estimate_row(a, plan, k, out, unsure)
}

/// `estimate_row` compiled with extra target features (the caller checks the CPU has them).
macro_rules! estimate_row_with {
    ($name:ident, $feature:literal) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        fn $name<A: Acc, O: Int>(
            a: &[A],
            plan: &Plan,
            k: &RowConsts,
            out: &mut [O],
            unsure: &mut [u8],
        ) {
            estimate_row(a, plan, k, out, unsure)
        }
    };
}
estimate_row_with!(estimate_row_avx512, "avx512f");
estimate_row_with!(estimate_row_avx2, "avx2");

/// The vectorized estimate of one row: quantized values into `out`, 1 in `unsure` where the
/// estimate cannot decide (or the accumulator is beyond f32's exact integers).
#[inline(always)]
fn estimate_row<A: Acc, O: Int>(
    a: &[A],
    plan: &Plan,
    k: &RowConsts,
    out: &mut [O],
    unsure: &mut [u8],
) {
    let n = a.len();
    let (bias, mult, band) = (&plan.bias[..n], &plan.multiplier[..n], &plan.band[..n]);
    let (out, unsure) = (&mut out[..n], &mut unsure[..n]);
    for j in 0..n {
        let x = a[j].to_f32();
        // Comparisons rather than f32::max/min: those handle NaN and do not vectorize as well;
        // a NaN accumulator is flagged by `big` and recomputed.
        let big = x.abs() >= F32_EXACT || x.is_nan();
        let y = (x + bias[j]) * mult[j];
        let y = if y < k.ylo { k.ylo } else { y };
        let y = if y > k.yhi { k.yhi } else { y };
        let r = (y + ROUNDER) - ROUNDER;
        let doubt = big | ((y - r).abs() > 0.5 - band[j]);
        unsure[j] = doubt as u8;
        let v = r + k.zp;
        let v = if v < k.lo { k.lo } else { v };
        let v = if v > k.hi { k.hi } else { v };
        out[j] = O::from_i32((v + ROUNDER).to_bits() as i32 - ROUNDER_BITS);
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

    /// The f32 estimate plus its exact fallback must agree with LiteRT's integer arithmetic
    /// everywhere: per-channel and per-tensor, multipliers above 1, 8- and 16-bit ranges,
    /// accumulators near and beyond the estimate's limits.
    #[test]
    fn estimate_matches_fixed_point() {
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
                        // multipliers above 1 take the exact path
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
