//! The smallest embedding of the runtime: `predict_json MODEL < instances.json` loads a .tflite
//! model and prints Vertex-style predictions for `{"instances": [...]}` read from stdin.
//!
//! Numbers for quantized inputs are real values (quantized with the input's own parameters);
//! outputs are floats. It also measures what the runtime alone adds to a binary:
//! `cargo build --profile lambda -p litehouse-models --example predict_json`.

use std::io::Read;

use litehouse_models::instances::{predict_instances, InputValues};
use litehouse_models::{LoadedModel, OutputMode};
use serde_json::{json, Value};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: predict_json MODEL.tflite < {\"instances\": [...]}")?;
    let model = LoadedModel::load_file(&path).map_err(|e| format!("loading {path}: {e}"))?;
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| format!("reading stdin: {e}"))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("invalid JSON: {e}"))?;
    let Some(Value::Array(instances)) = doc.get("instances") else {
        return Err("expected {\"instances\": [...]}".into());
    };
    let predictions = predict_instances(&model, instances, InputValues::Real, OutputMode::Float)
        .map_err(|e| e.to_string())?;
    println!("{}", json!({ "predictions": predictions }));
    Ok(())
}
