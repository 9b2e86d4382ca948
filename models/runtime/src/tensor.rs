//! Host tensors passed to and returned from a model.

use serde::{Deserialize, Serialize};
use tract_core::prelude::{TValue, Tensor};

use crate::dtype::ElementType;
use crate::error::{ModelError, Result};

/// Typed element storage of a [`HostTensor`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dtype", content = "data", rename_all = "lowercase")]
pub enum TensorData {
    /// 32-bit floats.
    F32(Vec<f32>),
    /// Signed bytes.
    I8(Vec<i8>),
    /// Unsigned bytes.
    U8(Vec<u8>),
    /// 16-bit integers.
    I16(Vec<i16>),
    /// 32-bit integers.
    I32(Vec<i32>),
    /// 64-bit integers.
    I64(Vec<i64>),
    /// Booleans.
    Bool(Vec<bool>),
}

impl TensorData {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::I8(v) => v.len(),
            TensorData::U8(v) => v.len(),
            TensorData::I16(v) => v.len(),
            TensorData::I32(v) => v.len(),
            TensorData::I64(v) => v.len(),
            TensorData::Bool(v) => v.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element type.
    pub fn dtype(&self) -> ElementType {
        match self {
            TensorData::F32(_) => ElementType::F32,
            TensorData::I8(_) => ElementType::I8,
            TensorData::U8(_) => ElementType::U8,
            TensorData::I16(_) => ElementType::I16,
            TensorData::I32(_) => ElementType::I32,
            TensorData::I64(_) => ElementType::I64,
            TensorData::Bool(_) => ElementType::Bool,
        }
    }

    /// Every element as f64 (booleans as 0/1).
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            TensorData::F32(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::I8(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::U8(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::I16(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::I32(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::I64(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| f64::from(u8::from(x))).collect(),
        }
    }
}

/// A dense row-major tensor on the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostTensor {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Elements, `shape.iter().product()` of them.
    #[serde(flatten)]
    pub data: TensorData,
}

impl HostTensor {
    /// Builds a tensor, checking that the element count matches the shape.
    pub fn new(shape: Vec<usize>, data: TensorData) -> Result<Self> {
        let volume: usize = shape.iter().product();
        if volume != data.len() {
            return Err(ModelError::InvalidInput(format!(
                "shape {shape:?} holds {volume} elements but {} were given",
                data.len()
            )));
        }
        Ok(HostTensor { shape, data })
    }

    /// An f32 tensor.
    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        Self::new(shape, TensorData::F32(data))
    }

    /// Element type.
    pub fn dtype(&self) -> ElementType {
        self.data.dtype()
    }

    pub(crate) fn to_tract(&self) -> Result<TValue> {
        let s = &self.shape;
        let t = match &self.data {
            TensorData::F32(v) => Tensor::from_shape(s, v),
            TensorData::I8(v) => Tensor::from_shape(s, v),
            TensorData::U8(v) => Tensor::from_shape(s, v),
            TensorData::I16(v) => Tensor::from_shape(s, v),
            TensorData::I32(v) => Tensor::from_shape(s, v),
            TensorData::I64(v) => Tensor::from_shape(s, v),
            TensorData::Bool(v) => Tensor::from_shape(s, v),
        };
        Ok(t.map_err(ModelError::engine)?.into())
    }

    pub(crate) fn from_tract(t: &Tensor) -> Result<Self> {
        use tract_core::prelude::DatumType as D;
        fn take<T: tract_core::prelude::Datum + Copy>(t: &Tensor) -> Result<Vec<T>> {
            Ok(t.to_plain_array_view::<T>()
                .map_err(ModelError::engine)?
                .iter()
                .copied()
                .collect())
        }
        let data = match t.datum_type().unquantized() {
            D::F32 => TensorData::F32(take(t)?),
            D::F16 | D::F64 => {
                TensorData::F32(take(&*t.cast_to::<f32>().map_err(ModelError::engine)?)?)
            }
            D::I8 => TensorData::I8(take(t)?),
            D::U8 => TensorData::U8(take(t)?),
            D::I16 => TensorData::I16(take(t)?),
            D::I32 => TensorData::I32(take(t)?),
            D::I64 => TensorData::I64(take(t)?),
            D::Bool => TensorData::Bool(take(t)?),
            dt => return Err(ModelError::Engine(format!("unexpected output type {dt:?}"))),
        };
        Ok(HostTensor {
            shape: t.shape().to_vec(),
            data,
        })
    }
}
