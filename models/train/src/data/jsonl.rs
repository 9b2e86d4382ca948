//! JSON Lines: one object per line, as Vertex instances are written, plus a label field. The
//! features are either one field holding a (nested) number array, `{"image": [[...]], "label": 3}`,
//! or every other field as one number each, `{"chins": 5, "situps": 162, "weight": 191}`.

use std::io::BufRead;
use std::path::Path;

use indexmap::IndexMap;
use serde_json::Value as Json;

use super::{class_targets, open_maybe_gz, Dataset, Features, Targets, Task};
use crate::error::{Result, TrainError};

/// How a JSONL file is read.
#[derive(Debug, Clone)]
pub struct JsonlOptions {
    /// The target field(s); several for a multi-output regressor.
    pub labels: Vec<String>,
    /// What the labels are.
    pub task: Task,
}

/// Reads a JSONL file (gzipped when it ends in `.gz`).
pub fn read_jsonl(path: &Path, options: &JsonlOptions) -> Result<Dataset> {
    let source = path.display().to_string();
    if options.labels.is_empty() {
        return Err(TrainError::Invalid(format!(
            "{source}: name the label field"
        )));
    }
    let reader = open_maybe_gz(path)?;
    let mut layout: Option<Layout> = None;
    let mut features = Vec::new();
    let mut label_text = Vec::new();
    let mut values = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let n = i + 1;
        let at = |m: String| TrainError::data(&source, format!("line {n}: {m}"));
        let line = line.map_err(|e| at(format!("cannot read: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let mut object: IndexMap<String, Json> =
            serde_json::from_str(&line).map_err(|e| at(format!("expected a JSON object, {e}")))?;
        let mut labels = Vec::with_capacity(options.labels.len());
        for l in &options.labels {
            let v = object.shift_remove(l).ok_or_else(|| {
                at(format!(
                    "no field '{l}' (fields: {})",
                    object.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?;
            labels.push(v);
        }
        let layout = match &layout {
            Some(l) => l,
            None => layout.insert(Layout::of(&object).map_err(at)?),
        };
        layout.features(&object, &mut features).map_err(at)?;
        match options.task {
            Task::Classify => {
                let [label] = labels.as_slice() else {
                    return Err(TrainError::Invalid(format!(
                        "{source}: a classifier takes one label field, {} were named",
                        labels.len()
                    )));
                };
                label_text.push(match label {
                    Json::String(s) => s.clone(),
                    Json::Number(x) => x.to_string(),
                    Json::Bool(b) => b.to_string(),
                    other => return Err(at(format!("label {other} is not a class name"))),
                });
            }
            Task::Regress => {
                for (name, v) in options.labels.iter().zip(&labels) {
                    values.push(finite(v).ok_or_else(|| {
                        at(format!(
                            "target '{name}': expected a finite number, found {v}"
                        ))
                    })?);
                }
            }
        }
    }
    let layout = layout.ok_or_else(|| TrainError::data(&source, "no examples"))?;
    let targets = match options.task {
        Task::Classify => class_targets(&label_text),
        Task::Regress => Targets::Values {
            data: values,
            names: options.labels.clone(),
        },
    };
    let dataset = Dataset {
        source,
        item_shape: layout.shape.clone(),
        feature_names: layout.names.clone(),
        features: Features::F32(features),
        targets,
    };
    dataset.check()?;
    Ok(dataset)
}

/// Where a line's features are, fixed by the first line.
struct Layout {
    /// One array field (its name), or `None` for one number per field.
    array: Option<String>,
    /// Field names for per-field features.
    names: Vec<String>,
    shape: Vec<usize>,
}

impl Layout {
    fn of(object: &IndexMap<String, Json>) -> std::result::Result<Layout, String> {
        match object.iter().collect::<Vec<_>>().as_slice() {
            [(name, v @ Json::Array(_))] => {
                let (values, shape) = litehouse_models::instances::flatten_numbers(v)
                    .map_err(|e| format!("field '{name}': {e}"))?;
                if values.is_empty() {
                    return Err(format!("field '{name}' is an empty array"));
                }
                Ok(Layout {
                    array: Some(name.to_string()),
                    names: Vec::new(),
                    shape,
                })
            }
            [] => Err("no feature fields besides the label".into()),
            fields => Ok(Layout {
                array: None,
                names: fields.iter().map(|(k, _)| k.to_string()).collect(),
                shape: vec![fields.len()],
            }),
        }
    }

    fn features(
        &self,
        object: &IndexMap<String, Json>,
        out: &mut Vec<f32>,
    ) -> std::result::Result<(), String> {
        match &self.array {
            Some(name) => {
                let v = object
                    .get(name)
                    .ok_or_else(|| format!("no field '{name}' (the first line had it)"))?;
                let (values, shape) = litehouse_models::instances::flatten_numbers(v)
                    .map_err(|e| format!("field '{name}': {e}"))?;
                if shape != self.shape {
                    return Err(format!(
                        "field '{name}' has shape {shape:?}, the first line's has {:?}",
                        self.shape
                    ));
                }
                out.extend(values.iter().map(|&x| x as f32));
            }
            None => {
                if object.len() != self.names.len() {
                    return Err(format!(
                        "{} feature fields, the first line had {} ({})",
                        object.len(),
                        self.names.len(),
                        self.names.join(", ")
                    ));
                }
                for name in &self.names {
                    let v = object
                        .get(name)
                        .ok_or_else(|| format!("no field '{name}' (the first line had it)"))?;
                    out.push(finite(v).ok_or_else(|| {
                        format!("field '{name}': expected a finite number, found {v}")
                    })?);
                }
            }
        }
        Ok(())
    }
}

fn finite(v: &Json) -> Option<f32> {
    v.as_f64().map(|x| x as f32).filter(|x| x.is_finite())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn read(text: &str, labels: &[&str], task: Task) -> Result<Dataset> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        std::fs::write(&path, text).unwrap();
        read_jsonl(
            &path,
            &JsonlOptions {
                labels: labels.iter().map(|s| s.to_string()).collect(),
                task,
            },
        )
    }

    #[test]
    fn an_array_field_and_a_label() {
        let d = read(
            "{\"x\": [[1, 2], [3, 4]], \"label\": 7}\n\n{\"label\": 3, \"x\": [[5, 6], [7, 8]]}\n",
            &["label"],
            Task::Classify,
        )
        .unwrap();
        assert_eq!(d.item_shape, vec![2, 2]);
        assert_eq!(d.len(), 2);
        let Targets::Classes { labels, names } = d.targets else {
            panic!()
        };
        assert_eq!((labels, names), (vec![1, 0], vec!["3".into(), "7".into()]));
    }

    #[test]
    fn one_number_per_field_in_the_first_lines_order() {
        let d = read(
            "{\"b\": 1, \"a\": 2, \"y\": 0.5}\n{\"a\": 4, \"b\": 3, \"y\": 1.5}\n",
            &["y"],
            Task::Regress,
        )
        .unwrap();
        assert_eq!(d.feature_names, vec!["b", "a"]);
        assert_eq!(d.features, Features::F32(vec![1., 2., 3., 4.]));
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        let cases: [(&str, &str, Task, &str); 6] = [
            (
                "not json",
                "{\"x\": [1], \"y\": 1}\nnope\n",
                Task::Classify,
                "line 2: expected a JSON object",
            ),
            (
                "no label",
                "{\"x\": [1]}\n",
                Task::Classify,
                "line 1: no field 'y' (fields: x)",
            ),
            (
                "ragged",
                "{\"x\": [1, 2], \"y\": 1}\n{\"x\": [1], \"y\": 1}\n",
                Task::Classify,
                "line 2: field 'x' has shape [1], the first line's has [2]",
            ),
            (
                "text feature",
                "{\"a\": 1, \"b\": 2, \"y\": 1}\n{\"a\": \"x\", \"b\": 2, \"y\": 1}\n",
                Task::Classify,
                "line 2: field 'a': expected a finite number",
            ),
            (
                "text target",
                "{\"a\": 1, \"y\": \"big\"}\n",
                Task::Regress,
                "target 'y': expected a finite number, found \"big\"",
            ),
            ("empty", "\n", Task::Classify, "no examples"),
        ];
        for (name, text, task, want) in cases {
            let e = read(text, &["y"], task).unwrap_err().to_string();
            assert!(e.contains(want), "{name}: {e}");
        }
    }
}
