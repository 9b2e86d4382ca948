//! Blobs under string keys, on local disk (the embedded default) or in S3, with the conditional
//! writes the registry builds its compare-and-swap on: create-only, and replace-only-if-the-etag-
//! still-matches. Both backends give the same guarantees.
//!
//! ```no_run
//! # async fn demo() -> Result<(), litehouse_store::StoreError> {
//! use litehouse_store::{Condition, Store};
//! let store = Store::open("s3://my-bucket/litehouse").await?; // or a directory path
//! let etag = store.put("a/b.json", b"{}".to_vec(), Condition::IfAbsent).await?;
//! store.put("a/b.json", b"{\"x\":1}".to_vec(), Condition::IfMatch(etag)).await?;
//! # Ok(()) }
//! ```

mod error;
mod key;
mod local;
mod s3;

pub use error::StoreError;
pub use key::validate_key;

use std::path::PathBuf;

/// When a write may happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Always write.
    Always,
    /// Only when no object exists under the key (create-only).
    IfAbsent,
    /// Only when the object exists and its etag is this one (compare-and-swap).
    IfMatch(String),
}

/// An object read from the store.
#[derive(Debug, Clone)]
pub struct Object {
    /// Its content.
    pub bytes: Vec<u8>,
    /// Opaque version tag; changes whenever the content changes.
    pub etag: String,
}

/// A store opened from a URI: `s3://bucket[/prefix]`, `file:///path`, or a plain path.
#[derive(Debug, Clone)]
pub struct Store {
    uri: String,
    backend: Backend,
}

#[derive(Debug, Clone)]
enum Backend {
    Local(local::LocalStore),
    S3(s3::S3Store),
}

impl Store {
    /// Opens a store. S3 reads credentials and region the usual AWS way (environment, profile,
    /// container or instance role) and honors `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` (with
    /// path-style addressing) for S3-compatible servers. A local directory is created if missing.
    pub async fn open(uri: &str) -> Result<Store, StoreError> {
        let backend = if let Some(rest) = uri.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(StoreError::InvalidUri {
                    uri: uri.into(),
                    reason: "expected s3://bucket[/prefix]".into(),
                });
            }
            Backend::S3(s3::S3Store::connect(bucket, prefix.trim_matches('/')).await)
        } else if uri.contains("://") && !uri.starts_with("file://") {
            return Err(StoreError::InvalidUri {
                uri: uri.into(),
                reason: "supported: s3://bucket[/prefix], file:///path, or a directory path".into(),
            });
        } else {
            let path = PathBuf::from(uri.strip_prefix("file://").unwrap_or(uri));
            Backend::Local(local::LocalStore::open(path).map_err(|e| StoreError::Io {
                store: uri.into(),
                key: String::new(),
                op: "create directory",
                source: e,
            })?)
        };
        Ok(Store {
            uri: uri.trim_end_matches('/').to_string(),
            backend,
        })
    }

    /// The URI the store was opened with.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Reads an object; [`StoreError::NotFound`] when there is none.
    pub async fn get(&self, key: &str) -> Result<Object, StoreError> {
        validate_key(key)?;
        match &self.backend {
            Backend::Local(b) => b.get(&self.uri, key).await,
            Backend::S3(b) => b.get(&self.uri, key).await,
        }
    }

    /// Reads an object, or `None` when there is none.
    pub async fn get_opt(&self, key: &str) -> Result<Option<Object>, StoreError> {
        match self.get(key).await {
            Ok(o) => Ok(Some(o)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The object's etag without its content (a HEAD on S3), or `None` when there is none.
    pub async fn etag(&self, key: &str) -> Result<Option<String>, StoreError> {
        validate_key(key)?;
        match &self.backend {
            Backend::Local(b) => b.etag(&self.uri, key).await,
            Backend::S3(b) => b.etag(&self.uri, key).await,
        }
    }

    /// The object's size in bytes without its content, or `None` when there is none.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        validate_key(key)?;
        match &self.backend {
            Backend::Local(b) => b.size(&self.uri, key).await,
            Backend::S3(b) => b.size(&self.uri, key).await,
        }
    }

    /// Reads bytes `range` of an object (fewer at its end), so that large objects can be read
    /// in pieces with flat memory.
    pub async fn get_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<Vec<u8>, StoreError> {
        validate_key(key)?;
        match &self.backend {
            Backend::Local(b) => b.get_range(&self.uri, key, range).await,
            Backend::S3(b) => b.get_range(&self.uri, key, range).await,
        }
    }

    /// Writes an object when `condition` holds and returns its new etag;
    /// [`StoreError::PreconditionFailed`] when it does not.
    pub async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        condition: Condition,
    ) -> Result<String, StoreError> {
        validate_key(key)?;
        match &self.backend {
            Backend::Local(b) => b.put(&self.uri, key, bytes, condition).await,
            Backend::S3(b) => b.put(&self.uri, key, bytes, condition).await,
        }
    }

    /// Keys under `prefix` (plain string prefix), sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        match &self.backend {
            Backend::Local(b) => b.list(&self.uri, prefix).await,
            Backend::S3(b) => b.list(&self.uri, prefix).await,
        }
    }

    /// Deletes an object; deleting a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        validate_key(key)?;
        match &self.backend {
            Backend::Local(b) => b.delete(&self.uri, key).await,
            Backend::S3(b) => b.delete(&self.uri, key).await,
        }
    }

    /// Creates the S3 bucket when it does not exist (first-time setup and local S3 stand-ins);
    /// nothing to do for a directory.
    pub async fn ensure_bucket(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Local(_) => Ok(()),
            Backend::S3(b) => b.ensure_bucket(&self.uri).await,
        }
    }
}

