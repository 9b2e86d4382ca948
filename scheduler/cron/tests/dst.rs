//! Fire times across the DST changes of Europe/London and America/New_York: a wall time in the
//! spring gap runs once, at the first instant after the gap; a wall time in the autumn repeat
//! runs once, at its first occurrence; and schedules that avoid the change keep local time.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use litehouse_cron::CronExpr;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("rfc3339")
        .with_timezone(&Utc)
}

fn fires(cron: &str, tz: &str, from: &str, until: &str) -> Vec<String> {
    let tz: Tz = tz.parse().expect("zone");
    CronExpr::parse(cron)
        .expect("parses")
        .between(utc(from), utc(until), tz, 100)
        .iter()
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .collect()
}

#[test]
fn london_spring_gap_runs_once_after_the_gap() {
    // 29 March 2026: 01:00 GMT becomes 02:00 BST; 01:30 does not exist that day.
    assert_eq!(
        fires(
            "30 1 * * *",
            "Europe/London",
            "2026-03-27T12:00:00Z",
            "2026-03-30T12:00:00Z"
        ),
        [
            "2026-03-28T01:30:00Z",
            "2026-03-29T01:00:00Z",
            "2026-03-30T00:30:00Z"
        ]
    );
    // Every quarter hour: the four wall times in the gap make one run at its end.
    assert_eq!(
        fires(
            "*/15 * * * *",
            "Europe/London",
            "2026-03-29T00:30:00Z",
            "2026-03-29T01:30:00Z"
        ),
        [
            "2026-03-29T00:45:00Z",
            "2026-03-29T01:00:00Z",
            "2026-03-29T01:15:00Z",
            "2026-03-29T01:30:00Z"
        ]
    );
}

#[test]
fn london_autumn_repeat_runs_once_at_the_first_occurrence() {
    // 25 October 2026: 02:00 BST becomes 01:00 GMT; 01:30 happens twice (00:30Z and 01:30Z).
    assert_eq!(
        fires(
            "30 1 * * *",
            "Europe/London",
            "2026-10-24T12:00:00Z",
            "2026-10-26T12:00:00Z"
        ),
        ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
    );
    // Hourly: the repeated hour is not run a second time.
    assert_eq!(
        fires(
            "0 * * * *",
            "Europe/London",
            "2026-10-24T22:30:00Z",
            "2026-10-25T02:30:00Z"
        ),
        [
            "2026-10-24T23:00:00Z",
            "2026-10-25T00:00:00Z",
            "2026-10-25T02:00:00Z"
        ]
    );
}

#[test]
fn new_york_spring_gap_and_autumn_repeat() {
    // 8 March 2026: 02:00 EST becomes 03:00 EDT.
    assert_eq!(
        fires(
            "30 2 * * *",
            "America/New_York",
            "2026-03-07T12:00:00Z",
            "2026-03-09T12:00:00Z"
        ),
        ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]
    );
    // 1 November 2026: 02:00 EDT becomes 01:00 EST; 01:30 EDT is 05:30Z, 01:30 EST 06:30Z.
    assert_eq!(
        fires(
            "30 1 * * *",
            "America/New_York",
            "2026-10-31T12:00:00Z",
            "2026-11-02T12:00:00Z"
        ),
        ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
    );
}

#[test]
fn daily_times_away_from_the_change_keep_local_time() {
    // 03:00 London: 03:00Z in winter, 02:00Z in summer.
    assert_eq!(
        fires(
            "0 3 * * *",
            "Europe/London",
            "2026-03-28T00:00:00Z",
            "2026-03-30T00:00:00Z"
        ),
        ["2026-03-28T03:00:00Z", "2026-03-29T02:00:00Z"]
    );
    // Six fields: every 20 seconds in New York is every 20 seconds in UTC.
    assert_eq!(
        fires(
            "*/20 * * * * *",
            "America/New_York",
            "2026-03-08T06:59:30Z",
            "2026-03-08T07:00:30Z"
        ),
        [
            "2026-03-08T06:59:40Z",
            "2026-03-08T07:00:00Z",
            "2026-03-08T07:00:20Z"
        ]
    );
}
