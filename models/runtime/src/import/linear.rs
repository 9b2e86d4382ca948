//! FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV and BATCH_MATMUL.
//!
//! Three arithmetic modes, chosen from the operand types:
//! - float: f32 einsum / convolution;
//! - integer (int8/uint8 activations and weights): operands minus their zero points, as exact
//!   integers in f32 (f64 when the accumulator could exceed 2^24), then LiteRT's fixed-point
//!   requantization with the int32 bias;
//! - hybrid (float activations, int8 weights): per-batch dynamic int8 quantization of the input
//!   as LiteRT does, integer accumulation, then float rescale.

use tract_core::internal::*;
use tract_core::ops::cnn::{Conv, Deconv, KernelFormat, PaddingSpec, PoolSpec};
use tract_core::ops::einsum::EinSum;
use tract_core::ops::math;
use tract_core::ops::nn::DataFormat;
use tract_tflite::tflite::{ActivationFunctionType as Act, Padding};

use super::arith::{act_range_q, finish_float, float_activation, to_float};
use super::{invalid, unsupported, Importer, OpCx, OpResult, Value};
use crate::dtype::ElementType;
use crate::kernels::{
    unsigned_offset, DepthwiseConv, DequantizeLinear, DirectConv, Requantize, RowQuantize,
};
use crate::quant::{FixedMultiplier, QuantParams};

/// How the weights of a linear op are held.
enum Mode {
    Float,
    Integer,
    Hybrid,
}

fn mode(x: &Value, w: &Value) -> OpResult<Mode> {
    let xq = x.quant.is_some() && !x.dtype.is_float();
    let wq = w.quant.is_some() && !w.dtype.is_float();
    Ok(match (xq, wq) {
        (false, false) => Mode::Float,
        (true, true) => Mode::Integer,
        (false, true) if x.dtype == ElementType::F32 => Mode::Hybrid,
        _ => unsupported!("quantized input with float weights"),
    })
}

/// Integer weights minus their zero points (per output channel on `q.axis`), as f32 values.
fn centered_weights(w: &Tensor, q: &QuantParams) -> OpResult<Tensor> {
    let unit = QuantParams {
        scale: vec![1.0; q.scale.len()],
        ..q.clone()
    };
    super::arith::dequantize_const(w, &unit)
}

/// Largest |accumulator| a weight tensor can produce: max over output channels (axis `o`) of
/// sum |w| times the largest |x - zp|.
fn acc_bound(w: &Tensor, o: usize, x_dt: ElementType, x_zp: i32) -> OpResult<f64> {
    let v = w.to_plain_array_view::<f32>()?;
    let (lo, hi) = x_dt.int_range().unwrap_or((-128, 127));
    let xmax = ((lo - x_zp).abs()).max((hi - x_zp).abs()) as f64;
    let mut sums = vec![0f64; w.shape()[o]];
    for (ix, x) in v.indexed_iter() {
        sums[ix[o]] += x.abs() as f64;
    }
    Ok(sums.into_iter().fold(0.0, f64::max) * xmax)
}

/// The operating type that keeps integer accumulation exact.
fn exact_dt(bound: f64) -> DatumType {
    if bound < (1u64 << 24) as f64 {
        f32::datum_type()
    } else {
        f64::datum_type()
    }
}

/// The accumulator type of a direct integer convolution: f32 while every partial sum is an
/// exact f32 integer, i32 while it fits, otherwise none (tract's f64 path takes it).
fn direct_acc(bound: f64) -> Option<DatumType> {
    if bound < (1u64 << 24) as f64 {
        Some(f32::datum_type())
    } else if bound < i32::MAX as f64 {
        Some(i32::datum_type())
    } else {
        None
    }
}

