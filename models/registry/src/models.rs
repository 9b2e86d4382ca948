//! Model versions: upload, list, show, load (sha256-checked), delete.

use std::collections::BTreeMap;

use litehouse_models::LoadedModel;
use litehouse_store::Condition;
use sha2::{Digest, Sha256};

use crate::manifest::{Manifest, ModelSummary, UploadRequest};
use crate::{read_doc, to_json, Registry, RegistryError};

fn versions_prefix(name: &str) -> String {
    format!("models/{name}/versions/")
}

pub(crate) fn artifact_key(name: &str, version: u64) -> String {
    format!("models/{name}/versions/{version}/model.tflite")
}

fn manifest_key(name: &str, version: u64) -> String {
    format!("models/{name}/versions/{version}/manifest.json")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Version numbers that appear under `models/{name}/versions/` in `keys`, with whether a
/// manifest exists for each.
fn versions_in(keys: &[String], name: &str) -> BTreeMap<u64, bool> {
    let prefix = versions_prefix(name);
    let mut out = BTreeMap::new();
    for key in keys {
        let Some((v, file)) = key.strip_prefix(&prefix).and_then(|r| r.split_once('/')) else {
            continue;
        };
        if let Ok(v) = v.parse::<u64>() {
            let entry = out.entry(v).or_insert(false);
            *entry |= file == "manifest.json";
        }
    }
    out
}

impl Registry {
    /// Registers `bytes` as the next version of `request.name`. The model is loaded first (so
    /// only models litehouse can run are registered) to record its signature and operators.
    /// Concurrent uploads of the same model get distinct versions.
    pub async fn upload(
        &self,
        bytes: Vec<u8>,
        request: UploadRequest,
    ) -> Result<Manifest, RegistryError> {
        crate::validate_model_name(&request.name)?;
        let (bytes, model) = tokio::task::spawn_blocking(move || {
            let model = LoadedModel::load(&bytes);
            (bytes, model)
        })
        .await
        .map_err(|e| RegistryError::InvalidArgument(format!("model check failed: {e}")))?;
        let model = model?;
        let sha256 = sha256_hex(&bytes);
        let size_bytes = bytes.len() as u64;
        let name = request.name.clone();

        let keys = self.store.list(&versions_prefix(&name)).await?;
        let mut version = versions_in(&keys, &name).keys().max().map_or(1, |v| v + 1);
        // Claim a version number with a create-only write of the artifact; a concurrent upload
        // that got there first makes us try the next number.
        let mut claimed = false;
        for _ in 0..1000 {
            match self
                .store
                .put(
                    &artifact_key(&name, version),
                    bytes.clone(),
                    Condition::IfAbsent,
                )
                .await
            {
                Ok(_) => {
                    claimed = true;
                    break;
                }
                Err(e) if e.is_precondition_failed() => version += 1,
                Err(e) => return Err(e.into()),
            }
        }
        if !claimed {
            return Err(RegistryError::Aborted(format!(
                "could not claim a version number for model '{name}'"
            )));
        }
        let manifest = Manifest {
            name: name.clone(),
            version,
            sha256,
            size_bytes,
            signature: model.signature().clone(),
            operators: model.info().operator_counts.iter().cloned().collect(),
            metrics: request.metrics,
            labels: request.labels,
            lineage: request.lineage,
            created: chrono::Utc::now(),
            description: request.description,
            serving: request.serving,
        };
        self.store
            .put(
                &manifest_key(&name, version),
                to_json(&manifest),
                Condition::IfAbsent,
            )
            .await?;
        tracing::info!(model = %name, version, sha256 = %manifest.sha256, "registered model version");
        Ok(manifest)
    }

    /// Every model with its versions and aliases.
    pub async fn models(&self) -> Result<Vec<ModelSummary>, RegistryError> {
        let keys = self.store.list("models/").await?;
        let mut names: Vec<String> = keys
            .iter()
            .filter_map(|k| k.strip_prefix("models/")?.split('/').next())
            .map(str::to_string)
            .collect();
        names.dedup();
        let mut out = Vec::new();
        for name in names {
            let versions: Vec<u64> = versions_in(&keys, &name)
                .into_iter()
                .filter_map(|(v, has_manifest)| has_manifest.then_some(v))
                .collect();
            if versions.is_empty() {
                continue;
            }
            let aliases = self.aliases(&name).await?.aliases;
            out.push(ModelSummary {
                name,
                versions,
                aliases,
            });
        }
        Ok(out)
    }

    /// Manifests of every version of a model, ascending.
    pub async fn versions(&self, name: &str) -> Result<Vec<Manifest>, RegistryError> {
        crate::validate_model_name(name)?;
        let keys = self.store.list(&versions_prefix(name)).await?;
        let mut out = Vec::new();
        for (v, has_manifest) in versions_in(&keys, name) {
            if has_manifest {
                out.push(self.manifest(name, v).await?);
            }
        }
        if out.is_empty() {
            return Err(RegistryError::NotFound(format!(
                "model '{name}' not found in {}",
                self.store.uri()
            )));
        }
        Ok(out)
    }

    /// The manifest of one version.
    pub async fn manifest(&self, name: &str, version: u64) -> Result<Manifest, RegistryError> {
        crate::validate_model_name(name)?;
        read_doc(&self.store, &manifest_key(name, version))
            .await?
            .map(|(m, _)| m)
            .ok_or_else(|| {
                RegistryError::NotFound(format!("model '{name}' has no version {version}"))
            })
    }

    /// Resolves a version reference: a number, an alias, or `latest`.
    pub async fn resolve(&self, name: &str, reference: &str) -> Result<u64, RegistryError> {
        if let Ok(v) = reference.parse::<u64>() {
            self.manifest(name, v).await?;
            return Ok(v);
        }
        if reference == "latest" {
            return self
                .versions(name)
                .await?
                .last()
                .map(|m| m.version)
                .ok_or_else(|| RegistryError::NotFound(format!("model '{name}' has no versions")));
        }
        let aliases = self.aliases(name).await?;
        aliases.aliases.get(reference).copied().ok_or_else(|| {
            let known: Vec<&str> = aliases.aliases.keys().map(String::as_str).collect();
            RegistryError::NotFound(format!(
                "model '{name}' has no version or alias '{reference}' (aliases: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })
    }

    /// The artifact of one version, after checking its sha256 against the manifest (and against
    /// `expected_sha256` too, when the caller recorded one, e.g. at deploy time).
    pub async fn artifact(
        &self,
        name: &str,
        version: u64,
        expected_sha256: Option<&str>,
    ) -> Result<(Manifest, Vec<u8>), RegistryError> {
        let manifest = self.manifest(name, version).await?;
        let key = artifact_key(name, version);
        let bytes = match self.store.get(&key).await {
            Ok(o) => o.bytes,
            Err(e) if e.is_not_found() => {
                return Err(RegistryError::NotFound(format!(
                    "model '{name}' version {version}: artifact {key} is missing"
                )))
            }
            Err(e) => return Err(e.into()),
        };
        let actual = sha256_hex(&bytes);
        for expected in std::iter::once(manifest.sha256.as_str()).chain(expected_sha256) {
            if actual != expected {
                return Err(RegistryError::Integrity {
                    what: format!("model '{name}' version {version} ({key})"),
                    expected: expected.to_string(),
                    actual,
                });
            }
        }
        Ok((manifest, bytes))
    }

    /// Deletes a version: refused while any endpoint deploys it; aliases pointing at it are
    /// removed. The number is never reused.
    pub async fn delete_version(&self, name: &str, version: u64) -> Result<(), RegistryError> {
        self.manifest(name, version).await?;
        for endpoint in self.endpoints().await? {
            if let Some(d) = endpoint
                .deployed_models
                .iter()
                .find(|d| d.model == name && d.version == version)
            {
                return Err(RegistryError::FailedPrecondition(format!(
                    "model '{name}' version {version} is deployed on endpoint '{}' as deployed \
                     model {}; undeploy it first",
                    endpoint.id, d.id
                )));
            }
        }
        let stale: Vec<String> = self
            .aliases(name)
            .await?
            .aliases
            .iter()
            .filter(|(_, v)| **v == version)
            .map(|(a, _)| a.clone())
            .collect();
        for alias in stale {
            self.set_alias(
                name,
                &alias,
                None,
                "registry",
                &format!("version {version} deleted"),
            )
            .await?;
        }
        // Manifest first: the version disappears from listings before its artifact goes.
        self.store.delete(&manifest_key(name, version)).await?;
        self.store.delete(&artifact_key(name, version)).await?;
        tracing::info!(model = %name, version, "deleted model version");
        Ok(())
    }
}
