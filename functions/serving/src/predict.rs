//! The protocol-independent prediction path: instances (numbers or images) in, predictions out.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use litehouse_models::instances::{predict_buffers, predict_instances, InputValues};
use litehouse_models::OutputMode;
use serde_json::{json, Map, Value as Json};
use tokio::sync::Semaphore;

use crate::catalog::ServedModel;
use crate::config::NumberMode;
use crate::error::{Code, ServeError};
use crate::image_input::{self, ImageLimits};

/// Runs inference: a request whose estimated cost is within the inline budget runs on the
/// async thread that received it (no thread hop); heavier ones run on the blocking pool, at
/// most `workers` at once and at most `queue` waiting. Beyond that a request is refused with
/// RESOURCE_EXHAUSTED (429) rather than queued forever.
#[derive(Debug, Clone)]
pub struct Executor {
    admitted: Arc<Semaphore>,
    running: Arc<Semaphore>,
    queue: usize,
    inline_budget: Duration,
}

/// Default inline budget: long enough for small models and an MNIST-sized image, short enough
/// that an async thread never stalls its other connections noticeably.
pub const DEFAULT_INLINE_BUDGET: Duration = Duration::from_micros(200);

impl Executor {
    /// `workers` concurrent blocking-pool inferences, `queue` more waiting, and the default
    /// inline budget.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        Executor {
            admitted: Arc::new(Semaphore::new(workers + queue)),
            running: Arc::new(Semaphore::new(workers)),
            queue,
            inline_budget: DEFAULT_INLINE_BUDGET,
        }
    }

    /// Sets the largest estimated cost run inline; zero sends every request to the pool.
    pub fn with_inline_budget(mut self, budget: Duration) -> Self {
        self.inline_budget = budget;
        self
    }

    /// Runs `job` inline when `cost` is within the inline budget, else as [`Self::run`].
    pub async fn run_costed<T: Send + 'static>(
        &self,
        cost: Duration,
        job: impl FnOnce() -> Result<T, ServeError> + Send + 'static,
    ) -> Result<T, ServeError> {
        if !self.inline_budget.is_zero() && cost <= self.inline_budget {
            return job();
        }
        self.run(job).await
    }

    /// True when a worker is free right now (shadow traffic runs only then).
    pub fn has_idle_worker(&self) -> bool {
        self.running.available_permits() > 0
    }

    /// Runs `job` on the blocking pool under the limits.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<T, ServeError> + Send + 'static,
    ) -> Result<T, ServeError> {
        let _admitted = self.admitted.clone().try_acquire_owned().map_err(|_| {
            ServeError::new(
                Code::ResourceExhausted,
                format!(
                    "the server is at capacity ({} requests waiting); retry later",
                    self.queue
                ),
            )
        })?;
        let _running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ServeError::new(Code::Unavailable, "the server is shutting down"))?;
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| ServeError::new(Code::Internal, format!("inference task failed: {e}")))?
    }
}

/// Limits applied to every request's content.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// What an image may declare.
    pub image: ImageLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // Vertex AI's public online-prediction limit.
            max_body_bytes: 1_572_864,
            image: ImageLimits::default(),
        }
    }
}

/// Per-call choices that depend on the protocol.
#[derive(Debug, Clone, Copy)]
pub struct PredictOptions {
    /// How numbers map onto quantized inputs; `None` follows the model config.
    pub values: Option<InputValues>,
    /// Apply the model's classifier postprocessing (tensor protocols such as KServe V2 do not).
    pub postprocess: bool,
}

impl Default for PredictOptions {
    fn default() -> Self {
        PredictOptions {
            values: None,
            postprocess: true,
        }
    }
}

/// Runs JSON instances through a served model: images (`{"b64": ...}`) are decoded per the
/// model's image config, numbers go through as they are, classifier outputs are postprocessed.
pub fn predict(
    served: &ServedModel,
    instances: Vec<Json>,
    limits: &Limits,
) -> Result<Vec<Json>, ServeError> {
    predict_with(served, instances, limits, PredictOptions::default())
}

