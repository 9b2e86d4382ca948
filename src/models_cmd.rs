//! `litehouse models upload|list|show|alias|delete`: the model registry.

use std::collections::BTreeMap;

use anyhow::Context;
use litehouse_registry::{Lineage, Manifest, UploadRequest};

use crate::registry_args::{block_on, parse_pairs, print_json, StoreArgs};

/// Arguments of `models`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Register a .tflite file (path or s3:// URI) as the next version of a model.
    Upload(Upload),
    /// List models with their versions and aliases.
    List,
    /// Show a model's versions, or one version's manifest (number, alias or "latest").
    Show {
        /// Model name.
        name: String,
        /// Version, alias or "latest".
        version: Option<String>,
    },
    /// Point an alias (champion, challenger, any name) at a version, or remove it.
    Alias {
        /// Model name.
        name: String,
        /// Alias.
        alias: String,
        /// Version, alias or "latest" to point at (omit with --remove).
        #[arg(required_unless_present = "remove")]
        version: Option<String>,
        /// Remove the alias.
        #[arg(long, conflicts_with = "version")]
        remove: bool,
        /// Why (kept in the alias history).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Delete a version (refused while it is deployed).
    Delete {
        /// Model name.
        name: String,
        /// Version number.
        version: u64,
    },
}

