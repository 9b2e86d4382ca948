//! `litehouse predict --model MODEL --instances FILE|-`.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context};
use litehouse_models::instances::{self, InputValues};
use litehouse_models::{LoadedModel, OutputMode};
use serde_json::Value;

/// Arguments of `predict`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Path of a .tflite model.
    #[arg(long)]
    model: PathBuf,
    /// JSON file with `{"instances": [...]}` or a bare array of instances; `-` reads stdin.
    #[arg(long, default_value = "-")]
    instances: String,
    /// Treat numbers for quantized integer inputs as real values and quantize them with the
    /// input's scale and zero point (default: they are the input's own integer values).
    #[arg(long)]
    real_inputs: bool,
    /// Return quantized outputs in the model's own integer type instead of dequantized floats.
    #[arg(long)]
    native: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let model = LoadedModel::load_file(&args.model)
        .with_context(|| format!("loading {}", args.model.display()))?;
    let text = if args.instances == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading instances from stdin")?;
        s
    } else {
        std::fs::read_to_string(&args.instances)
            .with_context(|| format!("reading {}", args.instances))?
    };
    let doc: Value = serde_json::from_str(&text).context("instances are not valid JSON")?;
    let list = match &doc {
        Value::Object(m) => match m.get("instances") {
            Some(Value::Array(a)) => a.clone(),
            Some(_) => bail!("\"instances\" must be an array"),
            None => bail!("expected {{\"instances\": [...]}} or a JSON array of instances"),
        },
        Value::Array(a) => a.clone(),
        _ => bail!("expected {{\"instances\": [...]}} or a JSON array of instances"),
    };
    let values = if args.real_inputs {
        InputValues::Real
    } else {
        InputValues::Native
    };
    let mode = if args.native {
        OutputMode::Native
    } else {
        OutputMode::Float
    };
    let predictions = instances::predict_instances(&model, &list, values, mode)?;
    println!(
        "{}",
        serde_json::json!({ "predictions": predictions, "model": { "sha256": model.info().sha256 } })
    );
    Ok(())
}
