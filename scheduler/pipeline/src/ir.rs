//! The Kubeflow Pipelines v2 IR (`PipelineSpec`, schema 2.1.0): the parts litehouse writes and
//! its local runner reads. Field names are the protobuf JSON names, so `kfp-pipeline-spec`'s
//! `json_format.ParseDict` reads what we write with unknown fields refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The IR version written.
pub const SCHEMA_VERSION: &str = "2.1.0";

/// A compiled pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineSpec {
    /// Name and description.
    pub pipeline_info: PipelineInfo,
    /// `2.1.0`.
    pub schema_version: String,
    /// What wrote it (`litehouse-0.1.0`).
    pub sdk_version: String,
    /// The root DAG and the pipeline's parameters.
    pub root: ComponentSpec,
    /// `comp-<task>` definitions.
    pub components: BTreeMap<String, ComponentSpec>,
    /// How each component runs.
    pub deployment_spec: DeploymentSpec,
}

/// `pipelineInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineInfo {
    /// The pipeline's name.
    pub name: String,
    /// What it does.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// A component: inputs, outputs, and either an executor or a DAG.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSpec {
    /// Inputs.
    #[serde(default, skip_serializing_if = "Definitions::is_empty")]
    pub input_definitions: Definitions,
    /// Outputs.
    #[serde(default, skip_serializing_if = "Definitions::is_empty")]
    pub output_definitions: Definitions,
    /// `exec-<task>` for a container component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_label: Option<String>,
    /// The tasks of the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dag: Option<Dag>,
}

/// Parameter and artifact definitions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Definitions {
    /// By name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, ParameterSpec>,
    /// By name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub artifacts: BTreeMap<String, ArtifactSpec>,
}

impl Definitions {
    /// No parameters and no artifacts.
    pub fn is_empty(&self) -> bool {
        self.parameters.is_empty() && self.artifacts.is_empty()
    }
}

/// A parameter definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParameterSpec {
    /// `STRING`, `NUMBER_INTEGER`, `NUMBER_DOUBLE`, `BOOLEAN`.
    pub parameter_type: String,
    /// Default value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<Value>,
    /// May be left unset.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_optional: bool,
    /// What it means.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// An artifact definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactSpec {
    /// Its type.
    pub artifact_type: ArtifactTypeSchema,
    /// May be left unset.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_optional: bool,
    /// What it holds.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// `artifactType`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactTypeSchema {
    /// `system.Dataset`, `system.Model`, ...
    pub schema_title: String,
    /// `0.0.1`.
    pub schema_version: String,
}

/// `dag`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dag {
    /// Tasks by name.
    pub tasks: BTreeMap<String, TaskSpec>,
}

/// One task of the DAG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSpec {
    /// `{name}`.
    pub task_info: TaskInfo,
    /// Which component.
    pub component_ref: ComponentRef,
    /// Input bindings.
    #[serde(default, skip_serializing_if = "TaskInputs::is_empty")]
    pub inputs: TaskInputs,
    /// Tasks that must finish first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependent_tasks: Vec<String>,
    /// Step caching.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caching_options: Option<CachingOptions>,
    /// A condition on inputs (the gate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_policy: Option<TriggerPolicy>,
}

/// `taskInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// The task's display name.
    pub name: String,
}

/// `componentRef`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentRef {
    /// `comp-<task>`.
    pub name: String,
}

/// `cachingOptions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachingOptions {
    /// Whether the task may reuse outputs of an identical earlier execution.
    #[serde(default)]
    pub enable_cache: bool,
}

/// `triggerPolicy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerPolicy {
    /// A CEL expression over the task's inputs.
    pub condition: String,
}

/// A task's input bindings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskInputs {
    /// Parameters by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, ParameterBinding>,
    /// Artifacts by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub artifacts: BTreeMap<String, ArtifactBinding>,
}

impl TaskInputs {
    /// No bindings.
    pub fn is_empty(&self) -> bool {
        self.parameters.is_empty() && self.artifacts.is_empty()
    }
}

/// Where a parameter input comes from (one of the three is set).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParameterBinding {
    /// A constant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_value: Option<RuntimeValue>,
    /// A pipeline parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_input_parameter: Option<String>,
    /// Another task's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_output_parameter: Option<TaskOutputParameter>,
}

/// `runtimeValue`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeValue {
    /// The value.
    pub constant: Value,
}

/// `taskOutputParameter`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOutputParameter {
    /// The producer.
    pub producer_task: String,
    /// Its output.
    pub output_parameter_key: String,
}

/// Where an artifact input comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactBinding {
    /// Another task's output.
    pub task_output_artifact: TaskOutputArtifact,
}

/// `taskOutputArtifact`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOutputArtifact {
    /// The producer.
    pub producer_task: String,
    /// Its output.
    pub output_artifact_key: String,
}

/// `deploymentSpec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeploymentSpec {
    /// `exec-<task>` -> executor.
    pub executors: BTreeMap<String, Executor>,
}

/// An executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Executor {
    /// The container that runs it.
    pub container: Container,
}

/// `container`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    /// Image.
    pub image: String,
    /// Entrypoint.
    pub command: Vec<String>,
    /// Arguments, with `{{$.inputs...}}` / `{{$.outputs...}}` placeholders.
    #[serde(default)]
    pub args: Vec<String>,
}

/// `{{$.inputs.parameters['name']}}`.
pub fn input_parameter(name: &str) -> String {
    format!("{{{{$.inputs.parameters['{name}']}}}}")
}

/// `{{$.inputs.artifacts['name'].path}}`.
pub fn input_artifact_path(name: &str) -> String {
    format!("{{{{$.inputs.artifacts['{name}'].path}}}}")
}

/// `{{$.outputs.artifacts['name'].path}}`.
pub fn output_artifact_path(name: &str) -> String {
    format!("{{{{$.outputs.artifacts['{name}'].path}}}}")
}

/// `{{$.outputs.parameters['name'].output_file}}`.
pub fn output_parameter_file(name: &str) -> String {
    format!("{{{{$.outputs.parameters['{name}'].output_file}}}}")
}

/// The run's name, as KFP substitutes it.
pub const JOB_NAME: &str = "{{$.pipeline_job_name}}";

/// The input a gated task reads its condition from, named as the KFP compiler names channels.
pub fn channel(step: &str, output: &str) -> String {
    format!("pipelinechannel--{step}-{output}")
}

/// The condition on a boolean channel being true.
pub fn condition_true(channel: &str) -> String {
    format!("inputs.parameter_values['{channel}'] == true")
}

/// The channel of a condition written by [`condition_true`], or `None` for any other form.
pub fn parse_condition(condition: &str) -> Option<&str> {
    condition
        .trim()
        .strip_prefix("inputs.parameter_values['")?
        .strip_suffix("'] == true")
}
