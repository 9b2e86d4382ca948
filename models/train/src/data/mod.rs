//! Training data: examples with a fixed item shape and their targets, read from IDX (MNIST),
//! CSV, JSON Lines or image folders, and split into train / validation / test with a seed.
//!
//! Pixels stay `u8` with a scale (MNIST as `f32` alone would be 188 MB); the trainer
//! normalises one minibatch at a time.

mod csv_table;
mod idx;
mod images;
mod jsonl;
mod source;
mod split;

pub use csv_table::{read_csv, CsvOptions};
pub use idx::read_idx_dir;
pub use images::{read_file_list, read_image_folders};
pub use jsonl::{read_jsonl, JsonlOptions};
pub use source::{DataFormat, DataSpec, TaskName};
pub use split::{split, SplitOptions, Splits};

use crate::error::{Result, TrainError};

/// Feature values of every example, row-major, `len × item volume`.
#[derive(Debug, Clone, PartialEq)]
pub enum Features {
    /// Raw bytes (pixels) and the factor that makes them model inputs (`1/255`).
    U8 {
        /// The bytes.
        data: Vec<u8>,
        /// Input value = byte × scale.
        scale: f32,
    },
    /// Real values.
    F32(Vec<f32>),
}

/// What the model learns to predict.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// Class indices into `names`.
    Classes {
        /// One per example.
        labels: Vec<u32>,
        /// Class names, in index order.
        names: Vec<String>,
    },
    /// Real outputs, row-major, `len × names.len()`.
    Values {
        /// The values.
        data: Vec<f32>,
        /// Output names.
        names: Vec<String>,
    },
}

impl Targets {
    /// Examples the targets describe.
    pub fn len(&self) -> usize {
        match self {
            Targets::Classes { labels, .. } => labels.len(),
            Targets::Values { data, names } => data.len() / names.len().max(1),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Examples of one item shape with their targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Where it came from (for messages and lineage).
    pub source: String,
    /// Shape of one example, without the batch (`[28, 28, 1]`, `[3]`).
    pub item_shape: Vec<usize>,
    /// Feature names when the data has them (CSV columns), else empty.
    pub feature_names: Vec<String>,
    /// The values.
    pub features: Features,
    /// The targets.
    pub targets: Targets,
}

/// How a label column is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Labels are class names (or numbers used as names).
    Classify,
    /// Labels are real values, one or more outputs.
    Regress,
}

impl Dataset {
    /// Values per example.
    pub fn volume(&self) -> usize {
        self.item_shape.iter().product()
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether it holds no example.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Example `i`'s features as model inputs (bytes scaled).
    pub fn example(&self, i: usize, out: &mut Vec<f32>) {
        let v = self.volume();
        match &self.features {
            Features::U8 { data, scale } => out.extend(
                data[i * v..(i + 1) * v]
                    .iter()
                    .map(|&b| f32::from(b) * scale),
            ),
            Features::F32(data) => out.extend_from_slice(&data[i * v..(i + 1) * v]),
        }
    }

    /// The examples at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let v = self.volume();
        let features = match &self.features {
            Features::U8 { data, scale } => Features::U8 {
                data: gather(data, indices, v),
                scale: *scale,
            },
            Features::F32(data) => Features::F32(gather(data, indices, v)),
        };
        let targets = match &self.targets {
            Targets::Classes { labels, names } => Targets::Classes {
                labels: indices.iter().map(|&i| labels[i]).collect(),
                names: names.clone(),
            },
            Targets::Values { data, names } => Targets::Values {
                data: gather(data, indices, names.len()),
                names: names.clone(),
            },
        };
        Dataset {
            source: self.source.clone(),
            item_shape: self.item_shape.clone(),
            feature_names: self.feature_names.clone(),
            features,
            targets,
        }
    }

