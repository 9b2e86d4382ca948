//! Pipeline files: the examples check and compile; every kind of bad file gets an error that
//! names the step and the field.

use std::collections::BTreeMap;
use std::path::Path;

use litehouse_pipeline::definition::parse;
use litehouse_pipeline::{check, compile};

fn example(name: &str) -> litehouse_pipeline::definition::PipelineFile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name);
    litehouse_pipeline::definition::read(&path).expect("example parses")
}

#[test]
fn the_mnist_example_compiles_to_a_gated_dag() {
    let plan = check(&example("mnist-retrain.yaml"), &BTreeMap::new()).expect("checks");
    let order: Vec<&str> = plan.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        order,
        ["ingest", "validate", "train", "evaluate", "gate", "register", "deploy"]
    );
    let spec = compile(&plan);
    assert_eq!(spec.schema_version, "2.1.0");
    let tasks = &spec.root.dag.as_ref().expect("a dag").tasks;
    let register = &tasks["register"];
    assert_eq!(
        register
            .trigger_policy
            .as_ref()
            .map(|t| t.condition.as_str()),
        Some("inputs.parameter_values['pipelinechannel--gate-passed'] == true")
    );
    assert!(register.dependent_tasks.contains(&"gate".to_string()));
    // deploy reads register's output, so it sits behind the same gate (as inside a dsl.If).
    let deploy = &tasks["deploy"];
    assert_eq!(deploy.trigger_policy, register.trigger_policy);
    assert!(deploy.dependent_tasks.contains(&"gate".to_string()));
    assert!(deploy.dependent_tasks.contains(&"register".to_string()));
    assert!(tasks["evaluate"].trigger_policy.is_none());
    assert_eq!(
        tasks["ingest"]
            .caching_options
            .as_ref()
            .map(|c| c.enable_cache),
        Some(false)
    );
    assert_eq!(
        tasks["train"]
            .caching_options
            .as_ref()
            .map(|c| c.enable_cache),
        Some(true)
    );
    // The store parameter is added for the registry-facing steps.
    assert!(spec.root.input_definitions.parameters.contains_key("store"));
    let train = &spec.deployment_spec.executors["exec-train"].container;
    assert_eq!(train.command, ["litehouse", "step", "train"]);
    assert!(train
        .args
        .contains(&"{{$.inputs.artifacts['dataset'].path}}".to_string()));
    assert!(train
        .args
        .contains(&"{{$.outputs.artifacts['model'].path}}".to_string()));
    // Round trip through JSON: the runner reads what the compiler writes.
    let json = serde_json::to_string(&spec).expect("encodes");
    let back: litehouse_pipeline::PipelineSpec = serde_json::from_str(&json).expect("decodes");
    assert_eq!(back, spec);
}

#[test]
fn params_override_defaults_with_type_checks() {
    let file = example("mnist-retrain.yaml");
    let plan = check(&file, &[("epochs".to_string(), "5".to_string())].into()).expect("checks");
    assert_eq!(plan.params["epochs"].default, Some(serde_json::json!(5)));
    let err = check(&file, &[("epochs".to_string(), "five".to_string())].into()).unwrap_err();
    assert!(
        err.to_string()
            .contains("--param epochs=five: expected an integer"),
        "{err}"
    );
    let err = check(&file, &[("epochz".to_string(), "5".to_string())].into()).unwrap_err();
    assert!(err.to_string().contains("no parameter 'epochz'"), "{err}");
}

const BASE: &str = r#"
name: p
params:
  data: { type: string, default: x }
  n: { type: integer, default: 1 }
steps:
  ingest: { uses: ingest, with: { data: "{{ params.data }}" } }
"#;

