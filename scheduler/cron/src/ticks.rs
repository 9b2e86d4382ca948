//! Ticks in the store: one record per (schedule, scheduled time) at
//! `schedules/{id}/ticks/{time}.json`, which is also the lease. The first daemon to create it
//! (create-only write) runs the tick; while it runs it renews `lease_until` by compare-and-swap;
//! when a holder dies the lease expires and the next daemon to swap it in takes the tick over.
//! A final record is never run again, so the tick id is the dedupe key everywhere.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use litehouse_store::{Condition, Store};
use serde::{Deserialize, Serialize};

use crate::error::{CronError, Result};

/// Where a tick stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TickState {
    /// A daemon holds it and its run is going.
    Running,
    /// The run succeeded.
    Succeeded,
    /// The run's gate said no.
    Gated,
    /// The run failed (after its retries).
    Failed,
    /// Not run: the previous run was still going (`overlap: forbid`), or the schedule was paused.
    Skipped,
    /// Not run: no daemon was up at the time and the missed-run policy let it go.
    Missed,
    /// Stopped before it finished (shutdown, or replaced by a newer tick); a later start's
    /// missed-run policy decides whether it runs again.
    Interrupted,
}

impl TickState {
    /// Will not run again.
    pub fn is_final(self) -> bool {
        !matches!(self, TickState::Running | TickState::Interrupted)
    }

    /// The word in tables.
    pub fn name(self) -> &'static str {
        match self {
            TickState::Running => "running",
            TickState::Succeeded => "succeeded",
            TickState::Gated => "gated",
            TickState::Failed => "failed",
            TickState::Skipped => "skipped",
            TickState::Missed => "missed",
            TickState::Interrupted => "interrupted",
        }
    }
}

/// A tick's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TickRecord {
    /// `{schedule}@{time}`.
    pub tick: String,
    /// The schedule.
    pub schedule: String,
    /// The time it was scheduled for.
    pub scheduled: DateTime<Utc>,
    /// Where it stands.
    pub state: TickState,
    /// The daemon (or trigger) holding or last holding it.
    pub holder: String,
    /// Until when the holder's lease runs, while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<DateTime<Utc>>,
    /// When its run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<DateTime<Utc>>,
    /// When it reached its state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<DateTime<Utc>>,
    /// The pipeline run (local) or submitted job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// Attempts so far (retries and takeovers count).
    pub attempt: u32,
    /// Why it ended as it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A newer tick asked the holder to stop (`overlap: replace`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancel: bool,
    /// The parameters the run got.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// What started it: `daemon`, `run-now`, `lambda`.
    pub trigger: String,
}

/// `20261204T030000Z`.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// The tick id: `{schedule}@{time}`.
pub fn tick_id(schedule: &str, t: DateTime<Utc>) -> String {
    format!("{schedule}@{}", stamp(t))
}

/// The pipeline run name of a tick: stable, so a takeover resumes the same run.
pub fn run_name(schedule: &str, t: DateTime<Utc>) -> String {
    format!("{schedule}-{}", stamp(t)).to_lowercase()
}

fn prefix(schedule: &str) -> String {
    format!("schedules/{schedule}/ticks/")
}

/// The record's key.
pub fn key(schedule: &str, t: DateTime<Utc>) -> String {
    format!("{}{}.json", prefix(schedule), stamp(t))
}

fn encode(r: &TickRecord) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(r).map_err(|e| CronError::Invalid(format!("encoding a tick: {e}")))
}

async fn read(store: &Store, key: &str) -> Result<Option<(TickRecord, String)>> {
    let Some(o) = store.get_opt(key).await? else {
        return Ok(None);
    };
    let r = serde_json::from_slice(&o.bytes)
        .map_err(|e| CronError::Invalid(format!("{}/{key}: {e}", store.uri())))?;
    Ok(Some((r, o.etag)))
}

/// A tick held by this daemon: the record and the etag its next write must match.
#[derive(Debug, Clone)]
pub struct Held {
    /// The record as last written.
    pub record: TickRecord,
    /// Its etag.
    pub etag: String,
}

