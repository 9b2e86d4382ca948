//! Endpoints served from the registry over real HTTP: traffic split, sticky routing keys, the
//! deployed-model override, shadows, live updates (polled and lazy), and a corrupted artifact that
//! never takes traffic. The live-update suite runs on a local store and on S3 (moto).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use litehouse_predictor::{catalog::shared, Catalog, Executor, LiveCatalog};
use litehouse_registry::{DeployRequest, Registry, TrafficSplit, UploadRequest};
use litehouse_serving::{AppState, Limits, ServeOptions};
use litehouse_store::{testing, Condition, Store};
use serde_json::{json, Value};

const INT8: &str = "tabular_int8_float_io.tflite";
const FLOAT: &str = "tabular_float32.tflite";

fn model_bytes(file: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../models/runtime/testdata/exported/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn split(pairs: &[(&str, u32)]) -> TrafficSplit {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

async fn upload(reg: &Registry, file: &str) -> u64 {
    let req = UploadRequest {
        name: "linnerud".into(),
        ..Default::default()
    };
    reg.upload(model_bytes(file), req).await.unwrap().version
}

async fn deploy(reg: &Registry, version: u64, s: Option<TrafficSplit>, shadow: bool) -> String {
    let req = DeployRequest {
        model: "linnerud".into(),
        version: version.to_string(),
        traffic_split: s,
        shadow,
        ..Default::default()
    };
    reg.deploy("lin", &req, None).await.unwrap().1.id
}

/// A registry with linnerud v1 (int8) and v2 (float) on endpoint "lin" at 90/10.
async fn champion_challenger(reg: &Registry) {
    upload(reg, INT8).await;
    upload(reg, FLOAT).await;
    reg.create_endpoint("lin", Some("Linnerud"), "")
        .await
        .unwrap();
    deploy(reg, 1, Some(split(&[("0", 100)])), false).await;
    deploy(reg, 2, Some(split(&[("1", 90), ("0", 10)])), false).await;
}

struct Server {
    url: String,
    state: Arc<AppState>,
    /// Keeps the poller running for as long as the test holds the server.
    _live: Arc<LiveCatalog>,
    client: reqwest::Client,
}

/// A real server over the registry; `poll` starts the background checker (the local server),
/// otherwise requests refresh lazily at most every `every` (the Lambda).
async fn serve(reg: &Registry, every: Duration, poll: bool) -> Server {
    serve_with(reg, every, poll, ServeOptions::default()).await
}

/// [`serve`] with serving options.
async fn serve_with(reg: &Registry, every: Duration, poll: bool, options: ServeOptions) -> Server {
    let live = LiveCatalog::new(reg.clone(), every, shared(Catalog::default()));
    live.load().await.unwrap();
    let executor = Executor::new(2, 256);
    let lazy = if poll {
        live.spawn_poller();
        None
    } else {
        Some(live.clone())
    };
    let state = AppState::with_options(
        live.catalog().clone(),
        lazy,
        executor,
        Limits::default(),
        options,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(litehouse_serving::server::serve(listener, state.clone()));
    Server {
        url,
        state,
        _live: live,
        client: reqwest::Client::new(),
    }
}

impl Server {
    async fn predict(&self, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("{}/v1/endpoints/lin:predict", self.url))
            .json(&json!({"instances": [[5, 162, 60]]}));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    async fn get_json(&self, path: &str) -> Value {
        let resp = self.client.get(format!("{}{path}", self.url)).send();
        resp.await.unwrap().json().await.unwrap()
    }

    async fn answered_by(&self, headers: &[(&str, &str)]) -> String {
        let (status, body) = self.predict(headers).await;
        assert_eq!(status, 200, "{body}");
        body["deployedModelId"].as_str().unwrap().to_string()
    }

    /// Waits until the served endpoint has `etag` (the server noticed the change).
    async fn wait_for_etag(&self, etag: &str) {
        for _ in 0..200 {
            if self.served_etag().await.as_deref() == Some(etag) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the server never picked up endpoint etag {etag}");
    }

    async fn served_etag(&self) -> Option<String> {
        let body = self.get_json("/v1/endpoints/lin").await;
        body["etag"].as_str().map(str::to_string)
    }
}

async fn local_registry() -> (Registry, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().to_str().unwrap()).await.unwrap();
    (Registry::new(store), dir)
}

/// 10,000 requests at 90/10 land within binomial tolerance (5 standard deviations).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_requests_follow_the_split() {
    let (reg, _dir) = local_registry().await;
    champion_challenger(&reg).await;
    let server = Arc::new(serve(&reg, Duration::from_secs(60), true).await);
    let counts: HashMap<String, usize> = futures_util::stream::iter(0..10_000)
        .map(|_| {
            let server = server.clone();
            async move { server.answered_by(&[]).await }
        })
        .buffer_unordered(16)
        .fold(HashMap::new(), |mut m, id| async move {
            *m.entry(id).or_default() += 1;
            m
        })
        .await;
    let challenger = counts.get("2").copied().unwrap_or(0) as f64;
    let (n, p): (f64, f64) = (10_000.0, 0.10);
    let sd = (n * p * (1.0 - p)).sqrt();
    assert!(
        (challenger - n * p).abs() < 5.0 * sd,
        "challenger got {challenger} of 10000 (expected {} ± {:.0}); counts {counts:?}",
        n * p,
        5.0 * sd
    );
    assert_eq!(counts.values().sum::<usize>(), 10_000);
    assert_eq!(counts.len(), 2, "{counts:?}");
}

/// A routing key never switches models while the split is unchanged; when the split moves from
/// 90/10 to 80/20 only keys that must move do, and only towards the model that gained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_routing_keys() {
    let (reg, _dir) = local_registry().await;
    champion_challenger(&reg).await;
    let server = serve(&reg, Duration::from_millis(20), true).await;
    let keys: Vec<String> = (0..300).map(|i| format!("user-{i}")).collect();
    let mut first = HashMap::new();
    for round in 0..4 {
        for key in &keys {
            let got = server
                .answered_by(&[("x-litehouse-routing-key", key)])
                .await;
            let want = first.entry(key.clone()).or_insert_with(|| got.clone());
            assert_eq!(&got, want, "key {key} switched models in round {round}");
        }
    }
    let on_two = first.values().filter(|m| *m == "2").count();
    assert!(
        (10..=55).contains(&on_two),
        "{on_two} of 300 keys on the 10% model"
    );

    let e = reg
        .set_traffic_split("lin", &split(&[("1", 80), ("2", 20)]), None)
        .await
        .unwrap();
    server.wait_for_etag(&e.etag).await;
    let mut moved = 0;
    for key in &keys {
        let got = server
            .answered_by(&[("x-litehouse-routing-key", key)])
            .await;
        if got != first[key] {
            assert_eq!((first[key].as_str(), got.as_str()), ("1", "2"), "key {key}");
            moved += 1;
        }
    }
    assert!(
        (10..=65).contains(&moved),
        "{moved} of 300 keys moved for a 10-point change"
    );
}

/// Where the server allows it, the override header reaches any deployed model that takes
/// traffic, never a shadow; a shadow gets a copy of every request and its answers are never
/// returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn override_and_shadow() {
    let (reg, _dir) = local_registry().await;
    upload(&reg, INT8).await;
    upload(&reg, FLOAT).await;
    reg.create_endpoint("lin", None, "").await.unwrap();
    deploy(&reg, 1, Some(split(&[("0", 100)])), false).await;
    let shadow = deploy(&reg, 2, None, true).await;
    let options = ServeOptions {
        allow_deployed_model_header: true,
        ..ServeOptions::default()
    };
    let server = serve_with(&reg, Duration::from_secs(60), true, options).await;

    let described = server.get_json("/v1/endpoints/lin").await;
    assert_eq!(
        described["deployedModels"][1]["litehouseShadow"], true,
        "{described}"
    );

    for _ in 0..20 {
        assert_eq!(server.answered_by(&[]).await, "1");
        // Let the shadow copy find an idle worker before the next request.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut runs = 0.0;
    for _ in 0..200 {
        let dropped = metric(&server, "litehouse_shadow_dropped_total", &shadow);
        runs = metric(&server, "litehouse_shadow_runs_total", &shadow);
        if runs + dropped >= 20.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(runs >= 15.0, "shadow ran {runs} of 20 copies");
    assert_eq!(
        metric(&server, "litehouse_shadow_errors_total", &shadow),
        0.0
    );

    assert_eq!(
        server
            .answered_by(&[("x-litehouse-deployed-model-id", "1")])
            .await,
        "1"
    );
    let (status, body) = server
        .predict(&[("x-litehouse-deployed-model-id", &shadow)])
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is a shadow"),
        "{body}"
    );
    let (status, body) = server
        .predict(&[("x-litehouse-deployed-model-id", "9")])
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no deployed model '9'"));
}

/// The value of a shadow counter for deployed model `id` of endpoint `lin` (0 when absent).
fn metric(server: &Server, name: &str, id: &str) -> f64 {
    let text = server.state.render_metrics();
    let prefix = format!("{name}{{endpoint=\"lin\",deployed_model=\"{id}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0.0, |v| v.parse().unwrap())
}

/// Live updates on both backends: split changes, new endpoints, new versions loaded before they
/// take traffic, and a corrupted artifact that is refused while the old state keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_updates() {
    let (reg, _dir) = local_registry().await;
    live_update_suite(reg).await;
    if let Some(store) = testing::s3_store("serving-live").await {
        live_update_suite(Registry::new(store)).await;
    }
}

async fn live_update_suite(reg: Registry) {
    upload(&reg, INT8).await;
    reg.create_endpoint("lin", None, "").await.unwrap();
    deploy(&reg, 1, Some(split(&[("0", 100)])), false).await;
    let polled = serve(&reg, Duration::from_millis(20), true).await;
    // The Lambda's lazy check: no poller; the first request after the interval refreshes.
    let lazy = serve(&reg, Duration::ZERO, false).await;
    for server in [&polled, &lazy] {
        assert_eq!(server.answered_by(&[]).await, "1");
    }

    // A corrupted new version never takes traffic; the old state keeps serving.
    let v2 = upload(&reg, FLOAT).await;
    let key = format!("models/linnerud/versions/{v2}/model.tflite");
    let mut bytes = reg.store().get(&key).await.unwrap().bytes;
    let n = bytes.len();
    bytes[n / 2] ^= 0x55;
    reg.store()
        .put(&key, bytes, Condition::Always)
        .await
        .unwrap();
    let bad = deploy(&reg, v2, Some(split(&[("0", 100)])), false).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for server in [&polled, &lazy] {
        assert_eq!(server.answered_by(&[]).await, "1", "still the old state");
        let status = server.get_json("/v1/models/linnerud").await;
        let text = status.to_string();
        assert!(text.contains("sha256 mismatch"), "{text}");
    }

    // Put things right: a good upload replaces the bad deployment and takes traffic.
    reg.undeploy("lin", &bad, Some(&split(&[("1", 100)])), None)
        .await
        .unwrap();
    reg.store()
        .put(&key, model_bytes(FLOAT), Condition::Always)
        .await
        .unwrap();
    let good = deploy(&reg, v2, Some(split(&[("0", 100)])), false).await;
    let e = reg.endpoint("lin").await.unwrap();
    for server in [&polled, &lazy] {
        server.wait_for_etag(&e.etag).await;
        assert_eq!(server.answered_by(&[]).await, good);
    }

    // A new endpoint appears without restart.
    reg.create_endpoint("fresh", None, "").await.unwrap();
    let req = DeployRequest {
        model: "linnerud".into(),
        version: "1".into(),
        traffic_split: Some(split(&[("0", 100)])),
        ..Default::default()
    };
    reg.deploy("fresh", &req, None).await.unwrap();
    for server in [&polled, &lazy] {
        let mut status = 0;
        for _ in 0..200 {
            let resp = server
                .client
                .post(format!("{}/v1/endpoints/fresh:predict", server.url))
                .json(&json!({"instances": [[5, 162, 60]]}))
                .send()
                .await
                .unwrap();
            status = resp.status().as_u16();
            if status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(status, 200, "endpoint 'fresh' never appeared");
    }
}
