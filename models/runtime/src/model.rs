//! A loaded, optimized model ready to run batches from many threads.

use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tract_core::internal::*;

use crate::dtype::ElementType;
use crate::error::{ModelError, Result};
use crate::flat;
use crate::quant::quantize_value;
use crate::signature::{Signature, TensorSpec};
use crate::tensor::{HostTensor, TensorData};

/// How outputs come back from [`LoadedModel::run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputMode {
    /// Dequantize quantized outputs to f32 with the model's own parameters.
    #[default]
    Float,
    /// Return the model's native element type (e.g. int8 for an int8-output model).
    Native,
}

/// Facts about a loaded model file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelInfo {
    /// Hex sha256 of the file.
    pub sha256: String,
    /// File size in bytes.
    pub size_bytes: usize,
    /// Schema version of the flatbuffer.
    pub schema_version: u32,
    /// Description string the converter wrote.
    pub description: String,
    /// Operator names in execution order.
    pub operators: Vec<String>,
    /// Distinct operator names with their counts, sorted by name.
    pub operator_counts: Vec<(String, usize)>,
}

type State = TypedSimpleState;

/// A TFLite model imported onto tract-core and optimized once. Cheap to share (`Arc`) and safe to
/// run from many threads: each run borrows a pooled plan state.
pub struct LoadedModel {
    info: ModelInfo,
    signature: Signature,
    plan: Arc<TypedSimplePlan>,
    states: Mutex<Vec<State>>,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("sha256", &self.info.sha256)
            .finish_non_exhaustive()
    }
}

impl LoadedModel {
    /// Parses, imports and optimizes a `.tflite` file held in memory.
    pub fn load(bytes: &[u8]) -> Result<Self> {
        let sha256 = hex(&Sha256::digest(bytes));
        let mut realigned = Vec::new();
        let root = flat::parse(bytes, &mut realigned)?;
        let description = root.description().unwrap_or("").to_string();
        let schema_version = root.version();
        if root.subgraphs().map(|s| s.len()).unwrap_or(0) > 1 {
            tracing::debug!("model has several subgraphs; running the first");
        }
        let imported = crate::import::import(root)?;
        let signature = signature_of(&root, &imported)?;
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for op in &imported.op_names {
            *counts.entry(op.clone()).or_default() += 1;
        }
        let model = imported
            .model
            .into_optimized()
            .map_err(ModelError::engine)?;
        let plan = TypedSimplePlan::new(model).map_err(ModelError::engine)?;
        Ok(LoadedModel {
            info: ModelInfo {
                sha256,
                size_bytes: bytes.len(),
                schema_version,
                description,
                operators: imported.op_names,
                operator_counts: counts.into_iter().collect(),
            },
            signature,
            plan,
            states: Mutex::new(vec![]),
        })
    }

