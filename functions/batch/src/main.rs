//! `batch`: one step of a batch prediction job per invocation (lambda_runtime), for a Step
//! Functions Distributed Map that fans the shards out (infra/batch-state-machine.asl.json):
//!
//! - `{"plan": <job spec>}` creates (or finds) the job and lists its shards:
//!   `{"job": "<output dir URI>", "shards": [{"job": ..., "shard": 0}, ...]}` (only the pending
//!   ones, so a re-run state machine resumes);
//! - `{"job": "<output dir URI>", "shard": K}` runs shard K and commits it (create-only, so a
//!   redelivered or retried invocation writes nothing twice); `"job"` may also be the job spec
//!   itself, which finds (or plans) the job by its spec;
//! - `{"finalize": "<output dir URI>"}` adds the shards up and writes the final job record.
//!
//! The model is loaded once per sandbox and reused while invocations run the same model.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use lambda_runtime::{service_fn, Error, LambdaEvent};
use litehouse_predictor::batch::{self, model_ref, Buckets, JobSpec};
use litehouse_predictor::{ImageLimits, ServedModel};
use litehouse_telemetry::emf::Unit;
use serde::Deserialize;
use serde_json::{json, Value as Json};

/// What one invocation asks for.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Request {
    Plan { plan: JobSpec },
    Shard { job: JobRef, shard: usize },
    Finalize { finalize: String },
}

/// A job named by its output directory, or by its spec (found or created under its output).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum JobRef {
    Dir(String),
    Spec(Box<JobSpec>),
}

/// Built once per sandbox, outside the handler.
#[derive(Default)]
struct State {
    buckets: Buckets,
    /// The last model loaded, by sha256.
    model: Mutex<Option<(String, Arc<ServedModel>)>>,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    litehouse_telemetry::logging::init_lambda("info");
    let state = Arc::new(State::default());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Json>| {
        let state = state.clone();
        // Boxed: the handler's future is deep (S3 client, planning) and need not live inline.
        async move { Box::pin(handle(&state, event.payload)).await }
    }))
    .await
}

async fn handle(state: &State, payload: Json) -> Result<Json, Error> {
    let request: Request = serde_json::from_value(payload).map_err(|e| {
        format!(
            "expected {{\"plan\": <job spec>}}, {{\"job\": URI, \"shard\": N}} or {{\"finalize\": URI}}: {e}"
        )
    })?;
    match request {
        Request::Plan { plan } => {
            plan.validate()?;
            let (served, used) = model_ref::load(&plan.model, plan.store.as_deref()).await?;
            let job = batch::create_or_resume(&plan, &used, &state.buckets).await?;
            remember(state, Arc::new(served));
            let pending = job.pending().await?;
            let uri = job.record.output_directory.clone();
            tracing::info!(job = %uri, shards = job.plan.shards.len(), pending = pending.len(), "planned");
            Ok(json!({
                "job": uri,
                "shardCount": job.plan.shards.len(),
                "shards": pending.iter().map(|k| json!({"job": uri, "shard": k})).collect::<Vec<_>>(),
            }))
        }
        Request::Shard { job, shard } => {
            let job = match job {
                JobRef::Dir(uri) => batch::open_job(&uri).await?,
                JobRef::Spec(spec) => {
                    spec.validate()?;
                    let (served, used) =
                        model_ref::load(&spec.model, spec.store.as_deref()).await?;
                    remember(state, Arc::new(served));
                    batch::create_or_resume(&spec, &used, &state.buckets).await?
                }
            };
            let served = model_for(state, &job).await?;
            job.check_model(&served)?;
            let (buckets, handle) = (state.buckets.clone(), tokio::runtime::Handle::current());
            let lines = Arc::new(AtomicU64::new(0));
            let counted = lines.clone();
            let uri = job.record.output_directory.clone();
            let started = std::time::Instant::now();
            let committed = tokio::task::spawn_blocking(move || {
                let workers = batch::Workers {
                    served: &served,
                    buckets: &buckets,
                    limits: ImageLimits::default(),
                    lines_done: &counted,
                    handle: &handle,
                };
                job.run_shard(&workers, shard)
            })
            .await??;
            tracing::info!(job = %uri, shard, committed, "shard done");
            // One EMF line per shard: rows and time per job in CloudWatch.
            let rows = lines.load(std::sync::atomic::Ordering::Relaxed) as f64;
            litehouse_telemetry::emf::Event::new()
                .dimension("job", uri.clone())
                .metric("ShardRows", Unit::Count, rows)
                .metric(
                    "ShardMs",
                    Unit::Milliseconds,
                    started.elapsed().as_secs_f64() * 1e3,
                )
                .metric(
                    "ShardsCommitted",
                    Unit::Count,
                    f64::from(u8::from(committed)),
                )
                .property("shard", shard)
                .emit();
            Ok(json!({"job": uri, "shard": shard, "committed": committed}))
        }
        Request::Finalize { finalize } => {
            let mut job = batch::open_job(&finalize).await?;
            let record = job.finalize(None).await?;
            Ok(serde_json::to_value(record)?)
        }
    }
}

fn remember(state: &State, served: Arc<ServedModel>) {
    if let Ok(mut m) = state.model.lock() {
        *m = Some((served.model.info().sha256.clone(), served));
    }
}

/// The job's model: the one already loaded when the sha256 matches, else loaded now.
async fn model_for(state: &State, job: &batch::Job) -> Result<Arc<ServedModel>, Error> {
    let want = &job.record.model.sha256;
    if let Some((_, m)) = state
        .model
        .lock()
        .ok()
        .and_then(|m| m.clone())
        .filter(|(sha, _)| sha == want)
    {
        return Ok(m);
    }
    let spec = &job.record.spec;
    let (served, _) = model_ref::load(&spec.model, spec.store.as_deref()).await?;
    let served = Arc::new(served);
    remember(state, served.clone());
    Ok(served)
}
