//! The IR's `{{$...}}` placeholders in an executor's command line, replaced as a KFP launcher
//! replaces them: parameter values as text, artifact paths as local paths, output parameters
//! as the files the program writes them to.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::types::value_text;

/// What a task's placeholders stand for.
#[derive(Debug, Default, Clone)]
pub struct Bindings {
    /// Input parameters.
    pub parameters: BTreeMap<String, Value>,
    /// Input artifacts' local paths (unset optional ones are absent).
    pub input_artifacts: BTreeMap<String, PathBuf>,
    /// Input artifacts' store URIs.
    pub input_uris: BTreeMap<String, String>,
    /// Output artifacts' local paths.
    pub output_artifacts: BTreeMap<String, PathBuf>,
    /// Output artifacts' store URIs.
    pub output_uris: BTreeMap<String, String>,
    /// Output parameters' files.
    pub output_files: BTreeMap<String, PathBuf>,
    /// The run's name.
    pub job_name: String,
    /// The task's name.
    pub task_name: String,
}

/// Replaces every placeholder in `arg`; an unknown one, or one naming nothing, is an error
/// quoting it.
pub fn substitute(arg: &str, b: &Bindings) -> Result<String, String> {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(start) = rest.find("{{$") {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("unclosed placeholder in {arg:?}"))?;
        let inner = &after[3..end];
        out.push_str(&resolve(inner, b).map_err(|e| format!("{{{{${inner}}}}}: {e}"))?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn resolve(inner: &str, b: &Bindings) -> Result<String, String> {
    match inner {
        ".pipeline_job_name" => return Ok(b.job_name.clone()),
        ".pipeline_task_name" => return Ok(b.task_name.clone()),
        _ => {}
    }
    let (scope, name, field) = split(inner).ok_or("not a placeholder this runner knows")?;
    let path = |p: &PathBuf| p.to_string_lossy().into_owned();
    let missing = |what: &str| format!("the task has no {what} '{name}'");
    match (scope, field) {
        ("inputs.parameters", "") => b
            .parameters
            .get(name)
            .map(value_text)
            .ok_or_else(|| missing("input parameter")),
        // An optional artifact left unbound stands for nothing.
        ("inputs.artifacts", ".path") => {
            Ok(b.input_artifacts.get(name).map(path).unwrap_or_default())
        }
        ("inputs.artifacts", ".uri") => Ok(b.input_uris.get(name).cloned().unwrap_or_default()),
        ("outputs.artifacts", ".path") => b
            .output_artifacts
            .get(name)
            .map(path)
            .ok_or_else(|| missing("output artifact")),
        ("outputs.artifacts", ".uri") => b
            .output_uris
            .get(name)
            .cloned()
            .ok_or_else(|| missing("output artifact")),
        ("outputs.parameters", ".output_file") => b
            .output_files
            .get(name)
            .map(path)
            .ok_or_else(|| missing("output parameter")),
        _ => Err("not a placeholder this runner knows".into()),
    }
}

/// `.inputs.parameters['x'].path` -> (`inputs.parameters`, `x`, `.path`).
fn split(inner: &str) -> Option<(&str, &str, &str)> {
    let body = inner.strip_prefix('.')?;
    let (scope, tail) = body.split_once("['")?;
    let (name, field) = tail.split_once("']")?;
    Some((scope, name, field))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir;

    #[test]
    fn placeholders_resolve_and_unknown_ones_are_named() {
        let mut b = Bindings {
            job_name: "r1".into(),
            ..Bindings::default()
        };
        b.parameters.insert("epochs".into(), Value::from(3));
        b.parameters.insert("name".into(), Value::from("mnist"));
        b.output_artifacts
            .insert("model".into(), PathBuf::from("/w/train/model"));
        b.output_files
            .insert("score".into(), PathBuf::from("/w/train/score"));
        let got = |s: &str| substitute(s, &b);
        assert_eq!(got(&ir::input_parameter("epochs")), Ok("3".into()));
        assert_eq!(got(&ir::input_parameter("name")), Ok("mnist".into()));
        assert_eq!(
            got(&format!("--out={}", ir::output_artifact_path("model"))),
            Ok("--out=/w/train/model".into())
        );
        assert_eq!(
            got(&ir::output_parameter_file("score")),
            Ok("/w/train/score".into())
        );
        assert_eq!(got(ir::JOB_NAME), Ok("r1".into()));
        assert_eq!(got(&ir::input_artifact_path("schema")), Ok(String::new()));
        assert!(got(&ir::input_parameter("lr"))
            .unwrap_err()
            .contains("no input parameter 'lr'"));
        assert!(got("{{$.inputs.nonsense}}")
            .unwrap_err()
            .contains("not a placeholder"));
        assert!(got("{{$.inputs").unwrap_err().contains("unclosed"));
    }
}
