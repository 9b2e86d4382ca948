//! Which reader a `--data` path needs, said once for the CLI and the pipeline: the format is
//! named, or recognized from what the path is.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{
    read_csv, read_file_list, read_idx_dir, read_image_folders, read_jsonl, CsvOptions, Dataset,
    JsonlOptions, Task,
};
use crate::error::{Result, TrainError};

/// A training data format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataFormat {
    /// Recognize it: a directory of IDX files or of class folders, a `.csv`, `.jsonl` or
    /// `.txt` file list (each optionally `.gz`).
    #[default]
    Auto,
    /// IDX (MNIST) directory.
    Idx,
    /// CSV with a header row.
    Csv,
    /// JSON Lines.
    Jsonl,
    /// `DIR/<label>/*.png`.
    Images,
    /// `path,label` lines.
    FileList,
}

impl std::str::FromStr for DataFormat {
    type Err = TrainError;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "auto" => DataFormat::Auto,
            "idx" => DataFormat::Idx,
            "csv" => DataFormat::Csv,
            "jsonl" => DataFormat::Jsonl,
            "images" => DataFormat::Images,
            "file-list" => DataFormat::FileList,
            other => {
                return Err(TrainError::Invalid(format!(
                    "unknown data format {other:?}: expected auto, idx, csv, jsonl, images or file-list"
                )))
            }
        })
    }
}

/// Where the data is and how to read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    /// A local file or directory.
    pub path: PathBuf,
    /// Its format.
    #[serde(default)]
    pub format: DataFormat,
    /// Label column(s) or field(s) for CSV and JSONL.
    #[serde(default)]
    pub labels: Vec<String>,
    /// What the labels are.
    pub task: TaskName,
    /// CSV delimiter.
    #[serde(default = "comma")]
    pub delimiter: char,
}

fn comma() -> char {
    ','
}

/// [`Task`] as written in files and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskName {
    /// A classifier.
    Classify,
    /// A regressor.
    Regress,
}

impl TaskName {
    /// The readers' task.
    pub fn task(self) -> Task {
        match self {
            TaskName::Classify => Task::Classify,
            TaskName::Regress => Task::Regress,
        }
    }
}

impl std::str::FromStr for TaskName {
    type Err = TrainError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "classify" => Ok(TaskName::Classify),
            "regress" => Ok(TaskName::Regress),
            other => Err(TrainError::Invalid(format!(
                "unknown task {other:?}: expected classify or regress"
            ))),
        }
    }
}

