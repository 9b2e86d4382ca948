//! Serving errors: one canonical code per failure, rendered in each protocol's wire format.

use axum::http::StatusCode;
use litehouse_models::ModelError;

/// google.rpc canonical codes litehouse answers with (names and HTTP mapping as Vertex AI uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Bad request content (shape, dtype, JSON, image).
    InvalidArgument,
    /// The request is well formed but the server state forbids it (model not ready).
    FailedPrecondition,
    /// No such endpoint, model, version or route.
    NotFound,
    /// Lost a compare-and-swap race.
    Aborted,
    /// Creating something that exists.
    AlreadyExists,
    /// Stored data is corrupt (an artifact failing its sha256 check).
    DataLoss,
    /// Queue full or body too large.
    ResourceExhausted,
    /// Nothing else fits; a bug or an engine failure.
    Internal,
    /// The method is not implemented on this route.
    Unimplemented,
    /// The server is not ready (models still loading, shutting down).
    Unavailable,
}

impl Code {
    /// HTTP status Vertex AI uses for the code.
    pub fn http(self) -> StatusCode {
        match self {
            Code::InvalidArgument | Code::FailedPrecondition => StatusCode::BAD_REQUEST,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::Aborted | Code::AlreadyExists => StatusCode::CONFLICT,
            Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The canonical name (`INVALID_ARGUMENT`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::NotFound => "NOT_FOUND",
            Code::Aborted => "ABORTED",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::DataLoss => "DATA_LOSS",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::Internal => "INTERNAL",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Unavailable => "UNAVAILABLE",
        }
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
        self.status.unwrap_or_else(|| self.code.http())
    }

    /// Adds context in front of the message.
    pub fn context(mut self, prefix: impl std::fmt::Display) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }
}

impl From<ModelError> for ServeError {
    fn from(e: ModelError) -> Self {
        let code = match &e {
            ModelError::InvalidInput(_) => Code::InvalidArgument,
            // A model that cannot run is the server's problem, not the caller's.
            ModelError::InvalidModel(_)
            | ModelError::UnsupportedOp { .. }
            | ModelError::UnsupportedFeature(_)
            | ModelError::InvalidOp { .. }
            | ModelError::Engine(_) => Code::Internal,
        };
        let message = match e {
            ModelError::InvalidInput(m) => m,
            other => other.to_string(),
        };
        ServeError::new(code, message)
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
        crate::body::json_response(self.http(), &body)
    }
}

impl From<litehouse_registry::RegistryError> for ServeError {
    fn from(e: litehouse_registry::RegistryError) -> Self {
        use litehouse_registry::RegistryError as R;
        let code = match &e {
            R::NotFound(_) => Code::NotFound,
            R::AlreadyExists(_) => Code::AlreadyExists,
            R::InvalidArgument(_) | R::Model(_) => Code::InvalidArgument,
            R::FailedPrecondition(_) => Code::FailedPrecondition,
            R::Aborted(_) => Code::Aborted,
            R::Integrity { .. } | R::Corrupt { .. } => Code::DataLoss,
            R::Store(_) => Code::Unavailable,
        };
        ServeError::new(code, e.to_string())
    }
}
