//! `litehouse train` end to end: a trained image classifier served with no hand-written config,
//! a regressor registered with its lineage, and refused flags and data that leave nothing behind.

#![allow(clippy::unwrap_used)] // test helpers read trusted fixtures

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

mod common;
use common::{litehouse, run_ok};

/// Class folders of 8x8 grayscale PNGs: a bar across the top, or down the left side.
fn bars(dir: &Path, per_class: usize) -> PathBuf {
    let root = dir.join("bars");
    let mut rng = fastrand::Rng::with_seed(9);
    for label in ["horizontal", "vertical"] {
        std::fs::create_dir_all(root.join(label)).unwrap();
        for i in 0..per_class {
            let img = bar(label == "horizontal", &mut rng);
            img.save(root.join(label).join(format!("{i}.png"))).unwrap();
        }
    }
    root
}

fn bar(horizontal: bool, rng: &mut fastrand::Rng) -> image::GrayImage {
    image::GrayImage::from_fn(8, 8, |x, y| {
        let on = if horizontal { y < 2 } else { x < 2 };
        image::Luma([if on { 200 + rng.u8(..55) } else { rng.u8(..40) }])
    })
}

/// A CSV of three features and two targets that depend on them.
fn table(dir: &Path) -> PathBuf {
    let mut rng = fastrand::Rng::with_seed(5);
    let mut text = String::from("a,b,c,y,z\n");
    for _ in 0..400 {
        let (a, b, c) = (rng.f32() * 10.0, rng.f32() * 200.0, rng.f32());
        text += &format!("{a},{b},{c},{},{}\n", 2.0 * a + 0.1 * b, 50.0 - 3.0 * c);
    }
    let path = dir.join("table.csv");
    std::fs::write(&path, text).unwrap();
    path
}

fn post(addr: &str, path: &str, content_type: &str, body: &[u8]) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[cfg(unix)]
#[test]
fn a_trained_image_classifier_serves_png_uploads_with_its_own_labels() {
    let dir = tempfile::tempdir().unwrap();
    let data = bars(dir.path(), 50);
    let out = dir.path().join("model");
    let report = run_ok(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--arch",
        "cnn",
        "--filters",
        "4",
        "--hidden",
        "8",
        "--epochs",
        "15",
        "--learning-rate",
        "0.01",
        "--patience",
        "4",
        "--out",
        out.to_str().unwrap(),
        "--json",
        "--quiet",
    ]);
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["task"], "classify");
    assert_eq!(report["quantize"], "int8");
    assert!(
        report["test"]["accuracy"].as_f64().unwrap() > 0.9,
        "{report}"
    );

    let (child, addr) = common::spawn_serve(out.to_str().unwrap());
    // Killed however the test ends, so a failed assertion leaves no server behind.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Kill(child);
    let mut rng = fastrand::Rng::with_seed(77);
    for (horizontal, label) in [(true, "horizontal"), (false, "vertical")] {
        let mut png = std::io::Cursor::new(Vec::new());
        bar(horizontal, &mut rng)
            .write_to(&mut png, image::ImageFormat::Png)
            .unwrap();
        let response = post(
            &addr,
            "/v1/endpoints/model:rawPredict",
            "image/png",
            png.get_ref(),
        );
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        let body = response.split("\r\n\r\n").nth(1).unwrap();
        let answer: serde_json::Value = serde_json::from_str(body).unwrap();
        let top = &answer["predictions"][0];
        assert_eq!(top["label"], label, "{answer}");
    }
}

