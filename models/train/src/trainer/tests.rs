use super::*;
use crate::data::Features;

/// Points around `k` centres in `dims` dimensions, labelled by centre.
fn blobs(n: usize, k: usize, dims: usize, seed: u64) -> Dataset {
    let mut rng = fastrand::Rng::with_seed(seed);
    let centres: Vec<Vec<f32>> = (0..k)
        .map(|_| (0..dims).map(|_| rng.f32() * 8.0 - 4.0).collect())
        .collect();
    let (mut x, mut labels) = (vec![], vec![]);
    for i in 0..n {
        let c = i % k;
        x.extend(centres[c].iter().map(|v| v + rng.f32() - 0.5));
        labels.push(c as u32);
    }
    Dataset {
        source: "blobs".into(),
        item_shape: vec![dims],
        feature_names: vec![],
        features: Features::F32(x),
        targets: Targets::Classes {
            labels,
            names: (0..k).map(|c| format!("c{c}")).collect(),
        },
    }
}

/// `y0 = 3 x0 - 2 x1 + 100`, `y1 = x0 x1 / 10`, inputs on very different scales.
fn linear(n: usize, seed: u64) -> Dataset {
    let mut rng = fastrand::Rng::with_seed(seed);
    let (mut x, mut y) = (vec![], vec![]);
    for _ in 0..n {
        let (a, b) = (rng.f32() * 100.0, rng.f32() * 0.01);
        x.extend([a, b]);
        y.extend([3.0 * a - 200.0 * b + 100.0, a * b * 10.0]);
    }
    Dataset {
        source: "linear".into(),
        item_shape: vec![2],
        feature_names: vec!["a".into(), "b".into()],
        features: Features::F32(x),
        targets: Targets::Values {
            data: y,
            names: vec!["y0".into(), "y1".into()],
        },
    }
}

fn quiet(_: Progress) {}

#[test]
fn an_mlp_learns_separable_classes_and_reports_each_epoch() {
    let (train_set, validation) = (blobs(600, 3, 4, 1), blobs(150, 3, 4, 1));
    let mut options = TrainOptions::new(Arch::Mlp {
        hidden: vec![16],
        dropout: 0.0,
    });
    options.epochs = 20;
    options.learning_rate = 1e-2;
    let mut epochs = vec![];
    let trained = train(&train_set, &validation, &options, &mut |p| {
        if let Progress::Epoch(e) = p {
            epochs.push(e.epoch)
        }
    })
    .unwrap();
    assert_eq!(epochs, (1..=trained.history.len()).collect::<Vec<_>>());
    let score = trained.validation().unwrap().score();
    assert!(
        score > 0.95,
        "validation accuracy {score}: {:?}",
        trained
            .history
            .iter()
            .map(|e| (e.train_loss, e.validation.score()))
            .collect::<Vec<_>>()
    );
    // The kept network answers as scored: probabilities that pick the label.
    let mut x = vec![];
    for i in 0..validation.len() {
        validation.example(i, &mut x);
    }
    let p = trained.network.forward(&x, validation.len()).unwrap();
    let Targets::Classes { labels, names } = &validation.targets else {
        unreachable!()
    };
    let m = metrics::classification(&p, labels, names);
    assert!((m.score() - score).abs() < 1e-9, "{} vs {score}", m.score());
}

#[test]
fn the_same_seed_trains_the_same_weights() {
    let (train_set, validation) = (blobs(200, 2, 3, 2), blobs(50, 2, 3, 2));
    let mut options = TrainOptions::new(Arch::Mlp {
        hidden: vec![8],
        dropout: 0.1,
    });
    options.epochs = 2;
    let a = train(&train_set, &validation, &options, &mut quiet).unwrap();
    let b = train(&train_set, &validation, &options, &mut quiet).unwrap();
    assert_eq!(a.network, b.network);
    options.seed += 1;
    let c = train(&train_set, &validation, &options, &mut quiet).unwrap();
    assert_ne!(a.network, c.network);
}

#[test]
fn a_regressor_takes_and_gives_raw_units() {
    let (train_set, validation) = (linear(800, 3), linear(200, 4));
    let mut options = TrainOptions::new(Arch::Mlp {
        hidden: vec![32],
        dropout: 0.0,
    });
    options.epochs = 20;
    options.patience = 5;
    let trained = train(&train_set, &validation, &options, &mut quiet).unwrap();
    let Some(Metrics::Regress { r2, .. }) = trained.validation() else {
        panic!("regression figures expected")
    };
    assert!(r2.iter().all(|&r| r > 0.9), "r2 {r2:?}");
    // Standardization is folded in: raw inputs give answers in the targets' units.
    let y = trained.network.forward(&[50.0, 0.005], 1).unwrap();
    assert!((y[0] - 249.0).abs() < 15.0, "{y:?}");
}

