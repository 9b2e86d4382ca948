//! Arguments shared by the registry commands (`models`, `endpoints`): where the store is and how
//! to print.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use litehouse_registry::{Registry, TrafficSplit};

/// `--store` and `--json`.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Registry store: a directory, file:///path, or s3://bucket[/prefix] (S3 honors
    /// AWS_ENDPOINT_URL_S3 and the usual AWS credentials).
    #[arg(
        long,
        env = "LITEHOUSE_STORE",
        default_value = ".litehouse",
        global = true
    )]
    pub store: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

impl StoreArgs {
    pub async fn registry(&self) -> anyhow::Result<Registry> {
        Registry::open(&self.store)
            .await
            .with_context(|| format!("opening store {}", self.store))
    }
}

/// Runs an async command on a small runtime.
pub fn block_on<T>(f: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(f)
}

/// Runs an async command on a runtime with a worker per CPU (pipelines, schedules, serving).
pub fn block_on_threads<T>(
    f: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(f)
}

/// Prints a value as pretty JSON.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `1=90,2=10` -> a split; an empty string is the empty split.
pub fn parse_split(text: &str) -> anyhow::Result<TrafficSplit> {
    let mut split = TrafficSplit::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((id, pct)) = part.split_once('=') else {
            bail!("traffic split entry '{part}' is not ID=PERCENT (e.g. 1=90,2=10; 0 is the model being deployed)");
        };
        let pct: u32 = pct
            .trim()
            .parse()
            .with_context(|| format!("percent in '{part}' is not a whole number"))?;
        split.insert(id.trim().to_string(), pct);
    }
    Ok(split)
}

/// `KEY=VALUE` pairs into a map.
pub fn parse_pairs<V>(
    what: &str,
    pairs: &[String],
    value: impl Fn(&str) -> anyhow::Result<V>,
) -> anyhow::Result<BTreeMap<String, V>> {
    pairs
        .iter()
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .with_context(|| format!("{what} '{p}' is not KEY=VALUE"))?;
            Ok((
                k.trim().to_string(),
                value(v.trim()).with_context(|| format!("{what} '{p}'"))?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits() -> anyhow::Result<()> {
        let s = parse_split("1=90, 2=10")?;
        assert_eq!(s.get("1"), Some(&90));
        assert_eq!(s.get("2"), Some(&10));
        assert!(parse_split("")?.is_empty());
        assert!(parse_split("1:90").is_err());
        assert!(parse_split("1=x").is_err());
        Ok(())
    }
}
