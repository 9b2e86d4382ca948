//! Elementwise operators, fused activations, and the float path for quantized elementwise ops
//! (dequantize, compute in f32, requantize to the output's own parameters), which LiteRT's
//! integer kernels match to within one quantized step.

use tract_core::internal::*;
use tract_core::ops::{math, nn};
use tract_tflite::tflite::{ActivationFunctionType as Act, BuiltinOperator as B};

use super::{invalid, unsupported, Importer, OpCx, OpResult, Value};
use crate::dtype::ElementType;
use crate::kernels::{DequantizeLinear, Lut8, QuantizeLinear};
use crate::quant::{quantize_value, QuantParams};

/// The value as f32: dequantized when quantized, cast when integer.
pub(crate) fn to_float(imp: &mut Importer, v: &Value) -> OpResult<OutletId> {
    if let Some(q) = &v.quant {
        if v.dtype.is_float() {
            return Ok(v.outlet);
        }
        if let Some(k) = imp.konst(v)? {
            let t = dequantize_const(&k, q)?;
            return imp.konst_outlet("dequantized", t);
        }
        if q.is_per_channel() {
            unsupported!("per-channel quantized activations")
        }
        let op = DequantizeLinear {
            scale: vec![q.scale0()],
            zero_point: vec![q.zp0()],
        };
        return imp.wire1("dequantize", op, &[v.outlet]);
    }
    match v.dtype {
        ElementType::F32 => Ok(v.outlet),
        ElementType::F16 => {
            if let Some(k) = imp.konst(v)? {
                let t = k.cast_to::<f32>()?.into_owned();
                imp.konst_outlet("widened", t)
            } else {
                imp.wire1(
                    "to_f32",
                    tract_core::ops::cast::cast(f32::datum_type()),
                    &[v.outlet],
                )
            }
        }
        _ => imp.wire1(
            "to_f32",
            tract_core::ops::cast::cast(f32::datum_type()),
            &[v.outlet],
        ),
    }
}

/// Dequantizes a constant with per-axis parameters on any axis.
pub(crate) fn dequantize_const(t: &Tensor, q: &QuantParams) -> OpResult<Tensor> {
    let ints = crate::kernels::ints_as_i32(t)?;
    let shape = t.shape();
    let inner: usize = shape.iter().skip(q.axis + 1).product();
    let channels = if q.is_per_channel() {
        shape.get(q.axis).copied().unwrap_or(1)
    } else {
        1
    };
    if q.is_per_channel() && channels != q.scale.len() {
        invalid!(
            "{} per-channel scales for {channels} channels on axis {}",
            q.scale.len(),
            q.axis
        )
    }
    let values: Vec<f32> = ints
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = if channels > 1 {
                (i / inner.max(1)) % channels
            } else {
                0
            };
            q.scale_at(c) * (v - q.zp_at(c)) as f32
        })
        .collect();
    Ok(Tensor::from_shape(shape, &values)?)
}

/// Clamp range of a fused activation in the real domain.
pub(crate) fn act_bounds(act: Act) -> OpResult<(f32, f32)> {
    Ok(match act {
        Act::NONE => (f32::NEG_INFINITY, f32::INFINITY),
        Act::RELU => (0.0, f32::INFINITY),
        Act::RELU6 => (0.0, 6.0),
        Act::RELU_N1_TO_1 => (-1.0, 1.0),
        other => unsupported!("fused activation {}", other.variant_name().unwrap_or("?")),
    })
}

/// Quantized clamp range of a fused activation for an output with `q` parameters.
pub(crate) fn act_range_q(act: Act, q: &QuantParams, dtype: ElementType) -> OpResult<(i32, i32)> {
    let Some((lo, hi)) = dtype.int_range() else {
        invalid!("quantized output of type {dtype}")
    };
    let (rlo, rhi) = act_bounds(act)?;
    let (s, zp) = (q.scale0(), q.zp0());
    let qlo = if rlo.is_finite() {
        lo.max(zp + (rlo / s).round() as i32)
    } else {
        lo
    };
    let qhi = if rhi.is_finite() {
        hi.min(zp + (rhi / s).round() as i32)
    } else {
        hi
    };
    Ok((qlo, qhi))
}

