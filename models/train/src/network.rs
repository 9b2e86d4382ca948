//! A trained network as plain arrays in TFLite's layouts, independent of the crate that trained
//! it: what the exporter writes, what calibration runs, and the reference the tests compare the
//! exported model with.
//!
//! Activations are NHWC per example; convolution filters are `[out, kh, kw, in]`; dense weights
//! are `[out, in]` over the input flattened in NHWC order (TFLite's FULLY_CONNECTED flattens
//! that way, so no RESHAPE is needed before the first dense layer).

use crate::error::{Result, TrainError};

/// One layer.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    /// `y = W x + b`, optionally followed by ReLU.
    Dense {
        /// `[out, in]`, row-major.
        weights: Vec<f32>,
        /// `[out]`.
        bias: Vec<f32>,
        /// Whether ReLU follows.
        relu: bool,
    },
    /// A 2-D convolution, stride 1, no padding (VALID), optionally followed by ReLU.
    Conv2d {
        /// `[out, kh, kw, in]`, row-major.
        filter: Vec<f32>,
        /// `[out]`.
        bias: Vec<f32>,
        /// Kernel height and width.
        kernel: [usize; 2],
        /// Whether ReLU follows.
        relu: bool,
    },
    /// 2x2 max pooling with stride 2 (VALID: an odd last row or column is dropped).
    MaxPool2,
}

/// Per-feature standardization of raw inputs, `(x - mean) / std`, ahead of the first layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardization {
    /// Mean per input feature.
    pub mean: Vec<f32>,
    /// Standard deviation per input feature (never 0).
    pub std: Vec<f32>,
}

/// Layers over an input of one shape, with an optional softmax head (classifiers).
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// One example's shape, without the batch: `[features]` or `[h, w, c]`.
    pub input_shape: Vec<usize>,
    /// Standardization of raw inputs (regressors). Kept apart from the weights because an
    /// int8 model with float I/O applies it in float before quantizing: features on different
    /// scales would otherwise share one input scale and the small ones would round away.
    pub input_standardization: Option<Standardization>,
    /// The layers, in order.
    pub layers: Vec<Layer>,
    /// Whether the output is a softmax over classes.
    pub softmax: bool,
}

impl Network {
    /// Shape of one example after each layer (`shapes()[0]` is the input), checking that every
    /// layer fits what it is given.
    pub fn shapes(&self) -> Result<Vec<Vec<usize>>> {
        let mut shapes = vec![self.input_shape.clone()];
        for (i, layer) in self.layers.iter().enumerate() {
            let Some(current) = shapes.last() else {
                break;
            };
            let bad = |what: String| TrainError::Export(format!("layer {i}: {what}"));
            let next = match layer {
                Layer::Dense { weights, bias, .. } => {
                    let inputs: usize = current.iter().product();
                    let outputs = bias.len();
                    if outputs == 0 || weights.len() != outputs * inputs {
                        return Err(bad(format!(
                            "dense weights hold {} values, expected {outputs} x {inputs}",
                            weights.len()
                        )));
                    }
                    vec![outputs]
                }
                Layer::Conv2d {
                    filter,
                    bias,
                    kernel: [kh, kw],
                    ..
                } => {
                    let &[h, w, c] = current.as_slice() else {
                        return Err(bad(format!(
                            "a convolution needs an [h, w, c] input, got {current:?}"
                        )));
                    };
                    let out = bias.len();
                    if out == 0 || filter.len() != out * kh * kw * c {
                        return Err(bad(format!(
                            "filter holds {} values, expected {out} x {kh} x {kw} x {c}",
                            filter.len()
                        )));
                    }
                    if *kh == 0 || *kw == 0 || *kh > h || *kw > w {
                        return Err(bad(format!(
                            "a {kh}x{kw} kernel does not fit a {h}x{w} input"
                        )));
                    }
                    vec![h - kh + 1, w - kw + 1, out]
                }
                Layer::MaxPool2 => {
                    let &[h, w, c] = current.as_slice() else {
                        return Err(bad(format!(
                            "pooling needs an [h, w, c] input, got {current:?}"
                        )));
                    };
                    if h < 2 || w < 2 {
                        return Err(bad(format!("2x2 pooling on a {h}x{w} input")));
                    }
                    vec![h / 2, w / 2, c]
                }
            };
            shapes.push(next);
        }
        Ok(shapes)
    }

    /// Values per example at the output.
    pub fn output_len(&self) -> Result<usize> {
        Ok(self
            .shapes()?
            .last()
            .map(|s| s.iter().product())
            .unwrap_or(0))
    }

