//! Running one shard: its lines become instances, instances go to the model in batches, and
//! every line yields exactly one output line, a prediction or an error naming the line. A
//! batch the model refuses is re-run one instance at a time, so one bad line costs only
//! itself.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use tokio::runtime::Handle;

use super::plan::Plan;
use super::records::{self, Instance};
use super::source::{resolve_entry, Buckets};
use super::spec::{Format, JobSpec};
use super::BatchError;
use crate::catalog::ServedModel;
use crate::error::PredictError;
use crate::flat;
use crate::image_input::ImageLimits;
use crate::predict::{predict_flat, predict_with, single_input_volume, PredictOptions};
use litehouse_models::instances::flatten_numbers;

/// Largest file a file-list entry may name.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Error messages kept per status in a shard's figures.
const EXAMPLES: usize = 5;

/// What one shard produced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardStats {
    /// Shard index.
    pub shard: usize,
    /// Lines that got a prediction.
    pub successful: u64,
    /// Lines that got an error.
    pub failed: u64,
    /// Failures by canonical status.
    pub errors: BTreeMap<String, ErrorSummary>,
}

/// Failures of one status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorSummary {
    /// How many.
    pub count: u64,
    /// The first few messages.
    pub examples: Vec<String>,
}

impl ShardStats {
    /// Adds another shard's figures.
    pub fn add(&mut self, other: &ShardStats) {
        self.successful += other.successful;
        self.failed += other.failed;
        for (status, s) in &other.errors {
            let mine = self.errors.entry(status.clone()).or_default();
            mine.count += s.count;
            for e in &s.examples {
                if mine.examples.len() < EXAMPLES {
                    mine.examples.push(e.clone());
                }
            }
        }
    }

    fn failure(&mut self, e: &PredictError) {
        self.record_failure(e.code.name(), &e.message);
    }

    fn record_failure(&mut self, status: &str, message: &str) {
        self.failed += 1;
        let s = self.errors.entry(status.to_string()).or_default();
        s.count += 1;
        if s.examples.len() < EXAMPLES {
            s.examples.push(message.to_string());
        }
    }
}

/// Everything a shard needs, shared by the worker threads.
pub struct ShardRunner<'a> {
    /// The model.
    pub served: &'a ServedModel,
    /// The job.
    pub spec: &'a JobSpec,
    /// Its shards.
    pub plan: &'a Plan,
    /// Input access.
    pub buckets: &'a Buckets,
    /// Runs S3 reads from worker threads.
    pub handle: &'a Handle,
    /// Image limits for file-list entries and `{"b64"}` instances.
    pub limits: ImageLimits,
    /// Lines done so far, across shards (for progress).
    pub lines_done: &'a AtomicU64,
}

/// A line waiting for its batch, so that output lines keep the input's order.
struct Pending {
    line: u64,
    /// The output's `key`, or the instance as written (JSON text).
    label: Label,
    /// What the model gets, or why the line cannot be run.
    value: Result<Input, PredictError>,
}

/// One instance as the model will get it.
enum Input {
    /// Numbers of a single-input model, already flat: the fast path.
    Flat(Vec<f64>),
    /// Anything else (objects, strings, images), through the JSON path.
    Json(Json),
}

impl Input {
    fn to_json(&self) -> Json {
        match self {
            Input::Flat(values) => Json::Array(values.iter().copied().map(Json::from).collect()),
            Input::Json(v) => v.clone(),
        }
    }
}

enum Label {
    Key(Json),
    Instance(String),
}

