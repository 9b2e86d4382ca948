//! The protocol-independent prediction path: instances (numbers or images) in, predictions out.

use base64::Engine as _;
use litehouse_models::instances::{predict_buffers, predict_instances, InputValues};
use litehouse_models::OutputMode;
use serde_json::{json, Map, Value as Json};

use crate::catalog::ServedModel;
use crate::error::PredictError;
use crate::image_input::{self, ImageLimits};
use crate::model_config::NumberMode;
use crate::postprocess::postprocess;

/// Per-call choices that depend on the protocol.
#[derive(Debug, Clone, Copy)]
pub struct PredictOptions {
    /// How numbers map onto quantized inputs; `None` follows the model config.
    pub values: Option<InputValues>,
    /// Apply the model's classifier postprocessing (tensor protocols such as KServe V2 do not).
    pub postprocess: bool,
    /// Most instances per call; `None` follows the model config's `max_instances` (a request
    /// limit that batch jobs, which choose their own batch size, replace).
    pub max_instances: Option<usize>,
}

impl Default for PredictOptions {
    fn default() -> Self {
        PredictOptions {
            values: None,
            postprocess: true,
            max_instances: None,
        }
    }
}

/// Runs JSON instances through a served model: images (`{"b64": ...}`) are decoded per the
/// model's image config, numbers go through as they are, classifier outputs are postprocessed.
pub fn predict(
    served: &ServedModel,
    instances: Vec<Json>,
    limits: &ImageLimits,
) -> Result<Vec<Json>, PredictError> {
    predict_with(served, instances, limits, PredictOptions::default())
}

/// [`predict`] with protocol-specific options.
pub fn predict_with(
    served: &ServedModel,
    instances: Vec<Json>,
    limits: &ImageLimits,
    options: PredictOptions,
) -> Result<Vec<Json>, PredictError> {
    check_count(served, instances.len(), options)?;
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

/// Runs `n` numeric instances already flattened into one buffer (what [`crate::flat`] parses)
/// through a single-input model: the same numbers [`predict_with`] gives for the same arrays,
/// without the JSON values in between (batch jobs).
pub fn predict_flat(
    served: &ServedModel,
    buffer: Vec<f64>,
    n: usize,
    options: PredictOptions,
) -> Result<Vec<Json>, PredictError> {
    let values = options.values.unwrap_or(match served.config.input_values {
        NumberMode::Native => InputValues::Native,
        NumberMode::Real => InputValues::Real,
    });
    let predictions = predict_buffers(&served.model, &[buffer], n, values, OutputMode::Float)?;
    postprocess(served, predictions, options)
}

/// A JSON value's kind, for messages ("an array", "a string", ...).
pub fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Values in one instance of a single-input model, or `None` when the model takes several.
pub fn single_input_volume(served: &ServedModel) -> Option<usize> {
    match served.model.signature().inputs.as_slice() {
        [only] => Some(
            litehouse_models::instances::item_shape(only)
                .iter()
                .product(),
        ),
        _ => None,
    }
}

/// Runs encoded images (PNG, JPEG), one instance each, through the model's preprocessing.
pub fn predict_images<B: AsRef<[u8]>>(
    served: &ServedModel,
    images: &[B],
    limits: &ImageLimits,
) -> Result<Vec<Json>, PredictError> {
    predict_images_with(served, images, limits, PredictOptions::default(), "image")
}

fn predict_images_with<B: AsRef<[u8]>>(
    served: &ServedModel,
    images: &[B],
    limits: &ImageLimits,
    options: PredictOptions,
    item: &str,
) -> Result<Vec<Json>, PredictError> {
    check_count(served, images.len(), options)?;
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
        let values = image_input::to_values(bytes.as_ref(), cfg, *limits)
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

fn check_count(
    served: &ServedModel,
    n: usize,
    options: PredictOptions,
) -> Result<(), PredictError> {
    let max = options.max_instances.unwrap_or(served.config.max_instances);
    if n == 0 {
        return Err(PredictError::invalid(
            "\"instances\" is empty; send at least one instance",
        ));
    }
    if n > max {
        return Err(PredictError::invalid(format!(
            "{n} instances sent; model '{}' accepts at most {max} per request",
            served.name
        )));
    }
    Ok(())
}

fn is_b64_image(instance: &Json) -> bool {
    matches!(instance, Json::Object(map) if map.len() == 1 && map.contains_key("b64"))
}

/// Raw image bytes to one instance.
pub fn image_instance(
    served: &ServedModel,
    bytes: &[u8],
    limits: &ImageLimits,
) -> Result<Json, PredictError> {
    let array = image_values(served, bytes, limits)?;
    Ok(
        match served.config.image.as_ref().and_then(|c| c.input.as_ref()) {
            Some(name) if served.model.signature().inputs.len() > 1 => json!({ name: array }),
            _ => array,
        },
    )
}

/// An image through the model's preprocessing, as a flat JSON array of input values.
fn image_values(
    served: &ServedModel,
    bytes: &[u8],
    limits: &ImageLimits,
) -> Result<Json, PredictError> {
    let cfg = served
        .config
        .image
        .as_ref()
        .ok_or_else(|| no_image_config(served))?;
    let values = image_input::to_values(bytes, cfg, *limits)?;
    Ok(Json::Array(values.into_iter().map(Json::from).collect()))
}

fn no_image_config(served: &ServedModel) -> PredictError {
    PredictError::invalid(format!(
        "model '{}' takes numeric tensors, not images (it has no \"image\" preprocessing in its config)",
        served.name
    ))
}

/// Replaces `{"b64": ...}` values (the whole instance or one named input) by pixel arrays.
fn decode_images(
    served: &ServedModel,
    inst: Json,
    limits: &ImageLimits,
) -> Result<(Json, bool), PredictError> {
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

fn b64(v: &Json) -> Result<Vec<u8>, PredictError> {
    let s = v
        .as_str()
        .ok_or_else(|| PredictError::invalid("\"b64\" must be a string of base64-encoded bytes"))?;
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(s.trim()))
        .map_err(|e| PredictError::invalid(format!("\"b64\" is not valid base64: {e}")))
}
