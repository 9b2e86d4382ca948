//! `litehouse pipeline submit`: a compiled spec (or a pipeline file, compiled on the way) posted
//! to Kubeflow Pipelines or Vertex AI Pipelines.

use std::path::PathBuf;

use anyhow::Context;
use litehouse_pipeline::submit::{self, Submission, Target};

use crate::pipeline_cmd::say;
use crate::registry_args::{parse_pairs, print_json};

/// Arguments of `pipeline submit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A compiled spec (.json) or a pipeline file.
    file: PathBuf,
    /// kfp://HOST[:PORT], kfps://HOST[:PORT] or vertex://PROJECT/LOCATION.
    #[arg(long)]
    to: String,
    /// Set a parameter for this run: --param data=gs://bucket/new/ (repeat).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// The run's display name (default: the pipeline's name and the time).
    #[arg(long)]
    name: Option<String>,
    /// Where the steps write artifacts (gs://... on Vertex AI, required there).
    #[arg(long)]
    pipeline_root: Option<String>,
    /// The service account the steps run as.
    #[arg(long)]
    service_account: Option<String>,
    /// KFP experiment id.
    #[arg(long)]
    experiment: Option<String>,
    /// Vertex AI label KEY=VALUE (repeat).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Bearer token (KFP behind an auth proxy; Vertex AI: default from Application Default
    /// Credentials).
    #[arg(long, env = "LITEHOUSE_SUBMIT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Vertex AI job id (pipelineJobId): submitting the same id again starts nothing new.
    #[arg(long)]
    job_id: Option<String>,
    /// Override the API's base URL (a private endpoint).
    #[arg(long)]
    api: Option<String>,
}

pub async fn run(a: Args, json: bool) -> anyhow::Result<()> {
    let target = Target::parse(&a.to, a.api.as_deref())?;
    let spec = crate::pipeline_cmd::load_spec(&a.file, &Default::default())?;
    let display_name = a.name.clone().unwrap_or_else(|| {
        format!(
            "{}-{}",
            spec.pipeline_info.name,
            chrono::Utc::now().format("%Y%m%d-%H%M%S")
        )
    });
    let submission = Submission {
        display_name,
        params: parse_pairs("--param", &a.params, |v| Ok(v.to_string()))?,
        pipeline_root: a.pipeline_root.clone(),
        service_account: a.service_account.clone(),
        experiment: a.experiment.clone(),
        labels: parse_pairs("--label", &a.labels, |v| Ok(v.to_string()))?,
        job_id: a.job_id.clone(),
    };
    let token = match (&a.token, &target) {
        (Some(t), _) => Some(t.clone()),
        (None, Target::Vertex { .. }) => Some(
            litehouse_pipeline::google_auth::access_token(&reqwest::Client::new())
                .await
                .context("authenticating to Vertex AI")?,
        ),
        (None, Target::Kfp { .. }) => None,
    };
    let done = submit::submit(&target, &spec, &submission, token.as_deref()).await?;
    if json {
        return print_json(&done);
    }
    if done.response.get("duplicate") == Some(&serde_json::Value::Bool(true)) {
        say!("already submitted: {} exists; nothing new started", done.id);
        return Ok(());
    }
    say!("submitted {} to {}", submission.display_name, done.url);
    if !done.id.is_empty() {
        say!("id: {}", done.id);
    }
    Ok(())
}
