//! Dynamic input quantization of LiteRT's hybrid (dynamic-range) kernels.

use tract_core::internal::*;

/// Quantizes each batch item (all axes but the first) to int8 as LiteRT's hybrid FULLY_CONNECTED
/// and CONV_2D do. Output 0: `q - zp` as exact f32 integers, same shape. Output 1: the scale of
/// each batch item, shape `[n, 1, ...]` (same rank).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RowQuantize {
    /// Asymmetric (min/max, with a zero point) instead of symmetric (max |x|).
    pub asymmetric: bool,
}

impl RowQuantize {
    fn quantize_row(&self, row: &[f32], out: &mut [f32]) -> f32 {
        if self.asymmetric {
            let min = row.iter().copied().fold(f32::INFINITY, f32::min).min(0.0);
            let max = row
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max)
                .max(0.0);
            if min == max {
                out.iter_mut().for_each(|o| *o = 0.0);
                return 1.0;
            }
            let scale = (max as f64 - min as f64) / 255.0;
            let zp_from_min = -128.0 - min as f64 / scale;
            let zp_from_max = 127.0 - max as f64 / scale;
            let err_min = 128f64.abs() + (min as f64 / scale).abs();
            let err_max = 127f64.abs() + (max as f64 / scale).abs();
            let zp = if err_min < err_max {
                zp_from_min
            } else {
                zp_from_max
            };
            let zp = zp.round().clamp(-128.0, 127.0) as i32;
            for (o, &x) in out.iter_mut().zip(row) {
                let q = (zp + (x as f64 / scale).round() as i32).clamp(-128, 127);
                *o = (q - zp) as f32;
            }
            scale as f32
        } else {
            let range = row.iter().fold(0f32, |m, x| m.max(x.abs()));
            if range == 0.0 {
                out.iter_mut().for_each(|o| *o = 0.0);
                return 1.0;
            }
            let scale = range / 127.0;
            let inv = 127.0 / range;
            for (o, &x) in out.iter_mut().zip(row) {
                *o = (x * inv).round().clamp(-127.0, 127.0);
            }
            scale
        }
    }
}

impl Op for RowQuantize {
    fn name(&self) -> StaticName {
        "LitehouseRowQuantize".into()
    }
    op_as_typed_op!();
}

impl EvalOp for RowQuantize {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = input.shape().to_vec();
        let n = shape.first().copied().unwrap_or(1);
        let x = input.to_plain_array_view::<f32>()?;
        let x: Vec<f32> = x.iter().copied().collect();
        let row_len = x.len().checked_div(n).unwrap_or(0);
        let mut q = vec![0f32; x.len()];
        let mut scales = vec![0f32; n];
        for (r, scale) in scales.iter_mut().enumerate() {
            let span = r * row_len..(r + 1) * row_len;
            *scale = self.quantize_row(&x[span.clone()], &mut q[span]);
        }
        let mut scale_shape = vec![1usize; shape.len().max(1)];
        scale_shape[0] = n;
        Ok(tvec!(
            Tensor::from_shape(&shape, &q)?.into_tvalue(),
            Tensor::from_shape(&scale_shape, &scales)?.into_tvalue()
        ))
    }
}

impl TypedOp for RowQuantize {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let shape = &inputs[0].shape;
        let mut scale_shape: TVec<TDim> = tvec![1.to_dim(); shape.rank().max(1)];
        if shape.rank() > 0 {
            scale_shape[0] = shape[0].clone();
        }
        Ok(tvec!(f32::fact(shape.clone()), f32::fact(scale_shape)))
    }
    as_op!();
}
