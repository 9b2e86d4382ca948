//! `trigger`: runs one scheduled tick per invocation (lambda_runtime): the same claim, compile
//! and run (or submit) as `litehouse schedule daemon`, so a managed scheduler can replace the
//! daemon. Deliveries are at least once; the tick id (schedule + scheduled time) makes a
//! redelivery answer with the tick's record instead of running it again.
//!
//! Environment: `LITEHOUSE_SCHEDULES` (the schedule file, packaged with the function) and
//! `LITEHOUSE_STORE` (where ticks, runs and models live, e.g. `s3://bucket/litehouse`).
//! Events: an EventBridge Scheduled Event (rule `litehouse-{id}`), EventBridge Scheduler's
//! `{"schedule": ID, "scheduledTime": "<aws.scheduler.scheduled-time>"}`, or a Function URL /
//! API Gateway v2 request with that body or Cloud Scheduler's `X-CloudScheduler-*` headers.

use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use litehouse_cron::runner::{self, Leasing};
use litehouse_cron::ticks;
use litehouse_cron::{schedule, trigger, Schedule};
use litehouse_store::Store;
use serde_json::{json, Value as Json};

struct State {
    schedules: Vec<Schedule>,
    store: Store,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    litehouse_telemetry::logging::init_lambda("info");
    // Read once per sandbox; a bad file fails the init, which Lambda reports as such.
    let file = std::env::var("LITEHOUSE_SCHEDULES").unwrap_or_else(|_| "schedules.yaml".into());
    let schedules = schedule::read(std::path::Path::new(&file))?;
    let uri = std::env::var("LITEHOUSE_STORE")
        .map_err(|_| "LITEHOUSE_STORE is not set (e.g. s3://bucket/litehouse)")?;
    let store = Store::open(&uri).await?;
    let state = Arc::new(State { schedules, store });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Json>| {
        let state = state.clone();
        async move { Box::pin(handle(&state, event.payload)).await }
    }))
    .await
}

async fn handle(state: &State, payload: Json) -> Result<Json, Error> {
    let request = match trigger::parse(&payload) {
        Ok(r) => r,
        Err(e) if is_http(&payload) => return Ok(http(400, json!({"error": e}))),
        Err(e) => return Err(e.into()),
    };
    let Some(s) = state.schedules.iter().find(|s| s.id == request.schedule) else {
        let e = format!(
            "no schedule '{}' (schedules: {})",
            request.schedule,
            state
                .schedules
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return if request.http {
            Ok(http(404, json!({"error": e})))
        } else {
            Err(e.into())
        };
    };
    let leasing = Leasing::new(60);
    let source = format!("lambda ({})", request.source);
    let ran = runner::run_tick(&state.store, s, request.scheduled, &leasing, &source).await?;
    let (duplicate, record) = match ran {
        Some(r) => (false, Some(r)),
        None => {
            // Redelivered: someone holds or finished it. Answer with what is recorded.
            (
                true,
                ticks::get(&state.store, &s.id, request.scheduled).await?,
            )
        }
    };
    tracing::info!(tick = %ticks::tick_id(&s.id, request.scheduled), duplicate, state = ?record.as_ref().map(|r| r.state), "tick handled");
    // One EMF line per delivery: CloudWatch counts ticks per schedule and outcome.
    let outcome = record
        .as_ref()
        .and_then(|r| serde_json::to_value(r.state).ok())
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    litehouse_telemetry::emf::Event::new()
        .dimension("schedule", s.id.clone())
        .dimension("outcome", outcome)
        .metric("Ticks", litehouse_telemetry::emf::Unit::Count, 1.0)
        .metric(
            "DuplicateDeliveries",
            litehouse_telemetry::emf::Unit::Count,
            f64::from(u8::from(duplicate)),
        )
        .property("tick", ticks::tick_id(&s.id, request.scheduled))
        .emit();
    let body = json!({"duplicate": duplicate, "tick": record});
    Ok(if request.http { http(200, body) } else { body })
}

fn is_http(payload: &Json) -> bool {
    payload.get("version").and_then(Json::as_str) == Some("2.0")
        && payload.get("requestContext").is_some()
}

/// A Function URL / API Gateway v2 answer.
fn http(status: u16, body: Json) -> Json {
    json!({
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": body.to_string(),
        "isBase64Encoded": false,
    })
}
