//! Vertex AI online prediction: `:predict`, `:rawPredict` and endpoint descriptions.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{json, Value as Json};

use crate::{body, response};
use litehouse_predictor::{ServedDeployment, ServedEndpoint};

use crate::error::{Code, ServeError, Wire};
use crate::state::{AppState, Payload};
use crate::wire::{DeployedModelResource, EndpointResource, PredictResponse};

/// litehouse extension: send the request to this deployed model, ignoring the traffic split
/// (for trying a challenger). Vertex AI has no such override on `:predict`.
pub const DEPLOYED_MODEL_HEADER: &str = "x-litehouse-deployed-model-id";

/// litehouse extension: requests with the same routing key (a user or session id) go to the
/// same deployed model while the traffic split is unchanged.
pub const ROUTING_KEY_HEADER: &str = "x-litehouse-routing-key";

/// `/v1/projects/{p}/locations/{l}/endpoints/{e}[:predict|:rawPredict]`
pub async fn full(
    State(state): State<Arc<AppState>>,
    Path((project, location, endpoint)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    dispatch(&state, &project, &location, &endpoint, headers, body).await
}

/// `/v1/endpoints/{e}[:predict|:rawPredict]`, the short alias.
pub async fn short(
    State(state): State<Arc<AppState>>,
    Path(endpoint): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    dispatch(&state, "local", "local", &endpoint, headers, body).await
}

/// `GET` of an endpoint (full form).
pub async fn describe_full(
    State(state): State<Arc<AppState>>,
    Path((project, location, endpoint)): Path<(String, String, String)>,
) -> Response {
    describe(&state, &project, &location, &endpoint)
}

/// `GET` of an endpoint (short form).
pub async fn describe_short(
    State(state): State<Arc<AppState>>,
    Path(endpoint): Path<String>,
) -> Response {
    describe(&state, "local", "local", &endpoint)
}

/// `GET /v1/endpoints` and the full form: every endpoint.
pub async fn list(State(state): State<Arc<AppState>>) -> Response {
    let catalog = state.catalog();
    let endpoints: Vec<Json> = catalog
        .endpoints
        .values()
        .map(|e| endpoint_json(e, "local", "local"))
        .collect();
    response::ok_json(&json!({ "endpoints": endpoints }))
}

fn describe(state: &AppState, project: &str, location: &str, endpoint: &str) -> Response {
    if endpoint.contains(':') {
        return ServeError::new(
            Code::Unimplemented,
            format!("use POST for '{endpoint}' (GET describes an endpoint)"),
        )
        .into_response_as(Wire::Rpc);
    }
    let catalog = state.catalog();
    match catalog.endpoint(endpoint) {
        Ok(e) => response::ok_json(&endpoint_json(e, project, location)),
        Err(e) => ServeError::from(e).into_response_as(Wire::Rpc),
    }
}

fn model_resource(project: &str, location: &str, d: &ServedDeployment) -> String {
    format!(
        "projects/{project}/locations/{location}/models/{}",
        d.model.name
    )
}

/// An endpoint as Vertex's `Endpoint` resource.
pub fn endpoint_json(e: &ServedEndpoint, project: &str, location: &str) -> Json {
    let deployed = e
        .deployed
        .iter()
        .map(|d| (d, None))
        .chain(e.shadows.iter().map(|d| (d, Some(true))))
        .map(|(d, shadow)| DeployedModelResource {
            id: d.id.clone(),
            model: model_resource(project, location, d),
            model_version_id: d.model.version.to_string(),
            display_name: d.display_name.clone(),
            litehouse_shadow: shadow,
        })
        .collect();
    serde_json::to_value(EndpointResource {
        name: format!("projects/{project}/locations/{location}/endpoints/{}", e.id),
        display_name: e.display_name.clone(),
        deployed_models: deployed,
        traffic_split: e.traffic_split.clone(),
        etag: e.etag.clone(),
    })
    .unwrap_or_default()
}

async fn dispatch(
    state: &Arc<AppState>,
    project: &str,
    location: &str,
    target: &str,
    headers: HeaderMap,
    request: Body,
) -> Response {
    let Some((endpoint, method)) = target.split_once(':') else {
        return ServeError::new(
            Code::Unimplemented,
            format!(
                "POST to an endpoint needs a method: '{target}:predict' or '{target}:rawPredict'"
            ),
        )
        .into_response_as(Wire::Rpc);
    };
    let raw = match method {
        "predict" => false,
        "rawPredict" => true,
        other => {
            return ServeError::new(
                Code::Unimplemented,
                format!("method ':{other}' is not supported; use :predict or :rawPredict"),
            )
            .into_response_as(Wire::Rpc)
        }
    };
    let result = async {
        let call = Call::prepare(state, project, location, endpoint, &headers, request).await?;
        if raw {
            raw_predict(state, call, &headers).await
        } else {
            predict(state, call, &headers).await
        }
    };
    result
        .await
        .unwrap_or_else(|e| e.into_response_as(Wire::Rpc))
}

/// One request to an endpoint: where it goes and what it carries.
struct Call<'a> {
    project: &'a str,
    location: &'a str,
    endpoint: Arc<ServedEndpoint>,
    deployed: ServedDeployment,
    bytes: axum::body::Bytes,
}

