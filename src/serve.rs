//! `litehouse serve --models DIR`: every model in a directory behind the Vertex AI, TF Serving
//! and KServe V2 routes, on a local port. `litehouse serve --store URI`: the endpoints of a
//! registry store instead, kept live by a cheap etag check every `--refresh-secs`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use std::time::Duration;

use anyhow::Context;
use litehouse_predictor::{open_catalog, CatalogOptions, Executor, ImageLimits, Refresh};
use litehouse_serving::{AppState, Limits};

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory of models: NAME.tflite (+ NAME.json config), NAME.json with a "model" path, or
    /// TF Serving's NAME/<version>/model.tflite layout.
    #[arg(long, env = "LITEHOUSE_MODELS", default_value = litehouse_predictor::setup::DEFAULT_MODELS_DIR)]
    models: PathBuf,
    /// Serve the endpoints of this registry store (directory or s3://bucket/prefix) instead of
    /// a models directory; endpoint changes are picked up without restart.
    #[arg(long, env = "LITEHOUSE_STORE")]
    store: Option<String>,
    /// With --store: seconds between checks for endpoint changes.
    #[arg(long, env = "LITEHOUSE_REFRESH_SECS", default_value_t = litehouse_predictor::setup::DEFAULT_POLL_SECS,
          value_parser = parse_refresh)]
    refresh_secs: f64,
    /// Address to listen on (0.0.0.0 in a container).
    #[arg(long, env = "LITEHOUSE_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port (Vertex AI custom containers set AIP_HTTP_PORT).
    #[arg(long, env = "AIP_HTTP_PORT", default_value_t = 8080)]
    port: u16,
    /// Largest accepted request body in bytes (Vertex AI's limit by default).
    #[arg(long, default_value_t = 1_572_864)]
    max_body_bytes: usize,
    /// Concurrent inferences (default: the number of CPUs).
    #[arg(long)]
    workers: Option<usize>,
    /// Requests whose estimated cost (the model's measured batch-1 time per instance, plus
    /// image pixels) is at most this many microseconds run on the thread that received them,
    /// skipping the hop to an inference worker; 0 sends every request to the workers.
    #[arg(long, default_value_t = 200)]
    inline_budget_us: u64,
    /// Requests allowed to wait for a worker before answering 429.
    #[arg(long, default_value_t = 256)]
    queue: usize,
    /// Largest accepted image width or height in pixels.
    #[arg(long, default_value_t = 8192)]
    max_image_side: u32,
}

/// A refresh interval: at least 50 ms, so a typo cannot turn the poller into a busy loop.
fn parse_refresh(text: &str) -> Result<f64, String> {
    Ok(litehouse_predictor::setup::parse_secs(text)?
        .as_secs_f64()
        .max(0.05))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let options = CatalogOptions {
        models: args.models.clone(),
        store: args.store.clone(),
        refresh: Some(Duration::from_secs_f64(args.refresh_secs)),
    };
    let opened = open_catalog(&options, Refresh::Poll).await?;
    let catalog = opened.catalog.load_full();
    if let (Some(uri), true) = (&args.store, catalog.endpoints.is_empty()) {
        eprintln!(
            "warning: no endpoint in {uri} serves yet; waiting for one \
             (litehouse endpoints create/deploy --store {uri})"
        );
    }
    for f in &catalog.failures {
        eprintln!(
            "warning: model '{}' version {} not served: {}",
            f.name, f.version, f.error
        );
    }
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let limits = Limits {
        max_body_bytes: args.max_body_bytes,
        image: ImageLimits {
            max_side: args.max_image_side,
            ..ImageLimits::default()
        },
    };
    let names: Vec<String> = catalog.endpoints.keys().cloned().collect();
    let state = AppState::new(
        opened.catalog,
        Executor::new(workers, args.queue)
            .with_inline_budget(Duration::from_micros(args.inline_budget_us)),
        limits,
    );
    // The poller lives as long as `live` is held: until serving ends.
    let live = opened.live;
    if let Some(live) = &live {
        live.spawn_poller();
    }
    let addr = SocketAddr::new(args.host, args.port);
    let listener = litehouse_serving::server::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    eprintln!(
        "litehouse serving {} endpoint(s) on http://{local} (ready in {} ms)",
        names.len(),
        started.elapsed().as_millis()
    );
    for name in &names {
        eprintln!("  POST http://{local}/v1/endpoints/{name}:predict");
    }
    let served = litehouse_serving::server::serve(listener, state)
        .await
        .context("serving");
    drop(live);
    served
}
