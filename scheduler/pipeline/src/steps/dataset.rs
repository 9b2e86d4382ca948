//! ingest, and the dataset artifact: the data files under `data/` and a `dataset.json` that
//! says how to read them, so later steps (and later runs) read exactly what was ingested.

use std::path::{Path, PathBuf};

use litehouse_train::data::{DataFormat, DataSpec, TaskName};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::StepArgs;
use crate::error::{PipelineError, Result};

/// `dataset.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// The URI it was ingested from.
    pub source: String,
    /// The data's path inside the artifact (`data` or `data/<file>`).
    pub path: String,
    /// How to read it.
    pub format: DataFormat,
    /// Label columns or fields (CSV, JSONL).
    pub labels: Vec<String>,
    /// classify or regress.
    pub task: TaskName,
    /// CSV delimiter.
    pub delimiter: char,
    /// sha256 over the files (relative names and bytes): the snapshot's identity.
    pub sha256: String,
    /// Files copied.
    pub files: usize,
    /// Bytes copied.
    pub bytes: u64,
}

/// The file inside a dataset artifact that describes it.
pub const INFO_FILE: &str = "dataset.json";

impl DatasetInfo {
    /// Reads the descriptor of the dataset artifact in `dir`.
    pub fn read(dir: &Path) -> Result<DatasetInfo> {
        super::read_json(&dir.join(INFO_FILE))
    }

    /// How litehouse-train reads the data in `dir`.
    pub fn spec(&self, dir: &Path) -> DataSpec {
        DataSpec {
            path: dir.join(&self.path),
            format: self.format,
            labels: self.labels.clone(),
            task: self.task,
            delimiter: self.delimiter,
        }
    }
}

/// ingest: copies the data into `--out-dataset`, hashes it, writes `dataset.json`.
pub async fn ingest(a: &StepArgs) -> Result<Vec<String>> {
    let uri = a.text("data");
    let format: DataFormat = a.text("format").parse().map_err(|e| a.bad("format", e))?;
    let task: TaskName = a.text("task").parse().map_err(|e| a.bad("task", e))?;
    let delimiter = single_char(&a.text("delimiter")).ok_or_else(|| {
        a.bad(
            "delimiter",
            format!("expected one character, found {:?}", a.text("delimiter")),
        )
    })?;
    let labels: Vec<String> = a
        .text("label")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let out = a.out("dataset").to_path_buf();
    let data_dir = out.join("data");
    std::fs::create_dir_all(&data_dir).map_err(|e| PipelineError::io(data_dir.display(), e))?;
    let local = if uri.starts_with("s3://") {
        litehouse_store::download(&uri, &data_dir).await?
    } else {
        let src = PathBuf::from(uri.strip_prefix("file://").unwrap_or(&uri));
        let (src2, dst) = (src.clone(), data_dir.clone());
        tokio::task::spawn_blocking(move || copy_into(&src2, &dst))
            .await
            .map_err(|e| PipelineError::step("ingest", e))??
    };
    let relative = local
        .strip_prefix(&out)
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .unwrap_or_else(|_| "data".into());
    let dir = data_dir.clone();
    let (sha256, files, bytes) = tokio::task::spawn_blocking(move || hash_dir(&dir))
        .await
        .map_err(|e| PipelineError::step("ingest", e))??;
    if files == 0 {
        return Err(PipelineError::step(
            "ingest",
            format!("{uri}: no files to ingest"),
        ));
    }
    let info = DatasetInfo {
        source: uri.clone(),
        path: relative,
        format,
        labels,
        task,
        delimiter,
        sha256: sha256.clone(),
        files,
        bytes,
    };
    super::write_json(&out.join(INFO_FILE), &info)?;
    a.write_param("data_hash", &sha256.clone().into())?;
    Ok(vec![format!(
        "ingested {uri}: {files} file(s), {bytes} bytes, sha256 {sha256}"
    )])
}

fn single_char(s: &str) -> Option<char> {
    let mut c = s.chars();
    match (c.next(), c.next()) {
        (Some(ch), None) => Some(ch),
        _ => None,
    }
}

/// Copies a file into `dst/` or a directory's contents into `dst`; returns the path that
/// stands for the source.
fn copy_into(src: &Path, dst: &Path) -> Result<PathBuf> {
    let meta = std::fs::metadata(src).map_err(|e| PipelineError::io(src.display(), e))?;
    if meta.is_file() {
        let name = src
            .file_name()
            .unwrap_or_else(|| std::ffi::OsStr::new("data"));
        let to = dst.join(name);
        std::fs::copy(src, &to).map_err(|e| PipelineError::io(src.display(), e))?;
        return Ok(to);
    }
    copy_dir(src, dst)?;
    Ok(dst.to_path_buf())
}

/// Copies a directory tree (files and folders; symlinks followed).
pub fn copy_dir(src: &Path, dst: &Path) -> Result<()> {
    std::fs::create_dir_all(dst).map_err(|e| PipelineError::io(dst.display(), e))?;
    for entry in std::fs::read_dir(src).map_err(|e| PipelineError::io(src.display(), e))? {
        let entry = entry.map_err(|e| PipelineError::io(src.display(), e))?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        if from.is_dir() {
            copy_dir(&from, &to)?;
        } else {
            std::fs::copy(&from, &to).map_err(|e| PipelineError::io(from.display(), e))?;
        }
    }
    Ok(())
}

/// Every file under `dir`, as sorted relative `/`-separated names.
pub fn list_files(dir: &Path) -> Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
        for entry in std::fs::read_dir(dir).map_err(|e| PipelineError::io(dir.display(), e))? {
            let path = entry
                .map_err(|e| PipelineError::io(dir.display(), e))?
                .path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    if dir.is_dir() {
        walk(dir, dir, &mut out)?;
    }
    out.sort();
    Ok(out)
}

/// sha256 over the relative names, sizes and bytes of every file under `dir`; with the file
/// count and total size. Independent of where `dir` is and of file times.
pub fn hash_dir(dir: &Path) -> Result<(String, usize, u64)> {
    let files = list_files(dir)?;
    let mut h = Sha256::new();
    let mut bytes = 0u64;
    for rel in &files {
        let data = std::fs::read(dir.join(rel)).map_err(|e| PipelineError::io(rel, e))?;
        h.update(rel.as_bytes());
        h.update([0]);
        h.update((data.len() as u64).to_le_bytes());
        h.update(&data);
        bytes += data.len() as u64;
    }
    Ok((hex(&h.finalize()), files.len(), bytes))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
