//! Training errors: each names the file (or split, or layer) and says what was expected and
//! what was found.

/// A failed read, training run or export.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Training data that cannot be used as it is (missing file, bad header, ragged row, NaN).
    #[error("{source_name}: {message}")]
    Data {
        /// The file, directory or URI.
        source_name: String,
        /// What was expected and what was found.
        message: String,
    },
    /// Options that contradict each other or the data (unknown column, empty split).
    #[error("{0}")]
    Invalid(String),
    /// A model that cannot be written as TFLite.
    #[error("export: {0}")]
    Export(String),
    /// The exported model failed to load or run in the runtime.
    #[error("evaluation: {0}")]
    Model(#[from] litehouse_models::ModelError),
}

impl TrainError {
    /// A data error about `source`.
    pub fn data(source: impl std::fmt::Display, message: impl Into<String>) -> Self {
        TrainError::Data {
            source_name: source.to_string(),
            message: message.into(),
        }
    }
}

/// Result with [`TrainError`].
pub type Result<T> = std::result::Result<T, TrainError>;
