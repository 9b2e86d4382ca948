//! TensorFlow Serving REST API (also KServe "V1"): predict (row and columnar), status, metadata.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use litehouse_models::{ElementType, TensorSpec};
use serde_json::{json, Map, Value as Json};

use crate::error::{Code, ServeError, Wire};
use crate::state::AppState;
use crate::vertex::kind;
use crate::{body, response};
use litehouse_predictor::{Catalog, ServedModel};

/// Which version a route addresses.
#[derive(Debug, Clone, Copy)]
enum Selector<'a> {
    Latest,
    Version(&'a str),
    Label(&'a str),
}

/// `GET|POST /v1/models/{m}` (`m` may end in `:predict`).
pub async fn model(
    State(state): State<Arc<AppState>>,
    Path(target): Path<String>,
    headers: HeaderMap,
    request: Body,
) -> Response {
    route(&state, &target, Selector::Latest, headers, request).await
}

/// `GET|POST /v1/models/{m}/versions/{v}` (`v` may end in `:predict`).
pub async fn version(
    State(state): State<Arc<AppState>>,
    Path((name, target)): Path<(String, String)>,
    headers: HeaderMap,
    request: Body,
) -> Response {
    let (v, name) = move_method(name, &target);
    route(&state, &name, Selector::Version(v), headers, request).await
}

/// `GET|POST /v1/models/{m}/labels/{l}` (`l` may end in `:predict`).
pub async fn label(
    State(state): State<Arc<AppState>>,
    Path((name, target)): Path<(String, String)>,
    headers: HeaderMap,
    request: Body,
) -> Response {
    let (l, name) = move_method(name, &target);
    route(&state, &name, Selector::Label(l), headers, request).await
}

/// `("mnist", "3:predict")` -> `("3", "mnist:predict")`: the method moves to the model name.
fn move_method(name: String, target: &str) -> (&str, String) {
    match split(target) {
        (selector, Some(m)) => (selector, format!("{name}:{m}")),
        (selector, None) => (selector, name),
    }
}

/// `GET /v1/models/{m}/metadata`.
pub async fn metadata(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    metadata_of(&state.catalog(), &name, Selector::Latest)
}

/// `GET /v1/models/{m}/versions/{v}/metadata`.
pub async fn version_metadata(
    State(state): State<Arc<AppState>>,
    Path((name, v)): Path<(String, String)>,
) -> Response {
    metadata_of(&state.catalog(), &name, Selector::Version(&v))
}

/// `GET /v1/models/{m}/labels/{l}/metadata`.
pub async fn label_metadata(
    State(state): State<Arc<AppState>>,
    Path((name, l)): Path<(String, String)>,
) -> Response {
    metadata_of(&state.catalog(), &name, Selector::Label(&l))
}

/// `GET /v1/models`: every served model and its versions (litehouse extension).
pub async fn list(State(state): State<Arc<AppState>>) -> Response {
    let catalog = state.catalog();
    let models: Vec<Json> = catalog
        .models
        .iter()
        .map(|(name, versions)| {
            json!({
                "name": name,
                "versions": versions.keys().map(u64::to_string).collect::<Vec<_>>(),
                "labels": catalog.labels.get(name).cloned().unwrap_or_default(),
            })
        })
        .collect();
    let failures: Vec<Json> = catalog
        .failures
        .iter()
        .map(|f| json!({"name": f.name, "version": f.version.to_string(), "error": f.error}))
        .collect();
    response::ok_json(&json!({"models": models, "failed": failures}))
}

fn split(target: &str) -> (&str, Option<&str>) {
    match target.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (target, None),
    }
}

fn resolve<'c>(
    catalog: &'c Catalog,
    name: &str,
    sel: Selector<'_>,
) -> Result<&'c Arc<ServedModel>, ServeError> {
    Ok(match sel {
        Selector::Latest => catalog.resolve(name, None, None),
        Selector::Version(v) => catalog.resolve(name, Some(v), None),
        Selector::Label(l) => catalog.resolve(name, None, Some(l)),
    }?)
}

