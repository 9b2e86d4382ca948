//! What every request passes through before its handler: a request id and a tracing span
//! ([`observe`]), metrics and EMF, the request timeout, and the bearer-token check
//! ([`authorize`]).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::auth::Credential;
use crate::error::{wire_for_path, Code, ServeError};
use crate::request_context::{self, RequestContext};
use crate::state::AppState;

/// The request id header: read from the client (or the Lambda front door) and always answered.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The protocol a path speaks, as the metrics label it.
pub fn protocol_of(path: &str) -> &'static str {
    if path.starts_with("/v1/projects") || path.starts_with("/v1/endpoints") {
        "vertex"
    } else if path.starts_with("/v1/models") {
        "tfserving"
    } else if path.starts_with("/v2/health") || path == "/v2" {
        "other"
    } else if path.starts_with("/v2/") {
        "kserve"
    } else {
        "other"
    }
}

/// Health probes stay open when tokens are required (load balancers and Lambda's front door
/// send none).
fn is_probe(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/v2/health/live" | "/v2/health/ready"
    )
}

/// Gives the request an id (the client's `X-Request-Id` when acceptable, else a fresh one),
/// runs it inside a `request` span carrying that id (so every log line of the request has it),
/// under the request timeout; counts it in the metrics, prints its EMF line in the Lambda, and
/// answers the id in `X-Request-Id`.
pub async fn observe(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let path = request.uri().path().to_string();
    let protocol = protocol_of(&path);
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| request_context::acceptable_id(id))
        .map_or_else(request_context::generate_id, str::to_string);
    let context = RequestContext::new(id.clone());
    let span = tracing::info_span!("request", request_id = %id);
    let method = request.method().clone();
    let timeout = state.options.request_timeout;
    let run = async {
        match timeout {
            Some(limit) => match tokio::time::timeout(limit, next.run(request)).await {
                Ok(response) => response,
                Err(_) => {
                    state.metrics.reject("timeout");
                    ServeError::new(
                        Code::DeadlineExceeded,
                        format!(
                            "the request did not finish within the server's request timeout of {:.3} s",
                            limit.as_secs_f64()
                        ),
                    )
                    .into_response_as(wire_for_path(&path))
                }
            },
            None => next.run(request).await,
        }
    };
    let mut response = request_context::scope(context.clone(), run.instrument(span.clone())).await;
    if state.options.finish_before_return {
        // The Lambda freezes once this returns: shadow copies and log writes happen now.
        context.finish_held().instrument(span.clone()).await;
        if let Some(log) = &state.prediction_log {
            log.flush().instrument(span.clone()).await;
        }
    }
    let code = response.status().as_u16();
    let elapsed = started.elapsed();
    let served = context.served();
    match response.status() {
        StatusCode::TOO_MANY_REQUESTS => state.metrics.reject("queue_full"),
        StatusCode::PAYLOAD_TOO_LARGE => state.metrics.reject("too_large"),
        _ => {}
    }
    if protocol != "other" {
        state
            .metrics
            .observe(&served, protocol, code, elapsed.as_secs_f64());
        if state.options.emf {
            crate::metrics::emf_event(&served, protocol, code, elapsed.as_secs_f64() * 1e3, &id)
                .emit();
        }
    }
    span.in_scope(|| {
        tracing::debug!(%method, %path, status = code, ms = elapsed.as_secs_f64() * 1e3,
            endpoint = %served.endpoint, deployed_model = %served.deployed_model,
            model = %served.model, version = served.version, "answered");
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// With tokens configured, every route but the health probes needs `Authorization: Bearer
/// <token>`; a missing or wrong one is answered 401 UNAUTHENTICATED with `WWW-Authenticate`
/// (RFC 6750).
pub async fn authorize(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(tokens) = &state.options.auth else {
        return next.run(request).await;
    };
    let path = request.uri().path();
    if is_probe(path) {
        return next.run(request).await;
    }
    let (message, challenge) = match crate::auth::credential(request.headers()) {
        Credential::Bearer(token) if tokens.accepts(token) => return next.run(request).await,
        Credential::Bearer(_) => (
            "the bearer token is not accepted by this server",
            r#"Bearer realm="litehouse", error="invalid_token""#,
        ),
        Credential::Malformed => (
            "the Authorization header must be 'Bearer <token>'",
            r#"Bearer realm="litehouse", error="invalid_request""#,
        ),
        Credential::Missing => (
            "this server requires a bearer token: send 'Authorization: Bearer <token>'",
            r#"Bearer realm="litehouse""#,
        ),
    };
    state.metrics.reject("unauthenticated");
    let mut response =
        ServeError::new(Code::Unauthenticated, message).into_response_as(wire_for_path(path));
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

/// `GET /metrics`: every metric in the Prometheus text format.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut response = Response::new(axum::body::Body::from(state.render_metrics()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_protocol() {
        for (path, protocol) in [
            ("/v1/endpoints/mnist:predict", "vertex"),
            ("/v1/projects/p/locations/l/endpoints/e:predict", "vertex"),
            ("/v1/models/mnist:predict", "tfserving"),
            ("/v2/models/mnist/infer", "kserve"),
            ("/v2/health/ready", "other"),
            ("/v2", "other"),
            ("/metrics", "other"),
        ] {
            assert_eq!(protocol_of(path), protocol, "{path}");
        }
    }
}
