//! The daemon: tokio-cron-scheduler as the in-process timer (a one-second heartbeat), fire
//! times computed here in each schedule's zone, every due tick claimed through the store (so
//! any number of daemons run it once), the overlap and missed-run policies, retention, and a
//! graceful shutdown that lets running pipelines finish or records them interrupted.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use litehouse_store::Store;
use tokio::task::JoinSet;

use crate::error::{CronError, Result};
use crate::runner::{self, Leasing};
use crate::schedule::{Missed, Overlap, Schedule};
use crate::ticks::{self, TickRecord, TickState};

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Lease holder name and duration.
    pub leasing: Leasing,
    /// How long running pipelines may take to finish after a shutdown request.
    pub grace: StdDuration,
}

/// What the daemon reports.
#[derive(Debug, Clone)]
pub enum Event {
    /// Missed ticks found at start, and what the policy did.
    Missed {
        /// The schedule.
        schedule: String,
        /// Ticks recorded as missed.
        recorded: usize,
        /// Ticks to run now.
        running: usize,
    },
    /// A tick was recorded.
    Tick(Box<TickRecord>),
    /// Shutting down.
    Stopping {
        /// Ticks still running.
        running: usize,
    },
}

/// A schedule with where the daemon's look-ahead stands.
struct Slot {
    schedule: Schedule,
    checked: DateTime<Utc>,
}

/// Runs until `shutdown` resolves.
pub async fn run(
    store: Store,
    schedules: Vec<Schedule>,
    options: DaemonOptions,
    events: impl Fn(&Event) + Send + Sync + Clone + 'static,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let now = Utc::now();
    let mut running: JoinSet<Result<Option<TickRecord>>> = JoinSet::new();
    let mut slots = Vec::new();
    for s in schedules {
        let backlog = missed(&store, &s, now, options.leasing.lease).await?;
        events(&Event::Missed {
            schedule: s.id.clone(),
            recorded: backlog.recorded,
            running: backlog.run.len(),
        });
        if !backlog.run.is_empty() {
            let (store, s2, leasing, ev) = (
                store.clone(),
                s.clone(),
                options.leasing.clone(),
                events.clone(),
            );
            running.spawn(async move {
                let mut last = None;
                // Oldest first, one after another: a backlog never overlaps itself.
                for t in backlog.run {
                    last = runner::run_tick(&store, &s2, t, &leasing, "daemon (missed)").await?;
                    if let Some(r) = &last {
                        ev(&Event::Tick(Box::new(r.clone())));
                    }
                }
                Ok(last)
            });
        }
        slots.push(Slot {
            schedule: s,
            checked: now,
        });
    }

    // The heartbeat: tokio-cron-scheduler fires every second in UTC and wakes the loop; the
    // loop also wakes on its own every few seconds, so a stalled timer delays, never drops.
    let (wake_tx, mut wake) = tokio::sync::mpsc::channel::<()>(1);
    let mut timer = tokio_cron_scheduler::JobScheduler::new()
        .await
        .map_err(|e| CronError::Invalid(format!("starting the timer: {e}")))?;
    let job = tokio_cron_scheduler::Job::new_async("* * * * * *", move |_, _| {
        let tx = wake_tx.clone();
        Box::pin(async move {
            let _ = tx.try_send(());
        })
    })
    .map_err(|e| CronError::Invalid(format!("the timer's job: {e}")))?;
    timer
        .add(job)
        .await
        .map_err(|e| CronError::Invalid(format!("the timer's job: {e}")))?;
    timer
        .start()
        .await
        .map_err(|e| CronError::Invalid(format!("starting the timer: {e}")))?;

    let mut pruned = now - Duration::hours(2);
    let mut adopted = now;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = wake.recv() => {}
            _ = tokio::time::sleep(StdDuration::from_secs(5)) => {}
            Some(done) = running.join_next(), if !running.is_empty() => {
                report(done, &events);
                continue;
            }
        }
        let now = Utc::now();
        for slot in &mut slots {
            let due = slot
                .schedule
                .cron
                .between(slot.checked, now, slot.schedule.tz, 1000);
            slot.checked = now;
            for t in due {
                start_tick(
                    &store,
                    &slot.schedule,
                    t,
                    &options.leasing,
                    &mut running,
                    &events,
                )
                .await?;
            }
        }
        if now - adopted > options.leasing.lease {
            adopted = now;
            for slot in &slots {
                adopt_abandoned(&store, &slot.schedule, &options.leasing, &mut running).await?;
            }
        }
        if now - pruned > Duration::hours(1) {
            pruned = now;
            for slot in &slots {
                let keep = Duration::days(i64::from(slot.schedule.history_days));
                let n = ticks::prune(&store, &slot.schedule.id, now - keep).await?;
                if n > 0 {
                    tracing::info!(schedule = %slot.schedule.id, n, "pruned old tick records");
                }
            }
        }
    }

    let _ = timer.shutdown().await;
    events(&Event::Stopping {
        running: running.len(),
    });
    let deadline = tokio::time::Instant::now() + options.grace;
    while !running.is_empty() {
        match tokio::time::timeout_at(deadline, running.join_next()).await {
            Ok(Some(done)) => report(done, &events),
            Ok(None) => break,
            Err(_) => {
                running.abort_all();
                while running.join_next().await.is_some() {}
                interrupt_held(&store, &slots, &options.leasing).await?;
                break;
            }
        }
    }
    Ok(())
}

