//! The local-directory backend. Writes go to a temporary file that is renamed over the key, so
//! readers see the old or the new content, never a torn file; conditional writes hold an
//! exclusive file lock (`flock`) per key, so they are safe across threads and processes.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{Condition, Object, StoreError};

const LOCKS: &str = ".locks";

#[derive(Debug, Clone)]
pub(crate) struct LocalStore {
    root: PathBuf,
}

/// The etag of some content: its sha256, shortened. Content-derived, so it changes exactly when
/// the content does.
fn etag_of(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

impl LocalStore {
    pub(crate) fn open(root: PathBuf) -> std::io::Result<Self> {
        fs::create_dir_all(root.join(LOCKS))?;
        Ok(LocalStore { root })
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        store: &str,
        key: &str,
        op: &'static str,
        f: impl FnOnce(LocalStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(this))
            .await
            .map_err(|e| StoreError::Backend {
                store: store.into(),
                key: key.into(),
                op,
                message: e.to_string(),
            })?
    }

    pub(crate) async fn get(&self, store: &str, key: &str) -> Result<Object, StoreError> {
        let (s, k) = (store.to_string(), key.to_string());
        self.blocking(store, key, "read", move |this| match read(&this.path(&k)) {
            Ok(Some(bytes)) => Ok(Object {
                etag: etag_of(&bytes),
                bytes,
            }),
            Ok(None) => Err(StoreError::NotFound { store: s, key: k }),
            Err(e) => Err(io(&s, &k, "read", e)),
        })
        .await
    }

    pub(crate) async fn etag(&self, store: &str, key: &str) -> Result<Option<String>, StoreError> {
        let (s, k) = (store.to_string(), key.to_string());
        self.blocking(store, key, "read", move |this| {
            read(&this.path(&k))
                .map(|b| b.map(|b| etag_of(&b)))
                .map_err(|e| io(&s, &k, "read", e))
        })
        .await
    }

    pub(crate) async fn size(&self, store: &str, key: &str) -> Result<Option<u64>, StoreError> {
        let (s, k) = (store.to_string(), key.to_string());
        self.blocking(store, key, "read", move |this| {
            match std::fs::metadata(this.path(&k)) {
                Ok(m) if m.is_file() => Ok(Some(m.len())),
                Ok(_) => Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io(&s, &k, "read", e)),
            }
        })
        .await
    }

    pub(crate) async fn get_range(
        &self,
        store: &str,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<Vec<u8>, StoreError> {
        use std::io::{Read, Seek, SeekFrom};
        let (s, k) = (store.to_string(), key.to_string());
        self.blocking(store, key, "read", move |this| {
            let mut file = match std::fs::File::open(this.path(&k)) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(StoreError::NotFound { store: s, key: k })
                }
                Err(e) => return Err(io(&s, &k, "read", e)),
            };
            let mut out = Vec::new();
            file.seek(SeekFrom::Start(range.start))
                .and_then(|_| {
                    file.take(range.end.saturating_sub(range.start))
                        .read_to_end(&mut out)
                })
                .map_err(|e| io(&s, &k, "read", e))?;
            Ok(out)
        })
        .await
    }

    pub(crate) async fn put(
        &self,
        store: &str,
        key: &str,
        bytes: Vec<u8>,
        condition: Condition,
    ) -> Result<String, StoreError> {
        let (s, k) = (store.to_string(), key.to_string());
        self.blocking(store, key, "write", move |this| {
            this.put_locked(&s, &k, &bytes, &condition)
        })
        .await
    }

    fn put_locked(
        &self,
        store: &str,
        key: &str,
        bytes: &[u8],
        condition: &Condition,
    ) -> Result<String, StoreError> {
        let lock = self.lock(key).map_err(|e| io(store, key, "lock", e))?;
        let path = self.path(key);
        let current = read(&path)
            .map_err(|e| io(store, key, "read", e))?
            .map(|b| etag_of(&b));
        let failed = |detail: String| StoreError::PreconditionFailed {
            store: store.into(),
            key: key.into(),
            detail,
        };
        match (condition, &current) {
            (Condition::IfAbsent, Some(_)) => return Err(failed("it already exists".into())),
            (Condition::IfMatch(want), None) => {
                return Err(failed(format!(
                    "expected etag {want}, but it no longer exists"
                )))
            }
            (Condition::IfMatch(want), Some(have)) if want != have => {
                return Err(failed(format!("expected etag {want}, found {have}")))
            }
            _ => {}
        }
        let parent = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(parent).map_err(|e| io(store, key, "create directory for", e))?;
        let tmp = parent.join(format!(".tmp-{}-{}", std::process::id(), fastrand::u64(..)));
        let written = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io(store, key, "write", e));
        }
        drop(lock);
        Ok(etag_of(bytes))
    }

    /// An exclusive lock on the key, held until the returned file is dropped.
    fn lock(&self, key: &str) -> std::io::Result<File> {
        let name = key.replace('/', "%2F");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join(LOCKS).join(name))?;
        file.lock()?;
        Ok(file)
    }

    pub(crate) async fn list(&self, store: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        let (s, p) = (store.to_string(), prefix.to_string());
        self.blocking(store, prefix, "list", move |this| {
            // Walk only the deepest directory the prefix names.
            let dir_part = p.rsplit_once('/').map_or("", |(d, _)| d);
            let start = if dir_part.is_empty() {
                this.root.clone()
            } else {
                this.root.join(dir_part)
            };
            let mut keys = Vec::new();
            walk(&this.root, &start, &mut keys).map_err(|e| io(&s, &p, "list", e))?;
            keys.retain(|k| k.starts_with(&p));
            keys.sort();
            Ok(keys)
        })
        .await
    }

    pub(crate) async fn delete(&self, store: &str, key: &str) -> Result<(), StoreError> {
        let (s, k) = (store.to_string(), key.to_string());
        self.blocking(store, key, "delete", move |this| {
            let lock = this.lock(&k).map_err(|e| io(&s, &k, "lock", e))?;
            match fs::remove_file(this.path(&k)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(io(&s, &k, "delete", e)),
            }
            drop(lock);
            Ok(())
        })
        .await
    }
}

fn read(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        // A directory where a key was asked for: no such object.
        Err(e) if e.kind() == ErrorKind::IsADirectory => Ok(None),
        Err(e) => Err(e),
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::NotADirectory => {
            return Ok(())
        }
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue; // locks and temporary files
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            let key: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(key.join("/"));
        }
    }
    Ok(())
}

fn io(store: &str, key: &str, op: &'static str, source: std::io::Error) -> StoreError {
    StoreError::Io {
        store: store.into(),
        key: key.into(),
        op,
        source,
    }
}
