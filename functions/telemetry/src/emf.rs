//! CloudWatch Embedded Metric Format: a JSON line on a Lambda's stdout that CloudWatch Logs
//! turns into metrics, with no API call and no agent. One line per event; CloudWatch does the
//! aggregation.
//!
//! The shape CloudWatch requires: a root `_aws` object with `Timestamp` (ms since the epoch) and
//! `CloudWatchMetrics`, a list of `{Namespace, Dimensions: [[name, ...]], Metrics: [{Name,
//! Unit}]}`; every dimension and metric named there is a root member of the same object
//! (dimension values as strings, metric values as numbers). Other root members are kept as
//! searchable log properties.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value as Json};

/// The namespace every litehouse metric is published under.
pub const NAMESPACE: &str = "litehouse";

/// A CloudWatch unit (the subset litehouse reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A duration in milliseconds.
    Milliseconds,
    /// A plain count.
    Count,
    /// A size in bytes.
    Bytes,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Milliseconds => "Milliseconds",
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
        }
    }
}

/// One EMF event under one dimension set.
#[derive(Debug, Clone, Default)]
pub struct Event {
    dimensions: Vec<(String, String)>,
    metrics: Vec<(String, Unit, f64)>,
    properties: Map<String, Json>,
}

impl Event {
    /// An empty event.
    pub fn new() -> Self {
        Event::default()
    }

    /// Adds a dimension (an empty value becomes `"-"`: CloudWatch refuses empty dimensions).
    pub fn dimension(mut self, name: &str, value: impl Into<String>) -> Self {
        let value = value.into();
        let value = if value.is_empty() { "-".into() } else { value };
        self.dimensions.push((name.to_string(), value));
        self
    }

    /// Adds a metric value; a non-finite value is left out (EMF values must be numbers).
    pub fn metric(mut self, name: &str, unit: Unit, value: f64) -> Self {
        if value.is_finite() {
            self.metrics.push((name.to_string(), unit, value));
        }
        self
    }

    /// Adds a property: logged with the metrics and searchable, not a dimension.
    pub fn property(mut self, name: &str, value: impl Into<Json>) -> Self {
        self.properties.insert(name.to_string(), value.into());
        self
    }

    /// The event as one EMF JSON object, stamped `timestamp_ms`.
    pub fn to_json(&self, timestamp_ms: u64) -> Json {
        let mut root = self.properties.clone();
        for (name, value) in &self.dimensions {
            root.insert(name.clone(), Json::String(value.clone()));
        }
        for (name, _, value) in &self.metrics {
            root.insert(name.clone(), json!(value));
        }
        let names: Vec<&str> = self.dimensions.iter().map(|(n, _)| n.as_str()).collect();
        let metrics: Vec<Json> = self
            .metrics
            .iter()
            .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.name()}))
            .collect();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [names],
                    "Metrics": metrics,
                }],
            }),
        );
        Json::Object(root)
    }

    /// Prints the event as one line on stdout, where the Lambda's log stream picks it up.
    /// An event without metrics prints nothing.
    pub fn emit(&self) {
        if self.metrics.is_empty() {
            return;
        }
        let line = self.to_json(now_ms()).to_string();
        let mut out = std::io::stdout().lock();
        // A closed stdout must not fail the request that is being measured.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_has_the_aws_metadata_cloudwatch_requires() {
        let event = Event::new()
            .dimension("endpoint", "mnist")
            .dimension("deployed_model", "")
            .metric("Latency", Unit::Milliseconds, 1.5)
            .metric("Requests", Unit::Count, 1.0)
            .metric("Bad", Unit::Count, f64::NAN)
            .property("requestId", "r-1");
        let line = event.to_json(1_700_000_000_000);
        let aws = &line["_aws"];
        assert_eq!(aws["Timestamp"], 1_700_000_000_000u64);
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(
            directive["Dimensions"],
            json!([["endpoint", "deployed_model"]])
        );
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "Latency", "Unit": "Milliseconds"}, {"Name": "Requests", "Unit": "Count"}])
        );
        // Every declared name is a root member of the right type.
        assert_eq!(line["endpoint"], "mnist");
        assert_eq!(line["deployed_model"], "-");
        assert_eq!(line["Latency"], 1.5);
        assert_eq!(line["Requests"], 1.0);
        assert!(line.get("Bad").is_none());
        assert_eq!(line["requestId"], "r-1");
    }
}
