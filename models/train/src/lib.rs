//! Training for litehouse: data readers (IDX, CSV, JSON Lines, image folders and file lists)
//! with seeded splits, trained networks as plain arrays, and their export to TFLite that the
//! runtime serving the result runs.

pub mod data;
pub mod error;
pub mod export;
pub mod metrics;
pub mod network;
pub mod trainer;

pub use error::{Result, TrainError};
pub use metrics::Metrics;
pub use network::{Layer, Network};
pub use trainer::{train, Arch, TrainOptions, Trained};
