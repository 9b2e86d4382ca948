//! Champion and challenger on an endpoint: roles are registry aliases, traffic is the
//! endpoint's split. Each move changes the endpoint in one compare-and-swap (so a reader never
//! sees half a move), then moves the aliases, each recorded with who moved it and why.

use litehouse_registry::{DeployRequest, Endpoint, Registry, RegistryError, TrafficSplit};

use crate::error::{PipelineError, Result};

/// The serving model.
pub const CHAMPION: &str = "champion";
/// The candidate taking a share of traffic beside it.
pub const CHALLENGER: &str = "challenger";
/// The champion before the last promotion, which `rollback` restores.
pub const PREVIOUS: &str = "previous-champion";

/// What a move did.
#[derive(Debug, Clone)]
pub struct Moved {
    /// `champion` or `challenger`.
    pub role: String,
    /// The deployed model id of the version that moved.
    pub deployed_model: String,
    /// The endpoint after the move.
    pub endpoint: Endpoint,
    /// One line for logs.
    pub message: String,
}

fn ours<'a>(
    e: &'a Endpoint,
    name: &'a str,
) -> impl Iterator<Item = &'a litehouse_registry::DeployedModel> {
    e.deployed_models
        .iter()
        .filter(move |d| d.model == name && !d.shadow)
}

fn find(e: &Endpoint, name: &str, version: u64) -> Option<String> {
    ours(e, name)
        .find(|d| d.version == version)
        .map(|d| d.id.clone())
}

/// Deploys `version` unless it is there; returns its deployed model id. The split is unchanged.
fn ensure_deployed(
    e: &mut Endpoint,
    name: &str,
    version: u64,
    sha256: &str,
) -> std::result::Result<String, RegistryError> {
    if let Some(id) = find(e, name, version) {
        return Ok(id);
    }
    let request = DeployRequest {
        model: name.into(),
        version: version.to_string(),
        display_name: Some(format!("{name} v{version}")),
        traffic_split: None,
        shadow: false,
    };
    Ok(e.apply_deploy(name, version, sha256, &request)?.id)
}

/// Sets `split`, then undeploys every serving deployment of `name` the split leaves out.
fn settle(
    e: &mut Endpoint,
    name: &str,
    split: TrafficSplit,
) -> std::result::Result<(), RegistryError> {
    e.apply_split(split.clone())?;
    let gone: Vec<String> = ours(e, name)
        .filter(|d| !split.contains_key(&d.id))
        .map(|d| d.id.clone())
        .collect();
    for id in gone {
        e.apply_undeploy(&id, None)?;
    }
    Ok(())
}

