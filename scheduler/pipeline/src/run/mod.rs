//! The embedded local runner: executes a compiled `PipelineSpec` against a store, tasks in
//! dependency order with independent ones in parallel, a false gate condition skipping what
//! follows (the run ends `gated`), step caching, and a run record rewritten after every change
//! so that a killed run can be resumed from its last finished task.

pub mod artifacts;
pub mod cache;
pub mod dag;
pub mod placeholders;
pub mod record;
pub mod task;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use litehouse_store::{Condition, Store};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use crate::error::{PipelineError, Result};
use crate::ir::PipelineSpec;
use crate::steps::dataset::hex;
use crate::steps::interface::STORE;
use crate::types::ValueType;
use dag::Task;
use placeholders::Bindings;
use record::{RunRecord, RunState, TaskRecord, TaskState};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `--param name=value` overrides of the pipeline's parameters.
    pub params: BTreeMap<String, String>,
    /// The run's name (default: the time it started, with a random suffix).
    pub run: Option<String>,
    /// Continue this run: finished tasks keep their outputs, the rest run.
    pub resume: Option<String>,
    /// Reuse outputs of identical earlier executions of cacheable tasks.
    pub cache: bool,
    /// Where tasks read and write their files (default: a directory under the system's
    /// temporary directory, removed when the run succeeds).
    pub work: Option<PathBuf>,
    /// Most tasks running at once.
    pub parallelism: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            params: BTreeMap::new(),
            run: None,
            resume: None,
            cache: true,
            work: None,
            parallelism: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// What the runner reports while it works.
#[derive(Debug, Clone)]
pub enum Event {
    /// The run started (or resumed).
    Started {
        /// Its name.
        run: String,
        /// Its attempt (1, then 2 after a resume).
        attempt: u32,
    },
    /// A task started.
    TaskStarted {
        /// Which.
        task: String,
    },
    /// A task reached a final state.
    TaskFinished {
        /// Which.
        task: String,
        /// Its record.
        record: Box<TaskRecord>,
    },
}

/// A callback for [`Event`]s (progress lines in the CLI).
pub type Progress = Arc<dyn Fn(&Event) + Send + Sync>;

/// Runs `spec` against `store` and returns the final record. A gated run is `Ok` with state
/// `gated`; a failed task is `Ok` with state `failed` (the record says why); errors are for a
/// spec or options that cannot run at all, and for the store.
pub async fn run(
    store: &Store,
    spec: &PipelineSpec,
    options: &RunOptions,
    progress: Progress,
) -> Result<RunRecord> {
    let tasks = dag::tasks(spec)?;
    let pipeline = spec.pipeline_info.name.clone();
    check_name("pipeline name", &pipeline)
        .map_err(|e| PipelineError::Spec(format!("pipelineInfo.name: {e}")))?;
    let spec_json = serde_json::to_vec_pretty(spec)
        .map_err(|e| PipelineError::Spec(format!("encoding: {e}")))?;
    let spec_sha = hex(&Sha256::digest(&spec_json));
    let record = match &options.resume {
        Some(run) => resume(store, &pipeline, run, &spec_sha, &tasks, options).await?,
        None => {
            let params = resolve_params(spec, &options.params, store.uri())?;
            let run = match &options.run {
                Some(r) => r.clone(),
                None => fresh_name(),
            };
            check_name("run name", &run).map_err(PipelineError::Invalid)?;
            if store
                .etag(&record::record_key(&pipeline, &run))
                .await?
                .is_some()
            {
                return Err(PipelineError::Invalid(format!(
                    "pipeline '{pipeline}' already has a run '{run}' (continue it with --resume {run})"
                )));
            }
            store
                .put(
                    &record::spec_key(&pipeline, &run),
                    spec_json,
                    Condition::IfAbsent,
                )
                .await?;
            RunRecord {
                pipeline: pipeline.clone(),
                run,
                state: RunState::Running,
                reason: None,
                started: Utc::now(),
                finished: None,
                attempts: 1,
                litehouse: env!("CARGO_PKG_VERSION").into(),
                store: store.uri().into(),
                spec_sha256: spec_sha,
                params,
                tasks: tasks
                    .iter()
                    .map(|t| (t.name.clone(), TaskRecord::pending()))
                    .collect(),
            }
        }
    };
    record::save(store, &record).await?;
    progress(&Event::Started {
        run: record.run.clone(),
        attempt: record.attempts,
    });
    let work = match &options.work {
        Some(w) => w.join(&record.run),
        None => std::env::temp_dir()
            .join("litehouse-runs")
            .join(format!("{pipeline}-{}", record.run)),
    };
    std::fs::create_dir_all(&work).map_err(|e| PipelineError::io(work.display(), e))?;
    let mut scheduler = Scheduler {
        store,
        tasks: &tasks,
        options,
        record,
        work: work.clone(),
        local: BTreeSet::new(),
        progress,
    };
    scheduler.drive().await?;
    let mut record = scheduler.record;
    record.finished = Some(Utc::now());
    conclude(&mut record, &tasks);
    record::save(store, &record).await?;
    if record.state != RunState::Failed && options.work.is_none() {
        // Everything is in the store; a failed run keeps its files for a look.
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(record)
}

/// Pipeline and run names become store key segments: letters, digits, `-`, `_`, `.`.
pub fn check_name(what: &str, name: &str) -> std::result::Result<(), String> {
    let ok = (1..=128).contains(&name.len())
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {name:?}: expected 1 to 128 letters, digits, '-', '_' or '.', not starting with '.'"
        ))
    }
}

