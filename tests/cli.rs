//! End-to-end tests of the `litehouse` binary: the same commands the README shows.

#![allow(clippy::unwrap_used)] // test helpers read trusted fixtures

use std::io::Write;
use std::process::Stdio;

mod common;
use common::litehouse;

/// Runs `predict` on the tabular model with `body` on stdin.
fn predict_stdin(body: &[u8]) -> std::process::Output {
    let mut child = litehouse()
        .args(["predict", "--model", TABULAR, "--instances", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    child.wait_with_output().unwrap()
}

const TABULAR: &str = "models/runtime/testdata/exported/tabular_float32.tflite";

#[test]
fn inspect_json_describes_the_signature() {
    let out = litehouse()
        .args(["inspect", "--json", TABULAR])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["signature"]["inputs"][0]["shape"],
        serde_json::json!([-1, 3])
    );
    assert_eq!(doc["signature"]["inputs"][0]["dtype"], "f32");
    assert_eq!(doc["sha256"].as_str().unwrap().len(), 64);
    assert!(doc["operators"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["op"] == "FULLY_CONNECTED"));
}

#[test]
fn predict_reads_vertex_instances_from_stdin() {
    let out = predict_stdin(br#"{"instances": [[5, 162, 60], [2, 110, 60], [12, 101, 101]]}"#);
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let preds = doc["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 3);
    assert!(preds
        .iter()
        .all(|p| p.as_array().unwrap().len() == 3 && p[0].as_f64().unwrap().is_finite()));
}

#[test]
fn predict_explains_a_wrong_shape_and_exits_non_zero() {
    let out = predict_stdin(br#"{"instances": [[1, 2]]}"#);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("instance 0: input")
            && err.contains("expects shape [3] (3 values), got shape [2] (2 values)"),
        "{err}"
    );
}

#[test]
fn inspect_refuses_a_non_model() {
    let out = litehouse()
        .args(["inspect", "Cargo.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid TFLite model"));
}

/// `litehouse serve` on an ephemeral port: answers a prediction over a real socket, then exits
/// cleanly on SIGTERM.
#[cfg(unix)]
#[test]
fn serve_answers_over_http_and_drains_on_sigterm() {
    use std::io::Read;
    use std::net::TcpStream;

    let (mut child, addr) = common::spawn_serve("models/catalog");
    let body = r#"{"instances": [[5, 162, 60]]}"#;
    let mut stream = TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "POST /v1/endpoints/linnerud:predict HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"deployedModelId\":\"1\""), "{response}");

    common::terminate_cleanly(&mut child);
}
