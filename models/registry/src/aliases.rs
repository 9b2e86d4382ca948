//! Aliases (`champion`, `challenger`, any name) per model, moved atomically, with a history of
//! who moved them and why.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{read_doc, Registry, RegistryError};

/// How many alias moves `aliases.json` remembers.
const HISTORY: usize = 200;

/// `models/{name}/aliases.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Aliases {
    /// alias -> version.
    pub aliases: BTreeMap<String, u64>,
    /// The latest moves, oldest first.
    #[serde(default)]
    pub history: Vec<AliasMove>,
}

/// One alias move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasMove {
    /// The alias.
    pub alias: String,
    /// Version it pointed at before, if any.
    pub from: Option<u64>,
    /// Version it points at now; `None` when removed.
    pub to: Option<u64>,
    /// When.
    pub at: DateTime<Utc>,
    /// Who or what moved it (user, pipeline run).
    #[serde(default)]
    pub by: String,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

pub(crate) fn aliases_key(name: &str) -> String {
    format!("models/{name}/aliases.json")
}

impl Registry {
    /// The aliases of a model (empty when it has none).
    pub async fn aliases(&self, name: &str) -> Result<Aliases, RegistryError> {
        crate::validate_model_name(name)?;
        Ok(read_doc(&self.store, &aliases_key(name))
            .await?
            .map(|(a, _)| a)
            .unwrap_or_default())
    }

    /// Points `alias` at `version` (which must exist), or removes it when `version` is `None`.
    /// Atomic: concurrent moves of any alias of the model are serialized by compare-and-swap.
    pub async fn set_alias(
        &self,
        name: &str,
        alias: &str,
        version: Option<u64>,
        by: &str,
        reason: &str,
    ) -> Result<Aliases, RegistryError> {
        crate::validate_alias(alias)?;
        if let Some(v) = version {
            self.manifest(name, v).await?;
        }
        self.update_aliases(name, |doc| {
            let from = doc.aliases.get(alias).copied();
            match version {
                Some(v) => {
                    doc.aliases.insert(alias.to_string(), v);
                }
                None if from.is_none() => {
                    return Err(RegistryError::NotFound(format!(
                        "model '{name}' has no alias '{alias}'"
                    )))
                }
                None => {
                    doc.aliases.remove(alias);
                }
            }
            doc.history.push(AliasMove {
                alias: alias.to_string(),
                from,
                to: version,
                at: Utc::now(),
                by: by.to_string(),
                reason: reason.to_string(),
            });
            Ok(())
        })
        .await
    }

    pub(crate) async fn update_aliases(
        &self,
        name: &str,
        mut change: impl FnMut(&mut Aliases) -> Result<(), RegistryError>,
    ) -> Result<Aliases, RegistryError> {
        let what = format!("aliases of model '{name}'");
        crate::update_doc(
            &self.store,
            &aliases_key(name),
            &what,
            |doc: &mut Aliases| {
                change(doc)?;
                let excess = doc.history.len().saturating_sub(HISTORY);
                doc.history.drain(..excess);
                Ok(())
            },
        )
        .await
    }
}
