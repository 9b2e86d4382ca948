//! Reading the TFLite flatbuffer: verified root, tensor descriptions, constant buffers, op codes.

use tract_tflite::tflite;

use crate::dtype::ElementType;
use crate::error::{ModelError, Result};
use crate::quant::QuantParams;

/// Verifies `bytes` as a TFLite model and returns its root table.
///
/// Some old converters (TOCO) aligned 8-byte fields relative to the end of a buffer whose length
/// is not a multiple of 8, which leaves every one of them 4 bytes off from the start; LiteRT
/// loads such files without verifying them. When verification fails on alignment alone, the
/// data after the file identifier is shifted by 4 bytes into `scratch` (relative offsets are
/// unchanged; the root offset grows by 4) and verified again; only a copy that verifies is used.
pub fn parse<'a>(bytes: &'a [u8], scratch: &'a mut Vec<u8>) -> Result<tflite::Model<'a>> {
    check_header(bytes)?;
    match verify(bytes) {
        Err(flatbuffers::InvalidFlatbuffer::Unaligned { .. }) if bytes.len() >= 8 => {
            let root = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            scratch.clear();
            scratch.reserve(bytes.len() + 4);
            scratch.extend_from_slice(&root.saturating_add(4).to_le_bytes());
            scratch.extend_from_slice(&bytes[4..8]);
            scratch.extend_from_slice(&[0; 4]);
            scratch.extend_from_slice(&bytes[8..]);
            let shifted: &'a [u8] = scratch;
            match verify(shifted) {
                Ok(model) => {
                    tracing::debug!("model realigned: its 8-byte fields were 4 bytes off");
                    Ok(model)
                }
                Err(_) => verify(bytes).map_err(corrupt),
            }
        }
        other => other.map_err(corrupt),
    }
}

fn corrupt(e: flatbuffers::InvalidFlatbuffer) -> ModelError {
    ModelError::InvalidModel(format!("corrupt or truncated flatbuffer: {e}"))
}

/// The flatbuffer verifier, with limits sized for real models.
fn verify(bytes: &[u8]) -> std::result::Result<tflite::Model<'_>, flatbuffers::InvalidFlatbuffer> {
    // Real models have many tables; the default limits are for small messages.
    let opts = flatbuffers::VerifierOptions {
        max_tables: 1 << 26,
        max_apparent_size: 1 << 34,
        ..Default::default()
    };
    tflite::root_as_model_with_opts(&opts, bytes)
}

/// Rejects what is plainly not a TFLite file, with a message that says why.
fn check_header(bytes: &[u8]) -> Result<()> {
    if bytes.is_empty() {
        return Err(ModelError::InvalidModel("the file is empty".into()));
    }
    if bytes.len() < 8 {
        return Err(ModelError::InvalidModel(format!(
            "the file is {} bytes long, too short for a TFLite flatbuffer",
            bytes.len()
        )));
    }
    if &bytes[4..8] != b"TFL3" {
        return Err(ModelError::InvalidModel(format!(
            "missing the TFLite file identifier \"TFL3\" at byte 4 (found {:?}); is this a .tflite file?",
            String::from_utf8_lossy(&bytes[4..8])
        )));
    }
    Ok(())
}

/// What the flatbuffer declares about one tensor.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    /// Tensor name.
    pub name: String,
    /// Declared element type.
    pub dtype: ElementType,
    /// Concrete shape (`shape`).
    pub shape: Vec<usize>,
    /// `shape_signature`, with -1 for dynamic dimensions, when present.
    pub signature: Option<Vec<i64>>,
    /// Quantization parameters, when the tensor is quantized.
    pub quant: Option<QuantParams>,
    /// Whether the tensor carries sparse (DENSIFY-able) data.
    pub sparse: bool,
}

