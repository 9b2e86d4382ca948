//! Shared server state handed to every handler.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use litehouse_predictor::executor::{cost_of_images, cost_of_instances};
use litehouse_predictor::image_input::ImageLimits;
use litehouse_predictor::predict::{predict_images, predict_with, PredictOptions};
use litehouse_predictor::{
    Catalog, Executor, LiveCatalog, ServedDeployment, ServedEndpoint, ServedModel, SharedCatalog,
};
use serde_json::Value as Json;

use crate::error::ServeError;
use crate::metrics::Metrics;
use crate::prediction_log::PredictionLog;

/// Limits applied to every request's content.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// What an image may declare.
    pub image: ImageLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // Vertex AI's public online-prediction limit.
            max_body_bytes: 1_572_864,
            image: ImageLimits::default(),
        }
    }
}

/// What a request asks a model to run.
#[derive(Debug, Clone)]
pub enum Payload {
    /// JSON instances.
    Instances(Vec<Json>),
    /// Encoded images (raw bodies or uploads), one instance each.
    Images(Vec<Bytes>),
}

/// How a server treats requests beyond limits: who may call, what they may choose, how long a
/// request may take, and what is observed.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Bearer tokens the prediction and metadata routes require (`None`: open).
    pub auth: Option<crate::auth::Tokens>,
    /// Honour the `x-litehouse-deployed-model-id` header (off by default: it bypasses the
    /// traffic split, so only trusted callers should have it).
    pub allow_deployed_model_header: bool,
    /// Longest a request may take before it is answered 504 DEADLINE_EXCEEDED.
    pub request_timeout: Option<std::time::Duration>,
    /// Print a CloudWatch EMF line per request on stdout (the Lambda).
    pub emf: bool,
    /// Finish shadow copies and prediction-log writes before a response is returned (the
    /// Lambda, whose sandbox freezes as soon as the handler returns).
    pub finish_before_return: bool,
    /// Request-response logging.
    pub prediction_log: Option<crate::prediction_log::LogSettings>,
}

/// Everything a handler needs. Built once in `main`, shared as `Arc<AppState>`.
#[derive(Debug)]
pub struct AppState {
    catalog: SharedCatalog,
    /// Inference admission and worker limits.
    pub executor: Executor,
    /// Body and image limits.
    pub limits: Limits,
    draining: AtomicBool,
    /// Access, timeouts and observation.
    pub options: ServeOptions,
    /// Every serving metric.
    pub metrics: Metrics,
    /// Sampled request-response records, when logging is on.
    pub prediction_log: Option<Arc<PredictionLog>>,
    /// The registry source that requests refresh when a check is due (the Lambda, which has
    /// no background time); a polled source is not attached.
    lazy: Option<Arc<LiveCatalog>>,
}

impl AppState {
    /// State over a shared catalog (which a [`LiveCatalog`] may replace at any time).
    pub fn new(catalog: SharedCatalog, executor: Executor, limits: Limits) -> Arc<Self> {
        Self::build(catalog, executor, limits, None, ServeOptions::default())
    }

    /// State whose requests refresh `live` when a check is due.
    pub fn with_lazy_refresh(
        live: Arc<LiveCatalog>,
        executor: Executor,
        limits: Limits,
    ) -> Arc<Self> {
        Self::build(
            live.catalog().clone(),
            executor,
            limits,
            Some(live),
            ServeOptions::default(),
        )
    }

    /// State with every option: `lazy` is a registry source refreshed by requests (the
    /// Lambda), `None` for a fixed or polled catalog.
    pub fn with_options(
        catalog: SharedCatalog,
        lazy: Option<Arc<LiveCatalog>>,
        executor: Executor,
        limits: Limits,
        options: ServeOptions,
    ) -> Arc<Self> {
        Self::build(catalog, executor, limits, lazy, options)
    }

    /// State over a fixed catalog.
    pub fn fixed(catalog: Catalog, executor: Executor, limits: Limits) -> Arc<Self> {
        Self::new(
            litehouse_predictor::catalog::shared(catalog),
            executor,
            limits,
        )
    }

    fn build(
        catalog: SharedCatalog,
        executor: Executor,
        limits: Limits,
        lazy: Option<Arc<LiveCatalog>>,
        options: ServeOptions,
    ) -> Arc<Self> {
        let metrics = Metrics::new();
        let prediction_log = options
            .prediction_log
            .clone()
            .map(|settings| Arc::new(PredictionLog::new(settings, &metrics)));
        Arc::new(AppState {
            catalog,
            executor,
            limits,
            draining: AtomicBool::new(false),
            options,
            metrics,
            prediction_log,
            lazy,
        })
    }

    /// The metrics text, with the gauges read now (executor load, model load times).
    pub fn render_metrics(&self) -> String {
        let load = self.executor.load();
        self.metrics.running.set(load.running as i64);
        self.metrics.queued.set(load.queued as i64);
        for versions in self.catalog().models.values() {
            for model in versions.values() {
                self.metrics.model_loaded(
                    &model.name,
                    model.version,
                    model.load_time.as_secs_f64(),
                );
            }
        }
        self.metrics.render()
    }

    /// Refreshes the catalog from the registry when the attached lazy source says a check is
    /// due; a no-op otherwise.
    pub async fn refresh_if_due(&self) {
        if let Some(live) = &self.lazy {
            live.refresh_if_due().await;
        }
    }

