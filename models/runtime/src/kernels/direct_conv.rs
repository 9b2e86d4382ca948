//! Direct NHWC convolution, and FULLY_CONNECTED as its 1x1 case, without an im2col buffer.
//!
//! The input is centered (integer inputs minus their zero point) into a zero-padded copy once;
//! then each tile of output pixels by output channels accumulates straight from that copy: NHWC
//! keeps every tap's input channels contiguous, so the tap offsets are the only indexing. The
//! weights are packed at load time into panels of `NR` output channels.
//!
//! Accumulators are f32 or i32. For integer models the importer picks f32 only when every
//! partial sum stays below 2^24, where f32 holds integers exactly and the order of additions
//! cannot change the result; i32 otherwise. Float models see the rounding of fused
//! multiply-adds where the CPU has them, and of a different summation order than LiteRT's, both
//! well inside the float tolerance.

use tract_core::internal::*;

use super::conv_tiles::{FusedClamp, Job, Mac, NR};
use super::window::Window;
use super::{slice_of, tensor_with};

/// A direct convolution producing the raw accumulators (plus an initial per-channel value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectConv {
    /// The sliding window.
    pub window: Window,
    /// Zero point subtracted from integer inputs (0 for float inputs).
    pub input_zero_point: i32,
    /// The fused activation of a float convolution.
    clamp: FusedClamp,
    cin: usize,
    cout: usize,
    /// `[cout / NR rounded up][kh * kw * cin][NR]`, zero beyond `cout`.
    panels: Arc<Tensor>,
    /// Accumulator start values, one per output channel (the float bias, or zeros).
    init: Arc<Tensor>,
}

impl DirectConv {
    /// Builds the op from OHWI weights `[cout, kh, kw, cin]` (already centered for integer
    /// models) and per-channel start values; `acc` is f32 or i32.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        weights: &Tensor,
        init: &[f32],
        acc: DatumType,
        strides: [usize; 2],
        dilations: [usize; 2],
        same: bool,
        input_zero_point: i32,
    ) -> TractResult<DirectConv> {
        let s = weights.shape();
        ensure!(s.len() == 4, "DirectConv weights must be OHWI, got {s:?}");
        let (cout, kh, kw, cin) = (s[0], s[1], s[2], s[3]);
        ensure!(
            kh > 0 && kw > 0 && cin > 0,
            "empty convolution window {s:?}"
        );
        ensure!(
            init.len() == cout,
            "{} start values for {cout} channels",
            init.len()
        );
        let depth = kh * kw * cin;
        let tiles = cout.div_ceil(NR);
        let w = weights.cast_to::<f32>()?;
        let w = slice_of::<f32>(&w)?;
        let mut packed = vec![0f32; tiles * depth * NR];
        for o in 0..cout {
            let (t, j) = (o / NR, o % NR);
            for k in 0..depth {
                packed[(t * depth + k) * NR + j] = w[o * depth + k];
            }
        }
        let panels = Tensor::from_shape(&[tiles, depth, NR], &packed)?
            .cast_to_dt(acc)?
            .into_owned();
        let init = Tensor::from_shape(&[cout], init)?
            .cast_to_dt(acc)?
            .into_owned();
        Ok(DirectConv {
            window: Window::new([kh, kw], strides, dilations, same),
            input_zero_point,
            clamp: FusedClamp::default(),
            cin,
            cout,
            panels: Arc::new(panels),
            init: Arc::new(init),
        })
    }

    /// Clamps the (float) results to `[lo, hi]` when given: the fused activation of a float
    /// convolution.
    pub fn with_clamp(mut self, bounds: Option<(f32, f32)>) -> DirectConv {
        self.clamp = FusedClamp::new(bounds);
        self
    }

    /// NHWC dimensions of an input of rank 4, or rank 2 (`[n, k]` read as `[n, 1, 1, k]`).
    fn nhwc(shape: &[usize]) -> TractResult<[usize; 4]> {
        match *shape {
            [n, h, w, c] => Ok([n, h, w, c]),
            [n, c] => Ok([n, 1, 1, c]),
            _ => bail!("DirectConv expects NHWC or [rows, depth], got {shape:?}"),
        }
    }

    /// Runs the convolution with `kernel` (`Job::dispatch`, or one variant in tests).
    fn run<A: Mac>(
        &self,
        input: &Tensor,
        kernel: impl Fn(&Job<A>, &mut [A]),
    ) -> TractResult<Tensor> {
        let dims = Self::nhwc(input.shape())?;
        ensure!(
            dims[3] == self.cin,
            "input has {} channels, weights expect {}",
            dims[3],
            self.cin
        );
        let padded = self.window.pad::<A>(input, dims, self.input_zero_point)?;
        let (c, cols, win) = (self.cin, padded.cols, &self.window);
        // Undilated, a window row's taps are adjacent in NHWC: one run of kw * c values.
        let (segments, run) = if win.dilations[1] == 1 {
            let rows = (0..win.kernel[0]).map(|ky| ky * win.dilations[0] * cols * c);
            (rows.collect::<Vec<_>>(), win.kernel[1] * c)
        } else {
            (win.taps(cols, c), c)
        };
        let job = Job {
            xp: &padded.xp,
            bases: &padded.bases,
            segments: &segments,
            run,
            cout: self.cout,
            panels: slice_of::<A>(&self.panels)?,
            init: slice_of::<A>(&self.init)?,
        };
        let [oh, ow] = padded.out;
        let shape: TVec<usize> = if input.rank() == 2 {
            tvec![dims[0], self.cout]
        } else {
            tvec![dims[0], oh, ow, self.cout]
        };
        tensor_with::<A>(A::datum_type(), &shape, |out| {
            kernel(&job, out);
            self.clamp.apply(out);
        })
    }
}

