//! evaluate and gate: the candidate and the current champion scored by the runtime on the same
//! test split, then the promotion rule (an absolute threshold AND no worse than the champion by
//! a margin). A failed gate is an outcome (`passed = false` with the reason), not an error.

use std::collections::BTreeMap;

use litehouse_models::LoadedModel;
use litehouse_train::data::{split, SplitOptions};
use serde::{Deserialize, Serialize};

use super::dataset::DatasetInfo;
use super::train::{SplitRecord, SPLIT_FILE};
use super::StepArgs;
use crate::error::{PipelineError, Result};

/// The file inside a metrics artifact.
pub const METRICS_FILE: &str = "metrics.json";

/// evaluate's `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Test examples both models were scored on.
    pub examples: usize,
    /// The candidate's figures.
    pub candidate: BTreeMap<String, f64>,
    /// The champion's, when the model has one.
    pub champion: Option<ChampionScore>,
}

/// The champion's side of an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChampionScore {
    /// Its version.
    pub version: u64,
    /// Its figures on the same examples (empty when it could not be scored).
    pub metrics: BTreeMap<String, f64>,
    /// Why it could not be scored (another input shape, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// evaluate: scores `--model` and the champion of `--name` on the model's test split.
pub async fn evaluate(a: &StepArgs) -> Result<Vec<String>> {
    let data_dir = a.required_artifact("dataset")?;
    let (model_file, model_dir) = a.model_input("model")?;
    let info = DatasetInfo::read(&data_dir)?;
    let mut log = Vec::new();
    // A model trained elsewhere (a command step) has no split.json: score it on the split the
    // built-in train step would hold out by default.
    let split_record: SplitRecord = match model_dir.map(|d| d.join(SPLIT_FILE)) {
        Some(p) if p.is_file() => super::read_json(&p)?,
        _ => {
            let s = SplitRecord::default();
            log.push(format!(
                "the model has no {SPLIT_FILE}: scoring on the default split (validation {}, test {}, seed {})",
                s.validation, s.test, s.seed
            ));
            s
        }
    };
    let candidate_bytes =
        std::fs::read(&model_file).map_err(|e| PipelineError::io(model_file.display(), e))?;
    let name = a.text("name");
    let registry = a.registry().await?;
    let champion = match registry.resolve(&name, "champion").await {
        Ok(v) => Some((v, registry.artifact(&name, v, None).await?.1)),
        Err(litehouse_registry::RegistryError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let spec = info.spec(&data_dir);
    let evaluation = tokio::task::spawn_blocking(move || -> Result<Evaluation> {
        let (data, shipped) = spec.load()?;
        let splits = split(
            &data,
            shipped.as_ref(),
            SplitOptions {
                validation: split_record.validation,
                test: split_record.test,
                seed: split_record.seed,
            },
        )?;
        let score = |bytes: &[u8]| -> Result<BTreeMap<String, f64>> {
            let model = LoadedModel::load(bytes)?;
            Ok(litehouse_train::evaluate::evaluate(&model, &splits.test)?.flat())
        };
        let candidate = score(&candidate_bytes)?;
        let champion = champion.map(|(version, bytes)| match score(&bytes) {
            Ok(metrics) => ChampionScore {
                version,
                metrics,
                error: None,
            },
            Err(e) => ChampionScore {
                version,
                metrics: BTreeMap::new(),
                error: Some(e.to_string()),
            },
        });
        Ok(Evaluation {
            examples: splits.test.len(),
            candidate,
            champion,
        })
    })
    .await
    .map_err(|e| PipelineError::step("evaluate", e))??;
    super::write_json(&a.out("metrics").join(METRICS_FILE), &evaluation)?;
    log.push(format!(
        "candidate on {} test examples: {}",
        evaluation.examples,
        show(&evaluation.candidate)
    ));
    log.push(match &evaluation.champion {
        None => format!("'{name}' has no champion yet"),
        Some(c) => match &c.error {
            Some(e) => format!("champion v{} could not be scored: {e}", c.version),
            None => format!("champion v{}: {}", c.version, show(&c.metrics)),
        },
    });
    Ok(log)
}

fn show(m: &BTreeMap<String, f64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {v:.4}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether lower values of `metric` are better (losses and errors).
pub fn lower_is_better(metric: &str) -> bool {
    metric == "loss" || metric == "mse" || metric == "rmse" || metric.starts_with("mae")
}

/// The gate's rule, as a pure function: `(passed, reason)`.
pub fn decide(
    e: &Evaluation,
    metric: &str,
    threshold: f64,
    margin: f64,
) -> std::result::Result<(bool, String), String> {
    let metric = match metric {
        "auto" if e.candidate.contains_key("accuracy") => "accuracy",
        "auto" => "r2",
        m => m,
    };
    let Some(&got) = e.candidate.get(metric) else {
        return Err(format!(
            "the evaluation has no metric '{metric}' (it has: {})",
            e.candidate.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    };
    let lower = lower_is_better(metric);
    let (cmp, meets) = if lower {
        ("<=", got <= threshold)
    } else {
        (">=", got >= threshold)
    };
    if !meets {
        return Ok((
            false,
            format!("{metric} {got:.4} does not meet the threshold ({cmp} {threshold})"),
        ));
    }
    let Some(champion) = &e.champion else {
        return Ok((
            true,
            format!("{metric} {got:.4} {cmp} {threshold}; no champion to beat"),
        ));
    };
    if let Some(err) = &champion.error {
        return Ok((
            false,
            format!(
                "champion v{} could not be scored on the same data ({err})",
                champion.version
            ),
        ));
    }
    let Some(&best) = champion.metrics.get(metric) else {
        return Ok((
            false,
            format!("champion v{} has no '{metric}'", champion.version),
        ));
    };
    let no_worse = if lower {
        got <= best + margin
    } else {
        got >= best - margin
    };
    let reason = format!(
        "{metric} {got:.4} vs champion v{} {best:.4} (margin {margin}) on {} examples; threshold {cmp} {threshold}",
        champion.version, e.examples
    );
    Ok(if no_worse {
        (true, format!("{reason}: no worse than the champion"))
    } else {
        (false, format!("{reason}: worse than the champion"))
    })
}

/// gate: writes `passed` and `reason`.
pub fn gate(a: &StepArgs) -> Result<Vec<String>> {
    let dir = a.required_artifact("metrics")?;
    let e: Evaluation = super::read_json(&dir.join(METRICS_FILE))?;
    let (passed, reason) = decide(&e, &a.text("metric"), a.num("threshold")?, a.num("margin")?)
        .map_err(|m| a.bad("metric", m))?;
    a.write_param("passed", &passed.into())?;
    a.write_param("reason", &reason.clone().into())?;
    Ok(vec![format!(
        "{}: {reason}",
        if passed { "passed" } else { "gated" }
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(candidate: f64, champion: Option<f64>) -> Evaluation {
        Evaluation {
            examples: 100,
            candidate: [("accuracy".to_string(), candidate)].into(),
            champion: champion.map(|c| ChampionScore {
                version: 1,
                metrics: [("accuracy".to_string(), c)].into(),
                error: None,
            }),
        }
    }

    #[test]
    fn the_gate_needs_the_threshold_and_the_champion_margin() {
        let cases = [
            ("first model above the threshold", eval(0.98, None), true),
            ("first model below the threshold", eval(0.90, None), false),
            ("better than the champion", eval(0.98, Some(0.97)), true),
            ("within the margin", eval(0.975, Some(0.978)), true),
            (
                "worse than the champion by more than the margin",
                eval(0.971, Some(0.99)),
                false,
            ),
            (
                "above the champion but below the threshold",
                eval(0.96, Some(0.95)),
                false,
            ),
        ];
        for (name, e, want) in cases {
            let (passed, reason) = decide(&e, "auto", 0.97, 0.005).expect(name);
            assert_eq!(passed, want, "{name}: {reason}");
        }
    }

    #[test]
    fn errors_are_lower_is_better() {
        let e = Evaluation {
            examples: 4,
            candidate: [("mse".to_string(), 2.0)].into(),
            champion: Some(ChampionScore {
                version: 3,
                metrics: [("mse".to_string(), 1.0)].into(),
                error: None,
            }),
        };
        let (passed, reason) = decide(&e, "mse", 5.0, 0.5).expect("decides");
        assert!(!passed, "{reason}");
        assert!(decide(&e, "mse", 5.0, 1.5).expect("decides").0);
        assert!(decide(&e, "accuracy", 0.5, 0.0)
            .unwrap_err()
            .contains("no metric 'accuracy'"));
    }
}
