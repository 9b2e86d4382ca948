//! `litehouse schedule export --to eventbridge`: the schedule file as EventBridge Scheduler
//! schedules in a CloudFormation template, so the managed scheduler and the daemon read one
//! source and never disagree. Each schedule targets the trigger function with the payload it
//! reads (`{"schedule": ID, "scheduledTime": "<aws.scheduler.scheduled-time>", ...}`).

use serde_json::{json, Map, Value};

use crate::schedule::Schedule;
use crate::trigger::RULE_PREFIX;

const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A cron expression as EventBridge's `cron(min hour day-of-month month day-of-week year)`.
pub fn eventbridge_cron(s: &Schedule) -> Result<String, String> {
    let f = s.cron.fields();
    let rest = match f.len() {
        6 if f[0] == "0" => &f[1..],
        6 => {
            return Err(format!(
                "schedule '{}', cron: EventBridge Scheduler fires at most once a minute; {:?} has seconds",
                s.id,
                s.cron.text()
            ))
        }
        _ => f,
    };
    let any = |x: &str| x == "*" || x == "?";
    let dow = weekday_names(&rest[4]).map_err(|e| format!("schedule '{}', cron: {e}", s.id))?;
    let (dom, dow) = match (any(&rest[2]), any(&rest[4])) {
        (true, true) => ("*".to_string(), "?".to_string()),
        (false, true) => (rest[2].clone(), "?".to_string()),
        (true, false) => ("?".to_string(), dow),
        (false, false) => {
            return Err(format!(
                "schedule '{}', cron: {:?} restricts both day fields (cron runs on either); EventBridge takes one of them",
                s.id,
                s.cron.text()
            ))
        }
    };
    Ok(format!(
        "cron({} {} {dom} {} {dow} *)",
        rest[0], rest[1], rest[3]
    ))
}

/// Unix weekday numbers (0-7, Sunday 0 or 7) as names, which EventBridge reads unambiguously
/// (its numbers start at 1 for Sunday).
fn weekday_names(field: &str) -> Result<String, String> {
    let name = |t: &str| -> Result<String, String> {
        match t.parse::<usize>() {
            Ok(n) if n <= 7 => Ok(WEEKDAYS[n % 7].to_string()),
            Ok(n) => Err(format!("day of week {n} is outside 0-7")),
            Err(_) => Ok(t.to_ascii_uppercase()),
        }
    };
    let mut parts = Vec::new();
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (part, None),
        };
        let range = match range.split_once('-') {
            Some((a, b)) => {
                if b == "7" && a != "0" {
                    return Err(format!(
                        "day-of-week range {range:?} ends on 7 (Sunday): write it as a list, e.g. {a}-6,0"
                    ));
                }
                format!("{}-{}", name(a)?, name(b)?)
            }
            None if range == "*" || range == "?" => range.to_string(),
            None => name(range)?,
        };
        parts.push(match step {
            Some(s) => format!("{range}/{s}"),
            None => range,
        });
    }
    Ok(parts.join(","))
}

/// `retrain-mnist` -> `ScheduleRetrainMnist` (CloudFormation logical ids are alphanumeric).
fn logical_id(id: &str) -> String {
    let mut out = String::from("Schedule");
    for word in id.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    out
}

/// The CloudFormation template.
pub fn eventbridge_template(schedules: &[Schedule], source: &str) -> Result<Value, String> {
    let mut resources = Map::new();
    for s in schedules {
        let input = json!({
            "schedule": s.id,
            "scheduledTime": "<aws.scheduler.scheduled-time>",
            "scheduleArn": "<aws.scheduler.schedule-arn>",
            "executionId": "<aws.scheduler.execution-id>",
            "attempt": "<aws.scheduler.attempt-number>",
        });
        let window = if s.jitter_seconds > 0 {
            json!({"Mode": "FLEXIBLE", "MaximumWindowInMinutes": s.jitter_seconds.div_ceil(60).clamp(1, 1440)})
        } else {
            json!({"Mode": "OFF"})
        };
        resources.insert(
            logical_id(&s.id),
            json!({
                "Type": "AWS::Scheduler::Schedule",
                "Properties": {
                    "Name": format!("{RULE_PREFIX}{}", s.id),
                    "Description": format!("litehouse schedule '{}': {} in {}, pipeline {}", s.id, s.cron.text(), s.tz.name(), s.pipeline.display()),
                    "ScheduleExpression": eventbridge_cron(s)?,
                    "ScheduleExpressionTimezone": s.tz.name(),
                    "FlexibleTimeWindow": window,
                    "State": if s.paused { "DISABLED" } else { "ENABLED" },
                    "Target": {
                        "Arn": {"Ref": "TriggerFunctionArn"},
                        "RoleArn": {"Ref": "SchedulerRoleArn"},
                        "Input": input.to_string(),
                        "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
                    },
                },
            }),
        );
    }
    Ok(json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!("EventBridge Scheduler schedules generated by `litehouse schedule export --to eventbridge` from {source}; each invokes the litehouse trigger function once per tick"),
        "Parameters": {
            "TriggerFunctionArn": {"Type": "String", "Description": "ARN of the litehouse trigger function (functions/trigger)"},
            "SchedulerRoleArn": {"Type": "String", "Description": "ARN of a role EventBridge Scheduler assumes, allowed lambda:InvokeFunction on the trigger"},
        },
        "Resources": resources,
    }))
}
