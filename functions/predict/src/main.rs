//! `predict`: the litehouse serving Router as an AWS Lambda function (lambda_http), reached
//! through a Function URL or an API Gateway HTTP API.
//!
//! Models load once at init from `LITEHOUSE_MODELS` (a directory packaged with the function,
//! default `models` beside the binary's working directory), never inside the handler.

use std::path::PathBuf;

use anyhow::Context;
use litehouse_serving::{AppState, Executor, Limits};

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
    let dir = PathBuf::from(std::env::var("LITEHOUSE_MODELS").unwrap_or_else(|_| "models".into()));
    let catalog = litehouse_serving::load_dir(&dir)
        .with_context(|| format!("loading models from {}", dir.display()))?;
    if catalog.models.is_empty() {
        anyhow::bail!("no model could be loaded from {}", dir.display());
    }
    let limits = Limits {
        max_body_bytes: std::env::var("LITEHOUSE_MAX_BODY_BYTES")
            .ok()
            .and_then(|v| v.parse().ok())
            // A synchronous Lambda invocation carries at most 6 MB.
            .unwrap_or(Limits::default().max_body_bytes),
        ..Limits::default()
    };
    // One invocation at a time per Lambda instance: one worker, no queue to speak of.
    let state = AppState::new(catalog, Executor::new(1, 4), limits);
    tracing::info!(
        models = state.catalog().models.len(),
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
