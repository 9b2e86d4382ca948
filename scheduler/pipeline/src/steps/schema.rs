//! validate: the TFX SchemaGen + ExampleValidator role. A schema (item shape, columns with
//! ranges, means and missing-value rates, the label set or target ranges) is inferred from the
//! first data a model is trained on and stored with it (`models/{name}/schema.json`, written by
//! register); later data is checked against it and every anomaly is listed.

use std::collections::BTreeSet;
use std::path::Path;

use litehouse_train::data::{DataFormat, Dataset, Features, Targets};
use serde::{Deserialize, Serialize};

use super::dataset::DatasetInfo;
use super::StepArgs;
use crate::error::{PipelineError, Result};

/// Columns are profiled one by one up to this many values per example; wider examples (images)
/// are profiled as one column of all their values.
const MAX_COLUMNS: usize = 64;

/// The schema file inside a schema artifact, and beside a registered model.
pub const SCHEMA_FILE: &str = "schema.json";
/// The anomalies found, inside the schema artifact.
pub const ANOMALIES_FILE: &str = "anomalies.json";

/// What data for a model looks like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    /// classify or regress.
    pub task: String,
    /// One example's shape.
    pub item_shape: Vec<usize>,
    /// Feature columns (or one column of every value, for wide examples).
    pub columns: Vec<Column>,
    /// Class names of a classifier.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Output columns of a regressor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Column>,
    /// Examples it was inferred from.
    pub examples: usize,
}

/// One column's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// Name (`features` for the one column of wide examples).
    pub name: String,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Mean.
    pub mean: f64,
    /// Fraction of cells that were empty or not numbers (CSV).
    pub missing: f64,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// Column, `labels`, `shape` or `data`.
    pub field: String,
    /// `missing_column`, `new_column`, `out_of_range`, `drift`, `missing_values`,
    /// `new_label`, `missing_label`, `shape`, `task`, `unreadable`.
    pub kind: String,
    /// What was expected and what was found.
    pub message: String,
}

/// How far data may stray from the schema.
#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    /// Slack beyond [min, max], as a fraction of the range.
    pub range: f64,
    /// Fraction of a column's values allowed outside the widened range.
    pub out_of_range: f64,
}

/// Profiles a dataset; `missing` holds per-column missing rates from a raw scan (CSV).
pub fn infer(data: &Dataset, missing: &[(String, f64)]) -> Schema {
    let v = data.volume();
    let n = data.len();
    let value = |i: usize, j: usize| -> f64 {
        match &data.features {
            Features::U8 { data, scale } => f64::from(data[i * v + j]) * f64::from(*scale),
            Features::F32(d) => f64::from(d[i * v + j]),
        }
    };
    let missing_of = |name: &str| missing.iter().find(|(c, _)| c == name).map_or(0.0, |m| m.1);
    let columns = if v <= MAX_COLUMNS {
        (0..v)
            .map(|j| {
                let name = data
                    .feature_names
                    .get(j)
                    .cloned()
                    .unwrap_or_else(|| format!("feature_{j}"));
                let mut c = profile((0..n).map(|i| value(i, j)), &name);
                c.missing = missing_of(&name);
                c
            })
            .collect()
    } else {
        vec![profile(
            (0..n)
                .flat_map(|i| (0..v).map(move |j| (i, j)))
                .map(|(i, j)| value(i, j)),
            "features",
        )]
    };
    let (task, labels, targets) = match &data.targets {
        Targets::Classes { names, labels } => {
            let seen: BTreeSet<u32> = labels.iter().copied().collect();
            let present = seen
                .iter()
                .filter_map(|&l| names.get(l as usize).cloned())
                .collect();
            ("classify", present, vec![])
        }
        Targets::Values { data: d, names } => {
            let k = names.len().max(1);
            let cols = names
                .iter()
                .enumerate()
                .map(|(j, name)| {
                    let mut c = profile((0..n).map(|i| f64::from(d[i * k + j])), name);
                    c.missing = missing_of(name);
                    c
                })
                .collect();
            ("regress", vec![], cols)
        }
    };
    Schema {
        task: task.into(),
        item_shape: data.item_shape.clone(),
        columns,
        labels,
        targets,
        examples: n,
    }
}

fn profile(values: impl Iterator<Item = f64>, name: &str) -> Column {
    let (mut min, mut max, mut sum, mut n) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0usize);
    for x in values {
        min = min.min(x);
        max = max.max(x);
        sum += x;
        n += 1;
    }
    Column {
        name: name.into(),
        min: if n == 0 { 0.0 } else { min },
        max: if n == 0 { 0.0 } else { max },
        mean: if n == 0 { 0.0 } else { sum / n as f64 },
        missing: 0.0,
    }
}

