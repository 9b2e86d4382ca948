//! Batch jobs end to end through the library, on a local directory and on S3 (moto): every
//! format, instanceConfig, bad lines of every kind, gzip, and resume without duplicates.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

use litehouse_predictor::batch::{
    self, model_ref, Buckets, Format, InstanceType, JobSpec, JobState,
};
use litehouse_predictor::{ImageLimits, ServedModel};
use litehouse_store::{Condition, Store};
use serde_json::{json, Value as Json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn catalog(name: &str) -> String {
    root()
        .join("models/catalog")
        .join(name)
        .display()
        .to_string()
}

fn spec(model: &str, inputs: Vec<String>, format: Format, output: &str) -> JobSpec {
    JobSpec {
        model: model.into(),
        store: None,
        inputs,
        format,
        instance_config: Default::default(),
        output: output.into(),
        shard_size: 3,
        batch_size: 2,
        threads: 2,
    }
}

/// Where inputs go and outputs are read: a temp directory, or a fresh S3 prefix.
struct Place {
    uri: String,
    store: Store,
    _dir: Option<tempfile::TempDir>,
}

async fn places(test: &str) -> Vec<Place> {
    let dir = tempfile::tempdir().unwrap();
    let uri = dir.path().display().to_string();
    let mut out = vec![Place {
        store: Store::open(&uri).await.unwrap(),
        uri,
        _dir: Some(dir),
    }];
    if let Some(s3) = litehouse_store::testing::s3_store(test).await {
        out.push(Place {
            uri: s3.uri().to_string(),
            store: s3,
            _dir: None,
        });
    }
    out
}

impl Place {
    async fn put(&self, key: &str, bytes: &[u8]) -> String {
        self.store
            .put(key, bytes.to_vec(), Condition::Always)
            .await
            .unwrap();
        format!("{}/{key}", self.uri)
    }
}

/// Runs a job to the end; returns its record and every output line in shard order.
async fn run(spec: &JobSpec) -> (batch::JobRecord, Vec<Json>) {
    let (served, used) = model_ref::load(&spec.model, spec.store.as_deref())
        .await
        .unwrap();
    let buckets = Buckets::default();
    let mut job = batch::create_or_resume(spec, &used, &buckets)
        .await
        .unwrap();
    let pending = job.pending().await.unwrap();
    let (j, b, handle) = (
        job.clone(),
        buckets.clone(),
        tokio::runtime::Handle::current(),
    );
    tokio::task::spawn_blocking(move || {
        let lines = AtomicU64::new(0);
        let workers = batch::Workers {
            served: &served,
            buckets: &b,
            limits: ImageLimits::default(),
            lines_done: &lines,
            handle: &handle,
        };
        j.run_pending(&workers, &pending, 2)
    })
    .await
    .unwrap()
    .unwrap();
    let record = job.finalize(None).await.unwrap();
    (record.clone(), lines(&record).await)
}

async fn lines(record: &batch::JobRecord) -> Vec<Json> {
    let dir = Store::open(&record.output_directory).await.unwrap();
    let mut out = Vec::new();
    for k in 0..record.shard_count {
        let o = dir
            .get(&batch::results_key(k, record.shard_count))
            .await
            .unwrap();
        for line in String::from_utf8(o.bytes).unwrap().lines() {
            out.push(serde_json::from_str(line).unwrap());
        }
    }
    out
}

fn served(config: &str) -> ServedModel {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async { model_ref::load(&catalog(config), None).await.unwrap().0 })
}

/// What `:predict` answers for these instances (the same function the HTTP route runs).
fn online(served: &ServedModel, instances: Vec<Json>) -> Vec<Json> {
    litehouse_predictor::predict::predict(served, instances, &ImageLimits::default()).unwrap()
}