impl ShardRunner<'_> {
    /// Runs shard `index` and returns its output lines (JSON Lines) and figures. Call from a
    /// blocking thread.
    pub fn run(&self, index: usize) -> Result<(Vec<u8>, ShardStats), BatchError> {
        let shard = self.plan.shards.get(index).ok_or_else(|| {
            BatchError::Spec(format!(
                "the job has no shard {index} ({} shards)",
                self.plan.shards.len()
            ))
        })?;
        let file = &self.plan.files[shard.file];
        let header: Vec<String> = match self.plan.headers.get(shard.file).cloned().flatten() {
            Some(h) => csv_row(&h)
                .map_err(|e| BatchError::Input(format!("{}: CSV header: {e}", file.uri)))?
                .iter()
                .map(|s| s.trim().to_string())
                .collect(),
            None => Vec::new(),
        };
        let mut reader = self
            .buckets
            .open(file, shard.start..shard.end, self.handle)?;
        let mut out = Vec::with_capacity(64 * 1024);
        let mut stats = ShardStats {
            shard: index,
            ..ShardStats::default()
        };
        let volume = single_input_volume(self.served);
        let mut batch: Vec<Pending> = Vec::with_capacity(self.spec.batch_size);
        let mut raw = Vec::new();
        for offset in 0..shard.lines {
            raw.clear();
            let n = reader
                .read_until(b'\n', &mut raw)
                .map_err(|e| BatchError::Input(format!("{}: {e}", file.uri)))?;
            if n == 0 {
                return Err(BatchError::Input(format!(
                    "{}: ended before line {} (the file changed since the job was planned)",
                    file.uri,
                    shard.first_line + offset
                )));
            }
            self.lines_done.fetch_add(1, Ordering::Relaxed);
            let line = shard.first_line + offset;
            let at = |e: PredictError| e.context(format!("{} line {line}", file.uri));
            let text = match std::str::from_utf8(&raw) {
                Ok(t) => t.trim_end_matches(['\r', '\n']),
                Err(_) => {
                    batch.push(Pending {
                        line,
                        label: Label::Instance(json_string(&String::from_utf8_lossy(&raw))),
                        value: Err(at(PredictError::invalid("the line is not UTF-8 text"))),
                    });
                    continue;
                }
            };
            if text.trim().is_empty() {
                continue;
            }
            batch.push(match self.parse(&file.uri, &header, volume, text) {
                Ok((label, value)) => Pending {
                    line,
                    label,
                    value: Ok(value),
                },
                Err((label, e)) => Pending {
                    line,
                    label,
                    value: Err(at(e)),
                },
            });
            if batch.len() >= self.spec.batch_size {
                self.flush(&file.uri, &mut batch, &mut out, &mut stats);
            }
        }
        self.flush(&file.uri, &mut batch, &mut out, &mut stats);
        Ok((out, stats))
    }

    /// One line to what the model gets and how the output names it; on failure, the label the
    /// error line carries.
    /// `volume` is the values per instance of a single-input model (the flat path's check).
    fn parse(
        &self,
        uri: &str,
        header: &[String],
        volume: Option<usize>,
        text: &str,
    ) -> Result<(Label, Input), (Label, PredictError)> {
        let config = &self.spec.instance_config;
        if let (Some(volume), Format::Jsonl, true) = (
            volume,
            self.spec.format,
            records::is_identity(config) && text.trim_start().starts_with('['),
        ) {
            let mut values = Vec::with_capacity(volume);
            if flat::parse_into(text, volume, &mut values) {
                return Ok((
                    Label::Instance(text.trim().to_string()),
                    Input::Flat(values),
                ));
            }
        }
        let raw_label = || Label::Instance(json_string(text));
        let instance = match self.spec.format {
            Format::Jsonl => records::from_jsonl(text, config).map_err(|e| (raw_label(), e))?,
            Format::Csv => {
                let row = csv_row(text).map_err(|e| {
                    (
                        raw_label(),
                        PredictError::invalid(format!("malformed CSV: {e}")),
                    )
                })?;
                records::from_csv(header, &row, config).map_err(|e| (raw_label(), e))?
            }
            Format::FileList => {
                let target = resolve_entry(uri, text.trim());
                let label = Label::Instance(json_string(&target));
                let bytes = self
                    .buckets
                    .read_whole(&target, MAX_FILE_BYTES, self.handle)
                    .map_err(|m| (label, PredictError::invalid(m)))?;
                let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
                Instance {
                    key: None,
                    value: json!({ "b64": b64 }),
                }
            }
        };
        let label = match instance.key {
            Some(k) => Label::Key(k),
            None if self.spec.format == Format::Jsonl && records::is_identity(config) => {
                Label::Instance(text.trim().to_string())
            }
            None => Label::Instance(instance.value.to_string()),
        };
        // Number arrays skip the JSON path: the values it would flatten, taken now.
        if let (Some(volume), Json::Array(_)) = (volume, &instance.value) {
            if let Ok((values, _)) = flatten_numbers(&instance.value) {
                if values.len() == volume {
                    return Ok((label, Input::Flat(values)));
                }
            }
        }
        Ok((label, Input::Json(instance.value)))
    }

    /// Runs the batch; when the model refuses it, runs its instances one by one so that each
    /// failure lands on its own line. Lines are written in input order.
    fn flush(
        &self,
        uri: &str,
        batch: &mut Vec<Pending>,
        out: &mut Vec<u8>,
        stats: &mut ShardStats,
    ) {
        if batch.is_empty() {
            return;
        }
        let pending = std::mem::take(batch);
        let inputs: Vec<&Input> = pending
            .iter()
            .filter_map(|p| p.value.as_ref().ok())
            .collect();
        let together = match inputs.len() {
            0 => Some(Vec::new()),
            n => self.predict(&inputs).ok().filter(|p| p.len() == n),
        };
        let mut together = together.map(Vec::into_iter);
        for p in pending {
            let result = match (p.value, together.as_mut()) {
                (Err(e), _) => Err(e),
                (Ok(_), Some(answers)) => answers.next().ok_or_else(|| {
                    PredictError::internal("the model returned too few predictions")
                }),
                (Ok(input), None) => self
                    .predict_one(input)
                    .map_err(|e| e.context(format!("{uri} line {}", p.line))),
            };
            match result {
                Ok(prediction) => {
                    write_prediction(out, p.label, &prediction);
                    stats.successful += 1;
                }
                Err(e) => {
                    write_error(out, p.label, &e);
                    stats.failure(&e);
                }
            }
        }
    }

    /// One instance alone; the model's own "instance 0:" prefix means nothing here, the line
    /// number says which record it was.
    fn predict_one(&self, input: Input) -> Result<Json, PredictError> {
        match self.predict(&[&input]) {
            Ok(mut one) if one.len() == 1 => Ok(one.remove(0)),
            Ok(other) => Err(PredictError::internal(format!(
                "the model returned {} predictions for 1 instance",
                other.len()
            ))),
            Err(e) => {
                let message = e
                    .message
                    .strip_prefix("instance 0: ")
                    .unwrap_or(&e.message)
                    .to_string();
                Err(PredictError::new(e.code, message))
            }
        }
    }

    /// All flat: one buffer, straight to the model. Otherwise the JSON path, as `:predict`.
    /// The inputs are borrowed: a refused batch is re-run from them one by one.
    fn predict(&self, inputs: &[&Input]) -> Result<Vec<Json>, PredictError> {
        let n = inputs.len();
        let options = PredictOptions {
            max_instances: Some(n.max(1)),
            ..PredictOptions::default()
        };
        let flats: Option<Vec<&[f64]>> = inputs
            .iter()
            .map(|i| match i {
                Input::Flat(values) => Some(values.as_slice()),
                Input::Json(_) => None,
            })
            .collect();
        if let Some(flats) = flats {
            return predict_flat(self.served, flats.concat(), n, options);
        }
        let values = inputs.iter().map(|i| i.to_json()).collect();
        predict_with(self.served, values, &self.limits, options)
    }
}

