//! Shared server state handed to every handler.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::catalog::{Catalog, ServedModel};
use crate::error::ServeError;
use crate::predict::{Executor, Limits};

/// Everything a handler needs. Built once in `main`, shared as `Arc<AppState>`.
#[derive(Debug)]
pub struct AppState {
    catalog: ArcSwap<Catalog>,
    /// Inference admission and worker limits.
    pub executor: Executor,
    /// Body and image limits.
    pub limits: Limits,
    ready: AtomicBool,
}

impl AppState {
    /// State over a catalog; ready when the catalog holds at least one model.
    pub fn new(catalog: Catalog, executor: Executor, limits: Limits) -> Arc<Self> {
        let ready = !catalog.models.is_empty();
        Arc::new(AppState {
            catalog: ArcSwap::from_pointee(catalog),
            executor,
            limits,
            ready: AtomicBool::new(ready),
        })
    }

    /// The current catalog (a cheap snapshot; never blocks writers).
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load_full()
    }

    /// Replaces the catalog atomically; in-flight requests keep the snapshot they took.
    pub fn replace_catalog(&self, catalog: Catalog) {
        self.ready
            .store(!catalog.models.is_empty(), Ordering::Release);
        self.catalog.store(Arc::new(catalog));
    }

    /// True once models are loaded (and until shutdown begins).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Marks the server as draining: readiness fails so load balancers stop sending.
    pub fn set_draining(&self) {
        self.ready.store(false, Ordering::Release);
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
        options: crate::predict::PredictOptions,
    ) -> Result<Vec<serde_json::Value>, ServeError> {
        let limits = self.limits;
        self.executor
            .run(move || crate::predict::predict_with(&model, instances, &limits, options))
            .await
    }

    /// Decodes raw image bytes into an instance and runs it.
    pub async fn run_images(
        &self,
        model: Arc<ServedModel>,
        images: Vec<axum::body::Bytes>,
    ) -> Result<Vec<serde_json::Value>, ServeError> {
        let limits = self.limits;
        self.executor
            .run(move || {
                let instances = images
                    .iter()
                    .enumerate()
                    .map(|(i, bytes)| {
                        crate::predict::image_instance(&model, bytes, &limits)
                            .map_err(|e| e.context(format!("image {i}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                crate::predict::predict(&model, instances, &limits)
            })
            .await
    }
}
