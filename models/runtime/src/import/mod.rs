//! Translation of a TFLite subgraph into a tract-core `TypedModel` with LiteRT's semantics.
//!
//! Quantized datum types never reach tract: tensors are plain i8/u8/i32/f32 and the quantization
//! parameters live here, in [`Value`]. Integer matmuls and convolutions run as f32 (or f64)
//! arithmetic on exact integer values, followed by LiteRT's fixed-point requantization.

mod arith;
mod layout;
mod linear;
mod quantize;
mod reduce;

use std::collections::HashMap;

use tract_core::internal::*;
use tract_tflite::tflite;

use crate::dtype::ElementType;
use crate::error::{ModelError, Result};
use crate::flat::{self, TensorInfo};
use crate::quant::QuantParams;

/// A TFLite tensor as it exists in the tract graph being built.
#[derive(Debug, Clone)]
pub(crate) struct Value {
    pub outlet: OutletId,
    /// Element type as tract carries it (f16 constants are widened to f32 on use).
    pub dtype: ElementType,
    pub quant: Option<QuantParams>,
    /// For small integer tensors computed from shapes (SHAPE -> STRIDED_SLICE -> PACK ...): the
    /// value, possibly symbolic in the batch size, known at import time.
    pub known: Option<Vec<TDim>>,
}

/// Why an operator could not be translated.
#[derive(Debug)]
pub(crate) enum OpError {
    Unsupported(String),
    Invalid(String),
}

impl From<tract_core::prelude::tract_data::TooEarly> for OpError {
    fn from(e: tract_core::prelude::tract_data::TooEarly) -> Self {
        OpError::Unsupported(format!("a dimension that depends on the batch size ({e})"))
    }
}

impl From<TractError> for OpError {
    fn from(e: TractError) -> Self {
        OpError::Invalid(format!("{e:#}"))
    }
}

pub(crate) type OpResult<T> = std::result::Result<T, OpError>;

macro_rules! unsupported {
    ($($t:tt)*) => { return Err($crate::import::OpError::Unsupported(format!($($t)*))) };
}
macro_rules! invalid {
    ($($t:tt)*) => { return Err($crate::import::OpError::Invalid(format!($($t)*))) };
}
pub(crate) use {invalid, unsupported};

/// One operator being translated.
pub(crate) struct OpCx<'a> {
    pub op: tflite::Operator<'a>,
    pub name: String,
    /// Tensor ids of the inputs; `None` for an omitted optional input (-1).
    pub inputs: Vec<Option<i32>>,
    pub outputs: Vec<i32>,
}

/// What the importer produced.
pub(crate) struct Imported {
    pub model: TypedModel,
    pub inputs: Vec<(TensorInfo, Option<QuantParams>)>,
    pub outputs: Vec<(TensorInfo, Option<QuantParams>)>,
    pub op_names: Vec<String>,
    pub batch: Option<Symbol>,
}

pub(crate) struct Importer<'a> {
    pub root: tflite::Model<'a>,
    pub graph: tflite::SubGraph<'a>,
    pub target: TypedModel,
    values: HashMap<i32, Value>,
    pub batch: Option<Symbol>,
    node_count: usize,
}