/// A rank-`rank` f32 constant holding `x` (shape [1, 1, ...]) for broadcasting.
pub(crate) fn scalar_like(imp: &mut Importer, x: f32, rank: usize) -> OpResult<OutletId> {
    let t = tensor0(x).broadcast_into_rank(rank)?;
    imp.konst_outlet("scalar", t)
}

/// Applies a fused activation to an f32 wire.
pub(crate) fn float_activation(imp: &mut Importer, x: OutletId, act: Act) -> OpResult<OutletId> {
    if act == Act::TANH {
        return imp.wire1("tanh", math::tanh(), &[x]);
    }
    if act == Act::SIGN_BIT {
        unsupported!("fused activation SIGN_BIT")
    }
    let (lo, hi) = act_bounds(act)?;
    let rank = imp.target.outlet_fact(x)?.rank();
    let mut x = x;
    if lo.is_finite() {
        let c = scalar_like(imp, lo, rank)?;
        x = imp.wire1("act_min", math::max(), &[x, c])?;
    }
    if hi.is_finite() {
        let c = scalar_like(imp, hi, rank)?;
        x = imp.wire1("act_max", math::min(), &[x, c])?;
    }
    Ok(x)
}

/// Turns an f32 result into the operator's declared output: quantized (with the activation folded
/// into the clamp) or float (with the activation applied).
pub(crate) fn finish_float(
    imp: &mut Importer,
    cx: &OpCx,
    x: OutletId,
    act: Act,
) -> OpResult<Value> {
    let info = imp.out_info(cx, 0)?;
    match (&info.quant, info.dtype) {
        (Some(q), dt) if !dt.is_float() => {
            if act == Act::TANH {
                unsupported!("fused TANH on a quantized output")
            }
            let (min, max) = act_range_q(act, q, dt)?;
            let op = QuantizeLinear {
                scale: q.scale0(),
                zero_point: q.zp0(),
                min,
                max,
                out: dt.datum_type(),
            };
            let outlet = imp.wire1("quantize", op, &[x])?;
            Ok(Value {
                outlet,
                dtype: dt,
                quant: Some(q.clone()),
                known: None,
            })
        }
        _ => {
            let outlet = float_activation(imp, x, act)?;
            Ok(imp.plain(outlet, ElementType::F32))
        }
    }
}

/// Brings two wires to the same rank by prepending unit axes to the shorter one.
pub(crate) fn same_rank(
    imp: &mut Importer,
    a: OutletId,
    b: OutletId,
) -> OpResult<(OutletId, OutletId)> {
    let ra = imp.target.outlet_fact(a)?.rank();
    let rb = imp.target.outlet_fact(b)?.rank();
    let lift =
        |imp: &mut Importer, mut x: OutletId, from: usize, to: usize| -> OpResult<OutletId> {
            for _ in from..to {
                x = imp.wire1("broadcast_rank", AxisOp::Add(0), &[x])?;
            }
            Ok(x)
        };
    Ok((lift(imp, a, ra, rb)?, lift(imp, b, rb, ra)?))
}

fn binary_options_act(cx: &OpCx, op: B) -> Act {
    match op {
        B::ADD => cx
            .op
            .builtin_options_as_add_options()
            .map(|o| o.fused_activation_function()),
        B::SUB => cx
            .op
            .builtin_options_as_sub_options()
            .map(|o| o.fused_activation_function()),
        B::MUL => cx
            .op
            .builtin_options_as_mul_options()
            .map(|o| o.fused_activation_function()),
        B::DIV => cx
            .op
            .builtin_options_as_div_options()
            .map(|o| o.fused_activation_function()),
        _ => None,
    }
    .unwrap_or(Act::NONE)
}

/// Known-value arithmetic on shape vectors (e.g. `batch * 49`).
fn known_binary(a: &[TDim], b: &[TDim], op: B) -> Option<Vec<TDim>> {
    let n = a.len().max(b.len());
    if !(a.len() == n || a.len() == 1) || !(b.len() == n || b.len() == 1) {
        return None;
    }
    (0..n)
        .map(|i| {
            let x = a[if a.len() == 1 { 0 } else { i }].clone();
            let y = b[if b.len() == 1 { 0 } else { i }].clone();
            match op {
                B::ADD => Some(x + y),
                B::SUB => Some(x - y),
                B::MUL => Some(x * y),
                B::DIV => y.as_i64().filter(|&d| d > 0).map(|d| x / d as u64),
                _ => None,
            }
        })
        .collect()
}

