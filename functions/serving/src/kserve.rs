//! KServe Open Inference Protocol (V2), JSON form: health, model metadata, readiness, infer.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use litehouse_models::instances::{flatten_numbers, InputValues};
use litehouse_models::{ElementType, TensorSpec};
use serde_json::{json, Map, Value as Json};

use crate::error::{ServeError, Wire};
use crate::kserve_binary;
use crate::state::AppState;
use crate::vertex::kind;
use crate::{body, response};
use litehouse_predictor::{PredictOptions, ServedModel};

/// V2 datatype names.
pub fn v2_dtype(t: ElementType) -> &'static str {
    match t {
        ElementType::F32 => "FP32",
        ElementType::F16 => "FP16",
        ElementType::F64 => "FP64",
        ElementType::I8 => "INT8",
        ElementType::U8 => "UINT8",
        ElementType::I16 => "INT16",
        ElementType::I32 => "INT32",
        ElementType::I64 => "INT64",
        ElementType::Bool => "BOOL",
    }
}

const NUMERIC: &[&str] = &[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16",
    "FP32", "FP64",
];

/// `GET /v2`: server metadata.
pub async fn server_metadata() -> Response {
    response::ok_json(&json!({
        "name": "litehouse",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data"],
    }))
}

/// `GET /v2/health/live`.
pub async fn live() -> Response {
    response::ok_json(&json!({"live": true}))
}

/// `GET /v2/health/ready`.
pub async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let ready = state.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    response::json_response(status, &json!({ "ready": ready }))
}

/// The V2 datatype a tensor is served as: quantized tensors travel as real values (FP32), as
/// the infer route answers them; inputs also accept their native integer type.
fn served_dtype(s: &TensorSpec) -> &'static str {
    if s.dtype.is_float() || s.quantization.is_some() {
        "FP32"
    } else {
        v2_dtype(s.dtype)
    }
}

fn spec_json(s: &TensorSpec) -> Json {
    json!({"name": s.name, "datatype": served_dtype(s), "shape": s.shape})
}

fn metadata(state: &AppState, name: &str, version: Option<&str>) -> Response {
    let catalog = state.catalog();
    match catalog.resolve(name, version, None) {
        Ok(served) => {
            let sig = served.model.signature();
            let versions: Vec<String> = catalog
                .models
                .get(name)
                .map(|v| v.keys().map(u64::to_string).collect())
                .unwrap_or_default();
            response::ok_json(&json!({
                "name": served.name,
                "versions": versions,
                "platform": "tflite",
                "inputs": sig.inputs.iter().map(spec_json).collect::<Vec<_>>(),
                "outputs": sig.outputs.iter().map(spec_json).collect::<Vec<_>>(),
            }))
        }
        Err(e) => ServeError::from(e).into_response_as(Wire::Plain),
    }
}

