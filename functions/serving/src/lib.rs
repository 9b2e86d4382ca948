//! litehouse-serving: online prediction over HTTP.
//!
//! One axum [`Router`](router::router) speaks Vertex AI (`:predict`, `:rawPredict`), TensorFlow
//! Serving REST and the KServe V2 inference protocol over a [`Catalog`] of loaded models. The
//! local server (`litehouse serve`) and the Lambda function (`functions/predict`) both serve it.

pub mod body;
pub mod catalog;
pub mod config;
pub mod cost;
pub mod error;
pub mod image_input;
pub mod kserve;
mod kserve_binary;
pub mod live;
mod openapi;
pub mod predict;
pub mod router;
pub mod server;
pub mod state;
pub mod tfserving;
pub mod vertex;
pub mod wire;

pub use catalog::{load_dir, Catalog, DeployedModel, Endpoint, ServedModel};
pub use config::ModelConfig;
pub use error::{Code, ServeError};
pub use live::LiveCatalog;
pub use predict::{Executor, Limits};
pub use router::router;
pub use state::{AppState, Payload};
