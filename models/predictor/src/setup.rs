//! Where a front door's models come from, decided once by one set of options: every model in a
//! directory, or the endpoints of a registry store kept live. `litehouse serve`, the predict
//! Lambda and batch jobs all open their catalog here, so their defaults cannot drift apart.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::catalog::{self, SharedCatalog};
use crate::error::{Code, PredictError};
use crate::live::LiveCatalog;

/// The models directory used when none is given (`LITEHOUSE_MODELS`).
pub const DEFAULT_MODELS_DIR: &str = "models/catalog";

/// Seconds between registry checks when a server polls in the background.
pub const DEFAULT_POLL_SECS: f64 = 2.0;

/// Seconds between registry checks when requests trigger them (a Lambda, which has no
/// background time): a check sits in a request's path, so it runs less often.
pub const DEFAULT_LAZY_SECS: f64 = 30.0;

/// How a front door finds its models.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogOptions {
    /// Directory of models (`NAME.tflite` + optional `NAME.json`, or `NAME/<version>/`).
    pub models: PathBuf,
    /// A registry store (`s3://bucket/prefix` or a directory); when set, its endpoints are
    /// served instead of `models`.
    pub store: Option<String>,
    /// Time between registry checks; `None` takes [`DEFAULT_POLL_SECS`] or
    /// [`DEFAULT_LAZY_SECS`] by how the front door refreshes.
    pub refresh: Option<Duration>,
}

impl Default for CatalogOptions {
    fn default() -> Self {
        CatalogOptions {
            models: PathBuf::from(DEFAULT_MODELS_DIR),
            store: None,
            refresh: None,
        }
    }
}

/// How the registry is checked for endpoint changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// A background task checks on a timer (a long-running server).
    Poll,
    /// Requests check when a check is due (a Lambda).
    Lazy,
}

impl CatalogOptions {
    /// Options from `LITEHOUSE_MODELS`, `LITEHOUSE_STORE` and `LITEHOUSE_REFRESH_SECS`, the
    /// same variables `litehouse serve` reads.
    pub fn from_env() -> Result<Self, PredictError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let refresh = var("LITEHOUSE_REFRESH_SECS")
            .map(|v| parse_secs(&v))
            .transpose()
            .map_err(|e| PredictError::invalid(format!("LITEHOUSE_REFRESH_SECS: {e}")))?;
        Ok(CatalogOptions {
            models: var("LITEHOUSE_MODELS").map_or_else(|| DEFAULT_MODELS_DIR.into(), Into::into),
            store: var("LITEHOUSE_STORE"),
            refresh,
        })
    }

    /// The check interval for `mode`.
    pub fn refresh_every(&self, mode: Refresh) -> Duration {
        self.refresh.unwrap_or_else(|| {
            Duration::from_secs_f64(match mode {
                Refresh::Poll => DEFAULT_POLL_SECS,
                Refresh::Lazy => DEFAULT_LAZY_SECS,
            })
        })
    }
}

/// Seconds as a duration: a finite, non-negative number.
pub fn parse_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("expected a number of seconds, got '{text}'"))?;
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("expected a non-negative number of seconds, got '{text}'"))
}

/// A catalog ready to answer, and its live source when it follows a registry.
#[derive(Debug)]
pub struct OpenedCatalog {
    /// The models and endpoints.
    pub catalog: SharedCatalog,
    /// Set when the catalog follows a registry store; the caller decides how it refreshes
    /// ([`LiveCatalog::spawn_poller`] or [`LiveCatalog::refresh_if_due`]).
    pub live: Option<Arc<LiveCatalog>>,
    /// Where the models came from, for messages.
    pub source: String,
}

/// Opens the catalog `options` describe. A models directory must yield at least one model; a
/// store may have no endpoint yet (a server waits for one). Models that fail to load are kept
/// in [`crate::Catalog::failures`] and logged; the rest are served.
pub async fn open_catalog(
    options: &CatalogOptions,
    mode: Refresh,
) -> Result<OpenedCatalog, PredictError> {
    let opened = match &options.store {
        Some(uri) => {
            let registry = litehouse_registry::Registry::open(uri)
                .await
                .map_err(|e| PredictError::from(e).context(format!("opening store {uri}")))?;
            let target = catalog::shared(crate::Catalog::default());
            let live = LiveCatalog::new(registry, options.refresh_every(mode), target.clone());
            live.load()
                .await
                .map_err(|e| e.context(format!("loading endpoints from {uri}")))?;
            OpenedCatalog {
                catalog: target,
                live: Some(live),
                source: uri.clone(),
            }
        }
        None => {
            let dir = options.models.clone();
            let loaded = tokio::task::spawn_blocking(move || catalog::load_dir(&dir))
                .await
                .map_err(|e| PredictError::internal(format!("loading models: {e}")))??;
            if loaded.models.is_empty() {
                let why = match loaded.failures.first() {
                    Some(f) => format!("; '{}' failed: {}", f.name, f.error),
                    None => " (put NAME.tflite files there)".to_string(),
                };
                return Err(PredictError::new(
                    Code::FailedPrecondition,
                    format!(
                        "no model could be loaded from {}{why}",
                        options.models.display()
                    ),
                ));
            }
            OpenedCatalog {
                catalog: catalog::shared(loaded),
                live: None,
                source: options.models.display().to_string(),
            }
        }
    };
    for f in &opened.catalog.load().failures {
        tracing::warn!(model = %f.name, version = f.version, error = %f.error, "model not served");
    }
    Ok(opened)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn refresh_defaults_follow_the_mode_unless_set() {
        let mut options = CatalogOptions::default();
        assert_eq!(options.models, PathBuf::from(DEFAULT_MODELS_DIR));
        assert_eq!(options.refresh_every(Refresh::Poll), Duration::from_secs(2));
        assert_eq!(
            options.refresh_every(Refresh::Lazy),
            Duration::from_secs(30)
        );
        options.refresh = Some(Duration::ZERO);
        assert_eq!(options.refresh_every(Refresh::Lazy), Duration::ZERO);
    }

    #[test]
    fn seconds_must_be_finite_and_non_negative() {
        assert_eq!(parse_secs("0.5"), Ok(Duration::from_millis(500)));
        for bad in ["-1", "soon", "inf", "NaN"] {
            assert!(parse_secs(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn an_empty_models_directory_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let options = CatalogOptions {
            models: dir.path().to_path_buf(),
            ..CatalogOptions::default()
        };
        let e = open_catalog(&options, Refresh::Poll).await.unwrap_err();
        assert_eq!(e.code, Code::FailedPrecondition);
        assert!(e.message.contains(&dir.path().display().to_string()), "{e}");
    }
}
