//! Registry failures, each naming what was asked and what was found.

use litehouse_store::StoreError;

/// A registry failure. Variants follow google.rpc codes so front ends map them one to one.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No such model, version, alias, endpoint or deployed model.
    #[error("{0}")]
    NotFound(String),
    /// Creating something that exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// A malformed request (bad name, split not summing to 100, ...).
    #[error("{0}")]
    InvalidArgument(String),
    /// The request is valid but the state forbids it (undeploying a model with traffic, ...).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A concurrent change won (etag mismatch) and retrying did not help or was not asked for.
    #[error("{0}")]
    Aborted(String),
    /// An artifact's content does not match the sha256 its manifest recorded.
    #[error("{what}: sha256 mismatch (manifest says {expected}, artifact is {actual}); refusing to load it")]
    Integrity {
        /// Which artifact.
        what: String,
        /// sha256 in the manifest.
        expected: String,
        /// sha256 of the bytes read.
        actual: String,
    },
    /// A registry document cannot be parsed.
    #[error("{key} is corrupt: {reason}")]
    Corrupt {
        /// Its key.
        key: String,
        /// The parse error.
        reason: String,
    },
    /// The uploaded file is not a model litehouse can run.
    #[error("not a usable model: {0}")]
    Model(#[from] litehouse_models::ModelError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
