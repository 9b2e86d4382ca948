//! The local runner end to end on a small CSV: a fresh store gets a champion, an unchanged
//! re-run trains nothing, new data makes a 10% challenger, degraded data is gated, data off the
//! schema fails with the anomalies, a `command` step's `.tflite` is registered and deployed, a
//! failed run resumes from its last finished step; on a local store and on S3 (moto).

#![allow(clippy::unwrap_used)] // test harness over data it writes itself

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use litehouse_pipeline::run::record::{RunRecord, RunState, TaskState};
use litehouse_pipeline::run::{self, RunOptions};
use litehouse_pipeline::{check, compile, definition, PipelineSpec};
use litehouse_registry::Registry;
use litehouse_store::Store;

const PIPELINE: &str = r#"
name: blobs-retrain
params:
  data: { type: string }
  min_accuracy: { type: number, default: 0.9 }
steps:
  ingest:
    uses: ingest
    with: { data: "{{ params.data }}", label: label }
  validate:
    uses: validate
    with: { dataset: "{{ steps.ingest.outputs.dataset }}", name: blobs }
  train:
    uses: train
    after: [validate]
    with:
      dataset: "{{ steps.ingest.outputs.dataset }}"
      hidden: "8"
      dropout: 0.0
      epochs: 30
      batch_size: 16
      learning_rate: 0.02
      patience: 30
  evaluate:
    uses: evaluate
    with: { dataset: "{{ steps.ingest.outputs.dataset }}", model: "{{ steps.train.outputs.model }}", name: blobs }
  gate:
    uses: gate
    with: { metrics: "{{ steps.evaluate.outputs.metrics }}", metric: accuracy, threshold: "{{ params.min_accuracy }}", margin: 0.05 }
  register:
    uses: register
    when: "{{ steps.gate.outputs.passed }}"
    with:
      model: "{{ steps.train.outputs.model }}"
      name: blobs
      metrics: "{{ steps.evaluate.outputs.metrics }}"
      schema: "{{ steps.validate.outputs.schema }}"
      data_hash: "{{ steps.ingest.outputs.data_hash }}"
  deploy:
    uses: deploy
    with: { name: blobs, version: "{{ steps.register.outputs.version }}", endpoint: blobs }
"#;

/// Two well-separated classes on two features; `noise` of the labels flipped at random.
fn blobs(path: &Path, n: usize, seed: u64, shift: f64, noise: f64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut text = String::from("x,y,label\n");
    for i in 0..n {
        let c = i % 2;
        let centre = if c == 0 { 0.0 } else { 4.0 };
        let label = if rng.f64() < noise { rng.usize(..2) } else { c };
        text.push_str(&format!(
            "{:.3},{:.3},{}\n",
            centre + shift + rng.f64() - 0.5,
            centre + rng.f64() - 0.5,
            ["a", "b"][label]
        ));
    }
    std::fs::write(path, text).unwrap();
}

fn spec(text: &str) -> PipelineSpec {
    let file = definition::parse(text, "p.yaml", false).unwrap();
    compile(&check(&file, &BTreeMap::new()).unwrap())
}

fn quiet() -> run::Progress {
    Arc::new(|_| {})
}

async fn go(store: &Store, spec: &PipelineSpec, params: &[(&str, String)]) -> RunRecord {
    let options = RunOptions {
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        ..RunOptions::default()
    };
    run::run(store, spec, &options, quiet()).await.unwrap()
}

fn state(r: &RunRecord, task: &str) -> TaskState {
    r.tasks[task].state
}

/// The endpoint's split as `version -> percent`.
async fn split(store: &Store) -> BTreeMap<u64, u32> {
    let registry = Registry::new(store.clone());
    let e = registry.endpoint("blobs").await.unwrap();
    e.traffic_split
        .iter()
        .map(|(id, pct)| (e.deployed(id).unwrap().version, *pct))
        .collect()
}

