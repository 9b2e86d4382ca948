//! The pipeline file (YAML or TOML), as written by people:
//!
//! ```yaml
//! name: mnist-retrain
//! params:
//!   data: { type: string, default: target/training-data/mnist }
//! steps:
//!   ingest: { uses: ingest, with: { data: "{{ params.data }}" } }
//!   train:  { uses: train,  with: { dataset: "{{ steps.ingest.outputs.dataset }}" } }
//! ```
//!
//! A value that is exactly `{{ params.NAME }}` or `{{ steps.STEP.outputs.OUTPUT }}` is a
//! reference; anything else is a constant.

use std::path::Path;

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{PipelineError, Result};
use crate::types::{ArtifactType, ValueType};

/// A pipeline file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    /// Name: the KFP pipeline name, and the store prefix `pipelines/{name}/`.
    pub name: String,
    /// What it does.
    #[serde(default)]
    pub description: String,
    /// Container image that holds the `litehouse` binary, for KFP and Vertex AI.
    #[serde(default)]
    pub image: Option<String>,
    /// Typed parameters, settable with `--param k=v`.
    #[serde(default)]
    pub params: IndexMap<String, ParamDecl>,
    /// The steps, by name.
    pub steps: IndexMap<String, StepDecl>,
}

/// A declared parameter.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamDecl {
    /// Its type.
    #[serde(rename = "type")]
    pub ty: ValueType,
    /// Its value when not set; without one the parameter must be given.
    #[serde(default)]
    pub default: Option<Value>,
    /// What it means.
    #[serde(default)]
    pub description: String,
}

/// A step.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDecl {
    /// A built-in step (`ingest`, `validate`, `train`, `evaluate`, `gate`, `register`,
    /// `deploy`) or `command`.
    pub uses: String,
    /// Inputs: constants or references.
    #[serde(default)]
    pub with: IndexMap<String, Value>,
    /// `command` steps: the program and its arguments; `{{ inputs.NAME }}` and
    /// `{{ outputs.NAME }}` stand for input values or paths and output paths.
    #[serde(default)]
    pub command: Vec<String>,
    /// `command` steps: the artifacts the program writes.
    #[serde(default)]
    pub outputs: IndexMap<String, ArtifactType>,
    /// Steps that must finish first, besides those whose outputs this one reads.
    #[serde(default)]
    pub after: Vec<String>,
    /// Run only when this boolean output is true, e.g. `{{ steps.gate.outputs.passed }}`.
    #[serde(default)]
    pub when: Option<String>,
    /// Turn caching off (or on, for a command step known to be deterministic).
    #[serde(default)]
    pub cache: Option<bool>,
}

/// A reference in a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `{{ params.NAME }}`.
    Param(String),
    /// `{{ steps.STEP.outputs.NAME }}`.
    Output {
        /// The producing step.
        step: String,
        /// Its output.
        output: String,
    },
    /// `{{ inputs.NAME }}` (command lines only).
    Input(String),
    /// `{{ outputs.NAME }}` (command lines only).
    OwnOutput(String),
}

/// Parses `{{ ... }}` when `text` is exactly one reference. `Ok(None)`: no braces at all, a
/// constant. A malformed or partial reference is an error.
pub fn reference(text: &str) -> std::result::Result<Option<Reference>, String> {
    let t = text.trim();
    if !t.contains("{{") && !t.contains("}}") {
        return Ok(None);
    }
    let inner = t
        .strip_prefix("{{")
        .and_then(|r| r.strip_suffix("}}"))
        .filter(|inner| !inner.contains("{{") && !inner.contains("}}"))
        .ok_or_else(|| {
            format!(
                "{text:?}: a reference must be the whole value, e.g. \"{{{{ params.data }}}}\" \
                 (pipelines do not splice references into text)"
            )
        })?
        .trim();
    let parts: Vec<&str> = inner.split('.').map(str::trim).collect();
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    match parts.as_slice() {
        ["params", name] if ok(name) => Ok(Some(Reference::Param(name.to_string()))),
        ["steps", step, "outputs", output] if ok(step) && ok(output) => {
            Ok(Some(Reference::Output {
                step: step.to_string(),
                output: output.to_string(),
            }))
        }
        ["inputs", name] if ok(name) => Ok(Some(Reference::Input(name.to_string()))),
        ["outputs", name] if ok(name) => Ok(Some(Reference::OwnOutput(name.to_string()))),
        _ => Err(format!(
            "{text:?}: expected {{{{ params.NAME }}}} or {{{{ steps.STEP.outputs.NAME }}}}"
        )),
    }
}

/// Reads a pipeline file; YAML unless the name ends in `.toml`.
pub fn read(path: &Path) -> Result<PipelineFile> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| PipelineError::File {
        file: file.clone(),
        message: format!("cannot read: {e}"),
    })?;
    parse(&text, &file, path.extension().is_some_and(|e| e == "toml"))
}

/// Parses pipeline text; `file` names it in errors.
pub fn parse(text: &str, file: &str, toml_syntax: bool) -> Result<PipelineFile> {
    let parsed = if toml_syntax {
        toml::from_str::<PipelineFile>(text).map_err(|e| e.to_string())
    } else {
        serde_yaml_ng::from_str::<PipelineFile>(text).map_err(|e| e.to_string())
    };
    parsed.map_err(|message| PipelineError::File {
        file: file.to_string(),
        message: message.trim_end().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_whole_values() {
        assert_eq!(
            reference("{{ params.data }}"),
            Ok(Some(Reference::Param("data".into())))
        );
        assert_eq!(
            reference("{{steps.train.outputs.model}}"),
            Ok(Some(Reference::Output {
                step: "train".into(),
                output: "model".into()
            }))
        );
        assert_eq!(reference("plain text"), Ok(None));
        assert!(reference("s3://b/{{ params.day }}/")
            .unwrap_err()
            .contains("must be the whole value"));
        assert!(reference("{{ param.data }}")
            .unwrap_err()
            .contains("expected"));
    }

    #[test]
    fn yaml_and_toml_read_the_same() {
        let yaml = "name: p\nparams:\n  n: { type: integer, default: 3 }\nsteps:\n  a: { uses: ingest, with: { data: x } }\n";
        let toml = "name = \"p\"\n[params.n]\ntype = \"integer\"\ndefault = 3\n[steps.a]\nuses = \"ingest\"\nwith = { data = \"x\" }\n";
        assert_eq!(
            parse(yaml, "p.yaml", false).expect("yaml"),
            parse(toml, "p.toml", true).expect("toml")
        );
    }

    #[test]
    fn unknown_fields_are_named() {
        let err = parse("name: p\nstpes: {}\n", "p.yaml", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("p.yaml") && err.contains("stpes"), "{err}");
    }
}
