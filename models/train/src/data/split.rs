//! Seeded train / validation / test splits.

use super::Dataset;
use crate::error::{Result, TrainError};

/// Fractions held out, and the seed of the shuffle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplitOptions {
    /// Fraction of the examples kept for early stopping and search.
    pub validation: f64,
    /// Fraction kept for the final figures (ignored when the data has its own test set).
    pub test: f64,
    /// Seed of the shuffle: the same seed gives the same splits.
    pub seed: u64,
}

impl Default for SplitOptions {
    fn default() -> Self {
        SplitOptions {
            validation: 0.1,
            test: 0.1,
            seed: 42,
        }
    }
}

/// The three splits.
#[derive(Debug, Clone)]
pub struct Splits {
    /// Examples trained on.
    pub train: Dataset,
    /// Examples for early stopping and search.
    pub validation: Dataset,
    /// Examples for the final figures.
    pub test: Dataset,
}

/// Shuffles `data` with the seed and cuts it; a `test` set the data came with (MNIST's t10k)
/// is used as it is, and only the validation split is cut from `data`.
pub fn split(data: &Dataset, test: Option<&Dataset>, options: SplitOptions) -> Result<Splits> {
    let fraction_ok = |f: f64| (0.0..1.0).contains(&f);
    if !fraction_ok(options.validation) || !fraction_ok(options.test) {
        return Err(TrainError::Invalid(format!(
            "split fractions must be in [0, 1): validation {}, test {}",
            options.validation, options.test
        )));
    }
    let test_fraction = if test.is_some() { 0.0 } else { options.test };
    if options.validation + test_fraction >= 1.0 {
        return Err(TrainError::Invalid(format!(
            "validation {} + test {test_fraction} leave nothing to train on",
            options.validation
        )));
    }
    let n = data.len();
    let mut order: Vec<usize> = (0..n).collect();
    fastrand::Rng::with_seed(options.seed).shuffle(&mut order);
    let count = |f: f64| ((n as f64) * f).round() as usize;
    let (n_val, n_test) = (count(options.validation), count(test_fraction));
    let empty = |name: &str, fraction: f64| {
        TrainError::data(
            &data.source,
            format!(
                "the {name} split is empty: {n} examples with {name} fraction {fraction} leave none \
                 (give more data or a larger fraction)"
            ),
        )
    };
    if n_val == 0 {
        return Err(empty("validation", options.validation));
    }
    if test.is_none() && n_test == 0 {
        return Err(empty("test", options.test));
    }
    if n_val + n_test >= n {
        return Err(empty("train", 1.0 - options.validation - test_fraction));
    }
    let validation = data.select(&order[..n_val]);
    let test = match test {
        Some(t) => t.clone(),
        None => data.select(&order[n_val..n_val + n_test]),
    };
    let train = data.select(&order[n_val + n_test..]);
    Ok(Splits {
        train,
        validation,
        test,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::data::{Features, Targets};

    fn data(n: usize) -> Dataset {
        Dataset {
            source: "d".into(),
            item_shape: vec![1],
            feature_names: vec![],
            features: Features::F32((0..n).map(|i| i as f32).collect()),
            targets: Targets::Values {
                data: (0..n).map(|i| i as f32).collect(),
                names: vec!["y".into()],
            },
        }
    }

    fn values(d: &Dataset) -> Vec<f32> {
        let Features::F32(v) = &d.features else {
            panic!()
        };
        v.clone()
    }

    #[test]
    fn the_same_seed_gives_the_same_disjoint_splits() {
        let d = data(100);
        let a = split(&d, None, SplitOptions::default()).unwrap();
        let b = split(&d, None, SplitOptions::default()).unwrap();
        assert_eq!(values(&a.train), values(&b.train));
        assert_eq!(
            (a.train.len(), a.validation.len(), a.test.len()),
            (80, 10, 10)
        );
        let mut all: Vec<f32> = [values(&a.train), values(&a.validation), values(&a.test)].concat();
        all.sort_by(f32::total_cmp);
        assert_eq!(all, values(&d), "every example in exactly one split");
        let c = split(
            &d,
            None,
            SplitOptions {
                seed: 7,
                ..SplitOptions::default()
            },
        )
        .unwrap();
        assert_ne!(values(&a.train), values(&c.train));
    }

    #[test]
    fn bad_splits_say_why() {
        let cases = [
            (
                "too few for validation",
                4,
                SplitOptions::default(),
                "the validation split is empty",
            ),
            (
                "fraction out of range",
                100,
                SplitOptions {
                    validation: 1.5,
                    ..SplitOptions::default()
                },
                "must be in [0, 1)",
            ),
            (
                "nothing to train on",
                100,
                SplitOptions {
                    validation: 0.5,
                    test: 0.5,
                    seed: 1,
                },
                "leave nothing to train on",
            ),
        ];
        for (name, n, options, want) in cases {
            let e = split(&data(n), None, options).unwrap_err().to_string();
            assert!(e.contains(want), "{name}: {e}");
        }
    }
}
