//! Where inference runs, decided by what it will cost, estimated before running it: cheap
//! requests run on the async thread that received them; the rest hop to the blocking pool, under
//! a worker and queue limit. The hop (two thread wake-ups) costs more than a small model's whole
//! inference.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value as Json;
use tokio::sync::Semaphore;

use crate::catalog::ServedModel;
use crate::error::{Code, PredictError};
use crate::image_input;

/// Runs inference: a request whose estimated cost is within the inline budget runs on the
/// async thread that received it (no thread hop); heavier ones run on the blocking pool, at
/// most `workers` at once and at most `queue` waiting. Beyond that a request is refused with
/// RESOURCE_EXHAUSTED (429) rather than queued forever.
#[derive(Debug, Clone)]
pub struct Executor {
    admitted: Arc<Semaphore>,
    running: Arc<Semaphore>,
    workers: usize,
    queue: usize,
    inline_budget: Duration,
    rejected: Arc<AtomicU64>,
}

/// What the executor is doing right now, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    /// Inferences running on the blocking pool.
    pub running: usize,
    /// Inferences waiting for a worker.
    pub queued: usize,
    /// Requests refused with RESOURCE_EXHAUSTED since start.
    pub rejected: u64,
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
            workers,
            queue,
            inline_budget: DEFAULT_INLINE_BUDGET,
            rejected: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Running and waiting inferences, and refusals so far.
    pub fn load(&self) -> Load {
        let admitted =
            (self.workers + self.queue).saturating_sub(self.admitted.available_permits());
        let running = self
            .workers
            .saturating_sub(self.running.available_permits());
        Load {
            running,
            queued: admitted.saturating_sub(running),
            rejected: self.rejected.load(Ordering::Relaxed),
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
        job: impl FnOnce() -> Result<T, PredictError> + Send + 'static,
    ) -> Result<T, PredictError> {
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
        job: impl FnOnce() -> Result<T, PredictError> + Send + 'static,
    ) -> Result<T, PredictError> {
        let _admitted = self.admitted.clone().try_acquire_owned().map_err(|_| {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            PredictError::new(
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
            .map_err(|_| PredictError::new(Code::Unavailable, "the server is shutting down"))?;
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| PredictError::new(Code::Internal, format!("inference task failed: {e}")))?
    }
}

/// Decoding, converting and resizing one pixel (PNG or JPEG, measured well under this).
const PIXEL_COST: Duration = Duration::from_nanos(20);

/// A base64 image (other than PNG, whose header comes first) longer than this is not decoded to
/// find its size; the request goes to the blocking pool.
const MAX_PEEKED_B64: usize = 64 * 1024;

/// Estimated CPU time of running JSON `instances` on `served`: the model's measured batch-1
/// cost per instance plus the pixels their `{"b64": ...}` images declare. An image too large
/// to peek at estimates as `Duration::MAX`.
pub fn cost_of_instances(served: &ServedModel, instances: &[Json]) -> Duration {
    let mut pixels = 0u64;
    for inst in instances {
        match b64_pixels(inst) {
            Some(p) => pixels = pixels.saturating_add(p),
            None => return Duration::MAX,
        }
    }
    total(served, instances.len(), pixels)
}

/// Estimated CPU time of running encoded `images` (one instance each) on `served`.
pub fn cost_of_images<B: AsRef<[u8]>>(served: &ServedModel, images: &[B]) -> Duration {
    let pixels = images
        .iter()
        .map(|b| image_input::declared_pixels(b.as_ref()).unwrap_or(0))
        .fold(0u64, u64::saturating_add);
    total(served, images.len(), pixels)
}

fn total(served: &ServedModel, instances: usize, pixels: u64) -> Duration {
    let model = served
        .instance_cost
        .saturating_mul(u32::try_from(instances).unwrap_or(u32::MAX));
    let decode = PIXEL_COST.saturating_mul(u32::try_from(pixels).unwrap_or(u32::MAX));
    model.saturating_add(decode)
}

/// Pixels declared by the `{"b64": ...}` images in one instance (whole or per named input);
/// `None` when an image is too large to peek at cheaply.
fn b64_pixels(instance: &Json) -> Option<u64> {
    let Json::Object(map) = instance else {
        return Some(0);
    };
    let mut pixels = 0u64;
    let mut add = |v: &Json| -> Option<()> {
        let s = v.as_str()?.trim();
        // A PNG declares its size in its first 24 bytes: 32 base64 characters.
        let head = decode_b64(s.get(..32).unwrap_or(s));
        let declared = match image_input::declared_pixels(&head) {
            Some(p) => Some(p),
            None if s.len() > MAX_PEEKED_B64 => return None,
            None => image_input::declared_pixels(&decode_b64(s)),
        };
        // Malformed base64 or a non-image fails fast when run; count it as free.
        pixels = pixels.saturating_add(declared.unwrap_or(0));
        Some(())
    };
    if let Some(b64) = map.get("b64") {
        add(b64)?;
    } else {
        for v in map.values() {
            if let Some(b64) = v.as_object().and_then(|inner| inner.get("b64")) {
                add(b64)?;
            }
        }
    }
    Some(pixels)
}

fn decode_b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(s))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model_config::ModelConfig;
    use litehouse_models::LoadedModel;
    use serde_json::json;

    fn served() -> ServedModel {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../models/runtime/testdata/exported/mlp_int8_io.tflite"
        );
        let model = LoadedModel::load_file(path).unwrap();
        ServedModel::warmed("mlp".into(), 1, ModelConfig::default(), model, path.into()).unwrap()
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::GrayImage::new(w, h);
        let mut out = std::io::Cursor::new(vec![]);
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn cost_is_model_time_per_instance_plus_declared_pixels() {
        let served = served();
        assert!(served.instance_cost > Duration::ZERO);
        let one = served.instance_cost;
        let numbers = vec![json!(vec![0.0; 784]), json!(vec![1.0; 784])];
        assert_eq!(cost_of_instances(&served, &numbers), one * 2);
        let images_cost = cost_of_images(&served, &[png(28, 28), png(100, 50)]);
        assert_eq!(images_cost, one * 2 + PIXEL_COST * (784 + 5000));
        let b64 = base64::engine::general_purpose::STANDARD.encode(png(28, 28));
        assert_eq!(
            cost_of_instances(&served, &[json!({ "b64": b64 })]),
            one + PIXEL_COST * 784
        );
        // A named input holding an image counts too; a huge base64 string is not peeked at.
        assert_eq!(
            cost_of_instances(&served, &[json!({ "x": { "b64": b64 } })]),
            one + PIXEL_COST * 784
        );
        // A large PNG is peeked at from its first bytes; other large data is not.
        let big_png = base64::engine::general_purpose::STANDARD.encode(png(2000, 1000));
        let mut long_png = big_png.clone();
        long_png.push_str(&"A".repeat(MAX_PEEKED_B64));
        assert_eq!(
            cost_of_instances(&served, &[json!({ "b64": long_png })]),
            one + PIXEL_COST * 2_000_000
        );
        let huge = "A".repeat(MAX_PEEKED_B64 + 4);
        assert_eq!(
            cost_of_instances(&served, &[json!({ "b64": huge })]),
            Duration::MAX
        );
    }

    #[test]
    fn declared_pixels_reads_png_and_jpeg_headers_only() {
        assert_eq!(image_input::declared_pixels(&png(300, 7)), Some(2100));
        let mut jpeg = std::io::Cursor::new(vec![]);
        image::RgbImage::new(40, 30)
            .write_to(&mut jpeg, image::ImageFormat::Jpeg)
            .unwrap();
        assert_eq!(image_input::declared_pixels(jpeg.get_ref()), Some(1200));
        assert_eq!(image_input::declared_pixels(b"not an image"), None);
        // A truncated PNG still declares its size: nothing past the header is read.
        assert_eq!(image_input::declared_pixels(&png(64, 64)[..40]), Some(4096));
    }

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
