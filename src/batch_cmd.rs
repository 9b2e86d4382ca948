//! `litehouse batch run|status|list`: batch prediction over files on disk or in S3.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use litehouse_predictor::batch::{
    self, model_ref, Buckets, Format, InstanceType, JobRecord, JobSpec, JobState, Workers,
};
use litehouse_predictor::ImageLimits;

use crate::registry_args::print_json;

/// Arguments of `batch`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Run a job (or resume it: the same spec and output skip the shards already written).
    Run(Box<Run>),
    /// Show a job's record: state, counts, timing.
    Status {
        /// The job's output directory (.../prediction-<model>-<time>).
        job: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the jobs under an output URI, newest first.
    List {
        /// Where the jobs wrote (directory or s3://bucket/prefix).
        #[arg(long)]
        output: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
struct Run {
    /// A job file (JSON, or TOML when it ends in .toml) with the fields below; flags given too
    /// override it.
    #[arg(long)]
    job: Option<PathBuf>,
    /// Model: a .tflite path (NAME.json beside it is its config), name@version, name@alias,
    /// or endpoint:ID (its deployed model with the most traffic) in --store.
    #[arg(long)]
    model: Option<String>,
    /// Registry store for name@... and endpoint: models.
    #[arg(long, env = "LITEHOUSE_STORE")]
    store: Option<String>,
    /// Input files or prefixes (directories, s3://bucket/prefix/); gzip is recognized.
    #[arg(long = "input", num_args = 1..)]
    inputs: Vec<String>,
    /// jsonl, csv or file-list.
    #[arg(long)]
    format: Option<Format>,
    /// Where prediction-<model>-<time>/ is written (directory or s3://bucket/prefix).
    #[arg(long)]
    output: Option<String>,
    /// A field whose value is written as "key" instead of the instance.
    #[arg(long)]
    key_field: Option<String>,
    /// object or array (default: csv rows are arrays, jsonl lines as written).
    #[arg(long)]
    instance_type: Option<InstanceType>,
    /// Only these fields, in this order (comma-separated).
    #[arg(long, value_delimiter = ',')]
    included_fields: Vec<String>,
    /// Leave these fields out (comma-separated).
    #[arg(long, value_delimiter = ',')]
    excluded_fields: Vec<String>,
    /// Input lines per shard (one results file and one commit each).
    #[arg(long)]
    shard_size: Option<usize>,
    /// Instances per model call.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Worker threads (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
    /// Print the final job record as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        match args.command {
            Command::Run(r) => run_job(*r).await,
            Command::Status { job, json } => {
                let job = batch::open_job(&job).await?;
                show(&job.record, json)
            }
            Command::List { output, json } => {
                let jobs = batch::list_jobs(&output).await?;
                if json {
                    return print_json(&jobs);
                }
                if jobs.is_empty() {
                    println!("no batch jobs under {output}");
                }
                for j in &jobs {
                    println!(
                        "{}  {:?}  {} ok, {} failed, {} incomplete",
                        j.name,
                        j.state,
                        j.completion_stats.successful_count,
                        j.completion_stats.failed_count,
                        j.completion_stats.incomplete_count
                    );
                }
                Ok(())
            }
        }
    })
}

/// The job spec from the job file and the flags (flags win).
fn spec_of(r: &Run) -> anyhow::Result<JobSpec> {
    let mut spec = match &r.job {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading job file {}", path.display()))?;
            JobSpec::parse(&path.display().to_string(), &text)?
        }
        None => {
            let missing: Vec<&str> = [
                ("--model", r.model.is_none()),
                ("--input", r.inputs.is_empty()),
                ("--format", r.format.is_none()),
                ("--output", r.output.is_none()),
            ]
            .iter()
            .filter(|(_, m)| *m)
            .map(|(n, _)| *n)
            .collect();
            if !missing.is_empty() {
                bail!("missing {} (or give --job FILE)", missing.join(", "));
            }
            JobSpec {
                model: String::new(),
                store: None,
                inputs: Vec::new(),
                format: Format::Jsonl,
                instance_config: Default::default(),
                output: String::new(),
                shard_size: batch::spec::DEFAULT_SHARD_SIZE,
                batch_size: batch::spec::DEFAULT_BATCH_SIZE,
                threads: 0,
            }
        }
    };
    if let Some(m) = &r.model {
        spec.model = m.clone();
    }
    if r.store.is_some() {
        spec.store = r.store.clone();
    }
    if !r.inputs.is_empty() {
        spec.inputs = r.inputs.clone();
    }
    if let Some(f) = r.format {
        spec.format = f;
    }
    if let Some(o) = &r.output {
        spec.output = o.clone();
    }
    let ic = &mut spec.instance_config;
    if r.key_field.is_some() {
        ic.key_field = r.key_field.clone();
    }
    if r.instance_type.is_some() {
        ic.instance_type = r.instance_type;
    }
    if !r.included_fields.is_empty() {
        ic.included_fields = r.included_fields.clone();
    }
    if !r.excluded_fields.is_empty() {
        ic.excluded_fields = r.excluded_fields.clone();
    }
    if let Some(n) = r.shard_size {
        spec.shard_size = n;
    }
    if let Some(n) = r.batch_size {
        spec.batch_size = n;
    }
    if let Some(n) = r.threads {
        spec.threads = n;
    }
    spec.validate()?;
    Ok(spec)
}

