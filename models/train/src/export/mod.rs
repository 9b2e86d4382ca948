//! Writes a [`Network`] as a `.tflite` file that LiteRT and litehouse's runtime both run: a
//! dynamic batch (`shape_signature` -1 on the first dimension) and a `serving_default`
//! SignatureDef naming the input and output.

mod float;
mod graph;

pub use graph::{Dtype, Graph, Op, Options, Quant, Tensor};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::Layer;
    use litehouse_models::{HostTensor, LoadedModel, OutputMode, TensorData};

    fn random(rng: &mut fastrand::Rng, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| (rng.f32() * 2.0 - 1.0) * scale).collect()
    }

    fn mlp(rng: &mut fastrand::Rng, input: Vec<usize>, softmax: bool) -> Network {
        let inputs: usize = input.iter().product();
        Network {
            input_shape: input,
            layers: vec![
                Layer::Dense {
                    weights: random(rng, 16 * inputs, 0.5),
                    bias: random(rng, 16, 0.1),
                    relu: true,
                },
                Layer::Dense {
                    weights: random(rng, 3 * 16, 0.5),
                    bias: random(rng, 3, 0.1),
                    relu: false,
                },
            ],
            softmax,
        }
    }

    fn cnn(rng: &mut fastrand::Rng) -> Network {
        Network {
            input_shape: vec![9, 8, 2],
            layers: vec![
                Layer::Conv2d {
                    filter: random(rng, 4 * 3 * 3 * 2, 0.5),
                    bias: random(rng, 4, 0.1),
                    kernel: [3, 3],
                    relu: true,
                },
                Layer::MaxPool2,
                Layer::Conv2d {
                    filter: random(rng, 5 * 2 * 2 * 4, 0.5),
                    bias: random(rng, 5, 0.1),
                    kernel: [2, 2],
                    relu: true,
                },
                Layer::Dense {
                    weights: random(rng, 4 * 2 * 2 * 5, 0.5),
                    bias: random(rng, 4, 0.1),
                    relu: false,
                },
            ],
            softmax: true,
        }
    }

    /// Loads the exported bytes in the runtime and compares a batch with the network's own
    /// forward pass.
    fn check_runtime_agrees(net: &Network, rng: &mut fastrand::Rng) {
        let bytes = float_tflite(net, &Names::default()).unwrap();
        let model = LoadedModel::load(&bytes).unwrap();
        let sig = model.signature();
        assert_eq!(sig.inputs[0].name, "input");
        assert_eq!(sig.outputs[0].name, "output");
        assert_eq!(sig.inputs[0].shape[0], -1, "dynamic batch");
        let n = 5;
        let volume: usize = net.input_shape.iter().product();
        let x = random(rng, n * volume, 1.0);
        let want = net.forward(&x, n).unwrap();
        let mut shape = vec![n];
        shape.extend(&net.input_shape);
        let out = model
            .run(&[HostTensor::f32(shape, x).unwrap()], OutputMode::Float)
            .unwrap();
        let TensorData::F32(got) = &out[0].data else {
            panic!("float output expected, got {:?}", out[0].dtype())
        };
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                "value {i}: {g} vs {w}"
            );
        }
    }

    #[test]
    fn an_mlp_regressor_runs_as_trained() {
        let mut rng = fastrand::Rng::with_seed(1);
        check_runtime_agrees(&mlp(&mut rng, vec![7], false), &mut rng);
    }

    #[test]
    fn an_mlp_classifier_over_images_flattens_in_nhwc_order() {
        let mut rng = fastrand::Rng::with_seed(2);
        check_runtime_agrees(&mlp(&mut rng, vec![4, 3, 2], true), &mut rng);
    }

    #[test]
    fn a_cnn_classifier_runs_as_trained() {
        let mut rng = fastrand::Rng::with_seed(3);
        check_runtime_agrees(&cnn(&mut rng), &mut rng);
    }

    #[test]
    fn a_network_that_does_not_fit_is_not_written() {
        let mut net = mlp(&mut fastrand::Rng::with_seed(4), vec![7], false);
        net.input_shape = vec![6];
        let err = float_tflite(&net, &Names::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("layer 0"), "{err}");
    }
}