fn csv_row(text: &str) -> Result<csv::StringRecord, csv::Error> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut row = csv::StringRecord::new();
    reader.read_record(&mut row)?;
    Ok(row)
}

fn json_string(s: &str) -> String {
    Json::String(s.to_string()).to_string()
}

fn write_label(out: &mut Vec<u8>, label: Label) {
    match label {
        Label::Key(k) => {
            out.extend_from_slice(b"{\"key\":");
            out.extend_from_slice(k.to_string().as_bytes());
        }
        Label::Instance(text) => {
            out.extend_from_slice(b"{\"instance\":");
            out.extend_from_slice(text.as_bytes());
        }
    }
}

fn write_prediction(out: &mut Vec<u8>, label: Label, prediction: &Json) {
    write_label(out, label);
    out.extend_from_slice(b",\"prediction\":");
    // Writing JSON into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, prediction);
    out.extend_from_slice(b"}\n");
}

fn write_error(out: &mut Vec<u8>, label: Label, e: &PredictError) {
    write_label(out, label);
    let error = json!({"status": e.code.name(), "message": e.message});
    out.extend_from_slice(b",\"error\":");
    out.extend_from_slice(error.to_string().as_bytes());
    out.extend_from_slice(b"}\n");
}

/// Figures of a committed results file whose own figures were lost (a run killed between the
/// two writes): every line is a prediction or an error.
pub fn stats_of_results(index: usize, bytes: &[u8]) -> ShardStats {
    let mut stats = ShardStats {
        shard: index,
        ..ShardStats::default()
    };
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let v: Json = serde_json::from_slice(line).unwrap_or(Json::Null);
        match v.get("error") {
            Some(err) => {
                let status = err
                    .get("status")
                    .and_then(Json::as_str)
                    .unwrap_or("UNKNOWN");
                let message = err.get("message").and_then(Json::as_str).unwrap_or("");
                stats.record_failure(status, message);
            }
            None => stats.successful += 1,
        }
    }
    stats
}
