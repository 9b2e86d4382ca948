//! What a model takes and returns.

use serde::{Deserialize, Serialize};

use crate::dtype::ElementType;
use crate::quant::QuantParams;

/// One input or output of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorSpec {
    /// Name callers use: the SignatureDef key when the model has one, else the tensor name.
    pub name: String,
    /// The tensor's own name in the flatbuffer.
    pub tensor_name: String,
    /// Element type the model itself takes or returns.
    pub dtype: ElementType,
    /// Shape; -1 marks a dynamic dimension (the batch).
    pub shape: Vec<i64>,
    /// Quantization parameters of a quantized tensor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantization: Option<QuantParams>,
}

impl TensorSpec {
    /// True when the first dimension accepts any batch size.
    pub fn dynamic_batch(&self) -> bool {
        self.shape.first().is_some_and(|&d| d < 0)
    }

    /// Number of elements of one batch item (dimensions after the first), when static.
    pub fn item_volume(&self) -> Option<usize> {
        self.shape
            .iter()
            .skip(1)
            .map(|&d| usize::try_from(d).ok())
            .product()
    }

    /// True when `shape` fits: same rank, and every static dimension equal.
    pub fn accepts(&self, shape: &[usize]) -> bool {
        shape.len() == self.shape.len()
            && shape
                .iter()
                .zip(&self.shape)
                .all(|(&g, &e)| e < 0 || g as i64 == e)
    }

    /// Shape with -1 written as `?`, for messages.
    pub fn shape_text(&self) -> String {
        let dims: Vec<String> = self
            .shape
            .iter()
            .map(|&d| if d < 0 { "?".into() } else { d.to_string() })
            .collect();
        format!("[{}]", dims.join(", "))
    }
}

/// Inputs and outputs of a model, in the order the model declares them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signature {
    /// SignatureDef key (e.g. `serving_default`), when the model has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Inputs.
    pub inputs: Vec<TensorSpec>,
    /// Outputs.
    pub outputs: Vec<TensorSpec>,
}

impl Signature {
    /// Input names, comma-separated, for messages.
    pub fn input_names(&self) -> String {
        let names: Vec<&str> = self.inputs.iter().map(|s| s.name.as_str()).collect();
        names.join(", ")
    }

    /// True when every input accepts any batch size.
    pub fn dynamic_batch(&self) -> bool {
        self.inputs.iter().all(TensorSpec::dynamic_batch)
    }
}
