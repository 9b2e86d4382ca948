//! An endpoint document and Vertex AI's rules for deploying, undeploying and splitting traffic.
//! Pure functions on the document; `endpoints.rs` wraps them in compare-and-swap.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::RegistryError;

/// deployedModelId -> percent of traffic. Sums to 100, or is empty (the endpoint takes none).
pub type TrafficSplit = BTreeMap<String, u32>;

/// A model version deployed on an endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployedModel {
    /// Short digit string, unique within the endpoint and never reused.
    pub id: String,
    /// Model name in the registry.
    pub model: String,
    /// Model version.
    pub version: u64,
    /// Display name (`modelDisplayName` in answers).
    pub display_name: String,
    /// sha256 of the artifact when it was deployed; loads must match it.
    pub sha256: String,
    /// When it was deployed.
    pub create_time: DateTime<Utc>,
    /// A shadow gets a copy of the endpoint's traffic; its answers are logged, never returned,
    /// and it never appears in the traffic split.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
}

/// `endpoints/{id}.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// Endpoint id (used in routes).
    pub id: String,
    /// Human name.
    pub display_name: String,
    /// Human description.
    #[serde(default)]
    pub description: String,
    /// Deployed models, in deployment order.
    #[serde(default)]
    pub deployed_models: Vec<DeployedModel>,
    /// deployedModelId -> percent.
    #[serde(default)]
    pub traffic_split: TrafficSplit,
    /// When it was created.
    pub create_time: DateTime<Utc>,
    /// Last change.
    pub update_time: DateTime<Utc>,
    /// The next deployed model id to hand out.
    pub next_deployed_model_id: u64,
    /// Request-response logging (Vertex AI's `predictRequestResponseLoggingConfig`): absent
    /// means the server's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction_logging: Option<PredictionLogging>,
    /// Version of this document (the store's etag); pass it back to guard a read-modify-write.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub etag: String,
}

/// Which share of an endpoint's requests is logged with its response.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PredictionLogging {
    /// Fraction of requests logged, `0.0` (none) to `1.0` (all).
    pub sampling_rate: f64,
}

impl PredictionLogging {
    /// A checked rate.
    pub fn new(sampling_rate: f64) -> Result<Self, RegistryError> {
        if !(0.0..=1.0).contains(&sampling_rate) {
            return Err(RegistryError::InvalidArgument(format!(
                "a prediction-log sampling rate is a fraction from 0 to 1, got {sampling_rate}"
            )));
        }
        Ok(PredictionLogging { sampling_rate })
    }
}

/// What to deploy.
#[derive(Debug, Clone, Default)]
pub struct DeployRequest {
    /// Model name.
    pub model: String,
    /// Version, alias or `latest`.
    pub version: String,
    /// Display name (default: `{model} v{version}`).
    pub display_name: Option<String>,
    /// New traffic split; key `"0"` means the model being deployed. `None` leaves the split as
    /// it is, so the new model takes no traffic.
    pub traffic_split: Option<TrafficSplit>,
    /// Deploy as a shadow (mirrored traffic, answers logged only).
    pub shadow: bool,
}

impl Endpoint {
    /// A new, empty endpoint.
    pub fn new(id: &str, display_name: &str) -> Self {
        let now = Utc::now();
        Endpoint {
            id: id.into(),
            display_name: display_name.into(),
            description: String::new(),
            deployed_models: Vec::new(),
            traffic_split: TrafficSplit::new(),
            create_time: now,
            update_time: now,
            next_deployed_model_id: 1,
            prediction_logging: None,
            etag: String::new(),
        }
    }

    /// Sets (or with `None` clears) request-response logging; the rate must be in `0..=1`.
    pub fn apply_prediction_logging(
        &mut self,
        sampling_rate: Option<f64>,
    ) -> Result<(), RegistryError> {
        self.prediction_logging = match sampling_rate {
            None => None,
            Some(rate) => Some(PredictionLogging::new(rate)?),
        };
        Ok(())
    }

    /// A deployed model by id.
    pub fn deployed(&self, id: &str) -> Option<&DeployedModel> {
        self.deployed_models.iter().find(|d| d.id == id)
    }

