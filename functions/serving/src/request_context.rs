//! What the serving middleware learns about a request while a handler runs: its id, and which
//! endpoint, deployed model and model version answered it (the labels of its metrics and its
//! prediction log). Carried in a task-local, so the handlers and [`crate::AppState`] note what
//! they chose without threading a context through every call.

use std::sync::{Arc, Mutex};

use litehouse_predictor::{ServedDeployment, ServedModel};

/// The model side of a request, as far as the handler got before answering.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Served {
    /// Endpoint id (empty on the TF Serving and KServe model routes).
    pub endpoint: String,
    /// Deployed model id within the endpoint (empty on model routes).
    pub deployed_model: String,
    /// Model name.
    pub model: String,
    /// Model version (0 until a model is chosen).
    pub version: u64,
}

/// One request's context.
#[derive(Debug)]
pub struct RequestContext {
    /// The request id: the Lambda request id, the client's `X-Request-Id`, or a generated one.
    pub id: String,
    served: Mutex<Served>,
    held: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl RequestContext {
    /// A context for request `id`.
    pub fn new(id: String) -> Arc<Self> {
        Arc::new(RequestContext {
            id,
            served: Mutex::new(Served::default()),
            held: Mutex::new(Vec::new()),
        })
    }

    /// Keeps background work of this request (a shadow copy) to be awaited before the
    /// response leaves, where the process may be frozen right after (a Lambda).
    pub fn hold(&self, task: tokio::task::JoinHandle<()>) {
        if let Ok(mut held) = self.held.lock() {
            held.push(task);
        }
    }

    /// Waits for the work [`Self::hold`] kept.
    pub async fn finish_held(&self) {
        let tasks = self
            .held
            .lock()
            .map(|mut h| std::mem::take(&mut *h))
            .unwrap_or_default();
        for task in tasks {
            // A shadow that panicked is already counted as lost; the answer still goes out.
            let _ = task.await;
        }
    }

    /// What was noted so far.
    pub fn served(&self) -> Served {
        self.served.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn update(&self, f: impl FnOnce(&mut Served)) {
        if let Ok(mut served) = self.served.lock() {
            f(&mut served);
        }
    }
}

tokio::task_local! {
    static CURRENT: Arc<RequestContext>;
}

/// Runs `future` with `context` as the current request's.
pub async fn scope<F: std::future::Future>(context: Arc<RequestContext>, future: F) -> F::Output {
    CURRENT.scope(context, future).await
}

/// The current request's context, outside a request `None`.
pub fn current() -> Option<Arc<RequestContext>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Notes the deployed model the traffic split (or the override header) chose on `endpoint`.
pub fn note_deployment(endpoint: &str, deployed: &ServedDeployment) {
    if let Some(context) = current() {
        context.update(|s| {
            s.endpoint = endpoint.to_string();
            s.deployed_model = deployed.id.clone();
            s.model = deployed.model.name.clone();
            s.version = deployed.model.version;
        });
    }
}

/// Notes the model version a model route (TF Serving, KServe) resolved to.
pub fn note_model(model: &ServedModel) {
    if let Some(context) = current() {
        context.update(|s| {
            s.model = model.name.clone();
            s.version = model.version;
        });
    }
}

/// A request id a client may choose: 1 to 128 visible ASCII characters (it is echoed in a
/// header and written to logs, so nothing else is taken).
pub fn acceptable_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// A fresh request id: 32 hex digits.
pub fn generate_id() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_checked_and_generated_ids_are_acceptable() {
        assert!(acceptable_id("abc-123_X"));
        assert!(!acceptable_id(""));
        assert!(!acceptable_id("has space"));
        assert!(!acceptable_id("new\nline"));
        assert!(!acceptable_id(&"x".repeat(129)));
        let id = generate_id();
        assert_eq!(id.len(), 32);
        assert!(acceptable_id(&id));
        assert_ne!(id, generate_id());
    }
}
