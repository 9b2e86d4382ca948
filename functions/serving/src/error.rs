//! Serving errors: a predictor [`Code`] (or an HTTP-only status such as 413), rendered in each
//! protocol's wire format.

use axum::http::StatusCode;
pub use litehouse_predictor::Code;
use litehouse_predictor::PredictError;

/// The HTTP status Vertex AI answers a canonical code with; every code has one.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::InvalidArgument | Code::FailedPrecondition => StatusCode::BAD_REQUEST,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::Aborted | Code::AlreadyExists => StatusCode::CONFLICT,
        Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
    }
}

/// A failed request: a canonical code, an explicit HTTP status when it differs from the code's
/// (413 for an oversized body), and a message that says what was expected and what was received.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ServeError {
    /// Canonical code.
    pub code: Code,
    /// HTTP status override.
    pub status: Option<StatusCode>,
    /// Human-readable message.
    pub message: String,
}

impl ServeError {
    /// An error with a code and message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ServeError {
            code,
            status: None,
            message: message.into(),
        }
    }

    /// INVALID_ARGUMENT (400).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    /// NOT_FOUND (404).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }

    /// A body over the configured limit: RESOURCE_EXHAUSTED with HTTP 413.
    pub fn too_large(limit: usize) -> Self {
        ServeError {
            code: Code::ResourceExhausted,
            status: Some(StatusCode::PAYLOAD_TOO_LARGE),
            message: format!(
                "request body exceeds the limit of {limit} bytes (set --max-body-bytes to change it)"
            ),
        }
    }

    /// The HTTP status to answer with.
    pub fn http(&self) -> StatusCode {
        self.status.unwrap_or_else(|| http_status(self.code))
    }

    /// Adds context in front of the message.
    pub fn context(mut self, prefix: impl std::fmt::Display) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }
}

impl From<PredictError> for ServeError {
    fn from(e: PredictError) -> Self {
        ServeError::new(e.code, e.message)
    }
}

impl From<litehouse_models::ModelError> for ServeError {
    fn from(e: litehouse_models::ModelError) -> Self {
        PredictError::from(e).into()
    }
}

/// Which wire format an error is rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// google.rpc.Status: `{"error": {"code", "message", "status"}}` (Vertex AI, litehouse admin).
    Rpc,
    /// `{"error": "<message>"}` (TF Serving, KServe V2).
    Plain,
}

/// The wire format of errors on `path`: google.rpc.Status on Vertex AI's routes and everything
/// that is not TF Serving or KServe.
pub fn wire_for_path(path: &str) -> Wire {
    if path.starts_with("/v1/models") || path.starts_with("/v2") {
        Wire::Plain
    } else {
        Wire::Rpc
    }
}

impl ServeError {
    /// Renders the error as a response in `wire` format.
    pub fn into_response_as(self, wire: Wire) -> axum::response::Response {
        let body = match wire {
            Wire::Rpc => serde_json::to_value(crate::wire::RpcError {
                error: crate::wire::RpcStatus {
                    code: self.http().as_u16(),
                    message: self.message.clone(),
                    status: self.code.name().to_string(),
                },
            }),
            Wire::Plain => serde_json::to_value(crate::wire::PlainError {
                error: self.message.clone(),
            }),
        }
        .unwrap_or_default();
        if self.code == Code::Internal {
            tracing::error!(message = %self.message, "internal error");
        } else {
            tracing::debug!(code = self.code.name(), message = %self.message, "request refused");
        }
        crate::response::json_response(self.http(), &body)
    }
}

impl From<litehouse_registry::RegistryError> for ServeError {
    fn from(e: litehouse_registry::RegistryError) -> Self {
        PredictError::from(e).into()
    }
}
