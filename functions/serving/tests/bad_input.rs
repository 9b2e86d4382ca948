//! Bad input gets the right status and a precise message, and the server keeps serving.

#![allow(clippy::unwrap_used)]

mod common;

use serde_json::{json, Value as Json};

fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    png.extend((data.len() as u32).to_be_bytes());
    png.extend(kind);
    png.extend(data);
    png.extend(crc.sum().to_be_bytes());
}

/// A PNG whose header declares `w` x `h` pixels, followed by a tiny, far too short image stream.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]); // 8-bit grayscale
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(
        &mut png,
        b"IDAT",
        &[0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01],
    );
    chunk(&mut png, b"IEND", &[]);
    png
}

struct Case {
    what: &'static str,
    path: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    status: u16,
    message: &'static str,
}

fn case(
    what: &'static str,
    path: &'static str,
    body: impl Into<Vec<u8>>,
    status: u16,
    message: &'static str,
) -> Case {
    Case {
        what,
        path,
        content_type: "application/json",
        body: body.into(),
        status,
        message,
    }
}

fn error_message(path: &str, body: &Json) -> (String, Option<String>) {
    let rpc_route = path.starts_with("/v1/endpoints") || path.starts_with("/v1/projects");
    let plain_route = path.starts_with("/v1/models") || path.starts_with("/v2");
    if rpc_route || !plain_route {
        // google.rpc.Status
        assert!(body["error"].is_object(), "{path}: {body}");
        (
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            body["error"]["status"].as_str().map(str::to_string),
        )
    } else {
        assert!(body["error"].is_string(), "{path}: {body}");
        (body["error"].as_str().unwrap_or_default().to_string(), None)
    }
}

