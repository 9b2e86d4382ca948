//! Conformance against LiteRT goldens: every corpus model loads (or fails with the clear error
//! LiteRT's own refusal implies) and matches LiteRT's outputs within tolerance: quantized outputs
//! within one step of the builtin kernels or of XNNPACK, float outputs within a relative 1e-4
//! (1e-3 with fp16 or dynamic-range weights, and for MediaPipe's deep float models), or within
//! the distance between LiteRT's own two kernels where that is larger: an output LiteRT itself
//! only pins down to that distance cannot be asked for more.

#![allow(clippy::unwrap_used)] // test helpers read trusted fixtures

use std::path::{Path, PathBuf};

use base64::Engine;
use litehouse_models::{HostTensor, LoadedModel, OutputMode, TensorData};
use serde_json::Value;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// The LCG shared with models/scripts/make_goldens.py.
fn lcg(seed: u32, n: usize) -> Vec<u32> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            state >> 8
        })
        .collect()
}

fn gen_input(spec: &Value) -> HostTensor {
    let shape: Vec<usize> = spec["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let n: usize = shape.iter().product();
    let dtype = spec["dtype"].as_str().unwrap();
    if spec["source"] == "mnist10" {
        let bytes = std::fs::read(testdata().join("fetched/mnist10.bin"))
            .expect("mnist10.bin (run make fixtures)");
        return HostTensor::new(shape, TensorData::U8(bytes[..n].to_vec())).unwrap();
    }
    let u = lcg(spec["seed"].as_u64().unwrap() as u32, n);
    let data = match dtype {
        "float32" => {
            let (lo, hi) = (spec["lo"].as_f64().unwrap(), spec["hi"].as_f64().unwrap());
            TensorData::F32(
                u.iter()
                    .map(|&x| (lo + (hi - lo) * (x as f64 / (1u64 << 24) as f64)) as f32)
                    .collect(),
            )
        }
        "int8" => TensorData::I8(u.iter().map(|&x| (-128 + (x % 256) as i32) as i8).collect()),
        "uint8" => TensorData::U8(u.iter().map(|&x| (x % 256) as u8).collect()),
        "int32" => TensorData::I32(u.iter().map(|&x| i32::MIN.wrapping_add(x as i32)).collect()),
        other => panic!("unsupported golden input dtype {other}"),
    };
    HostTensor::new(shape, data).unwrap()
}

fn decode(v: &Value) -> (Vec<usize>, String, Vec<f64>) {
    let shape = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let dtype = v["dtype"].as_str().unwrap().to_string();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v["data"].as_str().unwrap())
        .unwrap();
    let values = match dtype.as_str() {
        "float32" => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        "int8" => bytes.iter().map(|&b| b as i8 as f64).collect(),
        "uint8" => bytes.iter().map(|&b| b as f64).collect(),
        "int32" => bytes
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        "int64" => bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        other => panic!("unsupported golden output dtype {other}"),
    };
    (shape, dtype, values)
}

/// Largest disagreement with a reference, in quantized steps or as relative error.
fn distance(ours: &HostTensor, golden: &Value) -> Result<f64, String> {
    let (shape, dtype, want) = decode(golden);
    if ours.shape != shape {
        return Err(format!("shape {:?} vs LiteRT {:?}", ours.shape, shape));
    }
    Ok(disagreement(&ours.data.to_f64(), &want, &dtype))
}

/// How far LiteRT's builtin kernels and XNNPACK are from each other on one float output, when
/// both ran.
fn litert_spread(builtin: &Value, xnnpack: &Value) -> Option<f64> {
    let (shape_a, dtype, a) = decode(builtin);
    let (shape_b, _, b) = decode(xnnpack);
    (shape_a == shape_b && dtype == "float32").then(|| disagreement(&a, &b, &dtype))
}

/// Largest difference between two value lists: relative (to at least 1) for float32, absolute
/// (quantized steps) otherwise.
fn disagreement(got: &[f64], want: &[f64], dtype: &str) -> f64 {
    got.iter()
        .zip(want)
        .map(|(a, b)| {
            if dtype == "float32" {
                (a - b).abs() / b.abs().max(1.0)
            } else {
                (a - b).abs()
            }
        })
        .fold(0.0f64, f64::max)
}