/// ADD, SUB, MUL, DIV, MAXIMUM, MINIMUM, SQUARED_DIFFERENCE, POW.
pub(crate) fn binary(imp: &mut Importer, cx: &OpCx, op: B) -> OpResult<Vec<Value>> {
    let a = imp.input(cx, 0)?;
    let b = imp.input(cx, 1)?;
    let act = binary_options_act(cx, op);
    if let (Some(ka), Some(kb)) = (&a.known, &b.known) {
        if let Some(values) = known_binary(ka, kb, op) {
            let scalar = imp.shape(&a)?.is_empty() && imp.shape(&b)?.is_empty();
            let outlet = imp.konst_outlet("known", super::known_tensor(&values, scalar)?)?;
            return Ok(vec![Value {
                outlet,
                dtype: ElementType::I32,
                quant: None,
                known: Some(values),
            }]);
        }
    }
    let info = imp.out_info(cx, 0)?;
    let integer = !info.dtype.is_float() && info.quant.is_none();
    let (x, y) = if integer {
        (a.outlet, b.outlet)
    } else {
        (to_float(imp, &a)?, to_float(imp, &b)?)
    };
    let (x, y) = same_rank(imp, x, y)?;
    let out = match op {
        B::ADD => imp.wire1("add", math::add(), &[x, y])?,
        B::SUB => imp.wire1("sub", math::sub(), &[x, y])?,
        B::MUL => imp.wire1("mul", math::mul(), &[x, y])?,
        B::DIV => imp.wire1("div", math::div(), &[x, y])?,
        B::MAXIMUM => imp.wire1("max", math::max(), &[x, y])?,
        B::MINIMUM => imp.wire1("min", math::min(), &[x, y])?,
        B::POW => imp.wire1("pow", math::pow(), &[x, y])?,
        B::SQUARED_DIFFERENCE => {
            let d = imp.wire1("sub", math::sub(), &[x, y])?;
            imp.wire1("square", math::square(), &[d])?
        }
        _ => unsupported!(""),
    };
    if integer {
        if act != Act::NONE {
            unsupported!("fused activation on an integer {}", cx.name)
        }
        return Ok(vec![imp.plain(out, info.dtype)]);
    }
    Ok(vec![finish_float(imp, cx, out, act)?])
}

fn unary_fn(op: B, cx: &OpCx) -> OpResult<Box<dyn Fn(f32) -> f32>> {
    Ok(match op {
        B::LOGISTIC => Box::new(|x| 1.0 / (1.0 + (-x).exp())),
        B::TANH => Box::new(f32::tanh),
        B::RELU => Box::new(|x| x.max(0.0)),
        B::RELU6 => Box::new(|x| x.clamp(0.0, 6.0)),
        B::RELU_N1_TO_1 => Box::new(|x| x.clamp(-1.0, 1.0)),
        B::RELU_0_TO_1 => Box::new(|x| x.clamp(0.0, 1.0)),
        B::HARD_SWISH => Box::new(|x| x * (x + 3.0).clamp(0.0, 6.0) / 6.0),
        B::LEAKY_RELU => {
            let alpha = cx
                .op
                .builtin_options_as_leaky_relu_options()
                .map(|o| o.alpha())
                .unwrap_or(0.2);
            Box::new(move |x| if x >= 0.0 { x } else { alpha * x })
        }
        B::ELU => Box::new(|x| if x >= 0.0 { x } else { x.exp() - 1.0 }),
        B::EXP => Box::new(f32::exp),
        B::LOG => Box::new(f32::ln),
        B::ABS => Box::new(f32::abs),
        B::NEG => Box::new(|x| -x),
        B::SQRT => Box::new(f32::sqrt),
        B::RSQRT => Box::new(|x| 1.0 / x.sqrt()),
        B::SQUARE => Box::new(|x| x * x),
        B::GELU => Box::new(|x| 0.5 * x * (1.0 + erf(x / std::f32::consts::SQRT_2))),
        _ => unsupported!(""),
    })
}

/// Abramowitz-Stegun erf, enough for 8-bit lookup tables.
fn erf(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let y = 1.0
        - (((((1.061_405_4 * t - 1.453_152_1) * t) + 1.421_413_7) * t - 0.284_496_74) * t
            + 0.254_829_6)
            * t
            * (-x * x).exp();
    y.copysign(x)
}

