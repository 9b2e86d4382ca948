//! Artifacts between the work directory and the store: a task's outputs are uploaded under
//! `pipelines/{name}/runs/{run}/{task}/{artifact}/` when it finishes, and downloaded again for a
//! consumer that runs in another attempt (a resumed run) or reuses a cached execution.

use std::path::Path;

use litehouse_store::{Condition, Store};
use sha2::{Digest, Sha256};

use super::record::ArtifactRecord;
use crate::error::{PipelineError, Result};
use crate::steps::dataset::{hash_dir, hex, list_files};

/// The name a single-file artifact is stored under inside its prefix.
const FILE_NAME: &str = "artifact";

/// Uploads the file or directory at `path` under `prefix` (ending in `/`).
pub async fn upload(store: &Store, path: &Path, prefix: &str) -> Result<ArtifactRecord> {
    let meta = std::fs::metadata(path).map_err(|e| PipelineError::io(path.display(), e))?;
    if meta.is_file() {
        let bytes = std::fs::read(path).map_err(|e| PipelineError::io(path.display(), e))?;
        let record = ArtifactRecord {
            key: prefix.into(),
            sha256: hex(&Sha256::digest(&bytes)),
            files: 1,
            bytes: bytes.len() as u64,
            file: true,
        };
        store
            .put(&format!("{prefix}{FILE_NAME}"), bytes, Condition::Always)
            .await?;
        return Ok(record);
    }
    let owned = path.to_path_buf();
    let (sha256, files, bytes) = tokio::task::spawn_blocking(move || hash_dir(&owned))
        .await
        .map_err(|e| PipelineError::Invalid(format!("hashing {}: {e}", path.display())))??;
    for rel in list_files(path)? {
        let file = path.join(&rel);
        let body = std::fs::read(&file).map_err(|e| PipelineError::io(file.display(), e))?;
        store
            .put(&format!("{prefix}{rel}"), body, Condition::Always)
            .await?;
    }
    Ok(ArtifactRecord {
        key: prefix.into(),
        sha256,
        files,
        bytes,
        file: false,
    })
}

/// Writes the artifact's files at `path` (replacing what is there); fails when the store no
/// longer holds all of them.
pub async fn download(store: &Store, artifact: &ArtifactRecord, path: &Path) -> Result<()> {
    remove(path)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| PipelineError::io(parent.display(), e))?;
    }
    if artifact.file {
        let object = store.get(&format!("{}{FILE_NAME}", artifact.key)).await?;
        return std::fs::write(path, object.bytes)
            .map_err(|e| PipelineError::io(path.display(), e));
    }
    std::fs::create_dir_all(path).map_err(|e| PipelineError::io(path.display(), e))?;
    let keys = store.list(&artifact.key).await?;
    if keys.len() != artifact.files {
        return Err(PipelineError::NotFound(format!(
            "{}/{}: expected {} file(s), found {}",
            store.uri(),
            artifact.key,
            artifact.files,
            keys.len()
        )));
    }
    for key in keys {
        let Some(rel) = key.strip_prefix(&artifact.key) else {
            continue;
        };
        let to = path.join(rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| PipelineError::io(parent.display(), e))?;
        }
        let object = store.get(&key).await?;
        std::fs::write(&to, object.bytes).map_err(|e| PipelineError::io(to.display(), e))?;
    }
    Ok(())
}

/// Whether the store still holds every file of the artifact (a cache entry may outlive them).
pub async fn present(store: &Store, artifact: &ArtifactRecord) -> Result<bool> {
    if artifact.file {
        return Ok(store
            .etag(&format!("{}{FILE_NAME}", artifact.key))
            .await?
            .is_some());
    }
    Ok(store.list(&artifact.key).await?.len() == artifact.files)
}

/// Removes a file or directory if it exists.
pub fn remove(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            std::fs::remove_dir_all(path).map_err(|e| PipelineError::io(path.display(), e))
        }
        Ok(_) => std::fs::remove_file(path).map_err(|e| PipelineError::io(path.display(), e)),
        Err(_) => Ok(()),
    }
}
