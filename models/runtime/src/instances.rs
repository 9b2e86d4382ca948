//! JSON instances (Vertex AI / TF Serving row format) to tensors and tensors back to predictions.
//!
//! An instance is one batch item: a nested numeric array for a single-input model, or an object
//! mapping input names to nested arrays. Any nesting with the right element count is accepted
//! (a flat list of 784 values for a [28, 28, 1] item); a wrong count names expected and received.

use serde_json::{Map, Number, Value as Json};

use crate::error::{ModelError, Result};
use crate::model::{LoadedModel, OutputMode};
use crate::signature::TensorSpec;
use crate::tensor::{HostTensor, TensorData};

/// How JSON numbers map onto a quantized integer input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputValues {
    /// Numbers are the tensor's own integer values (raw uint8 pixels for a uint8 model), as
    /// TF Serving and LiteRT take them.
    #[default]
    Native,
    /// Numbers are real values, quantized with the input's scale and zero point.
    Real,
}

/// Flattens a nested JSON array of numbers (or booleans), returning the values and the shape.
pub fn flatten_numbers(v: &Json) -> std::result::Result<(Vec<f64>, Vec<usize>), String> {
    fn walk(
        v: &Json,
        depth: usize,
        shape: &mut Vec<usize>,
        out: &mut Vec<f64>,
    ) -> std::result::Result<(), String> {
        match v {
            Json::Array(items) => {
                if shape.len() == depth {
                    shape.push(items.len());
                } else if shape[depth] != items.len() {
                    return Err(format!(
                        "ragged array: {} elements at depth {depth} where an earlier row has {}",
                        items.len(),
                        shape[depth]
                    ));
                }
                items
                    .iter()
                    .try_for_each(|i| walk(i, depth + 1, shape, out))
            }
            Json::Number(n) => {
                if depth != shape.len() {
                    return Err(format!(
                        "a number at depth {depth} where arrays were expected"
                    ));
                }
                out.push(
                    n.as_f64()
                        .ok_or_else(|| format!("number {n} is out of range"))?,
                );
                Ok(())
            }
            Json::Bool(b) => {
                out.push(f64::from(u8::from(*b)));
                Ok(())
            }
            Json::Null => Err("null is not a number".into()),
            Json::String(s) => Err(format!(
                "a string ({:?}) where a number was expected",
                truncate(s)
            )),
            Json::Object(_) => Err("an object where a number or array was expected".into()),
        }
    }
    let mut shape = vec![];
    let mut out = vec![];
    walk(v, 0, &mut shape, &mut out)?;
    Ok((out, shape))
}

