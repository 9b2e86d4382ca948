//! `litehouse serve` operated as a user would: JSON logs with the request id, sampled
//! prediction logs that survive a SIGTERM, `endpoints logging`, and refused settings.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use serde_json::Value;

mod common;
#[path = "support/prediction_logs.rs"]
mod prediction_logs;
use common::{announced_addr, litehouse, run_ok, terminate_cleanly, KillOnDrop};
use prediction_logs::records;

/// POSTs a linnerud row with request id `id` and returns the raw response.
fn predict(addr: &str, id: &str) -> String {
    let body = r#"{"instances": [[5, 162, 60]]}"#;
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /v1/endpoints/linnerud:predict HTTP/1.1\r\nHost: {addr}\r\nX-Request-Id: {id}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// With `--log-format json` every stderr log line parses and a request's lines carry its id;
/// records buffered for the (hour-long) flush interval are written when SIGTERM stops the
/// server.
#[cfg(unix)]
#[test]
fn json_logs_carry_request_ids_and_buffered_prediction_logs_survive_sigterm() {
    let logs = tempfile::tempdir().unwrap();
    let mut child = litehouse()
        .args([
            "--log-format",
            "json",
            "serve",
            "--models",
            "models/catalog",
            "--port",
            "0",
        ])
        .args([
            "--log-predictions",
            "1",
            "--prediction-log-flush-secs",
            "3600",
        ])
        .arg("--prediction-log")
        .arg(logs.path())
        .env("LITEHOUSE_LOG", "info,litehouse_serving=debug")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = announced_addr(&mut lines);
    let collected = Arc::new(Mutex::new(Vec::new()));
    let sink = collected.clone();
    let reader = std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let ids: Vec<String> = (0..25).map(|i| format!("tour-{i}")).collect();
    for id in &ids {
        let response = predict(&addr, id);
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(
            response
                .to_ascii_lowercase()
                .contains(&format!("x-request-id: {id}")),
            "{response}"
        );
    }
    assert!(
        records(logs.path()).is_empty(),
        "written before the flush interval"
    );
    terminate_cleanly(&mut child);
    reader.join().unwrap();

    let mut logged: Vec<String> = records(logs.path())
        .iter()
        .map(|r| r["requestId"].as_str().unwrap().to_string())
        .collect();
    logged.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(logged, want);

    let lines = collected.lock().unwrap().clone();
    let mut answered = Vec::new();
    for line in &lines {
        if !line.starts_with('{') {
            continue; // the CLI's own messages (the final prediction-log summary)
        }
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        if v["message"] == "answered" {
            answered.push(v["span"]["request_id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(answered, ids, "{lines:?}");
}

#[test]
fn endpoints_logging_sets_and_clears_the_sampling_rate() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().to_str().unwrap();
    run_ok(&["endpoints", "--store", store, "create", "lin"]);
    let shown = run_ok(&[
        "endpoints",
        "--store",
        store,
        "logging",
        "lin",
        "--sampling-rate",
        "0.25",
    ]);
    assert!(shown.contains("logging        0.25 of requests"), "{shown}");
    let doc: Value = serde_json::from_str(&run_ok(&[
        "endpoints",
        "--store",
        store,
        "--json",
        "describe",
        "lin",
    ]))
    .unwrap();
    assert_eq!(doc["predictionLogging"]["samplingRate"], 0.25);
    run_ok(&["endpoints", "--store", store, "logging", "lin", "--default"]);
    let doc: Value = serde_json::from_str(&run_ok(&[
        "endpoints",
        "--store",
        store,
        "--json",
        "describe",
        "lin",
    ]))
    .unwrap();
    assert!(doc.get("predictionLogging").is_none(), "{doc}");
}

/// Each bad operations setting is refused before serving, with what was expected.
#[test]
fn bad_operations_settings_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty-tokens");
    std::fs::write(&empty, "# no tokens yet\n\n").unwrap();
    let empty = empty.to_str().unwrap().to_string();
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "rate above 1",
            vec!["--log-predictions".into(), "1.5".into()],
            "fraction from 0 to 1",
        ),
        (
            "rate not a number",
            vec!["--log-predictions".into(), "half".into()],
            "fraction from 0 to 1",
        ),
        (
            "negative timeout",
            vec!["--request-timeout-secs=-1".into()],
            "seconds",
        ),
        (
            "missing tokens file",
            vec!["--auth-tokens".into(), "/nonexistent/tokens".into()],
            "cannot read --auth-tokens",
        ),
        (
            "empty tokens file",
            vec!["--auth-tokens".into(), empty.clone()],
            "holds no token",
        ),
        (
            "unknown log format",
            vec!["--log-format".into(), "xml".into()],
            "'text' or 'json'",
        ),
    ];
    let mut failures = Vec::new();
    for (name, args, want) in cases {
        let out = litehouse()
            .args(["serve", "--models", "models/catalog", "--port", "0"])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            failures.push(format!("{name}: accepted"));
        } else if !err.contains(want) || err.contains("panicked") {
            failures.push(format!("{name}: {err}    wanted: {want}"));
        }
    }
    let out = litehouse()
        .args([
            "endpoints",
            "--store",
            dir.path().to_str().unwrap(),
            "create",
            "e",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = litehouse()
        .args([
            "endpoints",
            "--store",
            dir.path().to_str().unwrap(),
            "logging",
            "e",
            "--sampling-rate",
            "2",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.success() || !err.contains("fraction from 0 to 1") {
        failures.push(format!("endpoints logging rate 2: {err}"));
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// A server on a non-loopback address with no tokens says so.
#[test]
fn binding_beyond_loopback_without_tokens_warns() {
    let mut child = litehouse()
        .args([
            "serve",
            "--models",
            "models/catalog",
            "--port",
            "0",
            "--host",
            "0.0.0.0",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _guard = KillOnDrop(child);
    let mut warned = false;
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        if line.contains("with no bearer tokens") {
            warned = true;
        }
        if line.contains("on http://") {
            break;
        }
    }
    assert!(warned);
}
