//! A checked plan as a KFP v2 `PipelineSpec`: one component and one executor per task, the
//! executor being `litehouse step <kind>` (or the user's program) with IR placeholders where
//! inputs and outputs go, so KFP, Vertex AI and the local runner run the same thing.

use std::collections::BTreeMap;

use crate::check::{Binding, CommandPart, Plan, Step, StepKind};
use crate::ir::{self, *};
use crate::types::{PortType, ValueType};

/// What `sdkVersion` says.
pub fn sdk_version() -> String {
    format!("litehouse-{}", env!("CARGO_PKG_VERSION"))
}

/// The image executors run in when the file names none: a local image holding the `litehouse`
/// binary (see the pipeline guide for building it).
pub const DEFAULT_IMAGE: &str = "litehouse:latest";

/// Compiles a plan.
pub fn compile(plan: &Plan) -> PipelineSpec {
    let image = plan.image.clone().unwrap_or_else(|| DEFAULT_IMAGE.into());
    let mut root_inputs = Definitions::default();
    for (name, p) in &plan.params {
        root_inputs.parameters.insert(
            name.clone(),
            ParameterSpec {
                parameter_type: p.ty.ir().into(),
                default_value: p.default.clone(),
                is_optional: p.default.is_some(),
                description: p.description.clone(),
            },
        );
    }
    let mut tasks = BTreeMap::new();
    let mut components = BTreeMap::new();
    let mut executors = BTreeMap::new();
    let conditions = inherited_conditions(plan);
    for step in &plan.steps {
        let component = format!("comp-{}", step.name);
        let executor = format!("exec-{}", step.name);
        let when = conditions.get(&step.name);
        let (task, spec) = task_and_component(step, when, &component, &executor);
        tasks.insert(step.name.clone(), task);
        components.insert(component, spec);
        executors.insert(
            executor,
            Executor {
                container: container(plan, step, &image),
            },
        );
    }
    PipelineSpec {
        pipeline_info: PipelineInfo {
            name: plan.name.clone(),
            description: plan.description.clone(),
        },
        schema_version: ir::SCHEMA_VERSION.into(),
        sdk_version: sdk_version(),
        root: ComponentSpec {
            input_definitions: root_inputs,
            dag: Some(Dag { tasks }),
            ..ComponentSpec::default()
        },
        components,
        deployment_spec: DeploymentSpec { executors },
    }
}

fn artifact_type(a: crate::types::ArtifactType) -> ArtifactTypeSchema {
    ArtifactTypeSchema {
        schema_title: a.schema_title().into(),
        schema_version: "0.0.1".into(),
    }
}

/// Each step's condition: its own `when`, else that of a step it reads from or waits for.
/// Tasks downstream of a gated one carry the gate too, as the tasks inside a KFP `dsl.If`
/// group do, so KFP skips them instead of failing on an input that was never produced.
fn inherited_conditions(plan: &Plan) -> BTreeMap<String, (String, String)> {
    let mut out: BTreeMap<String, (String, String)> = BTreeMap::new();
    // Steps come in dependency order, so what a step needs is already decided.
    for step in &plan.steps {
        let from_inputs = step.inputs.values().filter_map(|(_, b)| match b {
            Binding::Output { step, .. } => Some(step),
            _ => None,
        });
        let inherited = from_inputs
            .chain(&step.after)
            .find_map(|dep| out.get(dep).cloned());
        if let Some(c) = step.when.clone().or(inherited) {
            out.insert(step.name.clone(), c);
        }
    }
    out
}

