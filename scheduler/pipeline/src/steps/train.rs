//! train: the job `litehouse train` runs, on a dataset artifact, writing a model artifact
//! (`model.tflite`, `model.json`, `metrics.json`) plus `split.json`, so evaluate scores the
//! candidate and the champion on the very test split the candidate never saw.

use litehouse_train::data::SplitOptions;
use litehouse_train::export::IoType;
use litehouse_train::job::{self, JobProgress};
use litehouse_train::search::{Search, SearchProgress};
use litehouse_train::trainer::Progress;
use litehouse_train::{Arch, Job, Quantize, TrainOptions};

use super::dataset::DatasetInfo;
use super::StepArgs;
use crate::error::{PipelineError, Result};

/// The split the candidate was trained with, inside the model artifact.
pub const SPLIT_FILE: &str = "split.json";

/// `split.json`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SplitRecord {
    /// Validation fraction.
    pub validation: f64,
    /// Test fraction.
    pub test: f64,
    /// Shuffle seed.
    pub seed: u64,
}

impl Default for SplitRecord {
    /// The train step's own defaults, read from its interface so the two cannot drift.
    fn default() -> Self {
        let num =
            |name: &str, or: f64| match super::interface::TRAIN.input(name).map(|p| p.fallback) {
                Some(super::interface::Fallback::Num(n)) => n,
                _ => or,
            };
        let seed = match super::interface::TRAIN.input("seed").map(|p| p.fallback) {
            Some(super::interface::Fallback::Int(i)) => i.unsigned_abs(),
            _ => 42,
        };
        SplitRecord {
            validation: num("validation", 0.1),
            test: num("test", 0.1),
            seed,
        }
    }
}

fn sizes(a: &StepArgs, name: &str) -> Result<Vec<usize>> {
    let text = a.text(name);
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| a.bad(name, format!("expected sizes like 128,64, found {text:?}")))
        })
        .collect()
}

/// The job's hyperparameters from the step's inputs.
pub fn options(a: &StepArgs) -> Result<TrainOptions> {
    let hidden = sizes(a, "hidden")?;
    let dropout = a.num("dropout")?;
    let arch = match a.text("arch").as_str() {
        "mlp" => Arch::Mlp { hidden, dropout },
        "cnn" => Arch::Cnn {
            filters: sizes(a, "filters")?,
            kernel: a.count("kernel")?,
            hidden,
            dropout,
        },
        other => return Err(a.bad("arch", format!("expected mlp or cnn, found {other:?}"))),
    };
    let seed = a.count("seed")? as u64;
    let options = TrainOptions {
        arch,
        epochs: a.count("epochs")?,
        batch_size: a.count("batch_size")?,
        learning_rate: a.num("learning_rate")?,
        patience: a.count("patience")?,
        weight_decay: a.num("weight_decay")?,
        seed,
    };
    options.check()?;
    Ok(options)
}

/// train: runs the training job into `--out-model`.
pub async fn train(a: &StepArgs) -> Result<Vec<String>> {
    let dir = a.required_artifact("dataset")?;
    let info = DatasetInfo::read(&dir)?;
    let options = options(a)?;
    let split = SplitOptions {
        validation: a.num("validation")?,
        test: a.num("test")?,
        seed: options.seed,
    };
    let quantize: Quantize = a
        .text("quantize")
        .parse()
        .map_err(|e| a.bad("quantize", e))?;
    let io: IoType = a.text("io").parse().map_err(|e| a.bad("io", e))?;
    let search = match a.text("search").as_str() {
        "" => None,
        path => {
            let mut s = Search::read(std::path::Path::new(path))?;
            let trials = a.count("trials")?;
            if trials > 0 {
                s.trials = Some(trials);
            }
            s.trials(&options, options.seed)?;
            Some(s)
        }
    };
    let job = Job {
        data: info.spec(&dir),
        options,
        split,
        quantize,
        io,
        search,
        calibration_examples: 500,
        folds: None,
    };
    let out = a.out("model").to_path_buf();
    let report = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        let report = job::run(&job, &out, &mut |p| match p {
            JobProgress::Loaded { counts } => {
                lines.push(format!(
                    "data: {} train, {} validation, {} test",
                    counts[0], counts[1], counts[2]
                ));
            }
            JobProgress::Search(SearchProgress::Train(Progress::Epoch(e))) => {
                let line = format!(
                    "epoch {}: train loss {:.4}, validation {} ({:.1} s)",
                    e.epoch,
                    e.train_loss,
                    e.validation.summary(),
                    e.seconds
                );
                tracing::info!("{line}");
                lines.push(line);
            }
            JobProgress::Search(SearchProgress::Done(t)) => {
                lines.push(format!(
                    "trial {}: validation {}",
                    t.trial,
                    t.validation.summary()
                ));
            }
            JobProgress::Search(_) | JobProgress::Fold { .. } => {}
            JobProgress::Exporting => lines.push("exporting and scoring the written model".into()),
        });
        report.map(|r| (r, lines))
    })
    .await
    .map_err(|e| PipelineError::step("train", e))?;
    let (report, mut lines) = report?;
    super::write_json(
        &a.out("model").join(SPLIT_FILE),
        &SplitRecord {
            validation: split.validation,
            test: split.test,
            seed: split.seed,
        },
    )?;
    let score = report.test.score();
    a.write_param("score", &score.into())?;
    lines.push(format!(
        "trained {} ({}): test {} ({} examples), {:.1} s",
        report.options.arch.name(),
        report.task,
        report.test.summary(),
        report.data.test,
        report.seconds
    ));
    Ok(lines)
}
