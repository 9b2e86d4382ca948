//! Classifier postprocessing: a score vector becomes `{class, label, score, scores[, top_k]}`
//! as the model config asks.

use serde_json::{json, Value as Json};

use crate::catalog::ServedModel;
use crate::error::{Code, PredictError};
use crate::model_config::Postprocess;
use crate::predict::PredictOptions;

/// Applies the model's classifier postprocessing to each prediction, unless `options` turn it
/// off (tensor protocols such as KServe V2).
pub fn postprocess(
    served: &ServedModel,
    predictions: Vec<Json>,
    options: PredictOptions,
) -> Result<Vec<Json>, PredictError> {
    match &served.config.postprocess {
        Some(post) if options.postprocess => predictions
            .into_iter()
            .map(|p| classify(served, post, p))
            .collect(),
        _ => Ok(predictions),
    }
}

/// Turns one prediction's score vector into `{class, label, score, scores[, top_k]}`.
fn classify(
    served: &ServedModel,
    post: &Postprocess,
    prediction: Json,
) -> Result<Json, PredictError> {
    let sig = served.model.signature();
    let scores_json = match (&prediction, &post.output) {
        (Json::Object(map), Some(name)) => map.get(name).cloned(),
        (Json::Object(map), None) => sig.outputs.first().and_then(|o| map.get(&o.name).cloned()),
        (other, _) => Some(other.clone()),
    }
    .ok_or_else(|| {
        PredictError::new(
            Code::Internal,
            format!(
                "postprocess output {:?} is not an output of model '{}'",
                post.output, served.name
            ),
        )
    })?;
    let (scores, _) = litehouse_models::instances::flatten_numbers(&scores_json)
        .map_err(|e| PredictError::new(Code::Internal, format!("postprocess: {e}")))?;
    let Some((best, &score)) = scores.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)) else {
        return Ok(prediction);
    };
    let label = |i: usize| post.labels.get(i).cloned().unwrap_or_else(|| i.to_string());
    let mut out = json!({
        "class": best,
        "label": label(best),
        "score": score,
        "scores": scores_json,
    });
    if post.top_k > 0 {
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        out["top_k"] = order
            .into_iter()
            .take(post.top_k)
            .map(|i| json!({"class": i, "label": label(i), "score": scores[i]}))
            .collect();
    }
    Ok(out)
}
