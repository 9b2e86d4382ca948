//! Operators that move data without arithmetic: reshapes, slices, packing, concatenation,
//! gathering, transposition and padding. Small shape vectors flowing through them are evaluated
//! at import time (see [`Value::known`]) so that a dynamic batch stays symbolic.

use tract_core::internal::*;
use tract_core::ops::array::{Gather, Pad, PadMode, Slice, TypedConcat};
use tract_core::ops::Downsample;
use tract_tflite::tflite::{ActivationFunctionType as Act, BuiltinOperator as B};

use super::arith::{finish_float, to_float};
use super::{invalid, known_tensor, unsupported, Importer, OpCx, OpResult, Value};
use crate::dtype::ElementType;

/// Normalizes a possibly negative axis.
pub(crate) fn axis_of(axis: i64, rank: usize) -> OpResult<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    if a < 0 || a >= rank.max(1) as i64 {
        invalid!("axis {axis} out of range for rank {rank}")
    }
    Ok(a as usize)
}

/// A value computed at import time from shape arithmetic.
fn known_value(
    imp: &mut Importer,
    values: Vec<TDim>,
    scalar: bool,
    dtype: ElementType,
) -> OpResult<Value> {
    let mut t = known_tensor(&values, scalar)?;
    if dtype == ElementType::I64 && t.datum_type() == i32::datum_type() {
        t = t.cast_to::<i64>()?.into_owned();
    }
    let outlet = imp.konst_outlet("known", t)?;
    Ok(Value {
        outlet,
        dtype,
        quant: None,
        known: Some(values),
    })
}

fn int_list(v: &Value, what: &str) -> OpResult<Vec<i64>> {
    let Some(k) = &v.known else {
        unsupported!("a non-constant {what}")
    };
    k.iter()
        .map(|d| {
            d.as_i64()
                .ok_or_else(|| super::OpError::Unsupported(format!("a symbolic {what}")))
        })
        .collect()
}

/// Passes the data through unchanged but under the output's declared quantization.
fn same_data(imp: &Importer, cx: &OpCx, outlet: OutletId, like: &Value) -> OpResult<Value> {
    let info = imp.out_info(cx, 0)?;
    Ok(Value {
        outlet,
        dtype: like.dtype,
        quant: info.quant.or_else(|| like.quant.clone()),
        known: None,
    })
}

/// Resolves a TFLite target shape (with at most one -1) against the input's volume.
fn resolve_shape(imp: &Importer, input: &[TDim], target: &[i64]) -> OpResult<TVec<TDim>> {
    let volume: TDim = input.iter().product();
    let mut out: TVec<TDim> = target.iter().map(|&d| d.max(0).to_dim()).collect();
    let wild: Vec<usize> = target
        .iter()
        .enumerate()
        .filter(|(_, &d)| d < 0)
        .map(|(i, _)| i)
        .collect();
    if wild.len() > 1 {
        invalid!("target shape {target:?} has more than one -1")
    }
    if let Some(&w) = wild.first() {
        let known: i64 = target.iter().filter(|&&d| d >= 0).product();
        if known == 0 {
            invalid!("target shape {target:?} has a zero dimension next to -1")
        }
        out[w] = volume.clone() / known as u64;
    }
    let produced: TDim = out.iter().product();
    let check = |d: &TDim| -> Option<i64> {
        let mut values = SymbolValues::default();
        if let Some(b) = &imp.batch {
            values = values.with(b, 3);
        }
        d.eval(&values).as_i64()
    };
    if let (Some(a), Some(b)) = (check(&volume), check(&produced)) {
        if a != b {
            invalid!("cannot reshape {input:?} to {target:?}")
        }
    }
    Ok(out)
}

/// Reshapes a wire between two shapes of equal volume.
pub(crate) fn reshape_to(
    imp: &mut Importer,
    outlet: OutletId,
    to: TVec<TDim>,
) -> OpResult<OutletId> {
    let from = imp.target.outlet_fact(outlet)?.shape.to_tvec();
    if from == to {
        return Ok(outlet);
    }
    imp.wire1("reshape", AxisOp::Reshape(0, from, to), &[outlet])
}

