//! The built-in steps, as `litehouse step <kind> --input value ... --out-output path` runs
//! them (in a KFP container, or in process under the local runner: the same code either way).
//! Inputs arrive as text; output parameters are written to the files KFP names.

pub mod dataset;
pub mod evaluate;
pub mod interface;
pub mod publish;
pub mod schema;
pub mod train;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{PipelineError, Result};
use crate::types::{PortType, ValueType};
use interface::Interface;

/// A step's parsed arguments.
#[derive(Debug, Clone)]
pub struct StepArgs {
    /// The step kind.
    pub kind: &'static Interface,
    values: BTreeMap<String, String>,
    outputs: BTreeMap<String, PathBuf>,
    /// The pipeline's name.
    pub pipeline: String,
    /// The run's name.
    pub run: String,
}

impl StepArgs {
    /// Parses `--name value` pairs for `kind`, refusing unknown names and missing inputs.
    pub fn parse(kind: &str, args: &[String]) -> Result<StepArgs> {
        let i = interface::builtin(kind)
            .ok_or_else(|| PipelineError::Invalid(interface::unknown(kind)))?;
        let mut values = BTreeMap::new();
        let mut outputs = BTreeMap::new();
        let (mut pipeline, mut run) = (String::from("pipeline"), String::from("manual"));
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let name = flag.strip_prefix("--").ok_or_else(|| {
                PipelineError::Invalid(format!(
                    "step {kind}: expected --name value, found {flag:?}"
                ))
            })?;
            let value = it.next().ok_or_else(|| {
                PipelineError::Invalid(format!("step {kind}: --{name} needs a value"))
            })?;
            if name == "pipeline" {
                pipeline = value.clone();
            } else if name == "run" {
                run = value.clone();
            } else if let Some(out) = name.strip_prefix("out-") {
                if i.output(out).is_none() {
                    return Err(PipelineError::Invalid(format!(
                        "step {kind}: no output '{out}' (outputs: {})",
                        interface::names(i.outputs)
                    )));
                }
                outputs.insert(out.to_string(), PathBuf::from(value));
            } else if i.input(name).is_some() {
                values.insert(name.to_string(), value.clone());
            } else {
                return Err(PipelineError::Invalid(format!(
                    "step {kind}: no input '{name}' (inputs: {})",
                    interface::names(i.inputs)
                )));
            }
        }
        for port in i.inputs {
            if port.fallback == interface::Fallback::Required && !values.contains_key(port.name) {
                return Err(PipelineError::Invalid(format!(
                    "step {kind}: missing --{} (a {})",
                    port.name,
                    port.ty.describe()
                )));
            }
        }
        for port in i.outputs {
            if !outputs.contains_key(port.name) {
                return Err(PipelineError::Invalid(format!(
                    "step {kind}: missing --out-{} (where to write the {})",
                    port.name,
                    port.ty.describe()
                )));
            }
        }
        Ok(StepArgs {
            kind: i,
            values,
            outputs,
            pipeline,
            run,
        })
    }

    fn bad(&self, name: &str, message: impl std::fmt::Display) -> PipelineError {
        PipelineError::Invalid(format!("step {}: --{name}: {message}", self.kind.kind))
    }

    fn raw(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned().or_else(|| {
            self.kind
                .input(name)
                .and_then(|p| p.fallback.value())
                .map(|v| crate::types::value_text(&v))
        })
    }

    /// A string input.
    pub fn text(&self, name: &str) -> String {
        self.raw(name).unwrap_or_default()
    }

    /// An integer input.
    pub fn int(&self, name: &str) -> Result<i64> {
        let t = self.text(name);
        ValueType::Integer
            .parse(&t)
            .and_then(|v| v.as_i64())
            .ok_or_else(|| self.bad(name, format!("expected an integer, found {t:?}")))
    }

    /// A non-negative integer input.
    pub fn count(&self, name: &str) -> Result<usize> {
        let v = self.int(name)?;
        usize::try_from(v).map_err(|_| self.bad(name, format!("must be 0 or more, found {v}")))
    }

    /// A number input.
    pub fn num(&self, name: &str) -> Result<f64> {
        let t = self.text(name);
        ValueType::Number
            .parse(&t)
            .and_then(|v| v.as_f64())
            .ok_or_else(|| self.bad(name, format!("expected a number, found {t:?}")))
    }

    /// An artifact input's directory; `None` for an unset optional one.
    pub fn artifact(&self, name: &str) -> Option<PathBuf> {
        self.values
            .get(name)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    }

    /// A required artifact input's directory.
    pub fn required_artifact(&self, name: &str) -> Result<PathBuf> {
        let dir = self
            .artifact(name)
            .ok_or_else(|| self.bad(name, "missing"))?;
        if !dir.is_dir() {
            return Err(self.bad(name, format!("{} is not a directory", dir.display())));
        }
        Ok(dir)
    }

    /// A required model input: a model artifact directory (`model.tflite` with its config and
    /// figures) or a `.tflite` file itself, as a `command` step writes it. Returns the model
    /// file and the directory its companions would be in (`None` for a bare file).
    pub fn model_input(&self, name: &str) -> Result<(PathBuf, Option<PathBuf>)> {
        let path = self
            .artifact(name)
            .ok_or_else(|| self.bad(name, "missing"))?;
        if path.is_dir() {
            let file = path.join(litehouse_train::job::MODEL_FILE);
            if !file.is_file() {
                return Err(self.bad(
                    name,
                    format!(
                        "{} holds no {}",
                        path.display(),
                        litehouse_train::job::MODEL_FILE
                    ),
                ));
            }
            return Ok((file, Some(path)));
        }
        if path.is_file() {
            return Ok((path, None));
        }
        Err(self.bad(name, format!("{} does not exist", path.display())))
    }

    /// Where an output goes.
    pub fn out(&self, name: &str) -> &Path {
        self.outputs
            .get(name)
            .map_or(Path::new(""), PathBuf::as_path)
    }

    /// Writes an output parameter's value.
    pub fn write_param(&self, name: &str, value: &serde_json::Value) -> Result<()> {
        let path = self.out(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| PipelineError::io(parent.display(), e))?;
        }
        std::fs::write(path, crate::types::value_text(value))
            .map_err(|e| PipelineError::io(path.display(), e))
    }

    /// The registry named by `--store` (or `LITEHOUSE_STORE`).
    pub async fn registry(&self) -> Result<litehouse_registry::Registry> {
        let mut uri = self.text(interface::STORE);
        if uri.is_empty() {
            uri = std::env::var("LITEHOUSE_STORE").unwrap_or_default();
        }
        if uri.is_empty() {
            return Err(self.bad(
                interface::STORE,
                "no registry store: pass --store URI (or set LITEHOUSE_STORE)",
            ));
        }
        Ok(litehouse_registry::Registry::open(&uri).await?)
    }

    /// `run {run} of pipeline {pipeline}`: who moved an alias.
    pub fn actor(&self) -> String {
        format!("pipeline {} run {}", self.pipeline, self.run)
    }
}

