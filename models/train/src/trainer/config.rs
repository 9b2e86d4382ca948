//! What to train: the architecture and the hyperparameters, with the defaults of the reference
//! models (Keras' MNIST MLP and small CNN) and checks that name a bad value before burn sees it.

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// The network's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "arch", rename_all = "lowercase")]
pub enum Arch {
    /// Dense layers.
    Mlp {
        /// Units of each hidden layer.
        hidden: Vec<usize>,
        /// Dropout after each hidden layer, while training.
        dropout: f64,
    },
    /// Convolutions (each with ReLU and 2x2 max pooling), then dense layers.
    Cnn {
        /// Filters of each convolution.
        filters: Vec<usize>,
        /// Kernel size of every convolution.
        kernel: usize,
        /// Units of each hidden dense layer.
        hidden: Vec<usize>,
        /// Dropout after each hidden dense layer, while training.
        dropout: f64,
    },
}

impl Arch {
    /// The reference MLP: one hidden layer of 128, dropout 0.2.
    pub fn mlp() -> Arch {
        Arch::Mlp {
            hidden: vec![128],
            dropout: 0.2,
        }
    }

    /// The reference CNN: 32 and 64 filters of 3x3, one hidden layer of 128.
    pub fn cnn() -> Arch {
        Arch::Cnn {
            filters: vec![32, 64],
            kernel: 3,
            hidden: vec![128],
            dropout: 0.0,
        }
    }

    /// Hidden dense layers.
    pub fn hidden(&self) -> &[usize] {
        match self {
            Arch::Mlp { hidden, .. } | Arch::Cnn { hidden, .. } => hidden,
        }
    }

    /// Dropout probability.
    pub fn dropout(&self) -> f64 {
        match self {
            Arch::Mlp { dropout, .. } | Arch::Cnn { dropout, .. } => *dropout,
        }
    }

    /// Short name (`mlp`, `cnn`).
    pub fn name(&self) -> &'static str {
        match self {
            Arch::Mlp { .. } => "mlp",
            Arch::Cnn { .. } => "cnn",
        }
    }
}

/// Hyperparameters of one training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// The network.
    #[serde(flatten)]
    pub arch: Arch,
    /// Most epochs to run (early stopping may end sooner).
    pub epochs: usize,
    /// Examples per gradient step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Epochs without a better validation score before stopping.
    pub patience: usize,
    /// L2 penalty added to every weight's gradient (0: none). It pulls a network on a small
    /// table toward the mean predictor, which is what keeps it from fitting noise.
    #[serde(default)]
    pub weight_decay: f64,
    /// Seed of the initial weights, dropout and the shuffle of each epoch.
    pub seed: u64,
}

impl TrainOptions {
    /// Defaults for `arch`: Adam 1e-3, batches of 32, at most 10 epochs, patience 2, no weight
    /// decay, seed 42.
    pub fn new(arch: Arch) -> TrainOptions {
        TrainOptions {
            arch,
            epochs: 10,
            batch_size: 32,
            learning_rate: 1e-3,
            patience: 2,
            weight_decay: 0.0,
            seed: 42,
        }
    }

    /// Checks every value, naming the first bad one.
    pub fn check(&self) -> Result<()> {
        let bad = |what: String| Err(TrainError::Invalid(what));
        if self.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("batch size must be at least 1".into());
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(format!(
                "learning rate must be a positive number, got {}",
                self.learning_rate
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!(
                "weight decay must be a number >= 0, got {}",
                self.weight_decay
            ));
        }
        let dropout = self.arch.dropout();
        if !(0.0..1.0).contains(&dropout) {
            return bad(format!("dropout must be in [0, 1), got {dropout}"));
        }
        if self.arch.hidden().contains(&0) {
            return bad(format!(
                "hidden layers need at least one unit, got {:?}",
                self.arch.hidden()
            ));
        }
        if let Arch::Cnn {
            filters, kernel, ..
        } = &self.arch
        {
            if filters.is_empty() || filters.contains(&0) {
                return bad(format!(
                    "a CNN needs at least one convolution, each with filters, got {filters:?}"
                ));
            }
            if *kernel == 0 {
                return bad("kernel size must be at least 1".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A named case: what it breaks, and the word the error must contain.
    type Case = (&'static str, fn(&mut TrainOptions), &'static str);

    #[test]
    fn bad_values_are_named() {
        let cases: &[Case] = &[
            ("no epochs", |o| o.epochs = 0, "epochs"),
            ("no batch", |o| o.batch_size = 0, "batch size"),
            ("nan rate", |o| o.learning_rate = f64::NAN, "learning rate"),
            ("negative rate", |o| o.learning_rate = -1.0, "learning rate"),
            ("negative decay", |o| o.weight_decay = -0.1, "weight decay"),
            ("nan decay", |o| o.weight_decay = f64::NAN, "weight decay"),
            (
                "dropout of one",
                |o| {
                    o.arch = Arch::Mlp {
                        hidden: vec![8],
                        dropout: 1.0,
                    }
                },
                "dropout",
            ),
            (
                "empty layer",
                |o| {
                    o.arch = Arch::Mlp {
                        hidden: vec![8, 0],
                        dropout: 0.0,
                    }
                },
                "hidden",
            ),
            (
                "no convolution",
                |o| {
                    o.arch = Arch::Cnn {
                        filters: vec![],
                        kernel: 3,
                        hidden: vec![],
                        dropout: 0.0,
                    }
                },
                "convolution",
            ),
        ];
        for (name, edit, expected) in cases {
            let mut o = TrainOptions::new(Arch::mlp());
            edit(&mut o);
            let err = o.check().expect_err(name).to_string();
            assert!(err.contains(expected), "{name}: {err}");
        }
        assert!(TrainOptions::new(Arch::cnn()).check().is_ok());
    }
}
