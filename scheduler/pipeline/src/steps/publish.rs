//! register and deploy: the candidate that passed the gate becomes the next registry version
//! (with its figures, lineage and the data schema), then champion or challenger.

use std::collections::BTreeMap;

use litehouse_registry::{Lineage, UploadRequest};
use litehouse_store::Condition;
use litehouse_train::job::{CONFIG_FILE, METRICS_FILE};

use super::evaluate::Evaluation;
use super::schema::{schema_key, SCHEMA_FILE};
use super::StepArgs;
use crate::error::{PipelineError, Result};

/// register: uploads the model; an identical model already registered keeps its version.
pub async fn register(a: &StepArgs) -> Result<Vec<String>> {
    let (file, dir) = a.model_input("model")?;
    let name = a.text("name");
    let bytes = std::fs::read(&file).map_err(|e| PipelineError::io(file.display(), e))?;
    // A bare .tflite (a command step's) has no figures or serving config beside it.
    let companion = |f: &str| dir.as_ref().map(|d| d.join(f));
    let sha = super::dataset::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let registry = a.registry().await?;
    let mut log = Vec::new();
    let existing = match registry.versions(&name).await {
        Ok(v) => v.into_iter().find(|m| m.sha256 == sha),
        Err(litehouse_registry::RegistryError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let version = if let Some(m) = existing {
        log.push(format!(
            "{name} v{} already holds this model (sha256 {sha}); not registered again",
            m.version
        ));
        m.version
    } else {
        let report: Option<serde_json::Value> =
            companion(METRICS_FILE).and_then(|p| super::read_json(&p).ok());
        let mut metrics = BTreeMap::new();
        if let Some(m) = a.artifact("metrics") {
            let e: Evaluation = super::read_json(&m.join(super::evaluate::METRICS_FILE))?;
            metrics = e.candidate;
        } else if let Some(test) = report.as_ref().and_then(|r| r.get("test")) {
            if let Ok(m) = serde_json::from_value::<litehouse_train::Metrics>(test.clone()) {
                metrics = m.flat();
            }
        }
        let mut params = BTreeMap::new();
        if let Some(serde_json::Value::Object(o)) = report.as_ref().and_then(|r| r.get("options")) {
            params.extend(o.clone());
        }
        for key in ["quantize", "io", "task"] {
            if let Some(v) = report.as_ref().and_then(|r| r.get(key)) {
                params.insert(key.into(), v.clone());
            }
        }
        let serving = match companion(CONFIG_FILE).map(std::fs::read) {
            Some(Ok(b)) => Some(
                serde_json::from_slice(&b)
                    .map_err(|e| PipelineError::step("register", format!("{CONFIG_FILE}: {e}")))?,
            ),
            _ => None,
        };
        let data_hash = Some(a.text("data_hash")).filter(|s| !s.is_empty());
        let request = UploadRequest {
            name: name.clone(),
            description: format!("registered by {}", a.actor()),
            metrics,
            labels: [("pipeline".to_string(), a.pipeline.clone())].into(),
            lineage: Lineage {
                source_run: Some(a.run.clone()),
                data_hash,
                params,
                source_uri: Some(a.text("data")).filter(|s| !s.is_empty()),
            },
            serving,
        };
        let m = registry.upload(bytes, request).await?;
        log.push(format!(
            "registered {name} v{} (sha256 {})",
            m.version, m.sha256
        ));
        m.version
    };
    if let Some(s) = a.artifact("schema") {
        let body = std::fs::read(s.join(SCHEMA_FILE))
            .map_err(|e| PipelineError::io(s.join(SCHEMA_FILE).display(), e))?;
        match registry
            .store()
            .put(&schema_key(&name), body, Condition::IfAbsent)
            .await
        {
            Ok(_) => log.push(format!("stored the data schema of '{name}'")),
            Err(e) if e.is_precondition_failed() => {}
            Err(e) => return Err(e.into()),
        }
    }
    a.write_param("version", &version.into())?;
    Ok(log)
}

/// deploy: champion or challenger on the endpoint.
pub async fn deploy(a: &StepArgs) -> Result<Vec<String>> {
    let name = a.text("name");
    let version = a.count("version")? as u64;
    let endpoint = match a.text("endpoint") {
        e if e.is_empty() => name.clone(),
        e => e,
    };
    let traffic = u32::try_from(a.count("traffic")?).map_err(|_| a.bad("traffic", "too large"))?;
    let registry = a.registry().await?;
    let moved =
        crate::roles::deploy(&registry, &name, version, &endpoint, traffic, &a.actor()).await?;
    a.write_param("role", &moved.role.clone().into())?;
    a.write_param("deployed_model", &moved.deployed_model.clone().into())?;
    Ok(vec![moved.message])
}
