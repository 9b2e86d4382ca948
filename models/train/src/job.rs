//! A whole training job, as `litehouse train` and the pipeline's train step run it: read and
//! split the data, train (or search), export float32 or int8 TFLite, score the exported file in
//! the runtime, and write `model.tflite`, `model.json` (the serving config) and `metrics.json`
//! into the output directory all together or not at all.

use std::path::{Path, PathBuf};
use std::time::Instant;

use litehouse_models::LoadedModel;
use litehouse_predictor::model_config::{ImageConfig, ModelConfig, NumberMode, Postprocess};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cross_validation::{self, CrossValidation};
use crate::data::{split, DataSpec, Dataset, Features, SplitOptions, Targets};
use crate::error::{Result, TrainError};
use crate::evaluate::evaluate;
use crate::export::{float_tflite, int8_tflite, Calibration, IoType, Names};
use crate::metrics::{self, Metrics};
use crate::network::Network;
use crate::search::{self, Search, SearchProgress, TrialReport};
use crate::trainer::{EpochReport, TrainOptions};

/// Files a job writes into its output directory.
pub const MODEL_FILE: &str = "model.tflite";
/// The serving config beside the model (what `litehouse serve` reads).
pub const CONFIG_FILE: &str = "model.json";
/// The figures.
pub const METRICS_FILE: &str = "metrics.json";

/// How the trained network is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantize {
    /// Full-integer int8, calibrated on a sample of the training split.
    #[default]
    Int8,
    /// Float32 as trained.
    None,
}

impl std::str::FromStr for Quantize {
    type Err = TrainError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "int8" => Ok(Quantize::Int8),
            "none" | "float" | "float32" => Ok(Quantize::None),
            other => Err(TrainError::Invalid(format!(
                "unknown quantization {other:?}: expected int8 or none"
            ))),
        }
    }
}

/// Everything a training job needs.
#[derive(Debug, Clone)]
pub struct Job {
    /// The data.
    pub data: DataSpec,
    /// Hyperparameters (the base of a search).
    pub options: TrainOptions,
    /// Held-out fractions and the split seed.
    pub split: SplitOptions,
    /// float32 or int8.
    pub quantize: Quantize,
    /// Element type at an int8 model's boundary.
    pub io: IoType,
    /// A search over `options`, when given.
    pub search: Option<Search>,
    /// Training examples used to calibrate int8 ranges.
    pub calibration_examples: usize,
    /// K-fold cross-validation of the kept options, when given.
    pub folds: Option<usize>,
}

/// What a job reports while it works.
#[derive(Debug, Clone, PartialEq)]
pub enum JobProgress {
    /// The data is read and split.
    Loaded {
        /// Train, validation and test examples.
        counts: [usize; 3],
    },
    /// Training or search progress.
    Search(SearchProgress),
    /// A cross-validation fold was trained and scored.
    Fold {
        /// 1-based fold.
        fold: usize,
        /// Folds in all.
        folds: usize,
        /// The fold's figures.
        metrics: Metrics,
    },
    /// The kept network is being exported and scored.
    Exporting,
}

/// The data a model was trained on, for the record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataReport {
    /// Where it was read.
    pub source: String,
    /// sha256 of the examples and targets (format-independent), the lineage's data hash.
    pub sha256: String,
    /// One example's shape.
    pub item_shape: Vec<usize>,
    /// Class names or output names.
    pub targets: Vec<String>,
    /// Examples in each split.
    pub train: usize,
    /// Validation examples.
    pub validation: usize,
    /// Test examples.
    pub test: usize,
}

/// `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// `classify` or `regress`.
    pub task: String,
    /// The data.
    pub data: DataReport,
    /// The kept trial's options.
    pub options: TrainOptions,
    /// How the model was written.
    pub quantize: Quantize,
    /// Boundary type of the written model.
    pub io: IoType,
    /// Figures of the written `.tflite` on the test split, computed by the runtime.
    pub test: Metrics,
    /// Figures of the float network on the test split (what quantization costs).
    pub float_test: Metrics,
    /// Figures on the test split of the predictor that ignores the features (the training
    /// split's mean, or its class frequencies): what the model has to beat.
    pub baseline_test: Metrics,
    /// K-fold figures of the kept options, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_validation: Option<CrossValidation>,
    /// Validation figures of the kept epoch.
    pub validation: Metrics,
    /// The kept epoch.
    pub best_epoch: usize,
    /// Every epoch of the kept trial.
    pub history: Vec<EpochReport>,
    /// Every trial of a search (empty without one).
    pub trials: Vec<TrialReport>,
    /// sha256 of `model.tflite`.
    pub model_sha256: String,
    /// Its size.
    pub model_bytes: usize,
    /// Wall seconds of the job.
    pub seconds: f64,
}