/// Reads tensor `id` of `graph`.
pub fn tensor_info(graph: &tflite::SubGraph<'_>, id: i32) -> Result<TensorInfo> {
    let tensors = graph
        .tensors()
        .ok_or_else(|| ModelError::InvalidModel("subgraph has no tensor table".into()))?;
    if id < 0 || id as usize >= tensors.len() {
        return Err(ModelError::InvalidModel(format!(
            "tensor index {id} out of range (the subgraph has {} tensors)",
            tensors.len()
        )));
    }
    let t = tensors.get(id as usize);
    let shape = t
        .shape()
        .map(|s| s.iter().collect::<Vec<i32>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| {
            usize::try_from(d).map_err(|_| {
                ModelError::InvalidModel(format!("tensor {id} has a negative dimension {d}"))
            })
        })
        .collect::<Result<Vec<usize>>>()?;
    let signature = t
        .shape_signature()
        .map(|s| s.iter().map(i64::from).collect());
    let quant = t.quantization().and_then(|q| {
        let scale: Vec<f32> = q.scale()?.iter().collect();
        if scale.is_empty() {
            return None;
        }
        let mut zero_point: Vec<i64> = q
            .zero_point()
            .map(|z| z.iter().collect())
            .unwrap_or_default();
        if zero_point.len() != scale.len() {
            zero_point = vec![zero_point.first().copied().unwrap_or(0); scale.len()];
        }
        Some(QuantParams {
            scale,
            zero_point,
            axis: q.quantized_dimension().max(0) as usize,
        })
    });
    Ok(TensorInfo {
        name: t.name().unwrap_or("").to_string(),
        dtype: ElementType::from_tflite(t.type_())?,
        shape,
        signature,
        quant,
        sparse: t.sparsity().is_some(),
    })
}

/// The raw bytes of tensor `id`'s constant buffer, if it has one.
pub fn buffer_bytes<'a>(
    model: &tflite::Model<'a>,
    graph: &tflite::SubGraph<'a>,
    id: i32,
) -> Result<Option<&'a [u8]>> {
    let Some(tensors) = graph.tensors() else {
        return Ok(None);
    };
    let t = tensors.get(id as usize);
    let index = t.buffer() as usize;
    if index == 0 {
        return Ok(None);
    }
    let buffers = model
        .buffers()
        .ok_or_else(|| ModelError::InvalidModel("model has no buffer table".into()))?;
    if index >= buffers.len() {
        return Err(ModelError::InvalidModel(format!(
            "tensor {id} names buffer {index} but the model has {} buffers",
            buffers.len()
        )));
    }
    let b = buffers.get(index);
    if let Some(data) = b.data() {
        if !data.is_empty() {
            return Ok(Some(data.bytes()));
        }
    }
    Ok(None)
}

/// The name of operator code `index` (builtin name, or the custom code for custom ops), and
/// whether it is a custom op.
pub fn opcode(
    model: &tflite::Model<'_>,
    index: u32,
) -> Result<(tflite::BuiltinOperator, String, bool)> {
    let codes = model
        .operator_codes()
        .ok_or_else(|| ModelError::InvalidModel("model has no operator codes".into()))?;
    if index as usize >= codes.len() {
        return Err(ModelError::InvalidModel(format!(
            "operator code {index} out of range"
        )));
    }
    let code = codes.get(index as usize);
    let builtin = if (code.deprecated_builtin_code() as i32)
        < tflite::BuiltinOperator::PLACEHOLDER_FOR_GREATER_OP_CODES.0
    {
        tflite::BuiltinOperator(code.deprecated_builtin_code() as i32)
    } else {
        code.builtin_code()
    };
    if builtin == tflite::BuiltinOperator::CUSTOM {
        let name = code.custom_code().unwrap_or("<unnamed>").to_string();
        return Ok((builtin, name, true));
    }
    let name = builtin
        .variant_name()
        .map(str::to_string)
        .unwrap_or_else(|| format!("BUILTIN_{}", builtin.0));
    Ok((builtin, name, false))
}
