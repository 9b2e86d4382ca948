//! QUANTIZE, DEQUANTIZE, CAST and DENSIFY.

use tract_core::internal::*;
use tract_core::ops::cast::cast;
use tract_tflite::tflite;

use super::arith::{dequantize_const, to_float};
use super::{invalid, unsupported, Importer, OpCx, OpResult, Value};
use crate::dtype::ElementType;
use crate::kernels::{DequantizeLinear, Lut8, QuantizeLinear};
use crate::quant::FixedMultiplier;

/// QUANTIZE: float -> int (round, clamp) or 8-bit -> 8-bit requantization (exact lookup table
/// of LiteRT's fixed-point rescale).
pub(crate) fn quantize(imp: &mut Importer, cx: &OpCx) -> OpResult<Vec<Value>> {
    let x = imp.input(cx, 0)?;
    let info = imp.out_info(cx, 0)?;
    let Some(qo) = info.quant.clone() else {
        invalid!("output has no quantization parameters")
    };
    let Some((lo, hi)) = info.dtype.int_range() else {
        invalid!("cannot quantize to {}", info.dtype)
    };
    if let (Some(qi), ElementType::I8 | ElementType::U8) = (&x.quant, x.dtype) {
        if matches!(info.dtype, ElementType::I8 | ElementType::U8) {
            let m = FixedMultiplier::from_real(qi.scale0() as f64 / qo.scale0() as f64);
            let (zi, zo) = (qi.zp0(), qo.zp0());
            let lut = Lut8::build(x.dtype.datum_type(), info.dtype.datum_type(), |q| {
                (m.apply(q - zi) + zo).clamp(lo, hi)
            })?;
            let outlet = imp.wire1("requantize", lut, &[x.outlet])?;
            return Ok(vec![Value {
                outlet,
                dtype: info.dtype,
                quant: Some(qo),
                known: None,
            }]);
        }
    }
    if qo.is_per_channel() {
        unsupported!("per-channel QUANTIZE of activations")
    }
    let xf = to_float(imp, &x)?;
    let op = QuantizeLinear {
        scale: qo.scale0(),
        zero_point: qo.zp0(),
        min: lo,
        max: hi,
        out: info.dtype.datum_type(),
    };
    let outlet = imp.wire1("quantize", op, &[xf])?;
    Ok(vec![Value {
        outlet,
        dtype: info.dtype,
        quant: Some(qo),
        known: None,
    }])
}

/// DEQUANTIZE: folded at import for constants (fp16 and int8 weights), a kernel otherwise.
pub(crate) fn dequantize(imp: &mut Importer, cx: &OpCx) -> OpResult<Vec<Value>> {
    let x = imp.input(cx, 0)?;
    if let Some(k) = imp.konst(&x)? {
        let t = match &x.quant {
            Some(q) if !x.dtype.is_float() => dequantize_const(&k, q)?,
            _ => k.cast_to::<f32>()?.into_owned(),
        };
        let outlet = imp.konst_outlet("dequantized", t)?;
        return Ok(vec![imp.plain(outlet, ElementType::F32)]);
    }
    let outlet = match &x.quant {
        Some(q) if !q.is_per_channel() => imp.wire1(
            "dequantize",
            DequantizeLinear {
                scale: vec![q.scale0()],
                zero_point: vec![q.zp0()],
            },
            &[x.outlet],
        )?,
        Some(_) => unsupported!("per-channel DEQUANTIZE of activations"),
        None => to_float(imp, &x)?,
    };
    Ok(vec![imp.plain(outlet, ElementType::F32)])
}

/// CAST between plain types (shape vectors stay known).
pub(crate) fn cast_op(imp: &mut Importer, cx: &OpCx) -> OpResult<Vec<Value>> {
    let x = imp.input(cx, 0)?;
    let info = imp.out_info(cx, 0)?;
    if x.known.is_some() && matches!(info.dtype, ElementType::I32 | ElementType::I64) {
        // Shape vectors stay known; their value does not change with an integer cast.
        return Ok(vec![Value {
            dtype: info.dtype,
            ..x
        }]);
    }
    let outlet = imp.wire1("cast", cast(info.dtype.datum_type()), &[x.outlet])?;
    Ok(vec![imp.plain(outlet, info.dtype)])
}

/// DENSIFY: expands a sparse constant (TFLite's sparsity format) at import.
pub(crate) fn densify(imp: &mut Importer, cx: &OpCx) -> OpResult<Vec<Value>> {
    let Some(Some(id)) = cx.inputs.first().copied() else {
        invalid!("missing input")
    };
    let tensors = imp
        .graph
        .tensors()
        .ok_or_else(|| super::OpError::Invalid("no tensors".into()))?;
    let t = tensors.get(id as usize);
    let info = imp.out_info(cx, 0)?;
    let Some(sp) = t.sparsity() else {
        invalid!("input is not sparse")
    };
    let bytes = crate::flat::buffer_bytes(&imp.root, &imp.graph, id)
        .map_err(|e| super::OpError::Invalid(e.to_string()))?
        .ok_or_else(|| super::OpError::Unsupported("a non-constant sparse tensor".into()))?;
    let dtype = info.dtype;
    let values = super::tensor_from_bytes(dtype, &[bytes.len() / dtype.size_of()], bytes)?;
    let dense = expand_sparse(&sp, &info.shape, &values)?;
    let outlet = imp.konst_outlet("densified", dense)?;
    Ok(vec![Value {
        outlet,
        dtype,
        quant: info.quant,
        known: None,
    }])
}

