//! Full-integer int8 post-training quantization with the TFLite converter's semantics:
//! per-channel symmetric int8 weights (axis 0), asymmetric per-tensor int8 activations whose
//! ranges come from running the float network on a representative sample, int32 biases with
//! scale `input_scale × weight_scale[c]`, max pooling that keeps its input's quantization, and a
//! softmax whose output is fixed at scale 1/256, zero point -128.

use tract_tflite::tflite::BuiltinOperator as B;

use super::float::f32_bytes;
use super::graph::{Dtype, Graph, Op, Options, Quant};
use super::Names;
use crate::error::{Result, TrainError};
use crate::network::{Layer, Network, Standardization};

/// The element type at the model's boundary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IoType {
    /// Float32 input and output around the int8 graph (QUANTIZE in, DEQUANTIZE out).
    #[default]
    Float,
    /// Int8 input and output, quantized as the graph's first and last activations.
    Int8,
    /// Uint8 input and output (zero points shifted by 128), requantized to int8 inside.
    Uint8,
}

impl std::str::FromStr for IoType {
    type Err = TrainError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "float" | "float32" => Ok(IoType::Float),
            "int8" => Ok(IoType::Int8),
            "uint8" => Ok(IoType::Uint8),
            other => Err(TrainError::Invalid(format!(
                "unknown I/O type {other:?}: expected float, int8 or uint8"
            ))),
        }
    }
}

/// A representative sample: `n` examples, `n × input volume` values, as the network takes them.
#[derive(Debug, Clone, Copy)]
pub struct Calibration<'a> {
    /// The examples' values.
    pub inputs: &'a [f32],
    /// How many examples.
    pub n: usize,
}

/// Per-tensor int8 parameters for a real range, widened to hold 0 as the converter does so
/// that zero (padding, ReLU's floor) is exact.
fn activation_quant(lo: f32, hi: f32) -> Quant {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    // A range of one point (a dead layer) still needs a usable scale.
    let scale = if hi > lo {
        (hi - lo) / 255.0
    } else {
        1.0 / 255.0
    };
    let zero_point = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i64;
    Quant {
        scale: vec![scale],
        zero_point: vec![zero_point],
        axis: 0,
    }
}

/// The same real values as `q`, stored as uint8 (zero point shifted by 128).
fn as_uint8(q: &Quant) -> Quant {
    Quant {
        zero_point: q.zero_point.iter().map(|z| z + 128).collect(),
        ..q.clone()
    }
}

/// Symmetric int8 per output channel (the first axis): `q = round(w / s)`, `s = max|w| / 127`.
fn quantize_weights(weights: &[f32], channels: usize) -> (Vec<u8>, Vec<f32>) {
    let per = weights.len() / channels.max(1);
    let mut bytes = Vec::with_capacity(weights.len());
    let mut scales = Vec::with_capacity(channels);
    for row in weights.chunks(per.max(1)) {
        let top = row.iter().fold(0.0f32, |m, w| m.max(w.abs()));
        let scale = if top > 0.0 { top / 127.0 } else { 1.0 };
        bytes.extend(
            row.iter()
                .map(|w| (w / scale).round().clamp(-127.0, 127.0) as i8 as u8),
        );
        scales.push(scale);
    }
    (bytes, scales)
}

/// Int32 biases at scale `input_scale × weight_scale[c]`, zero point 0.
fn quantize_bias(bias: &[f32], input_scale: f32, weight_scales: &[f32]) -> (Vec<u8>, Quant) {
    let scales: Vec<f32> = weight_scales.iter().map(|w| w * input_scale).collect();
    let bytes = bias
        .iter()
        .zip(&scales)
        .flat_map(|(b, s)| {
            let q = (f64::from(*b) / f64::from(*s))
                .round()
                .clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32;
            q.to_le_bytes()
        })
        .collect();
    let quant = Quant {
        zero_point: vec![0; scales.len()],
        scale: scales,
        axis: 0,
    };
    (bytes, quant)
}

/// Smallest and largest value of each calibration activation.
fn ranges(net: &Network, sample: Calibration) -> Result<Vec<(f32, f32)>> {
    if sample.n == 0 {
        return Err(TrainError::Export(
            "int8 calibration needs at least one representative example".into(),
        ));
    }
    let activations = net.activations(sample.inputs, sample.n)?;
    activations
        .iter()
        .enumerate()
        .map(|(i, values)| {
            let mut lo = f32::INFINITY;
            let mut hi = f32::NEG_INFINITY;
            for &v in values {
                if !v.is_finite() {
                    return Err(TrainError::Export(format!(
                        "calibration: activation {i} holds {v}; the network or the sample is not finite"
                    )));
                }
                lo = lo.min(v);
                hi = hi.max(v);
            }
            Ok((lo, hi))
        })
        .collect()
}

