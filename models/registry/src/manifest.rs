//! What the registry records about each model version.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use litehouse_models::Signature;
use serde::{Deserialize, Serialize};

/// Where a model version came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lineage {
    /// The pipeline run (or other job) that produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_run: Option<String>,
    /// Hash of the training data snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_hash: Option<String>,
    /// Training parameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, serde_json::Value>,
    /// The file or URI it was uploaded from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_uri: Option<String>,
}

/// `manifest.json` of one model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Model name.
    pub name: String,
    /// Version, 1 and up, never reused.
    pub version: u64,
    /// Hex sha256 of `model.tflite`; checked on every load.
    pub sha256: String,
    /// Artifact size in bytes.
    pub size_bytes: u64,
    /// Inputs and outputs, read from the model when it was registered.
    pub signature: Signature,
    /// Operators the model uses, with counts.
    #[serde(default)]
    pub operators: BTreeMap<String, usize>,
    /// Evaluation metrics (`accuracy`, `rmse`, ...).
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// Free-form key/value labels (team, dataset, ...), as Vertex AI models have.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Where it came from.
    #[serde(default)]
    pub lineage: Lineage,
    /// When it was registered.
    pub created: DateTime<Utc>,
    /// Human description.
    #[serde(default)]
    pub description: String,
    /// Serving config (image preprocessing, class labels); interpreted by the serving layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<serde_json::Value>,
}

/// What an upload carries besides the model bytes.
#[derive(Debug, Clone, Default)]
pub struct UploadRequest {
    /// Model name (created on first upload).
    pub name: String,
    /// Human description.
    pub description: String,
    /// Evaluation metrics.
    pub metrics: BTreeMap<String, f64>,
    /// Key/value labels.
    pub labels: BTreeMap<String, String>,
    /// Lineage.
    pub lineage: Lineage,
    /// Serving config stored with the version.
    pub serving: Option<serde_json::Value>,
}

/// One model in a listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelSummary {
    /// Model name.
    pub name: String,
    /// Registered versions, ascending.
    pub versions: Vec<u64>,
    /// Aliases and the versions they point at.
    pub aliases: BTreeMap<String, u64>,
}