fn to_usizes<T: Into<i64>>(v: impl Iterator<Item = T>) -> Vec<usize> {
    v.map(|x| x.into().max(0) as usize).collect()
}

/// Segments and indices of a sparse dimension, whatever integer width they are stored in.
fn sparse_vectors(m: &tflite::DimensionMetadata<'_>) -> OpResult<(Vec<usize>, Vec<usize>)> {
    let segments = if let Some(v) = m.array_segments_as_int_32_vector().and_then(|v| v.values()) {
        to_usizes(v.iter())
    } else if let Some(v) = m
        .array_segments_as_uint_16_vector()
        .and_then(|v| v.values())
    {
        to_usizes(v.iter())
    } else if let Some(v) = m.array_segments_as_uint_8_vector().and_then(|v| v.values()) {
        to_usizes(v.iter())
    } else {
        invalid!("missing sparse segments")
    };
    let indices = if let Some(v) = m.array_indices_as_int_32_vector().and_then(|v| v.values()) {
        to_usizes(v.iter())
    } else if let Some(v) = m.array_indices_as_uint_16_vector().and_then(|v| v.values()) {
        to_usizes(v.iter())
    } else if let Some(v) = m.array_indices_as_uint_8_vector().and_then(|v| v.values()) {
        to_usizes(v.iter())
    } else {
        invalid!("missing sparse indices")
    };
    Ok((segments, indices))
}

/// Walks TFLite's sparse format (traversal order, block map, dense/CSR dimensions) and writes
/// each stored value at its dense coordinate.
fn expand_sparse(
    sp: &tflite::SparsityParameters<'_>,
    shape: &[usize],
    values: &Tensor,
) -> OpResult<Tensor> {
    let order: Vec<usize> = sp
        .traversal_order()
        .map(|v| v.iter().map(|x| x.max(0) as usize).collect())
        .unwrap_or_default();
    let block_map: Vec<usize> = sp
        .block_map()
        .map(|v| v.iter().map(|x| x.max(0) as usize).collect())
        .unwrap_or_default();
    let Some(meta) = sp.dim_metadata() else {
        invalid!("missing dim_metadata")
    };
    let rank = shape.len();
    if order.len() != meta.len() || order.len() < rank {
        invalid!(
            "traversal order of {} dims for {} metadata entries and rank {rank}",
            order.len(),
            meta.len()
        )
    }
    struct Dim {
        dense: Option<usize>,
        segments: Vec<usize>,
        indices: Vec<usize>,
    }
    let mut dims = vec![];
    for m in meta.iter() {
        if m.format() == tflite::DimensionType::DENSE {
            dims.push(Dim {
                dense: Some(m.dense_size().max(0) as usize),
                segments: vec![],
                indices: vec![],
            });
        } else {
            let (segments, indices) = sparse_vectors(&m)?;
            dims.push(Dim {
                dense: None,
                segments,
                indices,
            });
        }
    }
    // Block sizes: expanded dims beyond `rank` are blocks of the original dims in block_map.
    let block_sizes: Vec<usize> = (0..block_map.len())
        .map(|i| dims[order[rank + i]].dense.unwrap_or(1))
        .collect();
    let src = values.cast_to::<f32>()?;
    let src = src.to_plain_array_view::<f32>()?;
    let src: Vec<f32> = src.iter().copied().collect();
    let volume: usize = shape.iter().product();
    let mut out = vec![0f32; volume];
    let mut coord = vec![0usize; order.len()];
    let mut next_value = 0usize;
    #[allow(clippy::too_many_arguments)]
    fn walk(
        level: usize,
        prev_pos: usize,
        dims: &[Dim],
        order: &[usize],
        coord: &mut Vec<usize>,
        emit: &mut dyn FnMut(&[usize]) -> OpResult<()>,
    ) -> OpResult<()> {
        if level == dims.len() {
            return emit(coord);
        }
        let d = &dims[level];
        if let Some(n) = d.dense {
            for i in 0..n {
                coord[order[level]] = i;
                walk(level + 1, prev_pos * n + i, dims, order, coord, emit)?;
            }
        } else {
            let (Some(&s), Some(&e)) = (d.segments.get(prev_pos), d.segments.get(prev_pos + 1))
            else {
                invalid!("sparse segments out of range")
            };
            for p in s..e {
                let Some(&ix) = d.indices.get(p) else {
                    invalid!("sparse indices out of range")
                };
                coord[order[level]] = ix;
                walk(level + 1, p, dims, order, coord, emit)?;
            }
        }
        Ok(())
    }
    let strides: Vec<usize> = (0..rank).map(|i| shape[i + 1..].iter().product()).collect();
    let mut emit = |c: &[usize]| -> OpResult<()> {
        let mut flat = 0usize;
        for (i, stride) in strides.iter().enumerate() {
            let mut v = c[i];
            if let Some(b) = block_map.iter().position(|&m| m == i) {
                v = v * block_sizes[b] + c[rank + b];
            }
            if v >= shape[i] {
                invalid!(
                    "sparse coordinate {v} outside dimension {} of size {}",
                    i,
                    shape[i]
                )
            }
            flat += v * stride;
        }
        let Some(&x) = src.get(next_value) else {
            invalid!("sparse tensor has too few values")
        };
        out[flat] = x;
        next_value += 1;
        Ok(())
    };
    walk(0, 0, &dims, &order, &mut coord, &mut emit)?;
    let dense = Tensor::from_shape(shape, &out)?;
    if values.datum_type() == f32::datum_type() {
        Ok(dense)
    } else {
        Ok(dense.cast_to_dt(values.datum_type())?.into_owned())
    }
}