/// The int8 graph of `net`, calibrated on `sample`.
pub(super) fn graph(
    net: &Network,
    names: &Names,
    sample: Calibration,
    io: IoType,
) -> Result<Graph> {
    // Float inputs are standardized in float, then quantized; 8-bit inputs are raw features,
    // so the standardization folds into the first layer.
    let folded;
    let net = match (&net.input_standardization, io) {
        (Some(_), IoType::Int8 | IoType::Uint8) => {
            tracing::warn!(
                "8-bit inputs share one scale: features on very different scales lose precision \
                 (float I/O standardizes them before quantizing)"
            );
            folded = net.folded()?;
            &folded
        }
        _ => net,
    };
    let shapes = net.shapes()?;
    let ranges = ranges(net, sample)?;
    let mut g = Graph {
        description: names.description.clone(),
        ..Graph::default()
    };
    let (lo, hi) = ranges[0];
    let mut q = activation_quant(lo, hi);
    let mut x = match io {
        IoType::Int8 => g.activation(&names.input, Dtype::I8, &net.input_shape, Some(q.clone())),
        IoType::Float | IoType::Uint8 => {
            let (dtype, outer) = match io {
                IoType::Uint8 => (Dtype::U8, Some(as_uint8(&q))),
                _ => (Dtype::F32, None),
            };
            let mut outside = g.activation(&names.input, dtype, &net.input_shape, outer);
            g.input = outside;
            if let Some(s) = &net.input_standardization {
                outside = standardize(&mut g, outside, s, &net.input_shape);
            }
            let inside = g.activation("input_int8", Dtype::I8, &net.input_shape, Some(q.clone()));
            g.ops.push(Op {
                code: B::QUANTIZE,
                version: 1,
                inputs: vec![outside],
                outputs: vec![inside],
                options: Options::None,
            });
            inside
        }
    };
    if io == IoType::Int8 {
        g.input = x;
    }
    for (i, (layer, shape)) in net.layers.iter().zip(&shapes[1..]).enumerate() {
        let in_scale = q.scale[0];
        let out_q = match layer {
            Layer::MaxPool2 => q.clone(),
            _ => {
                let (lo, hi) = ranges[i + 1];
                activation_quant(lo, hi)
            }
        };
        let y = g.activation(&format!("layer{i}"), Dtype::I8, shape, Some(out_q.clone()));
        let op = match layer {
            Layer::Dense {
                weights,
                bias,
                relu,
            } => {
                let inputs: usize = shapes[i].iter().product();
                let (w, b) =
                    weights_and_bias(&mut g, i, weights, bias, in_scale, &[bias.len(), inputs]);
                Op {
                    code: B::FULLY_CONNECTED,
                    version: 4,
                    inputs: vec![x, w, b],
                    outputs: vec![y],
                    options: Options::FullyConnected { relu: *relu },
                }
            }
            Layer::Conv2d {
                filter,
                bias,
                kernel: [kh, kw],
                relu,
            } => {
                let c = shapes[i][2];
                let (f, b) = weights_and_bias(
                    &mut g,
                    i,
                    filter,
                    bias,
                    in_scale,
                    &[bias.len(), *kh, *kw, c],
                );
                Op {
                    code: B::CONV_2D,
                    version: 3,
                    inputs: vec![x, f, b],
                    outputs: vec![y],
                    options: Options::Conv { relu: *relu },
                }
            }
            Layer::MaxPool2 => Op {
                code: B::MAX_POOL_2D,
                version: 2,
                inputs: vec![x],
                outputs: vec![y],
                options: Options::Pool2,
            },
        };
        g.ops.push(op);
        x = y;
        q = out_q;
    }
    let out_shape = shapes.last().cloned().unwrap_or_default();
    if net.softmax {
        // The converter fixes softmax's output range to [0, 1) in 256 steps.
        q = Quant {
            scale: vec![1.0 / 256.0],
            zero_point: vec![-128],
            axis: 0,
        };
        let y = g.activation("softmax", Dtype::I8, &out_shape, Some(q.clone()));
        g.ops.push(Op {
            code: B::SOFTMAX,
            version: 2,
            inputs: vec![x],
            outputs: vec![y],
            options: Options::Softmax,
        });
        x = y;
    }
    let (code, version, dtype, outer) = match io {
        IoType::Int8 => {
            // The last activation is the output: give it the signature's name.
            g.tensors[x].name = names.output.clone();
            g.output = x;
            return Ok(g);
        }
        IoType::Float => (B::DEQUANTIZE, 2, Dtype::F32, None),
        IoType::Uint8 => (B::QUANTIZE, 1, Dtype::U8, Some(as_uint8(&q))),
    };
    let y = g.activation(&names.output, dtype, &out_shape, outer);
    g.ops.push(Op {
        code,
        version,
        inputs: vec![x],
        outputs: vec![y],
        options: Options::None,
    });
    g.output = y;
    Ok(g)
}