/// The byte dot-product form of a direct integer convolution (OHWI centered weights `wc`), when
/// the CPU has the instruction, the input is 8-bit and each channel's centered weights span at
/// most 256 values (always true of 8-bit weights); `None` keeps the multiply-add form.
fn byte_conv(
    wc: &Tensor,
    x: &Value,
    x_zp: i32,
    strides: [usize; 2],
    dilations: [usize; 2],
    same: bool,
) -> OpResult<Option<DirectConv>> {
    let dt = x.dtype.datum_type();
    let Ok(offset) = unsigned_offset(dt) else {
        return Ok(None);
    };
    // A zero point outside the input's range (a malformed model) has no byte encoding.
    if !DirectConv::bytes_native() || !(0..=255).contains(&(x_zp + offset)) {
        return Ok(None);
    }
    if DirectConv::byte_shifts(wc)?.is_none() {
        return Ok(None);
    }
    Ok(Some(DirectConv::bytes(
        wc, strides, dilations, same, dt, x_zp,
    )?))
}

/// Values of a float wire when it is a constant, or `None` when it is computed at run time.
fn float_const(imp: &Importer, f: OutletId) -> OpResult<Option<Vec<f32>>> {
    let Some(k) = imp.target.outlet_fact(f)?.konst.clone() else {
        return Ok(None);
    };
    let k = k.cast_to::<f32>()?;
    Ok(Some(
        k.to_plain_array_view::<f32>()?.iter().copied().collect(),
    ))
}

/// Float weights (already widened or dequantized to the wire `wf`) and start values (the bias)
/// of a direct convolution, when both are constants.
fn float_direct_parts(
    imp: &mut Importer,
    wf: OutletId,
    bias: Option<&Value>,
    shape: &[usize],
    channels: usize,
) -> OpResult<Option<(Tensor, Vec<f32>)>> {
    let Some(wf) = float_const(imp, wf)? else {
        return Ok(None);
    };
    let init = match bias {
        Some(b) => {
            let bf = to_float(imp, b)?;
            match float_const(imp, bf)? {
                Some(v) if v.len() == channels => v,
                _ => return Ok(None),
            }
        }
        None => vec![0.0; channels],
    };
    Ok(Some((Tensor::from_shape(shape, &wf)?, init)))
}

/// The clamp a float convolution with a float output folds in for `act`, and the activation
/// still to apply (NONE when folded).
fn float_clamp(imp: &Importer, cx: &OpCx, act: Act) -> OpResult<(Option<(f32, f32)>, Act)> {
    let float_out = imp.out_info(cx, 0)?.dtype.is_float();
    match super::arith::act_bounds(act) {
        Ok(bounds) if float_out && act != Act::TANH => Ok((Some(bounds), Act::NONE)),
        _ => Ok((None, act)),
    }
}

/// `x - zp` as exact f32 (or f64) integers.
fn centered_input(imp: &mut Importer, x: &Value, dt: DatumType) -> OpResult<OutletId> {
    let zp = x.quant.as_ref().map(|q| q.zp0()).unwrap_or(0);
    let op = DequantizeLinear {
        scale: vec![1.0],
        zero_point: vec![zp],
    };
    let xf = imp.wire1("center", op, &[x.outlet])?;
    if dt == f32::datum_type() {
        Ok(xf)
    } else {
        imp.wire1("to_f64", tract_core::ops::cast::cast(dt), &[xf])
    }
}

/// int32 bias values of a quantized op (zeros when absent).
fn int_bias(imp: &Importer, bias: Option<&Value>, channels: usize) -> OpResult<Vec<i32>> {
    let Some(b) = bias else {
        return Ok(vec![0; channels]);
    };
    let Some(k) = imp.konst(b)? else {
        unsupported!("a non-constant bias on a quantized op")
    };
    let v = crate::kernels::ints_as_i32(&k)?;
    if v.len() != channels {
        invalid!("bias has {} values for {channels} output channels", v.len())
    }
    Ok(v)
}

/// Fixed-point requantization of an accumulator to the op's quantized output.
fn requantize(
    imp: &mut Importer,
    cx: &OpCx,
    acc: OutletId,
    x: &Value,
    w: &Value,
    bias: Vec<i32>,
    act: Act,
) -> OpResult<Value> {
    let info = imp.out_info(cx, 0)?;
    let Some(yq) = info.quant.clone() else {
        unsupported!("integer weights with a float output")
    };
    let xs = x.quant.as_ref().map(|q| q.scale0()).unwrap_or(1.0) as f64;
    let wq = w
        .quant
        .as_ref()
        .ok_or_else(|| super::OpError::Invalid("weights lost quantization".into()))?;
    let channels = bias.len();
    let multipliers = (0..channels.max(1))
        .map(|c| FixedMultiplier::from_real(xs * wq.scale_at(c) as f64 / yq.scale0() as f64))
        .collect::<Vec<_>>();
    let (min, max) = act_range_q(act, &yq, info.dtype)?;
    let op = Requantize::new(
        multipliers,
        bias,
        yq.zp0(),
        (min, max),
        info.dtype.datum_type(),
    );
    let outlet = imp.wire1("requantize", op, &[acc])?;
    Ok(Value {
        outlet,
        dtype: info.dtype,
        quant: Some(yq),
        known: None,
    })
}

