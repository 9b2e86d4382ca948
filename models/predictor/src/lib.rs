//! litehouse-predictor: loaded models ready to answer, with no HTTP.
//!
//! Every front door (the HTTP Router behind `litehouse serve` and the predict Lambda, batch
//! jobs) needs the same path: a [`Catalog`] of models from a directory or live from the
//! registry, each with its [`ModelConfig`]; images decoded and preprocessed; numbers run
//! through the model; classifier outputs postprocessed; the work placed by its estimated cost.
//! Failures are [`PredictError`]s with a canonical [`Code`] that each front door renders its
//! own way.

pub mod batch;
pub mod catalog;
pub mod error;
pub mod executor;
pub mod flat;
pub mod image_input;
pub mod live;
pub mod model_config;
pub mod postprocess;
pub mod predict;
pub mod setup;

pub use catalog::{
    load_dir, Catalog, LoadFailure, ServedDeployment, ServedEndpoint, ServedModel, SharedCatalog,
};
pub use error::{Code, PredictError};
pub use executor::Executor;
pub use image_input::ImageLimits;
pub use live::LiveCatalog;
pub use model_config::ModelConfig;
pub use predict::PredictOptions;
pub use setup::{open_catalog, CatalogOptions, OpenedCatalog, Refresh};
