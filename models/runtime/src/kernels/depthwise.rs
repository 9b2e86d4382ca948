//! Depthwise NHWC convolution with multiplier 1: every channel convolved with its own window.
//!
//! Channels sit in vector lanes: for each output pixel a block of `LANES` channels accumulates
//! over the window's taps, each tap reading `LANES` adjacent input values and weights. The input
//! is centered and zero-padded once ([`Window::pad`]). Accumulators are f32 (exact for integer
//! models while every partial sum stays below 2^24, as for [`super::DirectConv`]) or i32.

use tract_core::internal::*;

use super::conv_tiles::{FusedClamp, Mac};
use super::window::Window;
use super::{slice_of, tensor_with};

/// Channels per block: one AVX-512 register of f32 or i32, two AVX2 ones.
const LANES: usize = 16;

/// A depthwise convolution producing the raw accumulators (plus an initial per-channel value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepthwiseConv {
    /// The sliding window.
    pub window: Window,
    /// Zero point subtracted from integer inputs (0 for float inputs).
    pub input_zero_point: i32,
    /// The fused activation of a float convolution.
    clamp: FusedClamp,
    channels: usize,
    /// `[kh * kw][channels]`: TFLite's `[1, kh, kw, channels]` as it is.
    weights: Arc<Tensor>,
    /// Accumulator start values, one per channel (the float bias, or zeros).
    init: Arc<Tensor>,
}

impl DepthwiseConv {
    /// Builds the op from TFLite depthwise weights `[1, kh, kw, channels]` (already centered for
    /// integer models) and per-channel start values; `acc` is f32 or i32.
    pub fn new(
        weights: &Tensor,
        init: &[f32],
        acc: DatumType,
        strides: [usize; 2],
        dilations: [usize; 2],
        same: bool,
        input_zero_point: i32,
    ) -> TractResult<DepthwiseConv> {
        let s = weights.shape();
        ensure!(
            s.len() == 4 && s[0] == 1,
            "depthwise weights must be [1, kh, kw, channels], got {s:?}"
        );
        let (kh, kw, channels) = (s[1], s[2], s[3]);
        ensure!(
            kh > 0 && kw > 0 && channels > 0,
            "empty depthwise window {s:?}"
        );
        ensure!(
            init.len() == channels,
            "{} start values for {channels} channels",
            init.len()
        );
        let weights = weights
            .cast_to_dt(acc)?
            .into_owned()
            .into_shape(&[kh * kw, channels])?;
        let init = Tensor::from_shape(&[channels], init)?
            .cast_to_dt(acc)?
            .into_owned();
        Ok(DepthwiseConv {
            window: Window::new([kh, kw], strides, dilations, same),
            input_zero_point,
            clamp: FusedClamp::default(),
            channels,
            weights: Arc::new(weights),
            init: Arc::new(init),
        })
    }

    /// Clamps the (float) results to `[lo, hi]` when given: the fused activation of a float
    /// convolution.
    pub fn with_clamp(mut self, bounds: Option<(f32, f32)>) -> DepthwiseConv {
        self.clamp = FusedClamp::new(bounds);
        self
    }

    fn run<A: Mac>(&self, input: &Tensor) -> TractResult<Tensor> {
        let &[n, h, w, c] = input.shape() else {
            bail!(
                "depthwise convolution expects NHWC, got {:?}",
                input.shape()
            );
        };
        ensure!(
            c == self.channels,
            "input has {c} channels, weights expect {}",
            self.channels
        );
        let padded = self
            .window
            .pad::<A>(input, [n, h, w, c], self.input_zero_point)?;
        let job = DwJob {
            xp: &padded.xp,
            bases: &padded.bases,
            taps: &self.window.taps(padded.cols, c),
            weights: slice_of::<A>(&self.weights)?,
            init: slice_of::<A>(&self.init)?,
        };
        let [oh, ow] = padded.out;
        tensor_with::<A>(A::datum_type(), &[n, oh, ow, c], |out| {
            pixels_dispatch(&job, out);
            self.clamp.apply(out);
        })
    }
}

