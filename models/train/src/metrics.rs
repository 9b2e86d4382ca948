//! Figures of a model on labelled examples: accuracy, cross-entropy and the confusion matrix for
//! classifiers; R², MAE and MSE per output for regressors. One definition, used for the
//! validation score while training and for the test figures of the exported model.

use serde::{Deserialize, Serialize};

/// Figures on one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "lowercase")]
pub enum Metrics {
    /// A classifier's figures.
    Classify {
        /// Examples scored.
        examples: usize,
        /// Fraction whose most probable class is the label.
        accuracy: f64,
        /// Mean cross-entropy of the label's probability.
        loss: f64,
        /// Class names, in index order.
        classes: Vec<String>,
        /// `confusion[label][predicted]` counts.
        confusion: Vec<Vec<u64>>,
    },
    /// A regressor's figures.
    Regress {
        /// Examples scored.
        examples: usize,
        /// Output names.
        outputs: Vec<String>,
        /// Coefficient of determination per output (1 is perfect, 0 is the mean predictor).
        r2: Vec<f64>,
        /// Mean absolute error per output.
        mae: Vec<f64>,
        /// Mean squared error over every output.
        mse: f64,
    },
}

impl Metrics {
    /// The figure that picks the best epoch and trial (higher is better): accuracy, or the mean
    /// R² over the outputs.
    pub fn score(&self) -> f64 {
        match self {
            Metrics::Classify { accuracy, .. } => *accuracy,
            Metrics::Regress { r2, .. } => r2.iter().sum::<f64>() / r2.len().max(1) as f64,
        }
    }

    /// The figures as named numbers, as the registry records them: `accuracy` and `loss`, or
    /// `r2` (the mean), `mse`, and `r2_<output>`, `mae_<output>` per output.
    pub fn flat(&self) -> std::collections::BTreeMap<String, f64> {
        let mut out = std::collections::BTreeMap::new();
        match self {
            Metrics::Classify { accuracy, loss, .. } => {
                out.insert("accuracy".into(), *accuracy);
                out.insert("loss".into(), *loss);
            }
            Metrics::Regress {
                outputs,
                r2,
                mae,
                mse,
                ..
            } => {
                out.insert("r2".into(), self.score());
                out.insert("mse".into(), *mse);
                // The mean over outputs, for a gate on error across all of them.
                if !mae.is_empty() {
                    out.insert("mae".into(), mae.iter().sum::<f64>() / mae.len() as f64);
                }
                for (i, name) in outputs.iter().enumerate() {
                    out.insert(format!("r2_{name}"), r2[i]);
                    out.insert(format!("mae_{name}"), mae[i]);
                }
            }
        }
        out
    }

    /// The mean loss (cross-entropy, or MSE).
    pub fn loss(&self) -> f64 {
        match self {
            Metrics::Classify { loss, .. } => *loss,
            Metrics::Regress { mse, .. } => *mse,
        }
    }

    /// One line for progress output: `accuracy 0.9751` or `r2 0.4120`.
    pub fn summary(&self) -> String {
        match self {
            Metrics::Classify { accuracy, .. } => format!("accuracy {accuracy:.4}"),
            Metrics::Regress { .. } => format!("r2 {:.4}", self.score()),
        }
    }
}

/// The figures of model outputs against `targets`: class probabilities for classes, values in
/// the targets' units for regressors.
pub fn of_outputs(outputs: &[f32], targets: &crate::data::Targets) -> Metrics {
    match targets {
        crate::data::Targets::Classes { labels, names } => classification(outputs, labels, names),
        crate::data::Targets::Values { data, names } => regression(outputs, data, names),
    }
}

/// A classifier's figures from class probabilities (`labels.len() × classes.len()`).
pub fn classification(probabilities: &[f32], labels: &[u32], classes: &[String]) -> Metrics {
    let k = classes.len().max(1);
    let mut confusion = vec![vec![0u64; k]; k];
    let (mut correct, mut loss) = (0usize, 0.0f64);
    for (row, &label) in probabilities.chunks(k).zip(labels) {
        let predicted = argmax(row);
        let label = label as usize;
        if let Some(cell) = confusion.get_mut(label).and_then(|r| r.get_mut(predicted)) {
            *cell += 1;
        }
        correct += usize::from(predicted == label);
        // Probabilities of exactly 0 would make the loss infinite; clamp as Keras does.
        let p = f64::from(row.get(label).copied().unwrap_or(0.0)).max(1e-7);
        loss -= p.ln();
    }
    let n = labels.len().max(1) as f64;
    Metrics::Classify {
        examples: labels.len(),
        accuracy: correct as f64 / n,
        loss: loss / n,
        classes: classes.to_vec(),
        confusion,
    }
}

/// A regressor's figures from predictions and targets (both `n × outputs.len()`).
pub fn regression(predictions: &[f32], targets: &[f32], outputs: &[String]) -> Metrics {
    let k = outputs.len().max(1);
    let n = targets.len() / k;
    let mut mean = vec![0.0f64; k];
    for row in targets.chunks(k) {
        for (m, &t) in mean.iter_mut().zip(row) {
            *m += f64::from(t) / n.max(1) as f64;
        }
    }
    let (mut residual, mut total, mut absolute) = (vec![0.0; k], vec![0.0; k], vec![0.0; k]);
    for (p_row, t_row) in predictions.chunks(k).zip(targets.chunks(k)) {
        for o in 0..k {
            let (p, t) = (f64::from(p_row[o]), f64::from(t_row[o]));
            residual[o] += (p - t).powi(2);
            total[o] += (t - mean[o]).powi(2);
            absolute[o] += (p - t).abs();
        }
    }
    let r2 = residual
        .iter()
        .zip(&total)
        .map(|(r, t)| if *t > 0.0 { 1.0 - r / t } else { 0.0 })
        .collect();
    let denominator = n.max(1) as f64;
    Metrics::Regress {
        examples: n,
        outputs: outputs.to_vec(),
        r2,
        mae: absolute.iter().map(|a| a / denominator).collect(),
        mse: residual.iter().sum::<f64>() / (denominator * k as f64),
    }
}

/// Index of the largest value (the first on ties).
pub(crate) fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_counts_by_hand() {
        let classes: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let probabilities = [0.9, 0.1, 0.3, 0.7, 0.6, 0.4];
        let m = classification(&probabilities, &[0, 1, 1], &classes);
        let Metrics::Classify {
            accuracy,
            loss,
            confusion,
            ..
        } = &m
        else {
            panic!("{m:?}")
        };
        assert!((accuracy - 2.0 / 3.0).abs() < 1e-12);
        let want = -(0.9f64.ln() + 0.7f64.ln() + 0.4f64.ln()) / 3.0;
        assert!((loss - want).abs() < 1e-6, "{loss} vs {want}");
        assert_eq!(confusion, &vec![vec![1, 0], vec![1, 1]]);
    }

    #[test]
    fn the_mean_predictor_scores_zero_and_a_perfect_one_scores_one() {
        let outputs = vec!["y".to_string()];
        let targets = [1.0, 2.0, 3.0, 6.0];
        let mean = [3.0; 4];
        assert!(regression(&mean, &targets, &outputs).score().abs() < 1e-12);
        let perfect = regression(&targets, &targets, &outputs);
        assert!((perfect.score() - 1.0).abs() < 1e-12);
        let Metrics::Regress { mae, mse, .. } = regression(&mean, &targets, &outputs) else {
            unreachable!()
        };
        assert!((mae[0] - 1.5).abs() < 1e-12);
        assert!((mse - 3.5).abs() < 1e-12);
    }
}