async fn route(
    state: &AppState,
    target: &str,
    sel: Selector<'_>,
    headers: HeaderMap,
    request: Body,
) -> Response {
    let (name, method) = split(target);
    let result = match method {
        None => status(&state.catalog(), name, sel),
        Some("predict") => predict(state, name, sel, &headers, request).await,
        Some(m @ ("classify" | "regress")) => Err(ServeError::new(
            Code::Unimplemented,
            format!(":{m} is not supported; use :predict"),
        )),
        Some(other) => Err(ServeError::not_found(format!(
            "unknown method ':{other}'; use :predict"
        ))),
    };
    result.unwrap_or_else(|e| e.into_response_as(Wire::Plain))
}

fn status(catalog: &Catalog, name: &str, sel: Selector<'_>) -> Result<Response, ServeError> {
    let failed: Vec<Json> = catalog
        .failures
        .iter()
        .filter(|f| f.name == name)
        .map(|f| {
            json!({"version": f.version.to_string(), "state": "END",
                   "status": {"error_code": "INTERNAL", "error_message": f.error}})
        })
        .collect();
    let versions: Vec<Json> = match (sel, catalog.models.get(name)) {
        (Selector::Latest, Some(all)) => all.keys().rev().map(|v| available(*v)).collect(),
        (_, _) if !failed.is_empty() && !catalog.models.contains_key(name) => vec![],
        _ => vec![available(resolve(catalog, name, sel)?.version)],
    };
    Ok(response::ok_json(
        &json!({"model_version_status": versions.into_iter().chain(failed).collect::<Vec<_>>()}),
    ))
}

fn available(version: u64) -> Json {
    json!({"version": version.to_string(), "state": "AVAILABLE",
           "status": {"error_code": "OK", "error_message": ""}})
}

/// TF Serving's dtype names.
pub fn tf_dtype(t: ElementType) -> &'static str {
    match t {
        ElementType::F32 => "DT_FLOAT",
        ElementType::F16 => "DT_HALF",
        ElementType::F64 => "DT_DOUBLE",
        ElementType::I8 => "DT_INT8",
        ElementType::U8 => "DT_UINT8",
        ElementType::I16 => "DT_INT16",
        ElementType::I32 => "DT_INT32",
        ElementType::I64 => "DT_INT64",
        ElementType::Bool => "DT_BOOL",
    }
}

fn tensor_info(s: &TensorSpec) -> Json {
    json!({
        "dtype": tf_dtype(s.dtype),
        "tensor_shape": {
            "dim": s.shape.iter().map(|d| json!({"size": d.to_string(), "name": ""})).collect::<Vec<_>>(),
            "unknown_rank": false
        },
        "name": s.tensor_name,
    })
}

fn metadata_of(catalog: &Catalog, name: &str, sel: Selector<'_>) -> Response {
    let served = match resolve(catalog, name, sel) {
        Ok(s) => s,
        Err(e) => return e.into_response_as(Wire::Plain),
    };
    let sig = served.model.signature();
    let key = sig.key.clone().unwrap_or_else(|| "serving_default".into());
    let map = |specs: &[TensorSpec]| -> Map<String, Json> {
        specs
            .iter()
            .map(|s| (s.name.clone(), tensor_info(s)))
            .collect()
    };
    response::ok_json(&json!({
        "model_spec": {"name": served.name, "signature_name": "", "version": served.version.to_string()},
        "metadata": {"signature_def": {"signature_def": {
            key: {
                "inputs": map(&sig.inputs),
                "outputs": map(&sig.outputs),
                "method_name": "tensorflow/serving/predict",
            }
        }}}
    }))
}