/// [`predict`] with protocol-specific options.
pub fn predict_with(
    served: &ServedModel,
    instances: Vec<Json>,
    limits: &Limits,
    options: PredictOptions,
) -> Result<Vec<Json>, ServeError> {
    check_count(served, instances.len())?;
    // Whole-instance images on a single-input model go straight from pixels to the input
    // buffer, without a JSON array of pixel values in between.
    if served.model.signature().inputs.len() == 1 && instances.iter().all(is_b64_image) {
        let images = instances
            .iter()
            .enumerate()
            .map(|(i, inst)| b64(&inst["b64"]).map_err(|e| e.context(format!("instance {i}"))))
            .collect::<Result<Vec<_>, _>>()?;
        return predict_images_with(served, &images, limits, options, "instance");
    }
    let mut values = options.values.unwrap_or(match served.config.input_values {
        NumberMode::Native => InputValues::Native,
        NumberMode::Real => InputValues::Real,
    });
    let mut decoded = Vec::with_capacity(instances.len());
    for (i, inst) in instances.into_iter().enumerate() {
        let (inst, had_image) =
            decode_images(served, inst, limits).map_err(|e| e.context(format!("instance {i}")))?;
        // Preprocessed pixels are real values, quantized with the input's own parameters.
        if had_image {
            values = InputValues::Real;
        }
        decoded.push(inst);
    }
    let predictions = predict_instances(&served.model, &decoded, values, OutputMode::Float)?;
    postprocess(served, predictions, options)
}

/// Runs encoded images (PNG, JPEG), one instance each, through the model's preprocessing.
pub fn predict_images<B: AsRef<[u8]>>(
    served: &ServedModel,
    images: &[B],
    limits: &Limits,
) -> Result<Vec<Json>, ServeError> {
    predict_images_with(served, images, limits, PredictOptions::default(), "image")
}