/// Every way `found` departs from `schema`.
pub fn compare(schema: &Schema, found: &Schema, data: &Dataset, tol: Tolerance) -> Vec<Anomaly> {
    let mut out = Vec::new();
    let mut add = |field: &str, kind: &str, message: String| {
        out.push(Anomaly {
            field: field.into(),
            kind: kind.into(),
            message,
        })
    };
    if schema.task != found.task {
        add(
            "data",
            "task",
            format!("schema is for {}, the data is {}", schema.task, found.task),
        );
        return out;
    }
    if schema.item_shape != found.item_shape {
        add(
            "shape",
            "shape",
            format!(
                "expected examples of shape {:?}, found {:?}",
                schema.item_shape, found.item_shape
            ),
        );
        return out;
    }
    let names = |cols: &[Column]| cols.iter().map(|c| c.name.clone()).collect::<BTreeSet<_>>();
    for missing in names(&schema.columns).difference(&names(&found.columns)) {
        add(
            missing,
            "missing_column",
            format!("column '{missing}' of the schema is not in the data"),
        );
    }
    for new in names(&found.columns).difference(&names(&schema.columns)) {
        add(
            new,
            "new_column",
            format!("column '{new}' is not in the schema"),
        );
    }
    let v = data.volume();
    for (j, col) in found.columns.iter().enumerate() {
        let Some(want) = schema.columns.iter().find(|c| c.name == col.name) else {
            continue;
        };
        let values: Box<dyn Iterator<Item = f64>> = if found.columns.len() == 1 && v > MAX_COLUMNS {
            Box::new((0..data.len() * v).map(|k| value_at(data, k)))
        } else {
            Box::new((0..data.len()).map(move |i| value_at(data, i * v + j)))
        };
        check_column(want, col, values, tol, &mut add);
    }
    if let Targets::Values { data: d, names: tn } = &data.targets {
        let k = tn.len().max(1);
        for (j, col) in found.targets.iter().enumerate() {
            let Some(want) = schema.targets.iter().find(|c| c.name == col.name) else {
                add(
                    &col.name,
                    "new_column",
                    format!("target '{}' is not in the schema", col.name),
                );
                continue;
            };
            let values = (0..data.len()).map(|i| f64::from(d[i * k + j]));
            check_column(want, col, values, tol, &mut add);
        }
    }
    let (want, got): (BTreeSet<&String>, BTreeSet<&String>) = (
        schema.labels.iter().collect(),
        found.labels.iter().collect(),
    );
    let new: Vec<&str> = got.difference(&want).map(|s| s.as_str()).collect();
    if !new.is_empty() {
        add(
            "labels",
            "new_label",
            format!("labels not in the schema: {}", new.join(", ")),
        );
    }
    let gone: Vec<&str> = want.difference(&got).map(|s| s.as_str()).collect();
    if !gone.is_empty() {
        add(
            "labels",
            "missing_label",
            format!(
                "labels of the schema absent from the data: {}",
                gone.join(", ")
            ),
        );
    }
    out
}

fn value_at(data: &Dataset, k: usize) -> f64 {
    match &data.features {
        Features::U8 { data, scale } => f64::from(data[k]) * f64::from(*scale),
        Features::F32(d) => f64::from(d[k]),
    }
}

fn check_column(
    want: &Column,
    col: &Column,
    values: impl Iterator<Item = f64>,
    tol: Tolerance,
    add: &mut impl FnMut(&str, &str, String),
) {
    let span = (want.max - want.min).abs().max(f64::EPSILON);
    let (lo, hi) = (want.min - tol.range * span, want.max + tol.range * span);
    let (mut outside, mut total) = (0usize, 0usize);
    for x in values {
        total += 1;
        if x < lo || x > hi {
            outside += 1;
        }
    }
    let frac = outside as f64 / total.max(1) as f64;
    if frac > tol.out_of_range {
        add(
            &col.name,
            "out_of_range",
            format!(
                "column '{}': {:.1}% of values outside [{lo:.4}, {hi:.4}] (schema range \
                 [{:.4}, {:.4}], found [{:.4}, {:.4}]; allowed {:.1}%)",
                col.name,
                100.0 * frac,
                want.min,
                want.max,
                col.min,
                col.max,
                100.0 * tol.out_of_range
            ),
        );
    }
    let drift = (col.mean - want.mean).abs();
    if drift > tol.range * span {
        add(
            &col.name,
            "drift",
            format!(
                "column '{}': mean {:.4}, schema mean {:.4} (moved {:.1}% of the range; allowed {:.1}%)",
                col.name,
                col.mean,
                want.mean,
                100.0 * drift / span,
                100.0 * tol.range
            ),
        );
    }
    if col.missing > want.missing + 1e-9 {
        add(
            &col.name,
            "missing_values",
            format!(
                "column '{}': {:.1}% missing, schema allows {:.1}%",
                col.name,
                100.0 * col.missing,
                100.0 * want.missing
            ),
        );
    }
}

