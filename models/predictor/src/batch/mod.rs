//! Batch prediction over files on disk or in S3, in Vertex AI's formats.
//!
//! A job ([`JobSpec`]) is planned once into shards of whole input lines ([`plan`]); each shard
//! runs alone ([`runner`]) and is committed by a conditional create of its results file, so a
//! run killed at any moment and run again (same spec, same output) skips the committed shards
//! and writes every line exactly once. The output directory is laid out as Vertex AI writes it:
//!
//! ```text
//! <output>/prediction-<model>-<time>/
//!     prediction.results-00000-of-00004     {"instance"|"key": ..., "prediction"|"error": ...}
//!     prediction.errors_stats-00000-of-00001  one line per error status: count and examples
//!     job.json                              state, completion stats, timing, the spec
//!     plan.json, _state/shard-00000.json    the shards, and each committed shard's figures
//! ```

pub mod model_ref;
pub mod plan;
pub mod records;
pub mod runner;
pub mod source;
pub mod spec;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use litehouse_store::{Condition, Store, StoreError};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use tokio::runtime::Handle;

pub use model_ref::ModelUsed;
pub use plan::{Plan, Shard};
pub use runner::{ErrorSummary, ShardStats};
pub use source::{Buckets, InputFile};
pub use spec::{Format, InstanceConfig, InstanceType, JobSpec};

use crate::catalog::ServedModel;
use crate::image_input::ImageLimits;

/// A batch job that cannot go on. Bad input lines are not errors: they become error lines.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The job spec is unusable.
    #[error("job: {0}")]
    Spec(String),
    /// An input cannot be listed or read.
    #[error("input: {0}")]
    Input(String),
    /// The model cannot be found or loaded.
    #[error("model: {0}")]
    Model(String),
    /// The output store failed.
    #[error("output: {0}")]
    Output(String),
    /// The output holds a job that does not match (a different model or plan).
    #[error("conflict: {0}")]
    Conflict(String),
}

fn output_err(e: StoreError) -> BatchError {
    BatchError::Output(e.to_string())
}

/// Where a job stands (Vertex AI's `JobState` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    /// Shards are being run (or a run stopped part way; run it again to resume).
    JobStateRunning,
    /// Every shard is committed.
    JobStateSucceeded,
    /// A shard could not be run (input or output unreachable); run again to resume.
    JobStateFailed,
}

/// Vertex AI's `completionStats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompletionStats {
    /// Lines that got a prediction.
    pub successful_count: u64,
    /// Lines that got an error line.
    pub failed_count: u64,
    /// Lines in shards not committed yet.
    pub incomplete_count: u64,
}

/// `job.json`: what a job is and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRecord {
    /// The output directory's name, `prediction-<model>-<time>`.
    pub name: String,
    /// Full URI of the output directory.
    pub output_directory: String,
    /// State.
    pub state: JobState,
    /// The job as given.
    pub spec: JobSpec,
    /// Hash of what fixes the output (model sha256, inputs, format, instance config, output,
    /// shard size): a re-run with the same hash resumes this job.
    pub spec_hash: String,
    /// The model that ran.
    pub model: ModelUsed,
    /// Number of shards (results files).
    pub shard_count: usize,
    /// Records (non-blank lines) in the inputs.
    pub records: u64,
    /// Counts.
    pub completion_stats: CompletionStats,
    /// When the job was created.
    pub create_time: DateTime<Utc>,
    /// When it last changed.
    pub update_time: DateTime<Utc>,
    /// When it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<DateTime<Utc>>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An open job: its record, plan and output directory.
#[derive(Debug, Clone)]
pub struct Job {
    /// The record as last read or written.
    pub record: JobRecord,
    /// Its shards.
    pub plan: Plan,
    /// The output directory (`prediction-<model>-<time>/`) as a store.
    pub dir: Store,
}

