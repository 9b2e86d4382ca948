//! The AWS deployment as committed: the SAM template passes cfn-lint and keeps the properties the
//! deploy guide promises (arm64, AWS_IAM Function URL, least-privilege predict role, packages
//! where `make lambda-build` writes them), and every function binary has its slot.

#![allow(clippy::unwrap_used)]

use serde_yaml_ng::Value;

fn template() -> Value {
    let text = std::fs::read_to_string("infra/template.yaml").unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

/// A CloudFormation short-form tag (`!Ref X`, `!Sub "..."`) as its plain value.
fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => &t.value,
        other => other,
    }
}

fn strings(v: &Value) -> Vec<String> {
    match untag(v) {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn the_sam_template_passes_cfn_lint() {
    match std::env::var("LITEHOUSE_CFN_LINT") {
        Ok(cfn_lint) => {
            let lint = std::process::Command::new(cfn_lint)
                .arg("infra/template.yaml")
                .output()
                .unwrap();
            assert!(
                lint.status.success(),
                "{}{}",
                String::from_utf8_lossy(&lint.stdout),
                String::from_utf8_lossy(&lint.stderr)
            );
        }
        Err(_) => {
            assert!(
                std::env::var("LITEHOUSE_REQUIRE_CLIENTS").as_deref() != Ok("1"),
                "LITEHOUSE_REQUIRE_CLIENTS=1 but LITEHOUSE_CFN_LINT is unset"
            );
            eprintln!("cfn-lint skipped: set LITEHOUSE_CFN_LINT (infra/scripts/cfn-lint-venv.sh)");
        }
    }
}

#[test]
fn the_predict_function_is_arm64_behind_an_iam_function_url_with_read_only_model_access() {
    let t = template();
    assert_eq!(
        strings(&t["Globals"]["Function"]["Architectures"]),
        ["arm64"]
    );
    assert_eq!(t["Parameters"]["FunctionUrlAuth"]["Default"], "AWS_IAM");
    let predict = &t["Resources"]["PredictFunction"]["Properties"];
    assert_eq!(
        untag(&predict["FunctionUrlConfig"]["AuthType"]),
        &Value::String("FunctionUrlAuth".into())
    );
    assert!(predict["Environment"]["Variables"]["LITEHOUSE_STORE"] != Value::Null);
    let statements = predict["Policies"][0]["Statement"].as_sequence().unwrap();
    for s in statements {
        let actions = strings(&s["Action"]);
        let resources = strings(&s["Resource"]);
        let writes = actions
            .iter()
            .any(|a| a != "s3:GetObject" && a != "s3:ListBucket");
        if writes {
            assert_eq!(actions, ["s3:PutObject"], "{s:?}");
            assert!(
                resources.iter().all(|r| r.ends_with("/prediction-logs/*")),
                "predict may write only its prediction log: {resources:?}"
            );
        }
        if actions.iter().any(|a| a == "s3:GetObject") {
            assert!(
                resources
                    .iter()
                    .all(|r| r.ends_with("/models/*") || r.ends_with("/endpoints/*")),
                "predict may read only models and endpoints: {resources:?}"
            );
        }
    }
}

#[test]
fn every_function_is_packaged_where_lambda_build_writes_it() {
    let t = template();
    let script = std::fs::read_to_string("infra/scripts/lambda-build.sh").unwrap();
    for (resource, function) in [
        ("PredictFunction", "predict"),
        ("BatchFunction", "batch"),
        ("TriggerFunction", "trigger"),
    ] {
        let uri = t["Resources"][resource]["Properties"]["CodeUri"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            uri,
            format!("../target/lambda/arm64/{function}/bootstrap.zip"),
            "{resource}"
        );
        assert!(
            script.contains(function),
            "lambda-build.sh does not build {function}"
        );
        assert!(
            std::path::Path::new(&format!("functions/{function}/Cargo.toml")).exists(),
            "{function}"
        );
    }
    let definition = t["Resources"]["BatchStateMachine"]["Properties"]["DefinitionUri"]
        .as_str()
        .unwrap();
    assert!(std::path::Path::new("infra").join(definition).exists());
}