const LINNERUD: [[i64; 3]; 5] = [
    [5, 162, 60],
    [2, 110, 60],
    [12, 101, 101],
    [12, 105, 37],
    [13, 155, 58],
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonl_and_csv_on_linnerud_match_online_predictions() {
    let model = tokio::task::spawn_blocking(|| served("linnerud.json"))
        .await
        .unwrap();
    let expected = online(&model, LINNERUD.iter().map(|r| json!(r)).collect());
    for place in places("batch-tabular").await {
        let jsonl: String = LINNERUD.iter().map(|r| format!("{}\n", json!(r))).collect();
        let input = place.put("in/rows.jsonl", jsonl.as_bytes()).await;
        let (record, out) = run(&spec(
            &catalog("linnerud.json"),
            vec![input],
            Format::Jsonl,
            &format!("{}/out-jsonl", place.uri),
        ))
        .await;
        assert_eq!(record.state, JobState::JobStateSucceeded);
        assert_eq!(record.shard_count, 2, "5 lines in shards of 3");
        assert!(
            record.name.starts_with("prediction-Linnerud_physiological"),
            "{}",
            record.name
        );
        assert_eq!(out.len(), 5);
        for (i, line) in out.iter().enumerate() {
            assert_eq!(line["instance"], json!(LINNERUD[i]));
            assert_eq!(line["prediction"], expected[i], "line {i}");
        }

        let csv: String = std::iter::once("id,chins,situps,jumps\n".to_string())
            .chain(
                LINNERUD
                    .iter()
                    .enumerate()
                    .map(|(i, r)| format!("r{i},{},{},{}\n", r[0], r[1], r[2])),
            )
            .collect();
        let input = place.put("in/rows.csv", csv.as_bytes()).await;
        let mut s = spec(
            &catalog("linnerud.json"),
            vec![input],
            Format::Csv,
            &format!("{}/out-csv", place.uri),
        );
        s.instance_config.key_field = Some("id".into());
        let (record, out) = run(&s).await;
        assert_eq!(record.completion_stats.successful_count, 5);
        for (i, line) in out.iter().enumerate() {
            assert_eq!(line["key"], json!(format!("r{i}")), "keyField round trip");
            assert!(line.get("instance").is_none());
            assert_eq!(line["prediction"], expected[i]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn included_and_excluded_fields_shape_object_lines() {
    let model = tokio::task::spawn_blocking(|| served("linnerud.json"))
        .await
        .unwrap();
    let expected = online(&model, vec![json!([5, 162, 60])]);
    for place in places("batch-fields").await {
        let line = r#"{"id": 7, "note": "x", "chins": 5, "situps": 162, "jumps": 60}"#;
        let input = place
            .put("in/obj.jsonl", format!("{line}\n").as_bytes())
            .await;
        let mut inc = spec(
            &catalog("linnerud.json"),
            vec![input.clone()],
            Format::Jsonl,
            &format!("{}/inc", place.uri),
        );
        inc.instance_config.instance_type = Some(InstanceType::Array);
        inc.instance_config.included_fields = vec!["chins".into(), "situps".into(), "jumps".into()];
        let (_, out) = run(&inc).await;
        assert_eq!(out[0]["instance"], json!([5, 162, 60]));
        assert_eq!(out[0]["prediction"], expected[0]);

        let mut exc = spec(
            &catalog("linnerud.json"),
            vec![input],
            Format::Jsonl,
            &format!("{}/exc", place.uri),
        );
        exc.instance_config.instance_type = Some(InstanceType::Array);
        exc.instance_config.key_field = Some("id".into());
        exc.instance_config.excluded_fields = vec!["note".into()];
        let (_, out) = run(&exc).await;
        assert_eq!(out[0]["key"], json!(7));
        assert_eq!(
            out[0]["prediction"], expected[0],
            "fields kept in the line's order"
        );
    }
}

#[path = "../../../tests/support/digits.rs"]
mod digits;

/// The 10 real MNIST test digits (0..9) as PNG files.
fn digit_pngs() -> Vec<Vec<u8>> {
    digits::digit_pngs(&root())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_list_of_png_digits_is_classified() {
    for place in places("batch-images").await {
        let mut list = String::new();
        for (i, png) in digit_pngs().iter().enumerate() {
            place.put(&format!("digits/d{i}.png"), png).await;
            list.push_str(&format!("d{i}.png\n")); // relative to the list's own location
        }
        let input = place.put("digits/list.txt", list.as_bytes()).await;
        let (record, out) = run(&spec(
            &catalog("mnist.json"),
            vec![input],
            Format::FileList,
            &format!("{}/out", place.uri),
        ))
        .await;
        assert_eq!(record.completion_stats.successful_count, 10, "{out:?}");
        for (i, line) in out.iter().enumerate() {
            assert_eq!(line["prediction"]["class"], i, "digit {i}");
            assert!(line["instance"]["b64"].is_string());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lines_become_error_lines_and_the_job_goes_on() {
    for place in places("batch-bad").await {
        // Each case: (name, input file, format, line, expected message part). One job per
        // format holds a good line first so that a bad one provably costs only itself.
        let cases: Vec<(&str, Format, &str, &str)> = vec![
            ("malformed json", Format::Jsonl, "[5, 162", "malformed JSON"),
            (
                "wrong shape",
                Format::Jsonl,
                "[5, 162]",
                "expects shape [3] (3 values), got shape [2]",
            ),
            ("string values", Format::Jsonl, r#"["a", "b", "c"]"#, "a"),
            (
                "nan in csv",
                Format::Csv,
                "NaN,162,60",
                "is NaN, not a finite number",
            ),
            (
                "short csv row",
                Format::Csv,
                "5,162",
                "2 values but the header names 3",
            ),
            (
                "missing image file",
                Format::FileList,
                "missing.png",
                "missing.png",
            ),
            (
                "not an image",
                Format::FileList,
                "notes.txt",
                "not a PNG or JPEG",
            ),
        ];
        place.put("bad/notes.txt", b"hello").await;
        place.put("bad/ok.png", &digit_pngs()[3]).await;
        for (name, format, bad, needle) in cases {
            let (model, good, header) = match format {
                Format::Jsonl => ("linnerud.json", "[5, 162, 60]", ""),
                Format::Csv => ("linnerud.json", "5,162,60", "a,b,c\n"),
                Format::FileList => ("mnist.json", "ok.png", ""),
            };
            let text = format!("{header}{good}\n{bad}\n{good}\n");
            let key = format!("bad/{}.txt", name.replace(' ', "-"));
            let input = place.put(&key, text.as_bytes()).await;
            let output = format!("{}/out-{}", place.uri, name.replace(' ', "-"));
            let (record, out) =
                run(&spec(&catalog(model), vec![input.clone()], format, &output)).await;
            assert_eq!(record.state, JobState::JobStateSucceeded, "{name}");
            assert_eq!(
                record.completion_stats.successful_count, 2,
                "{name}: {out:?}"
            );
            assert_eq!(record.completion_stats.failed_count, 1, "{name}");
            assert_eq!(out.len(), 3, "{name}: one output line per input line");
            let err = &out[1]["error"];
            assert_eq!(err["status"], "INVALID_ARGUMENT", "{name}: {err}");
            let message = err["message"].as_str().unwrap();
            let line_no = if format == Format::Csv { 3 } else { 2 };
            assert!(
                message.contains(&format!("line {line_no}")),
                "{name}: {message}"
            );
            assert!(message.contains(needle), "{name}: {message}");
            assert!(
                out[0].get("prediction").is_some() && out[2].get("prediction").is_some(),
                "{name}"
            );
            let stats = Store::open(&record.output_directory)
                .await
                .unwrap()
                .get(batch::ERRORS_STATS_KEY)
                .await
                .unwrap();
            let stats: Json = serde_json::from_slice(&stats.bytes).unwrap();
            assert_eq!(stats["errorStatus"], "INVALID_ARGUMENT", "{name}");
            assert_eq!(stats["count"], 1, "{name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_inputs_are_read_and_a_rerun_commits_nothing_twice() {
    for place in places("batch-gzip").await {
        let rows: String = (0..20)
            .map(|i| format!("{}\n", json!([i, 100 + i, 50])))
            .collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(rows.as_bytes()).unwrap();
        let input = place.put("gz/rows.jsonl.gz", &gz.finish().unwrap()).await;
        let s = spec(
            &catalog("linnerud.json"),
            vec![input],
            Format::Jsonl,
            &format!("{}/out", place.uri),
        );
        let (first, out) = run(&s).await;
        assert_eq!(out.len(), 20);
        assert_eq!(first.shard_count, 7);
        // Lose two shards' results, as a run killed midway would never have written them.
        let dir = Store::open(&first.output_directory).await.unwrap();
        for k in [2, 5] {
            dir.delete(&batch::results_key(k, 7)).await.unwrap();
        }
        let (second, again) = run(&s).await;
        assert_eq!(second.name, first.name, "same spec, same job");
        assert_eq!(again, out, "every line exactly once, in the same place");
        assert_eq!(second.completion_stats.successful_count, 20);
        assert_eq!(batch::list_jobs(&s.output).await.unwrap().len(), 1);
    }
}
