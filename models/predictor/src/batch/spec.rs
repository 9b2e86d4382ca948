//! What a batch job is: a model, input files, how their records become instances, and where
//! the predictions go. Built from command-line flags or read from a job file (JSON or TOML,
//! the same field names as Vertex AI's `BatchPredictionJob` where they exist).

use serde::{Deserialize, Serialize};

use super::BatchError;

/// How input files hold instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// One JSON instance per line.
    Jsonl,
    /// A header row of field names, then one instance per row.
    Csv,
    /// One file URI per line (local path or `s3://`); each file becomes `{"b64": ...}`.
    FileList,
}

impl Format {
    /// The name used in flags and job files.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::FileList => "file-list",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "jsonl" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            "file-list" => Ok(Format::FileList),
            other => Err(format!(
                "unknown format '{other}' (expected jsonl, csv or file-list)"
            )),
        }
    }
}

/// Whether instances reach the model as JSON objects or arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceType {
    /// `{"field": value, ...}`.
    Object,
    /// `[value, ...]`.
    Array,
}

impl std::str::FromStr for InstanceType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "object" => Ok(InstanceType::Object),
            "array" => Ok(InstanceType::Array),
            other => Err(format!(
                "unknown instance type '{other}' (expected object or array)"
            )),
        }
    }
}

/// Vertex AI's `instanceConfig`: how a record becomes the instance sent to the model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstanceConfig {
    /// `object` or `array`; default: csv rows are arrays, jsonl lines stay as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<InstanceType>,
    /// A field whose value is written as the output's `key` and left out of the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_field: Option<String>,
    /// Only these fields, in this order, make up the instance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_fields: Vec<String>,
    /// These fields are left out of the instance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_fields: Vec<String>,
}

/// Default instances per model call.
pub const DEFAULT_BATCH_SIZE: usize = 64;

/// Default records per shard: one output file and one commit each.
pub const DEFAULT_SHARD_SIZE: usize = 10_000;

/// A batch prediction job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobSpec {
    /// A `.tflite` path (with an optional `NAME.json` config beside it), `name@version` or
    /// `name@alias` in the registry, or `endpoint:ID` (its deployed model with the most traffic).
    pub model: String,
    /// Registry store for `name@...` and `endpoint:` models (directory or `s3://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// Input files or prefixes (directories), local or `s3://`; `.gz` files are decompressed.
    pub inputs: Vec<String>,
    /// How the inputs hold instances.
    pub format: Format,
    /// How records become instances.
    #[serde(default)]
    pub instance_config: InstanceConfig,
    /// Where the `prediction-<model>-<time>/` directory is written (directory or `s3://`).
    pub output: String,
    /// Records per shard (one output file each).
    #[serde(default = "default_shard_size")]
    pub shard_size: usize,
    /// Instances per model call.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Worker threads; 0 means one per CPU.
    #[serde(default)]
    pub threads: usize,
}

fn default_shard_size() -> usize {
    DEFAULT_SHARD_SIZE
}

fn default_batch_size() -> usize {
    DEFAULT_BATCH_SIZE
}

