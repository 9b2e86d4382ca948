//! Every protocol over real HTTP on 127.0.0.1 against the example catalog (MNIST int8 CNN and
//! the linnerud int8 regressor); answers compared with the model run directly.

#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use litehouse_models::instances::{predict_instances, InputValues};
use litehouse_models::{LoadedModel, OutputMode};
use serde_json::{json, Value as Json};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// POSTs a JSON body and reads the JSON answer.
async fn post_json(client: &reqwest::Client, url: String, body: &Json) -> Json {
    let resp = client.post(url).json(body).send().await.unwrap();
    resp.json().await.unwrap()
}

fn linnerud_direct(rows: &Json) -> Vec<Json> {
    let model = LoadedModel::load_file(
        common::root().join("models/runtime/testdata/exported/tabular_int8_float_io.tflite"),
    )
    .unwrap();
    predict_instances(
        &model,
        rows.as_array().unwrap(),
        InputValues::Native,
        OutputMode::Float,
    )
    .unwrap()
}

#[tokio::test]
async fn vertex_predict_classifies_ten_real_digits_as_b64() {
    let base = common::start().await;
    let instances: Vec<Json> = common::digit_pngs()
        .iter()
        .map(|p| json!({ "b64": b64(p) }))
        .collect();
    let url = format!("{base}/v1/projects/demo/locations/us-central1/endpoints/mnist:predict");
    let res = reqwest::Client::new()
        .post(url)
        .json(&json!({ "instances": instances }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Json = res.json().await.unwrap();
    assert_eq!(body["deployedModelId"], "1");
    assert_eq!(
        body["model"],
        "projects/demo/locations/us-central1/models/mnist"
    );
    assert_eq!(body["modelVersionId"], "1");
    let classes: Vec<i64> = body["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["class"].as_i64().unwrap())
        .collect();
    assert_eq!(classes, (0..10).collect::<Vec<_>>());
    assert_eq!(body["predictions"][3]["label"], "3");
    assert_eq!(body["predictions"][3]["top_k"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn raw_predict_and_multipart_uploads_classify_every_digit() {
    let base = common::start().await;
    let client = reqwest::Client::new();
    for (digit, png) in common::digit_pngs().into_iter().enumerate() {
        let res = client
            .post(format!("{base}/v1/endpoints/mnist:rawPredict"))
            .header("content-type", "image/png")
            .body(png.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["x-vertex-ai-endpoint-id"], "mnist");
        assert_eq!(res.headers()["x-vertex-ai-deployed-model-id"], "1");
        let body: Json = res.json().await.unwrap();
        assert_eq!(body["predictions"][0]["class"], digit, "rawPredict {digit}");

        let form = reqwest::multipart::Form::new().part(
            "image",
            reqwest::multipart::Part::bytes(png)
                .file_name(format!("digit-{digit}.png"))
                .mime_str("image/png")
                .unwrap(),
        );
        let res = client
            .post(format!("{base}/v1/endpoints/mnist:predict"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: Json = res.json().await.unwrap();
        assert_eq!(body["predictions"][0]["class"], digit, "multipart {digit}");
    }
}

#[tokio::test]
async fn raw_predict_accepts_the_rest_clients_http_body_wrapping() {
    let base = common::start().await;
    let png = &common::digit_pngs()[7];
    let res = reqwest::Client::new()
        .post(format!(
            "{base}/v1/projects/p/locations/l/endpoints/mnist:rawPredict?$alt=json;enum-encoding=int"
        ))
        .json(&json!({"httpBody": {"contentType": "image/png", "data": b64(png)}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Json = res.json().await.unwrap();
    assert_eq!(body["contentType"], "application/json");
    let inner = base64::engine::general_purpose::STANDARD
        .decode(body["data"].as_str().unwrap())
        .unwrap();
    let inner: Json = serde_json::from_slice(&inner).unwrap();
    assert_eq!(inner["predictions"][0]["class"], 7);
}

#[tokio::test]
async fn linnerud_answers_match_the_model_on_every_protocol() {
    let base = common::start().await;
    let client = reqwest::Client::new();
    let rows = json!([[5, 162, 60], [2, 110, 43], [12, 101, 101]]);
    let expected = linnerud_direct(&rows);

    // Vertex, sent as curl -d does (form-urlencoded content type).
    let res = client
        .post(format!("{base}/v1/endpoints/linnerud:predict"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(json!({ "instances": rows }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Json = res.json().await.unwrap();
    assert_eq!(body["predictions"].as_array().unwrap(), &expected);

    // TF Serving row format, latest and explicit version.
    for path in ["linnerud:predict", "linnerud/versions/1:predict"] {
        let body = post_json(
            &client,
            format!("{base}/v1/models/{path}"),
            &json!({ "instances": rows }),
        )
        .await;
        assert_eq!(body["predictions"].as_array().unwrap(), &expected, "{path}");
    }
    // TF Serving columnar format.
    let body = post_json(
        &client,
        format!("{base}/v1/models/linnerud:predict"),
        &json!({ "inputs": rows }),
    )
    .await;
    assert_eq!(body["outputs"].as_array().unwrap(), &expected);

    // KServe V2 with a flat data array and no Content-Type (as tritonclient sends it).
    let flat: Vec<f64> = rows
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
        .collect();
    let input_name = {
        let meta: Json = get_json(&client, &format!("{base}/v2/models/linnerud")).await;
        assert_eq!(meta["platform"], "tflite");
        assert_eq!(meta["inputs"][0]["shape"], json!([-1, 3]));
        meta["inputs"][0]["name"].as_str().unwrap().to_string()
    };
    let res = client
        .post(format!("{base}/v2/models/linnerud/infer"))
        .body(
            json!({"id": "req-1", "inputs": [{"name": input_name, "shape": [3, 3], "datatype": "FP32", "data": flat}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Json = res.json().await.unwrap();
    assert_eq!(body["id"], "req-1");
    assert_eq!(body["model_name"], "linnerud");
    assert_eq!(body["outputs"][0]["shape"], json!([3, 3]));
    let want: Vec<f64> = expected
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
        .collect();
    let got: Vec<f64> = body["outputs"][0]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn gzip_bodies_are_accepted() {
    use std::io::Write;
    let base = common::start().await;
    let doc = json!({"instances": [[5, 162, 60]]}).to_string();
    let mut enc = flate2::write::GzEncoder::new(vec![], flate2::Compression::default());
    enc.write_all(doc.as_bytes()).unwrap();
    let res = reqwest::Client::new()
        .post(format!("{base}/v1/endpoints/linnerud:predict"))
        .header("content-encoding", "gzip")
        .body(enc.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Json = res.json().await.unwrap();
    assert_eq!(
        body["predictions"].as_array().unwrap(),
        &linnerud_direct(&json!([[5, 162, 60]]))
    );
}

#[tokio::test]
async fn status_metadata_health_and_descriptions() {
    let base = common::start().await;
    let client = reqwest::Client::new();
    let get = |path: &str| {
        let url = format!("{base}{path}");
        let client = client.clone();
        async move {
            let res = client.get(url).send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Json>().await.unwrap_or(Json::Null))
        }
    };
    let (s, b) = get("/v1/models/mnist").await;
    assert_eq!(s, 200);
    assert_eq!(b["model_version_status"][0]["state"], "AVAILABLE");
    let (s, b) = get("/v1/models/mnist/metadata").await;
    assert_eq!(s, 200);
    let sig = &b["metadata"]["signature_def"]["signature_def"];
    let (_, def) = sig.as_object().unwrap().iter().next().unwrap();
    let input = def["inputs"].as_object().unwrap().values().next().unwrap();
    assert_eq!(input["dtype"], "DT_INT8");
    let (s, b) = get("/v1/projects/p/locations/l/endpoints/mnist").await;
    assert_eq!(s, 200);
    assert_eq!(b["trafficSplit"], json!({"1": 100}));
    assert_eq!(b["deployedModels"][0]["id"], "1");
    assert_eq!(get("/v2/health/live").await.0, 200);
    assert_eq!(get("/v2/health/ready").await.0, 200);
    assert_eq!(get("/v2/models/mnist/ready").await.0, 200);
    assert_eq!(get("/v2/models/mnist/versions/1").await.0, 200);
    assert_eq!(get("/healthz").await.0, 200);
    let (s, b) = get("/readyz").await;
    assert_eq!((s, b["models"].as_u64()), (200, Some(2)));
    let (s, b) = get("/openapi.json").await;
    assert_eq!(s, 200);
    assert!(b["paths"]
        .as_object()
        .unwrap()
        .contains_key("/v2/models/{model}/infer"));
    let (s, b) = get("/v1/models").await;
    assert_eq!(s, 200);
    assert_eq!(b["models"].as_array().unwrap().len(), 2);
}

/// A V2 binary-extension request: the JSON header, then the raw tensor bytes.
async fn post_binary(
    client: &reqwest::Client,
    url: &str,
    header: &str,
    raw: Vec<u8>,
) -> reqwest::Response {
    let mut body = header.as_bytes().to_vec();
    body.extend(raw);
    client
        .post(url)
        .header("Inference-Header-Content-Length", header.len())
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The V2 binary tensor extension as tritonclient sends it: a JSON header of
/// `Inference-Header-Content-Length` bytes, then raw little-endian tensors; binary outputs back.
#[tokio::test]
async fn kserve_binary_tensors_in_and_out() {
    let base = common::start().await;
    let client = reqwest::Client::new();
    let rows = json!([[5.0, 162.0, 60.0], [2.0, 110.0, 43.0]]);
    let expected = linnerud_direct(&rows);

    let header = json!({
        "inputs": [{"name": "keras_tensor_11", "shape": [2, 3], "datatype": "FP32",
                    "parameters": {"binary_data_size": 24}}],
        "outputs": [{"name": "output_0", "parameters": {"binary_data": true}}],
    })
    .to_string();
    let mut raw = vec![];
    for v in rows
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
    {
        raw.extend((v.as_f64().unwrap() as f32).to_le_bytes());
    }
    let resp = post_binary(
        &client,
        &format!("{base}/v2/models/linnerud/infer"),
        &header,
        raw,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let json_len: usize = resp.headers()["inference-header-content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let bytes = resp.bytes().await.unwrap();
    let answer: Json = serde_json::from_slice(&bytes[..json_len]).unwrap();
    assert_eq!(
        answer["outputs"][0]["parameters"]["binary_data_size"], 24,
        "{answer}"
    );
    assert_eq!(answer["outputs"][0]["shape"], json!([2, 3]));
    let got: Vec<f32> = bytes[json_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let want: Vec<f32> = expected
        .iter()
        .flat_map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
        })
        .collect();
    assert_eq!(got, want);

    // BYTES: one encoded PNG per batch item (4-byte length prefix each), JSON output.
    let digits = common::digit_pngs();
    let mut raw = vec![];
    for png in &digits[3..5] {
        raw.extend((png.len() as u32).to_le_bytes());
        raw.extend(png);
    }
    let header = json!({"inputs": [{"name": "image", "shape": [2], "datatype": "BYTES",
                                     "parameters": {"binary_data_size": raw.len()}}]})
    .to_string();
    let resp = post_binary(
        &client,
        &format!("{base}/v2/models/mnist/infer"),
        &header,
        raw,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let answer: Json = resp.json().await.unwrap();
    let data: Vec<f64> = answer["outputs"][0]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let argmax = |row: &[f64]| {
        row.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0
    };
    assert_eq!(argmax(&data[..10]), 3);
    assert_eq!(argmax(&data[10..20]), 4);

    // A header length beyond the body is a clear 400.
    let resp = client
        .post(format!("{base}/v2/models/linnerud/infer"))
        .header("Inference-Header-Content-Length", "9999")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let err: Json = resp.json().await.unwrap();
    assert!(
        err["error"].as_str().unwrap().contains("only 2 bytes"),
        "{err}"
    );
}

/// The generated OpenAPI document covers the routes, and every documented path is served: a
/// request with its parameters filled in never falls through to the router's 404 for unknown
/// routes.
#[tokio::test]
async fn every_documented_path_is_served() {
    let base = common::start().await;
    let client = reqwest::Client::new();
    let doc: Json = get_json(&client, &format!("{base}/openapi.json")).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(
        doc["components"]["schemas"]["PredictResponse"]["properties"]
            .get("deployedModelId")
            .is_some()
    );
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{} paths", paths.len());
    for (path, item) in paths {
        let url = path
            .replace("{project}", "p")
            .replace("{location}", "l")
            .replace("{endpoint}", "linnerud")
            .replace("{model}", "linnerud")
            .replace("{version}", "1")
            .replace("{label}", "none");
        for method in item.as_object().unwrap().keys() {
            let req = match method.as_str() {
                "get" => client.get(format!("{base}{url}")),
                "post" => client
                    .post(format!("{base}{url}"))
                    .body(r#"{"instances": [[5, 162, 60]]}"#),
                other => panic!("unexpected method {other}"),
            };
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            assert!(
                !text.contains("no route") && status != 405,
                "{method} {url}: {status} {text}"
            );
        }
    }
}

/// GET `url` and parse the JSON answer.
async fn get_json(client: &reqwest::Client, url: &str) -> Json {
    client.get(url).send().await.unwrap().json().await.unwrap()
}
