//! Training for litehouse: data readers (IDX, CSV, JSON Lines, image folders and file lists)
//! with seeded splits, and (in the modules that follow) training, search, TFLite export and
//! evaluation through the runtime that serves the result.

pub mod data;
pub mod error;

pub use error::{Result, TrainError};
