//! A catalog built from the registry's endpoints and kept live: a cheap etag check (one HEAD for
//! the endpoint index, one per endpoint) notices changes without listing the store; a changed
//! endpoint's new models are loaded, sha256-checked and warmed before the swap, so they take
//! traffic only once ready. An endpoint whose new state cannot load keeps serving its old state.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use litehouse_models::LoadedModel;
use litehouse_registry::Registry;

use crate::catalog::{
    Catalog, LoadFailure, ServedDeployment, ServedEndpoint, ServedModel, SharedCatalog,
};
use crate::error::PredictError;
use crate::model_config::ModelConfig;

/// How long a failed endpoint state waits before it is retried without an etag change
/// (transient store errors heal; a corrupt artifact keeps failing quietly).
const RETRY_FAILED: Duration = Duration::from_secs(60);

/// Longest a request waits for a due registry check (Lambda) before it is served from the
/// current catalog; the check itself goes on.
const LAZY_CHECK_BUDGET: Duration = Duration::from_secs(5);

/// The registry-backed catalog source.
#[derive(Debug)]
pub struct LiveCatalog {
    registry: Registry,
    /// Where each new catalog is stored; readers load it without locking.
    target: SharedCatalog,
    /// Loaded models by (name, version, sha256): reused across refreshes.
    cache: Mutex<HashMap<(String, u64, String), Arc<ServedModel>>>,
    /// What the last refresh saw; the async mutex also serializes refreshes.
    seen: tokio::sync::Mutex<Seen>,
    /// Lazy refresh (Lambda): check at most this often.
    every: Duration,
    last_check: Mutex<Option<Instant>>,
}

#[derive(Debug, Default)]
struct Seen {
    index_etag: Option<String>,
    endpoints: BTreeMap<String, SeenEndpoint>,
}

#[derive(Debug, Clone)]
struct SeenEndpoint {
    etag: String,
    /// Set while the latest state failed to load.
    failed: Option<(Instant, Vec<LoadFailure>)>,
}

impl LiveCatalog {
    /// A source over `registry` that stores every catalog it builds into `target`;
    /// [`Self::refresh_if_due`] checks at most every `every`.
    pub fn new(registry: Registry, every: Duration, target: SharedCatalog) -> Arc<Self> {
        Arc::new(LiveCatalog {
            registry,
            target,
            cache: Mutex::new(HashMap::new()),
            seen: tokio::sync::Mutex::new(Seen::default()),
            every,
            last_check: Mutex::new(None),
        })
    }

    /// The registry it reads.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The catalog it writes.
    pub fn catalog(&self) -> &SharedCatalog {
        &self.target
    }

    /// Builds the first catalog (every endpoint in the registry with its models loaded) and
    /// stores it.
    pub async fn load(&self) -> Result<(), PredictError> {
        let empty = Catalog::default();
        let first = self.build(&empty, true).await?.unwrap_or_default();
        self.target.store(Arc::new(first));
        Ok(())
    }

    /// Checks the registry and stores a new catalog when an endpoint changed. Returns whether
    /// it did.
    pub async fn refresh(&self) -> Result<bool, PredictError> {
        let current = self.target.load_full();
        match self.build(&current, false).await? {
            Some(next) => {
                self.target.store(Arc::new(next));
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// [`Self::refresh`] when the last check is older than the interval. The request waits at
    /// most [`LAZY_CHECK_BUDGET`]; a longer check (a big model to fetch) goes on in the
    /// background and swaps the catalog when done. Errors are logged; the current catalog keeps
    /// serving.
    pub async fn refresh_if_due(self: &Arc<Self>) {
        {
            let Ok(mut last) = self.last_check.lock() else {
                return;
            };
            if last.is_some_and(|t| t.elapsed() < self.every) {
                return;
            }
            *last = Some(Instant::now());
        }
        let this = self.clone();
        let check = tokio::spawn(async move {
            if let Err(e) = this.refresh().await {
                tracing::warn!(error = %e.message, "registry check failed; serving the current endpoints");
            }
        });
        if tokio::time::timeout(LAZY_CHECK_BUDGET, check)
            .await
            .is_err()
        {
            tracing::info!(
                budget_ms = LAZY_CHECK_BUDGET.as_millis() as u64,
                "registry check still running; serving the current endpoints meanwhile"
            );
        }
    }

    /// Polls the registry every `every` for as long as someone else holds this source (the
    /// poller keeps only a weak reference).
    pub fn spawn_poller(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let every = self.every;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(this) = weak.upgrade() else { return };
                if let Err(e) = this.refresh().await {
                    tracing::warn!(error = %e.message, "registry check failed; serving the current endpoints");
                }
            }
        });
    }

