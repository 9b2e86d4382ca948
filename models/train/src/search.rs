//! Hyperparameter search: a declared space of learning rates, layer widths and depths, batch
//! sizes, epochs, filters and dropout, tried as a full grid or as seeded random draws, the best
//! trial picked by its validation score, and every trial's figures kept.
//!
//! ```toml
//! method = "random"          # or "grid"
//! trials = 6                 # random draws (a grid tries every combination)
//! [space]
//! learning_rate = [0.001, 0.003]
//! hidden = [[64], [128], [128, 64]]
//! batch_size = [32, 64]
//! epochs = [5, 10]
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::error::{Result, TrainError};
use crate::metrics::Metrics;
use crate::trainer::{train, Arch, Progress, TrainOptions, Trained};

/// How trials are chosen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Every combination, in order.
    #[default]
    Grid,
    /// `trials` combinations drawn with the seed, without repeats.
    Random,
}

/// Values to try for each hyperparameter; an absent one keeps the base value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Space {
    /// Adam learning rates.
    #[serde(default)]
    pub learning_rate: Vec<f64>,
    /// Hidden dense layers (width and depth at once): `[[64], [128, 64]]`.
    #[serde(default)]
    pub hidden: Vec<Vec<usize>>,
    /// Minibatch sizes.
    #[serde(default)]
    pub batch_size: Vec<usize>,
    /// Most epochs.
    #[serde(default)]
    pub epochs: Vec<usize>,
    /// Convolution filters (CNN only): `[[16, 32], [32, 64]]`.
    #[serde(default)]
    pub filters: Vec<Vec<usize>>,
    /// Dropout after hidden layers.
    #[serde(default)]
    pub dropout: Vec<f64>,
    /// L2 weight decay.
    #[serde(default)]
    pub weight_decay: Vec<f64>,
}

/// A search: the method, how many random trials, and the space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Search {
    /// Grid or random.
    #[serde(default)]
    pub method: Method,
    /// Random trials (a grid ignores it unless it is smaller than the grid, which then stops
    /// after that many).
    #[serde(default)]
    pub trials: Option<usize>,
    /// What varies.
    pub space: Space,
}

