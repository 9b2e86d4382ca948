//! Scheduler errors: a bad schedule file names the schedule and the field.

/// What went wrong with a schedule, a tick or the store.
#[derive(Debug, thiserror::Error)]
pub enum CronError {
    /// A schedule file that cannot be read or parsed.
    #[error("{file}: {message}")]
    File {
        /// The file.
        file: String,
        /// What was expected and what was found.
        message: String,
    },
    /// A schedule that parses but is wrong.
    #[error("schedule '{id}', {field}: {message}")]
    Schedule {
        /// The schedule's id.
        id: String,
        /// The field.
        field: String,
        /// What was expected and what was found.
        message: String,
    },
    /// Bad arguments (an unknown schedule id, a bad time).
    #[error("{0}")]
    Invalid(String),
    /// The pipeline (compile or run).
    #[error(transparent)]
    Pipeline(#[from] litehouse_pipeline::PipelineError),
    /// The store.
    #[error(transparent)]
    Store(#[from] litehouse_store::StoreError),
}

/// Result with [`CronError`].
pub type Result<T> = std::result::Result<T, CronError>;