    /// The next catalog, or `None` when nothing changed since the last look.
    async fn build(&self, current: &Catalog, first: bool) -> Result<Option<Catalog>, PredictError> {
        let mut seen = self.seen.lock().await;
        let index_etag = self.registry.endpoint_index_etag().await?;
        let mut changed = first || index_etag != seen.index_etag;
        let ids: Vec<String> = if changed {
            self.registry.endpoint_ids().await?.0
        } else {
            seen.endpoints.keys().cloned().collect()
        };
        let mut endpoints = BTreeMap::new();
        let mut next_seen = BTreeMap::new();
        for id in ids {
            let Some(etag) = self.registry.endpoint_etag(&id).await? else {
                changed = true; // deleted
                continue;
            };
            let previous = seen.endpoints.get(&id);
            let retry_due = previous
                .and_then(|p| p.failed.as_ref())
                .is_some_and(|(at, _)| at.elapsed() >= RETRY_FAILED);
            if let Some(p) = previous.filter(|p| p.etag == etag && !retry_due) {
                if let Some(e) = current.endpoints.get(&id) {
                    endpoints.insert(id.clone(), e.clone());
                }
                next_seen.insert(id, p.clone());
                continue;
            }
            changed = true;
            let doc = match self.registry.endpoint(&id).await {
                Ok(doc) => doc,
                Err(litehouse_registry::RegistryError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            match self.load_endpoint(&doc).await {
                Ok(endpoint) => {
                    tracing::info!(endpoint = %id, etag = %doc.etag,
                        split = ?endpoint.traffic_split, "endpoint (re)loaded");
                    endpoints.insert(id.clone(), Arc::new(endpoint));
                    next_seen.insert(
                        id,
                        SeenEndpoint {
                            etag: doc.etag,
                            failed: None,
                        },
                    );
                }
                Err(failures) => {
                    for f in &failures {
                        tracing::error!(endpoint = %id, model = %f.name, version = f.version,
                            error = %f.error, "new endpoint state not served; keeping the previous one");
                    }
                    if let Some(e) = current.endpoints.get(&id) {
                        endpoints.insert(id.clone(), e.clone());
                    }
                    next_seen.insert(
                        id,
                        SeenEndpoint {
                            etag: doc.etag,
                            failed: Some((Instant::now(), failures)),
                        },
                    );
                }
            }
        }
        if !changed {
            return Ok(None);
        }
        let mut catalog = Catalog::default();
        for endpoint in endpoints.values() {
            for d in endpoint.deployed.iter().chain(&endpoint.shadows) {
                catalog
                    .models
                    .entry(d.model.name.clone())
                    .or_default()
                    .insert(d.model.version, d.model.clone());
            }
        }
        for name in catalog.models.keys() {
            let loaded = &catalog.models[name];
            let aliases = self.registry.aliases(name).await?.aliases;
            let labels: BTreeMap<String, u64> = aliases
                .into_iter()
                .filter(|(_, v)| loaded.contains_key(v))
                .collect();
            if !labels.is_empty() {
                catalog.labels.insert(name.clone(), labels);
            }
        }
        catalog.endpoints = endpoints;
        catalog.failures = next_seen
            .values()
            .filter_map(|s| s.failed.as_ref())
            .flat_map(|(_, f)| f.iter().cloned())
            .collect();
        // Drop models no endpoint uses any more (in-flight requests hold their own Arc).
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|(name, version, _), _| {
                catalog
                    .models
                    .get(name)
                    .is_some_and(|v| v.contains_key(version))
            });
        }
        seen.index_etag = index_etag;
        seen.endpoints = next_seen;
        Ok(Some(catalog))
    }

    /// Loads every model an endpoint document deploys; all of them, or the failures.
    async fn load_endpoint(
        &self,
        doc: &litehouse_registry::Endpoint,
    ) -> Result<ServedEndpoint, Vec<LoadFailure>> {
        let mut deployed = Vec::new();
        let mut shadows = Vec::new();
        let mut failures = Vec::new();
        for d in &doc.deployed_models {
            match self.model(d).await {
                Ok(model) => {
                    let entry = ServedDeployment {
                        id: d.id.clone(),
                        display_name: d.display_name.clone(),
                        model,
                    };
                    if d.shadow {
                        shadows.push(entry);
                    } else {
                        deployed.push(entry);
                    }
                }
                Err(e) => failures.push(LoadFailure {
                    name: d.model.clone(),
                    version: d.version,
                    error: format!("endpoint '{}', deployed model {}: {e}", doc.id, d.id),
                }),
            }
        }
        if !failures.is_empty() {
            return Err(failures);
        }
        Ok(ServedEndpoint {
            id: doc.id.clone(),
            display_name: doc.display_name.clone(),
            deployed,
            shadows,
            traffic_split: doc.traffic_split.clone(),
            etag: doc.etag.clone(),
            log_sampling_rate: doc.prediction_logging.map(|p| p.sampling_rate),
        })
    }

    /// A deployed model's version: from the cache, or fetched (sha256-checked), loaded and
    /// warmed.
    async fn model(
        &self,
        d: &litehouse_registry::DeployedModel,
    ) -> Result<Arc<ServedModel>, PredictError> {
        let key = (d.model.clone(), d.version, d.sha256.clone());
        if let Some(m) = self.cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(m);
        }
        let started = Instant::now();
        let (manifest, bytes) = self
            .registry
            .artifact(&d.model, d.version, Some(&d.sha256))
            .await?;
        let config = match &manifest.serving {
            Some(v) => serde_json::from_value::<ModelConfig>(v.clone())
                .map_err(|e| PredictError::invalid(format!("serving config: {e}")))?,
            None => ModelConfig::default(),
        };
        config
            .validate()
            .map_err(|e| PredictError::invalid(format!("serving config: {e}")))?;
        let source = format!(
            "{}/models/{}/versions/{}",
            self.registry.store().uri(),
            d.model,
            d.version
        );
        let (name, version) = (d.model.clone(), d.version);
        let served = tokio::task::spawn_blocking(move || {
            let model = LoadedModel::load(&bytes)?;
            ServedModel::warmed(name, version, config, model, source)
                .map(|m| m.loaded_since(started))
        })
        .await
        .map_err(|e| PredictError::new(crate::error::Code::Internal, e.to_string()))?
        .map_err(PredictError::from)?;
        let served = Arc::new(served);
        tracing::info!(model = %d.model, version = d.version,
            ms = started.elapsed().as_millis() as u64, "loaded and warmed");
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, served.clone());
        }
        Ok(served)
    }
}