impl<'a> Call<'a> {
    async fn prepare(
        state: &AppState,
        project: &'a str,
        location: &'a str,
        endpoint_id: &str,
        headers: &HeaderMap,
        request: Body,
    ) -> Result<Call<'a>, ServeError> {
        let endpoint = state.catalog().endpoint(endpoint_id)?.clone();
        let deployed = choose(
            &endpoint,
            headers,
            state.options.allow_deployed_model_header,
        )?;
        crate::request_context::note_deployment(&endpoint.id, &deployed);
        let bytes = body::read(headers, request, state.limits.max_body_bytes).await?;
        Ok(Call {
            project,
            location,
            endpoint,
            deployed,
            bytes,
        })
    }
}

/// Chooses the deployed model: the override header (where the server allows it; never a
/// shadow), else the traffic split.
fn choose(
    endpoint: &ServedEndpoint,
    headers: &HeaderMap,
    allow_override: bool,
) -> Result<ServedDeployment, ServeError> {
    if let Some(value) = headers.get(DEPLOYED_MODEL_HEADER) {
        if !allow_override {
            return Err(ServeError::new(
                Code::PermissionDenied,
                format!(
                    "the {DEPLOYED_MODEL_HEADER} header is disabled on this server (it bypasses \
                     the traffic split); start it with --allow-deployed-model-header to enable it"
                ),
            ));
        }
        let id = value.to_str().unwrap_or_default();
        if endpoint.shadows.iter().any(|s| s.id == id) {
            return Err(ServeError::new(
                Code::PermissionDenied,
                format!(
                    "deployed model '{id}' on endpoint '{}' is a shadow: it gets copies of the \
                     traffic and never answers a request of its own",
                    endpoint.id
                ),
            ));
        }
        return endpoint
            .deployed
            .iter()
            .find(|d| d.id == id)
            .cloned()
            .ok_or_else(|| {
                ServeError::not_found(format!(
                    "endpoint '{}' has no deployed model '{id}' (deployed: {})",
                    endpoint.id,
                    endpoint
                        .deployed
                        .iter()
                        .map(|d| d.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            });
    }
    let routing_key = headers
        .get(ROUTING_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty());
    match routing_key {
        Some(key) => endpoint.pick_sticky(key),
        None => endpoint.pick(fastrand::u32(0..100)),
    }
    .cloned()
    .ok_or_else(|| {
        ServeError::new(
            Code::FailedPrecondition,
            format!(
                "endpoint '{}' has no deployed model taking traffic (its traffic split is empty)",
                endpoint.id
            ),
        )
    })
}

async fn predict(
    state: &Arc<AppState>,
    call: Call<'_>,
    headers: &HeaderMap,
) -> Result<Response, ServeError> {
    let Call {
        project,
        location,
        endpoint,
        deployed,
        bytes,
    } = call;
    let payload = if body::is_multipart(headers) {
        Payload::Images(body::multipart_files(headers, bytes).await?)
    } else {
        Payload::Instances(instances_of(body::parse_json(&bytes)?)?)
    };
    let predictions = state.run_on_endpoint(&endpoint, &deployed, payload).await?;
    Ok(response::ok_json(&response_json(
        project,
        location,
        &deployed,
        predictions,
    )))
}

fn response_json(
    project: &str,
    location: &str,
    d: &ServedDeployment,
    predictions: Vec<Json>,
) -> Json {
    serde_json::to_value(PredictResponse {
        predictions,
        deployed_model_id: d.id.clone(),
        model: model_resource(project, location, d),
        model_version_id: d.model.version.to_string(),
        model_display_name: d.display_name.clone(),
    })
    .unwrap_or_default()
}

/// `{"instances": [...], "parameters"?: ...}` -> the instances.
pub fn instances_of(doc: Json) -> Result<Vec<Json>, ServeError> {
    match doc {
        Json::Object(mut map) => match map.remove("instances") {
            Some(Json::Array(items)) => Ok(items),
            Some(other) => Err(ServeError::invalid(format!(
                "\"instances\" must be a JSON array, got {}",
                kind(&other)
            ))),
            None => Err(ServeError::invalid(format!(
                "the request has no \"instances\" field (got keys: {}); send {{\"instances\": [...]}}",
                map.keys().cloned().collect::<Vec<_>>().join(", ")
            ))),
        },
        other => Err(ServeError::invalid(format!(
            "the request must be a JSON object {{\"instances\": [...]}}, got {}",
            kind(&other)
        ))),
    }
}

pub use litehouse_predictor::predict::json_kind as kind;

/// `:rawPredict`: an image body (or multipart upload, or a JSON predict body), or Google's REST
/// client wrapping `{"httpBody": {"contentType", "data"}}`, answered in the form asked.
async fn raw_predict(
    state: &Arc<AppState>,
    call: Call<'_>,
    headers: &HeaderMap,
) -> Result<Response, ServeError> {
    let Call {
        project,
        location,
        endpoint,
        deployed,
        bytes,
    } = call;
    let content_type = body::content_type(headers);
    let (payload, wrapped) = if body::is_multipart(headers) {
        (
            Payload::Images(body::multipart_files(headers, bytes).await?),
            false,
        )
    } else if content_type.starts_with("image/") || looks_like_image(&bytes) {
        (Payload::Images(vec![bytes]), false)
    } else {
        let doc = body::parse_json(&bytes)?;
        match doc.get("httpBody") {
            Some(http_body) => {
                let data = http_body.get("data").and_then(Json::as_str).unwrap_or("");
                let inner = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .map_err(|e| {
                        ServeError::invalid(format!("httpBody.data is not base64: {e}"))
                    })?;
                let inner_type = http_body
                    .get("contentType")
                    .and_then(Json::as_str)
                    .unwrap_or("");
                let payload = if inner_type.starts_with("image/") || looks_like_image(&inner) {
                    Payload::Images(vec![inner.into()])
                } else {
                    Payload::Instances(instances_of(body::parse_json(&inner)?)?)
                };
                (payload, true)
            }
            None => (Payload::Instances(instances_of(doc)?), false),
        }
    };
    let predictions = state.run_on_endpoint(&endpoint, &deployed, payload).await?;
    let answer = response_json(project, location, &deployed, predictions);
    let mut response = if wrapped {
        let data = serde_json::to_vec(&answer).unwrap_or_default();
        response::ok_json(&json!({
            "contentType": "application/json",
            "data": base64::engine::general_purpose::STANDARD.encode(data),
        }))
    } else {
        response::ok_json(&answer)
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&endpoint.id) {
        h.insert("x-vertex-ai-endpoint-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&deployed.id) {
        h.insert("x-vertex-ai-deployed-model-id", v);
    }
    Ok(response.into_response())
}

/// PNG or JPEG magic bytes (curl --data-binary sends form-urlencoded by default).
fn looks_like_image(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x89PNG\r\n\x1a\n") || bytes.starts_with(&[0xff, 0xd8, 0xff])
}