/// RESHAPE, SQUEEZE, EXPAND_DIMS.
pub(crate) fn reshape(imp: &mut Importer, cx: &OpCx, op: B) -> OpResult<Vec<Value>> {
    let x = imp.input(cx, 0)?;
    let in_shape = imp.shape(&x)?;
    let out: TVec<TDim> = match op {
        B::RESHAPE => {
            let target: Vec<i64> = match imp.opt_input(cx, 1)? {
                Some(s) => int_list_dims(&s)?,
                None => match cx
                    .op
                    .builtin_options_as_reshape_options()
                    .and_then(|o| o.new_shape())
                {
                    Some(ns) => ns.iter().map(i64::from).collect(),
                    None => imp
                        .out_info(cx, 0)?
                        .shape
                        .iter()
                        .map(|&d| d as i64)
                        .collect(),
                },
            };
            if let Some(known) = imp.opt_input(cx, 1)?.and_then(|s| s.known) {
                if known.iter().any(|d| d.as_i64().is_none()) {
                    // Symbolic target (e.g. [batch, 784]) from shape arithmetic.
                    let mut dims: TVec<TDim> = known.into_iter().collect();
                    let wild: Vec<usize> = dims
                        .iter()
                        .enumerate()
                        .filter(|(_, d)| d.as_i64() == Some(-1))
                        .map(|(i, _)| i)
                        .collect();
                    if let Some(&w) = wild.first() {
                        let rest: TDim = dims
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| *i != w)
                            .map(|(_, d)| d.clone())
                            .product();
                        let Some(r) = rest.as_i64() else {
                            unsupported!("a symbolic reshape target with -1")
                        };
                        dims[w] = in_shape.iter().product::<TDim>() / r as u64;
                    }
                    dims
                } else {
                    resolve_shape(imp, &in_shape, &target)?
                }
            } else {
                resolve_shape(imp, &in_shape, &target)?
            }
        }
        B::SQUEEZE => {
            let dims: Vec<i32> = cx
                .op
                .builtin_options_as_squeeze_options()
                .and_then(|o| o.squeeze_dims())
                .map(|d| d.iter().collect())
                .unwrap_or_default();
            let axes: Vec<usize> = dims
                .iter()
                .map(|&d| axis_of(d as i64, in_shape.len()))
                .collect::<OpResult<_>>()?;
            in_shape
                .iter()
                .enumerate()
                .filter(|(i, d)| {
                    if axes.is_empty() {
                        !d.is_one()
                    } else {
                        !axes.contains(i)
                    }
                })
                .map(|(_, d)| d.clone())
                .collect()
        }
        _ => {
            let axis = int_list(&imp.input(cx, 1)?, "axis")?;
            let Some(&a) = axis.first() else {
                invalid!("empty axis")
            };
            let a = axis_of(a, in_shape.len() + 1)?;
            let mut s = in_shape.clone();
            s.insert(a, 1.to_dim());
            s
        }
    };
    if let Some(k) = &x.known {
        let scalar = out.is_empty();
        return Ok(vec![known_value(imp, k.clone(), scalar, x.dtype)?]);
    }
    let outlet = reshape_to(imp, x.outlet, out)?;
    Ok(vec![same_data(imp, cx, outlet, &x)?])
}

fn int_list_dims(v: &Value) -> OpResult<Vec<i64>> {
    let Some(k) = &v.known else {
        unsupported!("a non-constant target shape")
    };
    Ok(k.iter().map(|d| d.as_i64().unwrap_or(-1)).collect())
}

/// SHAPE: evaluated at import; symbolic in the batch size when the batch is dynamic.
pub(crate) fn shape(imp: &mut Importer, cx: &OpCx) -> OpResult<Vec<Value>> {
    let x = imp.input(cx, 0)?;
    let dims = imp.shape(&x)?.into_vec();
    let dtype = imp.out_info(cx, 0)?.dtype;
    Ok(vec![known_value(imp, dims, false, dtype)?])
}

/// One axis of a strided slice after TFLite's normalization: (begin, end, stride, shrink).
fn slice_axis(
    dim: i64,
    begin: i64,
    end: i64,
    stride: i64,
    bmask: bool,
    emask: bool,
    shrink: bool,
) -> (i64, i64, i64) {
    let norm = |v: i64| if v < 0 { v + dim } else { v };
    if shrink {
        let b = norm(begin).clamp(0, dim.max(1) - 1);
        return (b, b + 1, 1);
    }
    let (b, e) = if stride > 0 {
        let b = if bmask { 0 } else { norm(begin).clamp(0, dim) };
        let e = if emask { dim } else { norm(end).clamp(0, dim) };
        (b, e)
    } else {
        let b = if bmask {
            dim - 1
        } else {
            norm(begin).clamp(-1, dim - 1)
        };
        let e = if emask {
            -1
        } else {
            norm(end).clamp(-1, dim - 1)
        };
        (b, e)
    };
    (b, e, stride)
}