#[test]
fn a_registered_regressor_carries_its_metrics_and_lineage() {
    let dir = tempfile::tempdir().unwrap();
    let data = table(dir.path());
    let out = dir.path().join("model");
    let store = dir.path().join("store");
    let report = run_ok(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--task",
        "regress",
        "--label",
        "y,z",
        "--hidden",
        "16",
        "--dropout",
        "0",
        "--epochs",
        "20",
        "--learning-rate",
        "0.01",
        "--folds",
        "3",
        "--out",
        out.to_str().unwrap(),
        "--register",
        "table",
        "--store",
        store.to_str().unwrap(),
        "--alias",
        "champion",
        "--json",
        "--quiet",
    ]);
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["registered"]["version"], 1);
    let r2 = report["test"]["r2"].as_array().unwrap();
    assert!(r2.iter().all(|r| r.as_f64().unwrap() > 0.9), "{report}");
    // The targets depend on the features: the feature-blind baseline scores near zero, and the
    // three cross-validated models score as the one written does.
    let baseline = report["baseline_test"]["r2"].as_array().unwrap();
    assert!(
        baseline.iter().all(|r| r.as_f64().unwrap() < 0.1),
        "{report}"
    );
    let cv = &report["cross_validation"];
    assert_eq!(cv["folds"], 3, "{report}");
    assert_eq!(
        cv["model"]["examples"], 400,
        "every row is held out once: {report}"
    );
    assert_eq!(cv["beats_baseline"], true, "{report}");
    let cv_r2 = cv["model"]["r2"].as_array().unwrap();
    assert!(cv_r2.iter().all(|r| r.as_f64().unwrap() > 0.9), "{report}");
    let manifest = run_ok(&[
        "models",
        "show",
        "table",
        "champion",
        "--store",
        store.to_str().unwrap(),
        "--json",
    ]);
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(manifest["lineage"]["dataHash"], report["data"]["sha256"]);
    assert_eq!(manifest["lineage"]["params"]["learning_rate"], 0.01);
    assert_eq!(manifest["lineage"]["params"]["seed"], 42);
    assert_eq!(manifest["metrics"]["r2_y"], report["test"]["r2"][0]);
    assert_eq!(manifest["metrics"]["cv_r2_y"], cv["model"]["r2"][0]);
    assert_eq!(manifest["sha256"], report["model_sha256"]);
}

#[test]
fn refused_runs_exit_nonzero_name_the_problem_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = table(dir.path());
    let data = data.to_str().unwrap();
    let bad_search = dir.path().join("search.toml");
    std::fs::write(&bad_search, "[space]\nlearning_rates = [0.1]\n").unwrap();
    let ragged = dir.path().join("ragged.csv");
    std::fs::write(&ragged, "a,y\n1,2\n3\n").unwrap();
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "unknown arch",
            vec!["--data", data, "--arch", "rnn"],
            "unknown --arch",
        ),
        (
            "unknown task",
            vec!["--data", data, "--task", "rank"],
            "unknown task",
        ),
        (
            "missing data",
            vec!["--data", "/nonexistent/x.csv", "--label", "y"],
            "no such file",
        ),
        (
            "unknown label",
            vec!["--data", data, "--task", "regress", "--label", "w"],
            "w",
        ),
        (
            "ragged csv",
            vec![
                "--data",
                ragged.to_str().unwrap(),
                "--task",
                "regress",
                "--label",
                "y",
            ],
            "line 3",
        ),
        (
            "cnn on a table",
            vec!["--data", data, "--label", "y", "--arch", "cnn"],
            "image examples",
        ),
        (
            "zero epochs",
            vec!["--data", data, "--label", "y", "--epochs", "0"],
            "epochs",
        ),
        (
            "trials without search",
            vec!["--data", data, "--label", "y", "--trials", "3"],
            "--search",
        ),
        (
            "unknown search key",
            vec![
                "--data",
                data,
                "--label",
                "y",
                "--search",
                bad_search.to_str().unwrap(),
            ],
            "learning_rates",
        ),
        (
            "bad io",
            vec!["--data", data, "--label", "y", "--io", "int4"],
            "int4",
        ),
        (
            "one fold",
            vec![
                "--data", data, "--task", "regress", "--label", "y", "--folds", "1",
            ],
            "at least 2 folds",
        ),
        (
            "negative weight decay",
            vec![
                "--data",
                data,
                "--task",
                "regress",
                "--label",
                "y",
                "--weight-decay=-0.1",
            ],
            "weight decay",
        ),
    ];
    for (name, args, expected) in cases {
        let out = dir.path().join(name.replace(' ', "-"));
        let mut all = vec!["train", "--out", out.to_str().unwrap(), "--quiet"];
        all.extend(args);
        let result = litehouse().args(&all).output().unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success(), "{name}: succeeded");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        let written = std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0);
        assert_eq!(written, 0, "{name}: left files in {}", out.display());
    }
}
