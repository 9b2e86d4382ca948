//! `make lambda-watch` as a user meets it: infra/scripts/lambda-watch.sh starts cargo-lambda's
//! Runtime API emulator (PyPI, the tools venv) and the function binary, and `cargo lambda
//! invoke` with the committed Function URL event gets the example catalog's answer. The script
//! runs this test build's binary (`LITEHOUSE_LAMBDA_BINARY`) instead of the release one.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The script, the emulator and the function in one process group, stopped together.
struct Group(u32);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.0)])
            .status();
    }
}

#[test]
fn lambda_watch_answers_cargo_lambda_invoke_with_the_example_catalog() {
    let root = root();
    let tools = Command::new("bash")
        .arg(root.join("infra/scripts/tools-venv.sh"))
        .output()
        .unwrap();
    assert!(tools.status.success(), "tools venv: {tools:?}");
    let cargo_lambda =
        PathBuf::from(String::from_utf8(tools.stdout).unwrap().trim()).join("cargo-lambda");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("watch.log");
    let watch = Command::new("bash")
        .arg("infra/scripts/lambda-watch.sh")
        .args(["predict", &port])
        .current_dir(&root)
        .env("LITEHOUSE_LAMBDA_BINARY", env!("CARGO_BIN_EXE_predict"))
        // What a user's shell might hold must not change what the example serves.
        .env_remove("LITEHOUSE_STORE")
        .env_remove("LITEHOUSE_MODELS")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let _group = Group(watch.id());

    let started = Instant::now();
    let response: Json = loop {
        let out = Command::new(&cargo_lambda)
            .args(["lambda", "invoke", "--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &port])
            .args([
                "--data-file",
                "functions/predict/events/function-url-predict-linnerud.json",
            ])
            .current_dir(&root)
            .output()
            .unwrap();
        if out.status.success() {
            break serde_json::from_slice(&out.stdout).unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no answer from lambda-watch: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(response["statusCode"], 200, "{response}");
    let body: Json = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["deployedModelId"], "1", "{body}");
    let predictions = body["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 2, "{body}");
    // The linnerud regressor answers three outputs per instance.
    assert!(
        predictions
            .iter()
            .all(|p| p.as_array().is_some_and(|v| v.len() == 3)),
        "{body}"
    );
}
