//! Retraining pipelines for litehouse: a pipeline file (YAML or TOML) is checked into a plan,
//! compiled to the Kubeflow Pipelines v2 IR, and its steps run as `litehouse step <kind>`:
//! ingest, validate, train, evaluate, gate, register, deploy, or a user's command.

pub mod check;
pub mod compile;
pub mod definition;
pub mod error;
pub mod google_auth;
pub mod ir;
pub mod report;
pub mod roles;
pub mod run;
pub mod steps;
pub mod submit;
pub mod types;

pub use check::{check, Plan};
pub use compile::compile;
pub use error::{PipelineError, Result};
pub use ir::PipelineSpec;
pub use run::{run, RunOptions};
