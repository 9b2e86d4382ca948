//! `litehouse pipeline compile|run|runs|show|compare|promote|rollback|submit` and
//! `litehouse step`: retraining pipelines compiled to the KFP v2 IR, run by the embedded runner
//! against a store, compared across runs, and submitted to KFP or Vertex AI.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use litehouse_pipeline::run::record::{self, RunRecord, RunState, TaskState};
use litehouse_pipeline::run::{Event, RunOptions};
use litehouse_pipeline::{check, compile, definition, report, roles, PipelineSpec};
use litehouse_store::Store;

use crate::registry_args::{parse_pairs, print_json, StoreArgs};

/// `println!` that ends the program quietly when standard output is closed (`| head`).
macro_rules! say {
    ($($t:tt)*) => { $crate::pipeline_cmd::say_line(format_args!($($t)*)) };
}
pub(crate) use say;

/// Writes a line to standard output; exits with success when the reader went away.
pub fn say_line(args: std::fmt::Arguments) {
    use std::io::Write as _;
    if writeln!(std::io::stdout().lock(), "{args}").is_err() {
        std::process::exit(0);
    }
}

/// Arguments of `pipeline`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Check a pipeline file and write its KFP v2 PipelineSpec (JSON).
    Compile {
        /// The pipeline file (YAML, or TOML with a .toml name).
        file: PathBuf,
        /// Set a parameter's default in the spec: --param epochs=5 (repeat).
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Where to write the spec (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Run a pipeline (a file or a compiled spec.json) with the embedded runner: tasks in
    /// dependency order, independent ones in parallel, cached, recorded in the store. Exits 0
    /// when the run succeeded or was gated, 1 when a step failed.
    Run(RunArgs),
    /// List a pipeline's runs (all pipelines without a name).
    Runs {
        /// Pipeline name.
        pipeline: Option<String>,
    },
    /// Show one run: each task's state, timing, outputs and log.
    Show {
        /// The run's name.
        run: String,
        /// Its pipeline (searched for when omitted).
        #[arg(long)]
        pipeline: Option<String>,
        /// Print every task's log lines too.
        #[arg(long)]
        logs: bool,
    },
    /// Compare a metric across a pipeline's runs and versions: a table, and an SVG chart.
    Compare {
        /// Pipeline name.
        pipeline: String,
        /// The metric (auto: accuracy, else r2).
        #[arg(long, default_value = "auto")]
        metric: String,
        /// Write the chart here (SVG).
        #[arg(long)]
        svg: Option<PathBuf>,
    },
    /// Move the challenger to champion at 100% and retire the old champion.
    Promote(RoleArgs),
    /// Restore the previous champion at 100% (the current one is undeployed).
    Rollback(RoleArgs),
    /// Submit a compiled spec to Kubeflow Pipelines (kfp://HOST[:PORT], kfps:// for TLS) or
    /// Vertex AI Pipelines (vertex://PROJECT/LOCATION).
    Submit(crate::submit_cmd::Args),
}

/// Arguments of `pipeline run`.
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// A pipeline file (YAML or TOML) or a compiled spec (.json).
    file: PathBuf,
    /// Set a parameter: --param data=new.csv (repeat).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Name the run (default: its start time with a random suffix).
    #[arg(long, conflicts_with = "resume")]
    run: Option<String>,
    /// Continue a run that was killed or failed: finished steps keep their outputs.
    #[arg(long, value_name = "RUN")]
    resume: Option<String>,
    /// Run every step even when an identical execution is cached.
    #[arg(long)]
    no_cache: bool,
    /// Keep task files here (default: a temporary directory, removed on success).
    #[arg(long)]
    work: Option<PathBuf>,
    /// Most steps running at once (default: the number of CPUs).
    #[arg(long)]
    parallel: Option<usize>,
    /// No progress lines.
    #[arg(long, short)]
    quiet: bool,
}

/// Arguments of `promote` and `rollback`.
#[derive(Debug, clap::Args)]
struct RoleArgs {
    /// Registry model name.
    #[arg(long)]
    model: String,
    /// Endpoint id (default: the model name).
    #[arg(long)]
    endpoint: Option<String>,
    /// Why, for the alias history.
    #[arg(long, default_value = "")]
    reason: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    crate::registry_args::block_on_threads(dispatch(args))
}

