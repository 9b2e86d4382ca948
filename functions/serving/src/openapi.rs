//! `/openapi.json` (OpenAPI 3.0) and a small `/docs` page.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value as Json};

use crate::body;

fn op(summary: &str, request: Option<&str>, response: &str) -> Json {
    let mut o = json!({
        "summary": summary,
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{response}")}}}},
            "400": {"description": "Invalid argument (shape, dtype, JSON, image)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "404": {"description": "Unknown endpoint, model or version"},
            "413": {"description": "Body over the configured limit"},
            "429": {"description": "Server at capacity"}
        }
    });
    if let Some(r) = request {
        o["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{r}")}}}});
    }
    o
}

fn path_params(names: &[&str]) -> Json {
    names
        .iter()
        .map(|n| json!({"name": n, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

/// The OpenAPI document of every route the Router serves.
pub async fn document() -> Response {
    let any = json!({});
    let doc = json!({
        "openapi": "3.0.3",
        "info": {"title": "litehouse online prediction", "version": env!("CARGO_PKG_VERSION")},
        "paths": {
            "/v1/projects/{project}/locations/{location}/endpoints/{endpoint}:predict": {
                "parameters": path_params(&["project", "location", "endpoint"]),
                "post": op("Vertex AI predict", Some("PredictRequest"), "PredictResponse")},
            "/v1/projects/{project}/locations/{location}/endpoints/{endpoint}:rawPredict": {
                "parameters": path_params(&["project", "location", "endpoint"]),
                "post": op("Vertex AI rawPredict: an image/png or image/jpeg body", None, "PredictResponse")},
            "/v1/projects/{project}/locations/{location}/endpoints/{endpoint}": {
                "parameters": path_params(&["project", "location", "endpoint"]),
                "get": op("Describe an endpoint", None, "Endpoint")},
            "/v1/endpoints/{endpoint}:predict": {
                "parameters": path_params(&["endpoint"]),
                "post": op("Vertex AI predict (short alias)", Some("PredictRequest"), "PredictResponse")},
            "/v1/models/{model}:predict": {
                "parameters": path_params(&["model"]),
                "post": op("TF Serving predict (row or columnar)", Some("TfPredictRequest"), "TfPredictResponse")},
            "/v1/models/{model}/versions/{version}:predict": {
                "parameters": path_params(&["model", "version"]),
                "post": op("TF Serving predict on a version", Some("TfPredictRequest"), "TfPredictResponse")},
            "/v1/models/{model}": {"parameters": path_params(&["model"]), "get": op("TF Serving model status", None, "Any")},
            "/v1/models/{model}/metadata": {"parameters": path_params(&["model"]), "get": op("TF Serving signature", None, "Any")},
            "/v2/health/live": {"get": op("Liveness", None, "Any")},
            "/v2/health/ready": {"get": op("Readiness", None, "Any")},
            "/v2/models/{model}": {"parameters": path_params(&["model"]), "get": op("V2 model metadata", None, "Any")},
            "/v2/models/{model}/infer": {"parameters": path_params(&["model"]), "post": op("V2 inference", Some("InferRequest"), "InferResponse")},
            "/healthz": {"get": op("Liveness", None, "Any")},
            "/readyz": {"get": op("Ready once models are loaded", None, "Any")}
        },
        "components": {"schemas": {
            "Any": any,
            "PredictRequest": {"type": "object", "required": ["instances"], "properties": {
                "instances": {"type": "array", "items": {}, "description": "Nested numeric arrays, objects keyed by input name, or {\"b64\": image}"},
                "parameters": {}}},
            "PredictResponse": {"type": "object", "properties": {
                "predictions": {"type": "array", "items": {}},
                "deployedModelId": {"type": "string"}, "model": {"type": "string"},
                "modelVersionId": {"type": "string"}, "modelDisplayName": {"type": "string"}}},
            "Endpoint": {"type": "object", "properties": {
                "name": {"type": "string"}, "displayName": {"type": "string"},
                "deployedModels": {"type": "array", "items": {"type": "object"}},
                "trafficSplit": {"type": "object", "additionalProperties": {"type": "integer"}},
                "etag": {"type": "string"}}},
            "TfPredictRequest": {"type": "object", "properties": {
                "signature_name": {"type": "string"}, "instances": {"type": "array", "items": {}}, "inputs": {}}},
            "TfPredictResponse": {"type": "object", "properties": {"predictions": {}, "outputs": {}}},
            "Tensor": {"type": "object", "required": ["name", "shape", "datatype", "data"], "properties": {
                "name": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer"}},
                "datatype": {"type": "string"}, "data": {"type": "array", "items": {}}}},
            "InferRequest": {"type": "object", "required": ["inputs"], "properties": {
                "id": {"type": "string"}, "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
                "outputs": {"type": "array", "items": {"type": "object"}}}},
            "InferResponse": {"type": "object", "properties": {
                "model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
                "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}}}},
            "Error": {"type": "object", "properties": {"error": {}}}
        }}
    });
    body::ok_json(&doc)
}

/// A minimal human page listing the routes and linking the document.
pub async fn page() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!doctype html><title>litehouse</title><h1>litehouse online prediction</h1>\
         <p>OpenAPI document: <a href=\"/openapi.json\">/openapi.json</a></p>\
         <ul><li>Vertex AI: POST /v1/projects/{p}/locations/{l}/endpoints/{e}:predict, :rawPredict</li>\
         <li>TF Serving: POST /v1/models/{m}[/versions/{v}]:predict, GET /v1/models/{m}/metadata</li>\
         <li>KServe V2: POST /v2/models/{m}/infer, GET /v2/health/ready</li></ul>",
    )
        .into_response()
}