/// Imports the main subgraph of a verified model.
pub(crate) fn import(root: tflite::Model<'_>) -> Result<Imported> {
    let subgraphs = root
        .subgraphs()
        .ok_or_else(|| ModelError::InvalidModel("the model has no subgraph".into()))?;
    if subgraphs.is_empty() {
        return Err(ModelError::InvalidModel("the model has no subgraph".into()));
    }
    let graph = subgraphs.get(0);
    let mut imp = Importer {
        root,
        graph,
        target: TypedModel::default(),
        values: HashMap::new(),
        batch: None,
        node_count: 0,
    };
    let input_ids: Vec<i32> = graph
        .inputs()
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    let output_ids: Vec<i32> = graph
        .outputs()
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    if input_ids.is_empty() || output_ids.is_empty() {
        return Err(ModelError::InvalidModel(
            "the main subgraph declares no inputs or no outputs".into(),
        ));
    }
    let mut inputs = vec![];
    for &id in &input_ids {
        let info = flat::tensor_info(&graph, id)?;
        imp.add_source(id, &info)?;
        inputs.push((info.clone(), info.quant.clone()));
    }
    let mut op_names = vec![];
    let operators = graph
        .operators()
        .map(|o| o.iter().collect::<Vec<_>>())
        .unwrap_or_default();
    for (index, op) in operators.into_iter().enumerate() {
        let (builtin, name, custom) = flat::opcode(&imp.root, op.opcode_index())?;
        op_names.push(name.clone());
        if custom {
            return Err(ModelError::UnsupportedOp {
                op: format!("custom op \"{name}\""),
                index,
                detail: ": custom operators are not part of the TFLite builtin set".into(),
            });
        }
        let cx = OpCx {
            op,
            name: name.clone(),
            inputs: op
                .inputs()
                .map(|v| v.iter().map(|i| (i >= 0).then_some(i)).collect())
                .unwrap_or_default(),
            outputs: op.outputs().map(|v| v.iter().collect()).unwrap_or_default(),
        };
        let produced = imp.translate(builtin, &cx).map_err(|e| match e {
            OpError::Unsupported(detail) => ModelError::UnsupportedOp {
                op: name.clone(),
                index,
                detail: if detail.is_empty() {
                    detail
                } else {
                    format!(": {detail}")
                },
            },
            OpError::Invalid(message) => ModelError::InvalidOp {
                op: name.clone(),
                index,
                message,
            },
        })?;
        if produced.len() < cx.outputs.len() {
            return Err(ModelError::InvalidOp {
                op: name,
                index,
                message: format!(
                    "produced {} outputs, the model declares {}",
                    produced.len(),
                    cx.outputs.len()
                ),
            });
        }
        for (id, v) in cx.outputs.iter().zip(produced) {
            imp.values.insert(*id, v);
        }
    }
    let mut outlets = tvec![];
    let mut outputs = vec![];
    for &id in &output_ids {
        let v = imp.value(id).map_err(|e| match e {
            OpError::Unsupported(m) | OpError::Invalid(m) => ModelError::InvalidModel(m),
        })?;
        let info = flat::tensor_info(&graph, id)?;
        if v.known.is_some()
            && imp
                .target
                .outlet_fact(v.outlet)
                .map_err(ModelError::engine)?
                .datum_type
                == TDim::datum_type()
        {
            return Err(ModelError::UnsupportedFeature(format!(
                "output {} is a symbolic shape value",
                info.name
            )));
        }
        outlets.push(v.outlet);
        outputs.push((info, v.quant.clone()));
    }
    imp.target
        .select_output_outlets(&outlets)
        .map_err(ModelError::engine)?;
    Ok(Imported {
        model: imp.target,
        inputs,
        outputs,
        op_names,
        batch: imp.batch,
    })
}

impl<'a> Importer<'a> {
    fn add_source(&mut self, id: i32, info: &TensorInfo) -> Result<()> {
        let mut shape: TVec<TDim> = info.shape.iter().map(|&d| d.to_dim()).collect();
        if let Some(sig) = &info.signature {
            for (axis, &d) in sig.iter().enumerate() {
                if d < 0 && axis < shape.len() {
                    let sym = if axis == 0 {
                        self.batch
                            .get_or_insert_with(|| self.target.symbols.sym("batch"))
                            .clone()
                    } else {
                        self.target.symbols.sym(&format!("d{id}_{axis}"))
                    };
                    shape[axis] = sym.into();
                }
            }
        }
        if info.dtype == ElementType::F16 {
            return Err(ModelError::UnsupportedFeature(format!(
                "input {} is float16; litehouse takes f32 or integer inputs",
                info.name
            )));
        }
        let fact = info.dtype.datum_type().fact(shape);
        let outlet = self
            .target
            .add_source(unique(&info.name, id), fact)
            .map_err(ModelError::engine)?;
        self.values.insert(
            id,
            Value {
                outlet,
                dtype: info.dtype,
                quant: info.quant.clone(),
                known: None,
            },
        );
        Ok(())
    }

    /// The value of tensor `id`, creating a constant from its buffer on first use.
    pub fn value(&mut self, id: i32) -> OpResult<Value> {
        if let Some(v) = self.values.get(&id) {
            return Ok(v.clone());
        }
        let info =
            flat::tensor_info(&self.graph, id).map_err(|e| OpError::Invalid(e.to_string()))?;
        let bytes = flat::buffer_bytes(&self.root, &self.graph, id)
            .map_err(|e| OpError::Invalid(e.to_string()))?;
        let Some(bytes) = bytes else {
            invalid!(
                "tensor {id} ({}) is read before any operator produces it and has no data",
                info.name
            )
        };
        if info.sparse {
            // Sparse constants are only legal as DENSIFY inputs, which read them directly.
            invalid!(
                "tensor {id} ({}) is sparse and must go through DENSIFY",
                info.name
            )
        }
        let tensor = tensor_from_bytes(info.dtype, &info.shape, bytes)?;
        let known = if matches!(info.dtype, ElementType::I32 | ElementType::I64) {
            known_ints(&tensor)
        } else {
            None
        };
        let outlet = self.target.add_const(unique(&info.name, id), tensor)?;
        let v = Value {
            outlet,
            dtype: info.dtype,
            quant: info.quant,
            known,
        };
        self.values.insert(id, v.clone());
        Ok(v)
    }

