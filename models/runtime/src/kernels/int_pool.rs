//! LiteRT's integer MAX_POOL_2D and AVERAGE_POOL_2D on NHWC 8-bit tensors, over the window
//! clipped to the input. Average: int32 sums divided by the clipped count with rounding half away
//! from zero (exact where a float round trip can be off by one step on ties). Max: the largest
//! value. Both then clamp to the fused activation.

use tract_core::internal::*;

use super::{slice_of, tensor_with, window_geometry, with_int, Int};

/// How a window is reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolReduce {
    /// Rounded mean of the values inside the input.
    Average,
    /// Largest value inside the input.
    Max,
}

/// Integer pooling; input and output share their quantization parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IntPool {
    /// The reduction.
    pub reduce: PoolReduce,
    /// Window height and width.
    pub kernel: [usize; 2],
    /// Strides along height and width.
    pub strides: [usize; 2],
    /// TFLite SAME padding (otherwise VALID).
    pub same: bool,
    /// Clamp range of the fused activation (quantized domain).
    pub min: i32,
    /// Upper clamp bound.
    pub max: i32,
}

impl IntPool {
    /// Output size and leading padding along spatial `axis` (0: height, 1: width).
    fn geometry(&self, size: usize, axis: usize) -> TractResult<(usize, usize)> {
        let (kernel, stride) = (self.kernel[axis], self.strides[axis]);
        window_geometry(size, kernel, stride, 1, self.same)
            .ok_or_else(|| format_err!("input size {size} is smaller than the {kernel} window"))
    }

