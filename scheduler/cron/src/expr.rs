//! Cron expressions and their fire times in an IANA time zone.
//!
//! Five fields (`min hour day-of-month month day-of-week`, unix cron) or six with seconds first;
//! `*`, `?`, lists, ranges, steps, month and weekday names, and `@hourly`-style shorthands. When
//! both day fields are restricted a day matches either (as in cron). Fire times are local wall
//! times: one in a DST gap runs once at the first instant after the gap; one in a repeated hour
//! runs once, at its first occurrence.

use std::collections::BTreeSet;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpr {
    text: String,
    /// The five or six fields, shorthands expanded.
    fields: Vec<String>,
    seconds: BTreeSet<u32>,
    minutes: BTreeSet<u32>,
    hours: BTreeSet<u32>,
    days: BTreeSet<u32>,
    months: BTreeSet<u32>,
    weekdays: BTreeSet<u32>,
    days_any: bool,
    weekdays_any: bool,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// How far ahead a fire time is looked for before an expression is called one that never fires.
const HORIZON_DAYS: i64 = 366 * 5;

impl CronExpr {
    /// Parses an expression; the error says which field is wrong and what it accepts.
    pub fn parse(text: &str) -> Result<CronExpr, String> {
        let expanded = match text.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let (sec, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 => (fields[0], &fields[1..]),
            n => {
                return Err(format!(
                    "{text:?}: expected 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, found {n}"
                ))
            }
        };
        let field = |name: &str, spec: &str, lo: u32, hi: u32, names: &[&str]| {
            parse_field(spec, lo, hi, names)
                .map_err(|e| format!("{text:?}: {name} field {spec:?}: {e}"))
        };
        let seconds = field("seconds", sec, 0, 59, &[])?;
        let minutes = field("minute", rest[0], 0, 59, &[])?;
        let hours = field("hour", rest[1], 0, 23, &[])?;
        let days = field("day-of-month", rest[2], 1, 31, &[])?;
        let months = field("month", rest[3], 1, 12, &MONTHS)?;
        let mut weekdays = field("day-of-week", rest[4], 0, 7, &WEEKDAYS)?;
        if weekdays.remove(&7) {
            weekdays.insert(0);
        }
        let expr = CronExpr {
            text: text.trim().to_string(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
            seconds,
            minutes,
            hours,
            days_any: is_any(rest[2]),
            weekdays_any: is_any(rest[4]),
            days,
            months,
            weekdays,
        };
        // `0 0 30 2 *` parses but never fires.
        let start = Utc
            .with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        if expr.next_naive(start.naive_utc()).is_none() {
            return Err(format!("{text:?}: never fires (no such date)"));
        }
        Ok(expr)
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Its fields as written, shorthands expanded (five, or six with seconds first).
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// Whether a calendar day matches the day fields.
    fn day_matches(&self, d: NaiveDate) -> bool {
        if !self.months.contains(&d.month()) {
            return false;
        }
        let dom = self.days.contains(&d.day());
        let dow = self.weekdays.contains(&d.weekday().num_days_from_sunday());
        match (self.days_any, self.weekdays_any) {
            (true, true) => true,
            (true, false) => dow,
            (false, true) => dom,
            (false, false) => dom || dow,
        }
    }

    /// The first wall time matching the expression strictly after `after`.
    fn next_naive(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        let mut t = after.with_nanosecond(0)? + Duration::seconds(1);
        let end = after + Duration::days(HORIZON_DAYS);
        while t <= end {
            if !self.day_matches(t.date()) {
                t = t.date().succ_opt()?.and_hms_opt(0, 0, 0)?;
                continue;
            }
            let Some(h) = self.hours.range(t.hour()..).next() else {
                t = t.date().succ_opt()?.and_hms_opt(0, 0, 0)?;
                continue;
            };
            if *h != t.hour() {
                t = t.date().and_hms_opt(*h, 0, 0)?;
                continue;
            }
            let Some(m) = self.minutes.range(t.minute()..).next() else {
                t = t.date().and_hms_opt(t.hour(), 0, 0)? + Duration::hours(1);
                continue;
            };
            if *m != t.minute() {
                t = t.date().and_hms_opt(t.hour(), *m, 0)?;
                continue;
            }
            let Some(s) = self.seconds.range(t.second()..).next() else {
                t = t.date().and_hms_opt(t.hour(), t.minute(), 0)? + Duration::minutes(1);
                continue;
            };
            return t.date().and_hms_opt(t.hour(), t.minute(), *s);
        }
        None
    }

    /// The next fire time strictly after `after`, in `tz`'s wall time (see the module docs for
    /// DST gaps and repeats).
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let mut local = after.with_timezone(&tz).naive_local();
        loop {
            let wall = self.next_naive(local)?;
            let instant = match tz.from_local_datetime(&wall) {
                LocalResult::Single(t) => t.with_timezone(&Utc),
                // A repeated wall time runs at its first occurrence only.
                LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
                // A skipped wall time runs at the first instant after the gap.
                LocalResult::None => gap_end(tz, wall)?,
            };
            if instant > after {
                return Some(instant);
            }
            local = wall;
        }
    }

    /// Fire times in `(after, until]`, at most `limit` of them.
    pub fn between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        tz: Tz,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut t = after;
        while out.len() < limit {
            match self.next_after(t, tz) {
                Some(n) if n <= until => {
                    out.push(n);
                    t = n;
                }
                _ => break,
            }
        }
        out
    }
}

/// The instant a DST gap containing the wall time `wall` ends: the transition itself, whose
/// wall time is the first one after the gap.
fn gap_end(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    use chrono::Offset as _;
    let offset = |t: DateTime<Utc>| tz.offset_from_utc_datetime(&t.naive_utc()).fix();
    // Read with the offset from before the gap, the wall time lands past the transition.
    let before = tz
        .offset_from_local_datetime(&(wall - Duration::days(1)))
        .earliest()?
        .fix();
    let probe = (wall - Duration::seconds(i64::from(before.local_minus_utc()))).and_utc();
    let after = offset(probe);
    // The transition lies within the day before `probe`: bisect to the second.
    let at = |secs: i64| DateTime::<Utc>::from_timestamp(secs, 0);
    let (mut lo, mut hi) = (probe.timestamp() - 86_400, probe.timestamp());
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if offset(at(mid)?) == after {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let hi = at(hi)?;
    Some(hi)
}

fn is_any(spec: &str) -> bool {
    spec == "*" || spec == "?"
}

fn parse_value(text: &str, lo: u32, hi: u32, names: &[&str]) -> Result<u32, String> {
    let upper = text.to_ascii_uppercase();
    if let Some(i) = names.iter().position(|n| *n == upper) {
        // Months count from 1, weekdays from 0 (SUN).
        return Ok(i as u32 + u32::from(names.len() == MONTHS.len()));
    }
    let v: u32 = text.parse().map_err(|_| {
        format!(
            "{text:?} is not a number{}",
            if names.is_empty() {
                String::new()
            } else {
                format!(" or one of {}", names.join(","))
            }
        )
    })?;
    if v < lo || v > hi {
        return Err(format!("{v} is outside {lo}-{hi}"));
    }
    Ok(v)
}

fn parse_field(spec: &str, lo: u32, hi: u32, names: &[&str]) -> Result<BTreeSet<u32>, String> {
    let mut out = BTreeSet::new();
    for part in spec.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("step {s:?} is not a positive number"))?;
                (r, step)
            }
            None => (part, 1),
        };
        let (a, b) = if range == "*" || range == "?" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (
                parse_value(a, lo, hi, names)?,
                parse_value(b, lo, hi, names)?,
            );
            if a > b {
                return Err(format!("range {a}-{b} runs backwards"));
            }
            (a, b)
        } else {
            let a = parse_value(range, lo, hi, names)?;
            // `5/15`: from 5 to the end in steps of 15.
            (a, if part.contains('/') { hi } else { a })
        };
        out.extend((a..=b).step_by(step as usize));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn fields_parse_and_bad_ones_are_named() {
        let e = CronExpr::parse("*/15 9-17 * JAN,jul MON-FRI").unwrap();
        assert_eq!(e.minutes, [0, 15, 30, 45].into());
        assert_eq!(e.hours.len(), 9);
        assert_eq!(e.months, [1, 7].into());
        assert_eq!(e.weekdays, [1, 2, 3, 4, 5].into());
        assert_eq!(CronExpr::parse("0 0 * * 7").unwrap().weekdays, [0].into());
        assert_eq!(CronExpr::parse("*/2 * * * * *").unwrap().seconds.len(), 30);
        for (bad, want) in [
            ("* * * *", "expected 5 fields"),
            ("61 * * * *", "minute field \"61\": 61 is outside 0-59"),
            ("* 24 * * *", "hour field"),
            ("* * 0 * *", "day-of-month field"),
            ("* * * 13 *", "month field"),
            ("* * * * FUNDAY", "day-of-week field"),
            ("*/0 * * * *", "step \"0\""),
            ("5-1 * * * *", "runs backwards"),
            ("0 0 30 2 *", "never fires"),
        ] {
            let e = CronExpr::parse(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn next_fire_times_in_utc() {
        let e = CronExpr::parse("30 3 * * *").unwrap();
        assert_eq!(
            e.next_after(utc("2026-01-10T03:30:00Z"), Tz::UTC),
            Some(utc("2026-01-11T03:30:00Z"))
        );
        let e = CronExpr::parse("0 0 1,15 * MON").unwrap(); // either day field
        let got = e.between(
            utc("2026-06-01T00:00:00Z"),
            utc("2026-06-16T00:00:00Z"),
            Tz::UTC,
            10,
        );
        let days: Vec<u32> = got.iter().map(|t| t.day()).collect();
        assert_eq!(days, [8, 15]); // 1 June 2026 is a Monday: excluded by (after, ...]
        let e = CronExpr::parse("*/20 * * * * *").unwrap();
        assert_eq!(
            e.next_after(utc("2026-01-01T00:00:41Z"), Tz::UTC),
            Some(utc("2026-01-01T00:01:00Z"))
        );
    }
}