/// sha256 over what the model learns from, independent of the file format it came in.
pub fn data_hash(parts: &[&Dataset]) -> String {
    let mut h = Sha256::new();
    for d in parts {
        for dim in &d.item_shape {
            h.update((*dim as u64).to_le_bytes());
        }
        match &d.features {
            Features::U8 { data, scale } => {
                h.update(data);
                h.update(scale.to_le_bytes());
            }
            Features::F32(data) => data.iter().for_each(|v| h.update(v.to_le_bytes())),
        }
        match &d.targets {
            Targets::Classes { labels, names } => {
                labels.iter().for_each(|l| h.update(l.to_le_bytes()));
                names.iter().for_each(|n| h.update(n.as_bytes()));
            }
            Targets::Values { data, names } => {
                data.iter().for_each(|v| h.update(v.to_le_bytes()));
                names.iter().for_each(|n| h.update(n.as_bytes()));
            }
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The serving config of a trained model: image preprocessing for image-shaped inputs (the
/// scale the data was read with), class labels and top-3 for classifiers, and real-valued JSON
/// numbers for 8-bit inputs (the runtime quantizes them with the input's own parameters).
pub fn serving_config(data: &Dataset, description: &str) -> ModelConfig {
    let image = match (&data.features, data.item_shape.as_slice()) {
        (Features::U8 { scale, .. }, &[h, w, c]) if c == 1 || c == 3 => Some(ImageConfig {
            input: None,
            width: w as u32,
            height: h as u32,
            channels: c as u8,
            scale: *scale,
            mean: vec![],
            std: vec![],
            invert: false,
            layout: Default::default(),
        }),
        _ => None,
    };
    let postprocess = match &data.targets {
        Targets::Classes { names, .. } => Some(Postprocess {
            output: None,
            labels: names.clone(),
            top_k: names.len().min(3),
        }),
        Targets::Values { .. } => None,
    };
    ModelConfig {
        model: Some(PathBuf::from(MODEL_FILE)),
        description: Some(description.to_string()),
        input_values: NumberMode::Real,
        image,
        postprocess,
        ..ModelConfig::default()
    }
}

/// Up to `n` training examples drawn with `seed`, as the network takes them.
fn calibration_sample(data: &Dataset, n: usize, seed: u64) -> (Vec<f32>, usize) {
    let mut order: Vec<usize> = (0..data.len()).collect();
    fastrand::Rng::with_seed(seed ^ 0x5ca1_ab1e).shuffle(&mut order);
    order.truncate(n.max(1));
    let mut x = Vec::with_capacity(order.len() * data.volume());
    for &i in &order {
        data.example(i, &mut x);
    }
    (x, order.len())
}

/// Runs `job` and writes its files into `out` (created when missing). On any error nothing
/// new is left in `out`.
pub fn run(job: &Job, out: &Path, progress: &mut dyn FnMut(JobProgress)) -> Result<Report> {
    let started = Instant::now();
    job.options.check()?;
    if let Some(folds) = job.folds {
        cross_validation::check_folds(folds)?;
    }
    let (data, shipped_test) = job.data.load()?;
    let splits = split(&data, shipped_test.as_ref(), job.split)?;
    progress(JobProgress::Loaded {
        counts: [
            splits.train.len(),
            splits.validation.len(),
            splits.test.len(),
        ],
    });
    let trials = match &job.search {
        Some(s) => s.trials(&job.options, job.options.seed)?,
        None => vec![job.options.clone()],
    };
    let found = search::run(&trials, &splits.train, &splits.validation, &mut |p| {
        progress(JobProgress::Search(p))
    })?;
    let net = &found.best.network;
    let task = match splits.train.targets {
        Targets::Classes { .. } => "classify",
        Targets::Values { .. } => "regress",
    };
    let description = format!(
        "litehouse train: {} {task} model on {}",
        found.best_options.arch.name(),
        job.data.path.display()
    );
    let names = Names {
        description: description.clone(),
        ..Names::default()
    };
    let export = |net: &Network, train: &Dataset| match job.quantize {
        Quantize::None => float_tflite(net, &names),
        Quantize::Int8 => {
            let (x, n) = calibration_sample(train, job.calibration_examples, job.options.seed);
            int8_tflite(net, &names, Calibration { inputs: &x, n }, job.io)
        }
    };
    let cross_validation = match job.folds {
        Some(folds) => Some(cross_validation::run(
            &data,
            folds,
            &found.best_options,
            job.split.validation,
            job.split.seed,
            &export,
            &mut |fold, metrics| {
                progress(JobProgress::Fold {
                    fold,
                    folds,
                    metrics: metrics.clone(),
                })
            },
        )?),
        None => None,
    };
    progress(JobProgress::Exporting);
    let bytes = export(net, &splits.train)?;
    let model = LoadedModel::load(&bytes)?;
    let test = evaluate(&model, &splits.test)?;
    let float_test = {
        let mut x = Vec::with_capacity(splits.test.len() * splits.test.volume());
        for i in 0..splits.test.len() {
            splits.test.example(i, &mut x);
        }
        metrics::of_outputs(&net.forward(&x, splits.test.len())?, &splits.test.targets)
    };
    let targets = match &data.targets {
        Targets::Classes { names, .. } | Targets::Values { names, .. } => names.clone(),
    };
    let report = Report {
        task: task.into(),
        data: DataReport {
            source: data.source.clone(),
            sha256: data_hash(&[&data]),
            item_shape: data.item_shape.clone(),
            targets,
            train: splits.train.len(),
            validation: splits.validation.len(),
            test: splits.test.len(),
        },
        options: found.best_options.clone(),
        quantize: job.quantize,
        io: if job.quantize == Quantize::None {
            IoType::Float
        } else {
            job.io
        },
        validation: found
            .best
            .validation()
            .cloned()
            .ok_or_else(|| TrainError::Invalid("no epoch was kept".into()))?,
        test,
        float_test,
        baseline_test: cross_validation::baseline(&splits.train, &splits.test),
        cross_validation,
        best_epoch: found.best.best_epoch,
        history: found.best.history.clone(),
        trials: if job.search.is_some() {
            found.trials.clone()
        } else {
            vec![]
        },
        model_sha256: model.info().sha256.clone(),
        model_bytes: bytes.len(),
        seconds: started.elapsed().as_secs_f64(),
    };
    let config = serving_config(&data, &description);
    write_all(
        out,
        &[
            (MODEL_FILE, bytes),
            (CONFIG_FILE, json_bytes(&config)?),
            (METRICS_FILE, json_bytes(&report)?),
        ],
    )?;
    Ok(report)
}

fn json_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut v = serde_json::to_vec_pretty(value)
        .map_err(|e| TrainError::Export(format!("encoding JSON: {e}")))?;
    v.push(b'\n');
    Ok(v)
}

/// Writes every file into a staging directory inside `out`, then renames them into place, so
/// that a failure part-way leaves `out` as it was.
fn write_all(out: &Path, files: &[(&str, Vec<u8>)]) -> Result<()> {
    let io =
        |what: &str, e: std::io::Error| TrainError::data(out.display(), format!("{what}: {e}"));
    std::fs::create_dir_all(out).map_err(|e| io("creating the output directory", e))?;
    let staging = out.join(format!(".staging-{}", std::process::id()));
    let result = (|| {
        std::fs::create_dir_all(&staging).map_err(|e| io("creating a staging directory", e))?;
        for (name, bytes) in files {
            std::fs::write(staging.join(name), bytes).map_err(|e| io(name, e))?;
        }
        for (name, _) in files {
            std::fs::rename(staging.join(name), out.join(name)).map_err(|e| io(name, e))?;
        }
        Ok(())
    })();
    // Best effort: the staging directory is empty on success, partial on failure.
    let _ = std::fs::remove_dir_all(&staging);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DataFormat, TaskName};
    use crate::trainer::Arch;

    /// A CSV whose two targets are linear in three features.
    fn linear_csv(dir: &Path, rows: usize) -> PathBuf {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut text = String::from("a,b,c,y,z\n");
        for _ in 0..rows {
            let (a, b, c) = (rng.f32() * 10.0, rng.f32() * 200.0, rng.f32());
            text += &format!("{a},{b},{c},{},{}\n", 2.0 * a + 0.1 * b, 50.0 - 3.0 * c);
        }
        let path = dir.join("linear.csv");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Class folders of 8x8 grayscale PNGs: dark images and bright ones.
    fn image_folders(dir: &Path, per_class: usize) -> PathBuf {
        let root = dir.join("images");
        let mut rng = fastrand::Rng::with_seed(4);
        for (label, base) in [("dark", 20u8), ("bright", 200u8)] {
            std::fs::create_dir_all(root.join(label)).unwrap();
            for i in 0..per_class {
                let img = image::GrayImage::from_fn(8, 8, |_, _| {
                    image::Luma([base.saturating_add(rng.u8(..40))])
                });
                img.save(root.join(label).join(format!("{i}.png"))).unwrap();
            }
        }
        root
    }

    fn job(data: PathBuf, task: TaskName, labels: &[&str], options: TrainOptions) -> Job {
        Job {
            data: DataSpec {
                path: data,
                format: DataFormat::Auto,
                labels: labels.iter().map(|s| s.to_string()).collect(),
                task,
                delimiter: ',',
            },
            options,
            split: SplitOptions::default(),
            quantize: Quantize::Int8,
            io: IoType::Float,
            search: None,
            calibration_examples: 100,
            folds: None,
        }
    }

    #[test]
    fn a_regressor_job_writes_a_scored_int8_model_and_its_config() {
        let dir = tempfile::tempdir().unwrap();
        let data = linear_csv(dir.path(), 600);
        let mut options = TrainOptions::new(Arch::Mlp {
            hidden: vec![16],
            dropout: 0.0,
        });
        options.epochs = 30;
        options.learning_rate = 1e-2;
        options.patience = 5;
        let out = dir.path().join("out");
        let report = run(
            &job(data, TaskName::Regress, &["y", "z"], options),
            &out,
            &mut |_| {},
        )
        .unwrap();
        let Metrics::Regress { r2, outputs, .. } = &report.test else {
            panic!("regression figures expected: {:?}", report.test)
        };
        assert_eq!(outputs, &["y", "z"]);
        assert!(
            r2.iter().all(|r| *r > 0.9),
            "int8 test r2 {r2:?}, float {:?}",
            report.float_test
        );
        assert_eq!(report.data.test, 60);
        // The files are there, and they describe each other.
        let bytes = std::fs::read(out.join(MODEL_FILE)).unwrap();
        let model = LoadedModel::load(&bytes).unwrap();
        assert_eq!(model.info().sha256, report.model_sha256);
        let config = ModelConfig::read(&out.join(CONFIG_FILE)).unwrap();
        assert!(config.image.is_none() && config.postprocess.is_none());
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join(METRICS_FILE)).unwrap()).unwrap();
        assert_eq!(written["test"]["r2"][0].as_f64(), Some(r2[0]));
        // Only the three files: no staging directory left behind.
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 3);
    }

    #[test]
    fn an_image_classifier_job_writes_preprocessing_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        let data = image_folders(dir.path(), 60);
        let mut options = TrainOptions::new(Arch::Mlp {
            hidden: vec![8],
            dropout: 0.0,
        });
        options.epochs = 20;
        options.learning_rate = 1e-2;
        options.patience = 5;
        let out = dir.path().join("out");
        let mut j = job(data, TaskName::Classify, &[], options);
        j.io = IoType::Uint8;
        let report = run(&j, &out, &mut |_| {}).unwrap();
        assert!(report.test.score() > 0.9, "{:?}", report.test);
        let config = ModelConfig::read(&out.join(CONFIG_FILE)).unwrap();
        let image = config.image.unwrap();
        assert_eq!((image.width, image.height, image.channels), (8, 8, 1));
        assert!((image.scale - 1.0 / 255.0).abs() < 1e-9);
        assert_eq!(config.postprocess.unwrap().labels, vec!["bright", "dark"]);
        let model = LoadedModel::load_file(out.join(MODEL_FILE)).unwrap();
        assert_eq!(
            model.signature().inputs[0].dtype,
            litehouse_models::ElementType::U8
        );
    }

    #[test]
    fn a_failing_job_leaves_the_output_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let data = linear_csv(dir.path(), 50);
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join(MODEL_FILE), b"the previous model").unwrap();
        let cases = [
            (
                "unknown label",
                job(
                    data.clone(),
                    TaskName::Regress,
                    &["w"],
                    TrainOptions::new(Arch::mlp()),
                ),
            ),
            (
                "cnn on a table",
                job(
                    data.clone(),
                    TaskName::Classify,
                    &["y"],
                    TrainOptions::new(Arch::cnn()),
                ),
            ),
            (
                "missing data",
                job(
                    dir.path().join("none.csv"),
                    TaskName::Regress,
                    &["y"],
                    TrainOptions::new(Arch::mlp()),
                ),
            ),
        ];
        for (name, j) in cases {
            run(&j, &out, &mut |_| {}).expect_err(name);
            assert_eq!(
                std::fs::read(out.join(MODEL_FILE)).unwrap(),
                b"the previous model",
                "{name}"
            );
            assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1, "{name}");
        }
    }

    #[test]
    fn the_data_hash_changes_with_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let spec = |p: PathBuf| DataSpec {
            path: p,
            format: DataFormat::Auto,
            labels: vec!["y".into(), "z".into()],
            task: TaskName::Regress,
            delimiter: ',',
        };
        let a = spec(linear_csv(dir.path(), 20)).load().unwrap().0;
        let b = spec(linear_csv(dir.path(), 21)).load().unwrap().0;
        assert_eq!(data_hash(&[&a]), data_hash(&[&a.clone()]));
        assert_ne!(data_hash(&[&a]), data_hash(&[&b]));
    }
}