async fn run_job(r: Run) -> anyhow::Result<()> {
    let spec = spec_of(&r)?;
    let started = Instant::now();
    let (served, used) = model_ref::load(&spec.model, spec.store.as_deref()).await?;
    let buckets = Buckets::default();
    let mut job = batch::create_or_resume(&spec, &used, &buckets).await?;
    job.check_model(&served)?;
    let pending = job.pending().await?;
    let total: u64 = pending.iter().map(|&k| job.plan.shards[k].lines).sum();
    let skipped = job.plan.shards.len() - pending.len();
    if !r.quiet {
        eprintln!(
            "job {} ({} shards, {} records; {} already committed) -> {}",
            job.record.name,
            job.plan.shards.len(),
            job.plan.records,
            skipped,
            job.record.output_directory
        );
    }
    let done = Arc::new(AtomicU64::new(0));
    let reporter = (!r.quiet).then(|| spawn_progress(done.clone(), total));
    let (shared_job, served) = (Arc::new(job.clone()), Arc::new(served));
    let threads = spec.worker_threads();
    let handle = tokio::runtime::Handle::current();
    let counter = done.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let workers = Workers {
            served: &served,
            buckets: &buckets,
            limits: ImageLimits::default(),
            lines_done: &counter,
            handle: &handle,
        };
        shared_job.run_pending(&workers, &pending, threads)
    })
    .await
    .context("batch workers")?;
    if let Some(reporter) = reporter {
        reporter.finish();
    }
    let failure = outcome.as_ref().err().map(ToString::to_string);
    let record = job.finalize(failure).await?;
    let secs = started.elapsed().as_secs_f64();
    if !r.quiet {
        eprintln!(
            "{:?}: {} predictions, {} error lines in {:.1} s ({:.0} lines/s)",
            record.state,
            record.completion_stats.successful_count,
            record.completion_stats.failed_count,
            secs,
            total as f64 / secs.max(1e-9)
        );
    }
    if r.json {
        print_json(&record)?;
    } else {
        println!("{}", record.output_directory);
    }
    outcome?;
    if record.state != JobState::JobStateSucceeded {
        bail!("job {} did not finish: {:?}", record.name, record.state);
    }
    Ok(())
}

fn show(record: &JobRecord, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(record);
    }
    let c = &record.completion_stats;
    println!("job:        {}", record.name);
    println!("output:     {}", record.output_directory);
    println!("state:      {:?}", record.state);
    println!(
        "model:      {}@{} (sha256 {})",
        record.model.name, record.model.version, record.model.sha256
    );
    println!("shards:     {}", record.shard_count);
    println!(
        "records:    {} ({} ok, {} failed, {} incomplete)",
        record.records, c.successful_count, c.failed_count, c.incomplete_count
    );
    println!("created:    {}", record.create_time.to_rfc3339());
    if let Some(end) = record.end_time {
        println!("ended:      {}", end.to_rfc3339());
    }
    if let Some(e) = &record.error {
        println!("error:      {e}");
    }
    Ok(())
}

/// Progress on stderr: a bar on a terminal (lines, lines/s, ETA), a plain line every 5 s
/// otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}

fn spawn_progress(done: Arc<AtomicU64>, total: u64) -> Progress {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tty = std::io::stderr().is_terminal();
    let bar = tty.then(|| {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} lines  {per_sec}  ETA {eta}",
        ) {
            bar.set_style(style);
        }
        bar
    });
    let (s, b) = (stop.clone(), bar.clone());
    let thread = std::thread::spawn(move || {
        let started = Instant::now();
        let mut last_line = Instant::now();
        while !s.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            let n = done.load(Ordering::Relaxed);
            match &b {
                Some(bar) => bar.set_position(n),
                None if last_line.elapsed() >= Duration::from_secs(5) => {
                    last_line = Instant::now();
                    let rate = n as f64 / started.elapsed().as_secs_f64().max(1e-9);
                    let eta = (total.saturating_sub(n)) as f64 / rate.max(1e-9);
                    eprintln!("{n}/{total} lines, {rate:.0} lines/s, ETA {eta:.0} s");
                }
                None => {}
            }
        }
    });
    Progress {
        bar,
        stop,
        thread: Some(thread),
    }
}
