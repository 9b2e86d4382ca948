//! The README's tour, run as a newcomer would run it: every `sh` block between the
//! `tour:start` and `tour:end` markers, in order, in one shell, in a fresh directory that holds
//! only what a checkout after `make run` has (models, scheduler examples, training data,
//! digits), with `litehouse serve --models models/catalog` on the port `make run` uses.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::KillOnDrop as Server;

#[path = "support/digits.rs"]
mod digits;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The tour's shell blocks, in order.
fn tour_blocks() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("<!-- tour:start -->")
        .expect("README has no tour:start");
    let end = readme
        .find("<!-- tour:end -->")
        .expect("README has no tour:end");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme[start..end].lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn link(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(from, to).unwrap();
}

#[test]
fn every_command_of_the_readme_tour_runs() {
    let blocks = tour_blocks();
    assert!(blocks.len() >= 8, "the tour has {} blocks", blocks.len());
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let repo = root();
    for part in ["models", "scheduler", "target/training-data"] {
        link(&repo.join(part), &work.join(part));
    }
    std::fs::create_dir_all(work.join("target/digits")).unwrap();
    for (i, png) in digits::digit_pngs(&repo).iter().enumerate() {
        std::fs::write(work.join(format!("target/digits/digit-{i}.png")), png).unwrap();
    }
    let bin = work.join("bin");
    link(
        Path::new(env!("CARGO_BIN_EXE_litehouse")),
        &bin.join("litehouse"),
    );
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());

    // `make run`: the example catalog on the tour's port.
    let (port, store_port) = (free_port(), free_port());
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_litehouse"))
            .args([
                "serve",
                "--models",
                "models/catalog",
                "--port",
                &port.to_string(),
            ])
            .current_dir(work)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let ready = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(ready, "serve never listened on {port}");

    let mut script =
        String::from("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n");
    for (i, block) in blocks.iter().enumerate() {
        let block = block
            .replace("localhost:8080", &format!("localhost:{port}"))
            .replace("8081", &store_port.to_string());
        script.push_str(&format!("echo '::block {i}::'\n{block}"));
    }
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(work)
        .env("PATH", path)
        .env_remove("LITEHOUSE_STORE")
        .output()
        .unwrap();
    drop(server);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the tour failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    let outputs: Vec<&str> = stdout.split("::block ").skip(1).collect();
    assert_eq!(outputs.len(), blocks.len(), "{stdout}");
    for (block, output) in blocks.iter().zip(&outputs) {
        // curl -s exits 0 on an HTTP error: what came back must be an answer, not an error.
        if block.contains("curl") {
            assert!(
                !output.contains("\"error\""),
                "a tour request failed:\n{block}\n{output}"
            );
        }
        if block.contains(":predict") || block.contains("/infer") {
            assert!(
                output.contains("\"predictions\"") || output.contains("\"outputs\""),
                "no prediction from:\n{block}\n{output}"
            );
        }
    }
    let last = outputs.last().unwrap();
    assert!(
        last.contains("litehouse_requests_total{endpoint=\"mnist\""),
        "metrics do not count the tour's requests:\n{last}"
    );
}