/// STRIDED_SLICE with begin/end/shrink masks and constant bounds.
pub(crate) fn strided_slice(imp: &mut Importer, cx: &OpCx) -> OpResult<Vec<Value>> {
    let Some(o) = cx.op.builtin_options_as_strided_slice_options() else {
        invalid!("missing options")
    };
    if o.ellipsis_mask() != 0 || o.new_axis_mask() != 0 {
        unsupported!("ellipsis or new-axis masks")
    }
    let x = imp.input(cx, 0)?;
    let begin = int_list(&imp.input(cx, 1)?, "begin")?;
    let end = int_list(&imp.input(cx, 2)?, "end")?;
    let strides = match imp.opt_input(cx, 3)? {
        Some(s) => int_list(&s, "strides")?,
        None => vec![1; begin.len()],
    };
    let shape = imp.shape(&x)?;
    let n = begin.len();
    if end.len() != n || strides.len() != n || n > shape.len() {
        invalid!(
            "begin/end/strides lengths {}/{}/{} for rank {}",
            n,
            end.len(),
            strides.len(),
            shape.len()
        )
    }
    if strides.contains(&0) {
        invalid!("zero stride")
    }
    let bit = |m: i32, i: usize| m & (1 << i) != 0;
    let end_rel = |i: usize| end[i];
    // Known 1-D vectors (shape arithmetic) are sliced here.
    if let (Some(k), 1) = (&x.known, shape.len()) {
        let dim = k.len() as i64;
        let (b, e, s) = slice_axis(
            dim,
            begin[0],
            end_rel(0),
            strides[0],
            bit(o.begin_mask(), 0),
            bit(o.end_mask(), 0),
            bit(o.shrink_axis_mask(), 0),
        );
        let mut picked = vec![];
        let mut i = b;
        while (s > 0 && i < e) || (s < 0 && i > e) {
            picked.push(k[i as usize].clone());
            i += s;
        }
        let shrink = bit(o.shrink_axis_mask(), 0);
        return Ok(vec![known_value(imp, picked, shrink, x.dtype)?]);
    }
    let mut wire = x.outlet;
    let mut removed = vec![];
    for i in 0..n {
        let shrink = bit(o.shrink_axis_mask(), i);
        let (bm, em) = (bit(o.begin_mask(), i), bit(o.end_mask(), i));
        let Some(dim) = shape[i].as_i64() else {
            let full = strides[i] == 1
                && (bm || begin[i] == 0)
                && (em || end_rel(i) >= i32::MAX as i64 / 2);
            if full && !shrink {
                continue;
            }
            unsupported!("slicing the dynamic dimension {i}")
        };
        let (b, e, s) = slice_axis(dim, begin[i], end_rel(i), strides[i], bm, em, shrink);
        if s < 0 {
            unsupported!("negative strides")
        }
        let e = e.max(b);
        if b != 0 || e != dim {
            wire = imp.wire1(
                "slice",
                Slice {
                    axis: i,
                    start: (b as usize).to_dim(),
                    end: (e as usize).to_dim(),
                },
                &[wire],
            )?;
        }
        if s > 1 {
            wire = imp.wire1(
                "stride",
                Downsample {
                    axis: i,
                    stride: s as isize,
                    modulo: 0,
                },
                &[wire],
            )?;
        }
        if shrink {
            removed.push(i);
        }
    }
    for &i in removed.iter().rev() {
        wire = imp.wire1("shrink", AxisOp::Rm(i), &[wire])?;
    }
    Ok(vec![same_data(imp, cx, wire, &x)?])
}

