//! litehouse-serving: online prediction over HTTP.
//!
//! One axum [`Router`](router::router) speaks Vertex AI (`:predict`, `:rawPredict`), TensorFlow
//! Serving REST and the KServe V2 inference protocol over a [`litehouse_predictor::Catalog`] of
//! loaded models. Everything below HTTP (catalogs, configs, images, the executor) is
//! `litehouse-predictor`'s; this crate reads bodies, routes, and renders answers and errors. The
//! local server (`litehouse serve`) and the Lambda function (`functions/predict`) both serve it.

pub mod auth;
pub mod body;
pub mod error;
pub mod kserve;
mod kserve_binary;
pub mod metrics;
pub mod middleware;
mod openapi;
pub mod prediction_log;
pub mod request_context;
pub mod response;
pub mod router;
pub mod server;
pub mod state;
pub mod tfserving;
pub mod vertex;
pub mod wire;

pub use error::{Code, ServeError};
pub use router::router;
pub use state::{AppState, Limits, Payload, ServeOptions};
