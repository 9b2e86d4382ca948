//! Element types as TFLite declares them.

use serde::{Deserialize, Serialize};
use tract_core::prelude::DatumType;

use crate::error::{ModelError, Result};

/// The element type of a model tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElementType {
    /// 32-bit float.
    F32,
    /// 16-bit float.
    F16,
    /// 64-bit float.
    F64,
    /// Signed 8-bit integer.
    I8,
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
    /// Boolean.
    Bool,
}

impl ElementType {
    /// Maps a TFLite tensor type; strings, resources and the like are not model data we run.
    pub fn from_tflite(t: tract_tflite::tflite::TensorType) -> Result<Self> {
        use tract_tflite::tflite::TensorType as T;
        Ok(match t {
            T::FLOAT32 => Self::F32,
            T::FLOAT16 => Self::F16,
            T::FLOAT64 => Self::F64,
            T::INT8 => Self::I8,
            T::UINT8 => Self::U8,
            T::INT16 => Self::I16,
            T::INT32 => Self::I32,
            T::INT64 => Self::I64,
            T::BOOL => Self::Bool,
            other => {
                return Err(ModelError::UnsupportedFeature(format!(
                    "tensor type {}",
                    other.variant_name().unwrap_or("unknown")
                )))
            }
        })
    }

    /// The plain tract datum type that carries this element type.
    pub fn datum_type(self) -> DatumType {
        match self {
            Self::F32 => DatumType::F32,
            Self::F16 => DatumType::F16,
            Self::F64 => DatumType::F64,
            Self::I8 => DatumType::I8,
            Self::U8 => DatumType::U8,
            Self::I16 => DatumType::I16,
            Self::I32 => DatumType::I32,
            Self::I64 => DatumType::I64,
            Self::Bool => DatumType::Bool,
        }
    }

    /// Size of one element in bytes.
    pub fn size_of(self) -> usize {
        match self {
            Self::I8 | Self::U8 | Self::Bool => 1,
            Self::F16 | Self::I16 => 2,
            Self::F32 | Self::I32 => 4,
            Self::F64 | Self::I64 => 8,
        }
    }

    /// Lower-case name (`f32`, `i8`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::F64 => "f64",
            Self::I8 => "i8",
            Self::U8 => "u8",
            Self::I16 => "i16",
            Self::I32 => "i32",
            Self::I64 => "i64",
            Self::Bool => "bool",
        }
    }

    /// True for floating-point types.
    pub fn is_float(self) -> bool {
        matches!(self, Self::F32 | Self::F16 | Self::F64)
    }

    /// Range of representable integer values for 8-bit quantized types.
    pub fn int_range(self) -> Option<(i32, i32)> {
        match self {
            Self::I8 => Some((-128, 127)),
            Self::U8 => Some((0, 255)),
            Self::I16 => Some((-32768, 32767)),
            Self::I32 => Some((i32::MIN, i32::MAX)),
            _ => None,
        }
    }
}

impl std::fmt::Display for ElementType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