/// SLICE(input, begin, size) with size -1 meaning "to the end".
pub(crate) fn slice(imp: &mut Importer, cx: &OpCx) -> OpResult<Vec<Value>> {
    let x = imp.input(cx, 0)?;
    let begin = int_list(&imp.input(cx, 1)?, "begin")?;
    let size = int_list(&imp.input(cx, 2)?, "size")?;
    let shape = imp.shape(&x)?;
    if let (Some(k), 1) = (&x.known, shape.len()) {
        let b = begin.first().copied().unwrap_or(0).max(0) as usize;
        let s = size.first().copied().unwrap_or(-1);
        let e = if s < 0 {
            k.len()
        } else {
            (b + s as usize).min(k.len())
        };
        let picked = k.get(b..e).map(|s| s.to_vec()).unwrap_or_default();
        return Ok(vec![known_value(imp, picked, false, x.dtype)?]);
    }
    let mut wire = x.outlet;
    for (axis, (&b, &s)) in begin.iter().zip(&size).enumerate() {
        if axis >= shape.len() {
            invalid!("begin has more entries than the input has axes")
        }
        let end = if s < 0 {
            shape[axis].clone()
        } else {
            (b + s).to_dim()
        };
        if b == 0 && end == shape[axis] {
            continue;
        }
        wire = imp.wire1(
            "slice",
            Slice {
                axis,
                start: b.to_dim(),
                end,
            },
            &[wire],
        )?;
    }
    Ok(vec![same_data(imp, cx, wire, &x)?])
}

/// PACK: stack along a new axis.
pub(crate) fn pack(imp: &mut Importer, cx: &OpCx) -> OpResult<Vec<Value>> {
    let axis = cx
        .op
        .builtin_options_as_pack_options()
        .map(|o| o.axis())
        .unwrap_or(0) as i64;
    let values: Vec<Value> = (0..cx.inputs.len())
        .map(|k| imp.input(cx, k))
        .collect::<OpResult<_>>()?;
    let Some(first) = values.first().cloned() else {
        invalid!("no inputs")
    };
    let rank = imp.shape(&first)?.len();
    let axis = axis_of(axis, rank + 1)?;
    if rank == 0
        && values
            .iter()
            .all(|v| v.known.as_ref().is_some_and(|k| k.len() == 1))
    {
        let all: Vec<TDim> = values
            .iter()
            .flat_map(|v| v.known.clone().unwrap_or_default())
            .collect();
        return Ok(vec![known_value(imp, all, false, first.dtype)?]);
    }
    let mut wires = tvec![];
    for v in &values {
        wires.push(imp.wire1("pack_axis", AxisOp::Add(axis), &[v.outlet])?);
    }
    let outlet = imp.wire1("pack", TypedConcat { axis }, &wires)?;
    Ok(vec![same_data(imp, cx, outlet, &first)?])
}

/// UNPACK: one output per index along an axis, the axis removed.
pub(crate) fn unpack(imp: &mut Importer, cx: &OpCx) -> OpResult<Vec<Value>> {
    let x = imp.input(cx, 0)?;
    let shape = imp.shape(&x)?;
    let axis = cx
        .op
        .builtin_options_as_unpack_options()
        .map(|o| o.axis())
        .unwrap_or(0) as i64;
    let axis = axis_of(axis, shape.len())?;
    let n = shape[axis].to_usize()?;
    let mut out = vec![];
    for i in 0..n {
        let s = imp.wire1(
            "unpack",
            Slice {
                axis,
                start: i.to_dim(),
                end: (i + 1).to_dim(),
            },
            &[x.outlet],
        )?;
        let s = imp.wire1("unpack_rm", AxisOp::Rm(axis), &[s])?;
        out.push(Value {
            outlet: s,
            ..x.clone()
        });
    }
    Ok(out)
}

/// CONCATENATION, rescaling quantized inputs whose parameters differ from the output's.
pub(crate) fn concat(imp: &mut Importer, cx: &OpCx) -> OpResult<Vec<Value>> {
    let o = cx.op.builtin_options_as_concatenation_options();
    let act = o
        .map(|o| o.fused_activation_function())
        .unwrap_or(Act::NONE);
    let values: Vec<Value> = (0..cx.inputs.len())
        .map(|k| imp.input(cx, k))
        .collect::<OpResult<_>>()?;
    let Some(first) = values.first().cloned() else {
        invalid!("no inputs")
    };
    let rank = imp.shape(&first)?.len();
    let axis = axis_of(o.map(|o| o.axis()).unwrap_or(0) as i64, rank)?;
    if rank == 1 && values.iter().all(|v| v.known.is_some()) {
        let all: Vec<TDim> = values
            .iter()
            .flat_map(|v| v.known.clone().unwrap_or_default())
            .collect();
        return Ok(vec![known_value(imp, all, false, first.dtype)?]);
    }
    let info = imp.out_info(cx, 0)?;
    let requant = info.quant.is_some()
        && (act != Act::NONE
            || values.iter().any(|v| {
                v.quant.as_ref().map(|q| (q.scale0(), q.zp0()))
                    != info.quant.as_ref().map(|q| (q.scale0(), q.zp0()))
            }));
    if requant || (info.dtype.is_float() && act != Act::NONE) {
        let mut wires = tvec![];
        for v in &values {
            wires.push(to_float(imp, v)?);
        }
        let y = imp.wire1("concat", TypedConcat { axis }, &wires)?;
        return Ok(vec![finish_float(imp, cx, y, act)?]);
    }
    let wires: TVec<OutletId> = values.iter().map(|v| v.outlet).collect();
    let outlet = imp.wire1("concat", TypedConcat { axis }, &wires)?;
    Ok(vec![same_data(imp, cx, outlet, &first)?])
}