/// Unary activations and math. Quantized 8-bit inputs use a lookup table built as LiteRT builds
/// its own (dequantize, apply, requantize).
pub(crate) fn unary(imp: &mut Importer, cx: &OpCx, op: B) -> OpResult<Vec<Value>> {
    let x = imp.input(cx, 0)?;
    let info = imp.out_info(cx, 0)?;
    if let (Some(qi), Some(qo)) = (&x.quant, &info.quant) {
        if matches!(x.dtype, ElementType::I8 | ElementType::U8) && !info.dtype.is_float() {
            let f = unary_fn(op, cx)?;
            let (lo, hi) = info.dtype.int_range().unwrap_or((-128, 127));
            let (si, zi, so, zo) = (qi.scale0(), qi.zp0(), qo.scale0(), qo.zp0());
            let lut = Lut8::build(x.dtype.datum_type(), info.dtype.datum_type(), |q| {
                quantize_value(f(si * (q - zi) as f32), so, zo, lo, hi)
            })?;
            let outlet = imp.wire1(&cx.name.to_lowercase(), lut, &[x.outlet])?;
            return Ok(vec![Value {
                outlet,
                dtype: info.dtype,
                quant: Some(qo.clone()),
                known: None,
            }]);
        }
    }
    let xf = to_float(imp, &x)?;
    let rank = imp.target.outlet_fact(xf)?.rank();
    let y = match op {
        B::LOGISTIC => imp.wire1("sigmoid", nn::sigmoid(), &[xf])?,
        B::TANH => imp.wire1("tanh", math::tanh(), &[xf])?,
        B::RELU => float_activation(imp, xf, Act::RELU)?,
        B::RELU6 => float_activation(imp, xf, Act::RELU6)?,
        B::RELU_N1_TO_1 => float_activation(imp, xf, Act::RELU_N1_TO_1)?,
        B::RELU_0_TO_1 => {
            let zero = scalar_like(imp, 0.0, rank)?;
            let one = scalar_like(imp, 1.0, rank)?;
            let y = imp.wire1("max", math::max(), &[xf, zero])?;
            imp.wire1("min", math::min(), &[y, one])?
        }
        B::HARD_SWISH => imp.wire1("hard_swish", nn::hard_swish(), &[xf])?,
        B::LEAKY_RELU => {
            let alpha = cx
                .op
                .builtin_options_as_leaky_relu_options()
                .map(|o| o.alpha())
                .unwrap_or(0.2);
            imp.wire1("leaky_relu", nn::leaky_relu(alpha), &[xf])?
        }
        B::EXP => imp.wire1("exp", math::exp(), &[xf])?,
        B::LOG => imp.wire1("ln", math::ln(), &[xf])?,
        B::ABS => imp.wire1("abs", math::abs(), &[xf])?,
        B::NEG => imp.wire1("neg", math::neg(), &[xf])?,
        B::SQRT => imp.wire1("sqrt", math::sqrt(), &[xf])?,
        B::RSQRT => imp.wire1("rsqrt", math::rsqrt(), &[xf])?,
        B::SQUARE => imp.wire1("square", math::square(), &[xf])?,
        _ => unsupported!("{} on float tensors", cx.name),
    };
    Ok(vec![finish_float(imp, cx, y, Act::NONE)?])
}

/// PRELU: `x >= 0 ? x : alpha * x`, alpha broadcast over the input.
pub(crate) fn prelu(imp: &mut Importer, cx: &OpCx) -> OpResult<Vec<Value>> {
    let x = imp.input(cx, 0)?;
    let alpha = imp.input(cx, 1)?;
    let xf = to_float(imp, &x)?;
    let af = to_float(imp, &alpha)?;
    let (xf2, af) = same_rank(imp, xf, af)?;
    let rank = imp.target.outlet_fact(xf2)?.rank();
    let zero = scalar_like(imp, 0.0, rank)?;
    let pos = imp.wire1("prelu_pos", math::max(), &[xf2, zero])?;
    let neg = imp.wire1("prelu_neg", math::min(), &[xf2, zero])?;
    let scaled = imp.wire1("prelu_scale", math::mul(), &[neg, af])?;
    let y = imp.wire1("prelu", math::add(), &[pos, scaled])?;
    Ok(vec![finish_float(imp, cx, y, Act::NONE)?])
}
