//! Typed shapes of what the routes send and receive. Responses are serialized from these types,
//! and `/openapi.json` is generated from them (utoipa), so the document cannot drift from the
//! wire. Requests are parsed leniently by hand (any Content-Type, precise messages); their types
//! here describe them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use utoipa::ToSchema;

/// Vertex AI `:predict` request.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PredictRequest {
    /// Nested numeric arrays, objects keyed by input name, or `{"b64": "<image>"}`.
    pub instances: Vec<Json>,
    /// Ignored; accepted for compatibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Json>,
}

/// Vertex AI `:predict` / `:rawPredict` response.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PredictResponse {
    /// One prediction per instance (tensor, or `{"class", "label", "scores", "top_k"}` for
    /// classifiers with postprocessing).
    pub predictions: Vec<Json>,
    /// Deployed model that answered.
    pub deployed_model_id: String,
    /// Model resource name.
    pub model: String,
    /// Model version.
    pub model_version_id: String,
    /// Display name of the deployed model.
    pub model_display_name: String,
}

/// Google's REST client wrapping of `:rawPredict` bodies.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpBody {
    /// Content type of `data`.
    pub content_type: String,
    /// Base64 of the body.
    pub data: String,
}

/// Vertex AI `Endpoint` resource.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointResource {
    /// `projects/{p}/locations/{l}/endpoints/{id}`.
    pub name: String,
    /// Human name.
    pub display_name: String,
    /// Deployed models (shadows included, marked).
    pub deployed_models: Vec<DeployedModelResource>,
    /// deployedModelId -> percent.
    pub traffic_split: BTreeMap<String, u32>,
    /// Version of the endpoint's state.
    pub etag: String,
}

/// Vertex AI `DeployedModel`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeployedModelResource {
    /// Short digit string.
    pub id: String,
    /// Model resource name.
    pub model: String,
    /// Model version.
    pub model_version_id: String,
    /// Display name.
    pub display_name: String,
    /// litehouse extension: a shadow gets a copy of the traffic; its answers are only logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub litehouse_shadow: Option<bool>,
}

/// `GET /v1/endpoints`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EndpointList {
    /// Every endpoint.
    pub endpoints: Vec<EndpointResource>,
}

/// google.rpc.Status error body (Vertex routes).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RpcError {
    /// The status.
    pub error: RpcStatus,
}

/// google.rpc.Status.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RpcStatus {
    /// HTTP status code.
    pub code: u16,
    /// What was expected and what was received.
    pub message: String,
    /// Canonical code name (`INVALID_ARGUMENT`, ...).
    pub status: String,
}

/// `{"error": "..."}` (TF Serving and V2 routes).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PlainError {
    /// What was expected and what was received.
    pub error: String,
}

/// TF Serving predict request: row (`instances`) or columnar (`inputs`), not both.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TfPredictRequest {
    /// Ignored beyond `serving_default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_name: Option<String>,
    /// Row format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<Vec<Json>>,
    /// Columnar format: a tensor, or `{name: tensor}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Json>,
}

/// TF Serving predict response: `predictions` (row) or `outputs` (columnar).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TfPredictResponse {
    /// Row format answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predictions: Option<Json>,
    /// Columnar format answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Json>,
}

/// TF Serving `GET /v1/models/{m}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelStatus {
    /// One entry per version (loaded or failed).
    pub model_version_status: Vec<VersionStatus>,
}

/// One version's state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VersionStatus {
    /// Version number.
    pub version: String,
    /// `AVAILABLE` or `END` (failed to load).
    pub state: String,
    /// Error code and message.
    pub status: StatusDetail,
}

/// Error code and message of a version.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatusDetail {
    /// `OK` or the failure's code.
    pub error_code: String,
    /// Why it failed, if it did.
    pub error_message: String,
}

/// A V2 tensor.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InferTensor {
    /// Input or output name.
    pub name: String,
    /// Shape, batch first.
    pub shape: Vec<i64>,
    /// `FP32`, `INT8`, `UINT8`, ..., `BYTES`.
    pub datatype: String,
    /// Row-major values (absent when sent in binary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Json>,
    /// `binary_data_size` with the binary tensor extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Json>,
}

/// A requested V2 output.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RequestedOutput {
    /// Output name.
    pub name: String,
    /// `{"binary_data": true}` for raw bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Json>,
}

/// V2 infer request.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InferRequest {
    /// Echoed back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Json>,
    /// One tensor per model input.
    pub inputs: Vec<InferTensor>,
    /// Outputs wanted (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<RequestedOutput>>,
    /// `binary_data_output`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Json>,
}

/// V2 infer response.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InferResponse {
    /// Model name.
    pub model_name: String,
    /// Model version.
    pub model_version: String,
    /// The request's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Json>,
    /// Output tensors.
    pub outputs: Vec<InferTensor>,
}

/// V2 model metadata.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelMetadata {
    /// Model name.
    pub name: String,
    /// Loaded versions.
    pub versions: Vec<String>,
    /// `tflite`.
    pub platform: String,
    /// Inputs (-1 for a variable dimension).
    pub inputs: Vec<TensorMetadata>,
    /// Outputs.
    pub outputs: Vec<TensorMetadata>,
}

/// Name, datatype and shape of a model tensor.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TensorMetadata {
    /// Name.
    pub name: String,
    /// V2 datatype.
    pub datatype: String,
    /// Shape (-1 = variable).
    pub shape: Vec<i64>,
}

/// `{"ready": bool}` / `{"live": bool}` style answers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Ready {
    /// Readiness.
    pub ready: bool,
}
