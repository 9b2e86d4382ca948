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
        input_standardization: None,
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
        input_standardization: None,
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

/// Runs exported bytes on `x` (`n` examples) and returns the outputs as floats.
fn run_float(bytes: &[u8], input_shape: &[usize], x: Vec<f32>, n: usize) -> Vec<f32> {
    let model = LoadedModel::load(bytes).unwrap();
    let mut shape = vec![n];
    shape.extend(input_shape);
    let out = model
        .run(&[HostTensor::f32(shape, x).unwrap()], OutputMode::Float)
        .unwrap();
    match &out[0].data {
        TensorData::F32(v) => v.clone(),
        other => panic!("float output expected, got {:?}", other.dtype()),
    }
}

/// The largest output error of the int8 model against the float network, in units of the
/// output's spread over the sample, on inputs that were not in the calibration sample.
fn int8_error(net: &Network, rng: &mut fastrand::Rng) -> f32 {
    let volume: usize = net.input_shape.iter().product();
    let calibration = random(rng, 200 * volume, 1.0);
    let sample = Calibration {
        inputs: &calibration,
        n: 200,
    };
    let bytes = int8_tflite(net, &Names::default(), sample, IoType::Float).unwrap();
    let n = 20;
    let x = random(rng, n * volume, 0.9);
    let want = net.forward(&x, n).unwrap();
    let got = run_float(&bytes, &net.input_shape, x, n);
    assert_eq!(got.len(), want.len());
    let spread = want.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v))
        - want.iter().fold(f32::INFINITY, |m, v| m.min(*v));
    got.iter()
        .zip(&want)
        .map(|(g, w)| (g - w).abs() / spread.max(1e-6))
        .fold(0.0, f32::max)
}

#[test]
fn int8_models_answer_close_to_the_float_network() {
    let mut rng = fastrand::Rng::with_seed(11);
    let cases = [
        ("mlp regressor", mlp(&mut rng, vec![7], false)),
        (
            "mlp classifier over images",
            mlp(&mut rng, vec![4, 3, 2], true),
        ),
        ("cnn classifier", cnn(&mut rng)),
    ];
    for (name, net) in cases {
        let err = int8_error(&net, &mut rng);
        // Three layers of 8-bit rounding: a few percent of the spread at most.
        assert!(err < 0.04, "{name}: error {err} of the output spread");
    }
}

#[test]
fn int8_and_uint8_io_compute_exactly_what_float_io_computes() {
    let mut rng = fastrand::Rng::with_seed(12);
    let net = cnn(&mut rng);
    let volume: usize = net.input_shape.iter().product();
    let calibration = random(&mut rng, 50 * volume, 1.0);
    let sample = Calibration {
        inputs: &calibration,
        n: 50,
    };
    let export = |io| int8_tflite(&net, &Names::default(), sample, io).unwrap();
    let float_io = LoadedModel::load(&export(IoType::Float)).unwrap();
    let int8_io = LoadedModel::load(&export(IoType::Int8)).unwrap();
    let uint8_io = LoadedModel::load(&export(IoType::Uint8)).unwrap();
    let n = 4;
    let x = random(&mut rng, n * volume, 1.0);
    let mut shape = vec![n];
    shape.extend(&net.input_shape);

    let input_q = int8_io.signature().inputs[0].quantization.clone().unwrap();
    let (scale, zp) = (input_q.scale0(), input_q.zp0());
    let q: Vec<i8> = x
        .iter()
        .map(|v| litehouse_models::quant::quantize_value(*v, scale, zp, -128, 127) as i8)
        .collect();
    let u: Vec<u8> = q.iter().map(|v| (i16::from(*v) + 128) as u8).collect();
    let uint8_q = uint8_io.signature().inputs[0].quantization.clone().unwrap();
    assert_eq!((uint8_q.scale0(), uint8_q.zp0()), (scale, zp + 128));

    let want = float_io
        .run(
            &[HostTensor::f32(shape.clone(), x).unwrap()],
            OutputMode::Float,
        )
        .unwrap();
    let i8_out = int8_io
        .run(
            &[HostTensor::new(shape.clone(), TensorData::I8(q)).unwrap()],
            OutputMode::Float,
        )
        .unwrap();
    let u8_out = uint8_io
        .run(
            &[HostTensor::new(shape, TensorData::U8(u)).unwrap()],
            OutputMode::Float,
        )
        .unwrap();
    assert_eq!(i8_out[0].data, want[0].data, "int8 I/O");
    assert_eq!(u8_out[0].data, want[0].data, "uint8 I/O");
}

