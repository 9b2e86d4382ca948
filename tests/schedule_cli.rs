//! `litehouse schedule` through the binary: fire times across DST, run-now deduplicated by the
//! tick, a daemon killed with SIGKILL while holding a lease (another takes the tick over after
//! it expires and runs it once), SIGTERM's graceful stop, and bad schedule files.

#![allow(clippy::unwrap_used)] // test harness over data it writes itself

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::litehouse;

use common::KillOnDrop as Killed;

/// A schedule file with one schedule `t` over a one-step pipeline: the step waits until `go`
/// exists (if `wait`), then appends its tick's time to `log`.
fn setup(dir: &Path, cron: &str, wait: bool) -> std::path::PathBuf {
    let (log, go) = (dir.join("log"), dir.join("go"));
    // A step outlives a SIGKILLed daemon (nothing in-process can stop it), so like any
    // well-behaved job it gives up when its parent is gone.
    let script = if wait {
        format!(
            "while [ ! -f {} ]; do kill -0 $PPID 2>/dev/null || exit 1; sleep 0.1; done; echo $0 >> {}",
            go.display(),
            log.display()
        )
    } else {
        format!("echo $0 >> {}", log.display())
    };
    std::fs::write(
        dir.join("p.yaml"),
        format!(
            "name: tick\nparams:\n  stamp: {{ type: string }}\nsteps:\n  note:\n    uses: command\n    command: [sh, -c, \"{script}\", \"{{{{ inputs.stamp }}}}\"]\n    with: {{ stamp: \"{{{{ params.stamp }}}}\" }}\n"
        ),
    )
    .unwrap();
    let file = dir.join("s.yaml");
    std::fs::write(
        &file,
        format!(
            "schedules:\n  - id: t\n    cron: \"{cron}\"\n    timezone: Europe/London\n    pipeline: {}\n    params: {{ stamp: \"{{{{ scheduled_time | utc }}}}\" }}\n    missed: run-once\n",
            dir.join("p.yaml").display()
        ),
    )
    .unwrap();
    file
}

