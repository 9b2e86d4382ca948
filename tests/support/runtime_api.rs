//! A Lambda Runtime API on 127.0.0.1 for driving a real function binary in tests: it serves
//! `/2018-06-01/runtime/invocation/next` with queued events and collects what the function
//! posts back. Included by the function crates' tests with `#[path]`.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value as Json;
use tokio::sync::{mpsc, Mutex as AsyncMutex};

#[derive(Default)]
struct Harness {
    events: Mutex<VecDeque<(String, Json)>>,
    results: Mutex<Vec<(String, String, Json)>>,
}

type Shared = (Arc<Harness>, Arc<AsyncMutex<mpsc::Receiver<()>>>);

async fn next(State((h, wake)): State<Shared>) -> Response {
    loop {
        if let Some((id, event)) = h.events.lock().unwrap().pop_front() {
            let mut headers = HeaderMap::new();
            headers.insert(
                "lambda-runtime-aws-request-id",
                HeaderValue::from_str(&id).unwrap(),
            );
            headers.insert(
                "lambda-runtime-deadline-ms",
                HeaderValue::from_static("99999999999999"),
            );
            headers.insert(
                "lambda-runtime-invoked-function-arn",
                HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:predict"),
            );
            headers.insert(
                "lambda-runtime-trace-id",
                HeaderValue::from_static("Root=1-0-0"),
            );
            return (headers, event.to_string()).into_response();
        }
        // Long-poll like the real API until the test queues an event.
        wake.lock().await.recv().await;
    }
}

async fn respond(
    State((h, _)): State<Shared>,
    UrlPath((id, kind)): UrlPath<(String, String)>,
    body: Bytes,
) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Json::Null);
    h.results.lock().unwrap().push((id, kind, value));
    StatusCode::ACCEPTED
}

async fn init_error(State((h, _)): State<Shared>, body: Bytes) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Json::Null);
    h.results
        .lock()
        .unwrap()
        .push(("init".into(), "error".into(), value));
    StatusCode::ACCEPTED
}

pub struct Running {
    harness: Arc<Harness>,
    wake: mpsc::Sender<()>,
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

impl Running {
    /// Starts `binary` against a fresh Runtime API on 127.0.0.1 with `env` set.
    pub async fn start(binary: &str, env: &[(&str, String)]) -> Running {
        let harness = Arc::new(Harness::default());
        let (tx, rx) = mpsc::channel(64);
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(respond))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state((harness.clone(), Arc::new(AsyncMutex::new(rx))));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let name = Path::new(binary)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("function");
        // Relative paths in events mean the repository root, as under `make lambda-watch`.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let child = Command::new(binary)
            .current_dir(root)
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut child = child;
        let stdout = Arc::new(Mutex::new(Vec::new()));
        if let Some(out) = child.stdout.take() {
            let lines = stdout.clone();
            // Drained on a thread so the function never blocks on a full pipe.
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Running {
            harness,
            wake: tx,
            child,
            stdout,
        }
    }

    /// The lines the function printed on stdout so far (its log stream in a real Lambda).
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// The function's CloudWatch EMF lines so far: stdout JSON objects with `_aws` metadata.
    pub fn emf_lines(&self) -> Vec<Json> {
        self.stdout_lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<Json>(l).ok())
            .filter(|v| v.get("_aws").is_some())
            .collect()
    }

    /// Kills the function at once, as Lambda does to a frozen sandbox it reclaims.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Queues an event and waits for the function's answer.
    pub async fn invoke(&self, id: &str, event: Json) -> (String, Json) {
        self.harness
            .events
            .lock()
            .unwrap()
            .push_back((id.to_string(), event));
        let _ = self.wake.send(()).await;
        for _ in 0..600 {
            if let Some(r) = self
                .harness
                .results
                .lock()
                .unwrap()
                .iter()
                .find(|r| r.0 == id || r.0 == "init")
            {
                return (r.1.clone(), r.2.clone());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no answer to invocation {id} within 30 s");
    }
}
