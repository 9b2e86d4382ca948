//! What the server holds: loaded model versions, and endpoints that deploy them with a traffic
//! split. Built once, swapped whole when it changes (readers never lock).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use litehouse_models::LoadedModel;

use crate::model_config::ModelConfig;

/// One loaded model version with its serving config.
#[derive(Debug)]
pub struct ServedModel {
    /// Model name (`mnist`).
    pub name: String,
    /// Version number, 1 and up.
    pub version: u64,
    /// `modelDisplayName`.
    pub display_name: String,
    /// Serving config (defaults when none was given).
    pub config: ModelConfig,
    /// The runnable model.
    pub model: LoadedModel,
    /// Where it was loaded from.
    pub source: String,
    /// Measured time of one batch-1 run: requests cheaper than the executor's inline budget
    /// run on the async thread instead of hopping to the blocking pool.
    pub instance_cost: Duration,
    /// Time to fetch, import and warm the model up (warm-up alone unless the loader set it
    /// with [`ServedModel::loaded_since`]).
    pub load_time: Duration,
}

impl ServedModel {
    /// Warms `model` up (one run of zeros, then a few timed runs) and wraps it for serving.
    pub fn warmed(
        name: String,
        version: u64,
        config: ModelConfig,
        model: LoadedModel,
        source: String,
    ) -> Result<Self, litehouse_models::ModelError> {
        let warming = std::time::Instant::now();
        let instance_cost = model.warm_up()?;
        Ok(ServedModel {
            load_time: warming.elapsed(),
            display_name: config.display_name.clone().unwrap_or_else(|| name.clone()),
            name,
            version,
            config,
            model,
            source,
            instance_cost,
        })
    }

    /// Sets the load time as everything since `started` (fetch and import included).
    pub fn loaded_since(mut self, started: std::time::Instant) -> Self {
        self.load_time = started.elapsed();
        self
    }
}

/// A model version deployed on an endpoint.
#[derive(Debug, Clone)]
pub struct ServedDeployment {
    /// Short digit string, unique within the endpoint.
    pub id: String,
    /// `modelDisplayName` in answers.
    pub display_name: String,
    /// The model version it serves.
    pub model: Arc<ServedModel>,
}

/// An endpoint: deployed models and how traffic is split between them.
#[derive(Debug, Clone)]
pub struct ServedEndpoint {
    /// Endpoint id as it appears in routes.
    pub id: String,
    /// Human name.
    pub display_name: String,
    /// Deployed models that may take traffic.
    pub deployed: Vec<ServedDeployment>,
    /// Shadow deployments: each gets a copy of the traffic; answers are logged, never returned.
    pub shadows: Vec<ServedDeployment>,
    /// deployedModelId -> percent; sums to 100 or is empty (no traffic).
    pub traffic_split: BTreeMap<String, u32>,
    /// Opaque version of this endpoint's state.
    pub etag: String,
    /// The endpoint's own request-response logging rate (`0..=1`); `None`: the server's default.
    pub log_sampling_rate: Option<f64>,
}

impl ServedEndpoint {
    /// Picks the deployed model for a request given a uniform draw in `0..100`.
    pub fn pick(&self, draw: u32) -> Option<&ServedDeployment> {
        litehouse_registry::routing::pick_weighted(&self.traffic_split, draw)
            .and_then(|id| self.deployed_model(id))
    }

    /// Picks the deployed model for a routing key: the same key gets the same model while the
    /// split is unchanged (see [`litehouse_registry::routing::pick_sticky`]).
    pub fn pick_sticky(&self, key: &str) -> Option<&ServedDeployment> {
        litehouse_registry::routing::pick_sticky(&self.traffic_split, key)
            .and_then(|id| self.deployed_model(id))
    }

    /// A deployed model (serving or shadow) by id.
    pub fn deployed_model(&self, id: &str) -> Option<&ServedDeployment> {
        self.deployed
            .iter()
            .chain(&self.shadows)
            .find(|d| d.id == id)
    }
}

/// A model that failed to load: kept so status routes can say why.
#[derive(Debug, Clone)]
pub struct LoadFailure {
    /// Model name.
    pub name: String,
    /// Version.
    pub version: u64,
    /// The error.
    pub error: String,
}

/// Every model version and endpoint the server answers for.
#[derive(Debug, Default)]
pub struct Catalog {
    /// name -> version -> model.
    pub models: BTreeMap<String, BTreeMap<u64, Arc<ServedModel>>>,
    /// name -> label -> version (TF Serving `/labels/{label}`).
    pub labels: BTreeMap<String, BTreeMap<String, u64>>,
    /// Endpoints by id.
    pub endpoints: BTreeMap<String, Arc<ServedEndpoint>>,
    /// Models that could not be loaded.
    pub failures: Vec<LoadFailure>,
}