fn schedule(dir: &Path, file: &Path, args: &[&str]) -> (bool, String, String) {
    let out = litehouse()
        .arg("schedule")
        .args(args)
        .arg("--schedules")
        .arg(file)
        .arg("--store")
        .arg(dir.join("store"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ticks(dir: &Path) -> Vec<Value> {
    let d = dir.join("store/schedules/t/ticks");
    let mut names: Vec<_> = std::fs::read_dir(&d)
        .map(|r| r.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    names.sort();
    names
        .iter()
        .filter_map(|p| serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok())
        .collect()
}

#[test]
fn next_prints_fire_times_across_the_change_in_zone_and_utc() {
    let dir = tempfile::tempdir().unwrap();
    let file = setup(dir.path(), "30 1 * * *", false);
    let (ok, out, err) = schedule(
        dir.path(),
        &file,
        &[
            "next",
            "t",
            "--from",
            "2026-03-28T12:00:00Z",
            "--count",
            "2",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    // 01:30 does not exist on 29 March in London: once, at the end of the gap (02:00 BST).
    assert_eq!(v[0]["utc"], "2026-03-29T01:00:00Z");
    assert_eq!(v[0]["local"], "2026-03-29T02:00:00+01:00");
    assert_eq!(v[1]["utc"], "2026-03-30T00:30:00Z");
}

#[test]
fn run_now_runs_a_tick_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = setup(dir.path(), "0 3 * * *", false);
    let at = "2026-12-04T03:00:00Z";
    let (ok, out, err) = schedule(dir.path(), &file, &["run-now", "t", "--at", at, "--json"]);
    assert!(ok, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["state"], "succeeded", "{r:#}");
    assert_eq!(r["params"]["stamp"], at);
    let (ok, out, _) = schedule(dir.path(), &file, &["run-now", "t", "--at", at]);
    assert!(ok);
    assert!(out.contains("already taken"), "{out}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("log")).unwrap(),
        format!("{at}\n")
    );
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn daemon(dir: &Path, file: &Path, extra: &[&str]) -> Killed {
    Killed(
        litehouse()
            .args(["schedule", "daemon", "--lease", "3"])
            .args(extra)
            .arg("--schedules")
            .arg(file)
            .arg("--store")
            .arg(dir.join("store"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[test]
fn a_daemon_killed_holding_a_lease_has_its_tick_taken_over_and_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = setup(dir.path(), "*/2 * * * * *", true);
    let mut first = daemon(dir.path(), &file, &[]);
    wait_until("a running tick", || {
        ticks(dir.path()).iter().any(|t| t["state"] == "running")
    });
    first.0.kill().unwrap(); // SIGKILL with the lease held
    first.0.wait().unwrap();
    let held = ticks(dir.path())
        .into_iter()
        .find(|t| t["state"] == "running")
        .unwrap();
    let _second = daemon(dir.path(), &file, &[]);
    wait_until("the takeover claim", || {
        ticks(dir.path())
            .iter()
            .any(|t| t["tick"] == held["tick"] && t["attempt"] == 2)
    });
    std::fs::write(dir.path().join("go"), "").unwrap();
    wait_until("the takeover", || {
        ticks(dir.path())
            .iter()
            .any(|t| t["tick"] == held["tick"] && t["state"] == "succeeded")
    });
    let done = ticks(dir.path())
        .into_iter()
        .find(|t| t["tick"] == held["tick"])
        .unwrap();
    assert_eq!(done["attempt"], 2, "{done:#}");
    assert_ne!(done["holder"], held["holder"]);
    // Each tick ran at most once, the taken-over one included.
    std::thread::sleep(Duration::from_secs(3));
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    let mut lines: Vec<&str> = log.lines().collect();
    let n = lines.len();
    lines.sort();
    lines.dedup();
    assert_eq!(
        lines.len(),
        n,
        "a tick ran twice:\n{log}\n{:#?}",
        ticks(dir.path())
    );
}

#[test]
fn sigterm_stops_the_daemon_and_records_a_running_tick_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let file = setup(dir.path(), "* * * * * *", true);
    let mut d = daemon(dir.path(), &file, &["--grace", "1"]);
    wait_until("a running tick", || {
        ticks(dir.path()).iter().any(|t| t["state"] == "running")
    });
    let status = std::process::Command::new("kill")
        .args(["-TERM", &d.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(s) = d.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the daemon did not stop");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "{exit}");
    let all = ticks(dir.path());
    assert!(all.iter().all(|t| t["state"] != "running"), "{all:#?}");
    assert!(
        all.iter()
            .any(|t| t["state"] == "interrupted"
                && t["reason"].as_str().unwrap().contains("shut down")),
        "{all:#?}"
    );
}

#[test]
fn bad_schedule_files_and_arguments_are_refused_precisely() {
    let dir = tempfile::tempdir().unwrap();
    let good = setup(dir.path(), "0 3 * * *", false);
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "schedules:\n  - id: x\n    cron: \"0 3 * * *\"\n    timezone: Mars/Olympus\n    pipeline: p.yaml\n").unwrap();
    let cases: Vec<(&str, &Path, Vec<&str>, &str)> = vec![
        (
            "unknown zone",
            &bad,
            vec!["list"],
            "schedule 'x', timezone: unknown zone \"Mars/Olympus\"",
        ),
        (
            "missing file",
            Path::new("nope.yaml"),
            vec!["list"],
            "nope.yaml: cannot read",
        ),
        (
            "unknown schedule",
            &good,
            vec!["show", "u"],
            "no schedule 'u' (schedules: t)",
        ),
        (
            "bad --from",
            &good,
            vec!["next", "t", "--from", "tomorrow"],
            "--from \"tomorrow\": expected an RFC 3339 time",
        ),
    ];
    let mut failures = Vec::new();
    for (name, file, args, want) in cases {
        let (ok, _, err) = schedule(dir.path(), file, &args);
        if ok {
            failures.push(format!("{name}: accepted"));
        } else if !err.contains(want) || err.contains("panicked") {
            failures.push(format!("{name}: {err}    wanted: {want}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn the_committed_eventbridge_template_is_what_export_writes_and_cfn_lint_passes_it() {
    let out = litehouse()
        .args([
            "schedule",
            "export",
            "--to",
            "eventbridge",
            "--schedules",
            "scheduler/examples/schedules.yaml",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = std::fs::read_to_string("infra/scheduler/schedules.template.json").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        committed.trim_end(),
        "infra/scheduler/schedules.template.json is stale: regenerate it with litehouse schedule export"
    );
    let v: Value = serde_json::from_str(&committed).unwrap();
    let mnist = &v["Resources"]["ScheduleRetrainMnist"]["Properties"];
    assert_eq!(mnist["ScheduleExpression"], "cron(0 3 * * ? *)");
    assert_eq!(mnist["ScheduleExpressionTimezone"], "Europe/London");
    let input: Value = serde_json::from_str(mnist["Target"]["Input"].as_str().unwrap()).unwrap();
    assert_eq!(input["scheduledTime"], "<aws.scheduler.scheduled-time>");
    match std::env::var("LITEHOUSE_CFN_LINT") {
        Ok(cfn_lint) => {
            let lint = std::process::Command::new(cfn_lint)
                .arg("infra/scheduler/schedules.template.json")
                .output()
                .unwrap();
            assert!(
                lint.status.success(),
                "{}",
                String::from_utf8_lossy(&lint.stdout)
            );
        }
        Err(_) => {
            assert!(
                std::env::var("LITEHOUSE_REQUIRE_CLIENTS").as_deref() != Ok("1"),
                "LITEHOUSE_REQUIRE_CLIENTS=1 but LITEHOUSE_CFN_LINT is unset"
            );
            eprintln!("cfn-lint skipped: set LITEHOUSE_CFN_LINT (infra/scripts/cfn-lint-venv.sh)");
        }
    }
}

#[test]
fn schedules_eventbridge_cannot_express_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (cron, want) in [
        ("*/10 * * * * *", "fires at most once a minute"),
        ("0 3 1 * MON", "restricts both day fields"),
        ("0 3 * * 5-7", "ends on 7 (Sunday)"),
    ] {
        let file = setup(dir.path(), cron, false);
        let (ok, _, err) = schedule(dir.path(), &file, &["export", "--to", "eventbridge"]);
        assert!(!ok && err.contains(want), "{cron}: {err}");
    }
    let file = setup(dir.path(), "30 2 * * 1-5", false);
    let (ok, out, err) = schedule(dir.path(), &file, &["export"]);
    assert!(ok, "{err}");
    assert!(out.contains("cron(30 2 ? * MON-FRI *)"), "{out}");
}
