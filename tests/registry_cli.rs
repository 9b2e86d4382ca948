//! End-to-end tests of `litehouse models` and `litehouse endpoints` on a local store and, under
//! `make test`, on S3 through moto's server: the commands docs/registry.md shows.

#![allow(clippy::unwrap_used)] // test helpers read trusted fixtures

use std::process::Command;

use serde_json::Value;

const INT8: &str = "models/runtime/testdata/exported/tabular_int8_float_io.tflite";
const FLOAT: &str = "models/runtime/testdata/exported/tabular_float32.tflite";

/// Runs `litehouse ARGS --store STORE --json`; returns (success, parsed stdout or stderr text).
fn run(store: &str, args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_litehouse"))
        .args(args)
        .args(["--store", store, "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.success(), json, stderr)
}

fn ok(store: &str, args: &[&str]) -> Value {
    let (success, json, stderr) = run(store, args);
    assert!(success, "litehouse {args:?} failed: {stderr}");
    json
}

fn fails(store: &str, args: &[&str]) -> String {
    let (success, _, stderr) = run(store, args);
    assert!(!success, "litehouse {args:?} should have failed");
    stderr
}

/// `endpoints deploy lin --model linnerud --version VERSION --split SPLIT`.
fn deploy(store: &str, version: &str, split: &str) -> Value {
    ok(
        store,
        &[
            "endpoints",
            "deploy",
            "lin",
            "--model",
            "linnerud",
            "--version",
            version,
            "--split",
            split,
        ],
    )
}

fn tour(store: &str) {
    let m = ok(
        store,
        &[
            "models",
            "upload",
            INT8,
            "--name",
            "linnerud",
            "--metric",
            "rmse=9.5",
            "--param",
            "epochs=30",
            "--source-run",
            "run-7",
            "--alias",
            "champion",
        ],
    );
    assert_eq!(m["version"], 1);
    assert_eq!(m["metrics"]["rmse"], 9.5);
    assert_eq!(m["lineage"]["params"]["epochs"], 30);
    assert_eq!(m["lineage"]["sourceRun"], "run-7");
    assert_eq!(m["sha256"].as_str().unwrap().len(), 64);
    let m2 = ok(store, &["models", "upload", FLOAT, "--name", "linnerud"]);
    assert_eq!(m2["version"], 2);
    ok(
        store,
        &[
            "models",
            "alias",
            "linnerud",
            "challenger",
            "2",
            "--reason",
            "new data",
        ],
    );

    let list = ok(store, &["models", "list"]);
    assert_eq!(list[0]["versions"], serde_json::json!([1, 2]));
    assert_eq!(list[0]["aliases"]["challenger"], 2);
    let shown = ok(store, &["models", "show", "linnerud", "champion"]);
    assert_eq!(shown["version"], 1);
    assert_eq!(
        shown["signature"]["inputs"][0]["shape"],
        serde_json::json!([-1, 3])
    );

    ok(
        store,
        &["endpoints", "create", "lin", "--display-name", "Linnerud"],
    );
    let err = fails(store, &["endpoints", "create", "lin"]);
    assert!(err.contains("already exists"), "{err}");
    deploy(store, "champion", "0=100");
    let d = deploy(store, "challenger", "1=90,0=10");
    assert_eq!(d["deployedModel"]["id"], "2");
    assert_eq!(
        d["endpoint"]["trafficSplit"],
        serde_json::json!({"1": 90, "2": 10})
    );

    let err = fails(store, &["endpoints", "split", "lin", "1=50,2=60"]);
    assert!(
        err.contains("must sum to 100 (or be empty), got 110"),
        "{err}"
    );
    let err = fails(store, &["endpoints", "undeploy", "lin", "2"]);
    assert!(err.contains("holds 10%"), "{err}");
    let err = fails(store, &["models", "delete", "linnerud", "1"]);
    assert!(err.contains("deployed on endpoint 'lin'"), "{err}");

    let described = ok(store, &["endpoints", "describe", "lin"]);
    let etag = described["etag"].as_str().unwrap().to_string();
    ok(
        store,
        &["endpoints", "split", "lin", "1=80,2=20", "--etag", &etag],
    );
    let err = fails(
        store,
        &["endpoints", "split", "lin", "1=70,2=30", "--etag", &etag],
    );
    assert!(err.contains("changed since it was read"), "{err}");
    let e = ok(
        store,
        &["endpoints", "undeploy", "lin", "2", "--split", "1=100"],
    );
    assert_eq!(e["trafficSplit"], serde_json::json!({"1": 100}));
    assert_eq!(
        ok(store, &["endpoints", "list"]).as_array().unwrap().len(),
        1
    );
    ok(store, &["models", "delete", "linnerud", "2"]);
    let err = fails(store, &["models", "show", "linnerud", "2"]);
    assert!(
        err.contains("no version or alias '2'") || err.contains("no version 2"),
        "{err}"
    );
}

#[test]
fn models_and_endpoints_on_a_local_store() {
    let dir = tempfile::tempdir().unwrap();
    tour(dir.path().to_str().unwrap());
}

#[test]
fn models_and_endpoints_on_s3() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(store) = runtime.block_on(litehouse_store::testing::s3_store("cli")) else {
        return;
    };
    tour(store.uri());

    // Upload straight from an S3 URI.
    let bytes = std::fs::read(INT8).unwrap();
    runtime
        .block_on(store.put(
            "incoming/model.tflite",
            bytes,
            litehouse_store::Condition::Always,
        ))
        .unwrap();
    let uri = format!("{}/incoming/model.tflite", store.uri());
    let m = ok(
        store.uri(),
        &["models", "upload", &uri, "--name", "from-s3"],
    );
    assert_eq!(m["version"], 1);
    assert_eq!(m["lineage"]["sourceUri"], uri.as_str());
    let err = fails(
        store.uri(),
        &["models", "upload", &format!("{uri}.missing"), "--name", "x"],
    );
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn bad_store_uris_are_explained() {
    let err = fails("gs://nope", &["models", "list"]);
    assert!(err.contains("supported: s3://"), "{err}");
}
