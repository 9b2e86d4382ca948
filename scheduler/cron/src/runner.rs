//! One tick from claim to record: the pipeline compiled with that tick's parameters, then run
//! by the embedded runner on the store (the run named after the tick, so a takeover resumes
//! it) or submitted to KFP / Vertex AI; the lease renewed while it runs; retries with backoff.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use litehouse_pipeline::run::record::RunState;
use litehouse_pipeline::run::RunOptions;
use litehouse_store::Store;

use crate::error::{CronError, Result};
use crate::schedule::Schedule;
use crate::template::{self, Context};
use crate::ticks::{self, Claim, Held, Stop, TickRecord, TickState};

/// How ticks are held.
#[derive(Debug, Clone)]
pub struct Leasing {
    /// Who this is (`host-pid-random`).
    pub holder: String,
    /// How long a lease lasts without renewal.
    pub lease: Duration,
}

impl Leasing {
    /// A lease of `seconds` for a holder named after this process.
    pub fn new(seconds: i64) -> Leasing {
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "host".into());
        Leasing {
            holder: format!("{host}-{}-{:04x}", std::process::id(), fastrand::u16(..)),
            lease: Duration::seconds(seconds.max(2)),
        }
    }
}

/// A tick's parameters, rendered.
pub fn params(s: &Schedule, scheduled: DateTime<Utc>) -> Result<BTreeMap<String, String>> {
    let c = Context {
        schedule_id: s.id.clone(),
        scheduled_time: scheduled,
        tz: s.tz,
        tick_id: ticks::tick_id(&s.id, scheduled),
    };
    s.params
        .iter()
        .map(|(k, v)| {
            template::render(v, &c)
                .map(|r| (k.clone(), r))
                .map_err(|e| CronError::Schedule {
                    id: s.id.clone(),
                    field: format!("params.{k}"),
                    message: e,
                })
        })
        .collect()
}

/// A fresh record for a tick.
pub fn fresh(s: &Schedule, scheduled: DateTime<Utc>, holder: &str, trigger: &str) -> TickRecord {
    TickRecord {
        tick: ticks::tick_id(&s.id, scheduled),
        schedule: s.id.clone(),
        scheduled,
        state: TickState::Running,
        holder: holder.into(),
        lease_until: None,
        started: None,
        finished: None,
        run: None,
        attempt: 1,
        reason: None,
        cancel: false,
        params: BTreeMap::new(),
        trigger: trigger.into(),
    }
}

/// The outcome of one attempt.
struct Attempt {
    state: TickState,
    run: Option<String>,
    reason: Option<String>,
}

/// Claims and runs a tick; `None` when another daemon has it or it is final already.
pub async fn run_tick(
    store: &Store,
    s: &Schedule,
    scheduled: DateTime<Utc>,
    leasing: &Leasing,
    trigger: &str,
) -> Result<Option<TickRecord>> {
    let mut record = fresh(s, scheduled, &leasing.holder, trigger);
    record.params = params(s, scheduled)?;
    let mut held = match ticks::claim(store, record, leasing.lease).await? {
        Claim::Won(h) => h,
        Claim::Taken(_) => return Ok(None),
    };
    // Jitter spreads scheduled load; a tick asked for by hand runs at once.
    if s.jitter_seconds > 0 && trigger != "run-now" {
        let wait = fastrand::u64(..=s.jitter_seconds * 1000);
        tokio::time::sleep(StdDuration::from_millis(wait)).await;
    }
    let mut failures = 0;
    loop {
        let attempt = attempt_with_lease(store, s, &mut held, leasing).await?;
        let Some(attempt) = attempt else {
            // Lost the lease: whoever has it now records the tick.
            return Ok(None);
        };
        let retry = attempt.state == TickState::Failed && failures < s.retries;
        if !retry {
            return Ok(Some(
                ticks::finish(store, &held, attempt.state, attempt.run, attempt.reason).await?,
            ));
        }
        failures += 1;
        let backoff = s
            .retry_backoff_seconds
            .saturating_mul(1 << (failures - 1).min(16));
        tracing::warn!(tick = %held.record.tick, attempt = held.record.attempt, backoff, reason = ?attempt.reason, "run failed; retrying");
        held.record.attempt += 1;
        held.record.reason = attempt.reason;
        // Keep the lease through the backoff.
        let until = tokio::time::Instant::now() + StdDuration::from_secs(backoff);
        while tokio::time::Instant::now() < until {
            let step = (until - tokio::time::Instant::now()).min(renew_every(leasing));
            tokio::time::sleep(step).await;
            if ticks::renew(store, &mut held, leasing.lease)
                .await?
                .is_err()
            {
                return Ok(None);
            }
        }
    }
}

fn renew_every(leasing: &Leasing) -> StdDuration {
    StdDuration::from_millis((leasing.lease.num_milliseconds() / 3).max(500) as u64)
}

/// Runs one attempt while renewing the lease; `None` when the lease was lost.
async fn attempt_with_lease(
    store: &Store,
    s: &Schedule,
    held: &mut Held,
    leasing: &Leasing,
) -> Result<Option<Attempt>> {
    let record = held.record.clone();
    let work = attempt(store, s, &record);
    tokio::pin!(work);
    let mut every = tokio::time::interval(renew_every(leasing));
    every.tick().await;
    loop {
        tokio::select! {
            done = &mut work => return Ok(Some(done)),
            _ = every.tick() => {
                match ticks::renew(store, held, leasing.lease).await? {
                    Ok(()) => {}
                    Err(Stop::Lost) => {
                        tracing::warn!(tick = %held.record.tick, "lease lost to another daemon; stopping");
                        return Ok(None);
                    }
                    Err(Stop::Cancelled) => {
                        return Ok(Some(Attempt {
                            state: TickState::Interrupted,
                            run: Some(ticks::run_name(&s.id, held.record.scheduled)),
                            reason: Some("replaced by a newer tick (overlap: replace)".into()),
                        }));
                    }
                }
            }
        }
    }
}

