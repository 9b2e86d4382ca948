//! `litehouse train`: train a classifier or regressor on local or S3 data, export it as int8
//! (or float32) TFLite scored by the runtime, optionally register it.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use litehouse_registry::{Lineage, UploadRequest};
use litehouse_train::data::{DataFormat, DataSpec, SplitOptions, TaskName};
use litehouse_train::export::IoType;
use litehouse_train::job::{self, JobProgress};
use litehouse_train::search::{Method, Search, SearchProgress};
use litehouse_train::trainer::Progress;
use litehouse_train::{Arch, Job, Quantize, Report, TrainOptions};

use crate::registry_args::{block_on, print_json};

/// Arguments of `train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Training data: an IDX directory (MNIST), a CSV or JSONL file, a folder of class
    /// folders (DIR/<label>/*.png) or a file list; a local path or s3://bucket/key-or-prefix.
    #[arg(long)]
    data: String,
    /// Data format (auto: recognized from the path).
    #[arg(long, default_value = "auto")]
    format: DataFormat,
    /// classify or regress.
    #[arg(long, default_value = "classify")]
    task: TaskName,
    /// Label column or field of CSV and JSONL data; repeat (or comma-separate) for a
    /// multi-output regressor.
    #[arg(long = "label", value_delimiter = ',')]
    labels: Vec<String>,
    /// CSV delimiter.
    #[arg(long, default_value = ",")]
    delimiter: char,
    /// mlp or cnn.
    #[arg(long, default_value = "mlp")]
    arch: String,
    /// Hidden dense layers, comma-separated (default 128).
    #[arg(long, value_delimiter = ',')]
    hidden: Vec<usize>,
    /// CNN convolution filters, comma-separated (default 32,64).
    #[arg(long, value_delimiter = ',')]
    filters: Vec<usize>,
    /// CNN kernel size.
    #[arg(long, default_value_t = 3)]
    kernel: usize,
    /// Dropout after hidden layers (default 0.2 for mlp, 0 for cnn).
    #[arg(long)]
    dropout: Option<f64>,
    /// Most epochs (early stopping may end sooner).
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Examples per gradient step.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f64,
    /// Epochs without a better validation score before stopping.
    #[arg(long, default_value_t = 2)]
    patience: usize,
    /// L2 weight decay (0: none); on small tables it keeps the network near the mean.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Also score the options by K-fold cross-validation (K models, each tested on the fold
    /// it did not see), next to the mean (or majority-class) predictor: the honest figure
    /// for a table too small for one test split to say much.
    #[arg(long)]
    folds: Option<usize>,
    /// Seed of the splits, the weights, the shuffles and random search.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Fraction held out for validation (early stopping, search).
    #[arg(long, default_value_t = 0.1)]
    validation: f64,
    /// Fraction held out for the test figures (ignored when the data ships a test set).
    #[arg(long, default_value_t = 0.1)]
    test: f64,
    /// int8 (full-integer, calibrated) or none (float32).
    #[arg(long, default_value = "int8")]
    quantize: Quantize,
    /// Input and output type of an int8 model: float (QUANTIZE/DEQUANTIZE inside), int8 or
    /// uint8.
    #[arg(long, default_value = "float")]
    io: IoType,
    /// Training examples used to calibrate int8 ranges.
    #[arg(long, default_value_t = 1000)]
    calibration_examples: usize,
    /// A search file (TOML or JSON): method grid|random, trials, and a [space] of
    /// learning_rate, hidden, batch_size, epochs, filters, dropout, weight_decay lists.
    #[arg(long)]
    search: Option<PathBuf>,
    /// Random-search trials (overrides the file's; alone, with --search absent, it is an error).
    #[arg(long)]
    trials: Option<usize>,
    /// Output directory: model.tflite, model.json (serving config), metrics.json.
    #[arg(long)]
    out: PathBuf,
    /// Register the model under this name in --store, with its metrics and lineage.
    #[arg(long)]
    register: Option<String>,
    /// Registry store for --register: a directory or s3://bucket[/prefix].
    #[arg(long, env = "LITEHOUSE_STORE", default_value = ".litehouse")]
    store: String,
    /// Aliases to point at the registered version (repeatable).
    #[arg(long = "alias", requires = "register")]
    aliases: Vec<String>,
    /// Print the report (metrics.json, plus the registered version) as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
}