/// Float bias (dequantized when needed) as a constant shaped for the last axis of a rank-`rank`
/// tensor, or `None` when absent.
fn float_bias(imp: &mut Importer, bias: Option<&Value>, rank: usize) -> OpResult<Option<OutletId>> {
    let Some(b) = bias else { return Ok(None) };
    let bf = to_float(imp, b)?;
    let r = imp.target.outlet_fact(bf)?.rank();
    let mut out = bf;
    for _ in r..rank {
        out = imp.wire1("bias_rank", AxisOp::Add(0), &[out])?;
    }
    Ok(Some(out))
}

/// The weights as a float constant (f32, or f16 widened), or a float wire when dynamic.
fn float_weights(imp: &mut Importer, w: &Value) -> OpResult<OutletId> {
    to_float(imp, w)
}

/// Hybrid rescale: `acc * row_scale * w_scale[c]` (+ bias, + activation).
fn hybrid_finish(
    imp: &mut Importer,
    cx: &OpCx,
    acc: OutletId,
    row_scale: OutletId,
    w: &Value,
    bias: Option<&Value>,
    act: Act,
) -> OpResult<Vec<Value>> {
    let rank = imp.target.outlet_fact(acc)?.rank();
    let wq = w
        .quant
        .clone()
        .unwrap_or_else(|| QuantParams::per_tensor(1.0, 0));
    let channels = imp.target.outlet_fact(acc)?.shape[rank - 1].to_usize()?;
    let scales: Vec<f32> = (0..channels).map(|c| wq.scale_at(c)).collect();
    let ws = Tensor::from_shape(&[channels], &scales)?.broadcast_into_rank(rank)?;
    let ws = imp.konst_outlet("weight_scale", ws)?;
    let y = imp.wire1("hybrid_row_scale", math::mul(), &[acc, row_scale])?;
    let mut y = imp.wire1("hybrid_weight_scale", math::mul(), &[y, ws])?;
    if let Some(b) = float_bias(imp, bias, rank)? {
        y = imp.wire1("bias", math::add(), &[y, b])?;
    }
    Ok(vec![finish_float(imp, cx, y, act)?])
}

