//! The float32 model: each layer becomes one TFLite builtin with its ReLU fused.

use tract_tflite::tflite::BuiltinOperator as B;

use super::graph::{Dtype, Graph, Op, Options};
use super::Names;
use crate::error::Result;
use crate::network::{Layer, Network};

/// Little-endian bytes of f32 values.
pub(super) fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The float graph of `net`.
pub(super) fn graph(net: &Network, names: &Names) -> Result<Graph> {
    let net = &net.folded()?;
    let shapes = net.shapes()?;
    let mut g = Graph {
        description: names.description.clone(),
        ..Graph::default()
    };
    let mut x = g.activation(&names.input, Dtype::F32, &net.input_shape, None);
    g.input = x;
    let last = net.layers.len().saturating_sub(1);
    for (i, (layer, shape)) in net.layers.iter().zip(&shapes[1..]).enumerate() {
        let out_name = if i == last && !net.softmax {
            names.output.clone()
        } else {
            format!("layer{i}")
        };
        let in_shape = &shapes[i];
        let y = g.activation(&out_name, Dtype::F32, shape, None);
        let op = match layer {
            Layer::Dense {
                weights,
                bias,
                relu,
            } => {
                let inputs: usize = in_shape.iter().product();
                let w = g.constant(
                    &format!("layer{i}/weights"),
                    Dtype::F32,
                    &[bias.len(), inputs],
                    f32_bytes(weights),
                    None,
                );
                let b = g.constant(
                    &format!("layer{i}/bias"),
                    Dtype::F32,
                    &[bias.len()],
                    f32_bytes(bias),
                    None,
                );
                Op {
                    code: B::FULLY_CONNECTED,
                    version: 1,
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
                let c = in_shape[2];
                let f = g.constant(
                    &format!("layer{i}/filter"),
                    Dtype::F32,
                    &[bias.len(), *kh, *kw, c],
                    f32_bytes(filter),
                    None,
                );
                let b = g.constant(
                    &format!("layer{i}/bias"),
                    Dtype::F32,
                    &[bias.len()],
                    f32_bytes(bias),
                    None,
                );
                Op {
                    code: B::CONV_2D,
                    version: 1,
                    inputs: vec![x, f, b],
                    outputs: vec![y],
                    options: Options::Conv { relu: *relu },
                }
            }
            Layer::MaxPool2 => Op {
                code: B::MAX_POOL_2D,
                version: 1,
                inputs: vec![x],
                outputs: vec![y],
                options: Options::Pool2,
            },
        };
        g.ops.push(op);
        x = y;
    }
    if net.softmax {
        let classes = shapes.last().map(|s| s.iter().product()).unwrap_or(0);
        let y = g.activation(&names.output, Dtype::F32, &[classes], None);
        g.ops.push(Op {
            code: B::SOFTMAX,
            version: 1,
            inputs: vec![x],
            outputs: vec![y],
            options: Options::Softmax,
        });
        x = y;
    }
    g.output = x;
    Ok(g)
}