    /// Input `k` of the operator; missing inputs are an error.
    pub fn input(&mut self, cx: &OpCx, k: usize) -> OpResult<Value> {
        match cx.inputs.get(k).copied().flatten() {
            Some(id) => self.value(id),
            None => invalid!("input {k} is missing"),
        }
    }

    /// Optional input `k`.
    pub fn opt_input(&mut self, cx: &OpCx, k: usize) -> OpResult<Option<Value>> {
        match cx.inputs.get(k).copied().flatten() {
            Some(id) => Ok(Some(self.value(id)?)),
            None => Ok(None),
        }
    }

    /// Declared description of output `k`.
    pub fn out_info(&self, cx: &OpCx, k: usize) -> OpResult<TensorInfo> {
        let id = *cx
            .outputs
            .get(k)
            .ok_or_else(|| OpError::Invalid(format!("output {k} is missing")))?;
        flat::tensor_info(&self.graph, id).map_err(|e| OpError::Invalid(e.to_string()))
    }

    /// The constant behind a value, if it is one.
    pub fn konst(&self, v: &Value) -> OpResult<Option<Arc<Tensor>>> {
        Ok(self.target.outlet_fact(v.outlet)?.konst.clone())
    }

    /// Shape of a value as tract sees it.
    pub fn shape(&self, v: &Value) -> OpResult<TVec<TDim>> {
        Ok(self.target.outlet_fact(v.outlet)?.shape.to_tvec())
    }

    /// Wires one node with a unique name and returns its outputs.
    pub fn wire(
        &mut self,
        name: &str,
        op: impl Into<Box<dyn TypedOp>>,
        inputs: &[OutletId],
    ) -> OpResult<TVec<OutletId>> {
        self.node_count += 1;
        let name = format!("{name}.{}", self.node_count);
        Ok(self.target.wire_node(name, op, inputs)?)
    }

    /// Wires a single-output node.
    pub fn wire1(
        &mut self,
        name: &str,
        op: impl Into<Box<dyn TypedOp>>,
        inputs: &[OutletId],
    ) -> OpResult<OutletId> {
        Ok(self.wire(name, op, inputs)?[0])
    }

    /// Adds a constant.
    pub fn konst_outlet(&mut self, name: &str, t: Tensor) -> OpResult<OutletId> {
        self.node_count += 1;
        Ok(self
            .target
            .add_const(format!("{name}.{}", self.node_count), t)?)
    }

    /// A plain (unquantized) value.
    pub fn plain(&self, outlet: OutletId, dtype: ElementType) -> Value {
        Value {
            outlet,
            dtype,
            quant: None,
            known: None,
        }
    }

    fn translate(&mut self, op: tflite::BuiltinOperator, cx: &OpCx) -> OpResult<Vec<Value>> {
        use tflite::BuiltinOperator as B;
        match op {
            B::FULLY_CONNECTED => linear::fully_connected(self, cx),
            B::CONV_2D => linear::conv2d(self, cx, false),
            B::DEPTHWISE_CONV_2D => linear::conv2d(self, cx, true),
            B::TRANSPOSE_CONV => linear::transpose_conv(self, cx),
            B::BATCH_MATMUL => linear::batch_matmul(self, cx),
            B::ADD
            | B::SUB
            | B::MUL
            | B::DIV
            | B::MAXIMUM
            | B::MINIMUM
            | B::SQUARED_DIFFERENCE
            | B::POW => arith::binary(self, cx, op),
            B::LOGISTIC
            | B::TANH
            | B::RELU
            | B::RELU6
            | B::RELU_N1_TO_1
            | B::RELU_0_TO_1
            | B::HARD_SWISH
            | B::LEAKY_RELU
            | B::EXP
            | B::ABS
            | B::NEG
            | B::SQRT
            | B::RSQRT
            | B::SQUARE
            | B::ELU
            | B::GELU
            | B::LOG => arith::unary(self, cx, op),
            B::PRELU => arith::prelu(self, cx),
            B::QUANTIZE => quantize::quantize(self, cx),
            B::DEQUANTIZE => quantize::dequantize(self, cx),
            B::CAST => quantize::cast_op(self, cx),
            B::DENSIFY => quantize::densify(self, cx),
            B::RESHAPE | B::SQUEEZE | B::EXPAND_DIMS => layout::reshape(self, cx, op),
            B::SHAPE => layout::shape(self, cx),
            B::STRIDED_SLICE => layout::strided_slice(self, cx),
            B::SLICE => layout::slice(self, cx),
            B::PACK => layout::pack(self, cx),
            B::UNPACK => layout::unpack(self, cx),
            B::CONCATENATION => layout::concat(self, cx),
            B::SPLIT | B::SPLIT_V => layout::split(self, cx, op),
            B::GATHER => layout::gather(self, cx),
            B::TRANSPOSE => layout::transpose(self, cx),
            B::DEPTH_TO_SPACE => layout::depth_to_space(self, cx),
            B::PAD | B::PADV2 => layout::pad(self, cx),
            B::MAX_POOL_2D | B::AVERAGE_POOL_2D => reduce::pool(self, cx, op),
            B::SOFTMAX | B::LOG_SOFTMAX => reduce::softmax(self, cx, op),
            B::MEAN | B::SUM | B::REDUCE_MAX | B::REDUCE_MIN | B::REDUCE_PROD => {
                reduce::reduce(self, cx, op)
            }
            B::ARG_MAX | B::ARG_MIN => reduce::arg_max(self, cx, op),
            B::RESIZE_BILINEAR | B::RESIZE_NEAREST_NEIGHBOR => reduce::resize(self, cx, op),
            B::WHILE
            | B::IF
            | B::CALL_ONCE
            | B::VAR_HANDLE
            | B::READ_VARIABLE
            | B::ASSIGN_VARIABLE => {
                unsupported!("control flow and resource variables are not supported")
            }
            _ => unsupported!(""),
        }
    }
}