/// FULLY_CONNECTED.
pub(crate) fn fully_connected(imp: &mut Importer, cx: &OpCx) -> OpResult<Vec<Value>> {
    let opts = cx.op.builtin_options_as_fully_connected_options();
    let mut act = opts
        .map(|o| o.fused_activation_function())
        .unwrap_or(Act::NONE);
    let keep_dims = opts.map(|o| o.keep_num_dims()).unwrap_or(false);
    let asymmetric = opts
        .map(|o| o.asymmetric_quantize_inputs())
        .unwrap_or(false);
    if let Some(o) = opts {
        if o.weights_format().0 != 0 {
            unsupported!("shuffled weights format")
        }
    }
    let x = imp.input(cx, 0)?;
    let w = imp.input(cx, 1)?;
    let bias = imp.opt_input(cx, 2)?;
    let x_shape = imp.shape(&x)?;
    let w_shape = imp.shape(&w)?;
    if w_shape.len() != 2 {
        invalid!(
            "weights must be rank 2 [out, in], got rank {}",
            w_shape.len()
        )
    }
    let k = w_shape[1].to_usize()?;
    let m = w_shape[0].to_usize()?;
    let last = x_shape.last().cloned().unwrap_or_else(|| 1.to_dim());
    if !keep_dims || last != k.to_dim() {
        // Non-kept dims: TFLite flattens the input to [volume / k, k].
        let volume: TDim = x_shape.iter().product();
        if let Ok(v) = volume.to_usize() {
            if v % k != 0 {
                invalid!("input of shape {x_shape:?} cannot be flattened to rows of {k}")
            }
        }
    }
    let rows: TDim = x_shape.iter().product::<TDim>() / k as u64;
    let flat_shape: TVec<TDim> = tvec![rows.clone(), k.to_dim()];
    let x2 = if x_shape.len() == 2 && x_shape[1] == k.to_dim() {
        x.outlet
    } else {
        imp.wire1(
            "fc_flatten",
            AxisOp::Reshape(0, x_shape.clone(), flat_shape.clone()),
            &[x.outlet],
        )?
    };
    let x2v = Value {
        outlet: x2,
        ..x.clone()
    };
    let out_shape: Option<TVec<TDim>> = (keep_dims && x_shape.len() != 2).then(|| {
        let mut s: TVec<TDim> = x_shape[..x_shape.len() - 1].into();
        s.push(m.to_dim());
        s
    });
    let einsum = |dt: DatumType| -> OpResult<EinSum> { Ok(EinSum::new("nk,mk->nm".parse()?, dt)) };
    let mut results = match mode(&x, &w)? {
        Mode::Float => {
            let xf = to_float(imp, &x2v)?;
            let wf = float_weights(imp, &w)?;
            let direct = float_direct_parts(imp, wf, bias.as_ref(), &[m, 1, 1, k], m)?;
            let y = if let Some((wt, init)) = direct {
                let (clamp, rest) = float_clamp(imp, cx, act)?;
                act = rest;
                let op = DirectConv::new(&wt, &init, f32::datum_type(), [1, 1], [1, 1], false, 0)?
                    .with_clamp(clamp);
                imp.wire1("fc", op, &[xf])?
            } else {
                let mut y = imp.wire1("fc", einsum(f32::datum_type())?, &[xf, wf])?;
                if let Some(b) = float_bias(imp, bias.as_ref(), 2)? {
                    y = imp.wire1("fc_bias", math::add(), &[y, b])?;
                }
                y
            };
            let info = imp.out_info(cx, 0)?;
            if info.quant.is_some() {
                vec![finish_float(imp, cx, y, act)?]
            } else {
                let y = float_activation(imp, y, act)?;
                vec![imp.plain(y, ElementType::F32)]
            }
        }
        Mode::Integer => {
            let Some(wk) = imp.konst(&w)? else {
                unsupported!("non-constant quantized weights")
            };
            let wq = w
                .quant
                .clone()
                .unwrap_or_else(|| QuantParams::per_tensor(1.0, 0));
            let wc = centered_weights(&wk, &wq)?;
            let x_zp = x.quant.as_ref().map(|q| q.zp0()).unwrap_or(0);
            let bound = acc_bound(&wc, 0, x.dtype, x_zp)?;
            let acc = if let Some(acc_dt) = direct_acc(bound) {
                let wt = wc.into_shape(&[m, 1, 1, k])?;
                let op = match byte_conv(&wt, &x, x_zp, [1, 1], [1, 1], false)? {
                    Some(op) => op,
                    None => {
                        DirectConv::new(&wt, &vec![0.0; m], acc_dt, [1, 1], [1, 1], false, x_zp)?
                    }
                };
                imp.wire1("fc", op, &[x2])?
            } else {
                let dt = exact_dt(bound);
                let xf = centered_input(imp, &x2v, dt)?;
                let wc = imp.konst_outlet("fc_weights", wc.cast_to_dt(dt)?.into_owned())?;
                imp.wire1("fc", einsum(dt)?, &[xf, wc])?
            };
            let b = int_bias(imp, bias.as_ref(), m)?;
            vec![requantize(imp, cx, acc, &x, &w, b, act)?]
        }
        Mode::Hybrid => {
            let Some(wk) = imp.konst(&w)? else {
                unsupported!("non-constant hybrid weights")
            };
            let wq = w
                .quant
                .clone()
                .unwrap_or_else(|| QuantParams::per_tensor(1.0, 0));
            let wc = centered_weights(&wk, &wq)?;
            let q = imp.wire("row_quantize", RowQuantize { asymmetric }, &[x2])?;
            let wc = imp.konst_outlet("fc_weights", wc)?;
            let acc = imp.wire1("fc", einsum(f32::datum_type())?, &[q[0], wc])?;
            hybrid_finish(imp, cx, acc, q[1], &w, bias.as_ref(), act)?
        }
    };
    if let Some(shape) = out_shape {
        let v = &mut results[0];
        v.outlet = imp.wire1(
            "fc_unflatten",
            AxisOp::Reshape(0, tvec![rows, m.to_dim()], shape),
            &[v.outlet],
        )?;
    }
    Ok(results)
}

