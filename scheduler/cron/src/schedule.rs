//! The schedule file (YAML, or TOML with a `.toml` name): what runs when, in which zone, with
//! which parameters, and what to do about overlaps, missed ticks and failures. Checked whole on
//! load: each mistake names the schedule and the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{CronError, Result};
use crate::expr::CronExpr;
use crate::template;

/// What to do with a tick while the schedule's previous run is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overlap {
    /// Skip the new tick (recorded as skipped).
    #[default]
    Forbid,
    /// Interrupt the running one and start the new one.
    Replace,
    /// Run both.
    Allow,
}

/// What to do at start with ticks that fell while no daemon ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Missed {
    /// Record them as missed, run none.
    Skip,
    /// Run the latest one.
    #[default]
    RunOnce,
    /// Run them all, oldest first, up to `catch_up_limit`.
    CatchUp,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDecl {
    schedules: Vec<Decl>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Decl {
    id: String,
    cron: String,
    #[serde(default = "utc")]
    timezone: String,
    pipeline: PathBuf,
    #[serde(default)]
    params: IndexMap<String, Value>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    overlap: Overlap,
    #[serde(default)]
    missed: Missed,
    #[serde(default = "catch_up_limit")]
    catch_up_limit: usize,
    #[serde(default)]
    retries: u32,
    #[serde(default = "retry_backoff")]
    retry_backoff_seconds: u64,
    #[serde(default)]
    jitter_seconds: u64,
    #[serde(default)]
    paused: bool,
    #[serde(default = "history_days")]
    history_days: u32,
    #[serde(default)]
    pipeline_root: Option<String>,
    #[serde(default)]
    service_account: Option<String>,
}

fn utc() -> String {
    "UTC".into()
}
fn catch_up_limit() -> usize {
    10
}
fn retry_backoff() -> u64 {
    60
}
fn history_days() -> u32 {
    30
}

/// A checked schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Its id (letters, digits, `-`, `_`).
    pub id: String,
    /// When.
    pub cron: CronExpr,
    /// The zone its wall times are in.
    pub tz: Tz,
    /// The pipeline file (resolved).
    pub pipeline: PathBuf,
    /// Parameter templates.
    pub params: BTreeMap<String, String>,
    /// `local` (the embedded runner on the daemon's store), `kfp://...` or `vertex://...`.
    pub target: String,
    /// Overlap policy.
    pub overlap: Overlap,
    /// Missed-run policy at start.
    pub missed: Missed,
    /// Most missed ticks `catch-up` runs.
    pub catch_up_limit: usize,
    /// Attempts after the first when a run fails.
    pub retries: u32,
    /// First retry's delay; doubled for each further one.
    pub retry_backoff_seconds: u64,
    /// A random delay up to this before a run starts.
    pub jitter_seconds: u64,
    /// Paused in the file (the store's pause state overrides it).
    pub paused: bool,
    /// Tick records are kept this long.
    pub history_days: u32,
    /// Pipeline root for remote targets.
    pub pipeline_root: Option<String>,
    /// Service account for remote targets.
    pub service_account: Option<String>,
}

/// Reads and checks a schedule file. Relative pipeline paths are tried from the current
/// directory, then from the schedule file's directory.
pub fn read(path: &Path) -> Result<Vec<Schedule>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| CronError::File {
        file: file.clone(),
        message: format!("cannot read: {e}"),
    })?;
    parse(
        &text,
        &file,
        path.parent().unwrap_or(Path::new(".")),
        path.extension().is_some_and(|e| e == "toml"),
    )
}

/// Parses and checks schedule text; `file` names it in errors, `base` is where relative
/// pipeline paths may also be found.
pub fn parse(text: &str, file: &str, base: &Path, toml_syntax: bool) -> Result<Vec<Schedule>> {
    let decl: FileDecl = if toml_syntax {
        toml::from_str(text).map_err(|e| e.to_string())
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| e.to_string())
    }
    .map_err(|message| CronError::File {
        file: file.into(),
        message: message.trim_end().to_string(),
    })?;
    if decl.schedules.is_empty() {
        return Err(CronError::File {
            file: file.into(),
            message: "no schedules".into(),
        });
    }
    let mut out: Vec<Schedule> = Vec::new();
    for d in decl.schedules {
        let bad = |field: &str, message: String| CronError::Schedule {
            id: d.id.clone(),
            field: field.into(),
            message,
        };
        let id_ok = (1..=64).contains(&d.id.len())
            && d.id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !id_ok {
            return Err(bad(
                "id",
                "expected 1 to 64 letters, digits, '-' or '_'".into(),
            ));
        }
        if out.iter().any(|s| s.id == d.id) {
            return Err(bad("id", "used by another schedule in the file".into()));
        }
        let cron = CronExpr::parse(&d.cron).map_err(|e| bad("cron", e))?;
        let tz: Tz = d.timezone.parse().map_err(|_| {
            bad(
                "timezone",
                format!(
                    "unknown zone {:?} (expected an IANA name such as Europe/London or UTC)",
                    d.timezone
                ),
            )
        })?;
        let pipeline = [PathBuf::from(&d.pipeline), base.join(&d.pipeline)]
            .into_iter()
            .find(|p| p.is_file())
            .ok_or_else(|| {
                bad(
                    "pipeline",
                    format!("no pipeline file at {}", d.pipeline.display()),
                )
            })?;
        let parsed = litehouse_pipeline::definition::read(&pipeline)
            .map_err(|e| bad("pipeline", e.to_string()))?;
        let mut params = BTreeMap::new();
        for (name, value) in &d.params {
            let field = format!("params.{name}");
            if !parsed.params.contains_key(name) && name != "store" {
                return Err(bad(
                    &field,
                    format!(
                        "pipeline '{}' has no parameter '{name}' (parameters: {})",
                        parsed.name,
                        parsed.params.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(_) | Value::Bool(_) => value.to_string(),
                other => {
                    return Err(bad(
                        &field,
                        format!("expected a string, number or boolean, found {other}"),
                    ))
                }
            };
            template::check(&text).map_err(|e| bad(&field, e))?;
            params.insert(name.clone(), text);
        }
        let target = d.target.unwrap_or_else(|| "local".into());
        if target != "local" {
            litehouse_pipeline::submit::Target::parse(&target, None)
                .map_err(|e| bad("target", e.to_string()))?;
        }
        if d.missed == Missed::CatchUp && d.catch_up_limit == 0 {
            return Err(bad(
                "catch_up_limit",
                "catch-up needs a limit of 1 or more".into(),
            ));
        }
        out.push(Schedule {
            id: d.id,
            cron,
            tz,
            pipeline,
            params,
            target,
            overlap: d.overlap,
            missed: d.missed,
            catch_up_limit: d.catch_up_limit,
            retries: d.retries,
            retry_backoff_seconds: d.retry_backoff_seconds,
            jitter_seconds: d.jitter_seconds,
            paused: d.paused,
            history_days: d.history_days,
            pipeline_root: d.pipeline_root,
            service_account: d.service_account,
        });
    }
    Ok(out)
}