fn predict_images_with<B: AsRef<[u8]>>(
    served: &ServedModel,
    images: &[B],
    limits: &Limits,
    options: PredictOptions,
    item: &str,
) -> Result<Vec<Json>, ServeError> {
    check_count(served, images.len())?;
    if served.model.signature().inputs.len() != 1 {
        // Several inputs: the config names the image's one; the JSON path assembles the rest.
        let instances = images
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                image_instance(served, bytes.as_ref(), limits)
                    .map_err(|e| e.context(format!("{item} {i}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        return predict_with(served, instances, limits, options);
    }
    let cfg = served
        .config
        .image
        .as_ref()
        .ok_or_else(|| no_image_config(served).context(format!("{item} 0")))?;
    let mut buffer = Vec::new();
    for (i, bytes) in images.iter().enumerate() {
        let values = image_input::to_values(bytes.as_ref(), cfg, limits.image)
            .map_err(|e| e.context(format!("{item} {i}")))?;
        buffer.extend(values);
    }
    let predictions = predict_buffers(
        &served.model,
        &[buffer],
        images.len(),
        InputValues::Real,
        OutputMode::Float,
    )?;
    postprocess(served, predictions, options)
}

fn check_count(served: &ServedModel, n: usize) -> Result<(), ServeError> {
    let max = served.config.max_instances;
    if n == 0 {
        return Err(ServeError::invalid(
            "\"instances\" is empty; send at least one instance",
        ));
    }
    if n > max {
        return Err(ServeError::invalid(format!(
            "{n} instances sent; model '{}' accepts at most {max} per request",
            served.name
        )));
    }
    Ok(())
}

fn is_b64_image(instance: &Json) -> bool {
    matches!(instance, Json::Object(map) if map.len() == 1 && map.contains_key("b64"))
}

fn postprocess(
    served: &ServedModel,
    predictions: Vec<Json>,
    options: PredictOptions,
) -> Result<Vec<Json>, ServeError> {
    match &served.config.postprocess {
        Some(post) if options.postprocess => predictions
            .into_iter()
            .map(|p| classify(served, post, p))
            .collect(),
        _ => Ok(predictions),
    }
}

/// Raw image bytes to one instance.
pub fn image_instance(
    served: &ServedModel,
    bytes: &[u8],
    limits: &Limits,
) -> Result<Json, ServeError> {
    let array = image_values(served, bytes, limits)?;
    Ok(
        match served.config.image.as_ref().and_then(|c| c.input.as_ref()) {
            Some(name) if served.model.signature().inputs.len() > 1 => json!({ name: array }),
            _ => array,
        },
    )
}

/// An image through the model's preprocessing, as a flat JSON array of input values.
fn image_values(served: &ServedModel, bytes: &[u8], limits: &Limits) -> Result<Json, ServeError> {
    let cfg = served
        .config
        .image
        .as_ref()
        .ok_or_else(|| no_image_config(served))?;
    let values = image_input::to_values(bytes, cfg, limits.image)?;
    Ok(Json::Array(values.into_iter().map(Json::from).collect()))
}

fn no_image_config(served: &ServedModel) -> ServeError {
    ServeError::invalid(format!(
        "model '{}' takes numeric tensors, not images (it has no \"image\" preprocessing in its config)",
        served.name
    ))
}

/// Replaces `{"b64": ...}` values (the whole instance or one named input) by pixel arrays.
fn decode_images(
    served: &ServedModel,
    inst: Json,
    limits: &Limits,
) -> Result<(Json, bool), ServeError> {
    match inst {
        Json::Object(map) if map.contains_key("b64") && map.len() == 1 => {
            let bytes = b64(&map["b64"])?;
            Ok((image_instance(served, &bytes, limits)?, true))
        }
        Json::Object(map) => {
            let mut out = Map::new();
            let mut any = false;
            for (k, v) in map {
                match v {
                    Json::Object(inner) if inner.contains_key("b64") => {
                        let bytes = b64(&inner["b64"])?;
                        let px = image_values(served, &bytes, limits)
                            .map_err(|e| e.context(format!("input '{k}'")))?;
                        out.insert(k, px);
                        any = true;
                    }
                    other => {
                        out.insert(k, other);
                    }
                }
            }
            Ok((Json::Object(out), any))
        }
        other => Ok((other, false)),
    }
}

fn b64(v: &Json) -> Result<Vec<u8>, ServeError> {
    let s = v
        .as_str()
        .ok_or_else(|| ServeError::invalid("\"b64\" must be a string of base64-encoded bytes"))?;
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(s.trim()))
        .map_err(|e| ServeError::invalid(format!("\"b64\" is not valid base64: {e}")))
}

/// Turns one prediction's score vector into `{class, label, score, scores[, top_k]}`.
fn classify(
    served: &ServedModel,
    post: &crate::config::Postprocess,
    prediction: Json,
) -> Result<Json, ServeError> {
    let sig = served.model.signature();
    let scores_json = match (&prediction, &post.output) {
        (Json::Object(map), Some(name)) => map.get(name).cloned(),
        (Json::Object(map), None) => sig.outputs.first().and_then(|o| map.get(&o.name).cloned()),
        (other, _) => Some(other.clone()),
    }
    .ok_or_else(|| {
        ServeError::new(
            Code::Internal,
            format!(
                "postprocess output {:?} is not an output of model '{}'",
                post.output, served.name
            ),
        )
    })?;
    let (scores, _) = litehouse_models::instances::flatten_numbers(&scores_json)
        .map_err(|e| ServeError::new(Code::Internal, format!("postprocess: {e}")))?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn thread_of(executor: &Executor, cost: Duration) -> std::thread::ThreadId {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(executor.run_costed(cost, || Ok(std::thread::current().id())))
            .unwrap()
    }

    #[test]
    fn cheap_jobs_run_inline_and_heavy_ones_on_the_pool() {
        let here = std::thread::current().id();
        let executor = Executor::new(1, 4);
        assert_eq!(thread_of(&executor, Duration::from_micros(50)), here);
        assert_eq!(thread_of(&executor, DEFAULT_INLINE_BUDGET), here);
        assert_ne!(thread_of(&executor, Duration::from_millis(5)), here);
        let pooled_only = Executor::new(1, 4).with_inline_budget(Duration::ZERO);
        assert_ne!(thread_of(&pooled_only, Duration::ZERO), here);
    }
}
