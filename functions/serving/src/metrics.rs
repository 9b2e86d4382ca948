//! The serving metrics, in the Prometheus text format at `/metrics` (prometheus-client, which
//! writes the OpenMetrics flavour Prometheus negotiates), and as CloudWatch EMF lines in the
//! Lambda ([`Metrics::emf_event`]).
//!
//! Names (the Grafana dashboard in `infra/grafana/` reads these):
//! - `litehouse_requests_total{endpoint, deployed_model, model, version, protocol, code}`
//! - `litehouse_request_duration_seconds{endpoint, deployed_model, model, version, protocol}`
//! - `litehouse_model_load_seconds{model, version}`: load, import and warm-up of a served version
//! - `litehouse_inference_running`, `litehouse_inference_queued`: the executor right now
//! - `litehouse_rejected_total{reason}`: 429 (queue full), 401, 413, 504
//! - `litehouse_shadow_{runs,disagreements,errors,dropped}_total{endpoint, deployed_model}`
//! - `litehouse_prediction_log_{records,dropped,flushes,flush_errors}_total`

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::request_context::Served;

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of a request's count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Endpoint id, empty on model routes.
    pub endpoint: String,
    /// Deployed model id, empty on model routes.
    pub deployed_model: String,
    /// Model name, empty when no model was chosen (an unknown endpoint, a health check).
    pub model: String,
    /// Model version, empty when no model was chosen.
    pub version: String,
    /// `vertex`, `tfserving`, `kserve` or `other`.
    pub protocol: String,
    /// HTTP status code.
    pub code: String,
}

/// Labels of a request's latency (a request's count labels without the status).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    /// Endpoint id.
    pub endpoint: String,
    /// Deployed model id.
    pub deployed_model: String,
    /// Model name.
    pub model: String,
    /// Model version.
    pub version: String,
    /// Protocol.
    pub protocol: String,
}

/// A served model version.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    /// Model name.
    pub model: String,
    /// Model version.
    pub version: String,
}

/// A shadow deployment.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShadowLabels {
    /// Endpoint id.
    pub endpoint: String,
    /// The shadow's deployed model id.
    pub deployed_model: String,
}

/// Why a request was refused before a model answered it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    /// `queue_full`, `unauthenticated`, `too_large` or `timeout`.
    pub reason: String,
}

/// Every serving metric, registered once per [`crate::AppState`].
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Requests by outcome.
    pub requests: Family<RequestLabels, Counter>,
    /// Request latency.
    pub latency: Family<LatencyLabels, Histogram>,
    /// Load time of each served version.
    pub model_load: Family<ModelLabels, Gauge<f64, AtomicU64>>,
    /// Inferences running on the blocking pool.
    pub running: Gauge<i64, AtomicI64>,
    /// Inferences waiting for a worker.
    pub queued: Gauge<i64, AtomicI64>,
    /// Requests refused early, by reason.
    pub rejected: Family<RejectLabels, Counter>,
    /// Copies run on a shadow.
    pub shadow_runs: Family<ShadowLabels, Counter>,
    /// Shadow copies whose answer differed from the one returned.
    pub shadow_disagreements: Family<ShadowLabels, Counter>,
    /// Shadow copies that failed.
    pub shadow_errors: Family<ShadowLabels, Counter>,
    /// Shadow copies not run because every worker was busy.
    pub shadow_dropped: Family<ShadowLabels, Counter>,
    /// Prediction-log records written.
    pub log_records: Counter,
    /// Prediction-log records dropped (buffer full or a failed write).
    pub log_dropped: Counter,
    /// Prediction-log files written.
    pub log_flushes: Counter,
    /// Prediction-log writes that failed.
    pub log_flush_errors: Counter,
}

