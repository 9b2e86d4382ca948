//! `predict`: the litehouse serving Router as an AWS Lambda function (lambda_http), reached
//! through a Function URL or an API Gateway HTTP API.
//!
//! Models load once at init, never inside the handler, from the same options `litehouse serve`
//! reads ([`litehouse_predictor::CatalogOptions::from_env`]):
//! - `LITEHOUSE_STORE`: a registry store (`s3://bucket/prefix`, or a directory). Every endpoint in
//!   it is served; endpoint changes are picked up at most every `LITEHOUSE_REFRESH_SECS` seconds
//!   (default 30), checked when a request arrives (a Lambda has no background time); or
//! - `LITEHOUSE_MODELS`: a directory packaged with the function (default `models/catalog`).
//!
//! Operations: logs follow the function's log configuration (`AWS_LAMBDA_LOG_FORMAT`,
//! `AWS_LAMBDA_LOG_LEVEL`) and carry the Lambda request id; every prediction prints a CloudWatch
//! EMF line (namespace `litehouse`). `LITEHOUSE_AUTH_TOKENS` (comma-separated) requires bearer
//! tokens on top of the Function URL's own auth; `LITEHOUSE_ALLOW_DEPLOYED_MODEL_HEADER=1`
//! enables the deployed-model override; `LITEHOUSE_LOG_PREDICTIONS` (0 to 1) is the default
//! prediction-log rate, written to `LITEHOUSE_PREDICTION_LOG` or `LITEHOUSE_STORE` before each
//! invocation returns (the sandbox is frozen afterwards), as are shadow copies.

use std::time::Duration;

use anyhow::Context;
use lambda_http::RequestExt;
use litehouse_predictor::{open_catalog, CatalogOptions, Executor, Refresh};
use litehouse_serving::auth::Tokens;
use litehouse_serving::middleware::REQUEST_ID_HEADER;
use litehouse_serving::prediction_log::{LogSettings, DEFAULT_CAPACITY};
use litehouse_serving::{AppState, Limits, ServeOptions};

/// The serving options from the function's environment.
async fn options_from_env() -> anyhow::Result<ServeOptions> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let auth = match env("LITEHOUSE_AUTH_TOKENS") {
        Some(list) => Some(Tokens::parse_list(&list, "LITEHOUSE_AUTH_TOKENS")?),
        None => None,
    };
    let rate = match env("LITEHOUSE_LOG_PREDICTIONS") {
        Some(text) => match text.parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => r,
            _ => anyhow::bail!(
                "LITEHOUSE_LOG_PREDICTIONS must be a fraction from 0 to 1, got '{text}'"
            ),
        },
        None => 0.0,
    };
    let log_uri = env("LITEHOUSE_PREDICTION_LOG")
        .or_else(|| env("LITEHOUSE_STORE"))
        .or_else(|| (rate > 0.0).then(|| "/tmp/litehouse".to_string()));
    let prediction_log = match log_uri {
        Some(uri) => Some(LogSettings {
            store: litehouse_store::Store::open(&uri)
                .await
                .with_context(|| format!("opening the prediction log {uri}"))?,
            default_rate: rate,
            capacity: DEFAULT_CAPACITY,
        }),
        None => None,
    };
    let timeout = match env("LITEHOUSE_REQUEST_TIMEOUT_SECS") {
        Some(text) => match text.parse::<f64>() {
            Ok(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
            Ok(0.0) => None,
            _ => anyhow::bail!("LITEHOUSE_REQUEST_TIMEOUT_SECS must be seconds, got '{text}'"),
        },
        None => None,
    };
    Ok(ServeOptions {
        auth,
        allow_deployed_model_header: env("LITEHOUSE_ALLOW_DEPLOYED_MODEL_HEADER")
            .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes")),
        request_timeout: timeout,
        emf: true,
        finish_before_return: true,
        prediction_log,
    })
}

/// The Lambda request id becomes the request's id, so serving logs, the `X-Request-Id` answer
/// and Lambda's own REPORT line agree.
async fn lambda_request_id(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let id = request
        .lambda_context_ref()
        .map(|c| c.request_id.clone())
        .filter(|id| litehouse_serving::request_context::acceptable_id(id));
    if let Some(value) = id.and_then(|id| axum::http::HeaderValue::from_str(&id).ok()) {
        request.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    next.run(request).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    litehouse_telemetry::logging::init_lambda("info");
    let started = std::time::Instant::now();
    let options = CatalogOptions::from_env()?;
    let opened = open_catalog(&options, Refresh::Lazy).await?;
    let limits = Limits {
        max_body_bytes: std::env::var("LITEHOUSE_MAX_BODY_BYTES")
            .ok()
            .and_then(|v| v.parse().ok())
            // A synchronous Lambda invocation carries at most 6 MB.
            .unwrap_or(Limits::default().max_body_bytes),
        ..Limits::default()
    };
    // A Lambda sandbox handles one invocation at a time: the hop to an inference thread buys
    // nothing, so everything but a very heavy request runs inline.
    let executor = Executor::new(1, 4).with_inline_budget(Duration::from_millis(100));
    let options = options_from_env().await?;
    let state = AppState::with_options(opened.catalog, opened.live, executor, limits, options);
    tracing::info!(
        models = state.catalog().models.len(),
        endpoints = state.catalog().endpoints.len(),
        init_ms = started.elapsed().as_millis() as u64,
        "predict function ready"
    );
    let draining = state.clone();
    tokio::spawn(async move {
        litehouse_serving::server::shutdown_signal().await;
        // Lambda sends SIGTERM only between invocations; nothing is in flight to drain.
        tracing::info!("SIGTERM: shutting down");
        draining.set_draining();
        std::process::exit(0);
    });
    let app = litehouse_serving::router(state).layer(axum::middleware::from_fn(lambda_request_id));
    lambda_http::run(app)
        .await
        .map_err(|e| anyhow::anyhow!("lambda runtime: {e}"))
}
