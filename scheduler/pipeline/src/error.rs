//! Pipeline errors. A bad pipeline file names the step and the field; a failed step names the
//! step; store and registry errors keep their own words.

/// What went wrong with a pipeline, a run or a step.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A pipeline file that cannot be read or parsed.
    #[error("{file}: {message}")]
    File {
        /// The file.
        file: String,
        /// What was expected and what was found.
        message: String,
    },
    /// A definition that parses but does not hold together (unknown step, cycle, type mismatch).
    #[error("pipeline '{pipeline}': {message}")]
    Definition {
        /// The pipeline's name.
        pipeline: String,
        /// Names the step and field.
        message: String,
    },
    /// A compiled spec this runner cannot execute.
    #[error("pipeline spec: {0}")]
    Spec(String),
    /// Bad arguments (a `--param` that names no parameter, a wrong type).
    #[error("{0}")]
    Invalid(String),
    /// A step that failed.
    #[error("step '{step}': {message}")]
    Step {
        /// The task name.
        step: String,
        /// Why.
        message: String,
    },
    /// A run that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The store.
    #[error(transparent)]
    Store(#[from] litehouse_store::StoreError),
    /// The registry.
    #[error(transparent)]
    Registry(#[from] litehouse_registry::RegistryError),
    /// Training.
    #[error(transparent)]
    Train(#[from] litehouse_train::TrainError),
    /// The runtime.
    #[error(transparent)]
    Model(#[from] litehouse_models::ModelError),
    /// Local files.
    #[error("{what}: {source}")]
    Io {
        /// The path and the operation.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl PipelineError {
    /// A local I/O error about `what`.
    pub fn io(what: impl std::fmt::Display, source: std::io::Error) -> Self {
        PipelineError::Io {
            what: what.to_string(),
            source,
        }
    }

    /// A step failure.
    pub fn step(step: impl Into<String>, message: impl std::fmt::Display) -> Self {
        PipelineError::Step {
            step: step.into(),
            message: message.to_string(),
        }
    }
}

/// Result with [`PipelineError`].
pub type Result<T> = std::result::Result<T, PipelineError>;
