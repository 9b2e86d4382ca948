//! A `PipelineSpec` read back as the runner needs it: each task with its component, executor
//! and the tasks it waits for, checked so that a spec written by hand (or by another compiler)
//! fails before anything runs, naming the task and the field.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{PipelineError, Result};
use crate::ir::{self, ComponentSpec, Container, PipelineSpec, TaskSpec};

/// A task ready to schedule.
#[derive(Debug, Clone)]
pub struct Task {
    /// Its name in the DAG.
    pub name: String,
    /// The task.
    pub spec: TaskSpec,
    /// Its component.
    pub component: ComponentSpec,
    /// Its executor's container.
    pub container: Container,
    /// Every task it waits for: `dependentTasks` and the producers of its inputs.
    pub needs: BTreeSet<String>,
    /// The input channel its condition reads, with the producing task and output.
    pub condition: Option<Condition>,
}

/// A task's `triggerPolicy.condition`, understood.
#[derive(Debug, Clone)]
pub struct Condition {
    /// The expression as written.
    pub expression: String,
    /// The boolean input parameter it tests.
    pub channel: String,
}

/// The tasks of a spec, in an order where every task follows the ones it needs.
pub fn tasks(spec: &PipelineSpec) -> Result<Vec<Task>> {
    let bad = |task: &str, msg: String| PipelineError::Spec(format!("task '{task}': {msg}"));
    let Some(dag) = &spec.root.dag else {
        return Err(PipelineError::Spec("root has no dag".into()));
    };
    let mut by_name = BTreeMap::new();
    for (name, t) in &dag.tasks {
        let component = spec.components.get(&t.component_ref.name).ok_or_else(|| {
            bad(
                name,
                format!("componentRef '{}' names no component", t.component_ref.name),
            )
        })?;
        if component.dag.is_some() {
            return Err(bad(
                name,
                "component is a nested DAG; the local runner runs flat pipelines (submit it to KFP or Vertex AI)".into(),
            ));
        }
        let label = component.executor_label.as_deref().ok_or_else(|| {
            bad(
                name,
                format!("component '{}' has no executorLabel", t.component_ref.name),
            )
        })?;
        let executor = spec.deployment_spec.executors.get(label).ok_or_else(|| {
            bad(
                name,
                format!("executorLabel '{label}' names no deploymentSpec executor"),
            )
        })?;
        if executor.container.command.is_empty() {
            return Err(bad(
                name,
                format!("executor '{label}' has an empty command"),
            ));
        }
        let mut needs: BTreeSet<String> = t.dependent_tasks.iter().cloned().collect();
        for (input, b) in &t.inputs.parameters {
            let set = [
                b.runtime_value.is_some(),
                b.component_input_parameter.is_some(),
                b.task_output_parameter.is_some(),
            ]
            .iter()
            .filter(|s| **s)
            .count();
            if set != 1 {
                return Err(bad(
                    name,
                    format!("input parameter '{input}' must have exactly one of runtimeValue, componentInputParameter, taskOutputParameter"),
                ));
            }
            if let Some(o) = &b.task_output_parameter {
                needs.insert(o.producer_task.clone());
            }
            if let Some(p) = &b.component_input_parameter {
                if !spec.root.input_definitions.parameters.contains_key(p) {
                    return Err(bad(
                        name,
                        format!("input parameter '{input}' reads pipeline parameter '{p}', which the root does not define"),
                    ));
                }
            }
        }
        for b in t.inputs.artifacts.values() {
            needs.insert(b.task_output_artifact.producer_task.clone());
        }
        let condition = match &t.trigger_policy {
            None => None,
            Some(p) => {
                let channel = ir::parse_condition(&p.condition).ok_or_else(|| {
                    bad(
                        name,
                        format!(
                            "triggerPolicy.condition {:?}: the local runner evaluates \"inputs.parameter_values['NAME'] == true\"",
                            p.condition
                        ),
                    )
                })?;
                if !t.inputs.parameters.contains_key(channel) {
                    return Err(bad(
                        name,
                        format!("triggerPolicy.condition reads '{channel}', which is not one of its inputs"),
                    ));
                }
                Some(Condition {
                    expression: p.condition.clone(),
                    channel: channel.to_string(),
                })
            }
        };
        by_name.insert(
            name.clone(),
            Task {
                name: name.clone(),
                spec: t.clone(),
                component: component.clone(),
                container: executor.container.clone(),
                needs,
                condition,
            },
        );
    }
    for t in by_name.values() {
        if let Some(missing) = t.needs.iter().find(|n| !by_name.contains_key(*n)) {
            return Err(bad(
                &t.name,
                format!("needs task '{missing}', which the DAG does not have"),
            ));
        }
    }
    // Kahn's order; what is left over sits on a cycle.
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut order = Vec::new();
    while !by_name.is_empty() {
        let next: Vec<String> = by_name
            .values()
            .filter(|t| t.needs.iter().all(|n| done.contains(n)))
            .map(|t| t.name.clone())
            .collect();
        if next.is_empty() {
            let left: Vec<&str> = by_name.keys().map(String::as_str).collect();
            return Err(PipelineError::Spec(format!(
                "tasks {} depend on each other in a cycle",
                left.join(", ")
            )));
        }
        for n in next {
            done.insert(n.clone());
            if let Some(t) = by_name.remove(&n) {
                order.push(t);
            }
        }
    }
    Ok(order)
}