fn padding(p: Padding) -> OpResult<PaddingSpec> {
    Ok(match p {
        Padding::SAME => PaddingSpec::SameUpper,
        Padding::VALID => PaddingSpec::Valid,
        other => unsupported!("padding {}", other.variant_name().unwrap_or("?")),
    })
}

/// CONV_2D and DEPTHWISE_CONV_2D (NHWC input; OHWI or [1, H, W, O] weights).
pub(crate) fn conv2d(imp: &mut Importer, cx: &OpCx, depthwise: bool) -> OpResult<Vec<Value>> {
    let (pad, strides, dilations, act) = if depthwise {
        let Some(o) = cx.op.builtin_options_as_depthwise_conv_2_doptions() else {
            invalid!("missing options")
        };
        (
            o.padding(),
            [o.stride_h(), o.stride_w()],
            [o.dilation_h_factor(), o.dilation_w_factor()],
            o.fused_activation_function(),
        )
    } else {
        let Some(o) = cx.op.builtin_options_as_conv_2_doptions() else {
            invalid!("missing options")
        };
        (
            o.padding(),
            [o.stride_h(), o.stride_w()],
            [o.dilation_h_factor(), o.dilation_w_factor()],
            o.fused_activation_function(),
        )
    };
    let x = imp.input(cx, 0)?;
    let w = imp.input(cx, 1)?;
    let bias = imp.opt_input(cx, 2)?;
    let x_shape = imp.shape(&x)?;
    if x_shape.len() != 4 {
        invalid!("input must be NHWC (rank 4), got rank {}", x_shape.len())
    }
    let cin = x_shape[3].to_usize()?;
    let Some(wk) = imp.konst(&w)? else {
        unsupported!("non-constant convolution weights")
    };
    let ws = wk.shape().to_vec();
    if ws.len() != 4 {
        invalid!("weights must be rank 4, got {ws:?}")
    }
    // Our direct kernels take group-1 CONV_2D and multiplier-1 DEPTHWISE_CONV_2D. A depthwise
    // convolution of a single input channel (a network's first layer, often) is an ordinary
    // one: its [1, H, W, O] weights read as OHWI [O, H, W, 1].
    let direct = if depthwise && cin == 1 && ws[0] == 1 {
        let ohwi = wk.clone().into_tensor().permute_axes(&[3, 1, 2, 0])?;
        let outlet = imp.konst_outlet("kernel", ohwi.clone())?;
        let quant = w.quant.clone().map(|mut q| {
            q.axis = 0;
            q
        });
        let w = Value {
            outlet,
            quant,
            ..w.clone()
        };
        Some((w, Arc::new(ohwi), false))
    } else if ws[3] == cin && (!depthwise || ws[0] == 1) {
        Some((w.clone(), wk.clone(), depthwise))
    } else {
        None
    };
    if let Some((w, wk, depthwise)) = direct {
        let values = direct_conv2d(
            imp,
            cx,
            &x,
            &w,
            &wk,
            bias.as_ref(),
            pad,
            strides,
            dilations,
            act,
            depthwise,
        )?;
        if let Some(values) = values {
            return Ok(values);
        }
    }
    // Kernels go to tract as OIHW: [O, I / group, H, W]. Depthwise [1, H, W, O] is a grouped
    // convolution with one group per input channel; OHWI permutes directly.
    let (wk, w_quant_axis, group, cout, fmt) = if depthwise {
        if ws[3] != cin {
            // tract's depthwise kernel covers multiplier 1; wider ones run as grouped OIHW.
            if ws[3] % cin.max(1) != 0 {
                invalid!(
                    "depthwise weights have {} channels for {cin} input channels",
                    ws[3]
                )
            }
            let t = wk.clone().into_tensor().permute_axes(&[3, 0, 1, 2])?;
            (t, 0, cin, ws[3], KernelFormat::OIHW)
        } else {
            // [1, H, W, C]: tract's OHWI grouped layout keeps the group on I.
            (wk.clone().into_tensor(), 3, cin, ws[3], KernelFormat::OHWI)
        }
    } else {
        if ws[3] == 0 || cin % ws[3] != 0 {
            invalid!("input has {cin} channels, weights expect {}", ws[3])
        }
        let t = wk.clone().into_tensor().permute_axes(&[0, 3, 1, 2])?;
        (t, 0, cin / ws[3], ws[0], KernelFormat::OIHW)
    };
    let pool_spec = PoolSpec {
        data_format: DataFormat::NHWC,
        kernel_shape: tvec![ws[1], ws[2]],
        padding: padding(pad)?,
        strides: Some(tvec![
            strides[0].max(1) as usize,
            strides[1].max(1) as usize
        ]),
        dilations: Some(tvec![
            dilations[0].max(1) as usize,
            dilations[1].max(1) as usize
        ]),
        input_channels: cin,
        output_channels: cout,
    };
    let conv = Conv {
        pool_spec,
        kernel_fmt: fmt,
        group,
        q_params: None,
    };
    match mode(&x, &w)? {
        Mode::Float => {
            let kernel = imp.konst_outlet("kernel", wk)?;
            let wf = to_float(
                imp,
                &Value {
                    outlet: kernel,
                    ..w.clone()
                },
            )?;
            let b = match &bias {
                Some(b) => to_float(imp, b)?,
                None => imp.konst_outlet("zero_bias", Tensor::zero::<f32>(&[cout])?)?,
            };
            let xf = to_float(imp, &x)?;
            let y = imp.wire1("conv", conv, &[xf, wf, b])?;
            Ok(vec![finish_float(imp, cx, y, act)?])
        }
        Mode::Integer => {
            let mut wq = w
                .quant
                .clone()
                .unwrap_or_else(|| QuantParams::per_tensor(1.0, 0));
            wq.axis = w_quant_axis;
            let wc = centered_weights(&wk, &wq)?;
            let x_zp = x.quant.as_ref().map(|q| q.zp0()).unwrap_or(0);
            let dt = exact_dt(acc_bound(&wc, w_quant_axis, x.dtype, x_zp)?);
            let xf = centered_input(imp, &x, dt)?;
            let wc = imp.konst_outlet("kernel", wc.cast_to_dt(dt)?.into_owned())?;
            let zero = imp.konst_outlet("zero_bias", Tensor::zero_dt(dt, &[cout])?)?;
            let acc = imp.wire1("conv", conv, &[xf, wc, zero])?;
            let b = int_bias(imp, bias.as_ref(), cout)?;
            Ok(vec![requantize(imp, cx, acc, &x, &w, b, act)?])
        }
        Mode::Hybrid => {
            let mut wq = w
                .quant
                .clone()
                .unwrap_or_else(|| QuantParams::per_tensor(1.0, 0));
            wq.axis = w_quant_axis;
            let wc = centered_weights(&wk, &wq)?;
            // LiteRT's per-channel hybrid CONV_2D quantizes inputs asymmetrically, its
            // per-tensor one symmetrically.
            let asymmetric = wq.is_per_channel();
            let q = imp.wire("row_quantize", RowQuantize { asymmetric }, &[x.outlet])?;
            let wc = imp.konst_outlet("kernel", wc)?;
            let zero = imp.konst_outlet("zero_bias", Tensor::zero::<f32>(&[cout])?)?;
            let acc = imp.wire1("conv", conv, &[q[0], wc, zero])?;
            hybrid_finish(
                imp,
                cx,
                acc,
                q[1],
                &Value {
                    quant: Some(wq),
                    ..w
                },
                bias.as_ref(),
                act,
            )
        }
    }
}

