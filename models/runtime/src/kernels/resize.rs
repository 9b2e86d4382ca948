//! TFLite's RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR on NHWC tensors, with its exact coordinate
//! conventions (`align_corners`, `half_pixel_centers`).

use tract_core::internal::*;

/// Interpolation of a resize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResizeKind {
    /// Bilinear (f32 input).
    Bilinear,
    /// Nearest neighbour (any element type).
    Nearest,
}

/// Resizes axes 1 and 2 of an NHWC tensor to `out_h` x `out_w`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResizeNhwc {
    /// Interpolation.
    pub kind: ResizeKind,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// TFLite `align_corners`.
    pub align_corners: bool,
    /// TFLite `half_pixel_centers`.
    pub half_pixel_centers: bool,
}

impl ResizeNhwc {
    fn scale(&self, input: usize, output: usize) -> f32 {
        if self.align_corners && output > 1 {
            (input as f32 - 1.0) / (output as f32 - 1.0)
        } else {
            input as f32 / output as f32
        }
    }

    fn nearest_index(&self, o: usize, input: usize, output: usize) -> usize {
        let scale = self.scale(input, output);
        let offset = if self.half_pixel_centers { 0.5 } else { 0.0 };
        let v = (o as f32 + offset) * scale;
        let v = if self.align_corners {
            v.round()
        } else {
            v.floor()
        };
        (v.max(0.0) as usize).min(input - 1)
    }

    /// (lower, upper, fraction) for each output coordinate.
    fn bilinear_axis(&self, input: usize, output: usize) -> Vec<(usize, usize, f32)> {
        let scale = self.scale(input, output);
        (0..output)
            .map(|o| {
                let v = if self.half_pixel_centers {
                    (o as f32 + 0.5) * scale - 0.5
                } else {
                    o as f32 * scale
                };
                let lower = (v.floor().max(0.0) as usize).min(input - 1);
                let upper = (v.ceil().max(0.0) as usize).min(input - 1);
                (lower, upper, v - lower as f32)
            })
            .collect()
    }

    fn nearest<T: Datum + Copy>(&self, input: &Tensor) -> TractResult<Tensor> {
        let (n, h, w, c) = dims4(input)?;
        let x = input.to_plain_array_view::<T>()?;
        let x = x.as_slice().context("contiguous input")?;
        let ys: Vec<usize> = (0..self.out_h)
            .map(|o| self.nearest_index(o, h, self.out_h))
            .collect();
        let xs: Vec<usize> = (0..self.out_w)
            .map(|o| self.nearest_index(o, w, self.out_w))
            .collect();
        let mut out = Vec::with_capacity(n * self.out_h * self.out_w * c);
        for b in 0..n {
            for &y in &ys {
                for &xx in &xs {
                    let base = ((b * h + y) * w + xx) * c;
                    out.extend_from_slice(&x[base..base + c]);
                }
            }
        }
        Tensor::from_shape(&[n, self.out_h, self.out_w, c], &out)
    }

    fn bilinear(&self, input: &Tensor) -> TractResult<Tensor> {
        let (n, h, w, c) = dims4(input)?;
        let x = input.cast_to::<f32>()?;
        let x = x.to_plain_array_view::<f32>()?;
        let x = x.as_slice().context("contiguous input")?;
        let ys = self.bilinear_axis(h, self.out_h);
        let xs = self.bilinear_axis(w, self.out_w);
        let mut out = Vec::with_capacity(n * self.out_h * self.out_w * c);
        let at = |b: usize, y: usize, xx: usize, ch: usize| x[((b * h + y) * w + xx) * c + ch];
        for b in 0..n {
            for &(y0, y1, fy) in &ys {
                for &(x0, x1, fx) in &xs {
                    for ch in 0..c {
                        let top = at(b, y0, x0, ch) * (1.0 - fx) + at(b, y0, x1, ch) * fx;
                        let bottom = at(b, y1, x0, ch) * (1.0 - fx) + at(b, y1, x1, ch) * fx;
                        out.push(top * (1.0 - fy) + bottom * fy);
                    }
                }
            }
        }
        Tensor::from_shape(&[n, self.out_h, self.out_w, c], &out)
    }
}

fn dims4(t: &Tensor) -> TractResult<(usize, usize, usize, usize)> {
    match t.shape() {
        &[n, h, w, c] if h > 0 && w > 0 => Ok((n, h, w, c)),
        s => bail!("resize expects a non-empty NHWC tensor, got shape {s:?}"),
    }
}

impl Op for ResizeNhwc {
    fn name(&self) -> StaticName {
        "LitehouseResize".into()
    }
    op_as_typed_op!();
}

impl EvalOp for ResizeNhwc {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let out = match (self.kind, input.datum_type()) {
            (ResizeKind::Bilinear, _) => self.bilinear(&input)?,
            (ResizeKind::Nearest, DatumType::F32) => self.nearest::<f32>(&input)?,
            (ResizeKind::Nearest, DatumType::I8) => self.nearest::<i8>(&input)?,
            (ResizeKind::Nearest, DatumType::U8) => self.nearest::<u8>(&input)?,
            (ResizeKind::Nearest, DatumType::I32) => self.nearest::<i32>(&input)?,
            (_, dt) => bail!("resize does not support {dt:?}"),
        };
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for ResizeNhwc {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let s = &inputs[0].shape;
        ensure!(s.rank() == 4, "resize expects rank 4");
        let dt = if self.kind == ResizeKind::Bilinear {
            f32::datum_type()
        } else {
            inputs[0].datum_type
        };
        Ok(tvec!(dt.fact(tvec![
            s[0].clone(),
            self.out_h.into(),
            self.out_w.into(),
            s[3].clone()
        ])))
    }
    as_op!();
}