    /// Runs `n` examples (`inputs` is `n × input volume`, raw) and returns every activation:
    /// entry 0 is the input after the input standardization, entry `i + 1` the output of layer `i`, and, for classifiers, a last entry
    /// with the softmax. Calibration reads the ranges of these; tests compare exported models
    /// with the last one.
    pub fn activations(&self, inputs: &[f32], n: usize) -> Result<Vec<Vec<f32>>> {
        let shapes = self.shapes()?;
        let volume: usize = self.input_shape.iter().product();
        if inputs.len() != n * volume {
            return Err(TrainError::Invalid(format!(
                "{} input values for {n} examples of {volume}",
                inputs.len()
            )));
        }
        let mut first = inputs.to_vec();
        if let Some(s) = &self.input_standardization {
            for row in first.chunks_mut(s.mean.len().max(1)) {
                for ((v, m), d) in row.iter_mut().zip(&s.mean).zip(&s.std) {
                    *v = (*v - m) / d;
                }
            }
        }
        let mut all = vec![first];
        for (layer, shape) in self.layers.iter().zip(&shapes) {
            let Some(x) = all.last() else { break };
            let y = match layer {
                Layer::Dense {
                    weights,
                    bias,
                    relu,
                } => dense(x, n, weights, bias, *relu),
                Layer::Conv2d {
                    filter,
                    bias,
                    kernel,
                    relu,
                } => conv2d(x, n, shape, filter, bias, *kernel, *relu),
                Layer::MaxPool2 => max_pool2(x, n, shape),
            };
            all.push(y);
        }
        if self.softmax {
            if let Some(logits) = all.last() {
                let classes = logits.len() / n.max(1);
                let probabilities = logits.chunks(classes.max(1)).flat_map(softmax).collect();
                all.push(probabilities);
            }
        }
        Ok(all)
    }

    /// The outputs for `n` examples.
    pub fn forward(&self, inputs: &[f32], n: usize) -> Result<Vec<f32>> {
        Ok(self.activations(inputs, n)?.pop().unwrap_or_default())
    }

    /// The same function with the input standardization folded into the first layer's
    /// weights (what a float model, or an int8 model with 8-bit inputs, is written from).
    pub fn folded(&self) -> Result<Network> {
        let mut net = self.clone();
        if let Some(s) = net.input_standardization.take() {
            net.fold_input_standardization(&s.mean, &s.std)?;
        }
        Ok(net)
    }

    /// Folds `x' = (x - mean) / std` into the first layer (a dense layer), so that a network
    /// trained on standardized inputs takes raw ones: `W x' + b = (W / std) x + (b - W mean / std)`.
    pub fn fold_input_standardization(&mut self, mean: &[f32], std: &[f32]) -> Result<()> {
        let Some(Layer::Dense { weights, bias, .. }) = self.layers.first_mut() else {
            return Err(TrainError::Export(
                "input standardization folds into a dense first layer only".into(),
            ));
        };
        let inputs = mean.len();
        if std.len() != inputs || weights.len() != bias.len() * inputs {
            return Err(TrainError::Export(format!(
                "standardization for {inputs} inputs does not fit the first layer"
            )));
        }
        for (row, b) in weights.chunks_mut(inputs).zip(bias.iter_mut()) {
            for ((w, m), s) in row.iter_mut().zip(mean).zip(std) {
                *w /= s;
                *b -= *w * m;
            }
        }
        Ok(())
    }

    /// Folds `y = y' std + mean` into the last layer (a dense layer without ReLU), so that a
    /// network trained on standardized targets answers in the targets' own units.
    pub fn fold_output_standardization(&mut self, mean: &[f32], std: &[f32]) -> Result<()> {
        let Some(Layer::Dense {
            weights,
            bias,
            relu: false,
        }) = self.layers.last_mut()
        else {
            return Err(TrainError::Export(
                "output standardization folds into a linear dense last layer only".into(),
            ));
        };
        if mean.len() != bias.len() || std.len() != bias.len() {
            return Err(TrainError::Export(format!(
                "standardization for {} outputs does not fit a layer of {}",
                mean.len(),
                bias.len()
            )));
        }
        let inputs = weights.len() / bias.len();
        for (o, (row, b)) in weights.chunks_mut(inputs).zip(bias.iter_mut()).enumerate() {
            row.iter_mut().for_each(|w| *w *= std[o]);
            *b = *b * std[o] + mean[o];
        }
        Ok(())
    }
}

fn dense(x: &[f32], n: usize, weights: &[f32], bias: &[f32], relu: bool) -> Vec<f32> {
    let outputs = bias.len();
    let inputs = x.len() / n.max(1);
    let mut y = Vec::with_capacity(n * outputs);
    for row in x.chunks(inputs.max(1)).take(n) {
        for (w, b) in weights.chunks(inputs.max(1)).zip(bias) {
            let v = row.iter().zip(w).map(|(a, b)| a * b).sum::<f32>() + b;
            y.push(if relu { v.max(0.0) } else { v });
        }
    }
    y
}