fn task_and_component(
    step: &Step,
    when: Option<&(String, String)>,
    component: &str,
    executor: &str,
) -> (TaskSpec, ComponentSpec) {
    let mut inputs = TaskInputs::default();
    let mut input_defs = Definitions::default();
    for (name, (ty, binding)) in &step.inputs {
        match ty {
            PortType::Value(v) => {
                input_defs.parameters.insert(
                    name.clone(),
                    ParameterSpec {
                        parameter_type: v.ir().into(),
                        default_value: None,
                        is_optional: false,
                        description: String::new(),
                    },
                );
                inputs
                    .parameters
                    .insert(name.clone(), parameter_binding(binding));
            }
            PortType::Artifact(a) => {
                input_defs.artifacts.insert(
                    name.clone(),
                    ArtifactSpec {
                        artifact_type: artifact_type(*a),
                        is_optional: false,
                        description: String::new(),
                    },
                );
                if let Binding::Output { step, output } = binding {
                    inputs.artifacts.insert(
                        name.clone(),
                        ArtifactBinding {
                            task_output_artifact: TaskOutputArtifact {
                                producer_task: step.clone(),
                                output_artifact_key: output.clone(),
                            },
                        },
                    );
                }
            }
        }
    }
    if let StepKind::Builtin(i) = &step.kind {
        // Optional artifacts the file left unbound are still part of the component.
        for port in i.inputs {
            if let (PortType::Artifact(a), false) = (port.ty, step.inputs.contains_key(port.name)) {
                input_defs.artifacts.insert(
                    port.name.into(),
                    ArtifactSpec {
                        artifact_type: artifact_type(a),
                        is_optional: true,
                        description: port.help.into(),
                    },
                );
            }
        }
    }
    let trigger_policy = when.map(|(producer, output)| {
        let channel = ir::channel(producer, output);
        input_defs.parameters.insert(
            channel.clone(),
            ParameterSpec {
                parameter_type: ValueType::Boolean.ir().into(),
                default_value: None,
                is_optional: false,
                description: String::new(),
            },
        );
        inputs.parameters.insert(
            channel.clone(),
            ParameterBinding {
                task_output_parameter: Some(TaskOutputParameter {
                    producer_task: producer.clone(),
                    output_parameter_key: output.clone(),
                }),
                ..ParameterBinding::default()
            },
        );
        TriggerPolicy {
            condition: ir::condition_true(&channel),
        }
    });
    let mut output_defs = Definitions::default();
    for (name, ty) in &step.outputs {
        match ty {
            PortType::Value(v) => {
                output_defs.parameters.insert(
                    name.clone(),
                    ParameterSpec {
                        parameter_type: v.ir().into(),
                        default_value: None,
                        is_optional: false,
                        description: String::new(),
                    },
                );
            }
            PortType::Artifact(a) => {
                output_defs.artifacts.insert(
                    name.clone(),
                    ArtifactSpec {
                        artifact_type: artifact_type(*a),
                        is_optional: false,
                        description: String::new(),
                    },
                );
            }
        }
    }
    let task = TaskSpec {
        task_info: TaskInfo {
            name: step.name.clone(),
        },
        component_ref: ComponentRef {
            name: component.into(),
        },
        inputs,
        dependent_tasks: step
            .after
            .iter()
            .chain(when.map(|(producer, _)| producer))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .cloned()
            .collect(),
        caching_options: Some(CachingOptions {
            enable_cache: step.cache,
        }),
        trigger_policy,
    };
    let spec = ComponentSpec {
        input_definitions: input_defs,
        output_definitions: output_defs,
        executor_label: Some(executor.into()),
        dag: None,
    };
    (task, spec)
}

fn parameter_binding(binding: &Binding) -> ParameterBinding {
    match binding {
        Binding::Constant(v) => ParameterBinding {
            runtime_value: Some(RuntimeValue {
                constant: v.clone(),
            }),
            ..ParameterBinding::default()
        },
        Binding::Param(p) => ParameterBinding {
            component_input_parameter: Some(p.clone()),
            ..ParameterBinding::default()
        },
        Binding::Output { step, output } => ParameterBinding {
            task_output_parameter: Some(TaskOutputParameter {
                producer_task: step.clone(),
                output_parameter_key: output.clone(),
            }),
            ..ParameterBinding::default()
        },
    }
}

fn container(plan: &Plan, step: &Step, image: &str) -> Container {
    match &step.kind {
        StepKind::Builtin(i) => {
            let mut args = Vec::new();
            for (name, (ty, _)) in &step.inputs {
                args.push(format!("--{name}"));
                args.push(match ty {
                    PortType::Value(_) => ir::input_parameter(name),
                    PortType::Artifact(_) => ir::input_artifact_path(name),
                });
            }
            for (name, ty) in &step.outputs {
                args.push(format!("--out-{name}"));
                args.push(match ty {
                    PortType::Value(_) => ir::output_parameter_file(name),
                    PortType::Artifact(_) => ir::output_artifact_path(name),
                });
            }
            args.extend([
                "--pipeline".to_string(),
                plan.name.clone(),
                "--run".to_string(),
                ir::JOB_NAME.to_string(),
            ]);
            Container {
                image: image.into(),
                command: vec!["litehouse".into(), "step".into(), i.kind.into()],
                args,
            }
        }
        StepKind::Command(parts) => {
            let mut argv: Vec<String> = parts
                .iter()
                .map(|p| match p {
                    CommandPart::Text(t) => t.clone(),
                    CommandPart::Input(i) => match step.inputs.get(i).map(|(t, _)| *t) {
                        Some(PortType::Artifact(_)) => ir::input_artifact_path(i),
                        _ => ir::input_parameter(i),
                    },
                    CommandPart::Output(o) => match step.outputs.get(o) {
                        Some(PortType::Value(_)) => ir::output_parameter_file(o),
                        _ => ir::output_artifact_path(o),
                    },
                })
                .collect();
            let args = argv.split_off(1);
            Container {
                image: image.into(),
                command: argv,
                args,
            }
        }
    }
}
