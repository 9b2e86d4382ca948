//! The small JSON config that may sit beside a model: display name, how images become tensors,
//! how classifier outputs become answers.
//!
//! ```json
//! {
//!   "model": "mnist.tflite",
//!   "display_name": "MNIST digits",
//!   "image": {"width": 28, "height": 28, "channels": 1, "scale": 0.00392156862745098},
//!   "postprocess": {"labels": ["zero", "one"], "top_k": 3}
//! }
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Per-model serving configuration. Every field is optional.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Model file, relative to the config file (default: the config's stem + `.tflite`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<PathBuf>,
    /// Name shown as `modelDisplayName` (default: the model name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// How JSON numbers map onto a quantized (integer) input.
    #[serde(default)]
    pub input_values: NumberMode,
    /// Image preprocessing for `{"b64": ...}` instances, raw image bodies and uploads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageConfig>,
    /// Classifier postprocessing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postprocess: Option<Postprocess>,
    /// Most instances accepted in one request.
    #[serde(default = "default_max_instances")]
    pub max_instances: usize,
}

fn default_max_instances() -> usize {
    256
}

impl Default for ModelConfig {
    /// What an absent config file means (the same defaults as an empty `{}`).
    fn default() -> Self {
        ModelConfig {
            model: None,
            display_name: None,
            description: None,
            input_values: NumberMode::default(),
            image: None,
            postprocess: None,
            max_instances: default_max_instances(),
        }
    }
}

/// How JSON numbers map onto a quantized input.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NumberMode {
    /// The tensor's own integer values (raw uint8 pixels), as TF Serving takes them.
    #[default]
    Native,
    /// Real values, quantized with the input's scale and zero point.
    Real,
}

/// Channel order of the produced tensor.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Height, width, channels (TFLite's NHWC).
    #[default]
    Hwc,
    /// Channels, height, width.
    Chw,
}

/// How an image becomes an input tensor: decode, convert channels, resize, invert, then
/// `(pixel * scale - mean[c]) / std[c]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImageConfig {
    /// Input that receives the image (default: the model's first input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// Target width in pixels.
    pub width: u32,
    /// Target height in pixels.
    pub height: u32,
    /// 1 (grayscale) or 3 (RGB).
    #[serde(default = "one")]
    pub channels: u8,
    /// Multiplier applied to 0..255 pixel values (1/255 scales to [0, 1]).
    #[serde(default = "unit")]
    pub scale: f32,
    /// Per-channel mean subtracted after scaling (one value or one per channel).
    #[serde(default)]
    pub mean: Vec<f32>,
    /// Per-channel standard deviation divided by after the mean.
    #[serde(default)]
    pub std: Vec<f32>,
    /// Use `255 - pixel` (dark digits on white paper for a model trained on white on black).
    #[serde(default)]
    pub invert: bool,
    /// Element order of the tensor.
    #[serde(default)]
    pub layout: Layout,
}

fn one() -> u8 {
    1
}

fn unit() -> f32 {
    1.0
}

/// Classifier postprocessing of one output.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Postprocess {
    /// Output holding the class scores (default: the first output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Class names by index.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Also return the best `top_k` classes with their scores.
    #[serde(default)]
    pub top_k: usize,
}

/// A config that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("model config {path}: {message}")]
pub struct ConfigError {
    /// The config file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

impl ModelConfig {
    /// Reads and validates a config file.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let err = |message: String| ConfigError {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let config: ModelConfig = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
        config.validate().map_err(err)?;
        Ok(config)
    }

    /// Checks values serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(img) = &self.image {
            if !matches!(img.channels, 1 | 3) {
                return Err(format!(
                    "image.channels must be 1 or 3, got {}",
                    img.channels
                ));
            }
            if img.width == 0 || img.height == 0 || img.width > 4096 || img.height > 4096 {
                return Err(format!(
                    "image size must be between 1x1 and 4096x4096, got {}x{}",
                    img.width, img.height
                ));
            }
            for (name, v) in [("mean", &img.mean), ("std", &img.std)] {
                if !(v.is_empty() || v.len() == 1 || v.len() == img.channels as usize) {
                    return Err(format!(
                        "image.{name} needs 1 or {} values, got {}",
                        img.channels,
                        v.len()
                    ));
                }
            }
            if img.std.contains(&0.0) || !img.scale.is_finite() {
                return Err("image.std must be non-zero and image.scale finite".into());
            }
        }
        if self.max_instances == 0 {
            return Err("max_instances must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod default_tests {
    #[test]
    fn absent_config_equals_empty_config() {
        let empty: super::ModelConfig = serde_json::from_str("{}").unwrap_or_default();
        assert_eq!(empty, super::ModelConfig::default());
        assert!(super::ModelConfig::default().validate().is_ok());
    }
}
