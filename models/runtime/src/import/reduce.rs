//! Pools, softmax, reductions, arg-max and resizing. Quantized inputs go through the float path
//! (dequantize, compute, requantize to the output's parameters).

use tract_core::internal::*;
use tract_core::ops::cnn::{MaxPool, PaddingSpec, PoolSpec, SumPool};
use tract_core::ops::math;
use tract_core::ops::nn::{DataFormat, Reduce, Reducer, Softmax, SoftmaxKind};
use tract_tflite::tflite::{ActivationFunctionType as Act, BuiltinOperator as B, Padding};

use super::arith::{act_range_q, finish_float, scalar_like, to_float};
use super::layout::axis_of;
use super::{invalid, unsupported, Importer, OpCx, OpResult, Value};
use crate::dtype::ElementType;
use crate::kernels::{IntPool, PoolReduce, ResizeKind, ResizeNhwc};

/// MAX_POOL_2D and AVERAGE_POOL_2D on NHWC input.
pub(crate) fn pool(imp: &mut Importer, cx: &OpCx, op: B) -> OpResult<Vec<Value>> {
    let Some(o) = cx.op.builtin_options_as_pool_2_doptions() else {
        invalid!("missing options")
    };
    let x = imp.input(cx, 0)?;
    let shape = imp.shape(&x)?;
    if shape.len() != 4 {
        invalid!("input must be NHWC, got rank {}", shape.len())
    }
    let c = shape[3].to_usize()?;
    let padding = match o.padding() {
        Padding::SAME => PaddingSpec::SameUpper,
        Padding::VALID => PaddingSpec::Valid,
        other => unsupported!("padding {}", other.variant_name().unwrap_or("?")),
    };
    let pool_spec = PoolSpec {
        data_format: DataFormat::NHWC,
        kernel_shape: tvec![
            o.filter_height().max(1) as usize,
            o.filter_width().max(1) as usize
        ],
        padding,
        strides: Some(tvec![
            o.stride_h().max(1) as usize,
            o.stride_w().max(1) as usize
        ]),
        dilations: None,
        input_channels: c,
        output_channels: c,
    };
    let act = o.fused_activation_function();
    if let Some(v) = int_pool(imp, cx, &x, &pool_spec, op, act)? {
        return Ok(vec![v]);
    }
    let xf = to_float(imp, &x)?;
    let y = if op == B::MAX_POOL_2D {
        imp.wire1(
            "max_pool",
            MaxPool {
                pool_spec,
                with_index_outputs: None,
            },
            &[xf],
        )?
    } else {
        imp.wire1(
            "avg_pool",
            SumPool {
                pool_spec,
                normalize: true,
                count_include_pad: false,
            },
            &[xf],
        )?
    };
    Ok(vec![finish_float(imp, cx, y, act)?])
}

/// Pools on 8-bit quantized input whose output has the input's own parameters (what TFLite's
/// converters produce) run on the integers as LiteRT's integer kernels do ([`IntPool`]).
/// MAX_POOL_2D: max commutes with the affine map, so only the fused activation's clamp remains.
/// AVERAGE_POOL_2D: int32 window sums with LiteRT's rounding division. `None` when the
/// parameters differ (the float path handles that).
fn int_pool(
    imp: &mut Importer,
    cx: &OpCx,
    x: &Value,
    pool_spec: &PoolSpec,
    op: B,
    act: Act,
) -> OpResult<Option<Value>> {
    let info = imp.out_info(cx, 0)?;
    let (Some(qi), Some(qo)) = (&x.quant, &info.quant) else {
        return Ok(None);
    };
    let same = qi.scale.len() == 1
        && qo.scale.len() == 1
        && qi.scale0() == qo.scale0()
        && qi.zp0() == qo.zp0();
    if !same || info.dtype != x.dtype || !matches!(x.dtype, ElementType::I8 | ElementType::U8) {
        return Ok(None);
    }
    let (lo, hi) = act_range_q(act, qo, info.dtype)?;
    let strides = pool_spec.strides.clone().unwrap_or_else(|| tvec![1, 1]);
    let pool = IntPool {
        reduce: if op == B::MAX_POOL_2D {
            PoolReduce::Max
        } else {
            PoolReduce::Average
        },
        kernel: [pool_spec.kernel_shape[0], pool_spec.kernel_shape[1]],
        strides: [strides[0], strides[1]],
        same: matches!(pool_spec.padding, PaddingSpec::SameUpper),
        min: lo,
        max: hi,
    };
    let outlet = imp.wire1("pool", pool, &[x.outlet])?;
    Ok(Some(Value {
        outlet,
        dtype: info.dtype,
        quant: Some(qo.clone()),
        known: None,
    }))
}

/// SOFTMAX (with beta) and LOG_SOFTMAX over the last axis.
pub(crate) fn softmax(imp: &mut Importer, cx: &OpCx, op: B) -> OpResult<Vec<Value>> {
    let x = imp.input(cx, 0)?;
    let rank = imp.shape(&x)?.len();
    if rank == 0 {
        invalid!("softmax of a scalar")
    }
    let mut xf = to_float(imp, &x)?;
    let beta = if op == B::SOFTMAX {
        cx.op
            .builtin_options_as_softmax_options()
            .map(|o| o.beta())
            .unwrap_or(1.0)
    } else {
        1.0
    };
    if beta != 1.0 {
        let b = scalar_like(imp, beta, rank)?;
        xf = imp.wire1("beta", math::mul(), &[xf, b])?;
    }
    let kind = if op == B::SOFTMAX {
        SoftmaxKind::Softmax
    } else {
        SoftmaxKind::LogSoftmax
    };
    let y = imp.wire1(
        "softmax",
        Softmax {
            axes: tvec![rank - 1],
            quant_output_dt: None,
            kind,
        },
        &[xf],
    )?;
    Ok(vec![finish_float(imp, cx, y, Act::NONE)?])
}

