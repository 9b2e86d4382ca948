//! Shared helpers: a real server on 127.0.0.1 over the example catalog, and real MNIST digits.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use litehouse_predictor::{load_dir, Executor};
use std::sync::Arc;

use litehouse_serving::{AppState, Limits, ServeOptions};

/// Repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Starts the server on an ephemeral port; returns its base URL.
pub async fn start() -> String {
    start_with(Limits::default()).await
}

/// Starts the server with the given limits.
pub async fn start_with(limits: Limits) -> String {
    let catalog = load_dir(&root().join("models/catalog")).unwrap();
    assert!(catalog.failures.is_empty(), "{:?}", catalog.failures);
    let state = AppState::fixed(catalog, Executor::new(2, 64), limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(litehouse_serving::server::serve(listener, state));
    format!("http://{addr}")
}

/// Starts a server over the example catalog with serving options; returns its URL and state.
pub async fn start_with_options(options: ServeOptions) -> (String, Arc<AppState>) {
    let catalog = load_dir(&root().join("models/catalog")).unwrap();
    let state = AppState::with_options(
        litehouse_predictor::catalog::shared(catalog),
        None,
        Executor::new(2, 64),
        Limits::default(),
        options,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(litehouse_serving::server::serve(listener, state.clone()));
    (format!("http://{addr}"), state)
}

#[path = "../../../../tests/support/digits.rs"]
mod digits;

/// The 10 real MNIST test digits (0..9) as PNG files.
pub fn digit_pngs() -> Vec<Vec<u8>> {
    digits::digit_pngs(&root())
}
