//! `litehouse serve --models DIR`: every model in a directory behind the Vertex AI, TF Serving
//! and KServe V2 routes, on a local port. `litehouse serve --store URI`: the endpoints of a
//! registry store instead, kept live by a cheap etag check every `--refresh-secs`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use litehouse_serving::image_input::ImageLimits;
use litehouse_serving::{AppState, Executor, Limits};

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory of models: NAME.tflite (+ NAME.json config), NAME.json with a "model" path, or
    /// TF Serving's NAME/<version>/model.tflite layout.
    #[arg(long, env = "LITEHOUSE_MODELS", default_value = "models/catalog")]
    models: PathBuf,
    /// Serve the endpoints of this registry store (directory or s3://bucket/prefix) instead of
    /// a models directory; endpoint changes are picked up without restart.
    #[arg(long, env = "LITEHOUSE_STORE")]
    store: Option<String>,
    /// With --store: seconds between checks for endpoint changes.
    #[arg(long, default_value_t = 2.0)]
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

pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let (catalog, live) = match &args.store {
        Some(uri) => {
            let registry = litehouse_registry::Registry::open(uri)
                .await
                .with_context(|| format!("opening store {uri}"))?;
            let every = std::time::Duration::from_secs_f64(args.refresh_secs.max(0.05));
            let live = litehouse_serving::LiveCatalog::new(registry, every);
            let catalog = live
                .initial()
                .await
                .with_context(|| format!("loading endpoints from {uri}"))?;
            if catalog.endpoints.is_empty() {
                eprintln!(
                    "warning: no endpoint in {uri} serves yet; waiting for one                      (litehouse endpoints create/deploy --store {uri})"
                );
            }
            (catalog, Some((live, every)))
        }
        None => {
            let models = args.models.clone();
            let catalog = tokio::task::spawn_blocking(move || litehouse_serving::load_dir(&models))
                .await
                .context("loading models")??;
            if catalog.models.is_empty() {
                anyhow::bail!(
                    "no model could be loaded from {} (put NAME.tflite files there)",
                    args.models.display()
                );
            }
            (catalog, None)
        }
    };
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
        catalog,
        Executor::new(workers, args.queue)
            .with_inline_budget(std::time::Duration::from_micros(args.inline_budget_us)),
        limits,
    );
    if let Some((live, every)) = live {
        live.spawn_poller(std::sync::Arc::downgrade(&state), every);
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
    litehouse_serving::server::serve(listener, state)
        .await
        .context("serving")
}
