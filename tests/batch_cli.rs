//! `litehouse batch` end to end: the README's commands, a run killed with SIGKILL midway and
//! run again (every line exactly once), status and list, and refused flags.

#![allow(clippy::unwrap_used)] // test helpers read trusted fixtures

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;
use common::{litehouse, run_ok};

/// Every output line of a job directory, by the instance it answers.
fn answers(dir: &Path) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if !name.starts_with("prediction.results-") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(v.get("prediction").is_some(), "{line}");
            *seen.entry(v["key"].to_string()).or_insert(0) += 1;
        }
    }
    seen
}

/// A job over `rows` MNIST-sized rows (784 pixel values each) in shards of 100, killed with
/// SIGKILL as soon as one shard is committed; `None` when the run ended before that could be
/// seen (a fast or busy machine), so the caller tries a bigger input.
fn start_and_kill(rows: usize) -> Option<(tempfile::TempDir, PathBuf, Vec<String>)> {
    let tmp = tempfile::tempdir().unwrap();
    let pixels = std::fs::read("models/runtime/testdata/fetched/mnist10.bin").unwrap();
    let mut text = String::new();
    for i in 0..rows {
        let digit = &pixels[(i % 10) * 784..(i % 10 + 1) * 784];
        let values: Vec<f32> = digit.iter().map(|&p| f32::from(p) / 255.0).collect();
        text.push_str(&serde_json::json!({"id": i, "x": values}).to_string());
        text.push('\n');
    }
    let input = tmp.path().join("digits.jsonl");
    std::fs::write(&input, text).unwrap();
    let output = tmp.path().join("out");
    let args: Vec<String> = [
        "batch",
        "run",
        "--model",
        "models/catalog/mnist.json",
        "--input",
        input.to_str().unwrap(),
        "--format",
        "jsonl",
        "--output",
        output.to_str().unwrap(),
        "--key-field",
        "id",
        "--included-fields",
        "x",
        "--instance-type",
        "array",
        "--shard-size",
        "100",
        "--batch-size",
        "1",
        "--threads",
        "1",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut child = litehouse().args(&args).spawn().unwrap();
    let started = Instant::now();
    let job_dir = loop {
        // The output directory also holds the store's `.locks`; read_dir's order is the
        // file system's, so look for the job directory by name.
        let found = std::fs::read_dir(&output).ok().and_then(|d| {
            d.map(|e| e.unwrap().path()).find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("prediction-"))
            })
        });
        if let Some(dir) = found.filter(|d| !answers(d).is_empty()) {
            break dir;
        }
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no shard committed in 120 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    // A run that finished between the last look and the kill ended on its own.
    if status.success() {
        return None;
    }
    Some((tmp, job_dir, args))
}

#[test]
fn a_killed_run_resumes_with_every_line_exactly_once() {
    let (rows, (_tmp, job_dir, args)) = [20_000, 80_000]
        .into_iter()
        .find_map(|rows| start_and_kill(rows).map(|k| (rows, k)))
        .expect("every run ended before it could be killed");
    let output = job_dir.parent().unwrap().to_path_buf();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let partial = answers(&job_dir);
    assert!(
        partial.len() < rows,
        "killed before the end ({} lines)",
        partial.len()
    );
    let status: serde_json::Value = serde_json::from_str(&run_ok(&[
        "batch",
        "status",
        job_dir.to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    assert_eq!(status["state"], "JOB_STATE_RUNNING");

    let record: serde_json::Value =
        serde_json::from_str(&run_ok(&[&args[..], &["--json"]].concat())).unwrap();
    assert_eq!(record["state"], "JOB_STATE_SUCCEEDED");
    assert_eq!(
        record["outputDirectory"],
        job_dir.to_str().unwrap(),
        "the same job resumed"
    );
    assert_eq!(record["completionStats"]["successfulCount"], rows);
    let all = answers(&job_dir);
    assert_eq!(all.len(), rows, "no missing line");
    assert!(all.values().all(|&n| n == 1), "no duplicate line");
    assert_eq!(record["shardCount"], rows / 100);

    let listed: serde_json::Value = serde_json::from_str(&run_ok(&[
        "batch",
        "list",
        "--output",
        output.to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

#[test]
fn refused_flags_name_the_problem() {
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "nothing given",
            &["batch", "run"],
            "missing --model, --input, --format, --output",
        ),
        (
            "unknown format",
            &["batch", "run", "--format", "parquet"],
            "parquet",
        ),
        (
            "both field lists",
            &[
                "batch",
                "run",
                "--model",
                "m.tflite",
                "--input",
                "i",
                "--format",
                "jsonl",
                "--output",
                "o",
                "--included-fields",
                "a",
                "--excluded-fields",
                "b",
            ],
            "cannot both be set",
        ),
        (
            "model not found",
            &[
                "batch",
                "run",
                "--model",
                "nope.tflite",
                "--input",
                "i",
                "--format",
                "jsonl",
                "--output",
                "o",
            ],
            "model 'nope.tflite' is not a file",
        ),
        (
            "input not found",
            &[
                "batch",
                "run",
                "--model",
                "models/catalog/linnerud.json",
                "--input",
                "no/such/dir",
                "--format",
                "jsonl",
                "--output",
                "target/batch-refused",
            ],
            "no/such/dir",
        ),
        (
            "status of no job",
            &["batch", "status", "target"],
            "holds no batch job",
        ),
    ];
    for (name, args, needle) in cases {
        let out = litehouse().args(*args).output().unwrap();
        assert!(!out.status.success(), "{name}: should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{name}: {err}");
    }
}
