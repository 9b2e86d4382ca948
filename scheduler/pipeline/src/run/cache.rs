//! Step caching: an execution is identified by a content hash of what determines its outputs
//! (the litehouse version, the executor's image and command line, the resolved input
//! parameters, and the digests of the input artifacts). The data snapshot is an input artifact,
//! so new data always misses the cache; an unchanged re-run reuses the last outputs.

use std::collections::BTreeMap;

use litehouse_store::{Condition, Store};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::record::ArtifactRecord;
use crate::error::{PipelineError, Result};
use crate::ir::Container;
use crate::steps::dataset::hex;

/// What a cached execution produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The run that executed it.
    pub run: String,
    /// Its task.
    pub task: String,
    /// Output parameters.
    pub outputs: BTreeMap<String, Value>,
    /// Output artifacts, where that run stored them.
    pub artifacts: BTreeMap<String, ArtifactRecord>,
    /// Figures.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
}

/// The key of an execution.
pub fn key(
    container: &Container,
    parameters: &BTreeMap<String, Value>,
    artifacts: &BTreeMap<String, String>,
) -> String {
    // Without the run's name: it is in every executor's args but changes nothing it computes.
    let identity = json!({
        "litehouse": env!("CARGO_PKG_VERSION"),
        "image": container.image,
        "command": container.command,
        "args": container.args,
        "parameters": parameters,
        "artifacts": artifacts,
    });
    hex(&Sha256::digest(identity.to_string().as_bytes()))
}

fn entry_key(pipeline: &str, key: &str) -> String {
    format!("pipelines/{pipeline}/cache/{key}.json")
}

/// The entry for `key`, if one was written.
pub async fn lookup(store: &Store, pipeline: &str, key: &str) -> Result<Option<CacheEntry>> {
    let Some(object) = store.get_opt(&entry_key(pipeline, key)).await? else {
        return Ok(None);
    };
    // A damaged entry is a miss, not a failed run.
    Ok(serde_json::from_slice(&object.bytes).ok())
}

/// Records an execution's outputs under `key`.
pub async fn save(store: &Store, pipeline: &str, key: &str, entry: &CacheEntry) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(entry)
        .map_err(|e| PipelineError::Invalid(format!("encoding a cache entry: {e}")))?;
    store
        .put(&entry_key(pipeline, key), bytes, Condition::Always)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_follows_inputs_and_command_but_not_the_run() {
        let c = Container {
            image: "litehouse:latest".into(),
            command: vec!["litehouse".into(), "step".into(), "train".into()],
            args: vec!["--run".into(), crate::ir::JOB_NAME.into()],
        };
        let p: BTreeMap<String, Value> = [("epochs".to_string(), json!(3))].into();
        let a: BTreeMap<String, String> = [("dataset".to_string(), "abc".to_string())].into();
        let k = key(&c, &p, &a);
        assert_eq!(k, key(&c, &p, &a));
        let p2: BTreeMap<String, Value> = [("epochs".to_string(), json!(4))].into();
        assert_ne!(k, key(&c, &p2, &a));
        let a2: BTreeMap<String, String> = [("dataset".to_string(), "abd".to_string())].into();
        assert_ne!(k, key(&c, &p, &a2));
        let mut c2 = c.clone();
        c2.image = "litehouse:1".into();
        assert_ne!(k, key(&c2, &p, &a));
    }
}
