//! Loading and running through the public API: bad files fail with precise errors, real digits
//! are classified, a dynamic batch runs on one plan, and inputs are checked.

#![allow(clippy::unwrap_used)] // test helpers read trusted fixtures

use std::path::{Path, PathBuf};

use litehouse_models::{HostTensor, LoadedModel, ModelError, OutputMode, TensorData};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn load_err(bytes: &[u8]) -> String {
    match LoadedModel::load(bytes) {
        Err(e @ ModelError::InvalidModel(_)) => e.to_string(),
        Err(e) => panic!("expected InvalidModel, got {e:?}"),
        Ok(_) => panic!("loaded garbage"),
    }
}

#[test]
fn bad_files_are_refused_with_a_reason() {
    assert!(load_err(b"").contains("empty"));
    assert!(load_err(b"\x89PNG\r\n\x1a\n0000000000000000").contains("TFL3"));
    let mut noise = vec![0u8; 4096];
    let mut s = 12345u32;
    for b in noise.iter_mut() {
        s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *b = (s >> 16) as u8;
    }
    noise[4..8].copy_from_slice(b"TFL3");
    assert!(load_err(&noise).contains("flatbuffer"));
    let good = std::fs::read(testdata().join("exported/cnn_int8_io.tflite")).unwrap();
    for cut in [9, good.len() / 3, good.len() - 17] {
        assert!(
            LoadedModel::load(&good[..cut]).is_err(),
            "truncated at {cut} loaded"
        );
    }
}

#[test]
fn custom_ops_name_the_op_and_index() {
    let path = testdata().join("fetched/mediapipe/selfie_segmentation.tflite");
    let err = LoadedModel::load_file(path).expect_err("custom op must be refused");
    match err {
        ModelError::UnsupportedOp { op, index, .. } => {
            assert!(op.contains("Convolution2DTransposeBias"), "{op}");
            assert!(index > 0);
        }
        other => panic!("expected UnsupportedOp, got {other:?}"),
    }
}

/// Both MNISTnet files: v2, and the 2018 v1 whose 8-byte fields are 4 bytes off (realigned at load).
#[test]
fn mnistnet_classifies_ten_real_digits() {
    for file in [
        "fetched/MNISTnet_v2_uint8_quant.tflite",
        "fetched/MNISTnet_uint8_quant.tflite",
    ] {
        classifies_ten_digits(&LoadedModel::load_file(testdata().join(file)).unwrap());
    }
}

fn classifies_ten_digits(model: &LoadedModel) {
    let digits = std::fs::read(testdata().join("fetched/mnist10.bin")).unwrap();
    for d in 0..10 {
        let x = HostTensor::new(
            vec![1, 28, 28, 1],
            TensorData::U8(digits[d * 784..(d + 1) * 784].to_vec()),
        )
        .unwrap();
        let out = model.run(&[x], OutputMode::Float).unwrap();
        let TensorData::F32(p) = &out[0].data else {
            panic!("float output expected")
        };
        let best = (0..10).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
        assert_eq!(best, d, "digit {d} classified as {best}: {p:?}");
    }
}

#[test]
fn dynamic_batch_runs_any_size_and_float_inputs_are_quantized() {
    let model = LoadedModel::load_file(testdata().join("exported/mlp_int8_io.tflite")).unwrap();
    assert!(model.signature().dynamic_batch());
    let one: Vec<f32> = (0..784).map(|i| (i % 255) as f32 / 255.0).collect();
    let single = model
        .run(
            &[HostTensor::f32(vec![1, 28, 28], one.clone()).unwrap()],
            OutputMode::Float,
        )
        .unwrap();
    for batch in [3usize, 17] {
        let data: Vec<f32> = one.iter().cycle().take(784 * batch).copied().collect();
        let out = model
            .run(
                &[HostTensor::f32(vec![batch, 28, 28], data).unwrap()],
                OutputMode::Float,
            )
            .unwrap();
        assert_eq!(out[0].shape, vec![batch, 10]);
        let (TensorData::F32(a), TensorData::F32(b)) = (&single[0].data, &out[0].data) else {
            panic!()
        };
        assert_eq!(
            &b[(batch - 1) * 10..],
            &a[..],
            "last row of batch {batch} differs from batch 1"
        );
    }
}

#[test]
fn wrong_inputs_are_explained() {
    let model = LoadedModel::load_file(testdata().join("exported/tabular_float32.tflite")).unwrap();
    let e = model
        .run(
            &[HostTensor::f32(vec![1, 4], vec![1.0; 4]).unwrap()],
            OutputMode::Float,
        )
        .unwrap_err();
    assert!(
        e.to_string().contains("expects shape [?, 3], got [1, 4]"),
        "{e}"
    );
    let e = model
        .run(
            &[HostTensor::f32(vec![1, 3], vec![1.0, f32::NAN, 2.0]).unwrap()],
            OutputMode::Float,
        )
        .unwrap_err();
    assert!(e.to_string().contains("element 1 is NaN"), "{e}");
    let e = model.run(&[], OutputMode::Float).unwrap_err();
    assert!(e.to_string().contains("takes 1 input"), "{e}");
    // Still serving after the errors.
    let ok = model.run(
        &[HostTensor::f32(vec![2, 3], vec![5.0, 162.0, 60.0, 2.0, 110.0, 60.0]).unwrap()],
        OutputMode::Float,
    );
    assert_eq!(ok.unwrap()[0].shape, vec![2, 3]);
}