#[tokio::test]
async fn every_bad_request_gets_a_precise_error_and_the_server_keeps_serving() {
    let base = common::start().await;
    let client = reqwest::Client::new();
    let lin = "/v1/endpoints/linnerud:predict";
    let raw = "/v1/endpoints/mnist:rawPredict";
    let many: Vec<Json> = (0..257).map(|_| json!([1, 2, 3])).collect();
    let mut cases = vec![
        case("malformed JSON", lin, "{\"instances\": [[1, 2", 400, "malformed JSON at line 1"),
        case("empty body", lin, "", 400, "the request body is empty"),
        case("no instances", lin, "{\"rows\": []}", 400, "no \"instances\" field (got keys: rows)"),
        case("instances not an array", lin, "{\"instances\": 3}", 400, "\"instances\" must be a JSON array, got a number"),
        case("empty instances", lin, "{\"instances\": []}", 400, "\"instances\" is empty"),
        case("wrong shape", lin, "{\"instances\": [[1, 2, 3], [1, 2]]}", 400,
             "expects shape [3] (3 values), got shape [2] (2 values)"),
        case("ragged", lin, "{\"instances\": [[[1, 2], [3]]]}", 400, "instance 0: ragged array"),
        case("wrong dtype", lin, "{\"instances\": [[\"a\", 1, 2]]}", 400, "instance 0: a string (\"a\") where a number was expected"),
        case("NaN literal", lin, "{\"instances\": [[NaN, 1, 2]]}", 400, "malformed JSON"),
        case("Infinity overflow", lin, "{\"instances\": [[1e999, 1, 2]]}", 400, "malformed JSON"),
        case("too many instances", lin, json!({"instances": many}).to_string(), 400,
             "257 instances sent; model 'linnerud' accepts at most 256 per request"),
        case("image for a tabular model", lin, "{\"instances\": [{\"b64\": \"aGVsbG8=\"}]}", 400,
             "instance 0: model 'linnerud' takes numeric tensors, not images"),
        case("bad base64", "/v1/endpoints/mnist:predict", "{\"instances\": [{\"b64\": \"***\"}]}", 400,
             "instance 0: \"b64\" is not valid base64"),
        case("non-image b64", "/v1/endpoints/mnist:predict", "{\"instances\": [{\"b64\": \"aGVsbG8gd29ybGQ=\"}]}", 400,
             "instance 0: the data is not a PNG or JPEG image (11 bytes starting with 0x68656c6c6f20776f)"),
        case("unknown endpoint", "/v1/endpoints/nope:predict", "{\"instances\": [[1]]}", 404,
             "endpoint 'nope' not found (endpoints: linnerud, mnist)"),
        case("unknown method", "/v1/endpoints/mnist:explain", "{}", 501, "method ':explain' is not supported"),
        case("unknown model (TF Serving)", "/v1/models/nope:predict", "{\"instances\": [[1]]}", 404,
             "model 'nope' not found (served models: linnerud, mnist)"),
        case("unknown version (TF Serving)", "/v1/models/mnist/versions/7:predict", "{\"instances\": [[1]]}", 404,
             "model 'mnist' has no version 7 (versions: 1)"),
        case("both formats (TF Serving)", "/v1/models/linnerud:predict", "{\"instances\": [], \"inputs\": []}", 400,
             "not both"),
        case("unknown model (V2)", "/v2/models/nope/infer", "{\"inputs\": []}", 404, "model 'nope' not found"),
        case("V2 wrong datatype", "/v2/models/linnerud/infer",
             json!({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "BYTES", "data": ["a"]}]}).to_string(), 400,
             "expects FP32, got BYTES"),
        case("V2 wrong shape", "/v2/models/linnerud/infer",
             json!({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}).to_string(), 400,
             "expects shape [?, 3], got [1, 4]"),
        case("V2 data/shape mismatch", "/v2/models/linnerud/infer",
             json!({"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3]}]}).to_string(), 400,
             "shape [2, 3] needs 6 values, \"data\" has 3"),
        case("V2 fewer images than the batch", "/v2/models/mnist/infer",
             json!({"inputs": [{"name": "x", "shape": [2, 28, 28, 1], "datatype": "BYTES", "data": ["aGVsbG8="]}]}).to_string(), 400,
             "has batch 2, \"data\" holds 1 item(s)"),
        case("oversized body", lin, vec![b' '; 1_572_865], 413, "request body exceeds the limit of 1572864 bytes"),
        case("unknown route", "/v1/nothing/here", "", 404, "no route for /v1/nothing/here"),
    ];
    let mut non_image = case(
        "non-image raw body",
        raw,
        "plain text",
        400,
        "not a PNG or JPEG",
    );
    non_image.content_type = "image/png";
    cases.push(non_image);
    let mut huge = case(
        "PNG declaring 100000x100000",
        raw,
        png_header(100_000, 100_000),
        400,
        "image is 100000x100000 pixels; the limit is 8192x8192",
    );
    huge.content_type = "image/png";
    cases.push(huge);
    let mut truncated = case(
        "truncated PNG",
        raw,
        png_header(28, 28),
        400,
        "cannot decode the Png image",
    );
    truncated.content_type = "image/png";
    cases.push(truncated);

    for c in cases {
        let res = client
            .post(format!("{base}{}", c.path))
            .header("content-type", c.content_type)
            .body(c.body.clone())
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: Json = res.json().await.unwrap_or(Json::Null);
        let (message, rpc_status) = error_message(c.path, &body);
        assert_eq!(status, c.status, "{}: {body}", c.what);
        assert!(
            message.contains(c.message),
            "{}: message {message:?} lacks {:?}",
            c.what,
            c.message
        );
        if let Some(s) = rpc_status {
            let want = match status {
                400 => "INVALID_ARGUMENT",
                404 => "NOT_FOUND",
                413 => "RESOURCE_EXHAUSTED",
                501 => "UNIMPLEMENTED",
                _ => "",
            };
            assert_eq!(s, want, "{}", c.what);
            assert_eq!(body["error"]["code"], status, "{}", c.what);
        }
    }

    // Still serving, with the right answer.
    let res = client
        .post(format!("{base}/v1/endpoints/mnist:rawPredict"))
        .header("content-type", "image/png")
        .body(common::digit_pngs()[4].clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Json = res.json().await.unwrap();
    assert_eq!(body["predictions"][0]["class"], 4);
}
