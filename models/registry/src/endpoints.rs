//! Endpoints in the store: create, describe, list, delete, deploy, undeploy, split. Every change
//! is a compare-and-swap on the endpoint document's etag.

use std::collections::BTreeSet;

use litehouse_store::Condition;
use serde::{Deserialize, Serialize};

use crate::endpoint::{DeployRequest, DeployedModel, Endpoint, TrafficSplit};
use crate::{backoff, read_doc, to_json, Registry, RegistryError, CAS_ATTEMPTS};

/// Key of the endpoint index, which a server polls (one cheap etag check) to notice endpoints
/// being created or deleted without listing the store.
pub const ENDPOINT_INDEX: &str = "endpoints/index.json";

/// Key of one endpoint's document.
pub fn endpoint_key(id: &str) -> String {
    format!("endpoints/{id}.json")
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Index {
    endpoints: BTreeSet<String>,
}

impl Registry {
    /// Ids of every endpoint, with the index's etag (`None` when there are none yet).
    pub async fn endpoint_ids(&self) -> Result<(Vec<String>, Option<String>), RegistryError> {
        Ok(
            match read_doc::<Index>(&self.store, ENDPOINT_INDEX).await? {
                Some((index, etag)) => (index.endpoints.into_iter().collect(), Some(etag)),
                None => (Vec::new(), None),
            },
        )
    }

    /// The etag of the endpoint index (changes when endpoints are created or deleted).
    pub async fn endpoint_index_etag(&self) -> Result<Option<String>, RegistryError> {
        Ok(self.store.etag(ENDPOINT_INDEX).await?)
    }

    /// The etag of one endpoint's document, without reading it.
    pub async fn endpoint_etag(&self, id: &str) -> Result<Option<String>, RegistryError> {
        crate::validate_endpoint_id(id)?;
        Ok(self.store.etag(&endpoint_key(id)).await?)
    }

    async fn update_index(
        &self,
        change: impl FnMut(&mut Index) -> Result<(), RegistryError>,
    ) -> Result<(), RegistryError> {
        crate::update_doc(&self.store, ENDPOINT_INDEX, "the endpoint index", change)
            .await
            .map(|_| ())
    }

    /// Creates an empty endpoint.
    pub async fn create_endpoint(
        &self,
        id: &str,
        display_name: Option<&str>,
        description: &str,
    ) -> Result<Endpoint, RegistryError> {
        crate::validate_endpoint_id(id)?;
        // The index entry claims the id; a document left behind by an interrupted delete is
        // simply replaced.
        let mut created = false;
        self.update_index(|index| {
            created = index.endpoints.insert(id.to_string());
            Ok(())
        })
        .await?;
        if !created && self.store.etag(&endpoint_key(id)).await?.is_some() {
            return Err(RegistryError::AlreadyExists(format!(
                "endpoint '{id}' already exists"
            )));
        }
        let mut endpoint = Endpoint::new(id, display_name.unwrap_or(id));
        endpoint.description = description.to_string();
        endpoint.etag = self
            .store
            .put(&endpoint_key(id), to_json(&endpoint), Condition::Always)
            .await?;
        tracing::info!(endpoint = %id, "created endpoint");
        Ok(endpoint)
    }

    /// One endpoint, with its etag.
    pub async fn endpoint(&self, id: &str) -> Result<Endpoint, RegistryError> {
        crate::validate_endpoint_id(id)?;
        match read_doc::<Endpoint>(&self.store, &endpoint_key(id)).await? {
            Some((mut e, etag)) => {
                e.etag = etag;
                Ok(e)
            }
            None => Err(RegistryError::NotFound(format!(
                "endpoint '{id}' not found in {}",
                self.store.uri()
            ))),
        }
    }

    /// Every endpoint.
    pub async fn endpoints(&self) -> Result<Vec<Endpoint>, RegistryError> {
        let (ids, _) = self.endpoint_ids().await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.endpoint(&id).await {
                Ok(e) => out.push(e),
                Err(RegistryError::NotFound(_)) => {} // being created or deleted
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Deletes an endpoint; refused while models are deployed on it (as Vertex AI does).
    pub async fn delete_endpoint(&self, id: &str) -> Result<(), RegistryError> {
        let endpoint = self.endpoint(id).await?;
        if !endpoint.deployed_models.is_empty() {
            return Err(RegistryError::FailedPrecondition(format!(
                "endpoint '{id}' still has {} deployed model(s); undeploy them first",
                endpoint.deployed_models.len()
            )));
        }
        // Delete only the state we checked: a deploy racing with us wins, and we abort.
        self.store
            .put(
                &endpoint_key(id),
                to_json(&endpoint_tombstone(&endpoint)),
                Condition::IfMatch(endpoint.etag.clone()),
            )
            .await
            .map_err(|e| {
                if e.is_precondition_failed() {
                    RegistryError::Aborted(format!(
                        "endpoint '{id}' changed while being deleted; try again"
                    ))
                } else {
                    e.into()
                }
            })?;
        self.update_index(|index| {
            index.endpoints.remove(id);
            Ok(())
        })
        .await?;
        self.store.delete(&endpoint_key(id)).await?;
        tracing::info!(endpoint = %id, "deleted endpoint");
        Ok(())
    }

    /// Read-modify-write of an endpoint by compare-and-swap. With `expected_etag`, the change
    /// applies only to that exact state (ABORTED otherwise, as Vertex AI does); without it, a
    /// lost race re-reads and retries. `change` may run several times.
    pub async fn update_endpoint<T>(
        &self,
        id: &str,
        expected_etag: Option<&str>,
        mut change: impl FnMut(&mut Endpoint) -> Result<T, RegistryError>,
    ) -> Result<(Endpoint, T), RegistryError> {
        for attempt in 0..CAS_ATTEMPTS {
            let mut endpoint = self.endpoint(id).await?;
            let etag = std::mem::take(&mut endpoint.etag);
            if let Some(expected) = expected_etag {
                if expected != etag {
                    return Err(stale(id, expected, &etag));
                }
            }
            let out = change(&mut endpoint)?;
            endpoint.update_time = chrono::Utc::now();
            match self
                .store
                .put(
                    &endpoint_key(id),
                    to_json(&endpoint),
                    Condition::IfMatch(etag.clone()),
                )
                .await
            {
                Ok(new_etag) => {
                    endpoint.etag = new_etag;
                    return Ok((endpoint, out));
                }
                Err(e) if e.is_precondition_failed() => {
                    if let Some(expected) = expected_etag {
                        return Err(stale(id, expected, "a newer one"));
                    }
                    backoff(attempt).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(RegistryError::Aborted(format!(
            "endpoint '{id}' kept changing; gave up after {CAS_ATTEMPTS} attempts"
        )))
    }

    /// Deploys a model version (number, alias or `latest`, resolved now) on an endpoint.
    pub async fn deploy(
        &self,
        id: &str,
        request: &DeployRequest,
        expected_etag: Option<&str>,
    ) -> Result<(Endpoint, DeployedModel), RegistryError> {
        let version = self.resolve(&request.model, &request.version).await?;
        let manifest = self.manifest(&request.model, version).await?;
        let (endpoint, deployed) = self
            .update_endpoint(id, expected_etag, |e| {
                e.apply_deploy(&request.model, version, &manifest.sha256, request)
            })
            .await?;
        tracing::info!(endpoint = %id, deployed_model = %deployed.id, model = %deployed.model,
            version, shadow = deployed.shadow, "deployed");
        Ok((endpoint, deployed))
    }

    /// Undeploys a deployed model (see [`Endpoint::apply_undeploy`] for the rules).
    pub async fn undeploy(
        &self,
        id: &str,
        deployed_model_id: &str,
        traffic_split: Option<&TrafficSplit>,
        expected_etag: Option<&str>,
    ) -> Result<Endpoint, RegistryError> {
        let (endpoint, removed) = self
            .update_endpoint(id, expected_etag, |e| {
                e.apply_undeploy(deployed_model_id, traffic_split)
            })
            .await?;
        tracing::info!(endpoint = %id, deployed_model = %removed.id, "undeployed");
        Ok(endpoint)
    }

    /// Replaces an endpoint's traffic split.
    pub async fn set_traffic_split(
        &self,
        id: &str,
        split: &TrafficSplit,
        expected_etag: Option<&str>,
    ) -> Result<Endpoint, RegistryError> {
        let (endpoint, ()) = self
            .update_endpoint(id, expected_etag, |e| e.apply_split(split.clone()))
            .await?;
        tracing::info!(endpoint = %id, split = %crate::endpoint::show_split(split), "traffic split set");
        Ok(endpoint)
    }

    /// Sets an endpoint's prediction-log sampling rate (`None`: back to the server's default).
    pub async fn set_prediction_logging(
        &self,
        id: &str,
        sampling_rate: Option<f64>,
        expected_etag: Option<&str>,
    ) -> Result<Endpoint, RegistryError> {
        let (endpoint, ()) = self
            .update_endpoint(id, expected_etag, |e| {
                e.apply_prediction_logging(sampling_rate)
            })
            .await?;
        tracing::info!(endpoint = %id, ?sampling_rate, "prediction logging set");
        Ok(endpoint)
    }
}

/// What an endpoint document holds between the compare-and-swap that claims its deletion and the
/// removal of the file: no models, so nothing can serve from it.
fn endpoint_tombstone(endpoint: &Endpoint) -> Endpoint {
    let mut e = endpoint.clone();
    e.etag.clear();
    e.deployed_models.clear();
    e.traffic_split.clear();
    e.update_time = chrono::Utc::now();
    e
}

fn stale(id: &str, expected: &str, found: &str) -> RegistryError {
    RegistryError::Aborted(format!(
        "endpoint '{id}' changed since it was read (etag {expected}, now {found}); read it again \
         and retry"
    ))
}