    /// Checks what every reader promises: the features fill whole examples and hold no NaN or
    /// infinity, and there is at least one example.
    pub fn check(&self) -> Result<()> {
        let (v, n) = (self.volume(), self.len());
        if n == 0 {
            return Err(TrainError::data(&self.source, "no examples"));
        }
        let values = match &self.features {
            Features::U8 { data, .. } => data.len(),
            Features::F32(data) => {
                if let Some(at) = data.iter().position(|x| !x.is_finite()) {
                    return Err(TrainError::data(
                        &self.source,
                        format!(
                            "example {} feature {} is {} (features must be finite numbers)",
                            at / v.max(1),
                            at % v.max(1),
                            data[at]
                        ),
                    ));
                }
                data.len()
            }
        };
        if values != n * v {
            return Err(TrainError::data(
                &self.source,
                format!("{values} feature values for {n} examples of {v}"),
            ));
        }
        if let Targets::Values { data, names } = &self.targets {
            if let Some(at) = data.iter().position(|x| !x.is_finite()) {
                return Err(TrainError::data(
                    &self.source,
                    format!(
                        "example {} target {} is {} (targets must be finite numbers)",
                        at / names.len().max(1),
                        names
                            .get(at % names.len().max(1))
                            .map_or("?", String::as_str),
                        data[at]
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn gather<T: Copy>(data: &[T], indices: &[usize], width: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(indices.len() * width);
    for &i in indices {
        out.extend_from_slice(&data[i * width..(i + 1) * width]);
    }
    out
}

/// Class names from label strings: numeric labels in numeric order (`"2" < "10"`), others
/// in text order, so the same labels always get the same indices.
pub fn class_names<'a>(labels: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut names: Vec<String> = labels.into_iter().map(str::to_string).collect();
    names.sort();
    names.dedup();
    if names.iter().all(|n| n.parse::<f64>().is_ok()) {
        names.sort_by(|a, b| {
            let (x, y) = (
                a.parse::<f64>().unwrap_or(0.0),
                b.parse::<f64>().unwrap_or(0.0),
            );
            x.total_cmp(&y)
        });
    }
    names
}

/// Class targets from one label string per example, indexed by [`class_names`].
pub(crate) fn class_targets(label_text: &[String]) -> Targets {
    let names = class_names(label_text.iter().map(String::as_str));
    let index: std::collections::HashMap<&str, u32> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i as u32))
        .collect();
    // Every label is in `names`, which was built from them.
    let labels = label_text
        .iter()
        .map(|l| index.get(l.as_str()).copied().unwrap_or(0))
        .collect();
    Targets::Classes { labels, names }
}

/// Opens a data file, gunzipping it when it starts with gzip's magic bytes (whatever its name).
pub(crate) fn open_maybe_gz(path: &std::path::Path) -> Result<Box<dyn std::io::BufRead>> {
    use std::io::BufRead as _;
    let bad = |e: std::io::Error| TrainError::data(path.display(), e.to_string());
    let file = std::fs::File::open(path).map_err(bad)?;
    let mut reader = std::io::BufReader::new(file);
    let gzip = reader.fill_buf().map_err(bad)?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(std::io::BufReader::new(flate2::read::MultiGzDecoder::new(
            reader,
        )))
    } else {
        Box::new(reader)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn numeric_class_names_sort_as_numbers() {
        assert_eq!(class_names(["10", "2", "1", "2"]), vec!["1", "2", "10"]);
        assert_eq!(class_names(["dog", "cat", "dog"]), vec!["cat", "dog"]);
    }

    #[test]
    fn check_names_the_first_non_finite_feature() {
        let d = Dataset {
            source: "t.csv".into(),
            item_shape: vec![2],
            feature_names: vec![],
            features: Features::F32(vec![1.0, 2.0, 3.0, f32::NAN]),
            targets: Targets::Classes {
                labels: vec![0, 1],
                names: vec!["a".into(), "b".into()],
            },
        };
        let e = d.check().unwrap_err().to_string();
        assert_eq!(
            e,
            "t.csv: example 1 feature 1 is NaN (features must be finite numbers)"
        );
    }
}
