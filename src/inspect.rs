//! `litehouse inspect MODEL`.

use std::path::PathBuf;

use anyhow::Context;
use litehouse_models::{LoadedModel, TensorSpec};

/// Arguments of `inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Path of a .tflite model.
    model: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let model = LoadedModel::load_file(&args.model)
        .with_context(|| format!("loading {}", args.model.display()))?;
    let info = model.info();
    let sig = model.signature();
    if args.json {
        let doc = serde_json::json!({
            "path": args.model,
            "sha256": info.sha256,
            "size_bytes": info.size_bytes,
            "schema_version": info.schema_version,
            "description": info.description,
            "signature": sig,
            "operators": info.operator_counts.iter().map(|(n, c)| serde_json::json!({"op": n, "count": c})).collect::<Vec<_>>(),
            "operator_count": info.operators.len(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!("model:       {}", args.model.display());
    println!("sha256:      {}", info.sha256);
    println!("size:        {} bytes", info.size_bytes);
    if !info.description.is_empty() {
        println!("description: {}", info.description);
    }
    if let Some(key) = &sig.key {
        println!("signature:   {key}");
    }
    println!("inputs:");
    sig.inputs.iter().for_each(print_spec);
    println!("outputs:");
    sig.outputs.iter().for_each(print_spec);
    println!("operators ({}):", info.operators.len());
    for (name, count) in &info.operator_counts {
        println!("  {name:<24} x{count}");
    }
    Ok(())
}

fn print_spec(s: &TensorSpec) {
    let q = match &s.quantization {
        Some(q) if q.is_per_channel() => {
            format!("  per-channel quantized ({} scales)", q.scale.len())
        }
        Some(q) => format!("  quantized scale={} zero_point={}", q.scale0(), q.zp0()),
        None => String::new(),
    };
    println!(
        "  {:<28} {:<5} {}{q}",
        s.name,
        s.dtype.name(),
        s.shape_text()
    );
}
