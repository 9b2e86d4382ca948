//! Writes a [`Network`] as a `.tflite` file that LiteRT and litehouse's runtime both run: a
//! dynamic batch (`shape_signature` -1 on the first dimension) and a `serving_default`
//! SignatureDef naming the input and output.

mod float;
mod graph;
mod int8;

pub use graph::{Dtype, Graph, Op, Options, Quant, Tensor};
pub use int8::{Calibration, IoType};

use crate::error::Result;
use crate::network::Network;

/// Names written into the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The input's signature name.
    pub input: String,
    /// The output's signature name.
    pub output: String,
    /// The model's description string.
    pub description: String,
}

impl Default for Names {
    fn default() -> Self {
        Names {
            input: "input".into(),
            output: "output".into(),
            description: "litehouse train".into(),
        }
    }
}

/// The float32 model of `net`.
pub fn float_tflite(net: &Network, names: &Names) -> Result<Vec<u8>> {
    Ok(float::graph(net, names)?.serialize())
}

/// The full-integer int8 model of `net`, its activation ranges calibrated on `sample`.
pub fn int8_tflite(
    net: &Network,
    names: &Names,
    sample: Calibration,
    io: IoType,
) -> Result<Vec<u8>> {
    Ok(int8_graph(net, names, sample, io)?.serialize())
}

/// The int8 graph itself, for callers that inspect what is written.
pub fn int8_graph(net: &Network, names: &Names, sample: Calibration, io: IoType) -> Result<Graph> {
    int8::graph(net, names, sample, io)
}

#[cfg(test)]
mod tests;