/// `GET /v2/models/{m}`.
pub async fn model_metadata(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Response {
    metadata(&state, &name, None)
}

/// `GET /v2/models/{m}/versions/{v}`.
pub async fn version_metadata(
    State(state): State<Arc<AppState>>,
    Path((name, v)): Path<(String, String)>,
) -> Response {
    metadata(&state, &name, Some(&v))
}

fn model_ready(state: &AppState, name: &str, version: Option<&str>) -> Response {
    match state.catalog().resolve(name, version, None) {
        Ok(_) => response::ok_json(&json!({"name": name, "ready": true})),
        Err(e) => ServeError::from(e).into_response_as(Wire::Plain),
    }
}

/// `GET /v2/models/{m}/ready`.
pub async fn ready_model(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    model_ready(&state, &name, None)
}

/// `GET /v2/models/{m}/versions/{v}/ready`.
pub async fn ready_version(
    State(state): State<Arc<AppState>>,
    Path((name, v)): Path<(String, String)>,
) -> Response {
    model_ready(&state, &name, Some(&v))
}

/// `POST /v2/models/{m}/infer`.
pub async fn infer_model(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    request: Body,
) -> Response {
    infer(&state, &name, None, &headers, request)
        .await
        .unwrap_or_else(|e| e.into_response_as(Wire::Plain))
}

/// `POST /v2/models/{m}/versions/{v}/infer`.
pub async fn infer_version(
    State(state): State<Arc<AppState>>,
    Path((name, v)): Path<(String, String)>,
    headers: HeaderMap,
    request: Body,
) -> Response {
    infer(&state, &name, Some(&v), &headers, request)
        .await
        .unwrap_or_else(|e| e.into_response_as(Wire::Plain))
}

async fn infer(
    state: &AppState,
    name: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    request: Body,
) -> Result<Response, ServeError> {
    let served = state.catalog().resolve(name, version, None)?.clone();
    crate::request_context::note_model(&served);
    let bytes = body::read(headers, request, state.limits.max_body_bytes).await?;
    let doc = match headers
        .get(kserve_binary::HEADER_LENGTH)
        .map(|v| v.to_str().unwrap_or("?"))
    {
        Some(length) => kserve_binary::decode(&bytes, length)?,
        None => body::parse_json(&bytes)?,
    };
    let id = doc.get("id").cloned();
    let (instances, values, batch) = decode_request(&served, &doc)?;
    let wanted = requested_outputs(&served, &doc)?;
    let options = PredictOptions {
        values: Some(values),
        postprocess: false,
        ..PredictOptions::default()
    };
    let predictions = state
        .run_instances_with(served.clone(), instances, options)
        .await?;
    let sig = served.model.signature();
    let mut outputs = vec![];
    for spec in &sig.outputs {
        if !wanted.is_empty() && !wanted.contains(&spec.name) {
            continue;
        }
        let mut data = vec![];
        let mut item_shape = vec![];
        for p in &predictions {
            let v = if sig.outputs.len() == 1 {
                p
            } else {
                p.get(&spec.name).unwrap_or(&Json::Null)
            };
            let (values, shape) = flatten_numbers(v).map_err(ServeError::invalid)?;
            item_shape = shape;
            data.extend(values);
        }
        let mut shape = vec![batch];
        shape.extend(item_shape);
        let datatype = served_dtype(spec);
        outputs
            .push(json!({"name": spec.name, "datatype": datatype, "shape": shape, "data": data}));
    }
    let mut answer = Map::new();
    answer.insert("model_name".into(), json!(served.name));
    answer.insert("model_version".into(), json!(served.version.to_string()));
    if let Some(id) = id {
        answer.insert("id".into(), id);
    }
    let mut tail = Vec::new();
    for output in &mut outputs {
        let name = output["name"].as_str().unwrap_or("").to_string();
        if kserve_binary::wants_binary(&doc, &name) {
            kserve_binary::encode_output(output, &mut tail);
        }
    }
    answer.insert("outputs".into(), Json::Array(outputs));
    if tail.is_empty() {
        return Ok(response::ok_json(&Json::Object(answer)));
    }
    let mut bytes = serde_json::to_vec(&Json::Object(answer)).unwrap_or_default();
    let header_length = bytes.len();
    bytes.extend(tail);
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/octet-stream")
        .header(kserve_binary::HEADER_LENGTH, header_length)
        .body(Body::from(bytes))
        .map_err(|e| ServeError::new(crate::error::Code::Internal, e.to_string()))
}

fn requested_outputs(served: &ServedModel, doc: &Json) -> Result<Vec<String>, ServeError> {
    let Some(list) = doc.get("outputs").and_then(Json::as_array) else {
        return Ok(vec![]);
    };
    let sig = served.model.signature();
    list.iter()
        .map(|o| {
            let name = o.get("name").and_then(Json::as_str).unwrap_or("");
            if sig.outputs.iter().any(|s| s.name == name) {
                Ok(name.to_string())
            } else {
                Err(ServeError::invalid(format!(
                    "requested output '{name}' is not an output of model '{}' (outputs: {})",
                    served.name,
                    sig.outputs
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        })
        .collect()
}

/// V2 input tensors to row instances; also says how numbers map onto quantized inputs (FP
/// datatypes carry real values) and the batch size.
fn decode_request(
    served: &ServedModel,
    doc: &Json,
) -> Result<(Vec<Json>, InputValues, usize), ServeError> {
    let sig = served.model.signature();
    let inputs = doc
        .get("inputs")
        .and_then(Json::as_array)
        .ok_or_else(|| {
            ServeError::invalid(format!(
                "the request needs \"inputs\": [{{\"name\", \"shape\", \"datatype\", \"data\"}}], got {}",
                doc.get("inputs").map(kind).unwrap_or("no \"inputs\"")
            ))
        })?;
    if inputs.len() != sig.inputs.len() {
        return Err(ServeError::invalid(format!(
            "model '{}' takes {} input(s) ({}), the request has {}",
            served.name,
            sig.inputs.len(),
            sig.input_names(),
            inputs.len()
        )));
    }
    let mut columns: Vec<(String, Vec<Json>)> = vec![];
    let mut values = InputValues::Native;
    let mut batch: Option<usize> = None;
    for spec in &sig.inputs {
        let tensor = inputs
            .iter()
            .find(|t| t.get("name").and_then(Json::as_str) == Some(&spec.name))
            .or_else(|| (sig.inputs.len() == 1).then(|| &inputs[0]))
            .ok_or_else(|| {
                ServeError::invalid(format!(
                    "missing input '{}' (inputs: {})",
                    spec.name,
                    sig.input_names()
                ))
            })?;
        let datatype = tensor.get("datatype").and_then(Json::as_str).unwrap_or("");
        let shape: Vec<usize> = tensor
            .get("shape")
            .and_then(Json::as_array)
            .and_then(|a| a.iter().map(|d| d.as_u64().map(|d| d as usize)).collect())
            .ok_or_else(|| {
                ServeError::invalid(format!(
                    "input '{}': \"shape\" must be an array of non-negative integers",
                    spec.name
                ))
            })?;
        let n = *shape.first().ok_or_else(|| {
            ServeError::invalid(format!("input '{}': \"shape\" is empty", spec.name))
        })?;
        if *batch.get_or_insert(n) != n {
            return Err(ServeError::invalid(format!(
                "inputs disagree on the batch size ({} vs {n})",
                batch.unwrap_or(0)
            )));
        }
        // The batch is the caller's; every other dimension must match the model.
        let mut with_model_batch = shape.clone();
        if let (Some(b), Some(&e)) = (with_model_batch.first_mut(), spec.shape.first()) {
            if e >= 0 {
                *b = e as usize;
            }
        }
        // BYTES carries one encoded image per batch item, whatever the model's shape.
        if datatype != "BYTES" && !spec.accepts(&with_model_batch) {
            return Err(ServeError::invalid(format!(
                "input '{}' expects shape {}, got {:?}",
                spec.name,
                spec.shape_text(),
                shape
            )));
        }
        let data = tensor.get("data").unwrap_or(&Json::Null);
        let item: usize = shape[1..].iter().product();
        let rows: Vec<Json> = if datatype == "BYTES" {
            let img = served.config.image.is_some();
            let items = data.as_array().filter(|_| img).ok_or_else(|| {
                ServeError::invalid(format!(
                    "input '{}' expects {}, got BYTES",
                    spec.name,
                    v2_dtype(spec.dtype)
                ))
            })?;
            values = InputValues::Real;
            items.iter().map(|b| json!({ "b64": b })).collect()
        } else {
            if !NUMERIC.contains(&datatype) {
                return Err(ServeError::invalid(format!(
                    "input '{}': unknown datatype '{datatype}' (expected {})",
                    spec.name,
                    v2_dtype(spec.dtype)
                )));
            }
            if datatype.starts_with("FP") && !spec.dtype.is_float() {
                values = InputValues::Real;
            }
            let (flat, _) = flatten_numbers(data)
                .map_err(|e| ServeError::invalid(format!("input '{}': {e}", spec.name)))?;
            if flat.len() != n * item {
                return Err(ServeError::invalid(format!(
                    "input '{}': shape {shape:?} needs {} values, \"data\" has {}",
                    spec.name,
                    n * item,
                    flat.len()
                )));
            }
            flat.chunks(item.max(1))
                .map(|c| Json::Array(c.iter().map(|&v| json!(v)).collect()))
                .collect()
        };
        if rows.len() != n {
            return Err(ServeError::invalid(format!(
                "input '{}': shape {shape:?} has batch {n}, \"data\" holds {} item(s)",
                spec.name,
                rows.len()
            )));
        }
        columns.push((spec.name.clone(), rows));
    }
    let n = batch.unwrap_or(0);
    let instances = (0..n)
        .map(|i| {
            if columns.len() == 1 {
                columns[0].1[i].clone()
            } else {
                Json::Object(
                    columns
                        .iter()
                        .map(|(name, rows)| (name.clone(), rows[i].clone()))
                        .collect(),
                )
            }
        })
        .collect();
    Ok((instances, values, n))
}