impl Catalog {
    /// The latest version of a model.
    pub fn latest(&self, name: &str) -> Option<&Arc<ServedModel>> {
        self.models.get(name).and_then(|v| v.values().next_back())
    }

    /// A model version by number, label, or latest when neither is given.
    pub fn resolve(
        &self,
        name: &str,
        version: Option<&str>,
        label: Option<&str>,
    ) -> Result<&Arc<ServedModel>, crate::error::PredictError> {
        use crate::error::PredictError;
        let versions = self.models.get(name).ok_or_else(|| {
            PredictError::not_found(format!(
                "model '{name}' not found (served models: {})",
                self.model_names()
            ))
        })?;
        let number = match (version, label) {
            (Some(v), _) => Some(v.parse::<u64>().map_err(|_| {
                PredictError::invalid(format!("version must be a number, got '{v}'"))
            })?),
            (None, Some(l)) => Some(*self.labels.get(name).and_then(|m| m.get(l)).ok_or_else(
                || PredictError::not_found(format!("model '{name}' has no label '{l}'")),
            )?),
            (None, None) => None,
        };
        match number {
            Some(n) => versions.get(&n).ok_or_else(|| {
                PredictError::not_found(format!(
                    "model '{name}' has no version {n} (versions: {})",
                    versions
                        .keys()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }),
            None => versions
                .values()
                .next_back()
                .ok_or_else(|| PredictError::not_found(format!("model '{name}' has no versions"))),
        }
    }

    /// An endpoint by id.
    pub fn endpoint(&self, id: &str) -> Result<&Arc<ServedEndpoint>, crate::error::PredictError> {
        self.endpoints.get(id).ok_or_else(|| {
            crate::error::PredictError::not_found(format!(
                "endpoint '{id}' not found (endpoints: {})",
                self.endpoints
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    fn model_names(&self) -> String {
        let names: Vec<&str> = self.models.keys().map(String::as_str).collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    }

    /// Adds a model version and, when `endpoint` is set, an endpoint named after the model that
    /// sends all traffic to its latest version.
    pub fn insert(&mut self, model: ServedModel) {
        let name = model.name.clone();
        self.models
            .entry(name)
            .or_default()
            .insert(model.version, Arc::new(model));
    }

    /// One endpoint per model, named after it, with the latest version deployed as id "1"
    /// taking 100% of the traffic: the embedded default of `litehouse serve --models DIR`.
    pub fn add_default_endpoints(&mut self) {
        for (name, versions) in &self.models {
            let Some(latest) = versions.values().next_back() else {
                continue;
            };
            let endpoint = ServedEndpoint {
                id: name.clone(),
                display_name: latest.display_name.clone(),
                deployed: vec![ServedDeployment {
                    id: "1".into(),
                    display_name: latest.display_name.clone(),
                    model: latest.clone(),
                }],
                shadows: Vec::new(),
                traffic_split: BTreeMap::from([("1".to_string(), 100)]),
                etag: format!("{}-{}", latest.version, &latest.model.info().sha256[..12]),
                log_sampling_rate: None,
            };
            self.endpoints.insert(name.clone(), Arc::new(endpoint));
        }
    }
}

/// A catalog shared between its readers (requests, batch workers) and whoever replaces it
/// (a [`crate::LiveCatalog`]): readers take a snapshot without locking.
pub type SharedCatalog = Arc<ArcSwap<Catalog>>;

/// Wraps a catalog for sharing.
pub fn shared(catalog: Catalog) -> SharedCatalog {
    Arc::new(ArcSwap::from_pointee(catalog))
}

/// A model file found in a directory, with its config.
#[derive(Debug, Clone)]
struct Found {
    name: String,
    version: u64,
    model: PathBuf,
    config: Option<ModelConfig>,
}

/// Loads every model in `dir`:
/// - `NAME.tflite`, with an optional `NAME.json` config beside it (version 1);
/// - `NAME.json` whose `model` field points at a `.tflite` elsewhere (relative to the config);
/// - TF Serving's layout `NAME/<version>/*.tflite`, with `NAME/config.json` or
///   `NAME/<version>/config.json`.
///
/// A model that fails to load is logged and recorded in `failures`; the others are served.
pub fn load_dir(dir: &Path) -> Result<Catalog, crate::error::PredictError> {
    use crate::error::PredictError;
    let found = scan(dir).map_err(|e| {
        PredictError::new(
            crate::error::Code::Unavailable,
            format!("cannot read models from {}: {e}", dir.display()),
        )
    })?;
    let mut catalog = Catalog::default();
    for f in found {
        let started = std::time::Instant::now();
        let loaded = LoadedModel::load_file(&f.model).and_then(|model| {
            let source = f.model.display().to_string();
            let config = f.config.clone().unwrap_or_default();
            ServedModel::warmed(f.name.clone(), f.version, config, model, source)
                .map(|m| m.loaded_since(started))
        });
        match loaded {
            Ok(served) => {
                tracing::info!(
                    model = %f.name,
                    version = f.version,
                    path = %f.model.display(),
                    ms = started.elapsed().as_millis() as u64,
                    instance_us = served.instance_cost.as_micros() as u64,
                    "loaded and warmed"
                );
                catalog.insert(served);
            }
            Err(e) => {
                tracing::error!(model = %f.name, path = %f.model.display(), error = %e, "cannot load model");
                catalog.failures.push(LoadFailure {
                    name: f.name,
                    version: f.version,
                    error: e.to_string(),
                });
            }
        }
    }
    catalog.add_default_endpoints();
    Ok(catalog)
}

fn scan(dir: &Path) -> Result<Vec<Found>, String> {
    let mut out: BTreeMap<(String, u64), Found> = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| e.to_string())?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let read_config = |p: &Path| ModelConfig::read(p).map_err(|e| e.to_string());
    for path in &paths {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let ext = path
            .extension()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if path.is_file() && ext == "tflite" {
            let cfg_path = path.with_extension("json");
            let config = cfg_path
                .is_file()
                .then(|| read_config(&cfg_path))
                .transpose()?;
            out.insert(
                (stem.clone(), 1),
                Found {
                    name: stem,
                    version: 1,
                    model: path.clone(),
                    config,
                },
            );
        } else if path.is_file()
            && ext == "json"
            && !path.with_extension("tflite").exists()
            && names_a_model(path)
        {
            let config = read_config(path)?;
            let Some(model) = &config.model else {
                continue; // a JSON file that is not a model config
            };
            let model = path.parent().unwrap_or(dir).join(model);
            out.insert(
                (stem.clone(), 1),
                Found {
                    name: stem,
                    version: 1,
                    model,
                    config: Some(config),
                },
            );
        } else if path.is_dir() {
            let shared = path.join("config.json");
            let shared = shared.is_file().then(|| read_config(&shared)).transpose()?;
            let versions = std::fs::read_dir(path).map_err(|e| e.to_string())?;
            for v in versions.filter_map(|e| e.ok().map(|e| e.path())) {
                let Some(number) = v
                    .file_name()
                    .and_then(|s| s.to_str())
                    .and_then(|s| s.parse::<u64>().ok())
                else {
                    continue;
                };
                let Some(model) = first_tflite(&v) else {
                    continue;
                };
                let own = v.join("config.json");
                let config = if own.is_file() {
                    Some(read_config(&own)?)
                } else {
                    shared.clone()
                };
                out.insert(
                    (stem.clone(), number),
                    Found {
                        name: stem.clone(),
                        version: number,
                        model,
                        config,
                    },
                );
            }
        }
    }
    Ok(out.into_values().collect())
}

/// Whether a stray JSON file is a model config (an object with a `model` field) rather than
/// something else kept beside models, such as a training run's `metrics.json`. Unreadable or
/// malformed files count as configs, so their error is reported.
fn names_a_model(path: &Path) -> bool {
    let Ok(text) = std::fs::read(path) else {
        return true;
    };
    match serde_json::from_slice::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(o)) => o.contains_key("model"),
        _ => true,
    }
}

fn first_tflite(dir: &Path) -> Option<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|s| s.to_str()) == Some("tflite"))
        .collect();
    files.sort();
    files.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_beside_models_is_a_config_only_when_it_names_a_model() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = dir.path().join("metrics.json");
        std::fs::write(
            &metrics,
            r#"{"task": "classify", "test": {"accuracy": 0.98}}"#,
        )
        .unwrap();
        let config = dir.path().join("digits.json");
        std::fs::write(&config, r#"{"model": "elsewhere/model.tflite"}"#).unwrap();
        let broken = dir.path().join("broken.json");
        std::fs::write(&broken, "{not json").unwrap();
        assert!(
            !names_a_model(&metrics),
            "a training run's metrics.json is not a config"
        );
        assert!(names_a_model(&config));
        assert!(
            names_a_model(&broken),
            "a malformed file is reported, not skipped"
        );
        std::fs::remove_file(&broken).unwrap();
        let found = scan(dir.path()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "digits");
    }
}