async fn dispatch(args: Args) -> anyhow::Result<()> {
    let json = args.store.json;
    match args.command {
        Command::Compile {
            file,
            params,
            output,
        } => {
            let spec = compile_file(&file, &pairs(&params)?)?;
            let text = serde_json::to_string_pretty(&spec)? + "\n";
            match output {
                Some(path) => {
                    write_atomically(&path, text.as_bytes())?;
                    if json {
                        print_json(&serde_json::json!({
                            "pipeline": spec.pipeline_info.name,
                            "output": path,
                            "tasks": spec.root.dag.as_ref().map_or(0, |d| d.tasks.len()),
                        }))?;
                    } else {
                        eprintln!(
                            "wrote {} ({} tasks)",
                            path.display(),
                            spec.root.dag.as_ref().map_or(0, |d| d.tasks.len())
                        );
                    }
                }
                None => say!("{}", text.trim_end()),
            }
            Ok(())
        }
        Command::Run(r) => run_pipeline(&args.store, r, json).await,
        Command::Runs { pipeline } => {
            let store = open(&args.store).await?;
            let names = match pipeline {
                Some(p) => vec![p],
                None => record::pipelines(&store).await?,
            };
            let mut all = Vec::new();
            for p in &names {
                all.extend(record::runs(&store, p).await?);
            }
            if json {
                let rows: Vec<_> = all.iter().map(summary).collect();
                return print_json(&rows);
            }
            if all.is_empty() {
                say!("no runs in {}", store.uri());
                return Ok(());
            }
            say!(
                "{:<20} {:<24} {:<10} {:<20} {:>8} {:>8}  {:<11} metrics",
                "PIPELINE",
                "RUN",
                "STATE",
                "STARTED",
                "SECONDS",
                "VERSION",
                "ROLE"
            );
            for r in &all {
                say!(
                    "{:<20} {:<24} {:<10} {:<20} {:>8} {:>8}  {:<11} {}",
                    r.pipeline,
                    r.run,
                    r.state.name(),
                    r.started.format("%Y-%m-%d %H:%M:%S"),
                    r.seconds().map_or("-".into(), |s| format!("{s:.1}")),
                    r.version().map_or("-".into(), |v| format!("v{v}")),
                    r.role().unwrap_or("-"),
                    show_metrics(&r.metrics()),
                );
            }
            Ok(())
        }
        Command::Show {
            run,
            pipeline,
            logs,
        } => {
            let store = open(&args.store).await?;
            let r = find_run(&store, pipeline.as_deref(), &run).await?;
            if json {
                return print_json(&r);
            }
            print_record(&r, logs);
            Ok(())
        }
        Command::Compare {
            pipeline,
            metric,
            svg,
        } => {
            let store = open(&args.store).await?;
            let runs = record::runs(&store, &pipeline).await?;
            if runs.is_empty() {
                bail!(
                    "pipeline '{pipeline}' has no runs in {} (see litehouse pipeline runs)",
                    store.uri()
                );
            }
            let registry = litehouse_registry::Registry::new(store.clone());
            let model = runs.iter().rev().find_map(report::model_name);
            let champion = match &model {
                Some(m) => registry.resolve(m, "champion").await.ok(),
                None => None,
            };
            let c = report::compare(&pipeline, &runs, &metric, champion);
            if let Some(path) = &svg {
                write_atomically(path, report::svg(&c).as_bytes())?;
            }
            if json {
                return print_json(&c);
            }
            say!(
                "{:<24} {:<10} {:>8}  {:<11} {:>10}",
                "RUN",
                "STATE",
                "VERSION",
                "ROLE",
                c.metric.to_uppercase()
            );
            for row in &c.rows {
                say!(
                    "{:<24} {:<10} {:>8}  {:<11} {:>10}{}",
                    row.run,
                    row.state.name(),
                    row.version.map_or("-".into(), |v| format!("v{v}")),
                    row.role.as_deref().unwrap_or("-"),
                    row.value.map_or("-".into(), |v| format!("{v:.4}")),
                    if row.champion { "  <- champion" } else { "" }
                );
            }
            if let Some(t) = c.threshold {
                say!("gate threshold: {} {t}", c.metric);
            }
            if let Some(path) = &svg {
                eprintln!("wrote {}", path.display());
            }
            Ok(())
        }
        Command::Promote(r) | Command::Rollback(r) if r.model.is_empty() => {
            bail!("--model must name a registry model")
        }
        Command::Promote(r) => {
            let registry = args.store.registry().await?;
            let endpoint = r.endpoint.clone().unwrap_or_else(|| r.model.clone());
            let reason = if r.reason.is_empty() {
                "promoted by hand".to_string()
            } else {
                r.reason
            };
            let moved = roles::promote(&registry, &r.model, &endpoint, &actor(), &reason).await?;
            moved_out(&moved, json)
        }
        Command::Rollback(r) => {
            let registry = args.store.registry().await?;
            let endpoint = r.endpoint.clone().unwrap_or_else(|| r.model.clone());
            let reason = if r.reason.is_empty() {
                "rolled back by hand".to_string()
            } else {
                r.reason
            };
            let moved = roles::rollback(&registry, &r.model, &endpoint, &actor(), &reason).await?;
            moved_out(&moved, json)
        }
        Command::Submit(s) => crate::submit_cmd::run(s, json).await,
    }
}