/// Per-column rates of empty or non-numeric cells in a CSV file (the reader refuses them, so
/// they are counted from the raw text first).
fn csv_missing(path: &Path, delimiter: char) -> Vec<(String, f64)> {
    let Ok(file) = std::fs::File::open(path) else {
        return vec![];
    };
    let reader: Box<dyn std::io::Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut r = csv::ReaderBuilder::new()
        .delimiter(u8::try_from(delimiter).unwrap_or(b','))
        .flexible(true)
        .from_reader(reader);
    let Ok(header) = r.headers().cloned() else {
        return vec![];
    };
    let mut missing = vec![0usize; header.len()];
    let mut rows = 0usize;
    for rec in r.records().map_while(std::result::Result::ok) {
        rows += 1;
        for (j, m) in missing.iter_mut().enumerate() {
            let cell = rec.get(j).unwrap_or("").trim();
            let numeric = cell.parse::<f64>().is_ok_and(f64::is_finite);
            if cell.is_empty()
                || (!numeric && matches!(cell, "NA" | "NaN" | "nan" | "null" | "None"))
            {
                *m += 1;
            }
        }
    }
    header
        .iter()
        .zip(missing)
        .map(|(h, m)| (h.to_string(), m as f64 / rows.max(1) as f64))
        .collect()
}

/// validate: checks the dataset against `models/{name}/schema.json`, or infers the schema when
/// the model has none. Writes the schema and the anomalies; fails past `max_anomalies`.
pub async fn validate(a: &StepArgs) -> Result<Vec<String>> {
    let dir = a.required_artifact("dataset")?;
    let info = DatasetInfo::read(&dir)?;
    let name = a.text("name");
    let tol = Tolerance {
        range: a.num("range_tolerance")?,
        out_of_range: a.num("max_out_of_range")?,
    };
    let max_anomalies = a.count("max_anomalies")?;
    let registry = a.registry().await?;
    let stored = registry
        .store()
        .get_opt(&schema_key(&name))
        .await?
        .map(|o| serde_json::from_slice::<Schema>(&o.bytes))
        .transpose()
        .map_err(|e| PipelineError::step("validate", format!("stored schema of '{name}': {e}")))?;
    let spec = info.spec(&dir);
    let csv = info.format == DataFormat::Csv
        || (info.format == DataFormat::Auto && info.path.to_lowercase().contains(".csv"));
    let missing = if csv {
        csv_missing(&spec.path, info.delimiter)
    } else {
        vec![]
    };
    let loaded = tokio::task::spawn_blocking(move || spec.load())
        .await
        .map_err(|e| PipelineError::step("validate", e))?;
    let out = a.out("schema").to_path_buf();
    let mut log = Vec::new();
    let (schema, anomalies) = match (loaded, stored) {
        (Ok((data, _)), None) => {
            let s = infer(&data, &missing);
            log.push(format!(
                "no schema for '{name}' yet: inferred one from {} examples ({} columns{})",
                s.examples,
                s.columns.len(),
                if s.labels.is_empty() {
                    String::new()
                } else {
                    format!(", {} labels", s.labels.len())
                }
            ));
            (s, vec![])
        }
        (Ok((data, _)), Some(stored)) => {
            let found = infer(&data, &missing);
            let anomalies = compare(&stored, &found, &data, tol);
            log.push(format!(
                "checked {} examples against the schema of '{name}': {} anomalies",
                found.examples,
                anomalies.len()
            ));
            (stored, anomalies)
        }
        (Err(e), stored) => {
            let mut anomalies = vec![Anomaly {
                field: "data".into(),
                kind: "unreadable".into(),
                message: e.to_string(),
            }];
            if let Some(s) = &stored {
                for (col, rate) in &missing {
                    let allowed = s
                        .columns
                        .iter()
                        .chain(&s.targets)
                        .find(|c| &c.name == col)
                        .map_or(0.0, |c| c.missing);
                    if *rate > allowed + 1e-9 {
                        anomalies.push(Anomaly {
                            field: col.clone(),
                            kind: "missing_values".into(),
                            message: format!(
                                "column '{col}': {:.1}% missing, schema allows {:.1}%",
                                100.0 * rate,
                                100.0 * allowed
                            ),
                        });
                    }
                }
            }
            let Some(s) = stored else {
                return Err(PipelineError::step(
                    "validate",
                    format!("cannot infer a schema: {e}"),
                ));
            };
            (s, anomalies)
        }
    };
    super::write_json(&out.join(SCHEMA_FILE), &schema)?;
    super::write_json(&out.join(ANOMALIES_FILE), &anomalies)?;
    a.write_param("anomalies", &(anomalies.len() as u64).into())?;
    for an in &anomalies {
        log.push(format!(
            "anomaly: {} ({}): {}",
            an.field, an.kind, an.message
        ));
    }
    // Unreadable data can never be trained on, whatever the threshold.
    let unreadable = anomalies.iter().any(|a| a.kind == "unreadable");
    if anomalies.len() > max_anomalies || unreadable {
        return Err(PipelineError::step(
            "validate",
            format!(
                "{} anomalies (allowed {max_anomalies}): {}",
                anomalies.len(),
                anomalies
                    .iter()
                    .map(|a| a.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ));
    }
    Ok(log)
}

/// Where a model's schema lives in the store.
pub fn schema_key(model: &str) -> String {
    format!("models/{model}/{SCHEMA_FILE}")
}
