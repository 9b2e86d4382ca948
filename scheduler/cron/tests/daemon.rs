//! The daemon against a real store (a directory, and moto's S3 under `make test`): per-second
//! ticks with per-tick parameters, three daemons running each tick once, the overlap policies,
//! the missed-run policies after downtime, and a dead holder's tick taken over.

#![allow(clippy::unwrap_used)] // test harness over data it writes itself

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use litehouse_cron::daemon::{self, DaemonOptions};
use litehouse_cron::runner::{self, Leasing};
use litehouse_cron::ticks::{self, Claim, TickRecord, TickState};
use litehouse_cron::{schedule, Schedule};
use litehouse_store::Store;

/// A pipeline of one program: waits `pause` seconds, then appends its tick's stamp to `log`.
fn pipeline(dir: &Path, log: &Path) -> PathBuf {
    let path = dir.join("tick.yaml");
    std::fs::write(
        &path,
        format!(
            r#"
name: tick
params:
  stamp: {{ type: string }}
  pause: {{ type: string, default: "0" }}
steps:
  note:
    uses: command
    command: [sh, -c, "sleep $1 && echo $0 >> {}", "{{{{ inputs.stamp }}}}", "{{{{ inputs.pause }}}}"]
    with: {{ stamp: "{{{{ params.stamp }}}}", pause: "{{{{ params.pause }}}}" }}
"#,
            log.display()
        ),
    )
    .unwrap();
    path
}

fn schedules(dir: &Path, body: &str) -> Vec<Schedule> {
    let log = dir.join("log");
    let p = pipeline(dir, &log);
    let text = format!(
        "schedules:\n  - id: t\n    pipeline: {}\n    params: {{ stamp: \"{{{{ scheduled_time | utc }}}}\" }}\n{body}",
        p.display()
    );
    schedule::parse(&text, "s.yaml", dir, false).unwrap()
}

fn logged(dir: &Path) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for line in std::fs::read_to_string(dir.join("log"))
        .unwrap_or_default()
        .lines()
    {
        *seen.entry(line.to_string()).or_insert(0) += 1;
    }
    seen
}

fn options(lease: i64) -> DaemonOptions {
    DaemonOptions {
        leasing: Leasing::new(lease),
        grace: StdDuration::from_secs(10),
    }
}

async fn daemon_for(store: &Store, s: Vec<Schedule>, o: DaemonOptions, secs: u64) {
    daemon::run(
        store.clone(),
        s,
        o,
        |_| {},
        tokio::time::sleep(StdDuration::from_secs(secs)),
    )
    .await
    .unwrap();
}

async fn local(dir: &Path) -> Store {
    Store::open(dir.join("store").to_str().unwrap())
        .await
        .unwrap()
}

fn by_state(h: &[TickRecord]) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for r in h {
        *m.entry(r.state.name()).or_insert(0) += 1;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_per_second_schedule_runs_each_tick_with_its_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path()).await;
    let s = schedules(dir.path(), "    cron: \"* * * * * *\"\n");
    daemon_for(&store, s, options(5), 5).await;
    let h = ticks::history(&store, "t", None).await.unwrap();
    assert!(h.len() >= 3, "{h:#?}");
    let seen = logged(dir.path());
    for r in &h {
        assert_eq!(r.state, TickState::Succeeded, "{r:#?}");
        let stamp = r.scheduled.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        assert_eq!(r.params["stamp"], stamp);
        assert_eq!(seen.get(&stamp), Some(&1), "{stamp} in {seen:?}");
    }
    assert_eq!(seen.len(), h.len(), "every logged run has its tick");
}

