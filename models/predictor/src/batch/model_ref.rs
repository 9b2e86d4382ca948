//! Which model a batch job runs: a `.tflite` file, a registry version (`name@3`), alias
//! (`name@champion`) or endpoint (`endpoint:ID`, its deployed model with the most traffic).

use std::path::Path;

use litehouse_models::LoadedModel;
use litehouse_registry::Registry;
use serde::{Deserialize, Serialize};

use super::BatchError;
use crate::catalog::ServedModel;
use crate::model_config::ModelConfig;

/// The model a job ran, as its record names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelUsed {
    /// Model name (the file stem for a file).
    pub name: String,
    /// Registry version (1 for a file).
    pub version: u64,
    /// `modelDisplayName`.
    pub display_name: String,
    /// sha256 of the artifact.
    pub sha256: String,
    /// Where it was loaded from.
    pub source: String,
}

/// Loads the model `reference` names, with its serving config, warmed up.
pub async fn load(
    reference: &str,
    store: Option<&str>,
) -> Result<(ServedModel, ModelUsed), BatchError> {
    let reference = reference.trim();
    let served = if let Some(id) = reference.strip_prefix("endpoint:") {
        let registry = registry(store, reference).await?;
        let doc = registry.endpoint(id).await.map_err(model_err)?;
        let serving = doc
            .deployed_models
            .iter()
            .filter(|d| !d.shadow)
            .max_by_key(|d| {
                let pct = doc.traffic_split.get(&d.id).copied().unwrap_or(0);
                // Most traffic first; among equals the oldest deployment (lowest id).
                (
                    pct,
                    std::cmp::Reverse(d.id.parse::<u64>().unwrap_or(u64::MAX)),
                )
            })
            .ok_or_else(|| BatchError::Model(format!("endpoint '{id}' deploys no model")))?;
        from_registry(
            &registry,
            &serving.model,
            serving.version,
            Some(&serving.sha256),
        )
        .await?
    } else if let Some((name, version)) = reference.split_once('@') {
        let registry = registry(store, reference).await?;
        let number = registry.resolve(name, version).await.map_err(model_err)?;
        from_registry(&registry, name, number, None).await?
    } else {
        let path = Path::new(reference).to_path_buf();
        if !path.is_file() {
            return Err(BatchError::Model(format!(
                "model '{reference}' is not a file; give a .tflite path, name@version, name@alias or endpoint:ID (with --store)"
            )));
        }
        tokio::task::spawn_blocking(move || from_file(&path))
            .await
            .map_err(|e| BatchError::Model(e.to_string()))??
    };
    let used = ModelUsed {
        name: served.name.clone(),
        version: served.version,
        display_name: served.display_name.clone(),
        sha256: served.model.info().sha256.clone(),
        source: served.source.clone(),
    };
    Ok((served, used))
}

async fn registry(store: Option<&str>, reference: &str) -> Result<Registry, BatchError> {
    let uri = store.ok_or_else(|| {
        BatchError::Model(format!(
            "model '{reference}' is in a registry: give its store (--store DIR or s3://bucket/prefix)"
        ))
    })?;
    Registry::open(uri)
        .await
        .map_err(|e| BatchError::Model(format!("opening store {uri}: {e}")))
}

fn model_err(e: litehouse_registry::RegistryError) -> BatchError {
    BatchError::Model(e.to_string())
}

async fn from_registry(
    registry: &Registry,
    name: &str,
    version: u64,
    sha256: Option<&str>,
) -> Result<ServedModel, BatchError> {
    let (manifest, bytes) = registry
        .artifact(name, version, sha256)
        .await
        .map_err(model_err)?;
    let config = match &manifest.serving {
        Some(v) => serde_json::from_value::<ModelConfig>(v.clone()).map_err(|e| {
            BatchError::Model(format!(
                "model '{name}' version {version}: serving config: {e}"
            ))
        })?,
        None => ModelConfig::default(),
    };
    config.validate().map_err(|e| {
        BatchError::Model(format!(
            "model '{name}' version {version}: serving config: {e}"
        ))
    })?;
    let source = format!(
        "{}/models/{name}/versions/{version}",
        registry.store().uri()
    );
    let name = name.to_string();
    tokio::task::spawn_blocking(move || {
        let model =
            LoadedModel::load(&bytes).map_err(|e| BatchError::Model(format!("{source}: {e}")))?;
        ServedModel::warmed(name, version, config, model, source.clone())
            .map_err(|e| BatchError::Model(format!("{source}: {e}")))
    })
    .await
    .map_err(|e| BatchError::Model(e.to_string()))?
}

/// A model file and the `NAME.json` config beside it, if any; or a `NAME.json` config whose
/// `model` field names the file (as in a `serve --models` directory).
fn from_file(path: &Path) -> Result<ServedModel, BatchError> {
    let (model_path, config) = if path.extension().is_some_and(|e| e == "json") {
        let config = ModelConfig::read(path).map_err(|e| BatchError::Model(e.to_string()))?;
        let relative = config
            .model
            .clone()
            .unwrap_or_else(|| path.with_extension("tflite"));
        let model_path = path.parent().unwrap_or(Path::new(".")).join(relative);
        (model_path, config)
    } else {
        let config_path = path.with_extension("json");
        let config = if config_path.is_file() {
            ModelConfig::read(&config_path).map_err(|e| BatchError::Model(e.to_string()))?
        } else {
            ModelConfig::default()
        };
        (path.to_path_buf(), config)
    };
    let shown = model_path.display().to_string();
    let model = LoadedModel::load_file(&model_path)
        .map_err(|e| BatchError::Model(format!("{shown}: {e}")))?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model")
        .to_string();
    ServedModel::warmed(name, 1, config, model, shown.clone())
        .map_err(|e| BatchError::Model(format!("{shown}: {e}")))
}