/// SPLIT(axis, value) and SPLIT_V(value, sizes, axis).
pub(crate) fn split(imp: &mut Importer, cx: &OpCx, op: B) -> OpResult<Vec<Value>> {
    let (x, axis, sizes) = if op == B::SPLIT {
        let axis = int_list(&imp.input(cx, 0)?, "axis")?;
        (imp.input(cx, 1)?, axis, None)
    } else {
        let sizes = int_list(&imp.input(cx, 1)?, "size_splits")?;
        (
            imp.input(cx, 0)?,
            int_list(&imp.input(cx, 2)?, "axis")?,
            Some(sizes),
        )
    };
    let shape = imp.shape(&x)?;
    let Some(&a) = axis.first() else {
        invalid!("empty axis")
    };
    let axis = axis_of(a, shape.len())?;
    let dim = shape[axis].to_usize()? as i64;
    let n = cx.outputs.len() as i64;
    let mut sizes = sizes.unwrap_or_else(|| vec![if n > 0 { dim / n } else { 0 }; n as usize]);
    if let Some(w) = sizes.iter().position(|&s| s < 0) {
        sizes[w] = dim - sizes.iter().filter(|&&s| s >= 0).sum::<i64>();
    }
    if sizes.iter().sum::<i64>() != dim {
        invalid!("split sizes {sizes:?} do not add up to dimension {dim}")
    }
    let mut start = 0i64;
    let mut out = vec![];
    for s in sizes {
        let w = imp.wire1(
            "split",
            Slice {
                axis,
                start: start.to_dim(),
                end: (start + s).to_dim(),
            },
            &[x.outlet],
        )?;
        out.push(Value {
            outlet: w,
            ..x.clone()
        });
        start += s;
    }
    Ok(out)
}