/// Who moved an alias from the command line.
fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "someone".into());
    format!("litehouse pipeline (user {user})")
}

fn moved_out(moved: &roles::Moved, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(&serde_json::json!({
            "role": moved.role,
            "deployed_model": moved.deployed_model,
            "endpoint": moved.endpoint,
            "message": moved.message,
        }));
    }
    say!("{}", moved.message);
    say!(
        "traffic: {}",
        litehouse_registry::show_split(&moved.endpoint.traffic_split)
    );
    Ok(())
}

fn pairs(params: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    parse_pairs("--param", params, |v| Ok(v.to_string()))
}

/// A pipeline file checked (with `params` as defaults) and compiled.
pub fn compile_file(
    file: &Path,
    params: &BTreeMap<String, String>,
) -> anyhow::Result<PipelineSpec> {
    let parsed = definition::read(file)?;
    let plan = check(&parsed, params)?;
    Ok(compile(&plan))
}

/// The spec to run: a compiled `.json` as it is, or a pipeline file compiled without
/// overrides (they are the run's parameters, so every run of a file runs the same spec).
pub fn load_spec(file: &Path, params: &BTreeMap<String, String>) -> anyhow::Result<PipelineSpec> {
    if file.extension().is_some_and(|e| e == "json") {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        return serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{}: not a PipelineSpec this runner reads (compile pipeline files with litehouse pipeline compile)",
                file.display()
            )
        });
    }
    // Checked with the overrides for their messages; compiled without them.
    compile_file(file, params)?;
    compile_file(file, &BTreeMap::new())
}

async fn open(store: &StoreArgs) -> anyhow::Result<Store> {
    Store::open(&store.store)
        .await
        .with_context(|| format!("opening store {}", store.store))
}

async fn run_pipeline(store_args: &StoreArgs, r: RunArgs, json: bool) -> anyhow::Result<()> {
    let params = pairs(&r.params)?;
    let spec = load_spec(&r.file, &params)?;
    let store = open(store_args).await?;
    store.ensure_bucket().await?;
    let options = RunOptions {
        params,
        run: r.run,
        resume: r.resume,
        cache: !r.no_cache,
        work: r.work,
        parallelism: r
            .parallel
            .unwrap_or_else(|| RunOptions::default().parallelism),
    };
    let quiet = r.quiet || json;
    let started = std::time::Instant::now();
    let progress: litehouse_pipeline::run::Progress = Arc::new(move |e: &Event| {
        if quiet {
            return;
        }
        let t = started.elapsed().as_secs_f64();
        match e {
            Event::Started { run, attempt } if *attempt > 1 => {
                eprintln!("run {run} (attempt {attempt}: finished steps keep their outputs)")
            }
            Event::Started { run, .. } => eprintln!("run {run}"),
            Event::TaskStarted { task } => eprintln!("[{t:7.1}s] {task:<14} started"),
            Event::TaskFinished { task, record } => {
                let took = record
                    .seconds
                    .map_or(String::new(), |s| format!(" in {s:.1}s"));
                let why = record
                    .reason
                    .as_deref()
                    .map_or(String::new(), |w| format!(": {w}"));
                let from = record
                    .cached_from
                    .as_deref()
                    .map_or(String::new(), |f| format!(" (from run {f})"));
                eprintln!(
                    "[{t:7.1}s] {task:<14} {}{took}{from}{why}",
                    record.state.name()
                );
            }
        }
    });
    let done = litehouse_pipeline::run(&store, &spec, &options, progress).await?;
    if json {
        print_json(&done)?;
    } else {
        let outcome = match done.state {
            RunState::Gated => "gated (the candidate was not deployed)",
            other => other.name(),
        };
        say!(
            "run {} of {}: {outcome}{}",
            done.run,
            done.pipeline,
            done.reason
                .as_deref()
                .map_or(String::new(), |r| format!(": {r}"))
        );
        if let (Some(v), Some(role)) = (done.version(), done.role()) {
            say!("model version v{v} deployed as {role}");
        }
        say!(
            "record: {}/{}",
            store.uri(),
            record::record_key(&done.pipeline, &done.run)
        );
    }
    if done.state == RunState::Failed {
        bail!(
            "run {} failed{} (continue it with --resume {})",
            done.run,
            done.reason
                .as_deref()
                .map_or(String::new(), |r| format!(": {r}")),
            done.run
        );
    }
    Ok(())
}

async fn find_run(store: &Store, pipeline: Option<&str>, run: &str) -> anyhow::Result<RunRecord> {
    if let Some(p) = pipeline {
        return Ok(record::load(store, p, run).await?);
    }
    for p in record::pipelines(store).await? {
        if let Ok(r) = record::load(store, &p, run).await {
            return Ok(r);
        }
    }
    bail!(
        "no pipeline in {} has a run '{run}' (see litehouse pipeline runs)",
        store.uri()
    )
}