/// A name for a new run: `YYYYMMDD-HHMMSS-xxxx`.
fn fresh_name() -> String {
    format!(
        "{}-{:04x}",
        Utc::now().format("%Y%m%d-%H%M%S"),
        fastrand::u16(..)
    )
}

/// The pipeline's parameters: overrides, else defaults; the registry store defaults to the
/// runner's.
fn resolve_params(
    spec: &PipelineSpec,
    overrides: &BTreeMap<String, String>,
    store: &str,
) -> Result<BTreeMap<String, Value>> {
    let defs = &spec.root.input_definitions.parameters;
    if let Some(unknown) = overrides.keys().find(|k| !defs.contains_key(*k)) {
        return Err(PipelineError::Invalid(format!(
            "--param {unknown}: the pipeline has no parameter '{unknown}' (parameters: {})",
            defs.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let mut out = BTreeMap::new();
    for (name, def) in defs {
        let ty = ValueType::from_ir(&def.parameter_type).ok_or_else(|| {
            PipelineError::Spec(format!(
                "root parameter '{name}': parameterType {:?} is not STRING, NUMBER_INTEGER, NUMBER_DOUBLE or BOOLEAN",
                def.parameter_type
            ))
        })?;
        let value = match (overrides.get(name), &def.default_value) {
            (Some(text), _) => ty.parse(text).ok_or_else(|| {
                PipelineError::Invalid(format!(
                    "--param {name}={text}: expected a {} value",
                    ty.name()
                ))
            })?,
            (None, Some(v)) => ty.coerce(v).map_err(|e| {
                PipelineError::Spec(format!("root parameter '{name}' default: {e}"))
            })?,
            (None, None) if name == STORE => Value::from(store),
            (None, None) => {
                return Err(PipelineError::Invalid(format!(
                    "parameter '{name}' has no default: pass --param {name}=VALUE"
                )))
            }
        };
        let value = match value {
            Value::String(s) if name == STORE && s.is_empty() => Value::from(store),
            v => v,
        };
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// Loads a run to continue: finished tasks stay, the rest go back to pending.
async fn resume(
    store: &Store,
    pipeline: &str,
    run: &str,
    spec_sha: &str,
    tasks: &[Task],
    options: &RunOptions,
) -> Result<RunRecord> {
    let mut r = record::load(store, pipeline, run).await?;
    if r.spec_sha256 != spec_sha {
        return Err(PipelineError::Invalid(format!(
            "run '{run}' ran another version of pipeline '{pipeline}' (spec sha256 {} there, {spec_sha} now); start a new run",
            r.spec_sha256
        )));
    }
    for (name, text) in &options.params {
        let same = r
            .params
            .get(name)
            .is_some_and(|v| crate::types::value_text(v) == *text);
        if !same {
            return Err(PipelineError::Invalid(format!(
                "--param {name}={text}: run '{run}' ran with {name}={}; a resumed run keeps its parameters",
                r.params.get(name).map(crate::types::value_text).unwrap_or_else(|| "(none)".into())
            )));
        }
    }
    if r.state == RunState::Succeeded {
        return Err(PipelineError::Invalid(format!(
            "run '{run}' already succeeded; nothing to resume"
        )));
    }
    for t in tasks {
        let entry = r
            .tasks
            .entry(t.name.clone())
            .or_insert_with(TaskRecord::pending);
        if !entry.state.has_outputs() {
            *entry = TaskRecord::pending();
        }
    }
    r.state = RunState::Running;
    r.reason = None;
    r.finished = None;
    r.attempts += 1;
    Ok(r)
}

/// The run's final state from its tasks.
fn conclude(record: &mut RunRecord, tasks: &[Task]) {
    if let Some((name, t)) = record
        .tasks
        .iter()
        .find(|(_, t)| t.state == TaskState::Failed)
    {
        record.state = RunState::Failed;
        let why = t.reason.clone().unwrap_or_default();
        // Step errors usually name their step already.
        record.reason = Some(if why.starts_with("step ") {
            why
        } else {
            format!("step '{name}' failed: {why}")
        });
        return;
    }
    // A task skipped on its own condition (not because something before it was).
    let gated = tasks.iter().find_map(|t| {
        let r = record.tasks.get(&t.name)?;
        (r.state == TaskState::Skipped && t.condition.is_some())
            .then(|| r.reason.clone())
            .flatten()
            .filter(|reason| !reason.starts_with(NOT_RUN))
    });
    match gated {
        Some(reason) => {
            record.state = RunState::Gated;
            record.reason = Some(reason);
        }
        None => record.state = RunState::Succeeded,
    }
}

/// How a skip caused by an earlier task's skip or failure begins.
const NOT_RUN: &str = "not run:";

struct Scheduler<'a> {
    store: &'a Store,
    tasks: &'a [Task],
    options: &'a RunOptions,
    record: RunRecord,
    work: PathBuf,
    /// Output artifacts present in the work directory: `(task, artifact)`.
    local: BTreeSet<(String, String)>,
    progress: Progress,
}

type Finished = (
    String,
    Instant,
    std::result::Result<task::Outcome, task::Failure>,
);

impl Scheduler<'_> {
    fn state(&self, task: &str) -> TaskState {
        self.record
            .tasks
            .get(task)
            .map_or(TaskState::Pending, |t| t.state)
    }

    fn task_record(&mut self, task: &str) -> &mut TaskRecord {
        self.record
            .tasks
            .entry(task.to_string())
            .or_insert_with(TaskRecord::pending)
    }

    async fn finish(&mut self, task: &str, record: TaskRecord) -> Result<()> {
        *self.task_record(task) = record.clone();
        record::save(self.store, &self.record).await?;
        (self.progress)(&Event::TaskFinished {
            task: task.into(),
            record: Box::new(record),
        });
        Ok(())
    }

    async fn drive(&mut self) -> Result<()> {
        let mut running: JoinSet<Finished> = JoinSet::new();
        let mut failed = false;
        loop {
            // Starting one task may finish it at once (skipped, cached), which readies others.
            let tasks = self.tasks;
            let limit = self.options.parallelism.max(1);
            while !failed && running.len() < limit {
                let ready = tasks.iter().find(|t| {
                    self.state(&t.name) == TaskState::Pending
                        && t.needs.iter().all(|n| self.state(n).is_final())
                });
                let Some(t) = ready else { break };
                self.start(t, &mut running).await?;
                failed = self.state(&t.name) == TaskState::Failed;
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let (name, started, result) = joined.map_err(|e| {
                PipelineError::Invalid(format!("a task panicked or was cancelled: {e}"))
            })?;
            let mut rec = self.task_record(&name).clone();
            rec.finished = Some(Utc::now());
            rec.seconds = Some(started.elapsed().as_secs_f64());
            match result {
                Ok(outcome) => {
                    rec.state = TaskState::Succeeded;
                    rec.log = outcome.log;
                    rec.outputs = outcome.outputs;
                    rec.metrics = outcome.metrics;
                    for artifact in outcome.artifacts.keys() {
                        self.local.insert((name.clone(), artifact.clone()));
                    }
                    rec.artifacts = outcome.artifacts;
                    if let Some(key) = &rec.cache_key {
                        let entry = cache::CacheEntry {
                            run: self.record.run.clone(),
                            task: name.clone(),
                            outputs: rec.outputs.clone(),
                            artifacts: rec.artifacts.clone(),
                            metrics: rec.metrics.clone(),
                        };
                        cache::save(self.store, &self.record.pipeline, key, &entry).await?;
                    }
                }
                Err(failure) => {
                    tracing::debug!(task = %name, reason = %failure.reason, "task failed");
                    rec.state = TaskState::Failed;
                    rec.log = failure.log;
                    rec.reason = Some(failure.reason);
                    failed = true;
                }
            }
            self.finish(&name, rec).await?;
        }
        // After a failure, what did not start is left pending for a resume; say why.
        let left: Vec<String> = self
            .tasks
            .iter()
            .filter(|t| self.state(&t.name) == TaskState::Pending)
            .map(|t| t.name.clone())
            .collect();
        for name in left {
            let mut rec = TaskRecord::pending();
            rec.state = TaskState::Skipped;
            rec.reason = Some(format!("{NOT_RUN} the run failed before it started"));
            self.finish(&name, rec).await?;
        }
        Ok(())
    }

    /// Starts a task whose needs are final: skipped, served from the cache, or spawned.
    async fn start(&mut self, t: &Task, running: &mut JoinSet<Finished>) -> Result<()> {
        let mut rec = TaskRecord::pending();
        if let Some(dep) = t.needs.iter().find(|n| !self.state(n).has_outputs()) {
            rec.state = TaskState::Skipped;
            rec.reason = Some(format!("{NOT_RUN} '{dep}' was {}", self.state(dep).name()));
            return self.finish(&t.name, rec).await;
        }
        let mut b = Bindings {
            job_name: self.record.run.clone(),
            task_name: t.name.clone(),
            ..Bindings::default()
        };
        for (input, binding) in &t.spec.inputs.parameters {
            let value = if let Some(v) = &binding.runtime_value {
                v.constant.clone()
            } else if let Some(p) = &binding.component_input_parameter {
                self.record.params.get(p).cloned().ok_or_else(|| {
                    PipelineError::Spec(format!("task '{}': no pipeline parameter '{p}'", t.name))
                })?
            } else if let Some(o) = &binding.task_output_parameter {
                let producer = self.record.tasks.get(&o.producer_task);
                match producer.and_then(|p| p.outputs.get(&o.output_parameter_key)) {
                    Some(v) => v.clone(),
                    None => {
                        rec.state = TaskState::Failed;
                        rec.reason = Some(format!(
                            "input '{input}': task '{}' has no output parameter '{}'",
                            o.producer_task, o.output_parameter_key
                        ));
                        return self.finish(&t.name, rec).await;
                    }
                }
            } else {
                Value::Null
            };
            b.parameters.insert(input.clone(), value);
        }
        if let Some(c) = &t.condition {
            if b.parameters.get(&c.channel) != Some(&Value::Bool(true)) {
                let producer = t.spec.inputs.parameters[&c.channel]
                    .task_output_parameter
                    .as_ref()
                    .map(|o| o.producer_task.clone());
                let why = producer
                    .and_then(|p| self.record.tasks.get(&p))
                    .and_then(|p| p.outputs.get("reason"))
                    .and_then(Value::as_str)
                    .map(String::from)
                    .unwrap_or_else(|| format!("condition {} is false", c.expression));
                rec.state = TaskState::Skipped;
                rec.inputs = b.parameters;
                rec.reason = Some(why);
                return self.finish(&t.name, rec).await;
            }
        }
        let mut digests = BTreeMap::new();
        let mut inputs = Vec::new();
        for (input, binding) in &t.spec.inputs.artifacts {
            let from = &binding.task_output_artifact;
            let artifact = self
                .record
                .tasks
                .get(&from.producer_task)
                .and_then(|p| p.artifacts.get(&from.output_artifact_key))
                .cloned();
            let Some(artifact) = artifact else {
                rec.state = TaskState::Failed;
                rec.reason = Some(format!(
                    "input '{input}': task '{}' has no output artifact '{}'",
                    from.producer_task, from.output_artifact_key
                ));
                return self.finish(&t.name, rec).await;
            };
            digests.insert(input.clone(), artifact.sha256.clone());
            inputs.push((input.clone(), from.clone(), artifact));
        }
        rec.inputs = b.parameters.clone();
        let cacheable = self.options.cache
            && t.spec
                .caching_options
                .as_ref()
                .is_some_and(|c| c.enable_cache);
        if cacheable {
            let key = cache::key(&t.container, &b.parameters, &digests);
            if let Some(hit) = self.cached(&key).await? {
                rec.state = TaskState::Cached;
                rec.started = Some(Utc::now());
                rec.finished = rec.started;
                rec.seconds = Some(0.0);
                rec.log = vec![format!(
                    "reused the outputs of run {} (cache key {key})",
                    hit.run
                )];
                rec.outputs = hit.outputs;
                rec.artifacts = hit.artifacts;
                rec.metrics = hit.metrics;
                rec.cached_from = Some(hit.run);
                rec.cache_key = Some(key);
                return self.finish(&t.name, rec).await;
            }
            rec.cache_key = Some(key);
        }
        // Inputs from tasks that did not run in this attempt come from the store.
        for (input, from, artifact) in inputs {
            let path = self
                .work
                .join(&from.producer_task)
                .join("outputs")
                .join(&from.output_artifact_key);
            let local = (from.producer_task.clone(), from.output_artifact_key.clone());
            if !self.local.contains(&local) {
                artifacts::download(self.store, &artifact, &path).await?;
                self.local.insert(local);
            }
            b.input_uris.insert(
                input.clone(),
                format!("{}/{}", self.store.uri(), artifact.key),
            );
            b.input_artifacts.insert(input, path);
        }
        let dir = self.work.join(&t.name);
        artifacts::remove(&dir)?;
        task::output_paths(t, &dir, &mut b);
        let prefix = format!(
            "{}{}/",
            record::run_prefix(&self.record.pipeline, &self.record.run),
            t.name
        );
        for name in t.component.output_definitions.artifacts.keys() {
            b.output_uris
                .insert(name.clone(), format!("{}/{prefix}{name}", self.store.uri()));
        }
        rec.state = TaskState::Running;
        rec.started = Some(Utc::now());
        *self.task_record(&t.name) = rec;
        record::save(self.store, &self.record).await?;
        (self.progress)(&Event::TaskStarted {
            task: t.name.clone(),
        });
        let (task, store) = (t.clone(), self.store.clone());
        running.spawn(async move {
            let started = Instant::now();
            let result = task::execute(&task, &b, &dir, &store, &prefix).await;
            (task.name, started, result)
        });
        Ok(())
    }

    /// A cache entry whose artifacts the store still holds.
    async fn cached(&self, key: &str) -> Result<Option<cache::CacheEntry>> {
        let Some(hit) = cache::lookup(self.store, &self.record.pipeline, key).await? else {
            return Ok(None);
        };
        for a in hit.artifacts.values() {
            if !artifacts::present(self.store, a).await? {
                return Ok(None);
            }
        }
        Ok(Some(hit))
    }
}