/// How errors name plain files read by [`read_uri`].
const LOCAL_FILES: &str = "the local filesystem";

/// Reads a whole object named by a URI: `s3://bucket/key`, `file:///path`, or a plain path.
pub async fn read_uri(uri: &str) -> Result<Vec<u8>, StoreError> {
    if let Some(rest) = uri.strip_prefix("s3://") {
        let Some((bucket, key)) = rest
            .split_once('/')
            .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        else {
            return Err(StoreError::InvalidUri {
                uri: uri.into(),
                reason: "expected s3://bucket/key".into(),
            });
        };
        let store = Store::open(&format!("s3://{bucket}")).await?;
        return Ok(store.get(key).await?.bytes);
    }
    let path = uri.strip_prefix("file://").unwrap_or(uri).to_string();
    tokio::task::spawn_blocking(move || {
        std::fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StoreError::NotFound {
                    store: LOCAL_FILES.into(),
                    key: path.clone(),
                }
            } else {
                StoreError::Io {
                    store: LOCAL_FILES.into(),
                    key: path.clone(),
                    op: "read",
                    source: e,
                }
            }
        })
    })
    .await
    .map_err(|e| StoreError::Backend {
        store: LOCAL_FILES.into(),
        key: uri.into(),
        op: "read",
        message: e.to_string(),
    })?
}

/// Copies what `s3://bucket/key` names into `dir`: one object to `dir/<its file name>`, or
/// every object under `s3://bucket/prefix/` to `dir/<relative key>`. Returns the local path that
/// stands for the URI (the file, or `dir`).
pub async fn download(uri: &str, dir: &std::path::Path) -> Result<PathBuf, StoreError> {
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| StoreError::InvalidUri {
            uri: uri.into(),
            reason: "expected s3://bucket/key or s3://bucket/prefix/".into(),
        })?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    let store = Store::open(&format!("s3://{bucket}")).await?;
    let keys = store.list(key).await?;
    let write = |local: &std::path::Path, bytes: &[u8]| {
        let io = |e| StoreError::Io {
            store: LOCAL_FILES.into(),
            key: local.display().to_string(),
            op: "write",
            source: e,
        };
        if let Some(parent) = local.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(local, bytes).map_err(io)
    };
    if !key.is_empty() && keys.iter().any(|k| k == key) {
        let local = dir.join(key.rsplit('/').next().unwrap_or("data"));
        write(&local, &store.get(key).await?.bytes)?;
        return Ok(local);
    }
    let prefix = if key.is_empty() || key.ends_with('/') {
        key.to_string()
    } else {
        format!("{key}/")
    };
    let mut found = false;
    for k in keys.iter().filter(|k| k.starts_with(&prefix)) {
        let relative = &k[prefix.len()..];
        // Keys are checked by the store, but a prefix could still hold `a/../b`: never leave `dir`.
        if relative.is_empty()
            || relative
                .split('/')
                .any(|part| part == ".." || part.is_empty())
        {
            continue;
        }
        write(&dir.join(relative), &store.get(k).await?.bytes)?;
        found = true;
    }
    if !found {
        return Err(StoreError::NotFound {
            store: format!("s3://{bucket}"),
            key: format!("{key} (no object, and no objects under {prefix})"),
        });
    }
    Ok(dir.to_path_buf())
}

/// Helpers for tests that run the same suite on every backend.
#[doc(hidden)]
pub mod testing {
    use super::Store;

    /// A fresh, empty S3 store under a unique prefix of the bucket named by `LITEHOUSE_TEST_S3`
    /// (set by `infra/scripts/with-moto.sh`), or `None` when it is unset. With
    /// `LITEHOUSE_REQUIRE_S3=1` an unset or unreachable server fails the test instead.
    pub async fn s3_store(test: &str) -> Option<Store> {
        let required = std::env::var("LITEHOUSE_REQUIRE_S3").is_ok_and(|v| v == "1");
        let Ok(bucket) = std::env::var("LITEHOUSE_TEST_S3") else {
            assert!(
                !required,
                "LITEHOUSE_REQUIRE_S3=1 but LITEHOUSE_TEST_S3 is unset"
            );
            eprintln!("{test}: S3 variant skipped (run under infra/scripts/with-moto.sh)");
            return None;
        };
        let bucket_store = Store::open(&bucket).await.unwrap_or_else(|e| panic!("{e}"));
        bucket_store
            .ensure_bucket()
            .await
            .unwrap_or_else(|e| panic!("cannot reach the test S3 server: {e}"));
        let uri = format!("{bucket}/{test}-{:016x}", fastrand::u64(..));
        Some(Store::open(&uri).await.unwrap_or_else(|e| panic!("{e}")))
    }
}
