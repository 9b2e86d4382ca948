//! One task's execution: its command line with placeholders replaced, run in process when it
//! is a built-in `litehouse step` (the same code a KFP container runs) or as a program
//! otherwise; then its output parameters read from their files and its artifacts uploaded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use litehouse_store::Store;
use serde_json::Value;

use super::artifacts;
use super::dag::Task;
use super::placeholders::{substitute, Bindings};
use super::record::ArtifactRecord;
use crate::types::ValueType;

/// Lines of a program's output kept in the run record.
const LOG_LINES: usize = 200;

/// What a finished task produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// What it said.
    pub log: Vec<String>,
    /// Output parameters.
    pub outputs: BTreeMap<String, Value>,
    /// Output artifacts, uploaded.
    pub artifacts: BTreeMap<String, ArtifactRecord>,
    /// Figures from its metrics artifacts.
    pub metrics: BTreeMap<String, f64>,
}

/// A failed task: why, and what it said before failing.
#[derive(Debug)]
pub struct Failure {
    /// Why.
    pub reason: String,
    /// Its output up to the failure.
    pub log: Vec<String>,
}

impl Failure {
    fn new(reason: impl Into<String>) -> Failure {
        Failure {
            reason: reason.into(),
            log: Vec::new(),
        }
    }
}

/// Where a task's outputs go inside its work directory.
pub fn output_paths(task: &Task, dir: &Path, b: &mut Bindings) {
    for name in task.component.output_definitions.artifacts.keys() {
        b.output_artifacts
            .insert(name.clone(), dir.join("outputs").join(name));
    }
    for name in task.component.output_definitions.parameters.keys() {
        b.output_files
            .insert(name.clone(), dir.join("parameters").join(name));
    }
}

/// Runs the task and collects its outputs; artifacts go under `prefix` in the store.
pub async fn execute(
    task: &Task,
    b: &Bindings,
    dir: &Path,
    store: &Store,
    prefix: &str,
) -> Result<Outcome, Failure> {
    let mut argv = Vec::new();
    for arg in task.container.command.iter().chain(&task.container.args) {
        argv.push(substitute(arg, b).map_err(Failure::new)?);
    }
    for sub in ["outputs", "parameters"] {
        std::fs::create_dir_all(dir.join(sub))
            .map_err(|e| Failure::new(format!("creating {}: {e}", dir.join(sub).display())))?;
    }
    let log = match argv.as_slice() {
        [program, step, kind, rest @ ..] if program == "litehouse" && step == "step" => {
            crate::steps::execute(kind, rest)
                .await
                .map_err(|e| Failure::new(e.to_string()))?
        }
        _ => program(&argv, store).await?,
    };
    let mut outcome = collect(task, b, store, prefix)
        .await
        .map_err(|reason| Failure {
            reason,
            log: log.clone(),
        })?;
    outcome.log = tail(log);
    Ok(outcome)
}

/// The last [`LOG_LINES`] lines, with a note of how many went before.
fn tail(mut log: Vec<String>) -> Vec<String> {
    if log.len() > LOG_LINES {
        let cut = log.len() - LOG_LINES;
        log.drain(..cut);
        log.insert(0, format!("({cut} earlier lines not kept)"));
    }
    log
}

/// Runs a program, its output captured; fails on a non-zero exit with its last lines.
async fn program(argv: &[String], store: &Store) -> Result<Vec<String>, Failure> {
    let (exe, args) = argv
        .split_first()
        .ok_or_else(|| Failure::new("empty command"))?;
    let output = tokio::process::Command::new(exe)
        .args(args)
        .env("LITEHOUSE_STORE", store.uri())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| Failure::new(format!("could not start {exe:?}: {e}")))?;
    let mut log: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&output.stderr).lines())
        .map(String::from)
        .collect();
    log = tail(log);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        let status = output.status.code().map_or_else(
            || "was killed by a signal".to_string(),
            |c| format!("exited with {c}"),
        );
        return Err(Failure {
            reason: if tail.is_empty() {
                format!("{exe} {status}")
            } else {
                format!("{exe} {status}: {}", tail.join(" | "))
            },
            log,
        });
    }
    Ok(log)
}

/// Reads output parameters and uploads output artifacts.
async fn collect(
    task: &Task,
    b: &Bindings,
    store: &Store,
    prefix: &str,
) -> Result<Outcome, String> {
    let mut out = Outcome::default();
    for (name, def) in &task.component.output_definitions.parameters {
        let path = &b.output_files[name];
        let text = std::fs::read_to_string(path).map_err(|_| {
            format!(
                "wrote no output parameter '{name}' (expected in {})",
                path.display()
            )
        })?;
        let ty = ValueType::from_ir(&def.parameter_type).unwrap_or(ValueType::String);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let value = ty.parse(text).ok_or_else(|| {
            format!(
                "output parameter '{name}': expected {}, found {text:?}",
                ty.name()
            )
        })?;
        out.outputs.insert(name.clone(), value);
    }
    for (name, def) in &task.component.output_definitions.artifacts {
        let path = &b.output_artifacts[name];
        if !path.exists() {
            return Err(format!(
                "wrote no output artifact '{name}' (expected at {})",
                path.display()
            ));
        }
        let record = artifacts::upload(store, path, &format!("{prefix}{name}/"))
            .await
            .map_err(|e| format!("storing artifact '{name}': {e}"))?;
        if def.artifact_type.schema_title == "system.Metrics" {
            out.metrics.extend(figures(path));
        }
        out.artifacts.insert(name.clone(), record);
    }
    Ok(out)
}

/// The numbers in a metrics artifact: an evaluation's candidate figures, or the top-level
/// numbers of any JSON object.
fn figures(path: &Path) -> BTreeMap<String, f64> {
    let file: PathBuf = if path.is_dir() {
        path.join(crate::steps::evaluate::METRICS_FILE)
    } else {
        path.to_path_buf()
    };
    let Ok(bytes) = std::fs::read(&file) else {
        return BTreeMap::new();
    };
    let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(&bytes) else {
        return BTreeMap::new();
    };
    let numbers = |o: &serde_json::Map<String, Value>| {
        o.iter()
            .filter_map(|(k, v)| v.as_f64().map(|f| (k.clone(), f)))
            .collect::<BTreeMap<_, _>>()
    };
    match o.get("candidate") {
        Some(Value::Object(c)) => numbers(c),
        _ => numbers(&o),
    }
}
