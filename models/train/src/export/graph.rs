//! A TFLite graph as plain data, and its one serializer: the float and int8 exporters build a
//! [`Graph`], and only this file speaks flatbuffers.

use flatbuffers::{FlatBufferBuilder, WIPOffset};
use tract_tflite::tflite;

/// Element types the exporters write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// 32-bit float.
    F32,
    /// Signed 8-bit (quantized).
    I8,
    /// Unsigned 8-bit (quantized).
    U8,
    /// Signed 32-bit (quantized biases).
    I32,
}

impl Dtype {
    fn tflite(self) -> tflite::TensorType {
        match self {
            Dtype::F32 => tflite::TensorType::FLOAT32,
            Dtype::I8 => tflite::TensorType::INT8,
            Dtype::U8 => tflite::TensorType::UINT8,
            Dtype::I32 => tflite::TensorType::INT32,
        }
    }
}

/// Affine quantization: `real = scale × (q - zero_point)`, per tensor (one entry) or per
/// channel along `axis`.
#[derive(Debug, Clone, PartialEq)]
pub struct Quant {
    /// Scales.
    pub scale: Vec<f32>,
    /// Zero points, as many as scales.
    pub zero_point: Vec<i64>,
    /// The channel axis when per channel.
    pub axis: i32,
}

/// One tensor: a constant when `data` is set, else an activation.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Name (the signature's names for inputs and outputs).
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Shape, with 1 for the batch of activations.
    pub shape: Vec<usize>,
    /// Whether the first dimension is a dynamic batch (`shape_signature` -1).
    pub dynamic_batch: bool,
    /// Little-endian bytes of a constant.
    pub data: Option<Vec<u8>>,
    /// Quantization, for 8-bit tensors and int32 biases.
    pub quant: Option<Quant>,
}

/// Built-in options of an operator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Options {
    /// No options table.
    None,
    /// CONV_2D, stride 1, VALID.
    Conv {
        /// Whether ReLU is fused.
        relu: bool,
    },
    /// MAX_POOL_2D 2x2, stride 2, VALID.
    Pool2,
    /// FULLY_CONNECTED.
    FullyConnected {
        /// Whether ReLU is fused.
        relu: bool,
    },
    /// SOFTMAX with beta 1.
    Softmax,
    /// ADD, no fused activation.
    Add,
    /// MUL, no fused activation.
    Mul,
}

/// One operator.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// The builtin.
    pub code: tflite::BuiltinOperator,
    /// Operator version (what the TFLite converter writes for these types).
    pub version: i32,
    /// Input tensor indices.
    pub inputs: Vec<usize>,
    /// Output tensor indices.
    pub outputs: Vec<usize>,
    /// Its options.
    pub options: Options,
}

/// A one-subgraph model with one input and one output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    /// Every tensor.
    pub tensors: Vec<Tensor>,
    /// Operators in execution order.
    pub ops: Vec<Op>,
    /// The model input.
    pub input: usize,
    /// The model output.
    pub output: usize,
    /// The model's description string.
    pub description: String,
}

impl Graph {
    /// Adds a tensor and returns its index.
    pub fn add(&mut self, tensor: Tensor) -> usize {
        self.tensors.push(tensor);
        self.tensors.len() - 1
    }

    /// Adds an activation of `shape` (the batch is prepended) and returns its index.
    pub fn activation(
        &mut self,
        name: &str,
        dtype: Dtype,
        item: &[usize],
        quant: Option<Quant>,
    ) -> usize {
        let mut shape = vec![1];
        shape.extend_from_slice(item);
        self.add(Tensor {
            name: name.to_string(),
            dtype,
            shape,
            dynamic_batch: true,
            data: None,
            quant,
        })
    }

    /// Adds a constant and returns its index.
    pub fn constant(
        &mut self,
        name: &str,
        dtype: Dtype,
        shape: &[usize],
        data: Vec<u8>,
        quant: Option<Quant>,
    ) -> usize {
        self.add(Tensor {
            name: name.to_string(),
            dtype,
            shape: shape.to_vec(),
            dynamic_batch: false,
            data: Some(data),
            quant,
        })
    }

