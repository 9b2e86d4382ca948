//! `litehouse batch` end to end: the README's commands, a run killed with SIGKILL midway and
//! run again (every line exactly once), status and list, and refused flags.

#![allow(clippy::unwrap_used)] // test helpers read trusted fixtures

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

mod common;
use common::litehouse;

fn run_ok(args: &[&str]) -> String {
    let out = litehouse().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "litehouse {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

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

#[test]
fn a_killed_run_resumes_with_every_line_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    // 20,000 MNIST-sized rows (784 pixel values each) in shards of 100, one instance per model
    // call: slow enough to kill
    // midway, on one thread.
    let pixels = std::fs::read("models/runtime/testdata/fetched/mnist10.bin").unwrap();
    let mut text = String::new();
    for i in 0..20_000 {
        let digit = &pixels[(i % 10) * 784..(i % 10 + 1) * 784];
        let values: Vec<f32> = digit.iter().map(|&p| f32::from(p) / 255.0).collect();
        text.push_str(&serde_json::json!({"id": i, "x": values}).to_string());
        text.push('\n');
    }
    let input = tmp.path().join("digits.jsonl");
    std::fs::write(&input, text).unwrap();
    let output = tmp.path().join("out");
    let args = [
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
        "8",
        "--threads",
        "1",
        "--quiet",
    ];
    let mut child = litehouse().args(args).spawn().unwrap();
    let started = Instant::now();
    let job_dir = loop {
        let found = std::fs::read_dir(&output)
            .ok()
            .and_then(|mut d| d.next())
            .map(|e| e.unwrap().path());
        if let Some(dir) = found {
            let committed = std::fs::read_dir(&dir)
                .map(|d| {
                    d.filter(|e| {
                        e.as_ref()
                            .unwrap()
                            .file_name()
                            .to_string_lossy()
                            .starts_with("prediction.results-")
                    })
                    .count()
                })
                .unwrap_or(0);
            if committed >= 3 {
                break dir;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no shard committed in 120 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let partial = answers(&job_dir);
    assert!(
        partial.len() < 20_000,
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
    assert_eq!(record["completionStats"]["successfulCount"], 20_000);
    let all = answers(&job_dir);
    assert_eq!(all.len(), 20_000, "no missing line");
    assert!(all.values().all(|&n| n == 1), "no duplicate line");
    assert_eq!(record["shardCount"], 200);

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
