//! `litehouse inspect MODEL`.

use std::path::PathBuf;

use anyhow::Context;
use litehouse_models::{HostTensor, LoadedModel, TensorData, TensorSpec};

/// Arguments of `inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Path of a .tflite model.
    model: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also run the model N times at batch 1 on synthetic inputs and print where the time goes,
    /// per optimized operator.
    #[arg(long, value_name = "N")]
    profile: Option<usize>,
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
    if let Some(n) = args.profile {
        print_profile(&model, n)?;
    }
    Ok(())
}

/// Times each optimized operator on mid-range synthetic inputs at batch 1.
fn print_profile(model: &LoadedModel, iterations: usize) -> anyhow::Result<()> {
    let inputs = model
        .signature()
        .inputs
        .iter()
        .map(|s| {
            let shape: Vec<usize> = s.shape.iter().map(|&d| d.max(1) as usize).collect();
            let n = shape.iter().product();
            HostTensor::new(shape, TensorData::F32(vec![0.5; n]))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let timings = model.profile(&inputs, iterations)?;
    let total: f64 = timings.iter().map(|t| t.micros).sum();
    println!("profile ({iterations} runs, batch 1): {total:.1} us per run");
    for t in timings.iter().take(20) {
        println!(
            "  {:>9.1} us {:>5.1}%  {:<24} {:<28} {}",
            t.micros,
            100.0 * t.micros / total.max(f64::MIN_POSITIVE),
            t.op,
            t.node,
            t.output
        );
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
