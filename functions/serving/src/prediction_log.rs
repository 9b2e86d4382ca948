//! Request-response logging (Vertex AI's `predictRequestResponseLoggingConfig`): a sampled
//! share of each endpoint's predictions is appended to the store as JSON lines, one file per
//! flush and deployed model, under
//! `prediction-logs/{endpoint}/{deployed_model}/{YYYY-MM-DD}/{HHMMSS}-{seq}-{rand}.jsonl`.
//!
//! Records wait in a bounded buffer, off the request path; a full buffer drops the record and
//! counts it (`litehouse_prediction_log_dropped_total`) rather than slowing requests. The local
//! server flushes on a timer, when the buffer fills and on shutdown. A Lambda is frozen as soon
//! as its handler returns, so there the serving middleware flushes before each response
//! ([`crate::state::ServeOptions::finish_before_return`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use litehouse_store::{Condition, Store};
use prometheus_client::metrics::counter::Counter;
use serde_json::{json, Value as Json};

use crate::metrics::Metrics;

/// Records kept before new ones are dropped.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// A buffer this full wakes the flusher early.
const FLUSH_AT: usize = 1_000;

/// How the log is set up.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Where files go.
    pub store: Store,
    /// The rate for endpoints that set none (`0..=1`).
    pub default_rate: f64,
    /// Buffer bound, in records.
    pub capacity: usize,
}

/// One sampled prediction.
#[derive(Debug, Clone)]
pub struct Record {
    /// Endpoint id.
    pub endpoint: String,
    /// Deployed model id.
    pub deployed_model: String,
    /// The JSON line.
    pub line: Json,
}

#[derive(Debug, Clone)]
struct Counters {
    records: Counter,
    dropped: Counter,
    flushes: Counter,
    errors: Counter,
}

/// The prediction log of one server or function.
#[derive(Debug)]
pub struct PredictionLog {
    settings: LogSettings,
    buffer: Mutex<Vec<Record>>,
    wake: tokio::sync::Notify,
    flushing: tokio::sync::Mutex<()>,
    seq: AtomicU64,
    counters: Counters,
}

impl PredictionLog {
    /// A log writing to `settings.store`, counted in `metrics`.
    pub fn new(settings: LogSettings, metrics: &Metrics) -> Self {
        PredictionLog {
            settings,
            buffer: Mutex::new(Vec::new()),
            wake: tokio::sync::Notify::new(),
            flushing: tokio::sync::Mutex::new(()),
            seq: AtomicU64::new(0),
            counters: Counters {
                records: metrics.log_records.clone(),
                dropped: metrics.log_dropped.clone(),
                flushes: metrics.log_flushes.clone(),
                errors: metrics.log_flush_errors.clone(),
            },
        }
    }

    /// Whether this request is logged: a draw against the endpoint's rate, else the default.
    pub fn sample(&self, endpoint_rate: Option<f64>) -> bool {
        let rate = endpoint_rate.unwrap_or(self.settings.default_rate);
        rate >= 1.0 || (rate > 0.0 && fastrand::f64() < rate)
    }

    /// Queues a record; a full buffer drops it (counted). True when queued.
    pub fn push(&self, record: Record) -> bool {
        let Ok(mut buffer) = self.buffer.lock() else {
            self.counters.dropped.inc();
            return false;
        };
        if buffer.len() >= self.settings.capacity {
            self.counters.dropped.inc();
            return false;
        }
        buffer.push(record);
        if buffer.len() >= FLUSH_AT {
            self.wake.notify_one();
        }
        true
    }

    /// Records waiting to be written.
    pub fn pending(&self) -> usize {
        self.buffer.lock().map_or(0, |b| b.len())
    }

    /// Writes everything buffered: one file per deployed model. Returns the records written; a
    /// failed write loses its records (counted as dropped and logged), never the others.
    pub async fn flush(&self) -> usize {
        let _one_at_a_time = self.flushing.lock().await;
        let records = match self.buffer.lock() {
            Ok(mut buffer) => std::mem::take(&mut *buffer),
            Err(_) => return 0,
        };
        if records.is_empty() {
            return 0;
        }
        let mut groups: BTreeMap<(String, String), Vec<Json>> = BTreeMap::new();
        for r in records {
            groups
                .entry((r.endpoint, r.deployed_model))
                .or_default()
                .push(r.line);
        }
        let now = chrono::Utc::now();
        let mut written = 0;
        for ((endpoint, deployed), lines) in groups {
            let key = format!(
                "prediction-logs/{endpoint}/{deployed}/{}/{}-{:06}-{:08x}.jsonl",
                now.format("%Y-%m-%d"),
                now.format("%H%M%S"),
                self.seq.fetch_add(1, Ordering::Relaxed),
                fastrand::u32(..),
            );
            let mut bytes = Vec::new();
            for line in &lines {
                bytes.extend_from_slice(line.to_string().as_bytes());
                bytes.push(b'\n');
            }
            let n = lines.len() as u64;
            match self
                .settings
                .store
                .put(&key, bytes, Condition::IfAbsent)
                .await
            {
                Ok(_) => {
                    self.counters.records.inc_by(n);
                    self.counters.flushes.inc();
                    written += lines.len();
                }
                Err(e) => {
                    self.counters.errors.inc();
                    self.counters.dropped.inc_by(n);
                    tracing::warn!(error = %e, records = n, %key, "prediction log write failed");
                }
            }
        }
        written
    }

    /// Flushes every `interval`, and early when the buffer fills, until the log is dropped.
    pub fn spawn_flusher(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let log = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(strong) = log.upgrade() else { return };
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = strong.wake.notified() => {}
                }
                strong.flush().await;
            }
        })
    }
}

/// The record of one answered prediction.
pub fn record(
    request_id: &str,
    endpoint: &str,
    deployed: &litehouse_predictor::ServedDeployment,
    request: Json,
    predictions: &[Json],
) -> Record {
    Record {
        endpoint: endpoint.to_string(),
        deployed_model: deployed.id.clone(),
        line: json!({
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "requestId": request_id,
            "endpoint": endpoint,
            "deployedModelId": deployed.id,
            "model": deployed.model.name,
            "modelVersionId": deployed.model.version.to_string(),
            "request": request,
            "response": {"predictions": predictions},
        }),
    }
}
