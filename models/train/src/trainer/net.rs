//! The burn modules behind the two architectures, and their weights read out into a
//! [`Network`] in TFLite's layouts.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::config::Arch;
use crate::error::{Result, TrainError};
use crate::network::{Layer, Network};

/// Convolutions (each followed by ReLU and 2x2 max pooling), then dense layers (ReLU and
/// dropout between them), over NHWC input.
#[derive(Module, Debug)]
pub(super) struct Net {
    convs: Vec<Conv2d>,
    pool: MaxPool2d,
    dense: Vec<Linear>,
    dropout: Dropout,
}

/// Keras' defaults (Glorot-uniform weights, zero biases), so that the hyperparameters people
/// bring from Keras mean the same here.
fn zero_bias(bias: &mut Option<Param<Tensor<1>>>, size: usize, device: &Device) {
    *bias = Some(Param::from_tensor(Tensor::zeros([size], device)));
}

impl Net {
    /// A fresh network for examples of `input_shape` and `outputs` outputs; the seed is the
    /// device's.
    pub(super) fn new(
        arch: &Arch,
        input_shape: &[usize],
        outputs: usize,
        device: &Device,
    ) -> Result<Net> {
        let init = Initializer::XavierUniform { gain: 1.0 };
        let mut convs = vec![];
        let mut shape = input_shape.to_vec();
        if let Arch::Cnn {
            filters, kernel, ..
        } = arch
        {
            let &[mut h, mut w, mut c] = input_shape else {
                return Err(TrainError::Invalid(format!(
                    "a CNN needs image examples [height, width, channels], the data has {input_shape:?}"
                )));
            };
            for &f in filters {
                if h < kernel + 1 || w < kernel + 1 {
                    return Err(TrainError::Invalid(format!(
                        "{} convolutions of {kernel}x{kernel} with 2x2 pooling do not fit {input_shape:?}",
                        filters.len()
                    )));
                }
                let mut conv = Conv2dConfig::new([c, f], [*kernel, *kernel])
                    .with_initializer(init.clone())
                    .init(device);
                zero_bias(&mut conv.bias, f, device);
                convs.push(conv);
                (h, w, c) = ((h + 1 - kernel) / 2, (w + 1 - kernel) / 2, f);
            }
            shape = vec![h, w, c];
        }
        let mut width: usize = shape.iter().product();
        let mut dense = vec![];
        for &units in arch.hidden().iter().chain([&outputs]) {
            let mut layer = LinearConfig::new(width, units)
                .with_initializer(init.clone())
                .init(device);
            zero_bias(&mut layer.bias, units, device);
            dense.push(layer);
            width = units;
        }
        Ok(Net {
            convs,
            pool: MaxPool2dConfig::new([2, 2]).init(),
            dense,
            dropout: DropoutConfig::new(arch.dropout()).init(),
        })
    }

    /// Logits (or standardized regression outputs) for a batch `[n, ...item]`, given flat.
    pub(super) fn forward(&self, x: Tensor<2>, item_shape: &[usize]) -> Tensor<2> {
        let n = x.dims()[0];
        let mut x = if self.convs.is_empty() {
            x
        } else {
            let (h, w, c) = (item_shape[0], item_shape[1], item_shape[2]);
            // burn convolves NCHW; the exported graph is NHWC, so the flatten before the first
            // dense layer goes back to NHWC order.
            let mut image = x.reshape([n, h, w, c]).permute([0, 3, 1, 2]);
            for conv in &self.convs {
                image = self.pool.forward(relu(conv.forward(image)));
            }
            image.permute([0, 2, 3, 1]).reshape([n as i64, -1])
        };
        let last = self.dense.len().saturating_sub(1);
        for (i, layer) in self.dense.iter().enumerate() {
            x = layer.forward(x);
            if i < last {
                x = self.dropout.forward(relu(x));
            }
        }
        x
    }

    /// The weights as a [`Network`] (TFLite layouts).
    pub(super) fn to_network(&self, input_shape: &[usize], softmax: bool) -> Result<Network> {
        let mut layers = vec![];
        for conv in &self.convs {
            let [out, cin, kh, kw] = conv.weight.val().dims();
            let w = values(conv.weight.val())?;
            // [out, in, kh, kw] -> [out, kh, kw, in]
            let mut filter = Vec::with_capacity(w.len());
            for o in 0..out {
                for i in 0..kh {
                    for j in 0..kw {
                        for c in 0..cin {
                            filter.push(w[((o * cin + c) * kh + i) * kw + j]);
                        }
                    }
                }
            }
            layers.push(Layer::Conv2d {
                filter,
                bias: bias(&conv.bias, out)?,
                kernel: [kh, kw],
                relu: true,
            });
            layers.push(Layer::MaxPool2);
        }
        let last = self.dense.len().saturating_sub(1);
        for (i, layer) in self.dense.iter().enumerate() {
            let [inputs, outputs] = layer.weight.val().dims();
            let w = values(layer.weight.val())?;
            // burn keeps [in, out]; FULLY_CONNECTED wants [out, in].
            let mut weights = Vec::with_capacity(w.len());
            for o in 0..outputs {
                weights.extend((0..inputs).map(|k| w[k * outputs + o]));
            }
            layers.push(Layer::Dense {
                weights,
                bias: bias(&layer.bias, outputs)?,
                relu: i < last,
            });
        }
        Ok(Network {
            input_shape: input_shape.to_vec(),
            input_standardization: None,
            layers,
            softmax,
        })
    }
}

fn values<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .as_slice::<f32>()
        .map(<[f32]>::to_vec)
        .map_err(|e| TrainError::Export(format!("reading weights: {e:?}")))
}

fn bias(b: &Option<Param<Tensor<1>>>, size: usize) -> Result<Vec<f32>> {
    match b {
        Some(p) => values(p.val()),
        None => Ok(vec![0.0; size]),
    }
}
