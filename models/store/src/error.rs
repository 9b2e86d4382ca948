//! What can go wrong talking to a store.

/// A store failure. Every variant names the store and the key.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No object under the key.
    #[error("{key} not found in {store}")]
    NotFound {
        /// Store URI.
        store: String,
        /// Key.
        key: String,
    },
    /// A conditional write lost: the object exists (create-only) or changed (etag mismatch).
    #[error("{key} in {store} was changed by someone else ({detail})")]
    PreconditionFailed {
        /// Store URI.
        store: String,
        /// Key.
        key: String,
        /// Which condition failed.
        detail: String,
    },
    /// The URI names no store we can open.
    #[error("invalid store URI '{uri}': {reason}")]
    InvalidUri {
        /// The URI given.
        uri: String,
        /// What was expected.
        reason: String,
    },
    /// The key cannot be stored (empty segment, `..`, leading `/`, ...).
    #[error("invalid key '{key}': {reason}")]
    InvalidKey {
        /// The key given.
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// A local file operation failed.
    #[error("{store}: cannot {op} {key}: {source}")]
    Io {
        /// Store URI.
        store: String,
        /// Key.
        key: String,
        /// Operation.
        op: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The remote service failed (network, credentials, permissions, throttling).
    #[error("{store}: cannot {op} {key}: {message}")]
    Backend {
        /// Store URI.
        store: String,
        /// Key.
        key: String,
        /// Operation.
        op: &'static str,
        /// The service's error, with its code when it gave one.
        message: String,
    },
}

impl StoreError {
    /// True for a lost conditional write (retry after re-reading).
    pub fn is_precondition_failed(&self) -> bool {
        matches!(self, StoreError::PreconditionFailed { .. })
    }

    /// True when the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }
}