#[derive(Debug, clap::Args)]
struct Upload {
    /// The model: a path, file:///path or s3://bucket/key.
    file: String,
    /// Model name (created on first upload).
    #[arg(long)]
    name: String,
    /// Description.
    #[arg(long, default_value = "")]
    description: String,
    /// Serving config JSON (image preprocessing, class labels; see docs/serving.md).
    #[arg(long)]
    serving_config: Option<std::path::PathBuf>,
    /// Evaluation metric, NAME=NUMBER (repeatable).
    #[arg(long = "metric")]
    metrics: Vec<String>,
    /// Label, KEY=VALUE (repeatable).
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Training parameter, KEY=VALUE; the value is parsed as JSON when it can be (repeatable).
    #[arg(long = "param")]
    params: Vec<String>,
    /// Pipeline run (or job) that produced the model.
    #[arg(long)]
    source_run: Option<String>,
    /// Hash of the training data snapshot.
    #[arg(long)]
    data_hash: Option<String>,
    /// Aliases to point at the new version (repeatable).
    #[arg(long = "alias")]
    aliases: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    block_on(async move {
        let registry = args.store.registry().await?;
        let json = args.store.json;
        match args.command {
            Command::Upload(u) => {
                let bytes = litehouse_store::read_uri(&u.file)
                    .await
                    .with_context(|| format!("reading {}", u.file))?;
                let serving = match &u.serving_config {
                    Some(path) => {
                        let config = litehouse_predictor::ModelConfig::read(path)?;
                        Some(serde_json::to_value(config)?)
                    }
                    None => None,
                };
                let request = UploadRequest {
                    name: u.name.clone(),
                    description: u.description,
                    metrics: parse_pairs("metric", &u.metrics, |v| {
                        v.parse::<f64>().context("not a number")
                    })?,
                    labels: parse_pairs("label", &u.labels, |v| Ok(v.to_string()))?,
                    lineage: Lineage {
                        source_run: u.source_run,
                        data_hash: u.data_hash,
                        params: parse_pairs("param", &u.params, |v| {
                            Ok(serde_json::from_str(v)
                                .unwrap_or_else(|_| serde_json::Value::String(v.into())))
                        })?,
                        source_uri: Some(u.file.clone()),
                    },
                    serving,
                };
                let manifest = registry.upload(bytes, request).await?;
                for alias in &u.aliases {
                    registry
                        .set_alias(
                            &u.name,
                            alias,
                            Some(manifest.version),
                            "litehouse models upload",
                            "set at upload",
                        )
                        .await?;
                }
                if json {
                    print_json(&manifest)?;
                } else {
                    println!(
                        "registered {} version {} (sha256 {}, {} bytes)",
                        manifest.name, manifest.version, manifest.sha256, manifest.size_bytes
                    );
                }
            }
            Command::List => {
                let models = registry.models().await?;
                if json {
                    print_json(&models)?;
                } else if models.is_empty() {
                    println!("no models in {}", registry.store().uri());
                } else {
                    println!("{:<24} {:>8} {:>7}  ALIASES", "NAME", "VERSIONS", "LATEST");
                    for m in models {
                        let aliases: Vec<String> =
                            m.aliases.iter().map(|(a, v)| format!("{a}={v}")).collect();
                        println!(
                            "{:<24} {:>8} {:>7}  {}",
                            m.name,
                            m.versions.len(),
                            m.versions.last().copied().unwrap_or_default(),
                            aliases.join(", ")
                        );
                    }
                }
            }
            Command::Show { name, version } => match version {
                Some(reference) => {
                    let v = registry.resolve(&name, &reference).await?;
                    let manifest = registry.manifest(&name, v).await?;
                    if json {
                        print_json(&manifest)?;
                    } else {
                        print_manifest(&manifest);
                    }
                }
                None => {
                    let versions = registry.versions(&name).await?;
                    let aliases = registry.aliases(&name).await?;
                    if json {
                        print_json(&serde_json::json!({
                            "name": name,
                            "versions": versions,
                            "aliases": aliases.aliases,
                            "aliasHistory": aliases.history,
                        }))?;
                    } else {
                        let by_version: BTreeMap<u64, Vec<&str>> =
                            aliases
                                .aliases
                                .iter()
                                .fold(BTreeMap::new(), |mut m, (a, v)| {
                                    m.entry(*v).or_insert_with(Vec::new).push(a.as_str());
                                    m
                                });
                        println!(
                            "{:>7}  {:<25} {:<16} {:<30} ALIASES",
                            "VERSION", "CREATED", "SHA256", "METRICS"
                        );
                        for m in versions {
                            let metrics: Vec<String> =
                                m.metrics.iter().map(|(k, v)| format!("{k}={v}")).collect();
                            println!(
                                "{:>7}  {:<25} {:<16} {:<30} {}",
                                m.version,
                                m.created.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                                &m.sha256[..16.min(m.sha256.len())],
                                metrics.join(","),
                                by_version
                                    .get(&m.version)
                                    .map(|a| a.join(", "))
                                    .unwrap_or_default()
                            );
                        }
                        if !aliases.history.is_empty() {
                            println!("\nalias history (newest last):");
                            let v = |x: Option<u64>| x.map_or("-".to_string(), |v| format!("v{v}"));
                            for h in &aliases.history {
                                println!(
                                    "  {}  {:<18} {} -> {}  by {}{}",
                                    h.at.format("%Y-%m-%dT%H:%M:%SZ"),
                                    h.alias,
                                    v(h.from),
                                    v(h.to),
                                    if h.by.is_empty() { "-" } else { &h.by },
                                    if h.reason.is_empty() {
                                        String::new()
                                    } else {
                                        format!(": {}", h.reason)
                                    }
                                );
                            }
                        }
                    }
                }
            },
            Command::Alias {
                name,
                alias,
                version,
                remove,
                reason,
            } => {
                let target = match (&version, remove) {
                    (Some(r), false) => Some(registry.resolve(&name, r).await?),
                    _ => None,
                };
                let aliases = registry
                    .set_alias(&name, &alias, target, "litehouse models alias", &reason)
                    .await?;
                if json {
                    print_json(&aliases)?;
                } else {
                    match target {
                        Some(v) => println!("{name}: {alias} -> version {v}"),
                        None => println!("{name}: alias {alias} removed"),
                    }
                }
            }
            Command::Delete { name, version } => {
                registry.delete_version(&name, version).await?;
                if json {
                    print_json(
                        &serde_json::json!({"deleted": {"name": name, "version": version}}),
                    )?;
                } else {
                    println!("deleted {name} version {version}");
                }
            }
        }
        Ok(())
    })
}

fn print_manifest(m: &Manifest) {
    println!("{} version {}", m.name, m.version);
    println!("  created      {}", m.created.to_rfc3339());
    println!("  sha256       {}", m.sha256);
    println!("  size         {} bytes", m.size_bytes);
    if !m.description.is_empty() {
        println!("  description  {}", m.description);
    }
    for t in &m.signature.inputs {
        println!("  input        {} {:?} {}", t.name, t.dtype, t.shape_text());
    }
    for t in &m.signature.outputs {
        println!("  output       {} {:?} {}", t.name, t.dtype, t.shape_text());
    }
    for (k, v) in &m.metrics {
        println!("  metric       {k} = {v}");
    }
    for (k, v) in &m.labels {
        println!("  label        {k} = {v}");
    }
    let l = &m.lineage;
    for (what, v) in [
        ("source run", &l.source_run),
        ("data hash", &l.data_hash),
        ("source", &l.source_uri),
    ] {
        if let Some(v) = v {
            println!("  {what:<12} {v}");
        }
    }
    for (k, v) in &l.params {
        println!("  param        {k} = {v}");
    }
}