fn summary(r: &RunRecord) -> serde_json::Value {
    serde_json::json!({
        "pipeline": r.pipeline,
        "run": r.run,
        "state": r.state,
        "reason": r.reason,
        "started": r.started,
        "finished": r.finished,
        "seconds": r.seconds(),
        "version": r.version(),
        "role": r.role(),
        "metrics": r.metrics(),
    })
}

fn show_metrics(m: &BTreeMap<String, f64>) -> String {
    m.iter()
        .take(4)
        .map(|(k, v)| format!("{k}={v:.4}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_record(r: &RunRecord, logs: bool) {
    say!("pipeline {}  run {}", r.pipeline, r.run);
    say!(
        "state    {}{}",
        r.state.name(),
        r.reason
            .as_deref()
            .map_or(String::new(), |w| format!(": {w}"))
    );
    say!(
        "started  {}  ({} attempt{})",
        r.started.to_rfc3339(),
        r.attempts,
        if r.attempts == 1 { "" } else { "s" }
    );
    if let Some(s) = r.seconds() {
        say!("took     {s:.1}s");
    }
    say!("store    {}", r.store);
    let params: Vec<String> = r
        .params
        .iter()
        .filter(|(k, _)| k.as_str() != "store")
        .map(|(k, v)| format!("{k}={}", litehouse_pipeline::types::value_text(v)))
        .collect();
    say!("params   {}", params.join(" "));
    say!("");
    say!("{:<14} {:<10} {:>8}  outputs", "TASK", "STATE", "SECONDS");
    for (name, t) in &r.tasks {
        let mut outs: Vec<String> = t
            .outputs
            .iter()
            .map(|(k, v)| {
                let text = litehouse_pipeline::types::value_text(v);
                let text = if text.len() > 70 {
                    format!("{}...", &text[..text.floor_char_boundary(67)])
                } else {
                    text
                };
                format!("{k}={text}")
            })
            .collect();
        outs.extend(t.artifacts.keys().map(|a| format!("[{a}]")));
        say!(
            "{:<14} {:<10} {:>8}  {}",
            name,
            t.state.name(),
            t.seconds.map_or("-".into(), |s| format!("{s:.1}")),
            outs.join(" ")
        );
        if let Some(why) = &t.reason {
            if t.state != TaskState::Succeeded {
                say!("{:<14} {why}", "");
            }
        }
        if let Some(from) = &t.cached_from {
            say!("{:<14} cached from run {from}", "");
        }
        if logs {
            for line in &t.log {
                say!("{:<14} | {line}", "");
            }
        }
    }
    let m = r.metrics();
    if !m.is_empty() {
        say!("");
        say!("metrics  {}", show_metrics(&m));
    }
}

/// Writes through a temporary file and a rename, so a failed write leaves no partial file.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Arguments of `litehouse step`.
#[derive(Debug, clap::Args)]
pub struct StepArgs {
    /// The step: ingest, validate, train, evaluate, gate, register, deploy.
    kind: String,
    /// Its inputs as --name value, outputs as --out-name path, and --pipeline/--run.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// `litehouse step KIND --input value ... --out-output path`: one built-in step, as a KFP
/// container runs it.
pub fn step(a: StepArgs) -> anyhow::Result<()> {
    if a.args.iter().any(|x| x == "--help" || x == "-h") {
        print_step_help(&a.kind)?;
        return Ok(());
    }
    let log = crate::registry_args::block_on_threads(async {
        Ok(litehouse_pipeline::steps::execute(&a.kind, &a.args).await?)
    })?;
    for line in log {
        say!("{line}");
    }
    Ok(())
}

fn print_step_help(kind: &str) -> anyhow::Result<()> {
    use litehouse_pipeline::steps::interface;
    let Some(i) = interface::builtin(kind) else {
        bail!("{}", interface::unknown(kind));
    };
    say!("litehouse step {}: {}\n\ninputs:", i.kind, i.summary);
    for p in i.inputs {
        let default = match p.fallback.value() {
            Some(v) => format!(" (default {})", litehouse_pipeline::types::value_text(&v)),
            None if p.fallback == interface::Fallback::Optional => " (optional)".into(),
            None => " (required)".into(),
        };
        say!(
            "  --{:<18} {}: {}{default}",
            p.name,
            p.ty.describe(),
            p.help
        );
    }
    say!("\noutputs:");
    for p in i.outputs {
        say!("  --out-{:<14} {}: {}", p.name, p.ty.describe(), p.help);
    }
    say!("\nalso: --pipeline NAME --run NAME (who moved an alias, in the registry's history)");
    Ok(())
}
