//! Figures of an exported `.tflite` on labelled examples, computed by litehouse's own runtime:
//! the artifact that will be served is the one that is scored.

use litehouse_models::quant::quantize_value;
use litehouse_models::{ElementType, HostTensor, LoadedModel, OutputMode, TensorData};

use crate::data::{Dataset, Targets};
use crate::error::{Result, TrainError};
use crate::metrics::{self, Metrics};

/// Examples per model call.
const BATCH: usize = 256;

/// Runs every example of `data` through the model and scores the answers.
pub fn evaluate(model: &LoadedModel, data: &Dataset) -> Result<Metrics> {
    Ok(metrics::of_outputs(&predict(model, data)?, &data.targets))
}

/// The model's float answers for every example of `data`, `len × outputs`, checked against the
/// number of outputs the targets have.
pub fn predict(model: &LoadedModel, data: &Dataset) -> Result<Vec<f32>> {
    let spec = model
        .signature()
        .inputs
        .first()
        .ok_or_else(|| TrainError::Export("the exported model has no input".into()))?
        .clone();
    let mut outputs = Vec::with_capacity(data.len() * 10);
    let mut x = Vec::with_capacity(BATCH * data.volume());
    let indices: Vec<usize> = (0..data.len()).collect();
    for chunk in indices.chunks(BATCH) {
        x.clear();
        for &i in chunk {
            data.example(i, &mut x);
        }
        let mut shape = vec![chunk.len()];
        shape.extend(&data.item_shape);
        let values = match spec.dtype {
            ElementType::F32 => TensorData::F32(x.clone()),
            ElementType::I8 | ElementType::U8 => {
                let q = spec.quantization.clone().ok_or_else(|| {
                    TrainError::Export("an 8-bit input without quantization".into())
                })?;
                let (scale, zp) = (q.scale0(), q.zp0());
                if spec.dtype == ElementType::I8 {
                    TensorData::I8(
                        x.iter()
                            .map(|v| quantize_value(*v, scale, zp, -128, 127) as i8)
                            .collect(),
                    )
                } else {
                    TensorData::U8(
                        x.iter()
                            .map(|v| quantize_value(*v, scale, zp, 0, 255) as u8)
                            .collect(),
                    )
                }
            }
            other => return Err(TrainError::Export(format!("cannot feed a {other:?} input"))),
        };
        let out = model.run(&[HostTensor::new(shape, values)?], OutputMode::Float)?;
        let Some(TensorData::F32(y)) = out.into_iter().next().map(|t| t.data) else {
            return Err(TrainError::Export("the model gave no float output".into()));
        };
        outputs.extend(y);
    }
    let per_example = match &data.targets {
        Targets::Classes { names, .. } | Targets::Values { names, .. } => names.len(),
    };
    if outputs.len() != data.len() * per_example {
        return Err(TrainError::Export(format!(
            "the model answered {} values for {} examples of {per_example} outputs",
            outputs.len(),
            data.len()
        )));
    }
    Ok(outputs)
}