/// Everything the pixel loop reads.
struct DwJob<'a, A> {
    /// The centered, zero-padded NHWC input.
    xp: &'a [A],
    /// Offset in `xp` of each output pixel's window.
    bases: &'a [usize],
    /// Offset of each tap from the window's base.
    taps: &'a [usize],
    /// `[taps][channels]`.
    weights: &'a [A],
    /// Start values per channel.
    init: &'a [A],
}

/// `pixels` compiled for the widest vector unit the CPU has (the baseline x86-64 build has
/// 4-lane SSE2 only). No fused multiply-add: the arithmetic, and so the result, is the same on
/// every path.
fn pixels_dispatch<A: Mac>(job: &DwJob<A>, out: &mut [A]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            #[allow(unsafe_code)]
            unsafe {
                pixels_avx512(job, out)
            };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            #[allow(unsafe_code)]
            unsafe {
                pixels_avx2(job, out)
            };
            return;
        }
    }
    pixels(job, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn pixels_avx512<A: Mac>(job: &DwJob<A>, out: &mut [A]) {
    pixels(job, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn pixels_avx2<A: Mac>(job: &DwJob<A>, out: &mut [A]) {
    pixels(job, out)
}

/// Every output pixel, `LANES` channels at a time (the accumulators stay in registers across
/// the taps), then the remaining channels one by one.
#[inline(always)]
fn pixels<A: Mac>(job: &DwJob<A>, out: &mut [A]) {
    let c = job.init.len();
    let full = c - c % LANES;
    for (&base, out) in job.bases.iter().zip(out.chunks_exact_mut(c)) {
        for c0 in (0..full).step_by(LANES) {
            let mut acc = [A::default(); LANES];
            acc.copy_from_slice(&job.init[c0..c0 + LANES]);
            for (t, &offset) in job.taps.iter().enumerate() {
                let x = &job.xp[base + offset + c0..][..LANES];
                let w = &job.weights[t * c + c0..][..LANES];
                for j in 0..LANES {
                    acc[j] = acc[j] + x[j] * w[j];
                }
            }
            out[c0..c0 + LANES].copy_from_slice(&acc);
        }
        for (ch, out) in out.iter_mut().enumerate().skip(full) {
            let mut acc = job.init[ch];
            for (t, &offset) in job.taps.iter().enumerate() {
                acc = acc + job.xp[base + offset + ch] * job.weights[t * c + ch];
            }
            *out = acc;
        }
    }
}

impl Op for DepthwiseConv {
    fn name(&self) -> StaticName {
        "LitehouseDepthwiseConv".into()
    }
    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{} over {} channels, zp {}, acc {:?}",
            self.window,
            self.channels,
            self.input_zero_point,
            self.init.datum_type()
        )])
    }
    op_as_typed_op!();
}

