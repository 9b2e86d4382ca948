//! K-fold cross-validation, and the predictor that knows nothing: on a table of twenty rows a
//! test split of two or four says little, so every example is held out once instead, and the
//! exported models' answers on the folds they did not see are scored together next to the
//! answers of the mean (or class-prior) predictor fitted on the same folds.

use litehouse_models::LoadedModel;
use serde::Serialize;

use crate::data::{Dataset, Targets};
use crate::error::{Result, TrainError};
use crate::evaluate::predict;
use crate::metrics::{self, Metrics};
use crate::network::Network;
use crate::trainer::{self, TrainOptions};

/// The pooled figures of a cross-validation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrossValidation {
    /// Folds (models trained).
    pub folds: usize,
    /// The exported models' answers on their held-out folds, scored together.
    pub model: Metrics,
    /// The mean (regression) or class-prior (classification) predictor of each fold's training
    /// rows, on the same held-out folds.
    pub baseline: Metrics,
    /// Whether the model's score (accuracy, or R² averaged over outputs) is above the
    /// baseline's.
    pub beats_baseline: bool,
}

/// What the predictor that ignores the features answers for each of `n` examples: the mean of
/// every output of `train`, or its class frequencies as probabilities.
pub fn baseline_outputs(train: &Dataset, n: usize) -> Vec<f32> {
    let row: Vec<f32> = match &train.targets {
        Targets::Values { data, names } => {
            let k = names.len().max(1);
            let rows = (data.len() / k).max(1) as f64;
            let mut mean = vec![0.0f64; k];
            for r in data.chunks(k) {
                for (m, v) in mean.iter_mut().zip(r) {
                    *m += f64::from(*v) / rows;
                }
            }
            mean.into_iter().map(|m| m as f32).collect()
        }
        Targets::Classes { labels, names } => {
            let mut counts = vec![0usize; names.len()];
            for &l in labels {
                if let Some(c) = counts.get_mut(l as usize) {
                    *c += 1;
                }
            }
            let total = labels.len().max(1) as f32;
            counts.into_iter().map(|c| c as f32 / total).collect()
        }
    };
    row.repeat(n)
}

/// The baseline's figures on `test`, fitted on `train`.
pub fn baseline(train: &Dataset, test: &Dataset) -> Metrics {
    metrics::of_outputs(&baseline_outputs(train, test.len()), &test.targets)
}

/// Refuses fewer than two folds (before any data is read, when called first).
pub fn check_folds(folds: usize) -> Result<()> {
    if folds < 2 {
        return Err(TrainError::Invalid(format!(
            "cross-validation needs at least 2 folds, got {folds}"
        )));
    }
    Ok(())
}

/// Trains one model per fold with `options` (each fold's remaining rows split into train and
/// `validation` for early stopping), writes it with `export` and scores its answers on the
/// fold through the runtime. `progress` hears each fold's number and figures.
pub fn run(
    data: &Dataset,
    folds: usize,
    options: &TrainOptions,
    validation: f64,
    seed: u64,
    export: &dyn Fn(&Network, &Dataset) -> Result<Vec<u8>>,
    progress: &mut dyn FnMut(usize, &Metrics),
) -> Result<CrossValidation> {
    check_folds(folds)?;
    let n = data.len();
    // Each fold's training rows need a validation row and a training row of their own.
    let smallest_rest = n - n.div_ceil(folds);
    if folds > n || smallest_rest < 2 {
        return Err(TrainError::data(
            &data.source,
            format!(
                "{folds} folds of {n} examples leave too few to train on (each fold's other \
                 rows need one for validation and one to train); use fewer folds"
            ),
        ));
    }
    let mut order: Vec<usize> = (0..n).collect();
    fastrand::Rng::with_seed(seed).shuffle(&mut order);
    let (mut held_out, mut answers, mut prior) = (vec![], vec![], vec![]);
    for f in 0..folds {
        let (start, end) = (f * n / folds, (f + 1) * n / folds);
        let test = &order[start..end];
        let rest: Vec<usize> = order[..start]
            .iter()
            .chain(&order[end..])
            .copied()
            .collect();
        let n_val = ((rest.len() as f64 * validation).round() as usize).clamp(1, rest.len() - 1);
        let (val, train) = (data.select(&rest[..n_val]), data.select(&rest[n_val..]));
        let fold = data.select(test);
        let trained = trainer::train(&train, &val, options, &mut |_| {})?;
        let model = LoadedModel::load(&export(&trained.network, &train)?)?;
        let outputs = predict(&model, &fold)?;
        progress(f + 1, &metrics::of_outputs(&outputs, &fold.targets));
        answers.extend(outputs);
        prior.extend(baseline_outputs(&train, fold.len()));
        held_out.extend_from_slice(test);
    }
    let targets = data.select(&held_out).targets;
    let model = metrics::of_outputs(&answers, &targets);
    let baseline = metrics::of_outputs(&prior, &targets);
    Ok(CrossValidation {
        folds,
        beats_baseline: model.score() > baseline.score(),
        model,
        baseline,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::data::Features;

    fn values(rows: &[[f32; 2]]) -> Dataset {
        Dataset {
            source: "t".into(),
            item_shape: vec![1],
            feature_names: vec![],
            features: Features::F32(rows.iter().map(|r| r[0]).collect()),
            targets: Targets::Values {
                data: rows.iter().map(|r| r[1]).collect(),
                names: vec!["y".into()],
            },
        }
    }

    #[test]
    fn the_baseline_answers_the_training_mean_and_class_frequencies() {
        let train = values(&[[0.0, 1.0], [0.0, 3.0]]);
        assert_eq!(baseline_outputs(&train, 2), vec![2.0, 2.0]);
        let classes = Dataset {
            targets: Targets::Classes {
                labels: vec![0, 1, 1, 1],
                names: vec!["a".into(), "b".into()],
            },
            features: Features::F32(vec![0.0; 4]),
            ..train
        };
        assert_eq!(baseline_outputs(&classes, 1), vec![0.25, 0.75]);
        let Metrics::Classify { accuracy, .. } = baseline(&classes, &classes) else {
            panic!("a classifier's baseline is a classification")
        };
        assert_eq!(accuracy, 0.75);
    }

    #[test]
    fn too_many_folds_for_the_rows_are_refused_before_training() {
        let data = values(&[[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]]);
        let options = TrainOptions::new(crate::trainer::Arch::mlp());
        let export = |_: &Network, _: &Dataset| -> Result<Vec<u8>> { unreachable!() };
        for folds in [1, 2, 4] {
            let err =
                run(&data, folds, &options, 0.1, 1, &export, &mut |_, _| {}).expect_err("refused");
            assert!(err.to_string().contains("fold"), "{folds}: {err}");
        }
    }
}
