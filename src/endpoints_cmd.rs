//! `litehouse endpoints create|describe|list|delete|deploy|undeploy|split|logging`: endpoints,
//! their traffic splits (with Vertex AI's rules) and request-response logging.

use litehouse_registry::{DeployRequest, Endpoint};

use crate::registry_args::{block_on, parse_split, print_json, StoreArgs};

/// Arguments of `endpoints`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Create an empty endpoint.
    Create {
        /// Endpoint id (used in routes: /v1/endpoints/{id}:predict).
        id: String,
        /// Display name (default: the id).
        #[arg(long)]
        display_name: Option<String>,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Show an endpoint: deployed models, traffic split, etag.
    Describe {
        /// Endpoint id.
        id: String,
    },
    /// List endpoints.
    List,
    /// Delete an endpoint (refused while models are deployed on it).
    Delete {
        /// Endpoint id.
        id: String,
    },
    /// Deploy a model version. Without --split the new model takes no traffic (as in Vertex AI).
    Deploy {
        /// Endpoint id.
        id: String,
        /// Model name.
        #[arg(long)]
        model: String,
        /// Version, alias or "latest".
        #[arg(long, default_value = "latest")]
        version: String,
        /// Display name of the deployed model.
        #[arg(long)]
        display_name: Option<String>,
        /// New traffic split, e.g. 1=90,0=10 (0 is the model being deployed).
        #[arg(long)]
        split: Option<String>,
        /// Deploy as a shadow: a copy of the traffic, answers logged and never returned.
        #[arg(long, conflicts_with = "split")]
        shadow: bool,
        /// Apply only if the endpoint still has this etag (from describe).
        #[arg(long)]
        etag: Option<String>,
    },
    /// Undeploy a deployed model (refused while it holds traffic unless --split removes it).
    Undeploy {
        /// Endpoint id.
        id: String,
        /// Deployed model id.
        deployed_model_id: String,
        /// New traffic split without the undeployed model, e.g. 1=100.
        #[arg(long)]
        split: Option<String>,
        /// Apply only if the endpoint still has this etag.
        #[arg(long)]
        etag: Option<String>,
    },
    /// Set the traffic split, e.g. `split mnist 1=90,2=10` (percents sum to 100; "" for none).
    Split {
        /// Endpoint id.
        id: String,
        /// DEPLOYED_ID=PERCENT pairs.
        split: String,
        /// Apply only if the endpoint still has this etag.
        #[arg(long)]
        etag: Option<String>,
    },
    /// Log a share of the endpoint's requests with their answers (Vertex AI's request-response
    /// logging), to prediction-logs/ in the store `serve` writes to.
    Logging {
        /// Endpoint id.
        id: String,
        /// Share of requests logged, 0 to 1.
        #[arg(long, conflicts_with = "default", required_unless_present = "default")]
        sampling_rate: Option<f64>,
        /// Forget the endpoint's own rate: the server's --log-predictions applies again.
        #[arg(long)]
        default: bool,
        /// Apply only if the endpoint still has this etag.
        #[arg(long)]
        etag: Option<String>,
    },
}

pub fn run(args: Args) -> anyhow::Result<()> {
    block_on(async move {
        let registry = args.store.registry().await?;
        let json = args.store.json;
        let show = |e: &Endpoint| -> anyhow::Result<()> {
            if json {
                print_json(e)
            } else {
                print_endpoint(e);
                Ok(())
            }
        };
        match args.command {
            Command::Create {
                id,
                display_name,
                description,
            } => show(
                &registry
                    .create_endpoint(&id, display_name.as_deref(), &description)
                    .await?,
            )?,
            Command::Describe { id } => show(&registry.endpoint(&id).await?)?,
            Command::List => {
                let endpoints = registry.endpoints().await?;
                if json {
                    print_json(&endpoints)?;
                } else if endpoints.is_empty() {
                    println!("no endpoints in {}", registry.store().uri());
                } else {
                    println!("{:<24} {:>8}  TRAFFIC SPLIT", "ID", "DEPLOYED");
                    for e in endpoints {
                        println!(
                            "{:<24} {:>8}  {}",
                            e.id,
                            e.deployed_models.len(),
                            litehouse_registry::TrafficSplitText(&e.traffic_split)
                        );
                    }
                }
            }
            Command::Delete { id } => {
                registry.delete_endpoint(&id).await?;
                if json {
                    print_json(&serde_json::json!({ "deleted": id }))?;
                } else {
                    println!("deleted endpoint {id}");
                }
            }
            Command::Deploy {
                id,
                model,
                version,
                display_name,
                split,
                shadow,
                etag,
            } => {
                let request = DeployRequest {
                    model,
                    version,
                    display_name,
                    traffic_split: split.as_deref().map(parse_split).transpose()?,
                    shadow,
                };
                let (endpoint, deployed) = registry.deploy(&id, &request, etag.as_deref()).await?;
                if json {
                    print_json(&serde_json::json!({
                        "deployedModel": deployed,
                        "endpoint": endpoint,
                    }))?;
                } else {
                    println!(
                        "deployed {} version {} on {id} as deployed model {}{}",
                        deployed.model,
                        deployed.version,
                        deployed.id,
                        if deployed.shadow { " (shadow)" } else { "" }
                    );
                    if !deployed.shadow && !endpoint.traffic_split.contains_key(&deployed.id) {
                        println!(
                            "note: it takes no traffic; give it some with `litehouse endpoints split {id} ...` \
                             (or deploy with --split 0=100)"
                        );
                    }
                    print_endpoint(&endpoint);
                }
            }
            Command::Undeploy {
                id,
                deployed_model_id,
                split,
                etag,
            } => {
                let split = split.as_deref().map(parse_split).transpose()?;
                show(
                    &registry
                        .undeploy(&id, &deployed_model_id, split.as_ref(), etag.as_deref())
                        .await?,
                )?
            }
            Command::Logging {
                id,
                sampling_rate,
                default: _,
                etag,
            } => show(
                &registry
                    .set_prediction_logging(&id, sampling_rate, etag.as_deref())
                    .await?,
            )?,
            Command::Split { id, split, etag } => show(
                &registry
                    .set_traffic_split(&id, &parse_split(&split)?, etag.as_deref())
                    .await?,
            )?,
        }
        Ok(())
    })
}

fn print_endpoint(e: &Endpoint) {
    println!("endpoint {} ({})", e.id, e.display_name);
    println!("  etag           {}", e.etag);
    println!(
        "  traffic split  {}",
        litehouse_registry::TrafficSplitText(&e.traffic_split)
    );
    if let Some(logging) = &e.prediction_logging {
        println!("  logging        {} of requests", logging.sampling_rate);
    }
    for d in &e.deployed_models {
        println!(
            "  deployed {:<5} {} version {}  \"{}\"{}",
            d.id,
            d.model,
            d.version,
            d.display_name,
            if d.shadow { "  shadow" } else { "" }
        );
    }
}
