//! The engine's own batched throughput, the ceiling a batch job is measured against: the model
//! run on ready-made input buffers of `BATCH` instances, on `THREADS` threads, for `SECS`
//! seconds, with no parsing or writing. Prints one JSON line.
//!
//! `cargo run --release -p litehouse-predictor --example engine_throughput -- MODEL INSTANCES.jsonl [BATCH] [THREADS] [SECS]`

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use litehouse_models::instances::{decode_instances, predict_buffers, InputValues};
use litehouse_models::{LoadedModel, OutputMode};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let model_path = args
        .get(1)
        .context("usage: engine_throughput MODEL INSTANCES.jsonl [BATCH] [THREADS] [SECS]")?;
    let instances_path = args.get(2).context("missing INSTANCES.jsonl")?;
    let batch: usize = args.get(3).map_or(Ok(64), |s| s.parse())?;
    let threads: usize = args.get(4).map_or(Ok(2), |s| s.parse())?;
    let secs: f64 = args.get(5).map_or(Ok(3.0), |s| s.parse())?;
    let model = LoadedModel::load_file(model_path)?;
    let text = std::fs::read_to_string(instances_path)?;
    let instances: Vec<serde_json::Value> = text
        .lines()
        .take(batch)
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(instances.len() == batch, "need at least {batch} instances");
    let buffers = decode_instances(&model.signature().inputs, &instances)?;
    let rows = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while started.elapsed() < Duration::from_secs_f64(secs) {
                    if predict_buffers(
                        &model,
                        &buffers,
                        batch,
                        InputValues::Real,
                        OutputMode::Float,
                    )
                    .is_ok()
                    {
                        rows.fetch_add(batch as u64, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let rate = rows.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"rows_per_s": rate, "batch": batch, "threads": threads})
    );
    Ok(())
}
