//! Input files, local or in S3: listing files and prefixes, and reading byte ranges of them as
//! a stream (S3 in ranged pieces, so memory stays flat whatever the size). Gzip files are
//! recognized by their magic bytes and decompressed on the fly; their offsets count
//! decompressed bytes.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use litehouse_store::Store;
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use super::BatchError;

/// Bytes fetched per ranged S3 read.
const S3_PIECE: u64 = 8 * 1024 * 1024;

/// One input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    /// `s3://bucket/key` or a local path.
    pub uri: String,
    /// Size in bytes as stored (compressed for gzip).
    pub size: u64,
    /// Starts with the gzip magic bytes.
    pub gzip: bool,
}

/// S3 stores by bucket, opened once and shared by every reader.
#[derive(Debug, Clone, Default)]
pub struct Buckets {
    open: Arc<Mutex<HashMap<String, Store>>>,
}

/// Where a URI points.
enum Place {
    Local(PathBuf),
    S3 { bucket: String, key: String },
}

fn place(uri: &str) -> Result<Place, BatchError> {
    if let Some(rest) = uri.strip_prefix("s3://") {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(BatchError::Input(format!(
                "{uri}: expected s3://bucket/key or s3://bucket/prefix/"
            )));
        }
        return Ok(Place::S3 {
            bucket: bucket.into(),
            key: key.into(),
        });
    }
    if uri.contains("://") && !uri.starts_with("file://") {
        return Err(BatchError::Input(format!(
            "{uri}: unsupported scheme (use a local path, file:// or s3://)"
        )));
    }
    Ok(Place::Local(PathBuf::from(
        uri.strip_prefix("file://").unwrap_or(uri),
    )))
}

impl Buckets {
    /// The store of an S3 bucket.
    pub async fn store(&self, bucket: &str) -> Result<Store, BatchError> {
        if let Some(s) = self.open.lock().ok().and_then(|m| m.get(bucket).cloned()) {
            return Ok(s);
        }
        let store = Store::open(&format!("s3://{bucket}"))
            .await
            .map_err(|e| BatchError::Input(e.to_string()))?;
        if let Ok(mut m) = self.open.lock() {
            m.insert(bucket.to_string(), store.clone());
        }
        Ok(store)
    }

    /// Every file the URIs name: a file as it is, a directory or prefix as the files under it
    /// (sorted; names starting with `.` or `_` skipped, as Hadoop-style tools write markers).
    pub async fn list(&self, uris: &[String]) -> Result<Vec<InputFile>, BatchError> {
        let mut out = Vec::new();
        for uri in uris {
            let before = out.len();
            match place(uri)? {
                Place::Local(path) => {
                    let files = tokio::task::spawn_blocking(move || local_files(&path))
                        .await
                        .map_err(|e| BatchError::Input(e.to_string()))??;
                    for (path, size) in files {
                        let gzip = local_is_gzip(&path)?;
                        out.push(InputFile {
                            uri: path.display().to_string(),
                            size,
                            gzip,
                        });
                    }
                }
                Place::S3 { bucket, key } => {
                    let store = self.store(&bucket).await?;
                    let input_err =
                        |e: litehouse_store::StoreError| BatchError::Input(e.to_string());
                    let exact = if key.is_empty() || key.ends_with('/') {
                        None
                    } else {
                        store.size(&key).await.map_err(input_err)?
                    };
                    let keys: Vec<(String, u64)> = match exact {
                        Some(size) => vec![(key.clone(), size)],
                        None => {
                            let prefix = if key.is_empty() || key.ends_with('/') {
                                key.clone()
                            } else {
                                format!("{key}/")
                            };
                            let mut found = Vec::new();
                            for k in store.list(&prefix).await.map_err(input_err)? {
                                let name = k.rsplit('/').next().unwrap_or(&k);
                                if name.starts_with('_') || name.starts_with('.') {
                                    continue;
                                }
                                if let Some(size) = store.size(&k).await.map_err(input_err)? {
                                    found.push((k, size));
                                }
                            }
                            found
                        }
                    };
                    for (k, size) in keys {
                        let head = store.get_range(&k, 0..2).await.map_err(input_err)?;
                        out.push(InputFile {
                            uri: format!("s3://{bucket}/{k}"),
                            size,
                            gzip: head == [0x1f, 0x8b],
                        });
                    }
                }
            }
            if out.len() == before {
                return Err(BatchError::Input(format!(
                    "{uri}: no input files there (expected a file, a directory or an s3:// prefix holding files)"
                )));
            }
        }
        Ok(out)
    }

