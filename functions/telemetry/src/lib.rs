//! Telemetry shared by the `litehouse` CLI and the function binaries: how logs are written
//! ([`logging`]) and the CloudWatch Embedded Metric Format lines a Lambda prints ([`emf`]).

pub mod emf;
pub mod logging;

pub use logging::LogFormat;