#[test]
fn the_int8_graph_is_quantized_as_the_converter_does() {
    let mut rng = fastrand::Rng::with_seed(13);
    let net = cnn(&mut rng);
    let volume: usize = net.input_shape.iter().product();
    let calibration = random(&mut rng, 30 * volume, 1.0);
    let sample = Calibration {
        inputs: &calibration,
        n: 30,
    };
    let g = int8_graph(&net, &Names::default(), sample, IoType::Float).unwrap();
    let codes: Vec<_> = g.ops.iter().map(|o| o.code).collect();
    use tract_tflite::tflite::BuiltinOperator as B;
    assert_eq!(
        codes,
        vec![
            B::QUANTIZE,
            B::CONV_2D,
            B::MAX_POOL_2D,
            B::CONV_2D,
            B::FULLY_CONNECTED,
            B::SOFTMAX,
            B::DEQUANTIZE
        ]
    );
    assert_eq!(g.tensors[g.input].dtype, Dtype::F32);
    assert_eq!(g.tensors[g.output].dtype, Dtype::F32);
    for op in &g.ops {
        let x = &g.tensors[op.inputs[0]];
        let y = &g.tensors[op.outputs[0]];
        match op.code {
            B::CONV_2D | B::FULLY_CONNECTED => {
                let (w, b) = (&g.tensors[op.inputs[1]], &g.tensors[op.inputs[2]]);
                let (wq, bq) = (w.quant.as_ref().unwrap(), b.quant.as_ref().unwrap());
                assert_eq!((w.dtype, b.dtype), (Dtype::I8, Dtype::I32));
                assert_eq!(wq.scale.len(), w.shape[0], "one weight scale per channel");
                assert_eq!(wq.axis, 0);
                assert!(wq.zero_point.iter().all(|z| *z == 0), "symmetric weights");
                let xs = x.quant.as_ref().unwrap().scale[0];
                for (bs, ws) in bq.scale.iter().zip(&wq.scale) {
                    assert!((bs - xs * ws).abs() <= 1e-6 * bs.abs());
                }
                // The largest weight of each channel sits at +-127.
                let bytes = w.data.as_ref().unwrap();
                for row in bytes.chunks(bytes.len() / w.shape[0]) {
                    assert_eq!(
                        row.iter().map(|b| (*b as i8).unsigned_abs()).max(),
                        Some(127)
                    );
                }
            }
            B::MAX_POOL_2D => assert_eq!(x.quant, y.quant, "pooling keeps its quantization"),
            B::SOFTMAX => {
                let q = y.quant.as_ref().unwrap();
                assert_eq!((q.scale[0], q.zero_point[0]), (1.0 / 256.0, -128));
            }
            _ => {}
        }
        if y.dtype == Dtype::I8 {
            let q = y.quant.as_ref().unwrap();
            assert_eq!(q.scale.len(), 1, "activations are per tensor");
        }
    }
}

#[test]
fn calibration_that_cannot_set_ranges_is_refused() {
    let mut rng = fastrand::Rng::with_seed(14);
    let net = mlp(&mut rng, vec![7], false);
    let nan = vec![f32::NAN; 7];
    let cases: [(&str, Calibration, &str); 3] = [
        (
            "no examples",
            Calibration { inputs: &[], n: 0 },
            "at least one",
        ),
        (
            "nan input",
            Calibration { inputs: &nan, n: 1 },
            "not finite",
        ),
        (
            "wrong length",
            Calibration { inputs: &nan, n: 2 },
            "7 input values for 2",
        ),
    ];
    for (name, sample, expected) in cases {
        let err = int8_tflite(&net, &Names::default(), sample, IoType::Float)
            .expect_err(name)
            .to_string();
        assert!(err.contains(expected), "{name}: {err}");
    }
}