/// A group-1 CONV_2D as a [`DirectConv`] (OHWI weights), or a multiplier-1 DEPTHWISE_CONV_2D as
/// a [`DepthwiseConv`] (`[1, H, W, C]` weights), for integer and float operands with constant
/// weights (and, when float, a constant bias); `None` leaves it to tract's convolution.
#[allow(clippy::too_many_arguments)]
fn direct_conv2d(
    imp: &mut Importer,
    cx: &OpCx,
    x: &Value,
    w: &Value,
    wk: &Tensor,
    bias: Option<&Value>,
    pad: Padding,
    strides: [i32; 2],
    dilations: [i32; 2],
    act: Act,
    depthwise: bool,
) -> OpResult<Option<Vec<Value>>> {
    let same = matches!(padding(pad)?, PaddingSpec::SameUpper);
    let strides = strides.map(|s| s.max(1) as usize);
    let dilations = dilations.map(|d| d.max(1) as usize);
    // The output channels' axis of the weights.
    let axis = if depthwise { 3 } else { 0 };
    let cout = wk.shape()[axis];
    let build = |w: &Tensor, init: &[f32], acc, zp, clamp| -> TractResult<Box<dyn TypedOp>> {
        Ok(if depthwise {
            let op = DepthwiseConv::new(w, init, acc, strides, dilations, same, zp)?;
            Box::new(op.with_clamp(clamp))
        } else {
            let op = DirectConv::new(w, init, acc, strides, dilations, same, zp)?;
            Box::new(op.with_clamp(clamp))
        })
    };
    match mode(x, w)? {
        Mode::Integer => {
            let mut wq = w
                .quant
                .clone()
                .unwrap_or_else(|| QuantParams::per_tensor(1.0, 0));
            wq.axis = axis;
            let wc = centered_weights(wk, &wq)?;
            let x_zp = x.quant.as_ref().map(|q| q.zp0()).unwrap_or(0);
            let Some(acc_dt) = direct_acc(acc_bound(&wc, axis, x.dtype, x_zp)?) else {
                return Ok(None);
            };
            let bytes = if depthwise {
                None
            } else {
                byte_conv(&wc, x, x_zp, strides, dilations, same)?
            };
            let op = match bytes {
                Some(op) => Box::new(op) as Box<dyn TypedOp>,
                None => build(&wc, &vec![0.0; cout], acc_dt, x_zp, None)?,
            };
            let acc = imp.wire1("conv", op, &[x.outlet])?;
            let b = int_bias(imp, bias, cout)?;
            Ok(Some(vec![requantize(imp, cx, acc, x, w, b, act)?]))
        }
        Mode::Float => {
            // Constant weights: `to_float` folds them into a constant node, no op is wired.
            let wf = to_float(imp, w)?;
            let Some((wt, init)) = float_direct_parts(imp, wf, bias, wk.shape(), cout)? else {
                return Ok(None);
            };
            let xf = to_float(imp, x)?;
            let (clamp, act) = float_clamp(imp, cx, act)?;
            let op = build(&wt, &init, f32::datum_type(), 0, clamp)?;
            let y = imp.wire1("conv", op, &[xf])?;
            Ok(Some(vec![finish_float(imp, cx, y, act)?]))
        }
        Mode::Hybrid => Ok(None),
    }
}

