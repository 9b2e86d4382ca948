//! The run record (`pipelines/{name}/runs/{run}/run.json`): per-task state, timing, logs,
//! outputs and metrics, rewritten after every change so a person (or `--resume`) always sees
//! where a run is.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use litehouse_store::{Condition, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{PipelineError, Result};

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Tasks are running (or the runner died; `--resume` picks it up).
    Running,
    /// Every task ran or was served from the cache.
    Succeeded,
    /// A gate said no: the candidate was not deployed. An outcome, not an error.
    Gated,
    /// A task failed.
    Failed,
}

impl RunState {
    /// The word in tables.
    pub fn name(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Gated => "gated",
            RunState::Failed => "failed",
        }
    }
}

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Waiting for its inputs.
    Pending,
    /// Started.
    Running,
    /// Ran and wrote its outputs.
    Succeeded,
    /// Reused the outputs of an identical earlier execution.
    Cached,
    /// Its condition was false, or a task it needs was skipped or failed.
    Skipped,
    /// Failed.
    Failed,
}

impl TaskState {
    /// Finished with outputs that later tasks may read.
    pub fn has_outputs(self) -> bool {
        matches!(self, TaskState::Succeeded | TaskState::Cached)
    }

    /// Will not change any more in this run.
    pub fn is_final(self) -> bool {
        !matches!(self, TaskState::Pending | TaskState::Running)
    }

    /// The word in tables.
    pub fn name(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Running => "running",
            TaskState::Succeeded => "succeeded",
            TaskState::Cached => "cached",
            TaskState::Skipped => "skipped",
            TaskState::Failed => "failed",
        }
    }
}

/// An output artifact: where its files are in the store and their digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRecord {
    /// The store key prefix its files are under (`pipelines/p/runs/r/train/model/`).
    pub key: String,
    /// sha256 over its files (see [`crate::steps::dataset::hash_dir`]).
    pub sha256: String,
    /// Files in it.
    pub files: usize,
    /// Bytes in it.
    pub bytes: u64,
    /// A single file (a program wrote a file at the artifact's path) rather than a directory.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub file: bool,
}

/// One task of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Its state.
    pub state: TaskState,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<DateTime<Utc>>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<DateTime<Utc>>,
    /// Seconds it took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// What it said (a program's output, last lines kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<String>,
    /// Its resolved input parameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, Value>,
    /// Its output parameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, Value>,
    /// Its output artifacts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub artifacts: BTreeMap<String, ArtifactRecord>,
    /// Figures it reported (a metrics artifact's candidate figures, a model's test score).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
    /// The cache key of its execution (cacheable tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_key: Option<String>,
    /// The run whose outputs a cached task reused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_from: Option<String>,
    /// Why it failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl TaskRecord {
    /// A task not started yet.
    pub fn pending() -> TaskRecord {
        TaskRecord {
            state: TaskState::Pending,
            started: None,
            finished: None,
            seconds: None,
            log: Vec::new(),
            inputs: BTreeMap::new(),
            outputs: BTreeMap::new(),
            artifacts: BTreeMap::new(),
            metrics: BTreeMap::new(),
            cache_key: None,
            cached_from: None,
            reason: None,
        }
    }
}

/// `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The pipeline's name.
    pub pipeline: String,
    /// The run's name (unique within the pipeline).
    pub run: String,
    /// Where it stands.
    pub state: RunState,
    /// Why it was gated or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it started (first attempt).
    pub started: DateTime<Utc>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<DateTime<Utc>>,
    /// How many times it was started (1, then 2 after one `--resume`).
    pub attempts: u32,
    /// The litehouse version that ran it.
    pub litehouse: String,
    /// The store it ran against.
    pub store: String,
    /// sha256 of the spec it ran (kept beside the record as `spec.json`).
    pub spec_sha256: String,
    /// The pipeline parameters, resolved.
    pub params: BTreeMap<String, Value>,
    /// Tasks by name, in the spec's order.
    pub tasks: BTreeMap<String, TaskRecord>,
}

impl RunRecord {
    /// Seconds from start to finish.
    pub fn seconds(&self) -> Option<f64> {
        self.finished
            .map(|f| (f - self.started).num_milliseconds() as f64 / 1000.0)
    }

    /// The figures of the run's model: those of the task that scored the candidate (an evaluate
    /// step's metrics artifact), else any task's.
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for task in self.tasks.values() {
            for (k, v) in &task.metrics {
                out.entry(k.clone()).or_insert(*v);
            }
        }
        out
    }

    /// The registered version the run produced, if a task output one.
    pub fn version(&self) -> Option<u64> {
        self.tasks
            .values()
            .filter(|t| t.state.has_outputs())
            .find_map(|t| t.outputs.get("version").and_then(Value::as_u64))
    }

    /// The role the run's model was deployed in, if any.
    pub fn role(&self) -> Option<&str> {
        self.tasks
            .values()
            .filter(|t| t.state.has_outputs())
            .find_map(|t| t.outputs.get("role").and_then(Value::as_str))
    }
}

/// Store prefix of a pipeline's runs.
pub fn runs_prefix(pipeline: &str) -> String {
    format!("pipelines/{pipeline}/runs/")
}

/// Store prefix of one run's files.
pub fn run_prefix(pipeline: &str, run: &str) -> String {
    format!("pipelines/{pipeline}/runs/{run}/")
}

/// Store key of a run's record.
pub fn record_key(pipeline: &str, run: &str) -> String {
    format!("{}run.json", run_prefix(pipeline, run))
}

/// Store key of the spec a run executed.
pub fn spec_key(pipeline: &str, run: &str) -> String {
    format!("{}spec.json", run_prefix(pipeline, run))
}

/// Writes the record.
pub async fn save(store: &Store, record: &RunRecord) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(record)
        .map_err(|e| PipelineError::Invalid(format!("encoding the run record: {e}")))?;
    bytes.push(b'\n');
    store
        .put(
            &record_key(&record.pipeline, &record.run),
            bytes,
            Condition::Always,
        )
        .await?;
    Ok(())
}

/// Reads a run's record.
pub async fn load(store: &Store, pipeline: &str, run: &str) -> Result<RunRecord> {
    let key = record_key(pipeline, run);
    let Some(object) = store.get_opt(&key).await? else {
        return Err(PipelineError::NotFound(format!(
            "pipeline '{pipeline}' has no run '{run}' in {} (see litehouse pipeline runs)",
            store.uri()
        )));
    };
    serde_json::from_slice(&object.bytes)
        .map_err(|e| PipelineError::Spec(format!("{}/{key}: {e}", store.uri())))
}

/// Names of the pipelines that have runs in the store.
pub async fn pipelines(store: &Store) -> Result<Vec<String>> {
    let mut names: Vec<String> = store
        .list("pipelines/")
        .await?
        .iter()
        .filter_map(|k| {
            let rest = k.strip_prefix("pipelines/")?;
            let (name, tail) = rest.split_once('/')?;
            tail.starts_with("runs/").then(|| name.to_string())
        })
        .collect();
    names.dedup();
    Ok(names)
}

/// Every run of a pipeline, oldest first.
pub async fn runs(store: &Store, pipeline: &str) -> Result<Vec<RunRecord>> {
    let prefix = runs_prefix(pipeline);
    let mut out = Vec::new();
    for key in store.list(&prefix).await? {
        let Some(run) = key
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix("/run.json"))
            .filter(|r| !r.contains('/'))
        else {
            continue;
        };
        out.push(load(store, pipeline, run).await?);
    }
    out.sort_by(|a, b| a.started.cmp(&b.started).then(a.run.cmp(&b.run)));
    Ok(out)
}