    /// Reads and loads a file.
    pub fn load_file(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| {
            ModelError::InvalidModel(format!("cannot read {}: {e}", path.display()))
        })?;
        Self::load(&bytes)
    }

    /// Inputs and outputs.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// File facts (sha256, size, operators).
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Checks inputs against the signature and converts them to tract values.
    fn prepare(&self, inputs: &[HostTensor]) -> Result<TVec<TValue>> {
        let specs = &self.signature.inputs;
        if inputs.len() != specs.len() {
            return Err(ModelError::InvalidInput(format!(
                "the model takes {} input(s) ({}), {} given",
                specs.len(),
                self.signature.input_names(),
                inputs.len()
            )));
        }
        let mut batch = None;
        let mut values = tvec![];
        for (spec, t) in specs.iter().zip(inputs) {
            check_shape(spec, &t.shape, &mut batch)?;
            values.push(convert_input(spec, t)?.to_tract()?);
        }
        Ok(values)
    }

    /// Runs one batch. Inputs are given in signature order; each may be the model's native type
    /// or f32 (quantized with the input's own parameters). Outputs come back per `mode`.
    pub fn run(&self, inputs: &[HostTensor], mode: OutputMode) -> Result<Vec<HostTensor>> {
        let values = self.prepare(inputs)?;
        let mut state = match self.states.lock().ok().and_then(|mut s| s.pop()) {
            Some(s) => s,
            None => self.plan.spawn().map_err(ModelError::engine)?,
        };
        let outputs = state.run(values).map_err(ModelError::engine);
        if let Ok(mut pool) = self.states.lock() {
            pool.push(state);
        }
        let outputs = outputs?;
        outputs
            .iter()
            .zip(&self.signature.outputs)
            .map(|(t, spec)| {
                let host = HostTensor::from_tract(t)?;
                Ok(match (mode, &spec.quantization) {
                    (OutputMode::Float, Some(q)) if !spec.dtype.is_float() => dequantize(&host, q),
                    _ => host,
                })
            })
            .collect()
    }

    /// Runs one batch of zeros (batch 1) so that the first real request does not pay for
    /// first-run allocations, then times a few more runs (at most about 5 ms of them) and
    /// returns the fastest: what one instance costs, for callers that schedule work by cost.
    /// An error here means the model cannot run at all.
    pub fn warm_up(&self) -> Result<std::time::Duration> {
        let inputs: Vec<HostTensor> = self
            .signature
            .inputs
            .iter()
            .map(|spec| {
                let shape: Vec<usize> = spec
                    .shape
                    .iter()
                    .map(|&d| usize::try_from(d).unwrap_or(1).max(1))
                    .collect();
                let n = shape.iter().product();
                HostTensor {
                    shape,
                    data: TensorData::F32(vec![0.0; n]),
                }
            })
            .collect();
        let first = std::time::Instant::now();
        self.run(&inputs, OutputMode::Native)?;
        let mut fastest = first.elapsed();
        let mut spent = fastest;
        for _ in 0..3 {
            if spent > std::time::Duration::from_millis(5) {
                break;
            }
            let started = std::time::Instant::now();
            self.run(&inputs, OutputMode::Native)?;
            let took = started.elapsed();
            fastest = fastest.min(took);
            spent += took;
        }
        Ok(fastest)
    }

    /// Runs `inputs` `iterations` times and returns the time spent in each optimized operator,
    /// slowest first: where a model's latency goes.
    pub fn profile(&self, inputs: &[HostTensor], iterations: usize) -> Result<Vec<OpTiming>> {
        let values = self.prepare(inputs)?;
        let mut state = self.plan.spawn().map_err(ModelError::engine)?;
        let mut spent = vec![std::time::Duration::ZERO; self.plan.model().nodes().len()];
        for _ in 0..iterations.max(1) {
            state
                .run_plan_with_eval(values.clone(), |ctx, op_state, node, inputs| {
                    let start = std::time::Instant::now();
                    let out = tract_core::plan::eval(ctx, op_state, node, inputs);
                    spent[node.id] += start.elapsed();
                    out
                })
                .map_err(ModelError::engine)?;
        }
        let n = iterations.max(1) as f64;
        let model = self.plan.model();
        let mut timings: Vec<OpTiming> = model
            .nodes()
            .iter()
            .filter(|node| !spent[node.id].is_zero())
            .map(|node| OpTiming {
                node: node.name.clone(),
                op: node.op().name().to_string(),
                output: node
                    .outputs
                    .first()
                    .map(|o| format!("{:?}", o.fact))
                    .unwrap_or_default(),
                micros: spent[node.id].as_secs_f64() * 1e6 / n,
            })
            .collect();
        timings.sort_by(|a, b| b.micros.total_cmp(&a.micros));
        Ok(timings)
    }
}

/// Mean time of one optimized operator per run, from [`LoadedModel::profile`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpTiming {
    /// Node name (derived from the TFLite operator it came from).
    pub node: String,
    /// tract operator name.
    pub op: String,
    /// Output fact (shape and type) of the operator's first output.
    pub output: String,
    /// Mean microseconds per run.
    pub micros: f64,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a given shape against the spec; the batch must agree across inputs.
fn check_shape(spec: &TensorSpec, shape: &[usize], batch: &mut Option<usize>) -> Result<()> {
    if !spec.accepts(shape) {
        return Err(ModelError::InvalidInput(format!(
            "input '{}' expects shape {}, got {:?}",
            spec.name,
            spec.shape_text(),
            shape
        )));
    }
    if spec.dynamic_batch() {
        let b = shape[0];
        if b == 0 {
            return Err(ModelError::InvalidInput(format!(
                "input '{}' has an empty batch",
                spec.name
            )));
        }
        if let Some(prev) = batch.replace(b) {
            if prev != b {
                return Err(ModelError::InvalidInput(format!(
                    "inputs disagree on the batch size ({prev} vs {b})"
                )));
            }
        }
    }
    Ok(())
}

