//! Prediction errors: one canonical code per failure and a message that says what was expected
//! and what was received. Front doors map the code to their own status (HTTP, batch error lines).

use litehouse_models::ModelError;

/// google.rpc canonical codes litehouse answers with (names as Vertex AI uses them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// The server is not ready (models still loading, shutting down), or a store is unreachable.
    Unavailable,
    /// The request carries no valid credentials (a missing or wrong bearer token).
    Unauthenticated,
    /// The caller may not do this here (a disabled override header, a shadow asked for by id).
    PermissionDenied,
    /// The request took longer than the server's request timeout.
    DeadlineExceeded,
}

impl Code {
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
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        }
    }
}

/// A failed prediction or catalog operation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct PredictError {
    /// Canonical code.
    pub code: Code,
    /// Human-readable message.
    pub message: String,
}

impl PredictError {
    /// An error with a code and message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        PredictError {
            code,
            message: message.into(),
        }
    }

    /// INVALID_ARGUMENT.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    /// NOT_FOUND.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }

    /// INTERNAL.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, message)
    }

    /// Adds context in front of the message.
    pub fn context(mut self, prefix: impl std::fmt::Display) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }
}

impl From<ModelError> for PredictError {
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
        PredictError::new(code, message)
    }
}

impl From<litehouse_registry::RegistryError> for PredictError {
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
        PredictError::new(code, e.to_string())
    }
}