async fn predict(
    state: &AppState,
    name: &str,
    sel: Selector<'_>,
    headers: &HeaderMap,
    request: Body,
) -> Result<Response, ServeError> {
    let served = resolve(&state.catalog(), name, sel)?.clone();
    crate::request_context::note_model(&served);
    let bytes = body::read(headers, request, state.limits.max_body_bytes).await?;
    if body::is_multipart(headers) {
        let files = body::multipart_files(headers, bytes).await?;
        let predictions = state.run_images(served, files).await?;
        return Ok(response::ok_json(&json!({ "predictions": predictions })));
    }
    let doc = body::parse_json(&bytes)?;
    let Json::Object(mut map) = doc else {
        return Err(ServeError::invalid(format!(
            "the request must be a JSON object with \"instances\" or \"inputs\", got {}",
            kind(&doc)
        )));
    };
    if let Some(sig_name) = map.get("signature_name").and_then(Json::as_str) {
        let own = served
            .model
            .signature()
            .key
            .as_deref()
            .unwrap_or("serving_default");
        if sig_name != own && sig_name != "serving_default" {
            return Err(ServeError::invalid(format!(
                "model '{name}' has no signature '{sig_name}' (it has '{own}')"
            )));
        }
    }
    match (map.remove("instances"), map.remove("inputs")) {
        (Some(_), Some(_)) => Err(ServeError::invalid(
            "send either \"instances\" (row format) or \"inputs\" (columnar format), not both",
        )),
        (Some(Json::Array(instances)), None) => {
            let predictions = state.run_instances(served, instances).await?;
            Ok(response::ok_json(&json!({ "predictions": predictions })))
        }
        (Some(other), None) => Err(ServeError::invalid(format!(
            "\"instances\" must be a JSON array, got {}",
            kind(&other)
        ))),
        (None, Some(inputs)) => {
            let outputs: Vec<String> = served
                .model
                .signature()
                .outputs
                .iter()
                .map(|o| o.name.clone())
                .collect();
            let instances = columnar_to_rows(inputs)?;
            let predictions = state.run_instances(served, instances).await?;
            Ok(response::ok_json(
                &json!({ "outputs": rows_to_columnar(predictions, &outputs) }),
            ))
        }
        (None, None) => Err(ServeError::invalid(format!(
            "the request has neither \"instances\" nor \"inputs\" (got keys: {})",
            map.keys().cloned().collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// `{"inputs": tensor}` or `{"inputs": {name: tensor}}`, batch first, to row instances.
fn columnar_to_rows(inputs: Json) -> Result<Vec<Json>, ServeError> {
    match inputs {
        Json::Array(rows) => Ok(rows),
        Json::Object(named) => {
            let mut n = None;
            for (k, v) in &named {
                let len = v.as_array().map(Vec::len).ok_or_else(|| {
                    ServeError::invalid(format!(
                        "\"inputs\".\"{k}\" must be an array with the batch first, got {}",
                        kind(v)
                    ))
                })?;
                if *n.get_or_insert(len) != len {
                    return Err(ServeError::invalid(format!(
                        "\"inputs\" disagree on the batch size: '{k}' has {len}, another input {}",
                        n.unwrap_or(0)
                    )));
                }
            }
            let n = n.unwrap_or(0);
            Ok((0..n)
                .map(|i| {
                    Json::Object(
                        named
                            .iter()
                            .map(|(k, v)| (k.clone(), v[i].clone()))
                            .collect(),
                    )
                })
                .collect())
        }
        other => Err(ServeError::invalid(format!(
            "\"inputs\" must be an array or an object of arrays, got {}",
            kind(&other)
        ))),
    }
}

/// Row predictions back to columnar outputs: a list for one output, an object for several.
fn rows_to_columnar(predictions: Vec<Json>, outputs: &[String]) -> Json {
    if outputs.len() <= 1 {
        return Json::Array(predictions);
    }
    let mut columns: Map<String, Json> = outputs
        .iter()
        .map(|o| (o.clone(), Json::Array(vec![])))
        .collect();
    for p in predictions {
        for o in outputs {
            if let Some(Json::Array(col)) = columns.get_mut(o) {
                col.push(p.get(o).cloned().unwrap_or(Json::Null));
            }
        }
    }
    Json::Object(columns)
}