fn latency_histogram() -> Histogram {
    // 50 us .. ~1.6 s in 16 doubling buckets: MNIST answers in tens of microseconds, a vision
    // model on a Lambda share in hundreds of milliseconds.
    Histogram::new(exponential_buckets(50e-6, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every family.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("litehouse");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Prediction and metadata requests by endpoint, deployed model, version, protocol and status code",
            requests.clone(),
        );
        let latency = Family::<LatencyLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "request_duration_seconds",
            "Time from request to response, body read and inference included",
            latency.clone(),
        );
        let model_load = Family::<ModelLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "model_load_seconds",
            "Time to fetch, import and warm up a served model version",
            model_load.clone(),
        );
        let running = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "inference_running",
            "Inferences running on the worker pool",
            running.clone(),
        );
        let queued = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "inference_queued",
            "Inferences waiting for a worker (a full queue answers 429)",
            queued.clone(),
        );
        let rejected = Family::<RejectLabels, Counter>::default();
        registry.register(
            "rejected",
            "Requests refused before a model answered: queue_full (429), unauthenticated (401), too_large (413), timeout (504)",
            rejected.clone(),
        );
        let shadow = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<ShadowLabels, Counter>::default();
            registry.register(name, help, family.clone());
            family
        };
        let shadow_runs = shadow(
            &mut registry,
            "shadow_runs",
            "Copies of traffic run on a shadow deployment",
        );
        let shadow_disagreements = shadow(
            &mut registry,
            "shadow_disagreements",
            "Shadow copies whose predictions differed from the answer returned",
        );
        let shadow_errors = shadow(&mut registry, "shadow_errors", "Shadow copies that failed");
        let shadow_dropped = shadow(
            &mut registry,
            "shadow_dropped",
            "Shadow copies not run because every worker was busy",
        );
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let log_records = counter(
            &mut registry,
            "prediction_log_records",
            "Sampled request-response records written to the prediction log",
        );
        let log_dropped = counter(
            &mut registry,
            "prediction_log_dropped",
            "Sampled records dropped: the log buffer was full, or its write failed",
        );
        let log_flushes = counter(
            &mut registry,
            "prediction_log_flushes",
            "Prediction-log files written to the store",
        );
        let log_flush_errors = counter(
            &mut registry,
            "prediction_log_flush_errors",
            "Prediction-log writes that failed",
        );
        Metrics {
            registry,
            requests,
            latency,
            model_load,
            running,
            queued,
            rejected,
            shadow_runs,
            shadow_disagreements,
            shadow_errors,
            shadow_dropped,
            log_records,
            log_dropped,
            log_flushes,
            log_flush_errors,
        }
    }

    /// Counts one answered request and its latency.
    pub fn observe(&self, served: &Served, protocol: &str, code: u16, seconds: f64) {
        let version = if served.version == 0 {
            String::new()
        } else {
            served.version.to_string()
        };
        self.requests
            .get_or_create(&RequestLabels {
                endpoint: served.endpoint.clone(),
                deployed_model: served.deployed_model.clone(),
                model: served.model.clone(),
                version: version.clone(),
                protocol: protocol.to_string(),
                code: code.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&LatencyLabels {
                endpoint: served.endpoint.clone(),
                deployed_model: served.deployed_model.clone(),
                model: served.model.clone(),
                version,
                protocol: protocol.to_string(),
            })
            .observe(seconds);
    }

    /// Counts a request refused for `reason`.
    pub fn reject(&self, reason: &str) {
        self.rejected
            .get_or_create(&RejectLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Records a served version's load time.
    pub fn model_loaded(&self, model: &str, version: u64, seconds: f64) {
        self.model_load
            .get_or_create(&ModelLabels {
                model: model.to_string(),
                version: version.to_string(),
            })
            .set(seconds);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// The shadow labels of a deployment.
pub fn shadow_labels(endpoint: &str, deployed_model: &str) -> ShadowLabels {
    ShadowLabels {
        endpoint: endpoint.to_string(),
        deployed_model: deployed_model.to_string(),
    }
}

/// The CloudWatch EMF event of one request (the Lambda prints it after answering).
pub fn emf_event(
    served: &Served,
    protocol: &str,
    code: u16,
    millis: f64,
    request_id: &str,
) -> litehouse_telemetry::emf::Event {
    use litehouse_telemetry::emf::{Event, Unit};
    let error = u8::from(code >= 500);
    let refused = u8::from((400..500).contains(&code));
    Event::new()
        .dimension("endpoint", served.endpoint.clone())
        .dimension("deployed_model", served.deployed_model.clone())
        .metric("Latency", Unit::Milliseconds, millis)
        .metric("Requests", Unit::Count, 1.0)
        .metric("ServerErrors", Unit::Count, f64::from(error))
        .metric("ClientErrors", Unit::Count, f64::from(refused))
        .property("model", served.model.clone())
        .property("version", served.version)
        .property("protocol", protocol.to_string())
        .property("status", code)
        .property("requestId", request_id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_counted_under_its_labels_and_rendered() {
        let metrics = Metrics::new();
        let served = Served {
            endpoint: "mnist".into(),
            deployed_model: "2".into(),
            model: "digits".into(),
            version: 3,
        };
        metrics.observe(&served, "vertex", 200, 0.001);
        metrics.observe(&served, "vertex", 200, 0.002);
        metrics.observe(&served, "vertex", 400, 0.001);
        let text = metrics.render();
        assert!(text.contains(
            "litehouse_requests_total{endpoint=\"mnist\",deployed_model=\"2\",model=\"digits\",version=\"3\",protocol=\"vertex\",code=\"200\"} 2"
        ), "{text}");
        assert!(text.contains("code=\"400\"} 1"), "{text}");
        assert!(text.contains("litehouse_request_duration_seconds_count{endpoint=\"mnist\",deployed_model=\"2\",model=\"digits\",version=\"3\",protocol=\"vertex\"} 3"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