async fn rounds(store: Store, dir: &Path) {
    let spec = spec(PIPELINE);
    let first = dir.join("first.csv");
    blobs(&first, 200, 1, 0.0, 0.0);
    let data = |p: &Path| ("data", p.display().to_string());

    let r1 = go(&store, &spec, &[data(&first)]).await;
    assert_eq!(r1.state, RunState::Succeeded, "{r1:#?}");
    assert_eq!(r1.version(), Some(1));
    assert_eq!(r1.role(), Some("champion"));
    assert_eq!(split(&store).await, [(1, 100)].into());
    assert!(r1.metrics()["accuracy"] >= 0.9, "{:?}", r1.metrics());

    // Unchanged: ingest runs (it reads the outside world) but finds the same snapshot, so
    // validate and train come from the cache; the identical model keeps version 1.
    let r2 = go(&store, &spec, &[data(&first)]).await;
    assert_eq!(r2.state, RunState::Succeeded, "{r2:#?}");
    assert_eq!(state(&r2, "ingest"), TaskState::Succeeded);
    assert_eq!(state(&r2, "validate"), TaskState::Cached);
    assert_eq!(state(&r2, "train"), TaskState::Cached);
    assert_eq!(
        r2.tasks["train"].cached_from.as_deref(),
        Some(r1.run.as_str())
    );
    assert_eq!(r2.version(), Some(1));
    assert_eq!(split(&store).await, [(1, 100)].into());

    // New data of the same kind: trained again, passes, challenger at 10%.
    let second = dir.join("second.csv");
    blobs(&second, 240, 2, 0.0, 0.0);
    let r3 = go(&store, &spec, &[data(&second)]).await;
    assert_eq!(r3.state, RunState::Succeeded, "{r3:#?}");
    assert_eq!(state(&r3, "train"), TaskState::Succeeded);
    assert_eq!(r3.version(), Some(2));
    assert_eq!(r3.role(), Some("challenger"));
    assert_eq!(split(&store).await, [(1, 90), (2, 10)].into());

    // Labels half noise: the candidate misses the threshold; nothing moves.
    let degraded = dir.join("degraded.csv");
    blobs(&degraded, 200, 3, 0.0, 0.9);
    let r4 = go(&store, &spec, &[data(&degraded)]).await;
    assert_eq!(r4.state, RunState::Gated, "{r4:#?}");
    let reason = r4.reason.clone().unwrap();
    assert!(reason.contains("does not meet the threshold"), "{reason}");
    assert_eq!(state(&r4, "register"), TaskState::Skipped);
    assert_eq!(state(&r4, "deploy"), TaskState::Skipped);
    assert_eq!(split(&store).await, [(1, 90), (2, 10)].into());

    // A feature far outside the stored schema: validate fails naming the column.
    let shifted = dir.join("shifted.csv");
    blobs(&shifted, 200, 4, 50.0, 0.0);
    let r5 = go(&store, &spec, &[data(&shifted)]).await;
    assert_eq!(r5.state, RunState::Failed, "{r5:#?}");
    let reason = r5.reason.clone().unwrap();
    assert!(reason.contains("'x'"), "{reason}");
    assert_eq!(state(&r5, "validate"), TaskState::Failed);
    assert_eq!(state(&r5, "train"), TaskState::Skipped);
    assert_eq!(split(&store).await, [(1, 90), (2, 10)].into());

    // Every run is listed, with its record in the store.
    let runs = run::record::runs(&store, "blobs-retrain").await.unwrap();
    let states: Vec<RunState> = runs.iter().map(|r| r.state).collect();
    assert_eq!(
        states,
        [
            RunState::Succeeded,
            RunState::Succeeded,
            RunState::Succeeded,
            RunState::Gated,
            RunState::Failed
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retraining_rounds_on_a_local_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store").to_str().unwrap())
        .await
        .unwrap();
    rounds(store, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retraining_rounds_on_s3() {
    let Some(store) = litehouse_store::testing::s3_store("pipeline-rounds").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    rounds(store, dir.path()).await;
}

/// A pipeline whose model comes from a program: `cp` stands in for a team's own training script.
fn command_pipeline(program: &str) -> String {
    format!(
        r#"
name: bring-your-own
params:
  data: {{ type: string }}
  source: {{ type: string }}
steps:
  ingest:
    uses: ingest
    with: {{ data: "{{{{ params.data }}}}", label: label }}
  keras:
    uses: command
    command: [{program}]
    with: {{ source: "{{{{ params.source }}}}", dataset: "{{{{ steps.ingest.outputs.dataset }}}}" }}
    outputs: {{ model: model }}
  evaluate:
    uses: evaluate
    with: {{ dataset: "{{{{ steps.ingest.outputs.dataset }}}}", model: "{{{{ steps.keras.outputs.model }}}}", name: byo }}
  gate:
    uses: gate
    with: {{ metrics: "{{{{ steps.evaluate.outputs.metrics }}}}", threshold: 0.9 }}
  register:
    uses: register
    when: "{{{{ steps.gate.outputs.passed }}}}"
    with: {{ model: "{{{{ steps.keras.outputs.model }}}}", name: byo, metrics: "{{{{ steps.evaluate.outputs.metrics }}}}" }}
  deploy:
    uses: deploy
    with: {{ name: byo, version: "{{{{ steps.register.outputs.version }}}}" }}
"#
    )
}

/// Trains a model with the built-in pipeline and returns the `.tflite` it wrote.
async fn a_trained_tflite(store: &Store, dir: &Path) -> std::path::PathBuf {
    let csv = dir.join("train.csv");
    blobs(&csv, 200, 7, 0.0, 0.0);
    let r = go(
        store,
        &spec(PIPELINE),
        &[("data", csv.display().to_string())],
    )
    .await;
    assert_eq!(r.state, RunState::Succeeded, "{r:#?}");
    let key = &r.tasks["train"].artifacts["model"].key;
    let out = dir.join("elsewhere.tflite");
    let bytes = store
        .get(&format!("{key}model.tflite"))
        .await
        .unwrap()
        .bytes;
    std::fs::write(&out, bytes).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_step_that_writes_a_tflite_is_gated_registered_and_deployed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store").to_str().unwrap())
        .await
        .unwrap();
    let tflite = a_trained_tflite(&store, dir.path()).await;
    let csv = dir.path().join("eval.csv");
    blobs(&csv, 200, 8, 0.0, 0.0);
    let spec = spec(&command_pipeline(
        r#"cp, "{{ inputs.source }}", "{{ outputs.model }}""#,
    ));
    let r = go(
        &store,
        &spec,
        &[
            ("data", csv.display().to_string()),
            ("source", tflite.display().to_string()),
        ],
    )
    .await;
    assert_eq!(r.state, RunState::Succeeded, "{r:#?}");
    assert!(r.tasks["keras"].artifacts["model"].file, "a single file");
    assert!(r.tasks["evaluate"]
        .log
        .iter()
        .any(|l| l.contains("default split")));
    assert_eq!(r.version(), Some(1));
    let registry = Registry::new(store.clone());
    let m = registry.manifest("byo", 1).await.unwrap();
    assert_eq!(
        m.sha256,
        litehouse_pipeline::steps::dataset::hex(&<sha2::Sha256 as sha2::Digest>::digest(
            std::fs::read(&tflite).unwrap()
        ))
    );
    assert_eq!(m.lineage.source_run.as_deref(), Some(r.run.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_command_fails_the_run_with_its_exit_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store").to_str().unwrap())
        .await
        .unwrap();
    let csv = dir.path().join("d.csv");
    blobs(&csv, 50, 1, 0.0, 0.0);
    let spec = spec(&command_pipeline(
        r#"sh, -c, "echo training... ; echo 'no GPU found' >&2; exit 3", "{{ inputs.source }}""#,
    ));
    let r = go(
        &store,
        &spec,
        &[("data", csv.display().to_string()), ("source", "x".into())],
    )
    .await;
    assert_eq!(r.state, RunState::Failed);
    let why = r.tasks["keras"].reason.clone().unwrap();
    assert!(
        why.contains("exited with 3") && why.contains("no GPU found"),
        "{why}"
    );
    assert!(r.tasks["keras"].log.iter().any(|l| l == "training..."));
    assert_eq!(state(&r, "evaluate"), TaskState::Skipped);
    // Nothing was registered.
    let registry = Registry::new(store.clone());
    assert!(registry.versions("byo").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_resumes_from_its_last_finished_step() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store").to_str().unwrap())
        .await
        .unwrap();
    let tflite = a_trained_tflite(&store, dir.path()).await;
    let csv = dir.path().join("d.csv");
    blobs(&csv, 200, 9, 0.0, 0.0);
    // Fails until the marker exists, like a step that hit a transient outage.
    let marker = dir.path().join("outage-over");
    let program = format!(
        r#"sh, -c, "test -f {} || exit 75; cp \"$0\" \"$1\"", "{{{{ inputs.source }}}}", "{{{{ outputs.model }}}}""#,
        marker.display()
    );
    let spec = spec(&command_pipeline(&program));
    let params = [
        ("data", csv.display().to_string()),
        ("source", tflite.display().to_string()),
    ];
    let first = go(&store, &spec, &params).await;
    assert_eq!(first.state, RunState::Failed);
    assert_eq!(state(&first, "ingest"), TaskState::Succeeded);
    std::fs::write(&marker, "").unwrap();
    let options = RunOptions {
        resume: Some(first.run.clone()),
        ..RunOptions::default()
    };
    let again = run::run(&store, &spec, &options, quiet()).await.unwrap();
    assert_eq!(again.state, RunState::Succeeded, "{again:#?}");
    assert_eq!(again.run, first.run);
    assert_eq!(again.attempts, 2);
    // ingest kept its first execution; the rest ran now.
    assert_eq!(again.tasks["ingest"].started, first.tasks["ingest"].started);
    assert_eq!(state(&again, "keras"), TaskState::Succeeded);
    assert_eq!(again.version(), Some(1));
    // A finished run has nothing to resume.
    let err = run::run(&store, &spec, &options, quiet())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already succeeded"), "{err}");
}

/// Specs and options the runner refuses before running anything, each with its message.
#[tokio::test]
async fn bad_specs_and_options_are_refused_with_the_task_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().to_str().unwrap()).await.unwrap();
    let good = spec(PIPELINE);
    type Edit = fn(&mut PipelineSpec, &mut RunOptions);
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "missing parameter",
            |_, _| {},
            "parameter 'data' has no default: pass --param data=VALUE",
        ),
        (
            "unknown parameter",
            |_, o| {
                o.params.insert("dta".into(), "x".into());
            },
            "--param dta: the pipeline has no parameter 'dta'",
        ),
        (
            "mistyped parameter",
            |_, o| {
                o.params.insert("data".into(), "x".into());
                o.params.insert("min_accuracy".into(), "high".into());
            },
            "--param min_accuracy=high: expected a number",
        ),
        (
            "component missing",
            |s, o| {
                o.params.insert("data".into(), "x".into());
                s.components.remove("comp-train");
            },
            "task 'train': componentRef 'comp-train' names no component",
        ),
        (
            "executor missing",
            |s, o| {
                o.params.insert("data".into(), "x".into());
                s.deployment_spec.executors.remove("exec-gate");
            },
            "task 'gate': executorLabel 'exec-gate' names no deploymentSpec executor",
        ),
        (
            "cycle",
            |s, o| {
                o.params.insert("data".into(), "x".into());
                let dag = s.root.dag.as_mut().unwrap();
                dag.tasks
                    .get_mut("ingest")
                    .unwrap()
                    .dependent_tasks
                    .push("deploy".into());
            },
            "depend on each other in a cycle",
        ),
        (
            "unknown dependency",
            |s, o| {
                o.params.insert("data".into(), "x".into());
                let dag = s.root.dag.as_mut().unwrap();
                dag.tasks
                    .get_mut("train")
                    .unwrap()
                    .dependent_tasks
                    .push("tune".into());
            },
            "task 'train': needs task 'tune', which the DAG does not have",
        ),
        (
            "condition the runner cannot evaluate",
            |s, o| {
                o.params.insert("data".into(), "x".into());
                let dag = s.root.dag.as_mut().unwrap();
                dag.tasks
                    .get_mut("register")
                    .unwrap()
                    .trigger_policy
                    .as_mut()
                    .unwrap()
                    .condition = "inputs.parameter_values['x'] > 1".into();
            },
            "task 'register': triggerPolicy.condition",
        ),
        (
            "bad run name",
            |_, o| {
                o.params.insert("data".into(), "x".into());
                o.run = Some("../etc".into());
            },
            "run name \"../etc\"",
        ),
        (
            "resume of a run that does not exist",
            |_, o| {
                o.resume = Some("nope".into());
            },
            "has no run 'nope'",
        ),
    ];
    let mut failures = Vec::new();
    for (name, edit, want) in cases {
        let (mut s, mut o) = (good.clone(), RunOptions::default());
        edit(&mut s, &mut o);
        match run::run(&store, &s, &o, quiet()).await {
            Ok(r) => failures.push(format!("{name}: ran ({:?})", r.state)),
            Err(e) if !e.to_string().contains(want) => {
                failures.push(format!("{name}: {e}\n    wanted: {want}"))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    // Nothing refused left a run behind.
    assert!(run::record::pipelines(&store).await.unwrap().is_empty());
}
