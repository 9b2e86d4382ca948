//! From a pipeline file to a checked plan: every step known, every input bound to a value,
//! parameter or output of the right type, every reference pointing at something that exists,
//! and no cycles. Each error names the step and the field.

use std::collections::{BTreeMap, BTreeSet};

use indexmap::IndexMap;
use serde_json::Value;

use crate::definition::{reference, PipelineFile, Reference};
use crate::error::{PipelineError, Result};
use crate::steps::interface::{self, Fallback, Interface};
use crate::types::{PortType, ValueType};

/// The step kind of user programs.
pub const COMMAND: &str = "command";

/// A checked pipeline, steps in an order where every step follows those it depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Container image for KFP.
    pub image: Option<String>,
    /// Parameters with their types and defaults (after `--param` overrides).
    pub params: IndexMap<String, Param>,
    /// Steps in dependency order.
    pub steps: Vec<Step>,
}

/// A pipeline parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Type.
    pub ty: ValueType,
    /// Default, already of `ty`.
    pub default: Option<Value>,
    /// What it means.
    pub description: String,
}

/// A checked step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Its name in the file (the KFP task name).
    pub name: String,
    /// What it runs.
    pub kind: StepKind,
    /// Every input with its binding, unbound optional artifacts left out.
    pub inputs: IndexMap<String, (PortType, Binding)>,
    /// Outputs.
    pub outputs: IndexMap<String, PortType>,
    /// Steps that must finish first.
    pub after: BTreeSet<String>,
    /// The boolean output that must be true for the step to run.
    pub when: Option<(String, String)>,
    /// Whether caching is on.
    pub cache: bool,
}

/// What a step runs.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// A built-in step.
    Builtin(&'static Interface),
    /// A program, with `{{ inputs.x }}` / `{{ outputs.y }}` in its arguments.
    Command(Vec<CommandPart>),
}

/// One argument of a command step.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandPart {
    /// Text as written.
    Text(String),
    /// An input's value or path.
    Input(String),
    /// An output's path.
    Output(String),
}

/// Where an input's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Binding {
    /// A constant of the port's type.
    Constant(Value),
    /// A pipeline parameter.
    Param(String),
    /// Another step's output.
    Output {
        /// The producer.
        step: String,
        /// Its output.
        output: String,
    },
}

impl Plan {
    /// A step by name.
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }
}