#[test]
fn the_exported_cnn_computes_what_burn_computes() {
    // Random images; what matters is that transposed filters and the NHWC flatten agree.
    let mut rng = fastrand::Rng::with_seed(5);
    let (h, w, c, n) = (9, 8, 2, 6);
    let data = Dataset {
        source: "images".into(),
        item_shape: vec![h, w, c],
        feature_names: vec![],
        features: Features::U8 {
            data: (0..n * h * w * c).map(|_| rng.u8(..)).collect(),
            scale: 1.0 / 255.0,
        },
        targets: Targets::Classes {
            labels: (0..n as u32).map(|i| i % 3).collect(),
            names: vec!["a".into(), "b".into(), "c".into()],
        },
    };
    // Seeding burn touches the random state trainings share.
    let _one_at_a_time = super::TRAINING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let device = Device::flex();
    device.seed(7);
    let arch = Arch::Cnn {
        filters: vec![3, 4],
        kernel: 2,
        hidden: vec![5],
        dropout: 0.0,
    };
    let model = Net::new(&arch, &data.item_shape, 3, &device).unwrap();
    let prep = Prep {
        inputs: None,
        targets: None,
    };
    let logits = outputs(&model, &data, &prep).unwrap();
    let want: Vec<f32> = logits.chunks(3).flat_map(softmax).collect();
    let network = export_network(&model, &data, &prep).unwrap();
    let x = prep.features(&data, &(0..n).collect::<Vec<_>>());
    let got = network.forward(&x, n).unwrap();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((g - w).abs() < 1e-5, "value {i}: {g} vs {w}");
    }
}

#[test]
fn unusable_setups_are_refused_before_training() {
    let classes = blobs(20, 2, 3, 6);
    let cases: Vec<(&str, Dataset, Dataset, TrainOptions, &str)> = vec![
        (
            "empty validation",
            classes.clone(),
            classes.select(&[]),
            TrainOptions::new(Arch::mlp()),
            "validation 0",
        ),
        (
            "cnn on a table",
            classes.clone(),
            classes.clone(),
            TrainOptions::new(Arch::cnn()),
            "image examples",
        ),
        (
            "cnn regressor",
            linear(20, 1),
            linear(20, 2),
            TrainOptions::new(Arch::cnn()),
            "regression trains an MLP",
        ),
        (
            "one class",
            blobs(20, 1, 3, 6),
            blobs(20, 1, 3, 6),
            TrainOptions::new(Arch::mlp()),
            "at least two classes",
        ),
        (
            "shapes differ",
            classes.clone(),
            blobs(20, 2, 4, 6),
            TrainOptions::new(Arch::mlp()),
            "validation examples [4]",
        ),
    ];
    for (name, t, v, o, expected) in cases {
        let err = train(&t, &v, &o, &mut quiet).expect_err(name).to_string();
        assert!(err.contains(expected), "{name}: {err}");
    }
}

#[test]
fn weight_decay_shrinks_the_weights() {
    // Separable blobs score perfectly after an epoch, which is then the one kept: make it long
    // enough (63 steps at 1e-2) for the decay to show.
    let (train_set, validation) = (blobs(2000, 3, 4, 6), blobs(60, 3, 4, 6));
    let mut options = TrainOptions::new(Arch::Mlp {
        hidden: vec![16],
        dropout: 0.0,
    });
    options.epochs = 2;
    options.learning_rate = 1e-2;
    let norm = |o: &TrainOptions| {
        let trained = train(&train_set, &validation, o, &mut quiet).unwrap();
        trained
            .network
            .layers
            .iter()
            .map(|l| match l {
                crate::network::Layer::Dense { weights, .. } => {
                    weights.iter().map(|w| f64::from(*w).powi(2)).sum::<f64>()
                }
                _ => 0.0,
            })
            .sum::<f64>()
    };
    let free = norm(&options);
    options.weight_decay = 1.0;
    let decayed = norm(&options);
    assert!(
        decayed < 0.8 * free,
        "squared weights {decayed} with decay, {free} without"
    );
}