/// Runs a built-in step: `kind` and its arguments as `litehouse step` takes them. The log lines
/// it returns say what it did.
pub async fn execute(kind: &str, args: &[String]) -> Result<Vec<String>> {
    let a = StepArgs::parse(kind, args)?;
    let log = match a.kind.kind {
        "ingest" => dataset::ingest(&a).await?,
        "validate" => schema::validate(&a).await?,
        "train" => train::train(&a).await?,
        "evaluate" => evaluate::evaluate(&a).await?,
        "gate" => evaluate::gate(&a)?,
        "register" => publish::register(&a).await?,
        "deploy" => publish::deploy(&a).await?,
        other => {
            return Err(PipelineError::Invalid(format!(
                "step '{other}' has no runner"
            )))
        }
    };
    for port in a.kind.outputs {
        if let PortType::Artifact(_) = port.ty {
            if !a.out(port.name).exists() {
                return Err(PipelineError::step(
                    kind,
                    format!("wrote no {} at {}", port.name, a.out(port.name).display()),
                ));
            }
        }
    }
    Ok(log)
}

/// Writes `value` as pretty JSON with a trailing newline.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| PipelineError::io(parent.display(), e))?;
    }
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| PipelineError::Invalid(format!("encoding {}: {e}", path.display())))?;
    bytes.push(b'\n');
    std::fs::write(path, bytes).map_err(|e| PipelineError::io(path.display(), e))
}

/// Reads JSON written by a step.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| PipelineError::io(path.display(), e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| PipelineError::Invalid(format!("{}: {e}", path.display())))
}