fn check_model(golden_path: &Path) -> Result<String, String> {
    let golden: Value =
        serde_json::from_str(&std::fs::read_to_string(golden_path).unwrap()).unwrap();
    let rel = golden["model"].as_str().unwrap();
    let path = testdata().join(rel);
    let bytes = std::fs::read(&path).map_err(|e| format!("{rel}: {e} (run `make fixtures`)"))?;
    let loaded = LoadedModel::load(&bytes);
    let cases = &golden["cases"];
    if cases.get("error").is_some() {
        return match loaded {
            Err(e) => Ok(format!("refused as LiteRT does: {e}")),
            Ok(_) => Err("LiteRT cannot run this model but we loaded it".into()),
        };
    }
    // LiteRT's builtin kernels refuse custom ops; so must we, with an error naming the op.
    let builtin_refused = cases.as_array().is_some_and(|c| {
        c.iter()
            .all(|c| c["outputs"]["builtin"].get("error").is_some())
    });
    let model = match loaded {
        Err(e) if builtin_refused && e.to_string().contains("custom op") => {
            return Ok(format!("refused as LiteRT's builtin kernels do: {e}"))
        }
        Err(e) => return Err(format!("failed to load: {e}")),
        Ok(_) if builtin_refused => {
            return Err("LiteRT's builtin kernels refuse this model but we loaded it".into())
        }
        Ok(m) => m,
    };
    let loose = rel.contains("fp16") || rel.contains("dynamic") || rel.contains("mediapipe");
    let float_tol: f64 = if loose { 1e-3 } else { 1e-4 };
    let mut worst = 0f64;
    for case in cases.as_array().unwrap() {
        let inputs: Vec<HostTensor> = case["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(gen_input)
            .collect();
        let outputs = model
            .run(&inputs, OutputMode::Native)
            .map_err(|e| format!("run failed: {e}"))?;
        let refs = &case["outputs"];
        for (k, out) in outputs.iter().enumerate() {
            let mut best = f64::INFINITY;
            let mut reasons = vec![];
            for name in ["builtin", "xnnpack"] {
                let Some(list) = refs[name].as_array() else {
                    continue;
                };
                match distance(out, &list[k]) {
                    Ok(d) => best = best.min(d),
                    Err(e) => reasons.push(format!("{name}: {e}")),
                }
            }
            let spread = match (refs["builtin"].get(k), refs["xnnpack"].get(k)) {
                (Some(a), Some(b)) => litert_spread(a, b),
                _ => None,
            };
            let tol = if out.dtype().is_float() {
                float_tol.max(spread.unwrap_or(0.0))
            } else {
                1.0
            };
            if best > tol {
                return Err(format!(
                    "batch {} output {k}: off by {best:.3e} (tolerance {tol:e}; LiteRT's \
                     builtin and XNNPACK kernels differ by {}) {}",
                    case["batch"],
                    spread.map_or("-".to_string(), |s| format!("{s:.3e}")),
                    reasons.join("; ")
                ));
            }
            worst = worst.max(best);
        }
    }
    Ok(format!("matches LiteRT (worst {worst:.2e})"))
}

/// Open gaps, tracked in the runtime issue: each entry pins today's behaviour so that a change in
/// it (fixed, or worse) is noticed. Everything else in the corpus must match.
const KNOWN_GAPS: &[(&str, &str)] = &[];

#[test]
fn every_corpus_model_matches_litert() {
    let mut goldens: Vec<PathBuf> = std::fs::read_dir(testdata().join("goldens"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json") && !p.ends_with("litert_timings.json")
        })
        .collect();
    goldens.sort();
    assert!(
        goldens.len() >= 30,
        "expected the whole corpus, found {} goldens",
        goldens.len()
    );
    let mut failures = vec![];
    for g in &goldens {
        let name = g.file_stem().unwrap().to_string_lossy().to_string();
        let gap = KNOWN_GAPS.iter().find(|(n, _)| *n == name);
        match check_model(g) {
            Ok(msg) if gap.is_some() => {
                println!("FAIL {name}: {msg}, but it is listed in KNOWN_GAPS: remove it there");
                failures.push(name);
            }
            Ok(msg) => println!("ok   {name}: {msg}"),
            Err(msg) => match gap {
                Some((_, expected)) if msg.contains(expected) => println!("gap  {name}: {msg}"),
                _ => {
                    println!("FAIL {name}: {msg}");
                    failures.push(name);
                }
            },
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} models fail: {failures:?}",
        failures.len(),
        goldens.len()
    );
}
