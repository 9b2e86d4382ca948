//! litehouse-models: TFLite models on tract-core with LiteRT's semantics.
//!
//! [`LoadedModel::load`] parses a `.tflite` flatbuffer, translates its main subgraph onto
//! tract-core ops (our own importer: integer arithmetic as LiteRT does it, dynamic batch from
//! `shape_signature`), optimizes it once, and runs batches from any thread.

pub mod dtype;
pub mod error;
mod flat;
mod import;
pub mod instances;
pub mod kernels;
mod model;
pub mod quant;
pub mod signature;
pub mod tensor;

pub use dtype::ElementType;
pub use error::{ModelError, Result};
pub use model::{LoadedModel, ModelInfo, OpTiming, OutputMode};
pub use quant::QuantParams;
pub use signature::{Signature, TensorSpec};
pub use tensor::{HostTensor, TensorData};
