//! `predict`: the litehouse serving Router as an AWS Lambda function (lambda_http), reached
//! through a Function URL or an API Gateway HTTP API.
//!
//! Models load once at init, never inside the handler, from the same options `litehouse serve`
//! reads ([`litehouse_predictor::CatalogOptions::from_env`]):
//! - `LITEHOUSE_STORE`: a registry store (`s3://bucket/prefix`, or a directory). Every endpoint in
//!   it is served; endpoint changes are picked up at most every `LITEHOUSE_REFRESH_SECS` seconds
//!   (default 30), checked when a request arrives (a Lambda has no background time); or
//! - `LITEHOUSE_MODELS`: a directory packaged with the function (default `models/catalog`).

use std::time::Duration;

use litehouse_predictor::{open_catalog, CatalogOptions, Executor, Refresh};
use litehouse_serving::{AppState, Limits};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LITEHOUSE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .without_time() // CloudWatch stamps every line
        .with_ansi(false)
        .init();
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
    let state = match opened.live {
        Some(live) => AppState::with_lazy_refresh(live, executor, limits),
        None => AppState::new(opened.catalog, executor, limits),
    };
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
    lambda_http::run(litehouse_serving::router(state))
        .await
        .map_err(|e| anyhow::anyhow!("lambda runtime: {e}"))
}
