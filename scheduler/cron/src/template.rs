//! Parameter templates: `{{ scheduled_time | date }}` and friends, filled in for each tick so a
//! run reads that tick's data snapshot (and a cached step can never hide new data).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// What a tick's templates can read.
#[derive(Debug, Clone)]
pub struct Context {
    /// The schedule's id.
    pub schedule_id: String,
    /// The time the tick was scheduled for.
    pub scheduled_time: DateTime<Utc>,
    /// The schedule's zone (filters format in it, except `utc` and `epoch`).
    pub tz: Tz,
    /// The tick's id (`{schedule}@{time}`).
    pub tick_id: String,
}

/// Variables a template may name.
pub const VARIABLES: &[&str] = &["scheduled_time", "schedule_id", "tick_id"];

/// Filters on `scheduled_time`, with what they write.
pub const FILTERS: &[(&str, &str)] = &[
    ("date", "2026-12-04 (in the schedule's zone)"),
    ("time", "03:00:00"),
    ("hour", "2026-12-04T03"),
    (
        "datetime",
        "2026-12-04T03:00:00+00:00 (RFC 3339 in the zone; the default)",
    ),
    ("compact", "20261204T030000"),
    ("year", "2026"),
    ("month", "12"),
    ("day", "04"),
    ("utc", "2026-12-04T03:00:00Z"),
    ("epoch", "1796353200"),
];

/// One `{{ ... }}`.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Var(String, Option<String>),
}

fn parts(text: &str) -> Result<Vec<Part>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            out.push(Part::Text(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("{text:?}: '{{{{' without '}}}}'"))?;
        let inner = after[..end].trim();
        let (var, filter) = match inner.split_once('|') {
            Some((v, f)) => (v.trim(), Some(f.trim().to_string())),
            None => (inner, None),
        };
        if !VARIABLES.contains(&var) {
            return Err(format!(
                "{text:?}: unknown variable '{var}' (variables: {})",
                VARIABLES.join(", ")
            ));
        }
        if let Some(f) = &filter {
            if var != "scheduled_time" {
                return Err(format!(
                    "{text:?}: filters apply to scheduled_time, not {var}"
                ));
            }
            if !FILTERS.iter().any(|(name, _)| name == f) {
                return Err(format!(
                    "{text:?}: unknown filter '{f}' (filters: {})",
                    FILTERS
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        out.push(Part::Var(var.to_string(), filter));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        out.push(Part::Text(rest.to_string()));
    }
    Ok(out)
}

/// Checks a template without filling it in.
pub fn check(text: &str) -> Result<(), String> {
    parts(text).map(|_| ())
}

/// Fills a template in.
pub fn render(text: &str, c: &Context) -> Result<String, String> {
    let mut out = String::new();
    for part in parts(text)? {
        match part {
            Part::Text(t) => out.push_str(&t),
            Part::Var(v, filter) => out.push_str(&match v.as_str() {
                "schedule_id" => c.schedule_id.clone(),
                "tick_id" => c.tick_id.clone(),
                _ => time(c, filter.as_deref().unwrap_or("datetime")),
            }),
        }
    }
    Ok(out)
}

fn time(c: &Context, filter: &str) -> String {
    let local = c.scheduled_time.with_timezone(&c.tz);
    match filter {
        "date" => local.format("%Y-%m-%d").to_string(),
        "time" => local.format("%H:%M:%S").to_string(),
        "hour" => local.format("%Y-%m-%dT%H").to_string(),
        "compact" => local.format("%Y%m%dT%H%M%S").to_string(),
        "year" => local.format("%Y").to_string(),
        "month" => local.format("%m").to_string(),
        "day" => local.format("%d").to_string(),
        "utc" => c.scheduled_time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "epoch" => c.scheduled_time.timestamp().to_string(),
        _ => local.to_rfc3339(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_in_the_tick_in_its_zone() {
        let c = Context {
            schedule_id: "retrain".into(),
            scheduled_time: DateTime::parse_from_rfc3339("2026-07-01T23:30:00Z")
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
            tz: chrono_tz::Europe::London,
            tick_id: "retrain@20260701T233000Z".into(),
        };
        let r = |t: &str| render(t, &c);
        // 23:30Z is already 2 July in London (BST).
        assert_eq!(
            r("s3://b/data/{{ scheduled_time | date }}/"),
            Ok("s3://b/data/2026-07-02/".into())
        );
        assert_eq!(
            r("{{scheduled_time|utc}}"),
            Ok("2026-07-01T23:30:00Z".into())
        );
        assert_eq!(
            r("{{ scheduled_time }}"),
            Ok("2026-07-02T00:30:00+01:00".into())
        );
        assert_eq!(
            r("{{ schedule_id }}-{{ scheduled_time | compact }}"),
            Ok("retrain-20260702T003000".into())
        );
        assert_eq!(r("no template"), Ok("no template".into()));
        assert!(check("{{ scheduled_date }}")
            .unwrap_err()
            .contains("unknown variable 'scheduled_date'"));
        assert!(check("{{ scheduled_time | weekday }}")
            .unwrap_err()
            .contains("unknown filter 'weekday'"));
        assert!(check("{{ tick_id | date }}")
            .unwrap_err()
            .contains("filters apply to scheduled_time"));
        assert!(check("{{ scheduled_time").unwrap_err().contains("without"));
    }
}
