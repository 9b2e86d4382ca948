//! The `litehouse` command line.

mod inspect;
mod predict;
mod serve;

use clap::{Parser, Subcommand};

/// litehouse: a small, fast predictor for TFLite models.
#[derive(Debug, Parser)]
#[command(name = "litehouse", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show a model's signature, operators, quantization and size.
    Inspect(inspect::Args),
    /// Run Vertex-style JSON instances through a model and print predictions.
    Predict(predict::Args),
    /// Serve every model in a directory over HTTP (Vertex AI, TF Serving, KServe V2 routes).
    Serve(serve::Args),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LITEHOUSE_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,litehouse_serving=info")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(a) => inspect::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Serve(a) => serve::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