#[test]
fn bad_pipeline_files_are_named_precisely() {
    let cases: &[(&str, &str, &str)] = &[
        ("unknown step kind", "  t: { uses: trane }\n", "step 't': unknown step kind 'trane'"),
        ("unknown input", "  t: { uses: train, with: { dataset: \"{{ steps.ingest.outputs.dataset }}\", epoch: 3 } }\n", "step 't', input 'epoch': 'train' has no input 'epoch'"),
        ("missing required input", "  t: { uses: train }\n", "step 't', input 'dataset': missing (a dataset artifact)"),
        ("missing parameter", "  t: { uses: train, with: { dataset: \"{{ steps.ingest.outputs.dataset }}\", epochs: \"{{ params.epochs }}\" } }\n", "step 't', input 'epochs': no parameter 'epochs'"),
        ("type mismatch", "  t: { uses: train, with: { dataset: \"{{ steps.ingest.outputs.data_hash }}\" } }\n", "step 't', input 'dataset': expects a dataset artifact, but steps.ingest.outputs.data_hash is a string parameter"),
        ("constant of the wrong type", "  t: { uses: train, with: { dataset: \"{{ steps.ingest.outputs.dataset }}\", epochs: many } }\n", "step 't', input 'epochs': expected an integer"),
        ("output nobody produces", "  t: { uses: train, with: { dataset: \"{{ steps.ingest.outputs.model }}\" } }\n", "step 't', input 'dataset': step 'ingest' has no output 'model'"),
        ("unknown producer", "  t: { uses: train, with: { dataset: \"{{ steps.fetch.outputs.dataset }}\" } }\n", "step 't', input 'dataset': no step 'fetch'"),
        ("cycle", "  a: { uses: gate, with: { metrics: \"{{ steps.b.outputs.metrics }}\", threshold: 0.5 } }\n  b: { uses: evaluate, after: [a], with: { dataset: \"{{ steps.ingest.outputs.dataset }}\", model: \"{{ steps.c.outputs.model }}\", name: m } }\n  c: { uses: train, after: [a], with: { dataset: \"{{ steps.ingest.outputs.dataset }}\" } }\n", "depend on each other in a cycle"),
        ("spliced reference", "  t: { uses: ingest, with: { data: \"s3://b/{{ params.data }}/\" } }\n", "a reference must be the whole value"),
        ("when on a non-boolean", "  t: { uses: ingest, when: \"{{ steps.ingest.outputs.data_hash }}\", with: { data: x } }\n", "step 't', when: steps.ingest.outputs.data_hash is a string parameter, not a boolean"),
        ("cache on a registry step", "  t: { uses: deploy, cache: true, with: { name: m, version: 1 } }\n", "step 't', cache: 'deploy' reads or changes the registry"),
        ("command without a command", "  t: { uses: command }\n", "step 't', command: a command step needs a command"),
        ("command reading an undeclared input", "  t: { uses: command, command: [python, \"{{ inputs.data }}\"] }\n", "{{ inputs.data }} names no input"),
        ("artifact from a constant", "  t: { uses: train, with: { dataset: ./data } }\n", "a dataset artifact comes from a step output"),
    ];
    let mut failures = Vec::new();
    for (name, steps, want) in cases {
        let text = format!("{BASE}{steps}");
        let got = parse(&text, "p.yaml", false).and_then(|f| check(&f, &BTreeMap::new()));
        match got {
            Ok(_) => failures.push(format!("{name}: accepted")),
            Err(e) if !e.to_string().contains(want) => {
                failures.push(format!("{name}: {e}\n    wanted: {want}"))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn a_command_step_compiles_to_its_program() {
    let text = format!(
        "{BASE}  keras:\n    uses: command\n    command: [python3, train.py, --data, \"{{{{ inputs.data }}}}\", --out, \"{{{{ outputs.model }}}}\"]\n    with: {{ data: \"{{{{ steps.ingest.outputs.dataset }}}}\" }}\n    outputs: {{ model: model }}\n"
    );
    let plan = check(
        &parse(&text, "p.yaml", false).expect("parses"),
        &BTreeMap::new(),
    )
    .expect("checks");
    let spec = compile(&plan);
    let c = &spec.deployment_spec.executors["exec-keras"].container;
    assert_eq!(c.command, ["python3"]);
    assert_eq!(
        c.args,
        [
            "train.py",
            "--data",
            "{{$.inputs.artifacts['data'].path}}",
            "--out",
            "{{$.outputs.artifacts['model'].path}}"
        ]
    );
}
