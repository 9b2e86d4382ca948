//! Submitting a compiled spec to a managed runner: Kubeflow Pipelines' v2beta1 runs API
//! (`POST /apis/v2beta1/runs` with a `V2beta1Run`) or Vertex AI Pipelines
//! (`POST /v1/projects/{p}/locations/{l}/pipelineJobs` with a `PipelineJob`). The bodies are
//! what the official clients send; parameters are typed by the spec's root definitions.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::error::{PipelineError, Result};

use crate::ir::PipelineSpec;
use crate::types::ValueType;
/// The HTTP client submissions and token requests go through.
pub use reqwest::Client as HttpClient;

/// Where a run goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A KFP API server: `kfp://HOST[:PORT]` (http) or `kfps://HOST[:PORT]` (https).
    Kfp {
        /// `http://host:port`.
        base: String,
    },
    /// Vertex AI Pipelines: `vertex://PROJECT/LOCATION`.
    Vertex {
        /// The project id.
        project: String,
        /// The region (`us-central1`).
        location: String,
        /// `https://{location}-aiplatform.googleapis.com`, unless overridden.
        base: String,
    },
}

impl Target {
    /// Parses `--to`; `api` overrides the API's base URL (a private endpoint, a test server).
    pub fn parse(to: &str, api: Option<&str>) -> Result<Target> {
        let bad = |why: &str| {
            PipelineError::Invalid(format!(
                "--to {to}: {why} (expected kfp://HOST[:PORT], kfps://HOST[:PORT] or vertex://PROJECT/LOCATION)"
            ))
        };
        let api = api.map(|a| a.trim_end_matches('/').to_string());
        if let Some((scheme, rest)) = to
            .split_once("://")
            .filter(|(s, _)| *s == "kfp" || *s == "kfps")
        {
            let host = rest.trim_end_matches('/');
            if host.is_empty() || host.contains('/') {
                return Err(bad("the KFP address is a host and optional port"));
            }
            let tls = if scheme == "kfps" { "https" } else { "http" };
            return Ok(Target::Kfp {
                base: api.unwrap_or_else(|| format!("{tls}://{host}")),
            });
        }
        if let Some(rest) = to.strip_prefix("vertex://") {
            let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
            let [project, location] = parts.as_slice() else {
                return Err(bad("a Vertex AI target names a project and a location"));
            };
            let ok = |s: &str| {
                !s.is_empty()
                    && s.chars().all(|c| {
                        c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' || c == ':'
                    })
            };
            if !ok(project) || !ok(location) {
                return Err(bad("project and location are letters, digits and '-'"));
            }
            return Ok(Target::Vertex {
                project: project.to_string(),
                location: location.to_string(),
                base: api
                    .unwrap_or_else(|| format!("https://{location}-aiplatform.googleapis.com")),
            });
        }
        Err(bad("unknown scheme"))
    }

    /// The URL the run is posted to.
    pub fn url(&self) -> String {
        match self {
            Target::Kfp { base } => format!("{base}/apis/v2beta1/runs"),
            Target::Vertex {
                project,
                location,
                base,
            } => format!("{base}/v1/projects/{project}/locations/{location}/pipelineJobs"),
        }
    }
}

/// What to submit besides the spec.
#[derive(Debug, Clone, Default)]
pub struct Submission {
    /// The run's display name.
    pub display_name: String,
    /// Parameter values as text (`--param k=v`), typed by the spec.
    pub params: BTreeMap<String, String>,
    /// Where the runner writes artifacts (`gs://...` on Vertex AI, `minio://...` or `s3://...`
    /// on KFP); required by Vertex AI.
    pub pipeline_root: Option<String>,
    /// The identity the steps run as.
    pub service_account: Option<String>,
    /// KFP experiment id.
    pub experiment: Option<String>,
    /// Vertex AI labels.
    pub labels: BTreeMap<String, String>,
    /// Vertex AI's `pipelineJobId`: a job id the server refuses twice, so a retried or
    /// redelivered submission starts nothing new (lowercase letters, digits, '-').
    pub job_id: Option<String>,
}

