//! Typed errors of the model runtime.

use thiserror::Error;

/// Everything that can go wrong while loading or running a model.
#[derive(Debug, Error)]
pub enum ModelError {
    /// The bytes are not a TFLite flatbuffer (empty, truncated, wrong file type).
    #[error("not a valid TFLite model: {0}")]
    InvalidModel(String),
    /// The model uses an operator litehouse does not implement.
    #[error("unsupported operator {op} at operator index {index}{detail}")]
    UnsupportedOp {
        /// Builtin or custom operator name.
        op: String,
        /// Index of the operator in the main subgraph.
        index: usize,
        /// Extra explanation, empty or starting with ": ".
        detail: String,
    },
    /// A feature of the model outside the supported subset (control flow, variables, ...).
    #[error("unsupported model feature: {0}")]
    UnsupportedFeature(String),
    /// An operator is supported but its parameters are malformed or inconsistent.
    #[error("invalid operator {op} at operator index {index}: {message}")]
    InvalidOp {
        /// Builtin operator name.
        op: String,
        /// Index of the operator in the main subgraph.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// Inputs given to `run` do not match the signature.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// tract failed while optimizing or running the graph.
    #[error("inference engine error: {0}")]
    Engine(String),
}

impl ModelError {
    pub(crate) fn engine(e: impl std::fmt::Display) -> Self {
        ModelError::Engine(format!("{e:#}"))
    }
}

/// Result alias of this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