fn reduce_axes(imp: &mut Importer, cx: &OpCx, rank: usize) -> OpResult<Vec<usize>> {
    let a = imp.input(cx, 1)?;
    let Some(k) = a.known else {
        unsupported!("non-constant reduction axes")
    };
    let mut axes = k
        .iter()
        .map(|d| {
            d.as_i64()
                .ok_or_else(|| super::OpError::Invalid("symbolic axis".into()))
                .and_then(|v| axis_of(v, rank))
        })
        .collect::<OpResult<Vec<_>>>()?;
    axes.sort_unstable();
    axes.dedup();
    Ok(axes)
}

/// MEAN, SUM, REDUCE_MAX, REDUCE_MIN, REDUCE_PROD.
pub(crate) fn reduce(imp: &mut Importer, cx: &OpCx, op: B) -> OpResult<Vec<Value>> {
    let x = imp.input(cx, 0)?;
    let shape = imp.shape(&x)?;
    let axes = reduce_axes(imp, cx, shape.len())?;
    let keep = cx
        .op
        .builtin_options_as_reducer_options()
        .map(|o| o.keep_dims())
        .unwrap_or(false);
    let xf = to_float(imp, &x)?;
    let reducer = match op {
        B::MEAN | B::SUM => Reducer::Sum,
        B::REDUCE_MAX => Reducer::Max,
        B::REDUCE_MIN => Reducer::Min,
        _ => Reducer::Prod,
    };
    let mut y = imp.wire1(
        "reduce",
        Reduce {
            axes: axes.iter().copied().collect(),
            reducer,
        },
        &[xf],
    )?;
    if op == B::MEAN {
        let count: TDim = axes.iter().map(|&a| shape[a].clone()).product();
        let Some(n) = count.as_i64() else {
            unsupported!("a mean over the dynamic dimension")
        };
        let inv = scalar_like(imp, 1.0 / n.max(1) as f32, shape.len())?;
        y = imp.wire1("mean", math::mul(), &[y, inv])?;
    }
    if !keep {
        for &a in axes.iter().rev() {
            y = imp.wire1("reduce_rm", AxisOp::Rm(a), &[y])?;
        }
    }
    Ok(vec![finish_float(imp, cx, y, Act::NONE)?])
}

/// ARG_MAX and ARG_MIN (first occurrence), axis removed.
pub(crate) fn arg_max(imp: &mut Importer, cx: &OpCx, op: B) -> OpResult<Vec<Value>> {
    let x = imp.input(cx, 0)?;
    let rank = imp.shape(&x)?.len();
    let axes = reduce_axes(imp, cx, rank)?;
    let [axis] = axes[..] else {
        invalid!("exactly one axis expected")
    };
    let xf = to_float(imp, &x)?;
    let reducer = if op == B::ARG_MAX {
        Reducer::ArgMax(false)
    } else {
        Reducer::ArgMin(false)
    };
    let y = imp.wire1(
        "arg",
        Reduce {
            axes: tvec![axis],
            reducer,
        },
        &[xf],
    )?;
    let y = imp.wire1("arg_rm", AxisOp::Rm(axis), &[y])?;
    let dtype = imp.out_info(cx, 0)?.dtype;
    let y = imp.wire1(
        "arg_cast",
        tract_core::ops::cast::cast(dtype.datum_type()),
        &[y],
    )?;
    Ok(vec![imp.plain(y, dtype)])
}

/// RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR with a constant size.
pub(crate) fn resize(imp: &mut Importer, cx: &OpCx, op: B) -> OpResult<Vec<Value>> {
    let x = imp.input(cx, 0)?;
    let size = imp.input(cx, 1)?;
    let Some(k) = size.known else {
        unsupported!("a non-constant output size")
    };
    let [h, w] = &k[..] else {
        invalid!("size must hold [height, width]")
    };
    let (h, w) = (h.to_usize()?, w.to_usize()?);
    let (align_corners, half_pixel_centers, kind) = if op == B::RESIZE_BILINEAR {
        let o = cx.op.builtin_options_as_resize_bilinear_options();
        (
            o.map(|o| o.align_corners()).unwrap_or(false),
            o.map(|o| o.half_pixel_centers()).unwrap_or(false),
            ResizeKind::Bilinear,
        )
    } else {
        let o = cx.op.builtin_options_as_resize_nearest_neighbor_options();
        (
            o.map(|o| o.align_corners()).unwrap_or(false),
            o.map(|o| o.half_pixel_centers()).unwrap_or(false),
            ResizeKind::Nearest,
        )
    };
    let op = ResizeNhwc {
        kind,
        out_h: h,
        out_w: w,
        align_corners,
        half_pixel_centers,
    };
    if kind == ResizeKind::Nearest {
        let y = imp.wire1("resize", op, &[x.outlet])?;
        let info = imp.out_info(cx, 0)?;
        return Ok(vec![Value {
            outlet: y,
            dtype: x.dtype,
            quant: info.quant.or(x.quant),
            known: None,
        }]);
    }
    let xf = to_float(imp, &x)?;
    let y = imp.wire1("resize", op, &[xf])?;
    if x.dtype == ElementType::F32 || x.quant.is_some() {
        return Ok(vec![finish_float(imp, cx, y, Act::NONE)?]);
    }
    unsupported!("bilinear resize of {} tensors", x.dtype)
}