/// TRANSPOSE_CONV: inputs (output_shape, weights [O, H, W, I], input, optional bias).
pub(crate) fn transpose_conv(imp: &mut Importer, cx: &OpCx) -> OpResult<Vec<Value>> {
    let Some(o) = cx.op.builtin_options_as_transpose_conv_options() else {
        invalid!("missing options")
    };
    let act = o.fused_activation_function();
    let out_shape = imp.input(cx, 0)?;
    let w = imp.input(cx, 1)?;
    let x = imp.input(cx, 2)?;
    let bias = imp.opt_input(cx, 3)?;
    let Some(target) = out_shape.known.clone() else {
        unsupported!("a non-constant output shape")
    };
    let target: Vec<usize> = target
        .iter()
        .map(|d| d.to_usize())
        .collect::<std::result::Result<_, _>>()?;
    let x_shape = imp.shape(&x)?;
    let Some(wk) = imp.konst(&w)? else {
        unsupported!("non-constant weights")
    };
    let ws = wk.shape().to_vec();
    if ws.len() != 4 || target.len() != 4 || x_shape.len() != 4 {
        invalid!("expects rank-4 weights, output shape and input")
    }
    let strides = [o.stride_h().max(1) as usize, o.stride_w().max(1) as usize];
    let mut before = tvec![];
    let mut after = tvec![];
    let mut adjustments = tvec![];
    for axis in 0..2 {
        let input = x_shape[1 + axis].to_usize()?;
        let k = ws[1 + axis];
        let out = target[1 + axis];
        let full = (input - 1) * strides[axis] + k;
        let total = match o.padding() {
            Padding::VALID => 0,
            _ => full.saturating_sub(out),
        };
        before.push(total / 2);
        after.push(total - total / 2);
        if full < total || out < full - total {
            invalid!("output size {out} is smaller than the transposed convolution produces")
        }
        adjustments.push(out - (full - total));
    }
    let pool_spec = PoolSpec {
        data_format: DataFormat::NHWC,
        kernel_shape: tvec![ws[1], ws[2]],
        padding: PaddingSpec::Explicit(before, after),
        strides: Some(strides.into_iter().collect()),
        dilations: None,
        input_channels: ws[3],
        output_channels: ws[0],
    };
    let deconv = Deconv {
        pool_spec,
        kernel_format: KernelFormat::OHWI,
        adjustments,
        group: 1,
    };
    let cout = ws[0];
    match mode(&x, &w)? {
        Mode::Integer => {
            let wq = w
                .quant
                .clone()
                .unwrap_or_else(|| QuantParams::per_tensor(1.0, 0));
            let wc = centered_weights(&wk, &QuantParams { axis: 0, ..wq })?;
            let x_zp = x.quant.as_ref().map(|q| q.zp0()).unwrap_or(0);
            let dt = exact_dt(acc_bound(&wc, 0, x.dtype, x_zp)? * (ws[1] * ws[2]) as f64);
            let xf = centered_input(imp, &x, dt)?;
            let wc = imp.konst_outlet("kernel", wc.cast_to_dt(dt)?.into_owned())?;
            let zero = imp.konst_outlet("zero_bias", Tensor::zero_dt(dt, &[cout])?)?;
            let acc = imp.wire1("deconv", deconv, &[xf, wc, zero])?;
            let b = int_bias(imp, bias.as_ref(), cout)?;
            Ok(vec![requantize(imp, cx, acc, &x, &w, b, act)?])
        }
        Mode::Float => {
            let wf = to_float(imp, &w)?;
            let b = match &bias {
                Some(b) => to_float(imp, b)?,
                None => imp.konst_outlet("zero_bias", Tensor::zero::<f32>(&[cout])?)?,
            };
            let xf = to_float(imp, &x)?;
            let y = imp.wire1("deconv", deconv, &[xf, wf, b])?;
            Ok(vec![finish_float(imp, cx, y, act)?])
        }
        Mode::Hybrid => unsupported!("hybrid TRANSPOSE_CONV"),
    }
}

