//! The model registry and endpoint table, kept in a [`litehouse_store::Store`] (a local
//! directory by default, or S3).
//!
//! Layout under the store's root:
//! ```text
//! models/{name}/versions/{v}/model.tflite   the artifact, as uploaded
//! models/{name}/versions/{v}/manifest.json  sha256, size, signature, metrics, lineage, ...
//! models/{name}/aliases.json                champion / challenger / any name -> version
//! endpoints/index.json                      ids of every endpoint
//! endpoints/{id}.json                       deployed models and traffic split (Vertex AI rules)
//! ```
//! Every change of shared state is a compare-and-swap on the store's etag, so concurrent writers
//! (CLI, pipelines, several machines) lose nothing.

mod aliases;
mod endpoint;
mod endpoints;
mod error;
mod manifest;
mod models;
mod names;
pub mod routing;

pub use aliases::{AliasMove, Aliases};
pub use endpoint::{
    show_split, DeployRequest, DeployedModel, Endpoint, PredictionLogging, TrafficSplit,
    TrafficSplitText,
};
pub use error::RegistryError;
pub use manifest::{Lineage, Manifest, ModelSummary, UploadRequest};
pub use names::{validate_alias, validate_endpoint_id, validate_model_name};

use litehouse_store::Store;

/// Registry operations over one store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Registry {
    store: Store,
}

impl Registry {
    /// A registry kept in `store`.
    pub fn new(store: Store) -> Self {
        Registry { store }
    }

    /// Opens the store at `uri` (see [`Store::open`]) and returns a registry over it.
    pub async fn open(uri: &str) -> Result<Self, RegistryError> {
        Ok(Registry::new(Store::open(uri).await?))
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// Reads a JSON document with its etag; `None` when absent.
async fn read_doc<T: serde::de::DeserializeOwned>(
    store: &Store,
    key: &str,
) -> Result<Option<(T, String)>, RegistryError> {
    let Some(object) = store.get_opt(key).await? else {
        return Ok(None);
    };
    let doc = serde_json::from_slice(&object.bytes).map_err(|e| RegistryError::Corrupt {
        key: format!("{}/{key}", store.uri()),
        reason: e.to_string(),
    })?;
    Ok(Some((doc, object.etag)))
}

fn to_json<T: serde::Serialize>(doc: &T) -> Vec<u8> {
    // Serializing our own plain structs cannot fail; an empty document would be refused on read.
    let mut bytes = serde_json::to_vec_pretty(doc).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Read-modify-write of a JSON document by compare-and-swap (created from `Default` when
/// absent); a lost race re-reads and retries, up to [`CAS_ATTEMPTS`], then ABORTED naming `what`.
async fn update_doc<T>(
    store: &litehouse_store::Store,
    key: &str,
    what: &str,
    mut change: impl FnMut(&mut T) -> Result<(), RegistryError>,
) -> Result<T, RegistryError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Default,
{
    use litehouse_store::Condition;
    for attempt in 0..CAS_ATTEMPTS {
        let (mut doc, condition) = match read_doc::<T>(store, key).await? {
            Some((doc, etag)) => (doc, Condition::IfMatch(etag)),
            None => (T::default(), Condition::IfAbsent),
        };
        change(&mut doc)?;
        match store.put(key, to_json(&doc), condition).await {
            Ok(_) => return Ok(doc),
            Err(e) if e.is_precondition_failed() => backoff(attempt).await,
            Err(e) => return Err(e.into()),
        }
    }
    Err(RegistryError::Aborted(format!(
        "{what} kept changing; gave up after {CAS_ATTEMPTS} attempts"
    )))
}

/// Waits a little before retrying a lost compare-and-swap: jittered, growing with the attempt.
async fn backoff(attempt: u32) {
    let cap = 2u64.saturating_pow(attempt.min(7)).min(100);
    tokio::time::sleep(std::time::Duration::from_millis(fastrand::u64(
        1..=cap.max(2),
    )))
    .await;
}

/// How many times a compare-and-swap is retried before answering ABORTED.
const CAS_ATTEMPTS: u32 = 200;
