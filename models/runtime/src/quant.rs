//! TFLite quantization parameters and the fixed-point arithmetic LiteRT uses to requantize.

use serde::{Deserialize, Serialize};

/// Affine quantization: `real = scale * (q - zero_point)`, per tensor or per channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantParams {
    /// One scale per tensor, or one per channel along `axis`.
    pub scale: Vec<f32>,
    /// Zero points, same length as `scale`.
    pub zero_point: Vec<i64>,
    /// Channel axis for per-channel parameters.
    pub axis: usize,
}

impl QuantParams {
    /// Per-tensor parameters.
    pub fn per_tensor(scale: f32, zero_point: i64) -> Self {
        QuantParams {
            scale: vec![scale],
            zero_point: vec![zero_point],
            axis: 0,
        }
    }

    /// True when the parameters hold one value per channel.
    pub fn is_per_channel(&self) -> bool {
        self.scale.len() > 1
    }

    /// The per-tensor scale (first one).
    pub fn scale0(&self) -> f32 {
        self.scale.first().copied().unwrap_or(1.0)
    }

    /// The per-tensor zero point (first one).
    pub fn zp0(&self) -> i32 {
        self.zero_point.first().copied().unwrap_or(0) as i32
    }

    /// Scale of channel `c` (per-tensor parameters answer the same for every channel).
    pub fn scale_at(&self, c: usize) -> f32 {
        if self.scale.len() == 1 {
            self.scale0()
        } else {
            self.scale[c]
        }
    }

    /// Zero point of channel `c`.
    pub fn zp_at(&self, c: usize) -> i32 {
        if self.zero_point.len() == 1 {
            self.zp0()
        } else {
            self.zero_point[c] as i32
        }
    }
}

/// A real multiplier as LiteRT encodes it: a Q31 mantissa and a power-of-two exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FixedMultiplier {
    /// Q31 mantissa in [2^30, 2^31).
    pub mantissa: i32,
    /// Power-of-two exponent (positive: left shift).
    pub shift: i32,
}

impl FixedMultiplier {
    /// TFLite's `QuantizeMultiplier`: frexp, round to Q31, carry on overflow.
    pub fn from_real(m: f64) -> Self {
        if m == 0.0 || !m.is_finite() {
            return FixedMultiplier {
                mantissa: 0,
                shift: 0,
            };
        }
        let (frac, mut exp) = frexp(m);
        let mut q = (frac * (1i64 << 31) as f64).round() as i64;
        if q == 1i64 << 31 {
            q /= 2;
            exp += 1;
        }
        if exp < -31 {
            return FixedMultiplier {
                mantissa: 0,
                shift: 0,
            };
        }
        FixedMultiplier {
            mantissa: q as i32,
            shift: exp,
        }
    }

    /// TFLite's `MultiplyByQuantizedMultiplier` (double rounding).
    pub fn apply(self, x: i32) -> i32 {
        let left = self.shift.max(0);
        let right = (-self.shift).max(0);
        let shifted = x.wrapping_mul(1i32.wrapping_shl(left as u32));
        rounding_divide_by_pot(
            saturating_rounding_doubling_high_mul(shifted, self.mantissa),
            right,
        )
    }
}

/// `m = frac * 2^exp` with `frac` in [0.5, 1) (sign kept on `frac`).
fn frexp(m: f64) -> (f64, i32) {
    let mut exp = m.abs().log2().floor() as i32 + 1;
    let mut frac = m / 2f64.powi(exp);
    // log2 can be off by one ulp at exact powers of two
    if frac.abs() >= 1.0 {
        frac /= 2.0;
        exp += 1;
    } else if frac.abs() < 0.5 {
        frac *= 2.0;
        exp -= 1;
    }
    (frac, exp)
}

/// gemmlowp's `SaturatingRoundingDoublingHighMul`.
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge = if ab >= 0 {
        1i64 << 30
    } else {
        1 - (1i64 << 30)
    };
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp's `RoundingDivideByPOT`: divide by 2^exponent, rounding half away from zero.
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    if exponent <= 0 {
        return x;
    }
    let exponent = exponent.min(31);
    let mask = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// Quantizes one real value as TFLite's QUANTIZE does: round half away from zero, clamp.
pub fn quantize_value(x: f32, scale: f32, zero_point: i32, min: i32, max: i32) -> i32 {
    let q = round_half_away(x / scale);
    let q = if q.is_nan() { 0.0 } else { q };
    let q = (q as i64).saturating_add(zero_point as i64);
    q.clamp(min as i64, max as i64) as i32
}

/// `x.round()` (halves away from zero), bit-exact, without the libm call that `f32::round`
/// becomes on baseline x86-64: quantizing an image's inputs calls this per pixel.
#[inline]
pub fn round_half_away(x: f32) -> f32 {
    // From 2^23 on every f32 is an integer; NaN and infinities pass through unchanged.
    if x.is_nan() || x.abs() >= 8_388_608.0 {
        return x;
    }
    let t = x as i32 as f32; // truncation toward zero, exact in this range
    let frac = x - t; // exact: the fraction bits of x
    if frac >= 0.5 {
        t + 1.0
    } else if frac <= -0.5 {
        t - 1.0
    } else {
        // Keeps the sign of zero as f32::round does (-0.3 -> -0.0).
        t.copysign(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_half_away_matches_std_round_bit_for_bit() {
        let mut cases = vec![
            0.0f32,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            0.49999997,
            -0.49999997,
            0.50000006,
            8_388_607.5,
            -8_388_607.5,
            8_388_608.0,
            1e30,
            -1e30,
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            1e-45,
        ];
        // A deterministic spread over magnitudes and fractions.
        let mut state = 0x9E37_79B9_u32;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let x = f32::from_bits(state);
            if x.is_finite() {
                cases.push(x);
                cases.push(x.fract() * 1000.0);
            }
        }
        for x in cases {
            assert_eq!(round_half_away(x).to_bits(), x.round().to_bits(), "{x:e}");
        }
        assert!(round_half_away(f32::NAN).is_nan());
    }

    #[test]
    fn multiplier_round_trips_common_scales() {
        for m in [0.5, 0.25, 0.0039215, 1.0 / 3.0, 1.7, 0.9999999] {
            let f = FixedMultiplier::from_real(m);
            assert!(f.mantissa >= 1 << 30, "{m}: {f:?}");
            let back = f.mantissa as f64 / (1i64 << 31) as f64 * 2f64.powi(f.shift);
            assert!((back - m).abs() / m < 1e-8, "{m} -> {back}");
        }
    }

    #[test]
    fn apply_matches_rounded_product() {
        let f = FixedMultiplier::from_real(0.0123);
        for x in [-100_000, -12345, -1, 0, 1, 77, 40_000, 1_000_000] {
            let expect = (x as f64 * 0.0123).round() as i32;
            assert!(
                (f.apply(x) - expect).abs() <= 1,
                "{x}: {} vs {expect}",
                f.apply(x)
            );
        }
    }

    #[test]
    fn rounding_divide_rounds_half_away_from_zero() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(4, 1), 2);
        assert_eq!(rounding_divide_by_pot(-7, 2), -2);
    }

    #[test]
    fn quantize_clamps_and_rounds() {
        assert_eq!(quantize_value(0.5, 1.0, 0, -128, 127), 1);
        assert_eq!(quantize_value(-0.5, 1.0, 0, -128, 127), -1);
        assert_eq!(quantize_value(1e9, 0.1, 3, -128, 127), 127);
        assert_eq!(quantize_value(f32::NAN, 0.1, 3, -128, 127), 3);
    }
}