/// `x × (1 / std) + (-mean / std)` in float: MUL then ADD with per-feature constants.
fn standardize(g: &mut Graph, x: usize, s: &Standardization, shape: &[usize]) -> usize {
    let scale: Vec<f32> = s.std.iter().map(|d| 1.0 / d).collect();
    let shift: Vec<f32> = s.mean.iter().zip(&s.std).map(|(m, d)| -m / d).collect();
    let k = scale.len();
    let scale = g.constant(
        "standardize/scale",
        Dtype::F32,
        &[k],
        f32_bytes(&scale),
        None,
    );
    let shift = g.constant(
        "standardize/shift",
        Dtype::F32,
        &[k],
        f32_bytes(&shift),
        None,
    );
    let scaled = g.activation("standardize/scaled", Dtype::F32, shape, None);
    let y = g.activation("standardized", Dtype::F32, shape, None);
    g.ops.push(Op {
        code: B::MUL,
        version: 1,
        inputs: vec![x, scale],
        outputs: vec![scaled],
        options: Options::Mul,
    });
    g.ops.push(Op {
        code: B::ADD,
        version: 1,
        inputs: vec![scaled, shift],
        outputs: vec![y],
        options: Options::Add,
    });
    y
}

/// Adds layer `i`'s int8 weights (per channel) and int32 bias; returns their tensor indices.
fn weights_and_bias(
    g: &mut Graph,
    i: usize,
    weights: &[f32],
    bias: &[f32],
    input_scale: f32,
    shape: &[usize],
) -> (usize, usize) {
    let (bytes, scales) = quantize_weights(weights, bias.len());
    let (bias_bytes, bias_quant) = quantize_bias(bias, input_scale, &scales);
    let w = g.constant(
        &format!("layer{i}/weights"),
        Dtype::I8,
        shape,
        bytes,
        Some(Quant {
            zero_point: vec![0; scales.len()],
            scale: scales,
            axis: 0,
        }),
    );
    let b = g.constant(
        &format!("layer{i}/bias"),
        Dtype::I32,
        &[bias.len()],
        bias_bytes,
        Some(bias_quant),
    );
    (w, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_ranges_hold_zero_and_span_255_steps() {
        let q = activation_quant(0.0, 1.0);
        assert_eq!((q.scale[0], q.zero_point[0]), (1.0 / 255.0, -128));
        let q = activation_quant(-2.0, 3.1);
        assert!((q.scale[0] - 5.1 / 255.0).abs() < 1e-9);
        // -2 maps to -128: zp = -128 + 2 / scale = -28.
        assert_eq!(q.zero_point[0], -28);
        // A positive-only range is widened to start at 0.
        let q = activation_quant(0.5, 2.55);
        assert_eq!(q.zero_point[0], -128);
        assert!((q.scale[0] - 0.01).abs() < 1e-9);
    }

    #[test]
    fn weights_are_symmetric_per_channel() {
        let (bytes, scales) = quantize_weights(&[1.27, -0.64, 0.0, 0.0, 2.54, -2.54], 3);
        assert_eq!(scales, vec![0.01, 1.0, 0.02]);
        let q: Vec<i8> = bytes.iter().map(|&b| b as i8).collect();
        assert_eq!(q, vec![127, -64, 0, 0, 127, -127]);
    }

    #[test]
    fn biases_are_int32_at_the_product_scale() {
        let (bytes, quant) = quantize_bias(&[0.5, -0.25], 0.5, &[0.01, 0.1]);
        assert_eq!(quant.scale, vec![0.005, 0.05]);
        let q: Vec<i32> = bytes
            .chunks(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(q, vec![100, -5]);
    }
}