impl Search {
    /// Reads a search file: TOML when it ends in `.toml`, else JSON.
    pub fn read(path: &Path) -> Result<Search> {
        let source = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| TrainError::data(&source, format!("cannot read: {e}")))?;
        let search: Search = if path.extension().is_some_and(|e| e == "toml") {
            toml::from_str(&text).map_err(|e| TrainError::data(&source, e.to_string()))?
        } else {
            serde_json::from_str(&text).map_err(|e| TrainError::data(&source, e.to_string()))?
        };
        Ok(search)
    }

    /// The options of every trial, from `base`, checked before any training starts.
    pub fn trials(&self, base: &TrainOptions, seed: u64) -> Result<Vec<TrainOptions>> {
        let s = &self.space;
        if !s.filters.is_empty() && !matches!(base.arch, Arch::Cnn { .. }) {
            return Err(TrainError::Invalid(
                "the search space varies filters, which only a CNN has (--arch cnn)".into(),
            ));
        }
        // One axis per declared hyperparameter; each value is an edit of the base options.
        let mut axes: Vec<Vec<Edit>> = vec![];
        push_axis(&mut axes, &s.learning_rate, |o, v| o.learning_rate = v);
        push_axis(&mut axes, &s.hidden, |o, v| match &mut o.arch {
            Arch::Mlp { hidden, .. } | Arch::Cnn { hidden, .. } => *hidden = v,
        });
        push_axis(&mut axes, &s.batch_size, |o, v| o.batch_size = v);
        push_axis(&mut axes, &s.epochs, |o, v| o.epochs = v);
        push_axis(&mut axes, &s.filters, |o, v| {
            if let Arch::Cnn { filters, .. } = &mut o.arch {
                *filters = v
            }
        });
        push_axis(&mut axes, &s.dropout, |o, v| match &mut o.arch {
            Arch::Mlp { dropout, .. } | Arch::Cnn { dropout, .. } => *dropout = v,
        });
        push_axis(&mut axes, &s.weight_decay, |o, v| o.weight_decay = v);
        if axes.is_empty() {
            return Err(TrainError::Invalid(
                "the search space is empty: give at least one of learning_rate, hidden, \
                 batch_size, epochs, filters, dropout, weight_decay"
                    .into(),
            ));
        }
        let total = axes
            .iter()
            .try_fold(1usize, |n, a| n.checked_mul(a.len()))
            .filter(|n| *n <= 100_000)
            .ok_or_else(|| {
                TrainError::Invalid("the search space has over 100000 combinations".into())
            })?;
        let picks: Vec<usize> = match self.method {
            Method::Grid => (0..total.min(self.trials.unwrap_or(total))).collect(),
            Method::Random => {
                let n = self.trials.ok_or_else(|| {
                    TrainError::Invalid(
                        "random search needs a number of trials (--trials N)".into(),
                    )
                })?;
                let mut all: Vec<usize> = (0..total).collect();
                fastrand::Rng::with_seed(seed).shuffle(&mut all);
                all.truncate(n.min(total));
                all
            }
        };
        if picks.is_empty() {
            return Err(TrainError::Invalid("the search asks for 0 trials".into()));
        }
        picks
            .into_iter()
            .map(|mut index| {
                let mut o = base.clone();
                // Mixed radix: the last axis varies fastest, as a nested loop would.
                for axis in axes.iter().rev() {
                    axis[index % axis.len()](&mut o);
                    index /= axis.len();
                }
                o.check()?;
                Ok(o)
            })
            .collect()
    }
}

/// An edit of the base options: one value of one hyperparameter.
type Edit = Box<dyn Fn(&mut TrainOptions)>;

/// Adds an axis of `values` (none when the space does not vary it).
fn push_axis<T: Clone + 'static>(
    axes: &mut Vec<Vec<Edit>>,
    values: &[T],
    set: fn(&mut TrainOptions, T),
) {
    if values.is_empty() {
        return;
    }
    axes.push(
        values
            .iter()
            .map(|v| {
                let v = v.clone();
                Box::new(move |o: &mut TrainOptions| set(o, v.clone())) as Edit
            })
            .collect(),
    );
}

/// One trial's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrialReport {
    /// 1-based trial number.
    pub trial: usize,
    /// Its options.
    pub options: TrainOptions,
    /// Validation figures of its best epoch.
    pub validation: Metrics,
    /// The epoch kept.
    pub best_epoch: usize,
    /// Epochs run.
    pub epochs_run: usize,
    /// Wall seconds.
    pub seconds: f64,
}

/// What a search reports while it works.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchProgress {
    /// A trial starts.
    Trial {
        /// 1-based.
        trial: usize,
        /// Of how many.
        of: usize,
        /// Its options.
        options: TrainOptions,
    },
    /// Training progress within the current trial.
    Train(Progress),
    /// A trial ended.
    Done(TrialReport),
}

/// The winner of a search and every trial's report.
#[derive(Debug, Clone)]
pub struct SearchResult {
    /// The best trial's run.
    pub best: Trained,
    /// Its options.
    pub best_options: TrainOptions,
    /// Every trial, in order.
    pub trials: Vec<TrialReport>,
}

