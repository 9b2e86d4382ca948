//! Shared server state handed to every handler.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

/// Counters of shadow traffic since start.
#[derive(Debug, Default)]
pub struct ShadowStats {
    /// Copies run on a shadow.
    pub runs: AtomicU64,
    /// Copies whose predictions differed from the answer returned.
    pub disagreements: AtomicU64,
    /// Copies that failed on the shadow.
    pub errors: AtomicU64,
    /// Copies not run because every worker was busy (shadows never queue).
    pub dropped: AtomicU64,
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
    /// Shadow traffic counters.
    pub shadow: ShadowStats,
    /// The registry source that requests refresh when a check is due (the Lambda, which has
    /// no background time); a polled source is not attached.
    lazy: Option<Arc<LiveCatalog>>,
}

impl AppState {
    /// State over a shared catalog (which a [`LiveCatalog`] may replace at any time).
    pub fn new(catalog: SharedCatalog, executor: Executor, limits: Limits) -> Arc<Self> {
        Self::build(catalog, executor, limits, None)
    }

    /// State whose requests refresh `live` when a check is due.
    pub fn with_lazy_refresh(
        live: Arc<LiveCatalog>,
        executor: Executor,
        limits: Limits,
    ) -> Arc<Self> {
        Self::build(live.catalog().clone(), executor, limits, Some(live))
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
    ) -> Arc<Self> {
        Arc::new(AppState {
            catalog,
            executor,
            limits,
            draining: AtomicBool::new(false),
            shadow: ShadowStats::default(),
            lazy,
        })
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
    /// the endpoint gets a copy afterwards, off the request path, when a worker is free.
    pub async fn run_on_endpoint(
        self: &Arc<Self>,
        endpoint: &ServedEndpoint,
        deployed: &ServedDeployment,
        payload: Payload,
    ) -> Result<Vec<Json>, ServeError> {
        let copy = (!endpoint.shadows.is_empty()).then(|| payload.clone());
        let predictions = self.run_payload(deployed.model.clone(), payload).await?;
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
        if !self.executor.has_idle_worker() {
            self.shadow.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let (state, endpoint, shadow) = (self.clone(), endpoint.to_string(), shadow.clone());
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let result = state.run_payload(shadow.model.clone(), payload).await;
            state.shadow.runs.fetch_add(1, Ordering::Relaxed);
            let ms = started.elapsed().as_secs_f64() * 1e3;
            match result {
                Ok(predictions) => {
                    let agree = predictions == answered;
                    if !agree {
                        state.shadow.disagreements.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::info!(target: "litehouse_serving::shadow", %endpoint,
                        deployed_model = %shadow.id, model = %shadow.model.name,
                        version = shadow.model.version, ms, agree,
                        predictions = %Json::Array(predictions), "shadow prediction");
                }
                Err(e) => {
                    state.shadow.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(target: "litehouse_serving::shadow", %endpoint,
                        deployed_model = %shadow.id, error = %e.message, "shadow prediction failed");
                }
            }
        });
    }

    /// Decodes raw image bytes into an instance and runs it.
    pub async fn run_images(
        &self,
        model: Arc<ServedModel>,
        images: Vec<axum::body::Bytes>,
    ) -> Result<Vec<serde_json::Value>, ServeError> {
        let limits = self.limits.image;
        let cost = cost_of_images(&model, &images);
        Ok(self
            .executor
            .run_costed(cost, move || predict_images(&model, &images, &limits))
            .await?)
    }
}
