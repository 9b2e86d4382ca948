//! Log set-up: `tracing` lines as human text or one JSON object per line.
//!
//! The filter comes from `LITEHOUSE_LOG` (an `EnvFilter` directive such as
//! `info,litehouse_serving=debug`), else the caller's default. In a Lambda, the function's
//! log configuration decides: `AWS_LAMBDA_LOG_FORMAT` (`JSON` or `Text`) and
//! `AWS_LAMBDA_LOG_LEVEL` (`TRACE` .. `FATAL`), which AWS sets from the function's
//! `LoggingConfig`. Span fields (a request's `request_id`) are on every line inside the span.

use std::str::FromStr;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, the event's fields
    /// (`message` among them), `span` (the innermost span's fields) and `spans`.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "log format must be 'text' or 'json', got '{other}'"
            )),
        }
    }
}

/// Where a subscriber writes and whether lines carry a time stamp.
#[derive(Debug, Clone, Copy)]
pub struct LogTarget {
    /// Write to stderr (the CLI) instead of stdout (a Lambda, whose stdout CloudWatch reads).
    pub stderr: bool,
    /// Stamp each text line with the time (CloudWatch stamps lines itself).
    pub time: bool,
}

/// Installs the global subscriber. `default_filter` applies when `LITEHOUSE_LOG` is unset.
/// A second call (tests) leaves the first subscriber in place.
pub fn init(format: LogFormat, default_filter: &str, target: LogTarget) {
    let filter =
        EnvFilter::try_from_env("LITEHOUSE_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    let result = match (format, target.stderr, target.time) {
        (LogFormat::Json, true, _) => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .try_init(),
        (LogFormat::Json, false, _) => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        (LogFormat::Text, true, true) => builder.with_writer(std::io::stderr).try_init(),
        (LogFormat::Text, true, false) => builder
            .without_time()
            .with_writer(std::io::stderr)
            .try_init(),
        (LogFormat::Text, false, true) => builder.try_init(),
        (LogFormat::Text, false, false) => builder.without_time().try_init(),
    };
    // Already installed (a test harness, or a library user's own subscriber): keep theirs.
    drop(result);
}

/// What a Lambda's log configuration asks for, read from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaLogConfig {
    /// `AWS_LAMBDA_LOG_FORMAT`: `JSON` gives JSON lines, anything else text.
    pub format: LogFormat,
    /// `AWS_LAMBDA_LOG_LEVEL` as an `EnvFilter` directive, else `default_filter`.
    pub filter: String,
}

impl LambdaLogConfig {
    /// Reads the configuration from a variable lookup (the process environment in
    /// [`init_lambda`]; a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>, default_filter: &str) -> Self {
        let format = match lookup("AWS_LAMBDA_LOG_FORMAT") {
            Some(f) if f.eq_ignore_ascii_case("json") => LogFormat::Json,
            _ => LogFormat::Text,
        };
        let filter = lookup("AWS_LAMBDA_LOG_LEVEL")
            .and_then(|level| lambda_level(&level))
            .map_or_else(|| default_filter.to_string(), str::to_string);
        LambdaLogConfig { format, filter }
    }
}

/// Lambda's level names as `tracing` levels; FATAL has no own level in `tracing`, so it keeps
/// errors only.
fn lambda_level(level: &str) -> Option<&'static str> {
    Some(match level.to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        _ => return None,
    })
}

/// Installs the subscriber a function binary uses: stdout, no time stamp, format and level from
/// the Lambda's log configuration (`LITEHOUSE_LOG` still overrides the level).
pub fn init_lambda(default_filter: &str) {
    let config = LambdaLogConfig::from_lookup(|k| std::env::var(k).ok(), default_filter);
    init(
        config.format,
        &config.filter,
        LogTarget {
            stderr: false,
            time: false,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> LambdaLogConfig {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LambdaLogConfig::from_lookup(
            |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            "info",
        )
    }

    #[test]
    fn lambda_json_format_and_level_are_followed() {
        let c = config(&[
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
        ]);
        assert_eq!(c.format, LogFormat::Json);
        assert_eq!(c.filter, "debug");
    }

    #[test]
    fn lambda_defaults_are_text_at_the_callers_level() {
        let c = config(&[]);
        assert_eq!(c.format, LogFormat::Text);
        assert_eq!(c.filter, "info");
    }

    #[test]
    fn lambda_fatal_keeps_errors_and_unknown_levels_fall_back() {
        assert_eq!(config(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]).filter, "error");
        assert_eq!(config(&[("AWS_LAMBDA_LOG_LEVEL", "LOUD")]).filter, "info");
        assert_eq!(
            config(&[("AWS_LAMBDA_LOG_FORMAT", "Text")]).format,
            LogFormat::Text
        );
    }

    #[test]
    fn log_format_parses_case_blind_and_names_the_choices() {
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Text));
        let err = "xml".parse::<LogFormat>().unwrap_err();
        assert!(
            err.contains("'text' or 'json'") && err.contains("xml"),
            "{err}"
        );
    }
}