/// Trains every trial and keeps the best by validation score (the first on ties).
pub fn run(
    trials: &[TrainOptions],
    train_set: &Dataset,
    validation: &Dataset,
    progress: &mut dyn FnMut(SearchProgress),
) -> Result<SearchResult> {
    let mut reports = vec![];
    let mut best: Option<(f64, Trained, TrainOptions)> = None;
    for (i, options) in trials.iter().enumerate() {
        progress(SearchProgress::Trial {
            trial: i + 1,
            of: trials.len(),
            options: options.clone(),
        });
        let trained = train(train_set, validation, options, &mut |p| {
            progress(SearchProgress::Train(p))
        })?;
        let Some(validation_metrics) = trained.validation().cloned() else {
            return Err(TrainError::Invalid(format!(
                "trial {} kept no epoch",
                i + 1
            )));
        };
        let report = TrialReport {
            trial: i + 1,
            options: options.clone(),
            best_epoch: trained.best_epoch,
            epochs_run: trained.history.len(),
            seconds: trained.seconds,
            validation: validation_metrics,
        };
        let score = report.validation.score();
        progress(SearchProgress::Done(report.clone()));
        reports.push(report);
        if best.as_ref().is_none_or(|(b, _, _)| score > *b) {
            best = Some((score, trained, options.clone()));
        }
    }
    let Some((_, best, best_options)) = best else {
        return Err(TrainError::Invalid("the search ran no trial".into()));
    };
    Ok(SearchResult {
        best,
        best_options,
        trials: reports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> Space {
        Space {
            learning_rate: vec![0.01, 0.001],
            hidden: vec![vec![8], vec![16, 8]],
            batch_size: vec![16],
            ..Space::default()
        }
    }

    #[test]
    fn a_grid_tries_every_combination_in_nested_loop_order() {
        let search = Search {
            method: Method::Grid,
            trials: None,
            space: space(),
        };
        let trials = search.trials(&TrainOptions::new(Arch::mlp()), 1).unwrap();
        let seen: Vec<(f64, Vec<usize>, usize)> = trials
            .iter()
            .map(|o| (o.learning_rate, o.arch.hidden().to_vec(), o.batch_size))
            .collect();
        assert_eq!(
            seen,
            vec![
                (0.01, vec![8], 16),
                (0.01, vec![16, 8], 16),
                (0.001, vec![8], 16),
                (0.001, vec![16, 8], 16),
            ]
        );
    }

    #[test]
    fn random_draws_are_seeded_and_distinct() {
        let search = Search {
            method: Method::Random,
            trials: Some(3),
            space: space(),
        };
        let base = TrainOptions::new(Arch::mlp());
        let a = search.trials(&base, 7).unwrap();
        assert_eq!(a, search.trials(&base, 7).unwrap());
        assert_eq!(a.len(), 3);
        for (i, x) in a.iter().enumerate() {
            assert!(a[i + 1..].iter().all(|y| y != x), "trial {i} repeats");
        }
    }

    #[test]
    fn bad_searches_are_refused_before_training() {
        let base = TrainOptions::new(Arch::mlp());
        let cases = [
            (
                "empty space",
                Method::Grid,
                None,
                Space::default(),
                "space is empty",
            ),
            (
                "random without trials",
                Method::Random,
                None,
                space(),
                "--trials",
            ),
            ("zero trials", Method::Grid, Some(0), space(), "0 trials"),
            (
                "filters on an MLP",
                Method::Grid,
                None,
                Space {
                    filters: vec![vec![8]],
                    ..Space::default()
                },
                "only a CNN",
            ),
            (
                "bad value",
                Method::Grid,
                None,
                Space {
                    learning_rate: vec![-1.0],
                    ..Space::default()
                },
                "learning rate",
            ),
        ];
        for (name, method, trials, space, expected) in cases {
            let search = Search {
                method,
                trials,
                space,
            };
            let err = search.trials(&base, 1).expect_err(name).to_string();
            assert!(err.contains(expected), "{name}: {err}");
        }
    }

    #[test]
    fn a_search_file_with_an_unknown_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            "method = \"grid\"\n[space]\nlearning_rates = [0.1]\n",
        )
        .unwrap();
        let err = Search::read(&path).unwrap_err().to_string();
        assert!(err.contains("learning_rates"), "{err}");
    }
}