async fn three_daemons(store: Store, dir: &Path, secs: u64) {
    let s = schedules(dir, "    cron: \"* * * * * *\"\n");
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let (store, s) = (store.clone(), s.clone());
            tokio::spawn(async move { daemon_for(&store, s, options(5), secs).await })
        })
        .collect();
    for r in runs {
        r.await.unwrap();
    }
    let h = ticks::history(&store, "t", None).await.unwrap();
    assert!(h.len() as u64 >= secs - 2, "{} ticks in {secs} s", h.len());
    let seen = logged(dir);
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "ticks run more than once: {twice:?}");
    let holders: std::collections::BTreeSet<&str> = h.iter().map(|r| r.holder.as_str()).collect();
    assert!(
        holders.len() > 1,
        "one daemon did all the work: {holders:?}"
    );
    for r in &h {
        assert_eq!(r.state, TickState::Succeeded, "{r:#?}");
        let stamp = r.scheduled.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        assert_eq!(seen.get(&stamp), Some(&1), "{stamp}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_daemons_on_a_local_store_run_each_tick_once() {
    let dir = tempfile::tempdir().unwrap();
    three_daemons(local(dir.path()).await, dir.path(), 60).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_daemons_on_s3_run_each_tick_once() {
    let Some(store) = litehouse_store::testing::s3_store("cron-three-daemons").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    three_daemons(store, dir.path(), 60).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forbid_skips_ticks_while_a_slow_run_goes() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path()).await;
    let mut s = schedules(
        dir.path(),
        "    cron: \"* * * * * *\"\n    overlap: forbid\n",
    );
    s[0].params.insert("pause".into(), "2.5".into());
    daemon_for(&store, s, options(5), 6).await;
    let h = ticks::history(&store, "t", None).await.unwrap();
    let states = by_state(&h);
    assert!(
        states.get("skipped").copied().unwrap_or(0) >= 2,
        "{states:?}"
    );
    assert!(
        states.get("succeeded").copied().unwrap_or(0) >= 1,
        "{states:?}"
    );
    for r in h.iter().filter(|r| r.state == TickState::Skipped) {
        assert!(
            r.reason.as_deref().unwrap().contains("still running"),
            "{r:#?}"
        );
    }
    // No two runs at once: the logged ticks are the succeeded ones only.
    assert_eq!(logged(dir.path()).len(), states["succeeded"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replace_interrupts_the_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path()).await;
    let mut s = schedules(
        dir.path(),
        "    cron: \"*/2 * * * * *\"\n    overlap: replace\n",
    );
    s[0].params.insert("pause".into(), "30".into());
    let o = DaemonOptions {
        grace: StdDuration::from_secs(1),
        ..options(3)
    };
    daemon_for(&store, s, o, 7).await;
    let h = ticks::history(&store, "t", None).await.unwrap();
    let reason = |r: &TickRecord| r.reason.clone().unwrap_or_default();
    let replaced = h
        .iter()
        .filter(|r| r.state == TickState::Interrupted && reason(r).contains("replaced"))
        .count();
    assert!(replaced >= 2, "{h:#?}");
    // The last one was still running at shutdown: interrupted once the grace period ran out.
    let last = h.last().unwrap();
    assert_eq!(last.state, TickState::Interrupted, "{last:#?}");
    assert!(reason(last).contains("shut down"), "{last:#?}");
    assert!(logged(dir.path()).is_empty(), "no 30 s run finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn allow_lets_runs_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path()).await;
    let mut s = schedules(
        dir.path(),
        "    cron: \"* * * * * *\"\n    overlap: allow\n",
    );
    s[0].params.insert("pause".into(), "2.5".into());
    daemon_for(&store, s, options(5), 5).await;
    let h: Vec<TickRecord> = ticks::history(&store, "t", None)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.state == TickState::Succeeded)
        .collect();
    assert!(h.len() >= 3, "{h:#?}");
    let overlapping = h
        .windows(2)
        .any(|w| w[1].started.unwrap() < w[0].finished.unwrap());
    assert!(overlapping, "{h:#?}");
}

/// A store whose schedule last recorded a tick `minutes` ago (every minute since is missed).
async fn after_downtime(dir: &Path, policy: &str) -> (Store, Vec<Schedule>, DateTime<Utc>) {
    let store = local(dir).await;
    let s = schedules(
        dir,
        &format!("    cron: \"* * * * *\"\n    missed: {policy}\n    catch_up_limit: 3\n"),
    );
    let now = Utc::now();
    let last = s[0]
        .cron
        .between(now - Duration::minutes(11), now, s[0].tz, 1)[0];
    let r = runner::fresh(&s[0], last, "old-daemon", "daemon");
    ticks::record_not_run(
        &store,
        r,
        TickState::Succeeded,
        "before the downtime".into(),
    )
    .await
    .unwrap();
    (store, s, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missed_ticks_follow_each_policy_after_downtime() {
    for (policy, want_runs) in [("skip", 0), ("run-once", 1), ("catch-up", 3)] {
        // Stay clear of a minute boundary, where the running daemon would fire a tick itself.
        while !(8..=50).contains(&chrono::Timelike::second(&Utc::now())) {
            tokio::time::sleep(StdDuration::from_millis(200)).await;
        }
        let dir = tempfile::tempdir().unwrap();
        let (store, s, last) = after_downtime(dir.path(), policy).await;
        daemon_for(&store, s.clone(), options(5), 2).await;
        let h = ticks::history(&store, "t", None).await.unwrap();
        let missed = s[0]
            .cron
            .between(last, Utc::now() - Duration::seconds(5), s[0].tz, 100);
        assert!(missed.len() >= 9, "{policy}: {} ticks missed", missed.len());
        let ran: Vec<&TickRecord> = h
            .iter()
            .filter(|r| r.state == TickState::Succeeded && r.scheduled > last)
            .collect();
        assert_eq!(ran.len(), want_runs, "{policy}: {h:#?}");
        let recorded_missed = h.iter().filter(|r| r.state == TickState::Missed).count();
        assert_eq!(recorded_missed, missed.len() - want_runs, "{policy}");
        // Those that ran are the latest ones.
        let latest: Vec<DateTime<Utc>> = missed[missed.len() - want_runs..].to_vec();
        let ran_at: Vec<DateTime<Utc>> = ran.iter().map(|r| r.scheduled).collect();
        assert_eq!(ran_at, latest, "{policy}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_holder_s_tick_is_taken_over_after_its_lease_and_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path()).await;
    let s = schedules(dir.path(), "    cron: \"0 * * * *\"\n");
    let t = s[0]
        .cron
        .between(Utc::now() - Duration::hours(2), Utc::now(), s[0].tz, 1)[0];
    // A holder that claims with a 2 s lease and then dies (never renews, never finishes).
    let mut dead = runner::fresh(&s[0], t, "dead-daemon", "daemon");
    dead.params = runner::params(&s[0], t).unwrap();
    let Claim::Won(_) = ticks::claim(&store, dead, Duration::seconds(2))
        .await
        .unwrap()
    else {
        panic!("fresh tick not won");
    };
    // While the lease is live nobody may take it.
    let other = Leasing::new(5);
    assert!(runner::run_tick(&store, &s[0], t, &other, "test")
        .await
        .unwrap()
        .is_none());
    tokio::time::sleep(StdDuration::from_millis(2500)).await;
    let done = runner::run_tick(&store, &s[0], t, &other, "test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.state, TickState::Succeeded, "{done:#?}");
    assert_eq!(done.attempt, 2);
    assert_eq!(done.holder, other.holder);
    // Final now: a third daemon finds nothing to do.
    assert!(runner::run_tick(&store, &s[0], t, &Leasing::new(5), "test")
        .await
        .unwrap()
        .is_none());
    assert_eq!(logged(dir.path()).len(), 1);
}

#[test]
fn bad_schedule_files_name_the_schedule_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), &dir.path().join("log"));
    let base = format!(
        "schedules:\n  - id: nightly\n    pipeline: {}\n",
        p.display()
    );
    let cases = [
        ("bad cron", format!("{base}    cron: \"61 * * * *\"\n"), "schedule 'nightly', cron: \"61 * * * *\": minute field"),
        ("five fields too few", format!("{base}    cron: \"* * *\"\n"), "expected 5 fields"),
        ("unknown zone", format!("{base}    cron: \"0 3 * * *\"\n    timezone: Europe/Lundon\n"), "timezone: unknown zone \"Europe/Lundon\""),
        ("unknown variable", format!("{base}    cron: \"0 3 * * *\"\n    params: {{ stamp: \"{{{{ schedule_time }}}}\" }}\n"), "params.stamp: \"{{ schedule_time }}\": unknown variable 'schedule_time'"),
        ("unknown parameter", format!("{base}    cron: \"0 3 * * *\"\n    params: {{ stamp2: x }}\n"), "params.stamp2: pipeline 'tick' has no parameter 'stamp2'"),
        ("missing pipeline", "schedules:\n  - id: nightly\n    cron: \"0 3 * * *\"\n    pipeline: nope.yaml\n".to_string(), "schedule 'nightly', pipeline: no pipeline file at nope.yaml"),
        ("unknown field", format!("{base}    cron: \"0 3 * * *\"\n    overlapp: forbid\n"), "unknown field `overlapp`"),
        ("bad overlap", format!("{base}    cron: \"0 3 * * *\"\n    overlap: sometimes\n"), "unknown variant `sometimes`"),
        ("bad target", format!("{base}    cron: \"0 3 * * *\"\n    target: ftp://x\n"), "target: --to ftp://x"),
        ("bad id", "schedules:\n  - id: \"a b\"\n    cron: \"0 3 * * *\"\n    pipeline: x\n".to_string(), "schedule 'a b', id: expected 1 to 64"),
        ("no schedules", "schedules: []\n".to_string(), "no schedules"),
    ];
    let mut failures = Vec::new();
    for (name, text, want) in cases {
        match schedule::parse(&text, "s.yaml", dir.path(), false) {
            Ok(_) => failures.push(format!("{name}: accepted")),
            Err(e) if !e.to_string().contains(want) => {
                failures.push(format!("{name}: {e}\n    wanted: {want}"))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_schedule_records_its_ticks_skipped_until_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path()).await;
    let s = schedules(dir.path(), "    cron: \"* * * * * *\"\n");
    let pause = |paused| ticks::PauseState {
        paused,
        by: "test".into(),
        reason: "data late".into(),
        at: Utc::now(),
    };
    ticks::set_paused(&store, "t", &pause(true)).await.unwrap();
    daemon_for(&store, s.clone(), options(5), 3).await;
    let h = ticks::history(&store, "t", None).await.unwrap();
    assert!(!h.is_empty());
    assert!(
        h.iter().all(
            |r| r.state == TickState::Skipped && r.reason.as_deref() == Some("schedule paused")
        ),
        "{h:#?}"
    );
    assert!(logged(dir.path()).is_empty());
    ticks::set_paused(&store, "t", &pause(false)).await.unwrap();
    daemon_for(&store, s, options(5), 3).await;
    assert!(
        !logged(dir.path()).is_empty(),
        "resumed schedule ran nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_run_is_retried_with_backoff_and_recorded_with_its_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path()).await;
    let mut s = schedules(
        dir.path(),
        "    cron: \"0 3 * * *\"\n    retries: 2\n    retry_backoff_seconds: 1\n",
    );
    // A pause that is not a number makes `sleep` fail, so every attempt fails.
    s[0].params.insert("pause".into(), "soon".into());
    let t = s[0]
        .cron
        .between(Utc::now() - Duration::days(1), Utc::now(), s[0].tz, 1)[0];
    let started = std::time::Instant::now();
    let r = runner::run_tick(&store, &s[0], t, &Leasing::new(5), "test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.state, TickState::Failed, "{r:#?}");
    assert_eq!(r.attempt, 3, "{r:#?}");
    assert!(
        r.reason.as_deref().unwrap().contains("sh exited with 1"),
        "{r:#?}"
    );
    // Backoff 1 s then 2 s.
    assert!(started.elapsed() >= StdDuration::from_secs(3));
}
