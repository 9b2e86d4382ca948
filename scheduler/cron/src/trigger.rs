//! What a managed scheduler delivers, read as (schedule id, scheduled time): an EventBridge
//! scheduled event (rule `litehouse-{id}`), EventBridge Scheduler's templated payload, or an
//! HTTP request (Function URL / API Gateway v2) with a JSON body or Cloud Scheduler's
//! `X-CloudScheduler-*` headers. The pair is the tick id, so a redelivery runs nothing twice.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// The rule-name prefix `litehouse schedule export` gives EventBridge resources.
pub const RULE_PREFIX: &str = "litehouse-";

/// A request to run one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct TickRequest {
    /// The schedule.
    pub schedule: String,
    /// The scheduled time, to the second.
    pub scheduled: DateTime<Utc>,
    /// Which kind of delivery it was.
    pub source: &'static str,
    /// Whether an HTTP answer is expected (Function URL / API Gateway).
    pub http: bool,
}

fn time(text: &str, field: &str) -> Result<DateTime<Utc>, String> {
    let t = DateTime::parse_from_rfc3339(text.trim())
        .map_err(|e| format!("{field} {text:?}: expected an RFC 3339 time ({e})"))?
        .with_timezone(&Utc);
    Ok(DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t))
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Reads an invocation payload.
pub fn parse(event: &Value) -> Result<TickRequest, String> {
    // EventBridge rule: {"detail-type": "Scheduled Event", "time": ..., "resources": [rule ARN]}
    if text(event, "detail-type") == Some("Scheduled Event") {
        let rule = event
            .get("resources")
            .and_then(|r| r.get(0))
            .and_then(Value::as_str)
            .ok_or("a Scheduled Event without resources[0] (the rule ARN)")?;
        let name = rule.rsplit('/').next().unwrap_or(rule);
        let schedule = name.strip_prefix(RULE_PREFIX).ok_or_else(|| {
            format!("rule {name:?}: expected a rule named {RULE_PREFIX}<schedule id>")
        })?;
        let at = text(event, "time").ok_or("a Scheduled Event without 'time'")?;
        return Ok(TickRequest {
            schedule: schedule.into(),
            scheduled: time(at, "time")?,
            source: "eventbridge-rule",
            http: false,
        });
    }
    // Function URL / API Gateway v2.
    if text(event, "version") == Some("2.0") && event.get("requestContext").is_some() {
        let headers = event.get("headers").cloned().unwrap_or(Value::Null);
        let header = |k: &str| {
            headers
                .as_object()
                .and_then(|h| h.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)))
                .and_then(|(_, v)| v.as_str())
        };
        if let (Some(job), Some(at)) = (
            header("x-cloudscheduler-jobname"),
            header("x-cloudscheduler-scheduletime"),
        ) {
            return Ok(TickRequest {
                schedule: job.rsplit('/').next().unwrap_or(job).into(),
                scheduled: time(at, "X-CloudScheduler-ScheduleTime")?,
                source: "cloud-scheduler",
                http: true,
            });
        }
        let raw = text(event, "body").unwrap_or("");
        let body = if event.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(raw)
                .map_err(|e| format!("body: not base64 ({e})"))?;
            String::from_utf8(bytes).map_err(|_| "body: not UTF-8".to_string())?
        } else {
            raw.to_string()
        };
        let v: Value = serde_json::from_str(&body).map_err(|e| {
            format!("body: expected JSON {{\"schedule\": ID, \"scheduledTime\": RFC3339}} or X-CloudScheduler-* headers ({e})")
        })?;
        let mut r = payload(&v)?;
        r.source = "http";
        r.http = true;
        return Ok(r);
    }
    payload(event)
}

/// `{"schedule": ID, "scheduledTime": RFC3339}` (EventBridge Scheduler fills
/// `<aws.scheduler.scheduled-time>` in).
fn payload(v: &Value) -> Result<TickRequest, String> {
    let schedule = text(v, "schedule").ok_or(
        "expected an EventBridge Scheduled Event, {\"schedule\": ID, \"scheduledTime\": RFC3339}, or an HTTP request carrying either",
    )?;
    let at = text(v, "scheduledTime").ok_or("'scheduledTime' is missing")?;
    if at.contains("<aws.scheduler") {
        return Err(format!(
            "scheduledTime {at:?} was not filled in: the schedule's target Input must be sent by EventBridge Scheduler"
        ));
    }
    Ok(TickRequest {
        schedule: schedule.into(),
        scheduled: time(at, "scheduledTime")?,
        source: "eventbridge-scheduler",
        http: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_delivery_reads_as_the_same_tick() {
        let want = |source| TickRequest {
            schedule: "retrain".into(),
            scheduled: time("2026-12-04T03:00:00Z", "t").unwrap_or_default(),
            source,
            http: false,
        };
        let rule = json!({"version": "0", "detail-type": "Scheduled Event", "source": "aws.events",
            "time": "2026-12-04T03:00:00Z", "resources": ["arn:aws:events:eu-west-2:1:rule/litehouse-retrain"], "detail": {}});
        assert_eq!(parse(&rule), Ok(want("eventbridge-rule")));
        let scheduler =
            json!({"schedule": "retrain", "scheduledTime": "2026-12-04T03:00:00Z", "attempt": "2"});
        assert_eq!(parse(&scheduler), Ok(want("eventbridge-scheduler")));
        let http = json!({"version": "2.0", "requestContext": {}, "headers": {},
            "body": "{\"schedule\":\"retrain\",\"scheduledTime\":\"2026-12-04T03:00:00.250Z\"}"});
        assert_eq!(
            parse(&http).map(|r| (r.scheduled, r.http)),
            Ok((want("").scheduled, true))
        );
        let cloud = json!({"version": "2.0", "requestContext": {}, "headers": {
            "X-CloudScheduler-JobName": "projects/p/locations/l/jobs/retrain",
            "X-CloudScheduler-ScheduleTime": "2026-12-04T03:00:00Z"}});
        assert_eq!(parse(&cloud).map(|r| r.schedule), Ok("retrain".into()));
        for (bad, msg) in [
            (
                json!({"hello": 1}),
                "expected an EventBridge Scheduled Event",
            ),
            (json!({"schedule": "r"}), "'scheduledTime' is missing"),
            (
                json!({"schedule": "r", "scheduledTime": "<aws.scheduler.scheduled-time>"}),
                "was not filled in",
            ),
            (
                json!({"schedule": "r", "scheduledTime": "yesterday"}),
                "expected an RFC 3339 time",
            ),
            (
                json!({"detail-type": "Scheduled Event", "time": "2026-12-04T03:00:00Z", "resources": ["arn:x:rule/other"]}),
                "expected a rule named litehouse-",
            ),
            (
                json!({"version": "2.0", "requestContext": {}, "body": "nope"}),
                "body: expected JSON",
            ),
        ] {
            let e = parse(&bad).unwrap_err();
            assert!(e.contains(msg), "{bad}: {e}");
        }
    }
}
