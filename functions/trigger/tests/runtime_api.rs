//! Drives the real `trigger` binary through the Lambda Runtime API (tests/support/runtime_api.rs)
//! with the committed events: an EventBridge rule's Scheduled Event, EventBridge Scheduler's
//! payload and a Function URL call as Cloud Scheduler makes it each run the linnerud pipeline
//! once; the same event delivered twice runs nothing more; bad events get precise errors. On a
//! local directory and on S3 (moto).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde_json::{json, Value as Json};

#[path = "../../../tests/support/runtime_api.rs"]
mod runtime_api;
use runtime_api::Running;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> Json {
    let path = root().join("functions/trigger/events").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_events_run_the_pipeline_once_each() {
    if !root().join("target/training-data/linnerud.csv").exists() {
        assert!(
            std::env::var("LITEHOUSE_REQUIRE_CLIENTS").as_deref() != Ok("1"),
            "target/training-data/linnerud.csv is missing: make training-data"
        );
        eprintln!("skipped: make training-data");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    suite(dir.path().display().to_string()).await;
    if let Some(s3) = litehouse_store::testing::s3_store("trigger-lambda").await {
        suite(s3.uri().to_string()).await;
    }
}

async fn suite(store: String) {
    let lambda = Running::start(
        env!("CARGO_BIN_EXE_trigger"),
        &[
            (
                "LITEHOUSE_SCHEDULES",
                "functions/trigger/events/schedules.yaml".into(),
            ),
            ("LITEHOUSE_STORE", store.clone()),
        ],
    )
    .await;
    let mut ticks = Vec::new();
    for (name, at) in [
        ("eventbridge-scheduled.json", "2026-12-04T11:00:00Z"),
        ("scheduler-payload.json", "2026-12-04T17:00:00Z"),
    ] {
        let (kind, answer) = lambda.invoke(name, fixture(name)).await;
        assert_eq!(kind, "response", "{name}: {answer}");
        assert_eq!(answer["duplicate"], false, "{answer:#}");
        assert_eq!(answer["tick"]["state"], "succeeded", "{answer:#}");
        assert_eq!(answer["tick"]["scheduled"], at);
        ticks.push(answer["tick"]["tick"].clone());
    }
    let (kind, answer) = lambda
        .invoke(
            "cloud-scheduler",
            fixture("function-url-cloud-scheduler.json"),
        )
        .await;
    assert_eq!(kind, "response", "{answer}");
    assert_eq!(answer["statusCode"], 200, "{answer:#}");
    let body: Json = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["tick"]["state"], "succeeded", "{body:#}");

    // At-least-once delivery: the same event again answers with the tick and runs nothing.
    let (_, again) = lambda
        .invoke("again", fixture("eventbridge-scheduled.json"))
        .await;
    assert_eq!(again["duplicate"], true, "{again:#}");
    assert_eq!(again["tick"]["tick"], ticks[0]);
    assert_eq!(again["tick"]["attempt"], 1);
    let s = litehouse_store::Store::open(&store).await.unwrap();
    let runs = litehouse_pipeline::run::record::runs(&s, "linnerud-retrain")
        .await
        .unwrap();
    assert_eq!(runs.len(), 3, "one run per tick");
    // One EMF line per delivery, the redelivery counted as a duplicate.
    let emf = lambda.emf_lines();
    assert_eq!(emf.len(), 4, "{emf:?}");
    for line in &emf {
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "litehouse"
        );
        assert_eq!(line["outcome"], "succeeded", "{line}");
        assert_eq!(line["Ticks"], 1.0, "{line}");
    }
    assert_eq!(emf[3]["DuplicateDeliveries"], 1.0);

    let bad = [
        (
            "not an event",
            json!({"hello": 1}),
            "expected an EventBridge Scheduled Event",
        ),
        (
            "unknown schedule",
            json!({"schedule": "nope", "scheduledTime": "2026-12-04T03:00:00Z"}),
            "no schedule 'nope' (schedules: retrain-linnerud)",
        ),
        (
            "unfilled placeholder",
            json!({"schedule": "retrain-linnerud", "scheduledTime": "<aws.scheduler.scheduled-time>"}),
            "was not filled in",
        ),
    ];
    for (name, event, want) in bad {
        // Invocation ids travel in URL paths: no spaces.
        let (kind, answer) = lambda.invoke(&name.replace(' ', "-"), event).await;
        assert_eq!(kind, "error", "{name}: {answer}");
        assert!(answer.to_string().contains(want), "{name}: {answer}");
    }
    let (_, answer) = lambda
        .invoke(
            "http-bad-body",
            json!({"version": "2.0", "requestContext": {}, "headers": {}, "body": "{"}),
        )
        .await;
    assert_eq!(answer["statusCode"], 400, "{answer:#}");
}