/// A node name that stays unique even when TFLite tensor names repeat or are empty.
fn unique(name: &str, id: i32) -> String {
    if name.is_empty() {
        format!("tensor_{id}")
    } else {
        format!("{name}#{id}")
    }
}

/// Builds a tract tensor from little-endian constant bytes.
pub(crate) fn tensor_from_bytes(
    dtype: ElementType,
    shape: &[usize],
    bytes: &[u8],
) -> OpResult<Tensor> {
    let volume: usize = shape.iter().product();
    if bytes.len() != volume * dtype.size_of() {
        invalid!(
            "constant of shape {shape:?} and type {dtype} needs {} bytes, its buffer has {}",
            volume * dtype.size_of(),
            bytes.len()
        )
    }
    fn le<T: Datum + Copy, const N: usize>(
        shape: &[usize],
        bytes: &[u8],
        f: fn([u8; N]) -> T,
    ) -> OpResult<Tensor> {
        let values: Vec<T> = bytes
            .chunks_exact(N)
            .map(|c| f(c.try_into().unwrap_or([0; N])))
            .collect();
        Ok(Tensor::from_shape(shape, &values)?)
    }
    match dtype {
        ElementType::F32 => le(shape, bytes, f32::from_le_bytes),
        ElementType::F64 => le(shape, bytes, f64::from_le_bytes),
        ElementType::F16 => le(shape, bytes, |b: [u8; 2]| {
            f16::from_bits(u16::from_le_bytes(b))
        }),
        ElementType::I8 => le(shape, bytes, i8::from_le_bytes),
        ElementType::U8 => le(shape, bytes, u8::from_le_bytes),
        ElementType::I16 => le(shape, bytes, i16::from_le_bytes),
        ElementType::I32 => le(shape, bytes, i32::from_le_bytes),
        ElementType::I64 => le(shape, bytes, i64::from_le_bytes),
        ElementType::Bool => le(shape, bytes, |b: [u8; 1]| b[0] != 0),
    }
}

/// Small integer constants are remembered as known values for shape arithmetic.
fn known_ints(t: &Tensor) -> Option<Vec<TDim>> {
    if t.rank() > 1 || t.len() > 16 {
        return None;
    }
    let v = t.cast_to::<i64>().ok()?;
    let v = v.to_plain_array_view::<i64>().ok()?;
    Some(v.iter().map(|&x| x.to_dim()).collect())
}

/// A constant tensor of `i32` values or, when symbolic, of `TDim`s, for a known vector.
pub(crate) fn known_tensor(values: &[TDim], scalar: bool) -> OpResult<Tensor> {
    let shape: &[usize] = if scalar { &[] } else { &[values.len()] };
    if let Some(ints) = values
        .iter()
        .map(|d| d.as_i64().map(|x| x as i32))
        .collect::<Option<Vec<_>>>()
    {
        Ok(Tensor::from_shape(shape, &ints)?)
    } else {
        let t = tract_ndarray::Array1::from(values.to_vec()).into_tensor();
        Ok(if scalar { t.into_shape(&[])? } else { t })
    }
}
