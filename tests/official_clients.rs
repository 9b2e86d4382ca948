//! `litehouse serve` against the clients users already run: Triton's `tritonclient.http`, Google's
//! `google-cloud-aiplatform` (REST transport) and curl-style TF Serving requests, all driven by
//! `tests/clients/official_clients.py` over a real socket.
//!
//! The clients live in a Python venv made by `infra/scripts/clients-venv.sh`; `make test` passes
//! its interpreter as `LITEHOUSE_CLIENTS_PYTHON` and sets `LITEHOUSE_REQUIRE_CLIENTS=1`. Without
//! the variable the test is skipped with a notice (or fails when the clients are required).

#![allow(clippy::unwrap_used)] // test harness over trusted fixtures

mod common;
use common::KillOnDrop as Server;

use std::process::Command;

const DIGITS: &str = "models/runtime/testdata/fetched/mnist10.bin";

#[test]
fn official_clients_get_right_answers_and_typed_errors() {
    let Ok(python) = std::env::var("LITEHOUSE_CLIENTS_PYTHON") else {
        assert!(
            std::env::var("LITEHOUSE_REQUIRE_CLIENTS").as_deref() != Ok("1"),
            "LITEHOUSE_REQUIRE_CLIENTS=1 but LITEHOUSE_CLIENTS_PYTHON is unset"
        );
        eprintln!("skipped: set LITEHOUSE_CLIENTS_PYTHON (infra/scripts/clients-venv.sh)");
        return;
    };
    let (child, addr) = common::spawn_serve("models/catalog");
    let server = Server(child);
    let base = format!("http://{addr}");

    let out = Command::new(&python)
        .args(["tests/clients/official_clients.py", &base, DIGITS])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "official clients failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for client in ["tritonclient.http", "google-cloud-aiplatform", "TF Serving"] {
        assert!(stdout.contains(client), "no result for {client}:\n{stdout}");
    }
    drop(server);
}