    /// Checks a split against this endpoint: known, non-shadow deployed models; percents that
    /// sum to 100; or empty.
    pub fn validate_split(&self, split: &TrafficSplit) -> Result<(), RegistryError> {
        for (id, pct) in split {
            match self.deployed(id) {
                None => {
                    return Err(RegistryError::InvalidArgument(format!(
                        "traffic split names deployed model '{id}', which is not deployed on \
                         endpoint '{}' (deployed: {})",
                        self.id,
                        self.deployed_ids()
                    )))
                }
                Some(d) if d.shadow && *pct > 0 => {
                    return Err(RegistryError::InvalidArgument(format!(
                        "deployed model '{id}' is a shadow: it gets a copy of the traffic and \
                         cannot hold a share of the split"
                    )))
                }
                Some(_) => {}
            }
            if *pct > 100 {
                return Err(RegistryError::InvalidArgument(format!(
                    "traffic split gives {pct}% to deployed model '{id}'; percents are 0 to 100"
                )));
            }
        }
        let total: u32 = split.values().sum();
        if !split.is_empty() && total != 100 {
            return Err(RegistryError::InvalidArgument(format!(
                "traffic split must sum to 100 (or be empty), got {total}: {}",
                show_split(split)
            )));
        }
        Ok(())
    }

    fn deployed_ids(&self) -> String {
        if self.deployed_models.is_empty() {
            "none".into()
        } else {
            let ids: Vec<&str> = self.deployed_models.iter().map(|d| d.id.as_str()).collect();
            ids.join(", ")
        }
    }

    /// Adds a deployed model (version already resolved) and applies the optional split, where
    /// key `"0"` means the new model.
    pub fn apply_deploy(
        &mut self,
        model: &str,
        version: u64,
        sha256: &str,
        request: &DeployRequest,
    ) -> Result<DeployedModel, RegistryError> {
        let id = self.next_deployed_model_id.to_string();
        let deployed = DeployedModel {
            id: id.clone(),
            model: model.into(),
            version,
            display_name: request
                .display_name
                .clone()
                .unwrap_or_else(|| format!("{model} v{version}")),
            sha256: sha256.into(),
            create_time: Utc::now(),
            shadow: request.shadow,
        };
        let mut next = self.clone();
        next.deployed_models.push(deployed.clone());
        next.next_deployed_model_id += 1;
        if let Some(split) = &request.traffic_split {
            let split: TrafficSplit = split
                .iter()
                .map(|(k, v)| (if k == "0" { id.clone() } else { k.clone() }, *v))
                .collect();
            next.validate_split(&split)?;
            next.traffic_split = split;
        }
        *self = next;
        Ok(deployed)
    }

    /// Removes a deployed model. Refused while it holds traffic, unless `split` (which must not
    /// name it) takes its share away; undeploying the last model leaves the split empty.
    pub fn apply_undeploy(
        &mut self,
        id: &str,
        split: Option<&TrafficSplit>,
    ) -> Result<DeployedModel, RegistryError> {
        let Some(pos) = self.deployed_models.iter().position(|d| d.id == id) else {
            return Err(RegistryError::NotFound(format!(
                "deployed model '{id}' not found on endpoint '{}' (deployed: {})",
                self.id,
                self.deployed_ids()
            )));
        };
        let mut next = self.clone();
        let removed = next.deployed_models.remove(pos);
        let serving_left = next.deployed_models.iter().any(|d| !d.shadow);
        match split {
            Some(split) => {
                if split.contains_key(id) {
                    return Err(RegistryError::InvalidArgument(format!(
                        "the new traffic split still names deployed model '{id}', which is being \
                         undeployed"
                    )));
                }
                next.validate_split(split)?;
                next.traffic_split = split.clone();
            }
            None => {
                let share = next.traffic_split.remove(id).unwrap_or(0);
                if share > 0 && serving_left {
                    return Err(RegistryError::FailedPrecondition(format!(
                        "deployed model '{id}' holds {share}% of endpoint '{}' traffic; pass a \
                         new traffic split without it (current: {})",
                        self.id,
                        show_split(&self.traffic_split)
                    )));
                }
                if !serving_left {
                    next.traffic_split.clear();
                }
            }
        }
        *self = next;
        Ok(removed)
    }