fn conv2d(
    x: &[f32],
    n: usize,
    shape: &[usize],
    filter: &[f32],
    bias: &[f32],
    [kh, kw]: [usize; 2],
    relu: bool,
) -> Vec<f32> {
    let (h, w, c) = (shape[0], shape[1], shape[2]);
    let (oh, ow, out) = (h + 1 - kh, w + 1 - kw, bias.len());
    let mut y = Vec::with_capacity(n * oh * ow * out);
    for image in x.chunks(h * w * c).take(n) {
        for r in 0..oh {
            for col in 0..ow {
                for (o, b) in bias.iter().enumerate() {
                    let mut v = *b;
                    for i in 0..kh {
                        for j in 0..kw {
                            let px = &image[((r + i) * w + col + j) * c..][..c];
                            let f = &filter[((o * kh + i) * kw + j) * c..][..c];
                            v += px.iter().zip(f).map(|(a, b)| a * b).sum::<f32>();
                        }
                    }
                    y.push(if relu { v.max(0.0) } else { v });
                }
            }
        }
    }
    y
}

fn max_pool2(x: &[f32], n: usize, shape: &[usize]) -> Vec<f32> {
    let (h, w, c) = (shape[0], shape[1], shape[2]);
    let (oh, ow) = (h / 2, w / 2);
    let mut y = Vec::with_capacity(n * oh * ow * c);
    for image in x.chunks(h * w * c).take(n) {
        for r in 0..oh {
            for col in 0..ow {
                for ch in 0..c {
                    let at = |i: usize, j: usize| image[((2 * r + i) * w + 2 * col + j) * c + ch];
                    y.push(at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1)));
                }
            }
        }
    }
    y
}

/// Softmax of one row, shifted by its maximum so that large logits do not overflow.
pub(crate) fn softmax(logits: &[f32]) -> Vec<f32> {
    let top = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|v| (v - top).exp()).collect();
    let total: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / total).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_follow_the_layers() {
        let net = Network {
            input_shape: vec![6, 6, 1],
            input_standardization: None,
            layers: vec![
                Layer::Conv2d {
                    filter: vec![0.0; 2 * 9],
                    bias: vec![0.0; 2],
                    kernel: [3, 3],
                    relu: true,
                },
                Layer::MaxPool2,
                Layer::Dense {
                    weights: vec![0.0; 3 * 8],
                    bias: vec![0.0; 3],
                    relu: false,
                },
            ],
            softmax: true,
        };
        let shapes = net.shapes().unwrap();
        assert_eq!(
            shapes,
            vec![vec![6, 6, 1], vec![4, 4, 2], vec![2, 2, 2], vec![3]]
        );
    }

    #[test]
    fn a_layer_that_does_not_fit_is_named() {
        let net = Network {
            input_shape: vec![4],
            input_standardization: None,
            layers: vec![Layer::Dense {
                weights: vec![0.0; 5],
                bias: vec![0.0; 2],
                relu: false,
            }],
            softmax: false,
        };
        let err = net.shapes().unwrap_err().to_string();
        assert!(err.contains("layer 0") && err.contains("2 x 4"), "{err}");
    }

    #[test]
    fn conv_and_pool_compute_by_hand() {
        // One 3x3 input channel, a 2x2 filter of ones: each output sums a 2x2 window.
        let net = Network {
            input_shape: vec![3, 3, 1],
            input_standardization: None,
            layers: vec![
                Layer::Conv2d {
                    filter: vec![1.0; 4],
                    bias: vec![0.5],
                    kernel: [2, 2],
                    relu: false,
                },
                Layer::MaxPool2,
            ],
            softmax: false,
        };
        let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let acts = net.activations(&x, 1).unwrap();
        assert_eq!(acts[1], vec![12.5, 16.5, 24.5, 28.5]);
        assert_eq!(acts[2], vec![28.5]);
    }

    #[test]
    fn standardization_folds_into_the_weights() {
        let mut net = Network {
            input_shape: vec![2],
            input_standardization: None,
            layers: vec![Layer::Dense {
                weights: vec![1.0, -2.0, 0.5, 3.0],
                bias: vec![0.1, -0.2],
                relu: false,
            }],
            softmax: false,
        };
        let (mean, std) = ([3.0, -1.0], [2.0, 0.5]);
        let x = [4.0f32, 1.5];
        let standardized: Vec<f32> = (0..2).map(|i| (x[i] - mean[i]) / std[i]).collect();
        let before = net.forward(&standardized, 1).unwrap();
        net.fold_input_standardization(&mean, &std).unwrap();
        let after = net.forward(&x, 1).unwrap();
        for (a, b) in before.iter().zip(&after) {
            assert!((a - b).abs() < 1e-5, "{before:?} vs {after:?}");
        }
        let (ymean, ystd) = ([10.0, 20.0], [2.0, 4.0]);
        net.fold_output_standardization(&ymean, &ystd).unwrap();
        let scaled = net.forward(&x, 1).unwrap();
        for o in 0..2 {
            let want = after[o] * ystd[o] + ymean[o];
            assert!((scaled[o] - want).abs() < 1e-4, "{scaled:?}");
        }
    }
}