impl JobSpec {
    /// Reads a job file: TOML when the name ends in `.toml`, JSON otherwise.
    pub fn parse(name: &str, text: &str) -> Result<Self, BatchError> {
        let spec: JobSpec = if name.ends_with(".toml") {
            toml::from_str(text).map_err(|e| BatchError::Spec(format!("{name}: {e}")))?
        } else {
            serde_json::from_str(text).map_err(|e| {
                BatchError::Spec(format!(
                    "{name}: line {} column {}: {e}",
                    e.line(),
                    e.column()
                ))
            })?
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks what serde cannot: one error naming the first problem.
    pub fn validate(&self) -> Result<(), BatchError> {
        let bad = |m: String| Err(BatchError::Spec(m));
        if self.model.trim().is_empty() {
            return bad(
                "model is empty; give a .tflite path, name@version, name@alias or endpoint:ID"
                    .into(),
            );
        }
        if self.inputs.is_empty() || self.inputs.iter().any(|i| i.trim().is_empty()) {
            return bad("inputs: give at least one input file or prefix (and no empty one)".into());
        }
        if self.output.trim().is_empty() {
            return bad("output is empty; give a directory or s3://bucket/prefix".into());
        }
        if self.shard_size == 0 || self.batch_size == 0 {
            return bad(format!(
                "shardSize and batchSize must be at least 1 (got {} and {})",
                self.shard_size, self.batch_size
            ));
        }
        let ic = &self.instance_config;
        if !ic.included_fields.is_empty() && !ic.excluded_fields.is_empty() {
            return bad(
                "instanceConfig: includedFields and excludedFields cannot both be set".into(),
            );
        }
        if self.format == Format::FileList
            && (ic.key_field.is_some()
                || ic.instance_type.is_some()
                || !ic.included_fields.is_empty()
                || !ic.excluded_fields.is_empty())
        {
            return bad("instanceConfig does not apply to file-list inputs (each file becomes {\"b64\": ...})".into());
        }
        if let Some(key) = &ic.key_field {
            if ic.included_fields.contains(key) || ic.excluded_fields.contains(key) {
                return bad(format!(
                    "instanceConfig: keyField '{key}' is already left out of the instance; do not list it in includedFields or excludedFields"
                ));
            }
        }
        Ok(())
    }

    /// Worker threads to use.
    pub fn worker_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn spec() -> JobSpec {
        JobSpec {
            model: "m.tflite".into(),
            store: None,
            inputs: vec!["in.jsonl".into()],
            format: Format::Jsonl,
            instance_config: InstanceConfig::default(),
            output: "out".into(),
            shard_size: 10,
            batch_size: 4,
            threads: 1,
        }
    }

    #[test]
    fn job_files_in_json_and_toml_mean_the_same() {
        let json = r#"{"model": "m.tflite", "inputs": ["a.csv"], "format": "csv", "output": "o",
            "instanceConfig": {"instanceType": "object", "keyField": "id"}}"#;
        let toml = "model = \"m.tflite\"\ninputs = [\"a.csv\"]\nformat = \"csv\"\noutput = \"o\"\n\
            [instanceConfig]\ninstanceType = \"object\"\nkeyField = \"id\"\n";
        let a = JobSpec::parse("job.json", json).unwrap();
        let b = JobSpec::parse("job.toml", toml).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.shard_size, DEFAULT_SHARD_SIZE);
        assert_eq!(a.instance_config.key_field.as_deref(), Some("id"));
    }

    type Edit = Box<dyn Fn(&mut JobSpec)>;

    #[test]
    fn bad_specs_name_the_problem() {
        let cases: Vec<(&str, Edit, &str)> = vec![
            ("no inputs", Box::new(|s| s.inputs.clear()), "inputs"),
            ("zero shard", Box::new(|s| s.shard_size = 0), "shardSize"),
            (
                "both field lists",
                Box::new(|s| {
                    s.instance_config.included_fields = vec!["a".into()];
                    s.instance_config.excluded_fields = vec!["b".into()];
                }),
                "cannot both",
            ),
            (
                "config on file-list",
                Box::new(|s| {
                    s.format = Format::FileList;
                    s.instance_config.key_field = Some("k".into());
                }),
                "file-list",
            ),
            (
                "key field listed",
                Box::new(|s| {
                    s.instance_config.key_field = Some("k".into());
                    s.instance_config.excluded_fields = vec!["k".into()];
                }),
                "keyField 'k'",
            ),
        ];
        for (name, edit, needle) in cases {
            let mut s = spec();
            edit(&mut s);
            let e = s.validate().unwrap_err().to_string();
            assert!(e.contains(needle), "{name}: {e}");
        }
        let e = JobSpec::parse("j.json", r#"{"model": "m"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("j.json") && e.contains("missing field"), "{e}");
        let e = JobSpec::parse(
            "j.json",
            r#"{"model": "m", "inputs": ["a"], "format": "parquet", "output": "o"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("parquet"), "{e}");
    }
}