    /// Replaces the traffic split.
    pub fn apply_split(&mut self, split: TrafficSplit) -> Result<(), RegistryError> {
        self.validate_split(&split)?;
        self.traffic_split = split;
        Ok(())
    }
}

/// `1=90, 2=10` for messages.
pub fn show_split(split: &TrafficSplit) -> String {
    TrafficSplitText(split).to_string()
}

/// Displays a traffic split as `1=90, 2=10` (or `empty`).
#[derive(Debug, Clone, Copy)]
pub struct TrafficSplitText<'a>(pub &'a TrafficSplit);

impl std::fmt::Display for TrafficSplitText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("empty (no traffic)");
        }
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        f.write_str(&parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn split(pairs: &[(&str, u32)]) -> TrafficSplit {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn deploy(ep: &mut Endpoint, split_: Option<TrafficSplit>) -> Result<String, RegistryError> {
        let req = DeployRequest {
            model: "m".into(),
            version: "1".into(),
            traffic_split: split_,
            ..Default::default()
        };
        ep.apply_deploy("m", 1, "abc", &req).map(|d| d.id)
    }

    #[test]
    fn vertex_rules() {
        let mut ep = Endpoint::new("e", "e");
        // No split supplied: the new model takes no traffic.
        assert_eq!(deploy(&mut ep, None).unwrap(), "1");
        assert!(ep.traffic_split.is_empty());
        // "0" is the model being deployed.
        assert_eq!(deploy(&mut ep, Some(split(&[("0", 100)]))).unwrap(), "2");
        assert_eq!(ep.traffic_split, split(&[("2", 100)]));
        assert_eq!(
            deploy(&mut ep, Some(split(&[("2", 90), ("0", 10)]))).unwrap(),
            "3"
        );
        assert_eq!(ep.traffic_split, split(&[("2", 90), ("3", 10)]));

        // Bad splits change nothing.
        let before = ep.clone();
        let err = deploy(&mut ep, Some(split(&[("2", 90), ("0", 20)]))).unwrap_err();
        assert!(err.to_string().contains("sum to 100"), "{err}");
        let err = ep.apply_split(split(&[("9", 100)])).unwrap_err();
        assert!(err.to_string().contains("'9'"), "{err}");
        assert_eq!(ep, before);

        // Undeploy with traffic is refused unless a split removes it.
        let err = ep.apply_undeploy("3", None).unwrap_err();
        assert!(matches!(err, RegistryError::FailedPrecondition(_)), "{err}");
        assert!(err.to_string().contains("10%"), "{err}");
        let err = ep
            .apply_undeploy("3", Some(&split(&[("3", 100)])))
            .unwrap_err();
        assert!(err.to_string().contains("still names"), "{err}");
        ep.apply_undeploy("3", Some(&split(&[("2", 100)]))).unwrap();
        // A model without traffic undeploys freely.
        ep.apply_undeploy("1", None).unwrap();
        // The last one goes even with traffic, and the split ends empty.
        ep.apply_undeploy("2", None).unwrap();
        assert!(ep.traffic_split.is_empty() && ep.deployed_models.is_empty());
        // Ids are never reused.
        assert_eq!(deploy(&mut ep, None).unwrap(), "4");
        let err = ep.apply_undeploy("2", None).unwrap_err();
        assert!(matches!(err, RegistryError::NotFound(_)), "{err}");
    }

    #[test]
    fn shadows_take_no_split() {
        let mut ep = Endpoint::new("e", "e");
        deploy(&mut ep, Some(split(&[("0", 100)]))).unwrap();
        let req = DeployRequest {
            shadow: true,
            traffic_split: Some(split(&[("1", 50), ("0", 50)])),
            ..Default::default()
        };
        let err = ep.apply_deploy("m", 2, "abc", &req).unwrap_err();
        assert!(err.to_string().contains("shadow"), "{err}");
        let req = DeployRequest {
            shadow: true,
            ..Default::default()
        };
        let shadow = ep.apply_deploy("m", 2, "abc", &req).unwrap();
        assert!(shadow.shadow);
        assert_eq!(ep.traffic_split, split(&[("1", 100)]));
        // The last serving model goes; the shadow stays, with no traffic.
        ep.apply_undeploy("1", None).unwrap();
        assert!(ep.traffic_split.is_empty());
    }
}