fn report(
    done: std::result::Result<Result<Option<TickRecord>>, tokio::task::JoinError>,
    events: &impl Fn(&Event),
) {
    match done {
        Ok(Ok(Some(r))) => events(&Event::Tick(Box::new(r))),
        Ok(Ok(None)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "tick failed to run"),
        Err(e) if e.is_cancelled() => {}
        Err(e) => tracing::error!(error = %e, "tick task panicked"),
    }
}

/// Applies pause and overlap, then claims and runs a due tick in the background.
async fn start_tick(
    store: &Store,
    s: &Schedule,
    t: DateTime<Utc>,
    leasing: &Leasing,
    running: &mut JoinSet<Result<Option<TickRecord>>>,
    events: &(impl Fn(&Event) + Send + Sync + Clone + 'static),
) -> Result<()> {
    let base = runner::fresh(s, t, &leasing.holder, "daemon");
    let paused = match ticks::pause_state(store, &s.id).await? {
        Some(p) => p.paused,
        None => s.paused,
    };
    if paused {
        let mut skipped = base.clone();
        skipped.state = TickState::Skipped;
        skipped.reason = Some("schedule paused".into());
        if ticks::record_not_run(store, base, TickState::Skipped, "schedule paused".into()).await? {
            events(&Event::Tick(Box::new(skipped)));
        }
        return Ok(());
    }
    if s.overlap != Overlap::Allow {
        let now = Utc::now();
        let live: Vec<TickRecord> = ticks::history(store, &s.id, Some(10))
            .await?
            .into_iter()
            .filter(|r| {
                r.scheduled < t
                    && r.state == TickState::Running
                    && r.lease_until.is_some_and(|l| l > now)
            })
            .collect();
        if let Some(first) = live.first() {
            if s.overlap == Overlap::Forbid {
                let why = format!(
                    "overlap: tick {} still running (overlap: forbid)",
                    first.tick
                );
                let mut skipped = base.clone();
                skipped.state = TickState::Skipped;
                skipped.reason = Some(why.clone());
                if ticks::record_not_run(store, base, TickState::Skipped, why).await? {
                    events(&Event::Tick(Box::new(skipped)));
                }
                return Ok(());
            }
            for r in &live {
                ticks::request_cancel(store, &s.id, r.scheduled).await?;
            }
        }
    }
    let (store, s, leasing) = (store.clone(), s.clone(), leasing.clone());
    running.spawn(async move { runner::run_tick(&store, &s, t, &leasing, "daemon").await });
    Ok(())
}

/// Ticks whose holder stopped renewing its lease (a daemon killed or cut off): claimed here,
/// which takes them over and resumes their run.
async fn adopt_abandoned(
    store: &Store,
    s: &Schedule,
    leasing: &Leasing,
    running: &mut JoinSet<Result<Option<TickRecord>>>,
) -> Result<()> {
    let now = Utc::now();
    for r in ticks::history(store, &s.id, Some(10)).await? {
        if r.state == TickState::Running && r.lease_until.is_none_or(|l| l < now) {
            tracing::info!(tick = %r.tick, holder = %r.holder, "taking over an abandoned tick");
            let (store, s, leasing, t) = (store.clone(), s.clone(), leasing.clone(), r.scheduled);
            running.spawn(async move {
                runner::run_tick(&store, &s, t, &leasing, "daemon (takeover)").await
            });
        }
    }
    Ok(())
}

/// Missed ticks at start.
pub struct Backlog {
    /// Recorded as missed.
    pub recorded: usize,
    /// To run now, oldest first.
    pub run: Vec<DateTime<Utc>>,
}

/// Ticks due since the schedule's last record that have none, plus ticks left interrupted or
/// abandoned; what the missed-run policy does with them. Ticks within `margin` of `now` are
/// left alone: a running daemon may be about to claim them.
pub async fn missed(
    store: &Store,
    s: &Schedule,
    now: DateTime<Utc>,
    margin: Duration,
) -> Result<Backlog> {
    let recent = ticks::history(store, &s.id, Some(200)).await?;
    let Some(last) = recent.last() else {
        return Ok(Backlog {
            recorded: 0,
            run: vec![],
        });
    };
    let mut due: Vec<DateTime<Utc>> = recent
        .iter()
        .filter(|r| {
            r.state == TickState::Interrupted
                || (r.state == TickState::Running && r.lease_until.is_none_or(|l| l < now))
        })
        .map(|r| r.scheduled)
        .collect();
    due.extend(s.cron.between(last.scheduled, now - margin, s.tz, 10_000));
    due.sort();
    due.dedup();
    let keep = match s.missed {
        Missed::Skip => 0,
        Missed::RunOnce => 1,
        Missed::CatchUp => s.catch_up_limit,
    };
    let split = due.len().saturating_sub(keep);
    let mut recorded = 0;
    let by_time: BTreeMap<DateTime<Utc>, &TickRecord> =
        recent.iter().map(|r| (r.scheduled, r)).collect();
    for t in &due[..split] {
        if by_time.contains_key(t) {
            // An interrupted or abandoned tick the policy lets go stays as it is.
            continue;
        }
        let r = runner::fresh(s, *t, "daemon", "daemon");
        if ticks::record_not_run(
            store,
            r,
            TickState::Missed,
            format!("no daemon was running (missed: {:?})", s.missed).to_lowercase(),
        )
        .await?
        {
            recorded += 1;
        }
    }
    Ok(Backlog {
        recorded,
        run: due[split..].to_vec(),
    })
}

/// After the grace period: ticks this daemon still holds become `interrupted`.
async fn interrupt_held(store: &Store, slots: &[Slot], leasing: &Leasing) -> Result<()> {
    for slot in slots {
        for r in ticks::history(store, &slot.schedule.id, Some(20)).await? {
            if r.state == TickState::Running && r.holder == leasing.holder {
                let held = ticks::Held {
                    etag: store
                        .etag(&ticks::key(&r.schedule, r.scheduled))
                        .await?
                        .unwrap_or_default(),
                    record: r,
                };
                ticks::finish(
                    store,
                    &held,
                    TickState::Interrupted,
                    None,
                    Some("the daemon shut down before the run finished".into()),
                )
                .await?;
            }
        }
    }
    Ok(())
}