impl Op for DirectConv {
    fn name(&self) -> StaticName {
        "LitehouseDirectConv".into()
    }
    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{} channels -> {}, {}, zp {}, acc {:?}",
            self.cin,
            self.cout,
            self.window,
            self.input_zero_point,
            self.panels.datum_type()
        )])
    }
    op_as_typed_op!();
}

impl EvalOp for DirectConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let out = match self.panels.datum_type() {
            DatumType::F32 => self.run::<f32>(&input, f32::dispatch)?,
            DatumType::I32 => self.run::<i32>(&input, i32::dispatch)?,
            dt => bail!("DirectConv accumulates in f32 or i32, not {dt:?}"),
        };
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for DirectConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let s = &inputs[0].shape;
        let dt = self.panels.datum_type();
        match s.rank() {
            2 => Ok(tvec!(dt.fact(tvec![s[0].clone(), self.cout.to_dim()]))),
            4 => {
                let [(oh, _), (ow, _)] = self
                    .window
                    .output_geometry(s[1].to_usize()?, s[2].to_usize()?)?;
                Ok(tvec!(dt.fact(tvec![
                    s[0].clone(),
                    oh.to_dim(),
                    ow.to_dim(),
                    self.cout.to_dim()
                ])))
            }
            r => bail!("DirectConv expects NHWC or [rows, depth], got rank {r}"),
        }
    }
    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::conv_tiles::f32_variants;
    use crate::kernels::test_rng;
    use crate::kernels::window::window_geometry;

    /// The textbook loop: every output as a sum over the window of input minus zero point times
    /// weight, padding contributing nothing.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        x: &[i8],
        [n, h, w, c]: [usize; 4],
        wt: &[i32],
        [cout, kh, kw]: [usize; 3],
        strides: [usize; 2],
        dil: [usize; 2],
        same: bool,
        zp: i32,
    ) -> (Vec<i64>, [usize; 2]) {
        let (oh, ph) = window_geometry(h, kh, strides[0], dil[0], same).unwrap_or((0, 0));
        let (ow, pw) = window_geometry(w, kw, strides[1], dil[1], same).unwrap_or((0, 0));
        let mut out = vec![0i64; n * oh * ow * cout];
        for b in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    for o in 0..cout {
                        let mut acc = 0i64;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let y = (oy * strides[0] + ky * dil[0]) as isize - ph as isize;
                                let xx = (ox * strides[1] + kx * dil[1]) as isize - pw as isize;
                                if y < 0 || xx < 0 || y as usize >= h || xx as usize >= w {
                                    continue;
                                }
                                for ci in 0..c {
                                    let xi = ((b * h + y as usize) * w + xx as usize) * c + ci;
                                    let wi = ((o * kh + ky) * kw + kx) * c + ci;
                                    acc += (x[xi] as i64 - zp as i64) * wt[wi] as i64;
                                }
                            }
                        }
                        out[((b * oh + oy) * ow + ox) * cout + o] = acc;
                    }
                }
            }
        }
        (out, [oh, ow])
    }

    /// Random geometries (odd channel counts, strides, dilations, both paddings, pixel counts
    /// off the tile size) in f32 and i32 against the reference loop, exactly.
    #[test]
    fn matches_the_reference_loop() {
        let mut rng = test_rng(0x5eed_c0de);
        let mut ran = 0;
        for case in 0..60 {
            let mut pick = |lo: usize, hi: usize| lo + (rng() as usize) % (hi - lo + 1);
            let (n, h, w, c) = (pick(1, 3), pick(1, 9), pick(1, 9), pick(1, 19));
            let (cout, kh, kw) = (pick(1, 90), pick(1, 3), pick(1, 3));
            let strides = [pick(1, 2), pick(1, 2)];
            let dil = [pick(1, 2), pick(1, 2)];
            let same = case % 2 == 0;
            let zp = pick(0, 40) as i32 - 20;
            let x: Vec<i8> = (0..n * h * w * c)
                .map(|_| pick(0, 255) as u8 as i8)
                .collect();
            let wt: Vec<i32> = (0..cout * kh * kw * c)
                .map(|_| pick(0, 254) as i32 - 127)
                .collect();
            let (want, [oh, ow]) = reference(
                &x,
                [n, h, w, c],
                &wt,
                [cout, kh, kw],
                strides,
                dil,
                same,
                zp,
            );
            if oh == 0 || ow == 0 {
                continue;
            }
            let wtensor = Tensor::from_shape(&[cout, kh, kw, c], &wt).unwrap();
            let input = Tensor::from_shape(&[n, h, w, c], &x).unwrap();
            for acc in [f32::datum_type(), i32::datum_type()] {
                let op = DirectConv::new(&wtensor, &vec![0.0; cout], acc, strides, dil, same, zp)
                    .unwrap();
                let got = op.eval(
                    &EvalContext::out_of_plan(),
                    tvec!(input.clone().into_tvalue()),
                );
                let got = got.unwrap().remove(0);
                let got = got.cast_to::<i64>().unwrap();
                assert_eq!(got.shape(), &[n, oh, ow, cout], "case {case}");
                let got = slice_of::<i64>(&got).unwrap();
                assert_eq!(got, &want[..], "case {case} acc {acc:?}");
            }
            // The variants the dispatch does not pick on this CPU.
            let op = DirectConv::new(
                &wtensor,
                &vec![0.0; cout],
                f32::datum_type(),
                strides,
                dil,
                same,
                zp,
            )
            .unwrap();
            for (name, kernel) in f32_variants() {
                let got = op.run::<f32>(&input, kernel).unwrap();
                let got: Vec<i64> = slice_of::<f32>(&got)
                    .unwrap()
                    .iter()
                    .map(|&v| v as i64)
                    .collect();
                assert_eq!(got, want, "case {case} {name}");
            }
            ran += 1;
        }
        assert!(ran >= 30, "only {ran} geometries were valid");
    }

    /// A rank-2 input is a fully connected layer: `[rows, k]` times `[cout, k]` plus the bias.
    #[test]
    fn rank_two_is_fully_connected() {
        let (rows, k, cout) = (6usize, 23usize, 19usize);
        let x: Vec<f32> = (0..rows * k).map(|i| (i % 7) as f32 - 3.0).collect();
        let wt: Vec<f32> = (0..cout * k).map(|i| (i % 5) as f32 * 0.5).collect();
        let bias: Vec<f32> = (0..cout).map(|o| o as f32).collect();
        let wtensor = Tensor::from_shape(&[cout, 1, 1, k], &wt).unwrap();
        let op =
            DirectConv::new(&wtensor, &bias, f32::datum_type(), [1, 1], [1, 1], false, 0).unwrap();
        let input = Tensor::from_shape(&[rows, k], &x).unwrap();
        let got = op
            .eval(&EvalContext::out_of_plan(), tvec!(input.into_tvalue()))
            .unwrap()
            .remove(0);
        assert_eq!(got.shape(), &[rows, cout]);
        let got = slice_of::<f32>(&got).unwrap();
        for r in 0..rows {
            for o in 0..cout {
                let want: f32 = bias[o] + (0..k).map(|i| x[r * k + i] * wt[o * k + i]).sum::<f32>();
                assert_eq!(got[r * cout + o], want, "row {r} channel {o}");
            }
        }
    }
}