fn arch(a: &Args) -> anyhow::Result<Arch> {
    Ok(match a.arch.as_str() {
        "mlp" => {
            let Arch::Mlp { hidden, dropout } = Arch::mlp() else {
                unreachable!("Arch::mlp is an MLP")
            };
            Arch::Mlp {
                hidden: if a.hidden.is_empty() {
                    hidden
                } else {
                    a.hidden.clone()
                },
                dropout: a.dropout.unwrap_or(dropout),
            }
        }
        "cnn" => {
            let Arch::Cnn {
                filters,
                hidden,
                dropout,
                ..
            } = Arch::cnn()
            else {
                unreachable!("Arch::cnn is a CNN")
            };
            Arch::Cnn {
                filters: if a.filters.is_empty() {
                    filters
                } else {
                    a.filters.clone()
                },
                kernel: a.kernel,
                hidden: if a.hidden.is_empty() {
                    hidden
                } else {
                    a.hidden.clone()
                },
                dropout: a.dropout.unwrap_or(dropout),
            }
        }
        other => bail!("unknown --arch {other:?}: expected mlp or cnn"),
    })
}

/// Progress on stderr: a bar over each epoch's steps on a terminal, one line per epoch and
/// trial otherwise.
struct Reporter {
    bar: Option<ProgressBar>,
    quiet: bool,
    trials: usize,
}

impl Reporter {
    fn line(&self, text: String) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn update(&mut self, p: JobProgress) {
        match p {
            JobProgress::Loaded { counts: [t, v, s] } => self.line(format!(
                "data: {t} train, {v} validation, {s} test examples"
            )),
            JobProgress::Search(SearchProgress::Trial { trial, of, options }) => {
                self.trials = of;
                if of > 1 {
                    self.line(format!(
                        "trial {trial}/{of}: {}",
                        serde_json::to_string(&options).unwrap_or_default()
                    ));
                }
            }
            JobProgress::Search(SearchProgress::Train(Progress::Batch { epoch, done, total })) => {
                if let Some(bar) = &self.bar {
                    bar.set_length(total as u64);
                    bar.set_position(done as u64);
                    bar.set_message(format!("epoch {epoch}"));
                }
            }
            JobProgress::Search(SearchProgress::Train(Progress::Epoch(e))) => self.line(format!(
                "epoch {:>3}  loss {:.4}  validation {}  {:.1}s",
                e.epoch,
                e.train_loss,
                e.validation.summary(),
                e.seconds
            )),
            JobProgress::Search(SearchProgress::Done(t)) => {
                if self.trials > 1 {
                    self.line(format!(
                        "trial {} done: validation {} (epoch {} of {}), {:.1}s",
                        t.trial,
                        t.validation.summary(),
                        t.best_epoch,
                        t.epochs_run,
                        t.seconds
                    ))
                }
            }
            JobProgress::Fold {
                fold,
                folds,
                metrics,
            } => self.line(format!(
                "cross-validation fold {fold} of {folds}: held out {}",
                metrics.summary()
            )),
            JobProgress::Exporting => {
                if let Some(bar) = &self.bar {
                    bar.finish_and_clear();
                }
                self.line("exporting and scoring the exported model".into());
            }
        }
    }
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let mut options = TrainOptions::new(arch(&a)?);
    options.epochs = a.epochs;
    options.batch_size = a.batch_size;
    options.learning_rate = a.learning_rate;
    options.patience = a.patience;
    options.weight_decay = a.weight_decay;
    options.seed = a.seed;
    options.check()?;
    let search = match (&a.search, a.trials) {
        (Some(path), trials) => {
            let mut s = Search::read(path)?;
            if trials.is_some() {
                s.trials = trials;
            }
            Some(s)
        }
        (None, Some(_)) => bail!("--trials needs a search space (--search FILE)"),
        (None, None) => None,
    };
    if let Some(s) = &search {
        // Refuse a bad space before any data is read.
        s.trials(&options, options.seed)?;
        if s.method == Method::Random && s.trials.is_none() {
            bail!("random search needs --trials N (or trials in the search file)");
        }
    }
    let staging = tempfile::tempdir().context("creating a staging directory")?;
    let path = if a.data.starts_with("s3://") {
        block_on(async { Ok(litehouse_store::download(&a.data, staging.path()).await?) })
            .with_context(|| format!("staging {}", a.data))?
    } else {
        PathBuf::from(a.data.strip_prefix("file://").unwrap_or(&a.data))
    };
    let job = Job {
        data: DataSpec {
            path,
            format: a.format,
            labels: a.labels.clone(),
            task: a.task,
            delimiter: a.delimiter,
        },
        options,
        split: SplitOptions {
            validation: a.validation,
            test: a.test,
            seed: a.seed,
        },
        quantize: a.quantize,
        io: a.io,
        search,
        calibration_examples: a.calibration_examples,
        folds: a.folds,
    };
    let bar = (!a.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} steps") {
            bar.set_style(style);
        }
        bar
    });
    let mut reporter = Reporter {
        bar,
        quiet: a.quiet,
        trials: 1,
    };
    let report = job::run(&job, &a.out, &mut |p| reporter.update(p))
        .with_context(|| format!("training on {}", a.data))?;
    let registered = match &a.register {
        Some(name) => Some(block_on(register(&a, name, &report))?),
        None => None,
    };
    if a.json {
        let mut value = serde_json::to_value(&report)?;
        if let (Some(obj), Some((name, version))) = (value.as_object_mut(), &registered) {
            obj.insert(
                "registered".into(),
                serde_json::json!({"name": name, "version": version}),
            );
        }
        return print_json(&value);
    }
    if let Some(cv) = &report.cross_validation {
        println!(
            "{}-fold cross-validation: {} ({} the feature-blind baseline's {})",
            cv.folds,
            cv.model.summary(),
            if cv.beats_baseline {
                "beats"
            } else {
                "does not beat"
            },
            cv.baseline.summary()
        );
    }
    println!(
        "wrote {} ({} bytes, {}): test {} (float {}, baseline {}), {} epochs in {:.1}s",
        a.out.join(job::MODEL_FILE).display(),
        report.model_bytes,
        match report.quantize {
            Quantize::Int8 => "int8",
            Quantize::None => "float32",
        },
        report.test.summary(),
        report.float_test.summary(),
        report.baseline_test.summary(),
        report.history.len(),
        report.seconds
    );
    if let Some((name, version)) = registered {
        println!("registered {name} version {version} in {}", a.store);
    }
    Ok(())
}

