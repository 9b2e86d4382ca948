//! `predict`: the litehouse serving Router as an AWS Lambda function (lambda_http), reached
//! through a Function URL or an API Gateway HTTP API.
//!
//! Models load once at init, never inside the handler, from either
//! - `LITEHOUSE_STORE`: a registry store (`s3://bucket/prefix`, or a directory). Every endpoint in
//!   it is served; endpoint changes are picked up at most every `LITEHOUSE_REFRESH_SECS` seconds
//!   (default 30), checked when a request arrives (a Lambda has no background time); or
//! - `LITEHOUSE_MODELS`: a directory packaged with the function (default `models`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use litehouse_serving::{AppState, Catalog, Executor, Limits, LiveCatalog};

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
    let (catalog, live) = match std::env::var("LITEHOUSE_STORE")
        .ok()
        .filter(|s| !s.is_empty())
    {
        Some(uri) => {
            let every = std::env::var("LITEHOUSE_REFRESH_SECS")
                .ok()
                .map(|v| {
                    v.parse::<f64>()
                        .with_context(|| format!("LITEHOUSE_REFRESH_SECS='{v}' is not a number"))
                })
                .transpose()?
                .unwrap_or(30.0);
            let (catalog, live) = from_store(&uri, Duration::from_secs_f64(every.max(0.0))).await?;
            (catalog, Some(live))
        }
        None => {
            let dir = PathBuf::from(
                std::env::var("LITEHOUSE_MODELS").unwrap_or_else(|_| "models".into()),
            );
            let catalog = litehouse_serving::load_dir(&dir)
                .with_context(|| format!("loading models from {}", dir.display()))?;
            if catalog.models.is_empty() {
                anyhow::bail!("no model could be loaded from {}", dir.display());
            }
            (catalog, None)
        }
    };
    for f in &catalog.failures {
        tracing::error!(model = %f.name, version = f.version, error = %f.error, "model not served");
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
    // A Lambda sandbox handles one invocation at a time: the hop to an inference thread buys
    // nothing, so everything but a very heavy request runs inline.
    let executor = Executor::new(1, 4).with_inline_budget(std::time::Duration::from_millis(100));
    let state = AppState::new(catalog, executor, limits);
    if let Some(live) = live {
        state.attach_live(live);
    }
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

/// The endpoints of a registry store, loaded (sha256-checked and warmed) before the first
/// invocation.
async fn from_store(
    uri: &str,
    every: Duration,
) -> anyhow::Result<(Catalog, std::sync::Arc<LiveCatalog>)> {
    let registry = litehouse_registry::Registry::open(uri)
        .await
        .with_context(|| format!("opening store {uri}"))?;
    let live = LiveCatalog::new(registry, every);
    let catalog = live
        .initial()
        .await
        .with_context(|| format!("loading endpoints from {uri}"))?;
    Ok((catalog, live))
}