/// BATCH_MATMUL on float tensors of equal rank.
pub(crate) fn batch_matmul(imp: &mut Importer, cx: &OpCx) -> OpResult<Vec<Value>> {
    let o = cx.op.builtin_options_as_batch_mat_mul_options();
    let (adj_x, adj_y) = o.map(|o| (o.adj_x(), o.adj_y())).unwrap_or((false, false));
    let a = imp.input(cx, 0)?;
    let b = imp.input(cx, 1)?;
    let af = to_float(imp, &a)?;
    let bf = to_float(imp, &b)?;
    let (af, bf) = super::arith::same_rank(imp, af, bf)?;
    let rank = imp.target.outlet_fact(af)?.rank();
    if !(2..=6).contains(&rank) {
        unsupported!("rank {rank}")
    }
    let batch: String = "abcd".chars().take(rank - 2).collect();
    let lhs = if adj_x {
        format!("{batch}km")
    } else {
        format!("{batch}mk")
    };
    let rhs = if adj_y {
        format!("{batch}nk")
    } else {
        format!("{batch}kn")
    };
    let expr = format!("{lhs},{rhs}->{batch}mn");
    let y = imp.wire1(
        "matmul",
        EinSum::new(expr.parse()?, f32::datum_type()),
        &[af, bf],
    )?;
    Ok(vec![finish_float(imp, cx, y, Act::NONE)?])
}
