//! Training for litehouse: data readers (IDX, CSV, JSON Lines, image folders and file lists)
//! with seeded splits, trained networks as plain arrays, and their export to TFLite that the
//! runtime serving the result runs.

pub mod cross_validation;
pub mod data;
pub mod error;
pub mod evaluate;
pub mod export;
pub mod job;
pub mod metrics;
pub mod network;
pub mod search;
pub mod trainer;

pub use error::{Result, TrainError};
pub use job::{Job, Quantize, Report};
pub use metrics::Metrics;
pub use network::{Layer, Network};
pub use trainer::{train, Arch, TrainOptions, Trained};