async fn endpoint_exists(registry: &Registry, id: &str, name: &str) -> Result<()> {
    match registry.endpoint(id).await {
        Ok(_) => Ok(()),
        Err(RegistryError::NotFound(_)) => {
            registry
                .create_endpoint(
                    id,
                    Some(id),
                    &format!("serves model '{name}' (created by a pipeline)"),
                )
                .await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Deploys a new version: as champion at 100% when the model has none (or it is the champion),
/// else as challenger at `traffic` percent beside the champion, replacing the previous
/// challenger. Idempotent: deploying what is already deployed in that role changes nothing.
pub async fn deploy(
    registry: &Registry,
    name: &str,
    version: u64,
    endpoint: &str,
    traffic: u32,
    by: &str,
) -> Result<Moved> {
    if !(1..=99).contains(&traffic) {
        return Err(PipelineError::Invalid(format!(
            "challenger traffic must be 1-99 percent, got {traffic}"
        )));
    }
    let aliases = registry.aliases(name).await?.aliases;
    let champion = aliases.get(CHAMPION).copied();
    let sha = registry.manifest(name, version).await?.sha256;
    endpoint_exists(registry, endpoint, name).await?;
    match champion.filter(|&h| h != version) {
        None => {
            let (e, id) = registry
                .update_endpoint(endpoint, None, |e| {
                    let id = ensure_deployed(e, name, version, &sha)?;
                    settle(e, name, [(id.clone(), 100)].into())?;
                    Ok(id)
                })
                .await?;
            if champion.is_none() {
                registry
                    .set_alias(
                        name,
                        CHAMPION,
                        Some(version),
                        by,
                        "first model: champion at 100%",
                    )
                    .await?;
            }
            Ok(Moved {
                role: CHAMPION.into(),
                deployed_model: id.clone(),
                endpoint: e,
                message: format!("{name} v{version} is champion at 100% on endpoint '{endpoint}' (deployed model {id})"),
            })
        }
        Some(h) => {
            let h_sha = registry.manifest(name, h).await?.sha256;
            let (e, id) = registry
                .update_endpoint(endpoint, None, |e| {
                    let cid = ensure_deployed(e, name, h, &h_sha)?;
                    let id = ensure_deployed(e, name, version, &sha)?;
                    settle(
                        e,
                        name,
                        [(cid, 100 - traffic), (id.clone(), traffic)].into(),
                    )?;
                    Ok(id)
                })
                .await?;
            if aliases.get(CHALLENGER) != Some(&version) {
                registry
                    .set_alias(
                        name,
                        CHALLENGER,
                        Some(version),
                        by,
                        &format!("passed the gate: challenger at {traffic}% beside champion v{h}"),
                    )
                    .await?;
            }
            Ok(Moved {
                role: CHALLENGER.into(),
                deployed_model: id.clone(),
                endpoint: e,
                message: format!(
                    "{name} v{version} is challenger at {traffic}% beside champion v{h} on endpoint '{endpoint}' (deployed model {id})"
                ),
            })
        }
    }
}

/// Makes the challenger champion at 100% and retires the old champion (kept as
/// `previous-champion` for [`rollback`]).
pub async fn promote(
    registry: &Registry,
    name: &str,
    endpoint: &str,
    by: &str,
    reason: &str,
) -> Result<Moved> {
    let aliases = registry.aliases(name).await?.aliases;
    let Some(&c) = aliases.get(CHALLENGER) else {
        return Err(PipelineError::Invalid(format!(
            "model '{name}' has no challenger to promote"
        )));
    };
    let old = aliases.get(CHAMPION).copied();
    let sha = registry.manifest(name, c).await?.sha256;
    let (e, id) = registry
        .update_endpoint(endpoint, None, |e| {
            let id = ensure_deployed(e, name, c, &sha)?;
            settle(e, name, [(id.clone(), 100)].into())?;
            Ok(id)
        })
        .await?;
    let why = if reason.is_empty() {
        "promoted"
    } else {
        reason
    };
    if let Some(h) = old {
        registry
            .set_alias(
                name,
                PREVIOUS,
                Some(h),
                by,
                &format!("retired by the promotion of v{c}"),
            )
            .await?;
    }
    registry.set_alias(name, CHAMPION, Some(c), by, why).await?;
    registry
        .set_alias(
            name,
            CHALLENGER,
            None,
            by,
            &format!("promoted to champion: {why}"),
        )
        .await?;
    Ok(Moved {
        role: CHAMPION.into(),
        deployed_model: id.clone(),
        endpoint: e,
        message: format!(
            "{name} v{c} is champion at 100% on endpoint '{endpoint}' (deployed model {id}){}",
            old.map_or(String::new(), |h| format!("; v{h} retired"))
        ),
    })
}

/// Restores the previous champion at 100%; the current champion and any challenger leave the
/// endpoint.
pub async fn rollback(
    registry: &Registry,
    name: &str,
    endpoint: &str,
    by: &str,
    reason: &str,
) -> Result<Moved> {
    let aliases = registry.aliases(name).await?.aliases;
    let Some(&p) = aliases.get(PREVIOUS) else {
        return Err(PipelineError::Invalid(format!(
            "model '{name}' has no previous champion to roll back to (nothing was promoted)"
        )));
    };
    let current = aliases.get(CHAMPION).copied();
    let sha = registry.manifest(name, p).await?.sha256;
    let (e, id) = registry
        .update_endpoint(endpoint, None, |e| {
            let id = ensure_deployed(e, name, p, &sha)?;
            settle(e, name, [(id.clone(), 100)].into())?;
            Ok(id)
        })
        .await?;
    let why = if reason.is_empty() {
        "rolled back"
    } else {
        reason
    };
    registry.set_alias(name, CHAMPION, Some(p), by, why).await?;
    registry
        .set_alias(
            name,
            PREVIOUS,
            None,
            by,
            &format!("restored as champion: {why}"),
        )
        .await?;
    if aliases.contains_key(CHALLENGER) {
        registry
            .set_alias(
                name,
                CHALLENGER,
                None,
                by,
                &format!("undeployed by a rollback: {why}"),
            )
            .await?;
    }
    Ok(Moved {
        role: CHAMPION.into(),
        deployed_model: id.clone(),
        endpoint: e,
        message: format!(
            "{name} v{p} is champion again at 100% on endpoint '{endpoint}' (deployed model {id}){}",
            current.map_or(String::new(), |c| format!("; v{c} undeployed"))
        ),
    })
}