    /// The current catalog (a cheap snapshot; never blocks writers).
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load_full()
    }

    /// Replaces the catalog atomically; in-flight requests keep the snapshot they took.
    pub fn replace_catalog(&self, catalog: Catalog) {
        self.catalog.store(Arc::new(catalog));
    }

    /// True while models are loaded and shutdown has not begun.
    pub fn is_ready(&self) -> bool {
        !self.draining.load(Ordering::Acquire) && !self.catalog.load().models.is_empty()
    }

    /// Marks the server as draining: readiness fails so load balancers stop sending.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Runs JSON instances on a model version under the executor's limits.
    pub async fn run_instances(
        &self,
        model: Arc<ServedModel>,
        instances: Vec<serde_json::Value>,
    ) -> Result<Vec<serde_json::Value>, ServeError> {
        self.run_instances_with(model, instances, Default::default())
            .await
    }

    /// [`Self::run_instances`] with protocol-specific options.
    pub async fn run_instances_with(
        &self,
        model: Arc<ServedModel>,
        instances: Vec<serde_json::Value>,
        options: PredictOptions,
    ) -> Result<Vec<serde_json::Value>, ServeError> {
        crate::request_context::note_model(&model);
        let limits = self.limits.image;
        let cost = cost_of_instances(&model, &instances);
        Ok(self
            .executor
            .run_costed(cost, move || {
                predict_with(&model, instances, &limits, options)
            })
            .await?)
    }

    /// Runs a payload on a model version.
    pub async fn run_payload(
        &self,
        model: Arc<ServedModel>,
        payload: Payload,
    ) -> Result<Vec<Json>, ServeError> {
        match payload {
            Payload::Instances(instances) => self.run_instances(model, instances).await,
            Payload::Images(images) => self.run_images(model, images).await,
        }
    }

    /// Runs a payload on the chosen deployed model and returns its predictions; each shadow of
    /// the endpoint gets a copy afterwards, off the request path, when a worker is free. A
    /// sampled request goes to the prediction log with its answer.
    pub async fn run_on_endpoint(
        self: &Arc<Self>,
        endpoint: &ServedEndpoint,
        deployed: &ServedDeployment,
        payload: Payload,
    ) -> Result<Vec<Json>, ServeError> {
        crate::request_context::note_deployment(&endpoint.id, deployed);
        let logged = self
            .prediction_log
            .as_ref()
            .filter(|log| log.sample(endpoint.log_sampling_rate))
            .map(|log| (log.clone(), payload_json(&payload)));
        let copy = (!endpoint.shadows.is_empty()).then(|| payload.clone());
        let predictions = self.run_payload(deployed.model.clone(), payload).await?;
        if let Some((log, request)) = logged {
            let id = crate::request_context::current()
                .map(|c| c.id.clone())
                .unwrap_or_default();
            log.push(crate::prediction_log::record(
                &id,
                &endpoint.id,
                deployed,
                request,
                &predictions,
            ));
        }
        if let Some(copy) = copy {
            for shadow in &endpoint.shadows {
                self.spawn_shadow(&endpoint.id, shadow, copy.clone(), predictions.clone());
            }
        }
        Ok(predictions)
    }

    fn spawn_shadow(
        self: &Arc<Self>,
        endpoint: &str,
        shadow: &ServedDeployment,
        payload: Payload,
        answered: Vec<Json>,
    ) {
        let labels = crate::metrics::shadow_labels(endpoint, &shadow.id);
        if !self.executor.has_idle_worker() {
            self.metrics.shadow_dropped.get_or_create(&labels).inc();
            return;
        }
        let (state, endpoint, shadow) = (self.clone(), endpoint.to_string(), shadow.clone());
        let task = tokio::spawn(async move {
            let started = std::time::Instant::now();
            let result = state.run_payload(shadow.model.clone(), payload).await;
            state.metrics.shadow_runs.get_or_create(&labels).inc();
            let ms = started.elapsed().as_secs_f64() * 1e3;
            match result {
                Ok(predictions) => {
                    let agree = predictions == answered;
                    if !agree {
                        state
                            .metrics
                            .shadow_disagreements
                            .get_or_create(&labels)
                            .inc();
                    }
                    tracing::info!(target: "litehouse_serving::shadow", %endpoint,
                        deployed_model = %shadow.id, model = %shadow.model.name,
                        version = shadow.model.version, ms, agree,
                        predictions = %Json::Array(predictions), "shadow prediction");
                }
                Err(e) => {
                    state.metrics.shadow_errors.get_or_create(&labels).inc();
                    tracing::warn!(target: "litehouse_serving::shadow", %endpoint,
                        deployed_model = %shadow.id, error = %e.message, "shadow prediction failed");
                }
            }
        });
        if self.options.finish_before_return {
            if let Some(context) = crate::request_context::current() {
                context.hold(task);
            }
        }
    }

    /// Decodes raw image bytes into an instance and runs it.
    pub async fn run_images(
        &self,
        model: Arc<ServedModel>,
        images: Vec<axum::body::Bytes>,
    ) -> Result<Vec<serde_json::Value>, ServeError> {
        crate::request_context::note_model(&model);
        let limits = self.limits.image;
        let cost = cost_of_images(&model, &images);
        Ok(self
            .executor
            .run_costed(cost, move || predict_images(&model, &images, &limits))
            .await?)
    }
}

/// A payload as the `:predict` body that carries it (images as `{"b64": ...}` instances).
fn payload_json(payload: &Payload) -> Json {
    use base64::Engine as _;
    match payload {
        Payload::Instances(instances) => serde_json::json!({ "instances": instances }),
        Payload::Images(images) => serde_json::json!({
            "instances": images
                .iter()
                .map(|b| serde_json::json!({
                    "b64": base64::engine::general_purpose::STANDARD.encode(b)
                }))
                .collect::<Vec<_>>()
        }),
    }
}
