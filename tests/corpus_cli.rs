//! `litehouse inspect` and `litehouse predict` on every model of the conformance corpus: each
//! model LiteRT runs is described and answers one instance built from its own signature; each
//! model we refuse is refused with the operator named.

#![allow(clippy::unwrap_used)] // test helpers read trusted fixtures

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

mod common;
use common::litehouse;

/// Every .tflite file under `dir`, recursively.
fn models_under(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            models_under(&path, found);
        } else if path.extension().is_some_and(|e| e == "tflite") {
            found.push(path);
        }
    }
}

/// One instance of zeros for the inputs `inputs` of an `inspect --json` signature: a flat array
/// for a single input, an object by name for several.
fn zero_instance(inputs: &[Value]) -> Value {
    let zeros = |spec: &Value| {
        let shape = spec["shape"].as_array().unwrap();
        // The leading axis is the batch; the rest is one instance.
        let item: usize = shape[1..]
            .iter()
            .map(|d| d.as_i64().unwrap().max(1) as usize)
            .product();
        Value::Array(vec![json!(0); item])
    };
    match inputs {
        [one] => zeros(one),
        many => Value::Object(
            many.iter()
                .map(|spec| (spec["name"].as_str().unwrap().to_string(), zeros(spec)))
                .collect(),
        ),
    }
}

#[test]
fn inspect_and_predict_work_on_every_corpus_model() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/runtime/testdata");
    let mut models = vec![];
    for dir in ["exported", "trained", "fetched"] {
        models_under(&root.join(dir), &mut models);
    }
    models.sort();
    assert!(
        models.len() >= 30,
        "expected the whole corpus (run `make fixtures`), found {} models",
        models.len()
    );
    let work = std::env::temp_dir().join(format!("litehouse-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let (mut answered, mut refused) = (0, 0);
    for model in &models {
        let name = model.display().to_string();
        let out = litehouse()
            .args(["inspect", "--json"])
            .arg(model)
            .output()
            .unwrap();
        if !out.status.success() {
            // Only an operator we do not run (MediaPipe's custom ops) may stop a corpus model.
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("unsupported operator") && err.contains("operator index"),
                "{name}: inspect failed without naming the operator: {err}"
            );
            refused += 1;
            continue;
        }
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["sha256"].as_str().unwrap().len(), 64, "{name}");
        assert!(!doc["operators"].as_array().unwrap().is_empty(), "{name}");
        let inputs = doc["signature"]["inputs"].as_array().unwrap();
        let instances = work.join("instances.json");
        let body = json!({ "instances": [zero_instance(inputs)] });
        std::fs::write(&instances, body.to_string()).unwrap();
        let out = litehouse()
            .args(["predict", "--model"])
            .arg(model)
            .arg("--instances")
            .arg(&instances)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: predict failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        let predictions = doc["predictions"].as_array().unwrap();
        assert_eq!(predictions.len(), 1, "{name}");
        answered += 1;
    }
    std::fs::remove_dir_all(&work).ok();
    println!("{answered} models answered, {refused} refused with the operator named");
    assert!(
        answered >= 25,
        "only {answered} corpus models answered ({refused} refused)"
    );
}
