//! `litehouse schedule list|show|next|run-now|pause|resume|history|daemon`: pipelines on a
//! timetable, every tick recorded in the store and run once however many daemons share it.

use std::path::PathBuf;
use std::time::Duration as StdDuration;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use litehouse_cron::daemon::{self, DaemonOptions, Event};
use litehouse_cron::runner::{self, Leasing};
use litehouse_cron::ticks::{self, PauseState, TickRecord};
use litehouse_cron::{schedule, Schedule};
use litehouse_store::Store;

use crate::pipeline_cmd::say;
use crate::registry_args::{print_json, StoreArgs};

/// Arguments of `schedule`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    /// The schedule file (YAML, or TOML with a .toml name).
    #[arg(
        long,
        env = "LITEHOUSE_SCHEDULES",
        default_value = "schedules.yaml",
        global = true
    )]
    schedules: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Every schedule with its next fire time and last tick.
    List,
    /// One schedule: its settings, next fire times and recent ticks.
    Show {
        /// Schedule id.
        id: String,
    },
    /// Fire times in the schedule's zone and in UTC.
    Next {
        /// Schedule id.
        id: String,
        /// Start after this time (RFC 3339; default now).
        #[arg(long)]
        from: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 5)]
        count: usize,
    },
    /// Run a tick now (or the tick of --at), through the same claim as the daemon: a tick
    /// that already ran is not run again.
    RunNow {
        /// Schedule id.
        id: String,
        /// The scheduled time to run (RFC 3339; default now, to the second).
        #[arg(long)]
        at: Option<String>,
    },
    /// Pause a schedule: its ticks are recorded as skipped until it is resumed.
    Pause {
        /// Schedule id.
        id: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Resume a paused schedule.
    Resume {
        /// Schedule id.
        id: String,
    },
    /// A schedule's recorded ticks, newest last.
    History {
        /// Schedule id.
        id: String,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Write the schedules for a managed scheduler: `--to eventbridge` gives a CloudFormation
    /// template of EventBridge Scheduler schedules that invoke the trigger function.
    Export {
        /// eventbridge.
        #[arg(long, default_value = "eventbridge")]
        to: String,
        /// Where to write it (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Run the schedules until SIGTERM or SIGINT.
    Daemon {
        /// Seconds a tick's lease lasts without renewal (a dead daemon's ticks are taken over
        /// after this).
        #[arg(long, default_value_t = 30)]
        lease: i64,
        /// Seconds running pipelines get to finish after a shutdown signal.
        #[arg(long, default_value_t = 60)]
        grace: u64,
    },
}

pub fn run(args: Args) -> anyhow::Result<()> {
    crate::registry_args::block_on_threads(dispatch(args))
}

fn find<'a>(all: &'a [Schedule], id: &str) -> anyhow::Result<&'a Schedule> {
    all.iter().find(|s| s.id == id).with_context(|| {
        format!(
            "no schedule '{id}' (schedules: {})",
            all.iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

fn time(text: &str, flag: &str) -> anyhow::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| {
            format!("{flag} {text:?}: expected an RFC 3339 time such as 2026-12-04T03:00:00Z")
        })
}

fn local(s: &Schedule, t: DateTime<Utc>) -> String {
    t.with_timezone(&s.tz)
        .format("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

fn show_tick(r: &TickRecord) {
    say!(
        "{:<22} {:<12} {:>3}  {:<34} {}",
        r.scheduled.format("%Y-%m-%dT%H:%M:%SZ"),
        r.state.name(),
        r.attempt,
        r.run.as_deref().unwrap_or("-"),
        r.reason.as_deref().unwrap_or("")
    );
}

async fn dispatch(args: Args) -> anyhow::Result<()> {
    let json = args.store.json;
    let all = schedule::read(&args.schedules)?;
    let store = || async {
        Store::open(&args.store.store)
            .await
            .with_context(|| format!("opening store {}", args.store.store))
    };
    match args.command {
        Command::List => {
            let store = store().await?;
            let mut rows = Vec::new();
            for s in &all {
                let paused = ticks::pause_state(&store, &s.id)
                    .await?
                    .map_or(s.paused, |p| p.paused);
                let next = s.cron.next_after(Utc::now(), s.tz);
                let last = ticks::history(&store, &s.id, Some(1)).await?.pop();
                rows.push((s, paused, next, last));
            }
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(s, paused, next, last)| {
                        serde_json::json!({
                            "id": s.id, "cron": s.cron.text(), "timezone": s.tz.name(),
                            "pipeline": s.pipeline, "target": s.target, "paused": paused,
                            "overlap": s.overlap, "missed": s.missed, "next": next, "last": last,
                        })
                    })
                    .collect();
                return print_json(&v);
            }
            say!(
                "{:<20} {:<16} {:<18} {:<28} {:<8} {}",
                "ID",
                "CRON",
                "ZONE",
                "NEXT (LOCAL)",
                "PAUSED",
                "LAST"
            );
            for (s, paused, next, last) in rows {
                say!(
                    "{:<20} {:<16} {:<18} {:<28} {:<8} {}",
                    s.id,
                    s.cron.text(),
                    s.tz.name(),
                    next.map_or("-".into(), |t| local(s, t)),
                    if paused { "yes" } else { "no" },
                    last.map_or("-".into(), |r| format!(
                        "{} {}",
                        r.scheduled.format("%Y-%m-%dT%H:%M:%SZ"),
                        r.state.name()
                    ))
                );
            }
            Ok(())
        }
        Command::Show { id } => {
            let s = find(&all, &id)?;
            let store = store().await?;
            let recent = ticks::history(&store, &s.id, Some(10)).await?;
            let pause = ticks::pause_state(&store, &s.id).await?;
            let next = s.cron.between(
                Utc::now(),
                Utc::now() + chrono::Duration::days(3660),
                s.tz,
                3,
            );
            if json {
                return print_json(&serde_json::json!({
                    "id": s.id, "cron": s.cron.text(), "timezone": s.tz.name(), "pipeline": s.pipeline,
                    "params": s.params, "target": s.target, "overlap": s.overlap, "missed": s.missed,
                    "catch_up_limit": s.catch_up_limit, "retries": s.retries,
                    "retry_backoff_seconds": s.retry_backoff_seconds, "jitter_seconds": s.jitter_seconds,
                    "paused": pause.as_ref().map_or(s.paused, |p| p.paused), "pause": pause,
                    "history_days": s.history_days, "next": next, "recent": recent,
                }));
            }
            say!("schedule {}  ({} in {})", s.id, s.cron.text(), s.tz.name());
            say!("pipeline {}  -> {}", s.pipeline.display(), s.target);
            for (k, v) in &s.params {
                say!("param    {k} = {v}");
            }
            say!(
                "policy   overlap {:?}, missed {:?} (limit {}), retries {} (backoff {} s), jitter {} s",
                s.overlap, s.missed, s.catch_up_limit, s.retries, s.retry_backoff_seconds, s.jitter_seconds
            );
            if let Some(p) = &pause {
                say!(
                    "paused   {} (by {} at {}{})",
                    p.paused,
                    p.by,
                    p.at.to_rfc3339(),
                    if p.reason.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", p.reason)
                    }
                );
            }
            for t in next {
                say!(
                    "next     {}  ({})",
                    local(s, t),
                    t.format("%Y-%m-%dT%H:%M:%SZ")
                );
            }
            say!("");
            for r in &recent {
                show_tick(r);
            }
            Ok(())
        }
        Command::Next { id, from, count } => {
            let s = find(&all, &id)?;
            let from = match from {
                Some(f) => time(&f, "--from")?,
                None => Utc::now(),
            };
            let times = s
                .cron
                .between(from, from + chrono::Duration::days(3660), s.tz, count);
            if json {
                let v: Vec<_> = times
                    .iter()
                    .map(|t| serde_json::json!({"utc": t, "local": t.with_timezone(&s.tz).to_rfc3339()}))
                    .collect();
                return print_json(&v);
            }
            for t in times {
                say!("{}  {}", local(s, t), t.format("%Y-%m-%dT%H:%M:%SZ"));
            }
            Ok(())
        }
        Command::RunNow { id, at } => {
            let s = find(&all, &id)?;
            let store = store().await?;
            store.ensure_bucket().await?;
            let at = match at {
                Some(a) => time(&a, "--at")?,
                None => {
                    let now = Utc::now();
                    DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now)
                }
            };
            let leasing = Leasing::new(30);
            match runner::run_tick(&store, s, at, &leasing, "run-now").await? {
                Some(r) => {
                    if json {
                        return print_json(&r);
                    }
                    show_tick(&r);
                    if r.state == ticks::TickState::Failed {
                        bail!("tick {} failed", r.tick);
                    }
                }
                None => {
                    let k = ticks::key(&s.id, at);
                    let existing = ticks::get(&store, &s.id, at).await?;
                    if json {
                        return print_json(&existing);
                    }
                    say!(
                        "tick {} was already taken ({}); not run again",
                        ticks::tick_id(&s.id, at),
                        existing.map_or(k, |r| format!("{} by {}", r.state.name(), r.holder))
                    );
                }
            }
            Ok(())
        }
        Command::Pause { id, reason } => {
            set_pause(&all, &store().await?, &id, true, reason, json).await
        }
        Command::Resume { id } => {
            set_pause(&all, &store().await?, &id, false, String::new(), json).await
        }
        Command::History { id, limit } => {
            let s = find(&all, &id)?;
            let h = ticks::history(&store().await?, &s.id, Some(limit)).await?;
            if json {
                return print_json(&h);
            }
            say!(
                "{:<22} {:<12} {:>3}  {:<34} REASON",
                "SCHEDULED",
                "STATE",
                "TRY",
                "RUN"
            );
            for r in &h {
                show_tick(r);
            }
            Ok(())
        }
        Command::Export { to, output } => {
            if to != "eventbridge" {
                bail!("--to {to}: supported: eventbridge");
            }
            let source = args.schedules.display().to_string();
            let template = litehouse_cron::export::eventbridge_template(&all, &source)
                .map_err(anyhow::Error::msg)?;
            let text = serde_json::to_string_pretty(&template)? + "\n";
            match output {
                Some(path) => {
                    std::fs::write(&path, text)
                        .with_context(|| format!("writing {}", path.display()))?;
                    eprintln!("wrote {} ({} schedules)", path.display(), all.len());
                }
                None => say!("{}", text.trim_end()),
            }
            Ok(())
        }
        Command::Daemon { lease, grace } => {
            let store = store().await?;
            store.ensure_bucket().await?;
            let options = DaemonOptions {
                leasing: Leasing::new(lease),
                grace: StdDuration::from_secs(grace),
            };
            eprintln!(
                "scheduling {} schedule(s) on {} as {} (lease {lease} s)",
                all.len(),
                store.uri(),
                options.leasing.holder
            );
            let events = move |e: &Event| match e {
                Event::Missed {
                    schedule,
                    recorded,
                    running,
                } if *recorded + *running > 0 => {
                    eprintln!(
                        "{schedule}: {recorded} missed tick(s) recorded, {running} to run now"
                    )
                }
                Event::Missed { .. } => {}
                Event::Tick(r) => {
                    if json {
                        if let Ok(line) = serde_json::to_string(r) {
                            say!("{line}");
                        }
                    } else {
                        eprintln!(
                            "{} {:<10} attempt {} {}{}",
                            r.tick,
                            r.state.name(),
                            r.attempt,
                            r.run.as_deref().unwrap_or(""),
                            r.reason
                                .as_deref()
                                .map_or(String::new(), |w| format!(": {w}"))
                        )
                    }
                }
                Event::Stopping { running } => {
                    eprintln!("stopping: no new ticks; waiting for {running} running tick(s) (up to {grace} s)")
                }
            };
            daemon::run(store, all, options, events, shutdown_signal()).await?;
            eprintln!("stopped");
            Ok(())
        }
    }
}

async fn set_pause(
    all: &[Schedule],
    store: &Store,
    id: &str,
    paused: bool,
    reason: String,
    json: bool,
) -> anyhow::Result<()> {
    let s = find(all, id)?;
    store.ensure_bucket().await?;
    let state = PauseState {
        paused,
        by: std::env::var("USER").unwrap_or_else(|_| "someone".into()),
        reason,
        at: Utc::now(),
    };
    ticks::set_paused(store, &s.id, &state).await?;
    if json {
        return print_json(&state);
    }
    say!("{} {}", s.id, if paused { "paused" } else { "resumed" });
    Ok(())
}

/// SIGTERM or SIGINT.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