/// Converts a caller's tensor to the model's input type: f32 to quantized types with the input's
/// parameters, integers to floats, or unchanged.
fn convert_input(spec: &TensorSpec, t: &HostTensor) -> Result<HostTensor> {
    if t.dtype() == spec.dtype {
        if let TensorData::F32(v) = &t.data {
            reject_non_finite(spec, v)?;
        }
        return Ok(t.clone());
    }
    let values = t.data.to_f64();
    if values.iter().any(|v| !v.is_finite()) {
        reject_non_finite(spec, &[f32::NAN])?;
    }
    let data = match (spec.dtype, &spec.quantization) {
        (ElementType::F32, _) => TensorData::F32(values.iter().map(|&v| v as f32).collect()),
        (dt @ (ElementType::I8 | ElementType::U8 | ElementType::I16), Some(q))
            if t.dtype().is_float() =>
        {
            let (lo, hi) = dt.int_range().unwrap_or((-128, 127));
            let q: Vec<i32> = values
                .iter()
                .map(|&v| quantize_value(v as f32, q.scale0(), q.zp0(), lo, hi))
                .collect();
            match dt {
                ElementType::I8 => TensorData::I8(q.iter().map(|&v| v as i8).collect()),
                ElementType::U8 => TensorData::U8(q.iter().map(|&v| v as u8).collect()),
                _ => TensorData::I16(q.iter().map(|&v| v as i16).collect()),
            }
        }
        (dt, _) if !dt.is_float() && dt != ElementType::Bool => {
            let (lo, hi) = match dt {
                ElementType::I64 => (i64::MIN as f64, i64::MAX as f64),
                _ => dt
                    .int_range()
                    .map(|(a, b)| (a as f64, b as f64))
                    .unwrap_or((0.0, 0.0)),
            };
            if let Some(bad) = values
                .iter()
                .find(|&&v| v.fract() != 0.0 || v < lo || v > hi)
            {
                return Err(ModelError::InvalidInput(format!(
                    "input '{}' takes {dt} values, got {bad}",
                    spec.name
                )));
            }
            match dt {
                ElementType::I8 => TensorData::I8(values.iter().map(|&v| v as i8).collect()),
                ElementType::U8 => TensorData::U8(values.iter().map(|&v| v as u8).collect()),
                ElementType::I16 => TensorData::I16(values.iter().map(|&v| v as i16).collect()),
                ElementType::I32 => TensorData::I32(values.iter().map(|&v| v as i32).collect()),
                _ => TensorData::I64(values.iter().map(|&v| v as i64).collect()),
            }
        }
        (dt, _) => {
            return Err(ModelError::InvalidInput(format!(
                "input '{}' takes {dt}, got {}",
                spec.name,
                t.dtype()
            )))
        }
    };
    HostTensor::new(t.shape.clone(), data)
}

fn reject_non_finite(spec: &TensorSpec, v: &[f32]) -> Result<()> {
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(ModelError::InvalidInput(format!(
            "input '{}' element {i} is {} (NaN and infinities are not accepted)",
            spec.name, v[i]
        )));
    }
    Ok(())
}

fn dequantize(t: &HostTensor, q: &crate::quant::QuantParams) -> HostTensor {
    let (s, z) = (q.scale0(), q.zp0() as f64);
    let data = t
        .data
        .to_f64()
        .into_iter()
        .map(|v| (s as f64 * (v - z)) as f32)
        .collect();
    HostTensor {
        shape: t.shape.clone(),
        data: TensorData::F32(data),
    }
}

fn signature_of(
    root: &tract_tflite::tflite::Model<'_>,
    imported: &crate::import::Imported,
) -> Result<Signature> {
    let graph = root.subgraphs().map(|s| s.get(0));
    let ids = |outputs: bool| -> Vec<i32> {
        graph
            .and_then(|g| if outputs { g.outputs() } else { g.inputs() })
            .map(|v| v.iter().collect())
            .unwrap_or_default()
    };
    // SignatureDef names (serving_default) when present.
    let sig = root
        .signature_defs()
        .and_then(|d| (!d.is_empty()).then(|| d.get(0)));
    let alias = |outputs: bool, id: i32| -> Option<String> {
        let maps = if outputs {
            sig?.outputs()?
        } else {
            sig?.inputs()?
        };
        maps.iter()
            .find(|m| m.tensor_index() as i32 == id)
            .and_then(|m| m.name().map(str::to_string))
    };
    let specs = |outputs: bool| -> Vec<TensorSpec> {
        let list = if outputs {
            &imported.outputs
        } else {
            &imported.inputs
        };
        list.iter()
            .zip(ids(outputs))
            .map(|((info, quant), id)| {
                let mut shape: Vec<i64> = info.shape.iter().map(|&d| d as i64).collect();
                if let Some(sig) = &info.signature {
                    for (d, &s) in shape.iter_mut().zip(sig) {
                        if s < 0 {
                            *d = -1;
                        }
                    }
                }
                TensorSpec {
                    name: alias(outputs, id).unwrap_or_else(|| info.name.clone()),
                    tensor_name: info.name.clone(),
                    dtype: info.dtype,
                    shape,
                    quantization: quant.clone(),
                }
            })
            .collect()
    };
    let mut outputs = specs(true);
    // A dynamic batch propagates to outputs whose leading dim is the batch.
    if imported.batch.is_some() {
        for o in &mut outputs {
            if let Some(d) = o.shape.first_mut() {
                if *d == 1 {
                    *d = -1;
                }
            }
        }
    }
    Ok(Signature {
        key: sig.and_then(|s| s.signature_key().map(str::to_string)),
        inputs: specs(false),
        outputs,
    })
}
