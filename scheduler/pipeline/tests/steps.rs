//! The built-in steps run one after another on a small CSV and a local store, as the runner
//! will run them: the first model becomes champion at 100%, a second passes the gate and
//! becomes challenger at 10%, promote and rollback move the roles, data off the schema fails
//! validation with the anomalies listed.

use std::path::Path;

use litehouse_pipeline::roles;
use litehouse_pipeline::steps::execute;
use litehouse_registry::Registry;

/// Two well-separated classes on two features, with a seeded jitter.
fn blobs(path: &Path, n: usize, seed: u64, shift: f64) {
    let mut rng = fastrand_like(seed);
    let mut text = String::from("x,y,label\n");
    for i in 0..n {
        let c = i % 2;
        let (cx, cy) = if c == 0 { (0.0, 0.0) } else { (4.0, 4.0) };
        text.push_str(&format!(
            "{:.3},{:.3},{}\n",
            cx + shift + rng(),
            cy + rng(),
            ["a", "b"][c]
        ));
    }
    std::fs::write(path, text).expect("writes csv");
}

fn fastrand_like(seed: u64) -> impl FnMut() -> f64 {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 33) as f64 / (1u64 << 31) as f64) - 0.5
    }
}

fn args(pairs: &[(&str, String)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(k, v)| [format!("--{k}"), v.clone()])
        .collect()
}

async fn round(work: &Path, store: &str, csv: &Path, run: &str) -> (bool, Option<u64>) {
    let d = work.join(run);
    let p = |x: &str| d.join(x).display().to_string();
    let common = [("pipeline", "t".to_string()), ("run", run.to_string())];
    let with = |extra: &[(&str, String)]| {
        let mut v = args(extra);
        v.extend(args(&common));
        v
    };
    execute(
        "ingest",
        &with(&[
            ("data", csv.display().to_string()),
            ("label", "label".into()),
            ("out-dataset", p("dataset")),
            ("out-data_hash", p("hash")),
        ]),
    )
    .await
    .expect("ingest");
    execute(
        "validate",
        &with(&[
            ("dataset", p("dataset")),
            ("name", "blobs".into()),
            ("store", store.into()),
            ("out-schema", p("schema")),
            ("out-anomalies", p("anomalies")),
        ]),
    )
    .await
    .expect("validate");
    execute(
        "train",
        &with(&[
            ("dataset", p("dataset")),
            ("hidden", "8".into()),
            ("epochs", "20".into()),
            ("patience", "20".into()),
            ("dropout", "0".into()),
            ("learning_rate", "0.01".into()),
            ("out-model", p("model")),
            ("out-score", p("score")),
        ]),
    )
    .await
    .expect("train");
    execute(
        "evaluate",
        &with(&[
            ("dataset", p("dataset")),
            ("model", p("model")),
            ("name", "blobs".into()),
            ("store", store.into()),
            ("out-metrics", p("metrics")),
        ]),
    )
    .await
    .expect("evaluate");
    execute(
        "gate",
        &with(&[
            ("metrics", p("metrics")),
            ("threshold", "0.9".into()),
            ("margin", "0.05".into()),
            ("out-passed", p("passed")),
            ("out-reason", p("reason")),
        ]),
    )
    .await
    .expect("gate");
    let passed = std::fs::read_to_string(d.join("passed")).expect("passed") == "true";
    if !passed {
        return (false, None);
    }
    execute(
        "register",
        &with(&[
            ("model", p("model")),
            ("name", "blobs".into()),
            ("metrics", p("metrics")),
            ("schema", p("schema")),
            ("store", store.into()),
            ("out-version", p("version")),
        ]),
    )
    .await
    .expect("register");
    let version: u64 = std::fs::read_to_string(d.join("version"))
        .expect("version")
        .parse()
        .expect("a number");
    execute(
        "deploy",
        &with(&[
            ("name", "blobs".into()),
            ("version", version.to_string()),
            ("store", store.into()),
            ("out-role", p("role")),
            ("out-deployed_model", p("dm")),
        ]),
    )
    .await
    .expect("deploy");
    (true, Some(version))
}

#[tokio::test(flavor = "multi_thread")]
async fn champion_then_challenger_then_promote_and_rollback() {
    let work = tempfile::tempdir().expect("tempdir");
    let store = work.path().join("store").display().to_string();
    let csv = work.path().join("blobs.csv");
    blobs(&csv, 400, 1, 0.0);
    let (passed, v1) = round(work.path(), &store, &csv, "r1").await;
    assert!(passed);
    let registry = Registry::open(&store).await.expect("store");
    let e = registry.endpoint("blobs").await.expect("endpoint created");
    assert_eq!(e.traffic_split.values().copied().collect::<Vec<_>>(), [100]);
    assert_eq!(
        registry
            .aliases("blobs")
            .await
            .expect("aliases")
            .aliases
            .get("champion")
            .copied(),
        v1
    );

    blobs(&csv, 400, 2, 0.0);
    let (passed, v2) = round(work.path(), &store, &csv, "r2").await;
    assert!(passed);
    assert_ne!(v1, v2, "new data trains a different model");
    let e = registry.endpoint("blobs").await.expect("endpoint");
    let mut shares: Vec<u32> = e.traffic_split.values().copied().collect();
    shares.sort_unstable();
    assert_eq!(shares, [10, 90]);
    let aliases = registry.aliases("blobs").await.expect("aliases");
    assert_eq!(aliases.aliases.get("challenger").copied(), v2);
    let last = aliases.history.last().expect("history");
    assert!(
        last.by.contains("run r2") && last.reason.contains("challenger at 10%"),
        "{last:?}"
    );

    let moved = roles::promote(&registry, "blobs", "blobs", "test", "better")
        .await
        .expect("promote");
    assert_eq!(moved.endpoint.deployed_models.len(), 1);
    assert_eq!(moved.endpoint.deployed_models[0].version, v2.expect("v2"));
    let moved = roles::rollback(&registry, "blobs", "blobs", "test", "regression")
        .await
        .expect("rollback");
    assert_eq!(moved.endpoint.deployed_models.len(), 1);
    assert_eq!(moved.endpoint.deployed_models[0].version, v1.expect("v1"));
    assert_eq!(
        registry
            .aliases("blobs")
            .await
            .expect("aliases")
            .aliases
            .get("champion")
            .copied(),
        v1
    );

    // Data off the schema: the first feature moved far outside its range.
    blobs(&csv, 400, 3, 50.0);
    let d = work.path().join("r3");
    let p = |x: &str| d.join(x).display().to_string();
    execute(
        "ingest",
        &args(&[
            ("data", csv.display().to_string()),
            ("label", "label".into()),
            ("out-dataset", p("dataset")),
            ("out-data_hash", p("hash")),
        ]),
    )
    .await
    .expect("ingest");
    let err = execute(
        "validate",
        &args(&[
            ("dataset", p("dataset")),
            ("name", "blobs".into()),
            ("store", store.clone()),
            ("out-schema", p("schema")),
            ("out-anomalies", p("anomalies")),
        ]),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("column 'x'") && err.contains("outside"),
        "{err}"
    );
}
