//! `litehouse serve --models DIR`: every model in a directory behind the Vertex AI, TF Serving
//! and KServe V2 routes, on a local port. `litehouse serve --store URI`: the endpoints of a
//! registry store instead, kept live by a cheap etag check every `--refresh-secs`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use std::time::Duration;

use anyhow::Context;
use litehouse_predictor::{open_catalog, CatalogOptions, Executor, ImageLimits, Refresh};
use litehouse_serving::auth::Tokens;
use litehouse_serving::prediction_log::{LogSettings, DEFAULT_CAPACITY};
use litehouse_serving::{AppState, Limits, ServeOptions};

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
    /// Require `Authorization: Bearer <token>` on every route but the health probes, with the
    /// tokens in this file (one per line; blank lines and # comments skipped).
    /// LITEHOUSE_AUTH_TOKENS may instead hold the tokens themselves, comma-separated.
    #[arg(long, value_name = "FILE")]
    auth_tokens: Option<PathBuf>,
    /// Honour the x-litehouse-deployed-model-id header, which sends a request to a chosen
    /// deployed model and bypasses the traffic split (never to a shadow).
    #[arg(long, env = "LITEHOUSE_ALLOW_DEPLOYED_MODEL_HEADER")]
    allow_deployed_model_header: bool,
    /// Answer 504 DEADLINE_EXCEEDED to a request not finished in this many seconds (0: no limit).
    #[arg(long, default_value_t = 60.0, value_parser = parse_timeout)]
    request_timeout_secs: f64,
    /// Share of requests (0 to 1) written with their answers to the prediction log, for
    /// endpoints that set no rate of their own (`litehouse endpoints logging`).
    #[arg(long, env = "LITEHOUSE_LOG_PREDICTIONS", default_value_t = 0.0, value_parser = parse_rate)]
    log_predictions: f64,
    /// Where the prediction log goes (directory or s3://bucket/prefix): the --store by default,
    /// else .litehouse.
    #[arg(long, env = "LITEHOUSE_PREDICTION_LOG")]
    prediction_log: Option<String>,
    /// Seconds between prediction-log writes (also written when 1,000 records wait, and on
    /// shutdown).
    #[arg(long, default_value_t = 10.0, value_parser = parse_refresh)]
    prediction_log_flush_secs: f64,
}

/// A sampling rate: a fraction from 0 to 1.
fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .parse()
        .map_err(|_| format!("expected a fraction from 0 to 1, got '{text}'"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("expected a fraction from 0 to 1, got {rate}"))
    }
}

/// A request timeout in seconds, 0 for none.
fn parse_timeout(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Ok(secs),
        _ => Err(format!("expected seconds (0 for no limit), got '{text}'")),
    }
}

/// The tokens from --auth-tokens FILE or LITEHOUSE_AUTH_TOKENS, if either is given.
fn read_tokens(file: Option<&std::path::Path>) -> anyhow::Result<Option<Tokens>> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --auth-tokens {}", path.display()))?;
        return Ok(Some(Tokens::parse_lines(
            &text,
            &path.display().to_string(),
        )?));
    }
    match std::env::var("LITEHOUSE_AUTH_TOKENS") {
        Ok(list) => Ok(Some(Tokens::parse_list(&list, "LITEHOUSE_AUTH_TOKENS")?)),
        Err(_) => Ok(None),
    }
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
    let auth = read_tokens(args.auth_tokens.as_deref())?;
    if auth.is_none() && !args.host.is_loopback() {
        eprintln!(
            "warning: listening on {} with no bearer tokens: anyone who can reach this address \
             can call every model (pass --auth-tokens FILE or set LITEHOUSE_AUTH_TOKENS)",
            args.host
        );
    }
    // Logging is set up when a rate is given or the endpoints may set their own (a store).
    let log_uri = args
        .prediction_log
        .clone()
        .or_else(|| args.store.clone())
        .or_else(|| (args.log_predictions > 0.0).then(|| ".litehouse".to_string()));
    let prediction_log = match log_uri {
        Some(uri) => Some(LogSettings {
            store: litehouse_store::Store::open(&uri)
                .await
                .with_context(|| format!("opening the prediction log {uri}"))?,
            default_rate: args.log_predictions,
            capacity: DEFAULT_CAPACITY,
        }),
        None => None,
    };
    let options = ServeOptions {
        auth,
        allow_deployed_model_header: args.allow_deployed_model_header,
        request_timeout: (args.request_timeout_secs > 0.0)
            .then(|| Duration::from_secs_f64(args.request_timeout_secs)),
        emf: false,
        finish_before_return: false,
        prediction_log,
    };
    let state = AppState::with_options(
        opened.catalog,
        None,
        Executor::new(workers, args.queue)
            .with_inline_budget(Duration::from_micros(args.inline_budget_us)),
        limits,
        options,
    );
    if let Some(log) = &state.prediction_log {
        log.spawn_flusher(Duration::from_secs_f64(args.prediction_log_flush_secs));
    }
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
    let served = litehouse_serving::server::serve(listener, state.clone())
        .await
        .context("serving");
    drop(live);
    if let Some(log) = &state.prediction_log {
        // A flush the timer started finishes first (flushes take turns); nothing is cut off.
        let pending = log.pending();
        let written = log.flush().await;
        if pending > 0 {
            eprintln!("prediction log: wrote the last {written} of {pending} waiting record(s)");
        }
    }
    served
}
