//! The one axum Router every front door serves (local HTTP server and Lambda).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::json;

use crate::error::{ServeError, Wire};
use crate::state::AppState;
use crate::{kserve, response, tfserving, vertex};

/// Builds the Router over shared state.
pub fn router(state: Arc<AppState>) -> Router {
    let vertex_base = "/v1/projects/{project}/locations/{location}/endpoints";
    Router::new()
        // Vertex AI
        .route(vertex_base, get(vertex::list))
        .route(
            &format!("{vertex_base}/{{endpoint}}"),
            get(vertex::describe_full).post(vertex::full),
        )
        .route("/v1/endpoints", get(vertex::list))
        .route(
            "/v1/endpoints/{endpoint}",
            get(vertex::describe_short).post(vertex::short),
        )
        // TF Serving
        .route("/v1/models", get(tfserving::list))
        .route(
            "/v1/models/{model}",
            get(tfserving::model).post(tfserving::model),
        )
        .route("/v1/models/{model}/metadata", get(tfserving::metadata))
        .route(
            "/v1/models/{model}/versions/{version}",
            get(tfserving::version).post(tfserving::version),
        )
        .route(
            "/v1/models/{model}/versions/{version}/metadata",
            get(tfserving::version_metadata),
        )
        .route(
            "/v1/models/{model}/labels/{label}",
            get(tfserving::label).post(tfserving::label),
        )
        .route(
            "/v1/models/{model}/labels/{label}/metadata",
            get(tfserving::label_metadata),
        )
        // KServe V2
        .route("/v2", get(kserve::server_metadata))
        .route("/v2/health/live", get(kserve::live))
        .route("/v2/health/ready", get(kserve::ready))
        .route("/v2/models/{model}", get(kserve::model_metadata))
        .route("/v2/models/{model}/ready", get(kserve::ready_model))
        .route(
            "/v2/models/{model}/infer",
            axum::routing::post(kserve::infer_model),
        )
        .route(
            "/v2/models/{model}/versions/{version}",
            get(kserve::version_metadata),
        )
        .route(
            "/v2/models/{model}/versions/{version}/ready",
            get(kserve::ready_version),
        )
        .route(
            "/v2/models/{model}/versions/{version}/infer",
            axum::routing::post(kserve::infer_version),
        )
        // Health
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(crate::openapi::document))
        .route("/docs", get(crate::openapi::page))
        .route("/metrics", get(crate::middleware::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Layers run bottom-up: observe (request id, span, timeout, metrics) wraps the token
        // check, which wraps the registry refresh, so refused requests cost no store check.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refresh_if_due,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::middleware::authorize,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::middleware::observe,
        ))
        .with_state(state)
}

async fn healthz() -> Response {
    response::ok_json(&json!({"status": "ok"}))
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.is_ready() {
        let catalog = state.catalog();
        response::ok_json(&json!({"status": "ready", "models": catalog.models.len()}))
    } else {
        response::json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "not ready"}),
        )
    }
}

async fn not_found(uri: Uri) -> Response {
    ServeError::not_found(format!("no route for {}", uri.path()))
        .into_response_as(crate::error::wire_for_path(uri.path()))
}

async fn method_not_allowed(uri: Uri) -> Response {
    ServeError {
        code: crate::error::Code::Unimplemented,
        status: Some(StatusCode::METHOD_NOT_ALLOWED),
        message: format!("method not allowed on {}", uri.path()),
    }
    .into_response_as(Wire::Rpc)
}

/// Before each request, a due registry check (Lambda: at most every N seconds; a no-op without a
/// registry or with the local server's background poller).
async fn refresh_if_due(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    state.refresh_if_due().await;
    next.run(request).await
}