/// What a path holds, when the format is not named.
fn recognize(path: &Path) -> Result<DataFormat> {
    if path.is_dir() {
        let entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| TrainError::data(path.display(), format!("cannot list: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        let named = |p: &PathBuf, start: &str| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(start))
        };
        if entries
            .iter()
            .any(|p| p.is_file() && named(p, "train-images"))
        {
            return Ok(DataFormat::Idx);
        }
        if entries.iter().any(|p| p.is_dir()) {
            return Ok(DataFormat::Images);
        }
        return Err(TrainError::data(
            path.display(),
            "a directory of neither IDX files (train-images-idx3-ubyte, ...) nor class folders \
             (DIR/<label>/*.png); name the format with --format",
        ));
    }
    if !path.exists() {
        return Err(TrainError::data(
            path.display(),
            "no such file or directory",
        ));
    }
    let name = path.to_string_lossy().to_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    Ok(if name.ends_with(".csv") || name.ends_with(".tsv") {
        DataFormat::Csv
    } else if name.ends_with(".jsonl") || name.ends_with(".json") || name.ends_with(".ndjson") {
        DataFormat::Jsonl
    } else if name.ends_with(".txt") || name.ends_with(".list") {
        DataFormat::FileList
    } else {
        return Err(TrainError::data(
            path.display(),
            "cannot tell the format from the name (expected .csv, .jsonl, .txt, optionally .gz); \
             name it with --format",
        ));
    })
}

impl DataSpec {
    /// Reads the data: the examples, and the test set when the data ships one (MNIST's t10k).
    pub fn load(&self) -> Result<(Dataset, Option<Dataset>)> {
        let format = match self.format {
            DataFormat::Auto => recognize(&self.path)?,
            named => named,
        };
        let task = self.task.task();
        let table_only = |what: &str| {
            if !self.labels.is_empty() {
                return Err(TrainError::Invalid(format!(
                    "{what} data carries its labels; --label is for CSV and JSONL"
                )));
            }
            if task == Task::Regress {
                return Err(TrainError::Invalid(format!(
                    "{what} data has class labels; regression needs CSV or JSONL with numeric labels"
                )));
            }
            Ok(())
        };
        let data = match format {
            DataFormat::Idx => {
                table_only("IDX")?;
                return read_idx_dir(&self.path);
            }
            DataFormat::Images => {
                table_only("image folder")?;
                read_image_folders(&self.path)?
            }
            DataFormat::FileList => {
                table_only("file list")?;
                read_file_list(&self.path)?
            }
            DataFormat::Csv => {
                let delimiter = u8::try_from(self.delimiter).map_err(|_| {
                    TrainError::Invalid(format!(
                        "the CSV delimiter must be one ASCII character, got {:?}",
                        self.delimiter
                    ))
                })?;
                read_csv(
                    &self.path,
                    &CsvOptions {
                        delimiter,
                        labels: self.labels.clone(),
                        task,
                    },
                )?
            }
            DataFormat::Jsonl => read_jsonl(
                &self.path,
                &JsonlOptions {
                    labels: self.labels.clone(),
                    task,
                },
            )?,
            DataFormat::Auto => unreachable!("recognized above"),
        };
        Ok((data, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &Path, task: TaskName) -> DataSpec {
        DataSpec {
            path: path.to_path_buf(),
            format: DataFormat::Auto,
            labels: vec![],
            task,
            delimiter: ',',
        }
    }

    #[test]
    fn formats_are_recognized_from_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("t.csv.gz");
        std::fs::write(&csv, b"").unwrap();
        assert_eq!(recognize(&csv).unwrap(), DataFormat::Csv);
        let jsonl = dir.path().join("t.jsonl");
        std::fs::write(&jsonl, b"").unwrap();
        assert_eq!(recognize(&jsonl).unwrap(), DataFormat::Jsonl);
        let classes = dir.path().join("classes");
        std::fs::create_dir_all(classes.join("cat")).unwrap();
        assert_eq!(recognize(&classes).unwrap(), DataFormat::Images);
        let idx = dir.path().join("idx");
        std::fs::create_dir_all(&idx).unwrap();
        std::fs::write(idx.join("train-images.idx3-ubyte"), b"").unwrap();
        assert_eq!(recognize(&idx).unwrap(), DataFormat::Idx);
    }

    #[test]
    fn unusable_sources_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("data.parquet");
        std::fs::write(&odd, b"").unwrap();
        let empty = dir.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let folders = dir.path().join("folders");
        std::fs::create_dir_all(folders.join("a")).unwrap();
        let mut labelled = spec(&folders, TaskName::Classify);
        labelled.labels = vec!["y".into()];
        let cases = [
            (
                "unknown extension",
                spec(&odd, TaskName::Classify),
                "--format",
            ),
            (
                "empty directory",
                spec(&empty, TaskName::Classify),
                "neither IDX",
            ),
            (
                "missing",
                spec(&dir.path().join("nope"), TaskName::Classify),
                "no such file",
            ),
            (
                "regress on images",
                spec(&folders, TaskName::Regress),
                "regression needs",
            ),
            ("label on images", labelled, "--label is for CSV"),
        ];
        for (name, s, expected) in cases {
            let err = s.load().expect_err(name).to_string();
            assert!(err.contains(expected), "{name}: {err}");
        }
    }
}
