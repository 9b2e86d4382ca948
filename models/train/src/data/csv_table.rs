//! CSV tables: a header row of column names, one example per row; the label column(s) are the
//! targets and every other column is a numeric feature.

use std::path::Path;

use super::{class_targets, open_maybe_gz, Dataset, Features, Targets, Task};
use crate::error::{Result, TrainError};

/// How a CSV file is read.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    /// Field delimiter.
    pub delimiter: u8,
    /// The target column(s); several for a multi-output regressor.
    pub labels: Vec<String>,
    /// What the labels are.
    pub task: Task,
}

/// Reads a CSV file (gzipped when it ends in `.gz`).
pub fn read_csv(path: &Path, options: &CsvOptions) -> Result<Dataset> {
    let source = path.display().to_string();
    let reader = open_maybe_gz(path)?;
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(options.delimiter)
        .flexible(true)
        .from_reader(reader);
    let header: Vec<String> = csv
        .headers()
        .map_err(|e| TrainError::data(&source, format!("header row: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if header.iter().all(String::is_empty) {
        return Err(TrainError::data(
            &source,
            "empty file (expected a header row of column names)",
        ));
    }
    if options.labels.is_empty() {
        return Err(TrainError::Invalid(format!(
            "{source}: name the label column (columns: {})",
            header.join(", ")
        )));
    }
    let mut label_at = Vec::with_capacity(options.labels.len());
    for l in &options.labels {
        let at = header.iter().position(|h| h == l).ok_or_else(|| {
            TrainError::Invalid(format!(
                "{source}: no column '{l}' (columns: {})",
                header.join(", ")
            ))
        })?;
        label_at.push(at);
    }
    if options.task == Task::Classify && label_at.len() != 1 {
        return Err(TrainError::Invalid(format!(
            "{source}: a classifier takes one label column, {} were named",
            label_at.len()
        )));
    }
    let feature_at: Vec<usize> = (0..header.len())
        .filter(|i| !label_at.contains(i))
        .collect();
    if feature_at.is_empty() {
        return Err(TrainError::data(
            &source,
            "no feature columns besides the label(s)",
        ));
    }
    let mut features = Vec::new();
    let mut label_text = Vec::new();
    let mut values = Vec::new();
    let mut row = csv::StringRecord::new();
    // Line numbers as an editor shows them: the header is line 1.
    let mut line = 1usize;
    loop {
        match csv.read_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(TrainError::data(&source, format!("line {}: {e}", line + 1))),
        }
        line = row.position().map_or(line + 1, |p| p.line() as usize);
        if row.len() == 1 && row[0].trim().is_empty() {
            continue;
        }
        if row.len() != header.len() {
            return Err(TrainError::data(
                &source,
                format!(
                    "line {line}: {} fields, the header has {} (ragged row)",
                    row.len(),
                    header.len()
                ),
            ));
        }
        for &i in &feature_at {
            features.push(number(&source, line, &header[i], &row[i])?);
        }
        match options.task {
            Task::Classify => label_text.push(row[label_at[0]].trim().to_string()),
            Task::Regress => {
                for &i in &label_at {
                    values.push(number(&source, line, &header[i], &row[i])?);
                }
            }
        }
    }
    let targets = match options.task {
        Task::Classify => class_targets(&label_text),
        Task::Regress => Targets::Values {
            data: values,
            names: options.labels.clone(),
        },
    };
    let dataset = Dataset {
        source,
        item_shape: vec![feature_at.len()],
        feature_names: feature_at.iter().map(|&i| header[i].clone()).collect(),
        features: Features::F32(features),
        targets,
    };
    dataset.check()?;
    Ok(dataset)
}

fn number(source: &str, line: usize, column: &str, cell: &str) -> Result<f32> {
    let v: f32 = cell.trim().parse().map_err(|_| {
        TrainError::data(
            source,
            format!("line {line}, column '{column}': expected a number, found {cell:?}"),
        )
    })?;
    if !v.is_finite() {
        return Err(TrainError::data(
            source,
            format!("line {line}, column '{column}': {cell:?} is not a finite number"),
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn read(text: &str, labels: &[&str], task: Task) -> Result<Dataset> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, text).unwrap();
        read_csv(
            &path,
            &CsvOptions {
                delimiter: b',',
                labels: labels.iter().map(|s| s.to_string()).collect(),
                task,
            },
        )
    }

    #[test]
    fn features_and_a_class_label() {
        let d = read(
            "a,kind,b\n1,cat,2\n3,dog,4\n5,cat,6\n",
            &["kind"],
            Task::Classify,
        )
        .unwrap();
        assert_eq!(d.feature_names, vec!["a", "b"]);
        assert_eq!(d.features, Features::F32(vec![1., 2., 3., 4., 5., 6.]));
        assert_eq!(
            d.targets,
            Targets::Classes {
                labels: vec![0, 1, 0],
                names: vec!["cat".into(), "dog".into()]
            }
        );
    }

    #[test]
    fn several_regression_outputs() {
        let d = read("x,y1,y2\n1,2,3\n4,5,6\n", &["y1", "y2"], Task::Regress).unwrap();
        assert_eq!(d.item_shape, vec![1]);
        assert_eq!(
            d.targets,
            Targets::Values {
                data: vec![2., 3., 5., 6.],
                names: vec!["y1".into(), "y2".into()]
            }
        );
    }

    #[test]
    fn bad_tables_say_what_is_wrong() {
        let cases: [(&str, &str, &[&str], Task, &str); 7] = [
            (
                "unknown column",
                "a,b\n1,2\n",
                &["c"],
                Task::Classify,
                "no column 'c' (columns: a, b)",
            ),
            (
                "ragged row",
                "a,b\n1,2\n3\n",
                &["b"],
                Task::Classify,
                "line 3: 1 fields, the header has 2 (ragged row)",
            ),
            (
                "text feature",
                "a,b\n1,2\nx,3\n",
                &["b"],
                Task::Classify,
                "line 3, column 'a': expected a number, found \"x\"",
            ),
            (
                "NaN feature",
                "a,b\nNaN,2\n",
                &["b"],
                Task::Classify,
                "column 'a': \"NaN\" is not a finite number",
            ),
            (
                "text target",
                "a,b\n1,high\n",
                &["b"],
                Task::Regress,
                "column 'b': expected a number, found \"high\"",
            ),
            ("no rows", "a,b\n", &["b"], Task::Classify, "no examples"),
            ("empty file", "", &["b"], Task::Classify, "empty file"),
        ];
        for (name, text, labels, task, want) in cases {
            let e = read(text, labels, task).unwrap_err().to_string();
            assert!(e.contains(want), "{name}: {e}");
        }
    }
}
