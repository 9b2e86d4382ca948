//! Helpers shared by the end-to-end tests of the `litehouse` binary.

#![allow(dead_code, clippy::unwrap_used)] // each test binary uses part of this; trusted fixtures

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The `litehouse` binary under test.
pub fn litehouse() -> Command {
    Command::new(env!("CARGO_BIN_EXE_litehouse"))
}

/// Runs `litehouse ARGS`, asserts it succeeded, and returns its stdout.
pub fn run_ok(args: &[&str]) -> String {
    let out = litehouse().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "litehouse {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Starts `litehouse serve --models DIR` on an ephemeral port and returns the child and the
/// `host:port` it announced. Its stderr keeps being drained so it never blocks on a full pipe.
pub fn spawn_serve(models: &str) -> (Child, String) {
    let mut child = litehouse()
        .args(["serve", "--models", models, "--port", "0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = announced_addr(&mut lines);
    std::thread::spawn(move || lines.for_each(drop));
    (child, addr)
}

/// Reads `serve`'s stderr lines up to its "listening on http://HOST:PORT" line and returns
/// `HOST:PORT`; the remaining lines stay in `lines`.
pub fn announced_addr(lines: &mut impl Iterator<Item = std::io::Result<String>>) -> String {
    loop {
        let line = lines
            .next()
            .expect("serve exited before listening")
            .unwrap();
        if let Some(rest) = line.split("on http://").nth(1) {
            return rest.split_whitespace().next().unwrap().to_string();
        }
    }
}

/// Sends SIGTERM to `child` and asserts that it then exits successfully.
#[cfg(unix)]
pub fn terminate_cleanly(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
}

/// A child process killed when the test ends, however it ends.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
