//! Drives the real `predict` binary through the Lambda Runtime API (tests/support/runtime_api.rs)
//! with the committed Function URL / API Gateway v2 event fixtures.

#![allow(clippy::unwrap_used)]

use std::io::Cursor;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{json, Value as Json};

#[path = "../../../tests/support/prediction_logs.rs"]
mod prediction_logs;
#[path = "../../../tests/support/runtime_api.rs"]
mod runtime_api;
use prediction_logs::records as logged;
use runtime_api::Running;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> Json {
    let path = root().join("functions/predict/events").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn body_of(response: &Json) -> Json {
    let body = response["body"].as_str().unwrap();
    if response["isBase64Encoded"] == true {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    } else {
        serde_json::from_str(body).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_predict_binary_answers_function_url_and_api_gateway_events() {
    let models = root().join("models/catalog").display().to_string();
    let lambda = Running::start(
        env!("CARGO_BIN_EXE_predict"),
        &[("LITEHOUSE_MODELS", models)],
    )
    .await;

    let (kind, res) = lambda
        .invoke("req-1", fixture("function-url-predict-linnerud.json"))
        .await;
    assert_eq!(kind, "response", "{res}");
    assert_eq!(res["statusCode"], 200, "{res}");
    let body = body_of(&res);
    assert_eq!(body["deployedModelId"], "1");
    assert_eq!(body["predictions"].as_array().unwrap().len(), 2);

    let (_, res) = lambda
        .invoke("req-2", fixture("apigw-v2-tfserving-predict-linnerud.json"))
        .await;
    assert_eq!(res["statusCode"], 200, "{res}");
    assert_eq!(body_of(&res)["predictions"].as_array().unwrap().len(), 1);

    let (_, res) = lambda
        .invoke("req-3", fixture("function-url-get-endpoint.json"))
        .await;
    assert_eq!(res["statusCode"], 200, "{res}");
    assert_eq!(body_of(&res)["trafficSplit"], json!({"1": 100}));

    let (_, res) = lambda
        .invoke("req-4", fixture("function-url-bad-json.json"))
        .await;
    assert_eq!(res["statusCode"], 400, "{res}");
    assert_eq!(body_of(&res)["error"]["status"], "INVALID_ARGUMENT");

    // A real digit as a binary body (base64 in the event, as Function URLs deliver images).
    let raw = std::fs::read(root().join("models/runtime/testdata/fetched/mnist10.bin")).unwrap();
    let img = image::GrayImage::from_raw(28, 28, raw[784 * 6..784 * 7].to_vec()).unwrap();
    let mut png = Cursor::new(vec![]);
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let mut event = fixture("function-url-predict-linnerud.json");
    event["rawPath"] = json!("/v1/endpoints/mnist:rawPredict");
    event["requestContext"]["http"]["path"] = event["rawPath"].clone();
    event["headers"]["content-type"] = json!("image/png");
    event["isBase64Encoded"] = json!(true);
    event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(png.into_inner()));
    let (_, res) = lambda.invoke("req-5", event).await;
    assert_eq!(res["statusCode"], 200, "{res}");
    assert_eq!(body_of(&res)["predictions"][0]["class"], 6);
}

/// The predict binary serving a registry store's endpoints (`LITEHOUSE_STORE`), on a local
/// directory and on S3 (moto): it answers from the deployed model and follows a split change on
/// a later invocation without restarting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_predict_binary_serves_a_registry_store() {
    let dir = tempfile::tempdir().unwrap();
    let local = litehouse_store::Store::open(dir.path().to_str().unwrap())
        .await
        .unwrap();
    store_suite(local).await;
    if let Some(s3) = litehouse_store::testing::s3_store("lambda").await {
        store_suite(s3).await;
    }
}

async fn store_suite(store: litehouse_store::Store) {
    use litehouse_registry::{DeployRequest, Registry, UploadRequest};
    let reg = Registry::new(store);
    for file in ["tabular_int8_float_io.tflite", "tabular_float32.tflite"] {
        let bytes =
            std::fs::read(root().join("models/runtime/testdata/exported").join(file)).unwrap();
        let req = UploadRequest {
            name: "linnerud".into(),
            ..Default::default()
        };
        reg.upload(bytes, req).await.unwrap();
    }
    reg.create_endpoint("lin", None, "").await.unwrap();
    for (version, split) in [("1", json!({"0": 100})), ("2", json!({"1": 100, "0": 0}))] {
        let req = DeployRequest {
            model: "linnerud".into(),
            version: version.into(),
            traffic_split: Some(serde_json::from_value(split).unwrap()),
            ..Default::default()
        };
        reg.deploy("lin", &req, None).await.unwrap();
    }
    let lambda = Running::start(
        env!("CARGO_BIN_EXE_predict"),
        &[
            ("LITEHOUSE_STORE", reg.store().uri().to_string()),
            ("LITEHOUSE_REFRESH_SECS", "0".to_string()),
        ],
    )
    .await;
    let mut event = fixture("function-url-predict-linnerud.json");
    event["rawPath"] = json!("/v1/endpoints/lin:predict");
    event["requestContext"]["http"]["path"] = event["rawPath"].clone();

    let (kind, res) = lambda.invoke("s-1", event.clone()).await;
    assert_eq!(kind, "response", "{res}");
    assert_eq!(res["statusCode"], 200, "{res}");
    assert_eq!(body_of(&res)["deployedModelId"], "1");
    assert_eq!(body_of(&res)["modelVersionId"], "1");

    let split = serde_json::from_value(json!({"1": 0, "2": 100})).unwrap();
    reg.set_traffic_split("lin", &split, None).await.unwrap();
    let (_, res) = lambda.invoke("s-2", event).await;
    assert_eq!(res["statusCode"], 200, "{res}");
    assert_eq!(body_of(&res)["deployedModelId"], "2");
    assert_eq!(body_of(&res)["modelVersionId"], "2");
}

/// Lines of `lines` that parse as JSON objects.
fn json_lines(lines: &[String]) -> Vec<Json> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Json>(l).ok())
        .filter(Json::is_object)
        .collect()
}

