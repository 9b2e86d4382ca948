//! Drives the real `batch` binary through the Lambda Runtime API (tests/support/runtime_api.rs)
//! the way the Step Functions state machine does: plan, one invocation per shard (one of them
//! delivered twice), finalize; on a local directory and on S3 (moto).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use litehouse_store::{Condition, Store};
use serde_json::{json, Value as Json};

#[path = "../../../tests/support/runtime_api.rs"]
mod runtime_api;
use runtime_api::Running;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> Json {
    let path = root().join("functions/batch/events").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batch_binary_plans_runs_shards_and_finalizes() {
    let dir = tempfile::tempdir().unwrap();
    let local = Store::open(dir.path().to_str().unwrap()).await.unwrap();
    suite(local).await;
    if let Some(s3) = litehouse_store::testing::s3_store("batch-lambda").await {
        suite(s3).await;
    }
}

async fn suite(store: Store) {
    let rows: String = (0..7)
        .map(|i| format!("{}\n", json!([i, 150 + i, 60])))
        .collect();
    store
        .put("in/rows.jsonl", rows.into_bytes(), Condition::Always)
        .await
        .unwrap();
    let lambda = Running::start(env!("CARGO_BIN_EXE_batch"), &[]).await;
    let spec = json!({
        "model": root().join("models/catalog/linnerud.json"),
        "inputs": [format!("{}/in/rows.jsonl", store.uri())],
        "format": "jsonl",
        "output": format!("{}/out", store.uri()),
        "shardSize": 3,
    });
    let (kind, plan) = lambda.invoke("plan", json!({ "plan": spec })).await;
    assert_eq!(kind, "response", "{plan}");
    assert_eq!(plan["shardCount"], 3, "{plan}");
    let shards = plan["shards"].as_array().unwrap().clone();
    assert_eq!(shards.len(), 3);
    for (i, event) in shards.iter().enumerate() {
        let (kind, done) = lambda.invoke(&format!("shard-{i}"), event.clone()).await;
        assert_eq!(kind, "response", "{done}");
        assert_eq!(done["committed"], true, "{done}");
    }
    // At-least-once delivery: the same shard again commits nothing.
    let (_, again) = lambda.invoke("shard-0-again", shards[0].clone()).await;
    assert_eq!(again["committed"], false, "{again}");
    // One EMF line per shard invocation: rows and commits per job in CloudWatch.
    let emf = lambda.emf_lines();
    assert_eq!(emf.len(), 4, "{emf:?}");
    let rows: f64 = emf[..3]
        .iter()
        .map(|l| l["ShardRows"].as_f64().unwrap())
        .sum();
    assert_eq!(rows, 7.0, "{emf:?}");
    let commits: f64 = emf
        .iter()
        .map(|l| l["ShardsCommitted"].as_f64().unwrap())
        .sum();
    assert_eq!(commits, 3.0, "{emf:?}");
    assert_eq!(emf[0]["job"], plan["job"]);
    // A re-planned job lists no pending shard.
    let (_, replan) = lambda.invoke("replan", json!({ "plan": spec })).await;
    assert_eq!(replan["shards"], json!([]), "{replan}");
    let (_, record) = lambda
        .invoke("finalize", json!({ "finalize": plan["job"] }))
        .await;
    assert_eq!(record["state"], "JOB_STATE_SUCCEEDED", "{record}");
    assert_eq!(record["completionStats"]["successfulCount"], 7);
    let job = Store::open(plan["job"].as_str().unwrap()).await.unwrap();
    let mut lines = 0;
    for k in 0..3 {
        let o = job
            .get(&format!("prediction.results-{k:05}-of-00003"))
            .await
            .unwrap();
        lines += String::from_utf8(o.bytes).unwrap().lines().count();
    }
    assert_eq!(lines, 7);

    // Bad events get an error naming what was expected, and the function keeps serving.
    let (kind, err) = lambda.invoke("bad", json!({"shard": "x"})).await;
    assert_eq!(kind, "error", "{err}");
    assert!(
        err["errorMessage"]
            .as_str()
            .unwrap()
            .contains("expected {\"plan\""),
        "{err}"
    );
    let (kind, err) = lambda
        .invoke(
            "no-job",
            json!({"finalize": format!("{}/nothing", store.uri())}),
        )
        .await;
    assert_eq!(kind, "error", "{err}");
    assert!(
        err["errorMessage"]
            .as_str()
            .unwrap()
            .contains("holds no batch job"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_committed_shard_event_runs_under_the_runtime_api() {
    let _ = std::fs::remove_dir_all(root().join("target/batch-lambda"));
    let lambda = Running::start(env!("CARGO_BIN_EXE_batch"), &[]).await;
    let (kind, done) = lambda.invoke("s0", fixture("shard-linnerud.json")).await;
    assert_eq!(kind, "response", "{done}");
    assert_eq!(done["shard"], 0);
    let (kind, plan) = lambda.invoke("p", fixture("plan-linnerud.json")).await;
    assert_eq!(kind, "response", "{plan}");
    assert_eq!(plan["shardCount"], 3);
    assert_eq!(
        plan["shards"].as_array().unwrap().len(),
        2,
        "shard 0 is already committed"
    );
}