/// The test figures, and the cross-validated ones as `cv_<name>` when there are some.
fn registered_metrics(report: &Report) -> BTreeMap<String, f64> {
    let mut metrics = report.test.flat();
    if let Some(cv) = &report.cross_validation {
        metrics.extend(
            cv.model
                .flat()
                .into_iter()
                .map(|(k, v)| (format!("cv_{k}"), v)),
        );
    }
    metrics
}

/// Uploads the written model with its serving config, test metrics and lineage.
async fn register(a: &Args, name: &str, report: &Report) -> anyhow::Result<(String, u64)> {
    let registry = litehouse_registry::Registry::open(&a.store)
        .await
        .with_context(|| format!("opening store {}", a.store))?;
    let bytes = std::fs::read(a.out.join(job::MODEL_FILE))?;
    let config = litehouse_predictor::ModelConfig::read(&a.out.join(job::CONFIG_FILE))?;
    let mut params = BTreeMap::new();
    if let serde_json::Value::Object(o) = serde_json::to_value(&report.options)? {
        params.extend(o);
    }
    params.insert("quantize".into(), serde_json::to_value(report.quantize)?);
    params.insert("io".into(), serde_json::to_value(report.io)?);
    params.insert("task".into(), report.task.clone().into());
    let request = UploadRequest {
        name: name.to_string(),
        description: format!(
            "{} {} trained on {}",
            report.options.arch.name(),
            report.task,
            a.data
        ),
        metrics: registered_metrics(report),
        labels: BTreeMap::new(),
        lineage: Lineage {
            source_run: None,
            data_hash: Some(report.data.sha256.clone()),
            params,
            source_uri: Some(a.data.clone()),
        },
        serving: Some(serde_json::to_value(config)?),
    };
    let manifest = registry.upload(bytes, request).await?;
    for alias in &a.aliases {
        registry
            .set_alias(
                name,
                alias,
                Some(manifest.version),
                "litehouse train",
                "set at training",
            )
            .await?;
    }
    Ok((manifest.name, manifest.version))
}