/// Checks `file`, with parameter defaults overridden by `overrides` (`--param k=v`, text).
pub fn check(file: &PipelineFile, overrides: &BTreeMap<String, String>) -> Result<Plan> {
    let bad = |message: String| PipelineError::Definition {
        pipeline: file.name.clone(),
        message,
    };
    if !valid_name(&file.name) {
        return Err(PipelineError::Definition {
            pipeline: file.name.clone(),
            message: "name must be 1-63 characters of lowercase letters, digits and '-', \
                      starting with a letter"
                .into(),
        });
    }
    if file.steps.is_empty() {
        return Err(bad("no steps".into()));
    }
    let mut params = IndexMap::new();
    for (name, decl) in &file.params {
        if !valid_key(name) {
            return Err(bad(format!(
                "parameter '{name}': names are letters, digits and '_'"
            )));
        }
        let default = match &decl.default {
            None => None,
            Some(v) => Some(
                decl.ty
                    .coerce(v)
                    .map_err(|e| bad(format!("parameter '{name}': default: {e}")))?,
            ),
        };
        params.insert(
            name.clone(),
            Param {
                ty: decl.ty,
                default,
                description: decl.description.clone(),
            },
        );
    }
    for (name, text) in overrides {
        let Some(p) = params.get_mut(name) else {
            return Err(PipelineError::Invalid(format!(
                "--param {name}: the pipeline has no parameter '{name}' (parameters: {})",
                list(params.keys())
            )));
        };
        let v = p.ty.parse(text).ok_or_else(|| {
            PipelineError::Invalid(format!(
                "--param {name}={text}: expected {} {}",
                if p.ty == ValueType::Integer {
                    "an"
                } else {
                    "a"
                },
                p.ty.name()
            ))
        })?;
        p.default = Some(v);
    }

    // Outputs first, so references can be typed whatever the order of the file.
    let mut outputs: BTreeMap<&str, IndexMap<String, PortType>> = BTreeMap::new();
    for (name, decl) in &file.steps {
        if !valid_step_name(name) {
            return Err(bad(format!(
                "step '{name}': names are lowercase letters, digits and '-' or '_'"
            )));
        }
        let outs = if decl.uses == COMMAND {
            decl.outputs
                .iter()
                .map(|(k, a)| (k.clone(), PortType::Artifact(*a)))
                .collect()
        } else if let Some(i) = interface::builtin(&decl.uses) {
            if !decl.command.is_empty() || !decl.outputs.is_empty() {
                return Err(bad(format!(
                    "step '{name}': 'command' and 'outputs' belong to command steps; \
                     '{}' is built in",
                    decl.uses
                )));
            }
            i.outputs
                .iter()
                .map(|p| (p.name.to_string(), p.ty))
                .collect()
        } else {
            return Err(bad(format!(
                "step '{name}': unknown step kind '{}' (built in: {}, or command)",
                decl.uses,
                interface::BUILTINS
                    .iter()
                    .map(|i| i.kind)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        outputs.insert(name.as_str(), outs);
    }

    let mut needs_store = false;
    let mut steps = Vec::new();
    for (name, decl) in &file.steps {
        let field = |f: &str| format!("step '{name}', {f}");
        // One resolver for input bindings and `when`.
        let resolve = |what: &str, text_or_value: &Value| -> Result<Binding> {
            let Value::String(text) = text_or_value else {
                return Ok(Binding::Constant(text_or_value.clone()));
            };
            match reference(text).map_err(|e| bad(format!("{}: {e}", field(what))))? {
                None => Ok(Binding::Constant(text_or_value.clone())),
                Some(Reference::Param(p)) => {
                    if !params.contains_key(&p) {
                        return Err(bad(format!(
                            "{}: no parameter '{p}' (parameters: {})",
                            field(what),
                            list(params.keys())
                        )));
                    }
                    Ok(Binding::Param(p))
                }
                Some(Reference::Output { step, output }) => {
                    let Some(outs) = outputs.get(step.as_str()) else {
                        return Err(bad(format!(
                            "{}: no step '{step}' (steps: {})",
                            field(what),
                            list(file.steps.keys())
                        )));
                    };
                    if step == *name {
                        return Err(bad(format!(
                            "{}: a step cannot read its own output",
                            field(what)
                        )));
                    }
                    if !outs.contains_key(&output) {
                        return Err(bad(format!(
                            "{}: step '{step}' has no output '{output}' (its outputs: {})",
                            field(what),
                            list(outs.keys())
                        )));
                    }
                    Ok(Binding::Output { step, output })
                }
                Some(Reference::Input(_) | Reference::OwnOutput(_)) => Err(bad(format!(
                    "{}: {{{{ inputs.* }}}} and {{{{ outputs.* }}}} belong in a command line",
                    field(what)
                ))),
            }
        };
        let type_of = |b: &Binding| -> Option<PortType> {
            match b {
                Binding::Constant(_) => None,
                Binding::Param(p) => params.get(p).map(|p| PortType::Value(p.ty)),
                Binding::Output { step, output } => outputs
                    .get(step.as_str())
                    .and_then(|o| o.get(output))
                    .copied(),
            }
        };

        let mut inputs = IndexMap::new();
        let kind = if decl.uses == COMMAND {
            if decl.command.is_empty() {
                return Err(bad(format!(
                    "{}: a command step needs a command",
                    field("command")
                )));
            }
            for (input, value) in &decl.with {
                if !valid_key(input) {
                    return Err(bad(format!(
                        "{}: input names are letters, digits and '_'",
                        field(input)
                    )));
                }
                let binding = resolve(&format!("input '{input}'"), value)?;
                let ty = match type_of(&binding) {
                    Some(t) => t,
                    None => PortType::Value(constant_type(value).ok_or_else(|| {
                        bad(format!(
                            "{}: a constant must be a string, number or boolean, found {value}",
                            field(&format!("input '{input}'"))
                        ))
                    })?),
                };
                inputs.insert(input.clone(), (ty, binding));
            }
            let mut parts = Vec::new();
            for arg in &decl.command {
                let part = match reference(arg)
                    .map_err(|e| bad(format!("{}: {e}", field("command"))))?
                {
                    None => CommandPart::Text(arg.clone()),
                    Some(Reference::Input(i)) if inputs.contains_key(&i) => CommandPart::Input(i),
                    Some(Reference::Input(i)) => {
                        return Err(bad(format!(
                            "{}: {{{{ inputs.{i} }}}} names no input in 'with' (inputs: {})",
                            field("command"),
                            list(inputs.keys())
                        )))
                    }
                    Some(Reference::OwnOutput(o)) if decl.outputs.contains_key(&o) => {
                        CommandPart::Output(o)
                    }
                    Some(Reference::OwnOutput(o)) => {
                        return Err(bad(format!(
                            "{}: {{{{ outputs.{o} }}}} names no declared output (outputs: {})",
                            field("command"),
                            list(decl.outputs.keys())
                        )))
                    }
                    Some(_) => {
                        return Err(bad(format!(
                            "{}: {arg:?}: a command line reads its own {{{{ inputs.NAME }}}} \
                             (bind them under 'with')",
                            field("command")
                        )))
                    }
                };
                parts.push(part);
            }
            StepKind::Command(parts)
        } else {
            let Some(i) = interface::builtin(&decl.uses) else {
                unreachable!("checked above")
            };
            for input in decl.with.keys() {
                if i.input(input).is_none() {
                    return Err(bad(format!(
                        "{}: '{}' has no input '{input}' (inputs: {})",
                        field(&format!("input '{input}'")),
                        i.kind,
                        interface::names(i.inputs)
                    )));
                }
            }
            for port in i.inputs {
                let what = format!("input '{}'", port.name);
                let binding = match decl.with.get(port.name) {
                    Some(v) => resolve(&what, v)?,
                    None if port.name == interface::STORE => {
                        needs_store = true;
                        Binding::Param(interface::STORE.into())
                    }
                    None => match port.fallback {
                        Fallback::Required => {
                            return Err(bad(format!(
                                "{}: missing (a {})",
                                field(&what),
                                port.ty.describe()
                            )))
                        }
                        Fallback::Optional => continue,
                        f => Binding::Constant(f.value().unwrap_or(Value::Null)),
                    },
                };
                let binding = match (&binding, port.ty) {
                    (Binding::Constant(v), PortType::Value(t)) => Binding::Constant(
                        t.coerce(v)
                            .map_err(|e| bad(format!("{}: {e}", field(&what))))?,
                    ),
                    (Binding::Constant(v), PortType::Artifact(a)) => {
                        return Err(bad(format!(
                            "{}: a {} artifact comes from a step output such as \
                             {{{{ steps.STEP.outputs.{} }}}}, not the constant {v}",
                            field(&what),
                            a.name(),
                            a.name()
                        )))
                    }
                    (b, want) => {
                        if let Some(got) = type_of(b) {
                            let fits = match (want, got) {
                                (PortType::Value(w), PortType::Value(g)) => w.accepts(g),
                                (w, g) => w == g,
                            };
                            if !fits {
                                return Err(bad(format!(
                                    "{}: expects a {}, but {} is a {}",
                                    field(&what),
                                    want.describe(),
                                    describe_binding(b),
                                    got.describe()
                                )));
                            }
                        }
                        binding
                    }
                };
                if port.name == interface::STORE
                    && binding == Binding::Param(interface::STORE.into())
                {
                    needs_store = true;
                }
                inputs.insert(port.name.to_string(), (port.ty, binding));
            }
            StepKind::Builtin(i)
        };

        let mut after: BTreeSet<String> = BTreeSet::new();
        for a in &decl.after {
            if !file.steps.contains_key(a) {
                return Err(bad(format!(
                    "{}: no step '{a}' (steps: {})",
                    field("after"),
                    list(file.steps.keys())
                )));
            }
            if a == name {
                return Err(bad(format!(
                    "{}: a step cannot wait for itself",
                    field("after")
                )));
            }
            after.insert(a.clone());
        }
        for (_, b) in inputs.values() {
            if let Binding::Output { step, .. } = b {
                after.insert(step.clone());
            }
        }
        let when = match &decl.when {
            None => None,
            Some(text) => match resolve("when", &Value::String(text.clone()))? {
                Binding::Output { step, output } => {
                    let ty = outputs.get(step.as_str()).and_then(|o| o.get(&output)).copied();
                    if ty != Some(PortType::Value(ValueType::Boolean)) {
                        return Err(bad(format!(
                            "{}: steps.{step}.outputs.{output} is a {}, not a boolean",
                            field("when"),
                            ty.map_or("?".into(), PortType::describe)
                        )));
                    }
                    after.insert(step.clone());
                    Some((step, output))
                }
                _ => {
                    return Err(bad(format!(
                        "{}: expected a boolean step output such as {{{{ steps.gate.outputs.passed }}}}",
                        field("when")
                    )))
                }
            },
        };
        let cache = match &decl.uses[..] {
            COMMAND => decl.cache.unwrap_or(false),
            kind => {
                let cacheable = interface::builtin(kind).is_some_and(|i| i.cacheable);
                if decl.cache == Some(true) && !cacheable {
                    return Err(bad(format!(
                        "{}: '{kind}' reads or changes the registry or the outside world, so it \
                         always runs (it is idempotent instead)",
                        field("cache")
                    )));
                }
                decl.cache.unwrap_or(cacheable)
            }
        };
        steps.push(Step {
            name: name.clone(),
            kind,
            inputs,
            outputs: outputs.get(name.as_str()).cloned().unwrap_or_default(),
            after,
            when,
            cache,
        });
    }
    if needs_store && !params.contains_key(interface::STORE) {
        params.insert(
            interface::STORE.into(),
            Param {
                ty: ValueType::String,
                default: Some(Value::String(String::new())),
                description: "registry store URI (empty: the runner's)".into(),
            },
        );
    }
    let steps = order(steps).map_err(bad)?;
    Ok(Plan {
        name: file.name.clone(),
        description: file.description.clone(),
        image: file.image.clone(),
        params,
        steps,
    })
}

/// Kahn's order; a cycle is reported with the steps on it.
fn order(mut steps: Vec<Step>) -> std::result::Result<Vec<Step>, String> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::with_capacity(steps.len());
    while !steps.is_empty() {
        let ready: Vec<usize> = (0..steps.len())
            .filter(|&i| steps[i].after.iter().all(|a| done.contains(a)))
            .collect();
        if ready.is_empty() {
            let names: Vec<String> = steps.iter().map(|s| s.name.clone()).collect();
            return Err(format!(
                "steps {} depend on each other in a cycle (through their inputs, 'after' or 'when')",
                names.join(", ")
            ));
        }
        let mut layer: Vec<Step> = ready.iter().rev().map(|&i| steps.remove(i)).collect();
        layer.reverse();
        for s in layer {
            done.insert(s.name.clone());
            out.push(s);
        }
    }
    Ok(out)
}

fn describe_binding(b: &Binding) -> String {
    match b {
        Binding::Constant(v) => format!("the constant {v}"),
        Binding::Param(p) => format!("parameter '{p}'"),
        Binding::Output { step, output } => format!("steps.{step}.outputs.{output}"),
    }
}

fn constant_type(v: &Value) -> Option<ValueType> {
    match v {
        Value::String(_) => Some(ValueType::String),
        Value::Bool(_) => Some(ValueType::Boolean),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(ValueType::Integer),
        Value::Number(_) => Some(ValueType::Number),
        _ => None,
    }
}

fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = names.map(String::as_str).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn valid_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn valid_step_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn valid_key(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