/// GATHER with `batch_dims == 0`.
pub(crate) fn gather(imp: &mut Importer, cx: &OpCx) -> OpResult<Vec<Value>> {
    let o = cx.op.builtin_options_as_gather_options();
    if o.map(|o| o.batch_dims()).unwrap_or(0) != 0 {
        unsupported!("batch_dims")
    }
    let x = imp.input(cx, 0)?;
    let idx = imp.input(cx, 1)?;
    let shape = imp.shape(&x)?;
    let axis = axis_of(o.map(|o| o.axis()).unwrap_or(0) as i64, shape.len())?;
    if let (Some(k), Some(ix)) = (&x.known, &idx.known) {
        let ixs: Vec<i64> = int_list(&idx, "indices")?;
        let picked = ixs
            .iter()
            .map(|&i| {
                k.get(if i < 0 {
                    (i + k.len() as i64) as usize
                } else {
                    i as usize
                })
                .cloned()
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| super::OpError::Invalid("gather index out of range".into()))?;
        let scalar = imp.shape(&idx)?.is_empty() && ix.len() == 1;
        return Ok(vec![known_value(imp, picked, scalar, x.dtype)?]);
    }
    let idx64 = imp.wire1(
        "indices",
        tract_core::ops::cast::cast(i64::datum_type()),
        &[idx.outlet],
    )?;
    let outlet = imp.wire1(
        "gather",
        Gather {
            axis,
            output_type: None,
        },
        &[x.outlet, idx64],
    )?;
    Ok(vec![same_data(imp, cx, outlet, &x)?])
}

/// Moves axes one by one to realize a permutation.
pub(crate) fn permute(
    imp: &mut Importer,
    mut wire: OutletId,
    perm: &[usize],
) -> OpResult<OutletId> {
    let mut order: Vec<usize> = (0..perm.len()).collect();
    for (i, &p) in perm.iter().enumerate() {
        let Some(cur) = order.iter().position(|&a| a == p) else {
            invalid!("bad permutation {perm:?}")
        };
        if cur != i {
            wire = imp.wire1("transpose", AxisOp::Move(cur, i), &[wire])?;
            let a = order.remove(cur);
            order.insert(i, a);
        }
    }
    Ok(wire)
}

/// TRANSPOSE with a constant permutation.
pub(crate) fn transpose(imp: &mut Importer, cx: &OpCx) -> OpResult<Vec<Value>> {
    let x = imp.input(cx, 0)?;
    let perm = int_list(&imp.input(cx, 1)?, "permutation")?;
    let rank = imp.shape(&x)?.len();
    let mut seen = vec![false; rank];
    let perm: Vec<usize> = perm
        .iter()
        .map(|&p| {
            let a = axis_of(p, rank)?;
            if std::mem::replace(&mut seen[a], true) {
                invalid!("permutation repeats axis {a}")
            }
            Ok(a)
        })
        .collect::<OpResult<_>>()?;
    if perm.len() != rank {
        invalid!("permutation of length {} for rank {rank}", perm.len())
    }
    let outlet = permute(imp, x.outlet, &perm)?;
    Ok(vec![same_data(imp, cx, outlet, &x)?])
}

/// PAD and PADV2 with constant paddings; quantized tensors pad with their zero point.
pub(crate) fn pad(imp: &mut Importer, cx: &OpCx) -> OpResult<Vec<Value>> {
    let x = imp.input(cx, 0)?;
    let p = imp.input(cx, 1)?;
    let Some(pk) = imp.konst(&p)? else {
        unsupported!("non-constant paddings")
    };
    let pads = pk.cast_to::<i64>()?.into_owned();
    let pads = pads.to_plain_array_view::<i64>()?;
    let rank = imp.shape(&x)?.len();
    if pads.shape() != [rank, 2] {
        invalid!("paddings of shape {:?} for rank {rank}", pads.shape())
    }
    let mut list = vec![];
    for i in 0..rank {
        let (b, a) = (pads[[i, 0]], pads[[i, 1]]);
        if b < 0 || a < 0 {
            invalid!("negative padding")
        }
        list.push((b as usize, a as usize));
    }
    let dt = imp.target.outlet_fact(x.outlet)?.datum_type;
    let value = match imp.opt_input(cx, 2)? {
        Some(v) => match imp.konst(&v)? {
            Some(k) => k.cast_to_dt(dt)?.into_owned(),
            None => unsupported!("a non-constant pad value"),
        },
        None => {
            let zp = x.quant.as_ref().map(|q| q.zp0()).unwrap_or(0);
            tensor0(zp).cast_to_dt(dt)?.into_owned()
        }
    };
    let outlet = imp.wire1(
        "pad",
        Pad {
            pads: list,
            mode: PadMode::Constant(Arc::new(value)),
        },
        &[x.outlet],
    )?;
    Ok(vec![same_data(imp, cx, outlet, &x)?])
}

/// DEPTH_TO_SPACE (NHWC, DCR order as TFLite): [n, h, w, b*b*c] -> [n, h*b, w*b, c].
pub(crate) fn depth_to_space(imp: &mut Importer, cx: &OpCx) -> OpResult<Vec<Value>> {
    let b = cx
        .op
        .builtin_options_as_depth_to_space_options()
        .map(|o| o.block_size())
        .unwrap_or(0);
    if b < 1 {
        invalid!("block size {b}")
    }
    let b = b as usize;
    let x = imp.input(cx, 0)?;
    let s = imp.shape(&x)?;
    if s.len() != 4 {
        invalid!("input must be NHWC, got rank {}", s.len())
    }
    let depth = s[3].to_usize()?;
    if depth % (b * b) != 0 {
        invalid!(
            "depth {depth} is not a multiple of block size squared ({})",
            b * b
        )
    }
    let c = depth / (b * b);
    // [n, h, w, b, b, c] -> [n, h, b, w, b, c] -> [n, h*b, w*b, c]
    let split = imp.wire1(
        "d2s_split",
        AxisOp::Reshape(
            3,
            tvec![depth.to_dim()],
            tvec![b.to_dim(), b.to_dim(), c.to_dim()],
        ),
        &[x.outlet],
    )?;
    let moved = imp.wire1("d2s_move", AxisOp::Move(3, 2), &[split])?;
    let out = tvec![s[0].clone(), s[1].clone() * b, s[2].clone() * b, c.to_dim()];
    let outlet = reshape_to(imp, moved, out)?;
    Ok(vec![same_data(imp, cx, outlet, &x)?])
}