/// The function as CloudWatch would see it: JSON log lines (AWS_LAMBDA_LOG_FORMAT=JSON) carrying
/// the Lambda request id, one EMF line per prediction with the `_aws` metadata, and every
/// sampled prediction written before its invocation returns, so none is lost when the sandbox
/// is frozen or killed between invocations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_predict_binary_logs_measures_and_keeps_every_sampled_prediction() {
    let models = root().join("models/catalog").display().to_string();
    let logs = tempfile::tempdir().unwrap();
    let mut lambda = Running::start(
        env!("CARGO_BIN_EXE_predict"),
        &[
            ("LITEHOUSE_MODELS", models),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
            ("AWS_LAMBDA_LOG_LEVEL", "DEBUG".into()),
            ("LITEHOUSE_LOG_PREDICTIONS", "1".into()),
            (
                "LITEHOUSE_PREDICTION_LOG",
                logs.path().display().to_string(),
            ),
        ],
    )
    .await;
    let ids: Vec<String> = (1..=4).map(|i| format!("ops-{i}")).collect();
    for (n, id) in ids.iter().enumerate() {
        let (kind, res) = lambda
            .invoke(id, fixture("function-url-predict-linnerud.json"))
            .await;
        assert_eq!(kind, "response", "{res}");
        assert_eq!(res["statusCode"], 200, "{res}");
        assert_eq!(res["headers"]["x-request-id"], id.as_str(), "{res}");
        // Written before the answer left: nothing waits for a later invocation.
        assert_eq!(logged(logs.path()).len(), n + 1, "after invocation {id}");
    }
    lambda.kill();
    let records = logged(logs.path());
    let mut seen: Vec<&str> = records
        .iter()
        .map(|r| r["requestId"].as_str().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, ids.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        records[0]["request"]["instances"].as_array().unwrap().len(),
        2
    );

    let lines = json_lines(&lambda.stdout_lines());
    let emf = lambda.emf_lines();
    assert_eq!(emf.len(), ids.len(), "{lines:?}");
    for (line, id) in emf.iter().zip(&ids) {
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert!(line["_aws"]["Timestamp"].is_u64(), "{line}");
        assert_eq!(directive["Namespace"], "litehouse", "{line}");
        for dimension in directive["Dimensions"][0].as_array().unwrap() {
            assert!(line[dimension.as_str().unwrap()].is_string(), "{line}");
        }
        for metric in directive["Metrics"].as_array().unwrap() {
            assert!(line[metric["Name"].as_str().unwrap()].is_number(), "{line}");
        }
        assert_eq!(line["endpoint"], "linnerud");
        assert_eq!(line["requestId"], id.as_str());
    }
    let answered: Vec<&Json> = lines
        .iter()
        .filter(|l| l["message"] == "answered")
        .collect();
    assert_eq!(answered.len(), ids.len(), "{lines:?}");
    for (line, id) in answered.iter().zip(&ids) {
        assert_eq!(line["span"]["request_id"], id.as_str(), "{line}");
        assert_eq!(line["level"], "DEBUG", "{line}");
    }
}
