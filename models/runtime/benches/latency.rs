//! Per-inference latency (one thread, batch 1 and 32) and load+optimize time, next to LiteRT's
//! figure from models/runtime/testdata/goldens/litert_timings.json (measured by make_goldens.py
//! on the same machine). `cargo bench -p litehouse-models`; prints a Markdown table of medians,
//! or of the fastest sample with `LATENCY_MIN=1` (steadier on a machine with noisy neighbours).
//! `LATENCY_ONLY=<part of a file name>` runs the matching models only (for `perf record`).

#![allow(clippy::unwrap_used)] // benchmark over trusted fixtures

use std::path::Path;
use std::time::{Duration, Instant};

use litehouse_models::{HostTensor, LoadedModel, OutputMode, TensorData};

fn median_us(mut f: impl FnMut(), min_time: Duration) -> f64 {
    f();
    let mut samples = vec![];
    let start = Instant::now();
    while start.elapsed() < min_time || samples.len() < 20 {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    if std::env::var_os("LATENCY_MIN").is_some() {
        return samples[0];
    }
    samples[samples.len() / 2]
}

fn input_for(model: &LoadedModel, batch: usize) -> Vec<HostTensor> {
    model
        .signature()
        .inputs
        .iter()
        .map(|s| {
            let mut shape: Vec<usize> = s.shape.iter().map(|&d| d.max(1) as usize).collect();
            shape[0] = batch;
            let n: usize = shape.iter().product();
            let data = match s.dtype {
                litehouse_models::ElementType::U8 => {
                    TensorData::U8((0..n).map(|i| (i % 251) as u8).collect())
                }
                litehouse_models::ElementType::I8 => {
                    TensorData::I8((0..n).map(|i| (i % 251) as i8).collect())
                }
                _ => TensorData::F32((0..n).map(|i| (i % 251) as f32 / 251.0).collect()),
            };
            HostTensor::new(shape, data).unwrap()
        })
        .collect()
}

fn main() {
    // Single-threaded like the LiteRT figures.
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let litert: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(testdata.join("goldens/litert_timings.json")).unwrap(),
    )
    .unwrap();
    let models = [
        "fetched/MNISTnet_uint8_quant.tflite",
        "fetched/MNISTnet_v2_uint8_quant.tflite",
        "exported/mlp_int8_io.tflite",
        "exported/mlp_float32.tflite",
        "exported/cnn_int8_io.tflite",
        "exported/cnn_float32.tflite",
    ];
    println!(
        "| model | load+optimize ms | batch 1 us (LiteRT) | ratio | batch 32 us (LiteRT) | ratio |"
    );
    println!("|---|---|---|---|---|---|");
    let only = std::env::var("LATENCY_ONLY").unwrap_or_default();
    for rel in models.into_iter().filter(|m| m.contains(&only)) {
        let bytes = match std::fs::read(testdata.join(rel)) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("skip {rel}: {e} (run make fixtures)");
                continue;
            }
        };
        let t = Instant::now();
        let model = LoadedModel::load(&bytes).unwrap();
        let load_ms = t.elapsed().as_secs_f64() * 1e3;
        let mut cells = vec![];
        for batch in [1usize, 32] {
            let reference = litert[rel][format!("batch{batch}_us")].as_f64();
            if batch > 1 && !model.signature().dynamic_batch() {
                cells.push("- | -".to_string());
                continue;
            }
            let inputs = input_for(&model, batch);
            let ours = median_us(
                || drop(model.run(&inputs, OutputMode::Native).unwrap()),
                Duration::from_millis(400),
            );
            match reference {
                Some(r) => cells.push(format!("{ours:.1} ({r:.1}) | {:.2}x", ours / r)),
                None => cells.push(format!("{ours:.1} (-) | -")),
            }
        }
        println!("| {rel} | {load_ms:.1} | {} |", cells.join(" | "));
    }
}