/// What the shards of a job run with: the model, input access, limits, a progress counter and
/// the runtime that S3 reads go through.
#[derive(Clone, Copy)]
pub struct Workers<'a> {
    /// The job's model.
    pub served: &'a ServedModel,
    /// Input access.
    pub buckets: &'a Buckets,
    /// Image limits for file-list entries and `{"b64"}` instances.
    pub limits: ImageLimits,
    /// Lines done so far (for progress).
    pub lines_done: &'a AtomicU64,
    /// Runs store calls from worker threads.
    pub handle: &'a Handle,
}

/// `prediction.results-0000k-of-0000n`.
pub fn results_key(shard: usize, count: usize) -> String {
    format!("prediction.results-{shard:05}-of-{count:05}")
}

/// The errors file (one for the job).
pub const ERRORS_STATS_KEY: &str = "prediction.errors_stats-00000-of-00001";

fn shard_stats_key(shard: usize) -> String {
    format!("_state/shard-{shard:05}.json")
}

/// Vertex AI's directory time stamp: `2026_12_02T01_23_45_678Z`.
fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y_%m_%dT%H_%M_%S_%3fZ").to_string()
}

/// A display name as a path segment: letters, digits, `-` and `_` kept, the rest `_`.
fn path_safe(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "model".into()
    } else {
        s
    }
}