    /// Reads decompressed bytes `range` of `file` as a buffered stream. Call from a blocking
    /// thread: S3 pieces are fetched through `handle`.
    pub fn open(
        &self,
        file: &InputFile,
        range: Range<u64>,
        handle: &Handle,
    ) -> Result<Box<dyn BufRead + Send>, BatchError> {
        let io_err = |e: std::io::Error| BatchError::Input(format!("{}: {e}", file.uri));
        let raw: Box<dyn Read + Send> = match place(&file.uri)? {
            Place::Local(path) => {
                let mut f = std::fs::File::open(&path).map_err(io_err)?;
                if !file.gzip {
                    f.seek(SeekFrom::Start(range.start)).map_err(io_err)?;
                }
                Box::new(f)
            }
            Place::S3 { bucket, key } => {
                let store = handle.block_on(self.store(&bucket))?;
                let start = if file.gzip { 0 } else { range.start };
                Box::new(Pieces {
                    store,
                    key,
                    pos: start,
                    end: if file.gzip {
                        file.size
                    } else {
                        range.end.min(file.size)
                    },
                    handle: handle.clone(),
                    piece: Vec::new(),
                    at: 0,
                })
            }
        };
        let len = range.end.saturating_sub(range.start);
        if file.gzip {
            let mut decoded = flate2::read::MultiGzDecoder::new(BufReader::new(raw));
            // Gzip cannot seek: decompress up to the range's start and drop it.
            std::io::copy(&mut (&mut decoded).take(range.start), &mut std::io::sink())
                .map_err(io_err)?;
            Ok(Box::new(BufReader::with_capacity(
                256 * 1024,
                decoded.take(len),
            )))
        } else {
            Ok(Box::new(BufReader::with_capacity(
                256 * 1024,
                raw.take(len),
            )))
        }
    }

    /// A whole small file (a file-list entry), refused past `limit` bytes.
    pub fn read_whole(&self, uri: &str, limit: u64, handle: &Handle) -> Result<Vec<u8>, String> {
        match place(uri).map_err(|e| e.to_string())? {
            Place::Local(path) => {
                let meta =
                    std::fs::metadata(&path).map_err(|e| format!("cannot read {uri}: {e}"))?;
                if meta.len() > limit {
                    return Err(format!(
                        "{uri} is {} bytes; the limit is {limit}",
                        meta.len()
                    ));
                }
                std::fs::read(&path).map_err(|e| format!("cannot read {uri}: {e}"))
            }
            Place::S3 { bucket, key } => handle.block_on(async {
                let store = self.store(&bucket).await.map_err(|e| e.to_string())?;
                match store.size(&key).await.map_err(|e| e.to_string())? {
                    None => Err(format!("cannot read {uri}: no such object")),
                    Some(n) if n > limit => {
                        Err(format!("{uri} is {n} bytes; the limit is {limit}"))
                    }
                    Some(n) => store.get_range(&key, 0..n).await.map_err(|e| e.to_string()),
                }
            }),
        }
    }
}

/// Resolves a file-list entry: absolute paths and URIs as they are, relative ones against the
/// list file's own directory or prefix.
pub fn resolve_entry(list_uri: &str, entry: &str) -> String {
    if entry.contains("://") || Path::new(entry).is_absolute() {
        return entry.to_string();
    }
    match list_uri.rfind('/') {
        Some(i) => format!("{}/{entry}", &list_uri[..i]),
        None => entry.to_string(),
    }
}

fn local_files(path: &Path) -> Result<Vec<(PathBuf, u64)>, BatchError> {
    let err = |e: std::io::Error| BatchError::Input(format!("{}: {e}", path.display()));
    let meta = std::fs::metadata(path).map_err(err)?;
    if meta.is_file() {
        return Ok(vec![(path.to_path_buf(), meta.len())]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            let hidden = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.') || n.starts_with('_'));
            if hidden {
                continue;
            }
            let m = std::fs::metadata(&p).map_err(err)?;
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                out.push((p, m.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn local_is_gzip(path: &Path) -> Result<bool, BatchError> {
    let mut head = [0u8; 2];
    let mut f = std::fs::File::open(path)
        .map_err(|e| BatchError::Input(format!("{}: {e}", path.display())))?;
    let n = f
        .read(&mut head)
        .map_err(|e| BatchError::Input(format!("{}: {e}", path.display())))?;
    Ok(n == 2 && head == [0x1f, 0x8b])
}

/// An S3 object read in ranged pieces of [`S3_PIECE`] bytes.
struct Pieces {
    store: Store,
    key: String,
    pos: u64,
    end: u64,
    handle: Handle,
    piece: Vec<u8>,
    at: usize,
}

impl Read for Pieces {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.piece.len() {
            if self.pos >= self.end {
                return Ok(0);
            }
            let upto = (self.pos + S3_PIECE).min(self.end);
            self.piece = self
                .handle
                .block_on(self.store.get_range(&self.key, self.pos..upto))
                .map_err(std::io::Error::other)?;
            if self.piece.is_empty() {
                return Ok(0);
            }
            self.pos += self.piece.len() as u64;
            self.at = 0;
        }
        let n = buf.len().min(self.piece.len() - self.at);
        buf[..n].copy_from_slice(&self.piece[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn file_list_entries_resolve_against_the_list() {
        assert_eq!(
            resolve_entry("s3://b/imgs/list.txt", "a.png"),
            "s3://b/imgs/a.png"
        );
        assert_eq!(resolve_entry("/data/list.txt", "d/a.png"), "/data/d/a.png");
        assert_eq!(resolve_entry("/data/list.txt", "/abs/a.png"), "/abs/a.png");
        assert_eq!(resolve_entry("list.txt", "a.png"), "a.png");
        assert_eq!(resolve_entry("/x/l.txt", "s3://o/k.png"), "s3://o/k.png");
    }
}