fn truncate(s: &str) -> String {
    if s.len() > 32 {
        format!("{}...", s.chars().take(32).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Shape of one batch item of an input (its dimensions after the batch axis).
pub fn item_shape(spec: &TensorSpec) -> Vec<usize> {
    spec.shape
        .iter()
        .skip(1)
        .map(|&d| d.max(1) as usize)
        .collect()
}

/// Decodes instances into one f64 buffer per input (row-major, instance after instance).
pub fn decode_instances(specs: &[TensorSpec], instances: &[Json]) -> Result<Vec<Vec<f64>>> {
    if instances.is_empty() {
        return Err(ModelError::InvalidInput(
            "\"instances\" is empty; send at least one instance".into(),
        ));
    }
    let names = specs
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut buffers: Vec<Vec<f64>> = specs.iter().map(|_| vec![]).collect();
    for (i, inst) in instances.iter().enumerate() {
        for (k, spec) in specs.iter().enumerate() {
            let value = match (inst, specs.len()) {
                (Json::Object(map), _) => map
                    .get(&spec.name)
                    .or_else(|| map.get(&spec.tensor_name))
                    .ok_or_else(|| {
                        ModelError::InvalidInput(format!(
                            "instance {i}: missing input '{}' (expected keys: {})",
                            spec.name, names
                        ))
                    })?,
                (v, 1) => v,
                _ => {
                    return Err(ModelError::InvalidInput(format!(
                        "instance {i}: the model has {} inputs, send an object with keys {}",
                        specs.len(),
                        names
                    )))
                }
            };
            let (values, shape) = flatten_numbers(value)
                .map_err(|e| ModelError::InvalidInput(format!("instance {i}: {e}")))?;
            let expected = item_shape(spec);
            let volume: usize = expected.iter().product();
            if values.len() != volume {
                return Err(ModelError::InvalidInput(format!(
                    "instance {i}: input '{}' expects shape {:?} ({volume} values), got shape {:?} ({} values)",
                    spec.name,
                    expected,
                    shape,
                    values.len()
                )));
            }
            if let Some(j) = values.iter().position(|v| !v.is_finite()) {
                return Err(ModelError::InvalidInput(format!(
                    "instance {i}: input '{}' element {j} is not a finite number",
                    spec.name
                )));
            }
            buffers[k].extend(values);
        }
    }
    Ok(buffers)
}

/// Runs JSON instances through a model and returns one prediction per instance: the output's
/// item as a nested array, or an object keyed by output name when the model has several outputs.
pub fn predict_instances(
    model: &LoadedModel,
    instances: &[Json],
    values: InputValues,
    mode: OutputMode,
) -> Result<Vec<Json>> {
    let buffers = decode_instances(&model.signature().inputs, instances)?;
    predict_buffers(model, &buffers, instances.len(), values, mode)
}

/// Runs `n` instances already flattened into one row-major buffer per input (signature order,
/// instance after instance; what [`decode_instances`] returns) and returns one prediction per
/// instance, as [`predict_instances`] does. Callers that produce values directly (decoded
/// images) skip the JSON detour this way.
pub fn predict_buffers(
    model: &LoadedModel,
    buffers: &[Vec<f64>],
    n: usize,
    values: InputValues,
    mode: OutputMode,
) -> Result<Vec<Json>> {
    let sig = model.signature();
    if buffers.len() != sig.inputs.len() {
        return Err(ModelError::InvalidInput(format!(
            "the model takes {} input(s) ({}), {} given",
            sig.inputs.len(),
            sig.input_names(),
            buffers.len()
        )));
    }
    for (spec, buf) in sig.inputs.iter().zip(buffers) {
        let item = item_shape(spec);
        let vol: usize = item.iter().product();
        if buf.len() != n * vol {
            return Err(ModelError::InvalidInput(format!(
                "input '{}' expects {n} item(s) of shape {item:?} ({} values), got {} values",
                spec.name,
                n * vol,
                buf.len()
            )));
        }
        if let Some(j) = buf.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::InvalidInput(format!(
                "instance {}: input '{}' element {} is not a finite number",
                j / vol.max(1),
                spec.name,
                j % vol.max(1)
            )));
        }
    }
    let dynamic = sig.dynamic_batch();
    // Static-batch models run one instance at a time; dynamic ones in one batch.
    let chunk = if dynamic { n } else { 1 };
    let mut per_output: Vec<Vec<Json>> = sig.outputs.iter().map(|_| vec![]).collect();
    let mut start = 0;
    while start < n {
        let count = chunk.min(n - start);
        let inputs: Vec<HostTensor> = sig
            .inputs
            .iter()
            .zip(buffers)
            .map(|(spec, buf)| {
                let item = item_shape(spec);
                let vol: usize = item.iter().product();
                let mut shape = vec![count];
                shape.extend(&item);
                let rows = &buf[start * vol..(start + count) * vol];
                // Integer inputs take the model's own integer values unless real values are asked
                // for (then quantized with the input's parameters).
                let native = spec.quantization.is_none() || values == InputValues::Native;
                let data = if !spec.dtype.is_float() && native {
                    TensorData::I64(rows.iter().map(|&v| v as i64).collect())
                } else {
                    TensorData::F32(rows.iter().map(|&v| v as f32).collect())
                };
                HostTensor::new(shape, data)
            })
            .collect::<Result<_>>()?;
        let outputs = model.run(&inputs, mode)?;
        for (k, out) in outputs.iter().enumerate() {
            per_output[k].extend(split_batch(out, count));
        }
        start += count;
    }
    Ok((0..n)
        .map(|i| {
            if sig.outputs.len() == 1 {
                per_output[0][i].clone()
            } else {
                let mut m = Map::new();
                for (k, spec) in sig.outputs.iter().enumerate() {
                    m.insert(spec.name.clone(), per_output[k][i].clone());
                }
                Json::Object(m)
            }
        })
        .collect())
}

/// Splits a batch-major tensor into `n` nested JSON items.
fn split_batch(t: &HostTensor, n: usize) -> Vec<Json> {
    let values = to_json_numbers(&t.data);
    let (item_shape, n) = if t.shape.first() == Some(&n) {
        (t.shape[1..].to_vec(), n)
    } else {
        (t.shape.clone(), 1)
    };
    let vol: usize = item_shape.iter().product();
    (0..n)
        .map(|i| nest(&values[i * vol..(i + 1) * vol], &item_shape))
        .collect()
}

fn to_json_numbers(d: &TensorData) -> Vec<Json> {
    match d {
        // Shortest f32 text, so 0.1f32 prints as 0.1 rather than 0.10000000149011612.
        TensorData::F32(v) => v
            .iter()
            .map(|x| {
                x.to_string()
                    .parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64)
                    .map(Json::Number)
                    .unwrap_or(Json::Null)
            })
            .collect(),
        TensorData::Bool(v) => v.iter().map(|&b| Json::Bool(b)).collect(),
        other => other
            .to_f64()
            .into_iter()
            .map(|x| Json::from(x as i64))
            .collect(),
    }
}

fn nest(values: &[Json], shape: &[usize]) -> Json {
    match shape {
        [] => values.first().cloned().unwrap_or(Json::Null),
        [_] => Json::Array(values.to_vec()),
        [d, rest @ ..] => {
            let vol: usize = rest.iter().product();
            Json::Array(
                (0..*d)
                    .map(|i| nest(&values[i * vol..(i + 1) * vol], rest))
                    .collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_reports_shape_and_rejects_ragged() {
        let (v, s) = flatten_numbers(&serde_json::json!([[1, 2], [3, 4], [5, 6]])).unwrap();
        assert_eq!(s, vec![3, 2]);
        assert_eq!(v, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert!(flatten_numbers(&serde_json::json!([[1, 2], [3]]))
            .unwrap_err()
            .contains("ragged"));
        assert!(flatten_numbers(&serde_json::json!([1, "x"]))
            .unwrap_err()
            .contains("string"));
    }

    #[test]
    fn nest_rebuilds_rows() {
        let vals: Vec<Json> = (0..6).map(Json::from).collect();
        assert_eq!(
            nest(&vals, &[2, 3]),
            serde_json::json!([[0, 1, 2], [3, 4, 5]])
        );
    }
}