    /// The `.tflite` bytes, with a `serving_default` SignatureDef naming the input and output.
    pub fn serialize(&self) -> Vec<u8> {
        let mut fbb = FlatBufferBuilder::with_capacity(
            1024 + self
                .tensors
                .iter()
                .filter_map(|t| t.data.as_ref().map(Vec::len))
                .sum::<usize>(),
        );
        // Buffer 0 is the empty buffer every activation points at, by convention.
        let mut buffers = vec![tflite::Buffer::create(
            &mut fbb,
            &tflite::BufferArgs::default(),
        )];
        let mut tensors = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            let buffer = match &t.data {
                Some(bytes) => {
                    let data = fbb.create_vector(bytes);
                    buffers.push(tflite::Buffer::create(
                        &mut fbb,
                        &tflite::BufferArgs { data: Some(data) },
                    ));
                    buffers.len() as u32 - 1
                }
                None => 0,
            };
            tensors.push(tensor(&mut fbb, t, buffer));
        }
        let mut codes: Vec<(tflite::BuiltinOperator, i32)> = vec![];
        let mut operators = Vec::with_capacity(self.ops.len());
        for op in &self.ops {
            let key = (op.code, op.version);
            let opcode_index = match codes.iter().position(|c| *c == key) {
                Some(i) => i,
                None => {
                    codes.push(key);
                    codes.len() - 1
                }
            };
            operators.push(operator(&mut fbb, op, opcode_index as u32));
        }
        let operator_codes: Vec<_> = codes
            .iter()
            .map(|&(code, version)| {
                tflite::OperatorCode::create(
                    &mut fbb,
                    &tflite::OperatorCodeArgs {
                        // Codes past 127 live only in `builtin_code`; the deprecated byte then
                        // holds PLACEHOLDER_FOR_GREATER_OP_CODES (127).
                        deprecated_builtin_code: i8::try_from(code.0).unwrap_or(127),
                        custom_code: None,
                        version,
                        builtin_code: code,
                    },
                )
            })
            .collect();
        let tensors = fbb.create_vector(&tensors);
        let operators = fbb.create_vector(&operators);
        let inputs = fbb.create_vector(&[self.input as i32]);
        let outputs = fbb.create_vector(&[self.output as i32]);
        let name = fbb.create_string("main");
        let subgraph = tflite::SubGraph::create(
            &mut fbb,
            &tflite::SubGraphArgs {
                tensors: Some(tensors),
                inputs: Some(inputs),
                outputs: Some(outputs),
                operators: Some(operators),
                name: Some(name),
            },
        );
        let signature = self.signature(&mut fbb);
        let subgraphs = fbb.create_vector(&[subgraph]);
        let operator_codes = fbb.create_vector(&operator_codes);
        let buffers = fbb.create_vector(&buffers);
        let description = fbb.create_string(&self.description);
        let signature_defs = fbb.create_vector(&[signature]);
        let model = tflite::Model::create(
            &mut fbb,
            &tflite::ModelArgs {
                version: 3,
                operator_codes: Some(operator_codes),
                subgraphs: Some(subgraphs),
                description: Some(description),
                buffers: Some(buffers),
                signature_defs: Some(signature_defs),
                ..Default::default()
            },
        );
        tflite::finish_model_buffer(&mut fbb, model);
        fbb.finished_data().to_vec()
    }

    fn signature<'a>(
        &self,
        fbb: &mut FlatBufferBuilder<'a>,
    ) -> WIPOffset<tflite::SignatureDef<'a>> {
        let map = |fbb: &mut FlatBufferBuilder<'a>, index: usize| {
            let name = fbb.create_string(&self.tensors[index].name);
            let entry = tflite::TensorMap::create(
                fbb,
                &tflite::TensorMapArgs {
                    name: Some(name),
                    tensor_index: index as u32,
                },
            );
            fbb.create_vector(&[entry])
        };
        let inputs = map(fbb, self.input);
        let outputs = map(fbb, self.output);
        let key = fbb.create_string("serving_default");
        tflite::SignatureDef::create(
            fbb,
            &tflite::SignatureDefArgs {
                inputs: Some(inputs),
                outputs: Some(outputs),
                signature_key: Some(key),
                subgraph_index: 0,
            },
        )
    }
}