/// What a claim found.
#[derive(Debug)]
pub enum Claim {
    /// This daemon holds the tick now (a fresh one, or taken over from a dead holder).
    Won(Held),
    /// Another daemon holds it, or it is final.
    Taken(TickRecord),
}

/// Claims a tick for `holder` with a lease of `lease`.
pub async fn claim(store: &Store, fresh: TickRecord, lease: Duration) -> Result<Claim> {
    let now = Utc::now();
    let k = key(&fresh.schedule, fresh.scheduled);
    let mut mine = fresh;
    mine.state = TickState::Running;
    mine.lease_until = Some(now + lease);
    mine.started = Some(now);
    mine.attempt = mine.attempt.max(1);
    match store.put(&k, encode(&mine)?, Condition::IfAbsent).await {
        Ok(etag) => return Ok(Claim::Won(Held { record: mine, etag })),
        Err(e) if e.is_precondition_failed() => {}
        Err(e) => return Err(e.into()),
    }
    let Some((existing, etag)) = read(store, &k).await? else {
        return Err(CronError::Invalid(format!(
            "tick {k} vanished while claimed"
        )));
    };
    let expired = existing.lease_until.is_none_or(|t| t < now);
    let takeable = existing.state == TickState::Interrupted
        || (existing.state == TickState::Running && expired);
    if !takeable {
        return Ok(Claim::Taken(existing));
    }
    let mut taken = existing.clone();
    taken.state = TickState::Running;
    taken.holder = mine.holder;
    taken.trigger = mine.trigger;
    taken.lease_until = Some(now + lease);
    taken.attempt += 1;
    taken.cancel = false;
    taken.reason = Some(format!(
        "taken over from {} ({})",
        existing.holder,
        if existing.state == TickState::Interrupted {
            "interrupted"
        } else {
            "lease expired"
        }
    ));
    match store
        .put(&k, encode(&taken)?, Condition::IfMatch(etag))
        .await
    {
        Ok(etag) => Ok(Claim::Won(Held {
            record: taken,
            etag,
        })),
        Err(e) if e.is_precondition_failed() => match read(store, &k).await? {
            Some((r, _)) => Ok(Claim::Taken(r)),
            None => Err(CronError::Invalid(format!(
                "tick {k} vanished while claimed"
            ))),
        },
        Err(e) => Err(e.into()),
    }
}

/// Why a holder must stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Another daemon holds the tick now.
    Lost,
    /// A newer tick asked this one to stop.
    Cancelled,
}

/// Extends the lease; `Err(Stop)` when the holder must stop.
pub async fn renew(
    store: &Store,
    held: &mut Held,
    lease: Duration,
) -> Result<std::result::Result<(), Stop>> {
    let k = key(&held.record.schedule, held.record.scheduled);
    let mut next = held.record.clone();
    next.lease_until = Some(Utc::now() + lease);
    match store
        .put(&k, encode(&next)?, Condition::IfMatch(held.etag.clone()))
        .await
    {
        Ok(etag) => {
            *held = Held { record: next, etag };
            Ok(Ok(()))
        }
        Err(e) if e.is_precondition_failed() => {
            let Some((now, etag)) = read(store, &k).await? else {
                return Ok(Err(Stop::Lost));
            };
            if now.holder == held.record.holder && now.cancel && now.state == TickState::Running {
                *held = Held { record: now, etag };
                return Ok(Err(Stop::Cancelled));
            }
            Ok(Err(Stop::Lost))
        }
        Err(e) => Err(e.into()),
    }
}

/// One tick's record, if it has one.
pub async fn get(store: &Store, schedule: &str, t: DateTime<Utc>) -> Result<Option<TickRecord>> {
    Ok(read(store, &key(schedule, t)).await?.map(|(r, _)| r))
}