    fn pool<T: Int>(&self, x: &[T], shape: &[usize], out: &mut [T]) -> TractResult<()> {
        let (n, h, w, c) = (shape[0], shape[1], shape[2], shape[3]);
        let (oh, pad_h) = self.geometry(h, 0)?;
        let (ow, pad_w) = self.geometry(w, 1)?;
        if c == 0 {
            return Ok(());
        }
        // The window clipped to the input along one axis.
        let clip = |o: usize, axis: usize, pad: usize, size: usize| {
            let start = (o * self.strides[axis]) as isize - pad as isize;
            let end = (start + self.kernel[axis] as isize).clamp(0, size as isize) as usize;
            start.max(0) as usize..end
        };
        let (lo, hi) = (T::from_i32(self.min), T::from_i32(self.max));
        let mut acc = vec![0i32; c];
        let mut outputs = out.chunks_exact_mut(c);
        for b in 0..n {
            for oy in 0..oh {
                let ys = clip(oy, 0, pad_h, h);
                for ox in 0..ow {
                    let xs = clip(ox, 1, pad_w, w);
                    let Some(o) = outputs.next() else {
                        bail!("IntPool output smaller than its shape");
                    };
                    let count = (ys.len() * xs.len()) as i32;
                    let mut pixels = ys.clone().flat_map(|y| {
                        let row = (b * h + y) * w;
                        xs.clone().map(move |xx| (row + xx) * c)
                    });
                    match self.reduce {
                        PoolReduce::Average => {
                            acc.fill(0);
                            for p in pixels {
                                sum_into(&mut acc, &x[p..p + c]);
                            }
                            for (dst, &a) in o.iter_mut().zip(&acc) {
                                let avg = if count == 0 {
                                    0
                                } else if a > 0 {
                                    (a + count / 2) / count
                                } else {
                                    (a - count / 2) / count
                                };
                                *dst = T::from_i32(avg.clamp(self.min, self.max));
                            }
                        }
                        PoolReduce::Max => {
                            // An empty window (only possible with padding larger than the
                            // window) gives the activation's lower bound.
                            match pixels.next() {
                                Some(p) => o.copy_from_slice(&x[p..p + c]),
                                None => o.fill(lo),
                            }
                            for p in pixels {
                                max_into(o, &x[p..p + c]);
                            }
                            for v in o.iter_mut() {
                                *v = (*v).clamp(lo, hi);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// `acc += x`, lane by lane (a loop the compiler vectorizes).
#[inline(always)]
fn sum_into<T: Int>(acc: &mut [i32], x: &[T]) {
    for (a, &v) in acc.iter_mut().zip(x) {
        *a += v.to_i32();
    }
}

/// `acc = max(acc, x)`, lane by lane.
#[inline(always)]
fn max_into<T: Int>(acc: &mut [T], x: &[T]) {
    for (a, &v) in acc.iter_mut().zip(x) {
        *a = if v > *a { v } else { *a };
    }
}

impl Op for IntPool {
    fn name(&self) -> StaticName {
        "LitehouseIntPool".into()
    }
    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{:?} kernel {:?} strides {:?} {}",
            self.reduce,
            self.kernel,
            self.strides,
            if self.same { "SAME" } else { "VALID" }
        )])
    }
    op_as_typed_op!();
}

impl EvalOp for IntPool {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = input.shape();
        ensure!(shape.len() == 4, "IntPool expects NHWC, got {shape:?}");
        let (oh, _) = self.geometry(shape[1], 0)?;
        let (ow, _) = self.geometry(shape[2], 1)?;
        let out_shape = [shape[0], oh, ow, shape[3]];
        let dt = input.datum_type();
        let out = with_int!(dt, T => {
            let x = slice_of::<T>(&input)?;
            let mut done = Ok(());
            let t = tensor_with::<T>(dt, &out_shape, |o| done = self.pool(x, shape, o))?;
            done?;
            t
        });
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for IntPool {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let s = &inputs[0].shape;
        ensure!(s.rank() == 4, "IntPool expects NHWC, got rank {}", s.rank());
        let (h, w) = (s[1].to_usize()?, s[2].to_usize()?);
        let (oh, _) = self.geometry(h, 0)?;
        let (ow, _) = self.geometry(w, 1)?;
        let shape: TVec<TDim> = tvec![s[0].clone(), oh.to_dim(), ow.to_dim(), s[3].clone()];
        Ok(tvec!(inputs[0].datum_type.fact(shape)))
    }
    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a direct transcription of LiteRT's reference loops, on SAME and VALID geometries
    /// with ties in both signs.
    #[test]
    fn matches_the_reference_loops() {
        let (n, h, w, c) = (2usize, 7usize, 6usize, 3usize);
        let x: Vec<i8> = (0..n * h * w * c)
            .map(|i| ((i * 37 + i / 5) % 256) as i32 - 128)
            .map(|v| v as i8)
            .collect();
        for &(kernel, strides, same) in &[
            ([2, 2], [2, 2], false),
            ([3, 3], [1, 1], true),
            ([3, 2], [2, 1], true),
            ([7, 6], [1, 1], false),
        ] {
            for reduce in [PoolReduce::Average, PoolReduce::Max] {
                let op = IntPool {
                    reduce,
                    kernel,
                    strides,
                    same,
                    min: -100,
                    max: 127,
                };
                let (oh, ph) = op.geometry(h, 0).unwrap();
                let (ow, pw) = op.geometry(w, 1).unwrap();
                let mut got = vec![0i8; n * oh * ow * c];
                op.pool(&x, &[n, h, w, c], &mut got).unwrap();
                for b in 0..n {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            for ch in 0..c {
                                let (mut acc, mut count, mut max) = (0i32, 0i32, i32::MIN);
                                for fy in 0..kernel[0] {
                                    for fx in 0..kernel[1] {
                                        let y = (oy * strides[0] + fy) as isize - ph as isize;
                                        let xx = (ox * strides[1] + fx) as isize - pw as isize;
                                        if y >= 0
                                            && xx >= 0
                                            && (y as usize) < h
                                            && (xx as usize) < w
                                        {
                                            let i =
                                                ((b * h + y as usize) * w + xx as usize) * c + ch;
                                            acc += x[i] as i32;
                                            count += 1;
                                            max = max.max(x[i] as i32);
                                        }
                                    }
                                }
                                let want = match reduce {
                                    PoolReduce::Average if acc > 0 => (acc + count / 2) / count,
                                    PoolReduce::Average => (acc - count / 2) / count,
                                    PoolReduce::Max => max,
                                }
                                .clamp(-100, 127);
                                let g = got[((b * oh + oy) * ow + ox) * c + ch] as i32;
                                assert_eq!(
                                    g, want,
                                    "{reduce:?} {kernel:?} {strides:?} same={same}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// A tensor without channels (a corrupt model can declare one) pools to nothing.
    #[test]
    fn no_channels_is_not_a_panic() {
        let op = IntPool {
            reduce: PoolReduce::Max,
            kernel: [2, 2],
            strides: [2, 2],
            same: false,
            min: -128,
            max: 127,
        };
        let x = Tensor::zero::<i8>(&[1, 4, 4, 0]).unwrap();
        let out = op
            .eval(&EvalContext::out_of_plan(), tvec!(x.into_tvalue()))
            .unwrap()
            .remove(0);
        assert_eq!(out.shape(), &[1, 2, 2, 0]);
    }
}