fn tensor<'a>(
    fbb: &mut FlatBufferBuilder<'a>,
    t: &Tensor,
    buffer: u32,
) -> WIPOffset<tflite::Tensor<'a>> {
    let dims: Vec<i32> = t.shape.iter().map(|&d| d as i32).collect();
    let shape = fbb.create_vector(&dims);
    let shape_signature = t.dynamic_batch.then(|| {
        let mut sig = dims.clone();
        if let Some(first) = sig.first_mut() {
            *first = -1;
        }
        fbb.create_vector(&sig)
    });
    let quantization = t.quant.as_ref().map(|q| {
        let scale = fbb.create_vector(&q.scale);
        let zero_point = fbb.create_vector(&q.zero_point);
        tflite::QuantizationParameters::create(
            fbb,
            &tflite::QuantizationParametersArgs {
                scale: Some(scale),
                zero_point: Some(zero_point),
                quantized_dimension: q.axis,
                ..Default::default()
            },
        )
    });
    let name = fbb.create_string(&t.name);
    tflite::Tensor::create(
        fbb,
        &tflite::TensorArgs {
            shape: Some(shape),
            type_: t.dtype.tflite(),
            buffer,
            name: Some(name),
            quantization,
            shape_signature,
            ..Default::default()
        },
    )
}

fn operator<'a>(
    fbb: &mut FlatBufferBuilder<'a>,
    op: &Op,
    opcode_index: u32,
) -> WIPOffset<tflite::Operator<'a>> {
    let act = |relu: bool| {
        if relu {
            tflite::ActivationFunctionType::RELU
        } else {
            tflite::ActivationFunctionType::NONE
        }
    };
    let (options_type, options) = match op.options {
        Options::None => (tflite::BuiltinOptions::NONE, None),
        Options::Conv { relu } => (
            tflite::BuiltinOptions::Conv2DOptions,
            Some(
                tflite::Conv2DOptions::create(
                    fbb,
                    &tflite::Conv2DOptionsArgs {
                        padding: tflite::Padding::VALID,
                        stride_w: 1,
                        stride_h: 1,
                        fused_activation_function: act(relu),
                        dilation_w_factor: 1,
                        dilation_h_factor: 1,
                    },
                )
                .as_union_value(),
            ),
        ),
        Options::Pool2 => (
            tflite::BuiltinOptions::Pool2DOptions,
            Some(
                tflite::Pool2DOptions::create(
                    fbb,
                    &tflite::Pool2DOptionsArgs {
                        padding: tflite::Padding::VALID,
                        stride_w: 2,
                        stride_h: 2,
                        filter_width: 2,
                        filter_height: 2,
                        fused_activation_function: tflite::ActivationFunctionType::NONE,
                    },
                )
                .as_union_value(),
            ),
        ),
        Options::FullyConnected { relu } => (
            tflite::BuiltinOptions::FullyConnectedOptions,
            Some(
                tflite::FullyConnectedOptions::create(
                    fbb,
                    &tflite::FullyConnectedOptionsArgs {
                        fused_activation_function: act(relu),
                        ..Default::default()
                    },
                )
                .as_union_value(),
            ),
        ),
        Options::Softmax => (
            tflite::BuiltinOptions::SoftmaxOptions,
            Some(
                tflite::SoftmaxOptions::create(fbb, &tflite::SoftmaxOptionsArgs { beta: 1.0 })
                    .as_union_value(),
            ),
        ),
        Options::Add => (
            tflite::BuiltinOptions::AddOptions,
            Some(
                tflite::AddOptions::create(
                    fbb,
                    &tflite::AddOptionsArgs {
                        fused_activation_function: tflite::ActivationFunctionType::NONE,
                        pot_scale_int16: false,
                    },
                )
                .as_union_value(),
            ),
        ),
        Options::Mul => (
            tflite::BuiltinOptions::MulOptions,
            Some(
                tflite::MulOptions::create(
                    fbb,
                    &tflite::MulOptionsArgs {
                        fused_activation_function: tflite::ActivationFunctionType::NONE,
                    },
                )
                .as_union_value(),
            ),
        ),
    };
    let list = |fbb: &mut FlatBufferBuilder<'a>, v: &[usize]| {
        let v: Vec<i32> = v.iter().map(|&i| i as i32).collect();
        fbb.create_vector(&v)
    };
    let inputs = list(fbb, &op.inputs);
    let outputs = list(fbb, &op.outputs);
    tflite::Operator::create(
        fbb,
        &tflite::OperatorArgs {
            opcode_index,
            inputs: Some(inputs),
            outputs: Some(outputs),
            builtin_options_type: options_type,
            builtin_options: options,
            ..Default::default()
        },
    )
}