fn spec_hash(spec: &JobSpec, model: &ModelUsed) -> String {
    let fixed = serde_json::json!({
        "model": model.sha256,
        "inputs": spec.inputs,
        "format": spec.format,
        "instanceConfig": spec.instance_config,
        "output": spec.output.trim_end_matches('/'),
        "shardSize": spec.shard_size,
    });
    let digest = sha2::Sha256::digest(fixed.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

async fn read_json<T: serde::de::DeserializeOwned>(
    store: &Store,
    key: &str,
) -> Result<T, BatchError> {
    let o = store.get(key).await.map_err(output_err)?;
    serde_json::from_slice(&o.bytes).map_err(|e| {
        BatchError::Output(format!(
            "{}/{key} is not a valid job file: {e}",
            store.uri()
        ))
    })
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap_or_default()
}

/// Finds the job with this spec under its output, or creates it: lists and plans the inputs,
/// then writes `plan.json` and `job.json` (create-only).
pub async fn create_or_resume(
    spec: &JobSpec,
    model: &ModelUsed,
    buckets: &Buckets,
) -> Result<Job, BatchError> {
    spec.validate()?;
    let output_uri = spec.output.trim_end_matches('/').to_string();
    let output = Store::open(&output_uri).await.map_err(output_err)?;
    output.ensure_bucket().await.map_err(output_err)?;
    let hash = spec_hash(spec, model);
    for record in list_records(&output).await? {
        if record.spec_hash == hash {
            tracing::info!(job = %record.name, "resuming the job with the same spec");
            return open_job(&record.output_directory).await;
        }
    }
    let files = buckets.list(&spec.inputs).await?;
    let (format, shard_size, b) = (spec.format, spec.shard_size, buckets.clone());
    let handle = Handle::current();
    let plan =
        tokio::task::spawn_blocking(move || plan::plan(&b, files, format, shard_size, &handle))
            .await
            .map_err(|e| BatchError::Input(e.to_string()))??;
    let now = Utc::now();
    let name = format!(
        "prediction-{}-{}",
        path_safe(&model.display_name),
        stamp(now)
    );
    let dir_uri = format!("{output_uri}/{name}");
    let dir = Store::open(&dir_uri).await.map_err(output_err)?;
    let record = JobRecord {
        name,
        output_directory: dir_uri,
        state: JobState::JobStateRunning,
        spec: spec.clone(),
        spec_hash: hash,
        model: model.clone(),
        shard_count: plan.shards.len(),
        records: plan.records,
        completion_stats: CompletionStats {
            incomplete_count: plan.records,
            ..CompletionStats::default()
        },
        create_time: now,
        update_time: now,
        end_time: None,
        error: None,
    };
    dir.put("plan.json", to_json(&plan), Condition::IfAbsent)
        .await
        .map_err(output_err)?;
    dir.put("job.json", to_json(&record), Condition::IfAbsent)
        .await
        .map_err(output_err)?;
    Ok(Job { record, plan, dir })
}

/// Opens a job by its output directory URI.
pub async fn open_job(dir_uri: &str) -> Result<Job, BatchError> {
    let dir = Store::open(dir_uri.trim_end_matches('/'))
        .await
        .map_err(output_err)?;
    let record: JobRecord = match dir.get_opt("job.json").await.map_err(output_err)? {
        Some(o) => serde_json::from_slice(&o.bytes).map_err(|e| {
            BatchError::Output(format!("{dir_uri}/job.json is not a valid job record: {e}"))
        })?,
        None => {
            return Err(BatchError::Spec(format!(
                "{dir_uri} holds no batch job (no job.json)"
            )))
        }
    };
    let plan = read_json(&dir, "plan.json").await?;
    Ok(Job { record, plan, dir })
}

/// Job records under an output URI, newest first.
pub async fn list_jobs(output_uri: &str) -> Result<Vec<JobRecord>, BatchError> {
    let output = Store::open(output_uri.trim_end_matches('/'))
        .await
        .map_err(output_err)?;
    list_records(&output).await
}

async fn list_records(output: &Store) -> Result<Vec<JobRecord>, BatchError> {
    let mut out = Vec::new();
    for key in output.list("prediction-").await.map_err(output_err)? {
        let mut parts = key.split('/');
        if let (Some(_), Some("job.json"), None) = (parts.next(), parts.next(), parts.next()) {
            out.push(read_json::<JobRecord>(output, &key).await?);
        }
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.create_time));
    Ok(out)
}

impl Job {
    /// Shards whose results file is not committed yet.
    pub async fn pending(&self) -> Result<Vec<usize>, BatchError> {
        let done = self.committed().await?;
        let n = self.plan.shards.len();
        Ok((0..n)
            .filter(|&k| !done.contains(&results_key(k, n)))
            .collect())
    }

    /// Names of the results files committed so far.
    async fn committed(&self) -> Result<std::collections::BTreeSet<String>, BatchError> {
        Ok(self
            .dir
            .list("prediction.results-")
            .await
            .map_err(output_err)?
            .into_iter()
            .collect())
    }

    /// Checks that `served` is the model this job was created with.
    pub fn check_model(&self, served: &ServedModel) -> Result<(), BatchError> {
        let sha = &served.model.info().sha256;
        if *sha != self.record.model.sha256 {
            return Err(BatchError::Conflict(format!(
                "job {} ran model sha256 {}, but the model now loaded is {sha}",
                self.record.name, self.record.model.sha256
            )));
        }
        Ok(())
    }

    /// Runs one shard and commits it: the results file by conditional create (a shard already
    /// committed, by an earlier run or a concurrent worker, is left as it is), then its figures.
    /// Call from a blocking thread. Returns `false` when it was already committed.
    pub fn run_shard(&self, workers: &Workers<'_>, index: usize) -> Result<bool, BatchError> {
        let handle = workers.handle;
        let runner = runner::ShardRunner {
            served: workers.served,
            spec: &self.record.spec,
            plan: &self.plan,
            buckets: workers.buckets,
            handle,
            limits: workers.limits,
            lines_done: workers.lines_done,
        };
        let (bytes, stats) = runner.run(index)?;
        let key = results_key(index, self.plan.shards.len());
        handle.block_on(async {
            let created = match self.dir.put(&key, bytes, Condition::IfAbsent).await {
                Ok(_) => true,
                Err(e) if e.is_precondition_failed() => false,
                Err(e) => return Err(output_err(e)),
            };
            match self
                .dir
                .put(
                    &shard_stats_key(index),
                    to_json(&stats),
                    Condition::IfAbsent,
                )
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_precondition_failed() => {}
                Err(e) => return Err(output_err(e)),
            }
            Ok(created)
        })
    }

    /// Runs every pending shard on `threads` worker threads (each takes the next shard), and
    /// stops taking new shards after the first failure. Call from a blocking thread.
    ///
    /// A worker commits its shard before it takes the next: output memory stays at one shard
    /// per worker, whatever the job's size (the sync of a commit is short next to a shard).
    pub fn run_pending(
        &self,
        workers: &Workers<'_>,
        pending: &[usize],
        threads: usize,
    ) -> Result<(), BatchError> {
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let failure: Mutex<Option<BatchError>> = Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..threads.clamp(1, pending.len().max(1)) {
                scope.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&shard) = pending.get(i) else { break };
                        if let Err(e) = self.run_shard(workers, shard) {
                            stop.store(true, Ordering::Relaxed);
                            if let Ok(mut f) = failure.lock() {
                                f.get_or_insert(e);
                            }
                        }
                    }
                });
            }
        });
        match failure.into_inner().ok().flatten() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Adds up the committed shards, writes the errors file and the final record: succeeded
    /// when every shard is committed, else `failure` (or still running when there is none).
    pub async fn finalize(&mut self, failure: Option<String>) -> Result<JobRecord, BatchError> {
        let n = self.plan.shards.len();
        let committed = self.committed().await?;
        let mut total = ShardStats::default();
        let mut incomplete = 0u64;
        for (k, shard) in self.plan.shards.iter().enumerate() {
            if !committed.contains(&results_key(k, n)) {
                incomplete += shard.lines;
                continue;
            }
            let stats = match self
                .dir
                .get_opt(&shard_stats_key(k))
                .await
                .map_err(output_err)?
            {
                Some(o) => serde_json::from_slice(&o.bytes).ok(),
                None => None,
            };
            let stats = match stats {
                Some(s) => s,
                None => {
                    let o = self.dir.get(&results_key(k, n)).await.map_err(output_err)?;
                    runner::stats_of_results(k, &o.bytes)
                }
            };
            total.add(&stats);
        }
        let all_done = (0..n).all(|k| committed.contains(&results_key(k, n)));
        if all_done {
            let mut lines = Vec::new();
            for (status, s) in &total.errors {
                let line = serde_json::json!({"errorStatus": status, "count": s.count, "examples": s.examples});
                lines.extend_from_slice(line.to_string().as_bytes());
                lines.push(b'\n');
            }
            self.dir
                .put(ERRORS_STATS_KEY, lines, Condition::Always)
                .await
                .map_err(output_err)?;
        }
        let now = Utc::now();
        let record = &mut self.record;
        record.completion_stats = CompletionStats {
            successful_count: total.successful,
            failed_count: total.failed,
            incomplete_count: if all_done {
                0
            } else {
                incomplete.min(record.records)
            },
        };
        record.update_time = now;
        record.state = match (&failure, all_done) {
            (_, true) => JobState::JobStateSucceeded,
            (Some(_), false) => JobState::JobStateFailed,
            (None, false) => JobState::JobStateRunning,
        };
        record.error = if all_done { None } else { failure };
        if all_done && record.end_time.is_none() {
            record.end_time = Some(now);
        }
        self.dir
            .put("job.json", to_json(&*record), Condition::Always)
            .await
            .map_err(output_err)?;
        Ok(record.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_vertex() {
        assert_eq!(results_key(3, 12), "prediction.results-00003-of-00012");
        let t = DateTime::parse_from_rfc3339("2026-12-02T01:02:03.456Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(stamp(t), "2026_12_02T01_02_03_456Z");
        assert_eq!(path_safe("MNIST digits/v2"), "MNIST_digits_v2");
    }
}
