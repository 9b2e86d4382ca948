//! The `litehouse` command line.

mod batch_cmd;
mod endpoints_cmd;
mod inspect;
mod models_cmd;
mod pipeline_cmd;
mod predict;
mod registry_args;
mod schedule_cmd;
mod serve;
mod submit_cmd;
mod train_cmd;

use clap::{Parser, Subcommand};

/// litehouse: a small, fast predictor for TFLite models.
#[derive(Debug, Parser)]
#[command(name = "litehouse", version, about, long_about = None)]
struct Cli {
    /// Log lines as human text or as one JSON object per line (to stderr).
    #[arg(
        long,
        global = true,
        env = "LITEHOUSE_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: litehouse_telemetry::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show a model's signature, operators, quantization and size.
    Inspect(inspect::Args),
    /// Run Vertex-style JSON instances through a model and print predictions.
    Predict(predict::Args),
    /// Serve models over HTTP (Vertex AI, TF Serving, KServe V2 routes): every model in a
    /// directory, or the endpoints of a registry store (--store), kept live.
    Serve(serve::Args),
    /// The model registry: upload, list, show, alias, delete versions.
    Models(models_cmd::Args),
    /// Endpoints: create, describe, list, delete, deploy, undeploy, split traffic.
    Endpoints(endpoints_cmd::Args),
    /// Batch prediction over files on disk or in S3 (Vertex AI's formats): run, status, list.
    Batch(batch_cmd::Args),
    /// Train a classifier or regressor (MLP or CNN) and export it as int8 or float32 TFLite,
    /// scored by the runtime, with its serving config; optionally register it.
    Train(Box<train_cmd::Args>),
    /// Retraining pipelines: compile to the Kubeflow Pipelines v2 IR, run locally with caching,
    /// list, show and compare runs, promote or roll back, submit to KFP or Vertex AI.
    Pipeline(pipeline_cmd::Args),
    /// Schedules: pipelines on a cron timetable in any time zone, every tick recorded in the
    /// store and run once however many daemons share it.
    Schedule(schedule_cmd::Args),
    /// Run one built-in pipeline step (what a pipeline's containers run); `step KIND --help`
    /// lists its inputs and outputs.
    Step(pipeline_cmd::StepArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    litehouse_telemetry::logging::init(
        cli.log_format,
        "warn,litehouse_serving=info",
        litehouse_telemetry::logging::LogTarget {
            stderr: true,
            time: true,
        },
    );
    let result = match cli.command {
        Command::Inspect(a) => inspect::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Models(a) => models_cmd::run(a),
        Command::Endpoints(a) => endpoints_cmd::run(a),
        Command::Batch(a) => batch_cmd::run(a),
        Command::Train(a) => train_cmd::run(*a),
        Command::Pipeline(a) => pipeline_cmd::run(a),
        Command::Step(a) => pipeline_cmd::step(a),
        Command::Schedule(a) => schedule_cmd::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
