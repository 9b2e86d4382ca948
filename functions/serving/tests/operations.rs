//! Operating a server, over real HTTP on 127.0.0.1: metrics after known traffic, bearer tokens,
//! the deployed-model override switch, request ids, the request timeout, and sampled
//! prediction logs.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "../../../tests/support/prediction_logs.rs"]
mod prediction_logs;
use prediction_logs::records as logged_records;

use std::io::{Read, Write};
use std::time::Duration;

use litehouse_serving::auth::Tokens;
use litehouse_serving::prediction_log::LogSettings;
use litehouse_serving::ServeOptions;
use litehouse_store::Store;
use serde_json::{json, Value as Json};

const LIN: &str = "/v1/endpoints/linnerud:predict";

fn row() -> Json {
    json!({"instances": [[5, 162, 60]]})
}

/// A metric's value from the text exposition (0 when the series is absent).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .map_or(0.0, |v| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_known_traffic_by_deployed_model_protocol_and_status() {
    let (url, _state) = common::start_with_options(ServeOptions::default()).await;
    let client = reqwest::Client::new();
    for _ in 0..7 {
        let r = client
            .post(format!("{url}{LIN}"))
            .json(&row())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    for _ in 0..3 {
        let r = client
            .post(format!("{url}{LIN}"))
            .json(&json!({"instances": [[1, 2]]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
    }
    for _ in 0..2 {
        let r = client
            .post(format!("{url}/v1/models/linnerud:predict"))
            .json(&row())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = client
        .post(format!("{url}/v1/endpoints/nope:predict"))
        .json(&row())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let response = client.get(format!("{url}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = response.text().await.unwrap();
    let vertex = r#"litehouse_requests_total{endpoint="linnerud",deployed_model="1",model="linnerud",version="1",protocol="vertex","#;
    assert_eq!(
        value(&text, &format!(r#"{vertex}code="200"}}"#)),
        7.0,
        "{text}"
    );
    assert_eq!(
        value(&text, &format!(r#"{vertex}code="400"}}"#)),
        3.0,
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"litehouse_requests_total{endpoint="",deployed_model="",model="linnerud",version="1",protocol="tfserving",code="200"}"#
        ),
        2.0,
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"litehouse_requests_total{endpoint="",deployed_model="",model="",version="",protocol="vertex",code="404"}"#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"litehouse_request_duration_seconds_count{endpoint="linnerud",deployed_model="1",model="linnerud",version="1",protocol="vertex"}"#
        ),
        10.0,
        "{text}"
    );
    assert!(
        value(
            &text,
            r#"litehouse_model_load_seconds{model="mnist",version="1"}"#
        ) > 0.0,
        "{text}"
    );
    assert!(text.contains("litehouse_inference_queued 0"), "{text}");
}

fn with_tokens() -> ServeOptions {
    ServeOptions {
        auth: Some(Tokens::parse_lines("s3cret\nother-token\n", "test").unwrap()),
        ..ServeOptions::default()
    }
}

/// Each way of failing the token check, on each protocol's prediction route: 401 with a
/// `WWW-Authenticate` challenge, the error in that protocol's wire format.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_token_gets_401_with_a_challenge() {
    let (url, state) = common::start_with_options(with_tokens()).await;
    let client = reqwest::Client::new();
    let cases: [(&str, Option<&str>, &str); 4] = [
        ("missing", None, r#"Bearer realm="litehouse""#),
        ("wrong", Some("Bearer guess"), "invalid_token"),
        ("not bearer", Some("Basic czNjcmV0"), "invalid_request"),
        ("empty bearer", Some("Bearer "), "invalid_request"),
    ];
    for (name, header, challenge) in cases {
        for path in [
            LIN,
            "/v1/models/linnerud:predict",
            "/v2/models/linnerud/infer",
            "/metrics",
        ] {
            let mut request = client.post(format!("{url}{path}")).json(&row());
            if path == "/metrics" {
                request = client.get(format!("{url}{path}"));
            }
            if let Some(h) = header {
                request = request.header("authorization", h);
            }
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), 401, "{name} on {path}");
            let www = r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .to_string();
            assert!(www.contains(challenge), "{name} on {path}: {www}");
            let body: Json = r.json().await.unwrap();
            if path == LIN || path == "/metrics" {
                assert_eq!(body["error"]["status"], "UNAUTHENTICATED", "{name}: {body}");
            } else {
                assert!(body["error"].is_string(), "{name} on {path}: {body}");
            }
        }
    }
    let text = state.render_metrics();
    assert_eq!(
        value(
            &text,
            r#"litehouse_rejected_total{reason="unauthenticated"}"#
        ),
        16.0,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_token_passes_and_probes_need_none() {
    let (url, _state) = common::start_with_options(with_tokens()).await;
    let client = reqwest::Client::new();
    for token in ["s3cret", "other-token"] {
        let r = client
            .post(format!("{url}{LIN}"))
            .bearer_auth(token)
            .json(&row())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{token}");
    }
    for probe in ["/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"] {
        let r = client.get(format!("{url}{probe}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{probe}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_override_header_is_refused_unless_enabled() {
    let (url, _state) = common::start_with_options(ServeOptions::default()).await;
    let r = reqwest::Client::new()
        .post(format!("{url}{LIN}"))
        .header("x-litehouse-deployed-model-id", "1")
        .json(&row())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Json = r.json().await.unwrap();
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--allow-deployed-model-header"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed_or_generated() {
    let (url, _state) = common::start_with_options(ServeOptions::default()).await;
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{url}{LIN}"))
        .header("x-request-id", "client-chosen-1")
        .json(&row())
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "client-chosen-1");
    let mut generated = Vec::new();
    for header in [None, Some("has space")] {
        let mut request = client.post(format!("{url}{LIN}")).json(&row());
        if let Some(h) = header {
            request = request.header("x-request-id", h);
        }
        let r = request.send().await.unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        assert_eq!(id.len(), 32, "{header:?} -> {id}");
        generated.push(id);
    }
    assert_ne!(generated[0], generated[1]);
}

/// A client that sends its headers and then stalls is answered 504 at the request timeout, and
/// the server goes on answering others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_is_answered_504_at_the_timeout() {
    let options = ServeOptions {
        request_timeout: Some(Duration::from_millis(200)),
        ..ServeOptions::default()
    };
    let (url, state) = common::start_with_options(options).await;
    let addr = url.trim_start_matches("http://").to_string();
    let answer = tokio::task::spawn_blocking(move || {
        let mut socket = std::net::TcpStream::connect(addr).unwrap();
        socket
            .write_all(
                b"POST /v1/endpoints/linnerud:predict HTTP/1.1\r\nhost: x\r\n\
                  content-type: application/json\r\ncontent-length: 100\r\n\r\n{\"inst",
            )
            .unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answer = vec![0u8; 4096];
        let n = socket.read(&mut answer).unwrap();
        String::from_utf8_lossy(&answer[..n]).to_string()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 504"), "{answer}");
    assert!(answer.contains("DEADLINE_EXCEEDED"), "{answer}");
    let r = reqwest::Client::new()
        .post(format!("{url}{LIN}"))
        .json(&row())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = state.render_metrics();
    assert_eq!(
        value(&text, r#"litehouse_rejected_total{reason="timeout"}"#),
        1.0
    );
}

/// At rate 0.3, 600 requests log about 180 (binomial: sd 11.2; the bound is 5 sd); each record
/// has the request, the answer and the request id the client saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampled_prediction_logs_follow_the_rate() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().to_str().unwrap()).await.unwrap();
    let options = ServeOptions {
        prediction_log: Some(LogSettings {
            store,
            default_rate: 0.3,
            capacity: 10_000,
        }),
        ..ServeOptions::default()
    };
    let (url, state) = common::start_with_options(options).await;
    let client = reqwest::Client::new();
    let mut ids = std::collections::HashSet::new();
    for i in 0..600 {
        let r = client
            .post(format!("{url}{LIN}"))
            .header("x-request-id", format!("req-{i}"))
            .json(&json!({"instances": [[i % 20, 160, 60]]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        ids.insert(format!("req-{i}"));
    }
    let log = state.prediction_log.clone().unwrap();
    let written = log.flush().await;
    let records = logged_records(dir.path());
    assert_eq!(records.len(), written);
    let n = records.len() as f64;
    assert!((180.0 - n).abs() <= 56.0, "{n} of 600 logged at rate 0.3");
    for r in &records {
        assert_eq!(r["endpoint"], "linnerud");
        assert_eq!(r["deployedModelId"], "1");
        assert!(ids.contains(r["requestId"].as_str().unwrap()), "{r}");
        assert_eq!(
            r["request"]["instances"][0].as_array().unwrap().len(),
            3,
            "{r}"
        );
        assert_eq!(
            r["response"]["predictions"].as_array().unwrap().len(),
            1,
            "{r}"
        );
    }
    let text = state.render_metrics();
    assert_eq!(value(&text, "litehouse_prediction_log_records_total"), n);
    assert_eq!(value(&text, "litehouse_prediction_log_dropped_total"), 0.0);
}

/// A full buffer drops records and counts them; requests are still answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_prediction_log_buffer_drops_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().to_str().unwrap()).await.unwrap();
    let options = ServeOptions {
        prediction_log: Some(LogSettings {
            store,
            default_rate: 1.0,
            capacity: 5,
        }),
        ..ServeOptions::default()
    };
    let (url, state) = common::start_with_options(options).await;
    let client = reqwest::Client::new();
    for _ in 0..12 {
        let r = client
            .post(format!("{url}{LIN}"))
            .json(&row())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let log = state.prediction_log.clone().unwrap();
    assert_eq!(log.flush().await, 5);
    let text = state.render_metrics();
    assert_eq!(
        value(&text, "litehouse_prediction_log_dropped_total"),
        7.0,
        "{text}"
    );
    assert_eq!(logged_records(dir.path()).len(), 5);
}

/// Every metric the committed Grafana dashboard reads is one the server exports.
#[test]
fn the_grafana_dashboard_reads_only_exported_metrics() {
    let path = common::root().join("infra/grafana/litehouse.json");
    let dashboard: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    // One series in every family (an empty family is not rendered).
    let metrics = litehouse_serving::metrics::Metrics::new();
    let served = litehouse_serving::request_context::Served::default();
    metrics.observe(&served, "vertex", 200, 0.001);
    metrics.reject("queue_full");
    metrics.model_loaded("m", 1, 0.1);
    let shadow = litehouse_serving::metrics::shadow_labels("e", "2");
    for family in [
        &metrics.shadow_runs,
        &metrics.shadow_disagreements,
        &metrics.shadow_errors,
        &metrics.shadow_dropped,
    ] {
        family.get_or_create(&shadow).inc();
    }
    let text = metrics.render();
    let exported: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let mut read = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if !word.starts_with("litehouse_") {
                    continue;
                }
                let family = ["_total", "_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|s| word.strip_suffix(s))
                    .unwrap_or(word);
                assert!(
                    exported.contains(family),
                    "panel '{}' reads {word}, which the server does not export ({exported:?})",
                    panel["title"]
                );
                read += 1;
            }
        }
    }
    assert!(read >= 10, "the dashboard reads only {read} metrics");
}