/// Writes a held tick's final (or interrupted) state.
pub async fn finish(
    store: &Store,
    held: &Held,
    state: TickState,
    run: Option<String>,
    reason: Option<String>,
) -> Result<TickRecord> {
    let k = key(&held.record.schedule, held.record.scheduled);
    let mut done = held.record.clone();
    done.state = state;
    done.finished = Some(Utc::now());
    done.lease_until = None;
    if run.is_some() {
        done.run = run;
    }
    done.reason = reason;
    match store
        .put(&k, encode(&done)?, Condition::IfMatch(held.etag.clone()))
        .await
    {
        Ok(_) => Ok(done),
        Err(e) if e.is_precondition_failed() => {
            // A cancel request changed the etag; the holder is still us, so write over it.
            match read(store, &k).await? {
                Some((now, etag)) if now.holder == held.record.holder => {
                    store
                        .put(&k, encode(&done)?, Condition::IfMatch(etag))
                        .await?;
                    Ok(done)
                }
                _ => Err(CronError::Invalid(format!(
                    "tick {} was taken over before it could be recorded as {}",
                    held.record.tick,
                    state.name()
                ))),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Records a tick that will not run (skipped, missed); nothing happens when a record exists.
pub async fn record_not_run(
    store: &Store,
    mut r: TickRecord,
    state: TickState,
    reason: String,
) -> Result<bool> {
    r.state = state;
    r.reason = Some(reason);
    r.finished = Some(Utc::now());
    r.lease_until = None;
    match store
        .put(
            &key(&r.schedule, r.scheduled),
            encode(&r)?,
            Condition::IfAbsent,
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.is_precondition_failed() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Asks the holder of a running tick to stop (`overlap: replace`).
pub async fn request_cancel(store: &Store, schedule: &str, t: DateTime<Utc>) -> Result<()> {
    let k = key(schedule, t);
    for _ in 0..5 {
        let Some((mut r, etag)) = read(store, &k).await? else {
            return Ok(());
        };
        if r.state != TickState::Running || r.cancel {
            return Ok(());
        }
        r.cancel = true;
        match store.put(&k, encode(&r)?, Condition::IfMatch(etag)).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_precondition_failed() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A schedule's tick records, oldest first; the last `limit` when given.
pub async fn history(
    store: &Store,
    schedule: &str,
    limit: Option<usize>,
) -> Result<Vec<TickRecord>> {
    let keys = store.list(&prefix(schedule)).await?;
    let skip = limit.map_or(0, |l| keys.len().saturating_sub(l));
    let mut out = Vec::new();
    for k in keys.into_iter().skip(skip) {
        if let Some((r, _)) = read(store, &k).await? {
            out.push(r);
        }
    }
    Ok(out)
}

/// Deletes final records scheduled before `before`; returns how many.
pub async fn prune(store: &Store, schedule: &str, before: DateTime<Utc>) -> Result<usize> {
    let cut = format!("{}{}.json", prefix(schedule), stamp(before));
    let mut n = 0;
    for k in store.list(&prefix(schedule)).await? {
        if k >= cut {
            break;
        }
        if let Some((r, _)) = read(store, &k).await? {
            if r.state.is_final() {
                store.delete(&k).await?;
                n += 1;
            }
        }
    }
    Ok(n)
}

/// A schedule's pause state, set by `litehouse schedule pause|resume`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PauseState {
    /// Paused or not.
    pub paused: bool,
    /// Who set it.
    pub by: String,
    /// Why.
    #[serde(default)]
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
}

fn pause_key(schedule: &str) -> String {
    format!("schedules/{schedule}/state.json")
}

/// The store's pause state of a schedule, if one was set.
pub async fn pause_state(store: &Store, schedule: &str) -> Result<Option<PauseState>> {
    let Some(o) = store.get_opt(&pause_key(schedule)).await? else {
        return Ok(None);
    };
    Ok(serde_json::from_slice(&o.bytes).ok())
}

/// Pauses or resumes a schedule.
pub async fn set_paused(store: &Store, schedule: &str, state: &PauseState) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(state)
        .map_err(|e| CronError::Invalid(format!("encoding: {e}")))?;
    store
        .put(&pause_key(schedule), bytes, Condition::Always)
        .await?;
    Ok(())
}