/// The parameter values, typed by the spec's root inputs.
pub fn typed_params(
    spec: &PipelineSpec,
    params: &BTreeMap<String, String>,
) -> Result<Map<String, Value>> {
    let defs = &spec.root.input_definitions.parameters;
    let mut out = Map::new();
    for (name, text) in params {
        let def = defs.get(name).ok_or_else(|| {
            PipelineError::Invalid(format!(
                "--param {name}: the pipeline has no parameter '{name}' (parameters: {})",
                defs.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        let ty = ValueType::from_ir(&def.parameter_type).unwrap_or(ValueType::String);
        let v = ty.parse(text).ok_or_else(|| {
            PipelineError::Invalid(format!(
                "--param {name}={text}: expected a {} value",
                ty.name()
            ))
        })?;
        out.insert(name.clone(), v);
    }
    if let Some((name, _)) = defs
        .iter()
        .find(|(n, d)| d.default_value.is_none() && !d.is_optional && !out.contains_key(*n))
    {
        return Err(PipelineError::Invalid(format!(
            "parameter '{name}' has no default: pass --param {name}=VALUE"
        )));
    }
    Ok(out)
}

/// The `V2beta1Run` KFP's client posts.
pub fn kfp_body(spec: &PipelineSpec, s: &Submission) -> Result<Value> {
    let mut runtime = Map::new();
    runtime.insert(
        "parameters".into(),
        Value::Object(typed_params(spec, &s.params)?),
    );
    if let Some(root) = &s.pipeline_root {
        runtime.insert("pipeline_root".into(), root.clone().into());
    }
    let mut body = Map::new();
    body.insert("display_name".into(), s.display_name.clone().into());
    body.insert("pipeline_spec".into(), spec_value(spec)?);
    body.insert("runtime_config".into(), Value::Object(runtime));
    if let Some(e) = &s.experiment {
        body.insert("experiment_id".into(), e.clone().into());
    }
    if let Some(a) = &s.service_account {
        body.insert("service_account".into(), a.clone().into());
    }
    Ok(Value::Object(body))
}

/// The `PipelineJob` Vertex AI's `pipelineJobs.create` takes.
pub fn vertex_body(spec: &PipelineSpec, s: &Submission) -> Result<Value> {
    let Some(root) = &s.pipeline_root else {
        return Err(PipelineError::Invalid(
            "Vertex AI needs --pipeline-root gs://BUCKET/PATH (where the steps' artifacts go)"
                .into(),
        ));
    };
    let mut body = json!({
        "displayName": s.display_name,
        "pipelineSpec": spec_value(spec)?,
        "runtimeConfig": {
            "gcsOutputDirectory": root,
            "parameterValues": typed_params(spec, &s.params)?,
        },
    });
    if let Some(a) = &s.service_account {
        body["serviceAccount"] = a.clone().into();
    }
    if !s.labels.is_empty() {
        body["labels"] = json!(s.labels);
    }
    Ok(body)
}

fn spec_value(spec: &PipelineSpec) -> Result<Value> {
    serde_json::to_value(spec).map_err(|e| PipelineError::Spec(format!("encoding: {e}")))
}

/// What the server answered.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Submitted {
    /// The run's id (KFP `run_id`, Vertex AI job `name`).
    pub id: String,
    /// Where it was posted.
    pub url: String,
    /// The server's whole answer.
    pub response: Value,
}

/// Posts the run; `token` is sent as a bearer token.
pub async fn submit(
    target: &Target,
    spec: &PipelineSpec,
    s: &Submission,
    token: Option<&str>,
) -> Result<Submitted> {
    let body = match target {
        Target::Kfp { .. } => kfp_body(spec, s)?,
        Target::Vertex { .. } => vertex_body(spec, s)?,
    };
    let mut url = target.url();
    if let (Target::Vertex { .. }, Some(id)) = (target, &s.job_id) {
        let ok = id.len() <= 128
            && id.starts_with(|c: char| c.is_ascii_lowercase())
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            return Err(PipelineError::Invalid(format!(
                "job id {id:?}: Vertex AI takes 1 to 128 lowercase letters, digits and '-', starting with a letter"
            )));
        }
        url = format!("{url}?pipelineJobId={id}");
    }
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| PipelineError::Invalid(format!("HTTP client: {e}")))?;
    let mut request = client.post(&url).json(&body);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request
        .send()
        .await
        .map_err(|e| PipelineError::Invalid(format!("POST {url}: {e}")))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| PipelineError::Invalid(format!("POST {url}: reading the answer: {e}")))?;
    if status == reqwest::StatusCode::CONFLICT && s.job_id.is_some() {
        // ALREADY_EXISTS: this job was submitted before; nothing new was started.
        let id = match target {
            Target::Vertex {
                project, location, ..
            } => format!(
                "projects/{project}/locations/{location}/pipelineJobs/{}",
                s.job_id.as_deref().unwrap_or_default()
            ),
            Target::Kfp { .. } => String::new(),
        };
        return Ok(Submitted {
            id,
            url,
            response: serde_json::json!({"duplicate": true, "answer": text}),
        });
    }
    if !status.is_success() {
        return Err(PipelineError::Invalid(format!(
            "POST {url}: {status}: {}",
            text.chars().take(600).collect::<String>()
        )));
    }
    let response: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    let id = ["run_id", "name"]
        .iter()
        .find_map(|k| response.get(*k).and_then(Value::as_str))
        .unwrap_or_default()
        .to_string();
    Ok(Submitted { id, url, response })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_bad_ones_say_what_is_expected() {
        assert_eq!(
            Target::parse("kfp://localhost:8888", None)
                .map(|t| t.url())
                .ok(),
            Some("http://localhost:8888/apis/v2beta1/runs".into())
        );
        assert_eq!(
            Target::parse("kfps://kfp.example", None)
                .map(|t| t.url())
                .ok(),
            Some("https://kfp.example/apis/v2beta1/runs".into())
        );
        assert_eq!(
            Target::parse("vertex://my-proj/us-central1", Some("http://127.0.0.1:9/"))
                .map(|t| t.url())
                .ok(),
            Some(
                "http://127.0.0.1:9/v1/projects/my-proj/locations/us-central1/pipelineJobs".into()
            )
        );
        for bad in [
            "kfp://",
            "vertex://p",
            "vertex://p/l/x",
            "http://x",
            "kfp://h/path",
        ] {
            let e = Target::parse(bad, None).unwrap_err().to_string();
            assert!(e.contains("expected kfp://HOST"), "{bad}: {e}");
        }
    }
}