impl EvalOp for DepthwiseConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let out = match self.init.datum_type() {
            DatumType::F32 => self.run::<f32>(&input)?,
            DatumType::I32 => self.run::<i32>(&input)?,
            dt => bail!("DepthwiseConv accumulates in f32 or i32, not {dt:?}"),
        };
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for DepthwiseConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let s = &inputs[0].shape;
        ensure!(
            s.rank() == 4,
            "depthwise convolution expects NHWC, got rank {}",
            s.rank()
        );
        let [(oh, _), (ow, _)] = self
            .window
            .output_geometry(s[1].to_usize()?, s[2].to_usize()?)?;
        Ok(tvec!(self.init.datum_type().fact(tvec![
            s[0].clone(),
            oh.to_dim(),
            ow.to_dim(),
            self.channels.to_dim()
        ])))
    }
    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_rng;
    use crate::kernels::window::window_geometry;

    /// Random geometries (channel counts around the block size, strides, dilations, both
    /// paddings) in f32 and i32 against the textbook loop, exactly.
    #[test]
    fn matches_the_reference_loop() {
        let mut rng = test_rng(0xd3a7_5eed);
        let mut ran = 0;
        for case in 0..60 {
            let mut pick = |lo: usize, hi: usize| lo + (rng() as usize) % (hi - lo + 1);
            let (n, h, w, c) = (pick(1, 2), pick(1, 9), pick(1, 9), pick(1, 40));
            let (kh, kw) = (pick(1, 3), pick(1, 3));
            let strides = [pick(1, 2), pick(1, 2)];
            let dil = [pick(1, 2), pick(1, 2)];
            let same = case % 2 == 0;
            let zp = pick(0, 40) as i32 - 20;
            let x: Vec<i8> = (0..n * h * w * c)
                .map(|_| pick(0, 255) as u8 as i8)
                .collect();
            let wt: Vec<i32> = (0..kh * kw * c)
                .map(|_| pick(0, 254) as i32 - 127)
                .collect();
            let bias: Vec<i32> = (0..c).map(|_| pick(0, 2000) as i32 - 1000).collect();
            let geometry = [0, 1].map(|a| {
                let (size, k) = ([h, w][a], [kh, kw][a]);
                window_geometry(size, k, strides[a], dil[a], same)
            });
            let [Some((oh, ph)), Some((ow, pw))] = geometry else {
                continue;
            };
            let mut want = vec![0i64; n * oh * ow * c];
            for b in 0..n {
                for oy in 0..oh {
                    for ox in 0..ow {
                        for ch in 0..c {
                            let mut acc = bias[ch] as i64;
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let y = (oy * strides[0] + ky * dil[0]) as isize - ph as isize;
                                    let xx = (ox * strides[1] + kx * dil[1]) as isize - pw as isize;
                                    if y < 0 || xx < 0 || y as usize >= h || xx as usize >= w {
                                        continue;
                                    }
                                    let xi = ((b * h + y as usize) * w + xx as usize) * c + ch;
                                    let wi = (ky * kw + kx) * c + ch;
                                    acc += (x[xi] as i64 - zp as i64) * wt[wi] as i64;
                                }
                            }
                            want[((b * oh + oy) * ow + ox) * c + ch] = acc;
                        }
                    }
                }
            }
            let wtensor = Tensor::from_shape(&[1, kh, kw, c], &wt).unwrap();
            let init: Vec<f32> = bias.iter().map(|&b| b as f32).collect();
            let input = Tensor::from_shape(&[n, h, w, c], &x).unwrap();
            for acc in [f32::datum_type(), i32::datum_type()] {
                let op = DepthwiseConv::new(&wtensor, &init, acc, strides, dil, same, zp).unwrap();
                let got = op
                    .eval(
                        &EvalContext::out_of_plan(),
                        tvec!(input.clone().into_tvalue()),
                    )
                    .unwrap()
                    .remove(0);
                assert_eq!(got.shape(), &[n, oh, ow, c], "case {case}");
                let got = got.cast_to::<i64>().unwrap();
                let got = slice_of::<i64>(&got).unwrap();
                assert_eq!(got, &want[..], "case {case} acc {acc:?}");
            }
            // The portable loop, which the dispatch does not pick on a vector CPU.
            let op = DepthwiseConv::new(&wtensor, &init, f32::datum_type(), strides, dil, same, zp)
                .unwrap();
            let padded = op.window.pad::<f32>(&input, [n, h, w, c], zp).unwrap();
            let job = DwJob {
                xp: &padded.xp,
                bases: &padded.bases,
                taps: &op.window.taps(padded.cols, c),
                weights: slice_of::<f32>(&op.weights).unwrap(),
                init: slice_of::<f32>(&op.init).unwrap(),
            };
            let mut out = vec![0f32; want.len()];
            pixels(&job, &mut out);
            let out: Vec<i64> = out.iter().map(|&v| v as i64).collect();
            assert_eq!(out, want, "case {case} portable");
            ran += 1;
        }
        assert!(ran >= 30, "only {ran} geometries were valid");
    }

    #[test]
    fn rejects_a_channel_mismatch() {
        let w = Tensor::zero::<f32>(&[1, 3, 3, 8]).unwrap();
        let op =
            DepthwiseConv::new(&w, &[0.0; 8], f32::datum_type(), [1, 1], [1, 1], true, 0).unwrap();
        let x = Tensor::zero::<f32>(&[1, 5, 5, 4]).unwrap();
        let err = op
            .eval(&EvalContext::out_of_plan(), tvec!(x.into_tvalue()))
            .unwrap_err();
        assert!(err.to_string().contains("4 channels"), "{err}");
    }
}