/// Compiles and runs (or submits) the pipeline for the tick.
async fn attempt(store: &Store, s: &Schedule, r: &TickRecord) -> Attempt {
    let run = ticks::run_name(&s.id, r.scheduled);
    let failed = |reason: String| Attempt {
        state: TickState::Failed,
        run: Some(run.clone()),
        reason: Some(reason),
    };
    let spec = match litehouse_pipeline::definition::read(&s.pipeline)
        .and_then(|f| litehouse_pipeline::check(&f, &BTreeMap::new()))
    {
        Ok(plan) => litehouse_pipeline::compile(&plan),
        Err(e) => return failed(format!("pipeline: {e}")),
    };
    if s.target != "local" {
        return submit(s, &spec, r, run).await;
    }
    let exists = store
        .etag(&litehouse_pipeline::run::record::record_key(
            &spec.pipeline_info.name,
            &run,
        ))
        .await;
    let options = RunOptions {
        params: r.params.clone(),
        run: Some(run.clone()),
        ..RunOptions::default()
    };
    let options = match exists {
        Ok(Some(_)) => {
            // An earlier holder started this run: continue it.
            match litehouse_pipeline::run::record::load(store, &spec.pipeline_info.name, &run).await
            {
                Ok(rec) if rec.state == RunState::Succeeded || rec.state == RunState::Gated => {
                    return outcome(rec.state, run, rec.reason);
                }
                _ => RunOptions {
                    run: None,
                    resume: Some(run.clone()),
                    ..options
                },
            }
        }
        Ok(None) => options,
        Err(e) => return failed(e.to_string()),
    };
    let quiet: litehouse_pipeline::run::Progress = Arc::new(|_| {});
    match litehouse_pipeline::run(store, &spec, &options, quiet).await {
        Ok(rec) => outcome(rec.state, run, rec.reason),
        Err(e) => failed(e.to_string()),
    }
}

fn outcome(state: RunState, run: String, reason: Option<String>) -> Attempt {
    Attempt {
        state: match state {
            RunState::Succeeded => TickState::Succeeded,
            RunState::Gated => TickState::Gated,
            RunState::Failed | RunState::Running => TickState::Failed,
        },
        run: Some(run),
        reason,
    }
}

async fn submit(
    s: &Schedule,
    spec: &litehouse_pipeline::PipelineSpec,
    r: &TickRecord,
    run: String,
) -> Attempt {
    use litehouse_pipeline::submit::{self, Submission, Target};
    let failed = |reason: String| Attempt {
        state: TickState::Failed,
        run: None,
        reason: Some(reason),
    };
    let target = match Target::parse(
        &s.target,
        std::env::var("LITEHOUSE_SUBMIT_API").ok().as_deref(),
    ) {
        Ok(t) => t,
        Err(e) => return failed(e.to_string()),
    };
    let token = match (&target, std::env::var("LITEHOUSE_SUBMIT_TOKEN").ok()) {
        (_, Some(t)) => Some(t),
        (Target::Vertex { .. }, None) => {
            match litehouse_pipeline::google_auth::access_token(&reqwest_client()).await {
                Ok(t) => Some(t),
                Err(e) => return failed(e.to_string()),
            }
        }
        (Target::Kfp { .. }, None) => None,
    };
    let submission = Submission {
        display_name: run.clone(),
        params: r.params.clone(),
        pipeline_root: s.pipeline_root.clone(),
        service_account: s.service_account.clone(),
        experiment: None,
        labels: [("schedule".to_string(), s.id.to_lowercase())].into(),
        // The tick's run name: a redelivered tick is refused by Vertex AI as a duplicate.
        job_id: Some(vertex_job_id(&run)),
    };
    match submit::submit(&target, spec, &submission, token.as_deref()).await {
        Ok(done) => Attempt {
            state: TickState::Succeeded,
            run: Some(if done.id.is_empty() { run } else { done.id }),
            reason: Some(format!("submitted to {}", done.url)),
        },
        Err(e) => failed(e.to_string()),
    }
}

/// A run name as a Vertex AI job id: lowercase letters, digits and '-', starting with a letter.
fn vertex_job_id(run: &str) -> String {
    let id: String = run
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let id = if id.starts_with(|c: char| c.is_ascii_lowercase()) {
        id
    } else {
        format!("t-{id}")
    };
    id.chars().take(128).collect()
}

fn reqwest_client() -> litehouse_pipeline::submit::HttpClient {
    litehouse_pipeline::submit::HttpClient::new()
}

#[cfg(test)]
mod tests {
    use super::vertex_job_id;

    #[test]
    fn run_names_become_vertex_job_ids() {
        assert_eq!(
            vertex_job_id("retrain_mnist-20261204t030000z"),
            "retrain-mnist-20261204t030000z"
        );
        assert_eq!(vertex_job_id("2026-nightly"), "t-2026-nightly");
        assert_eq!(vertex_job_id(&"a".repeat(200)).len(), 128);
    }
}
