//! Schedules for litehouse pipelines: cron expressions evaluated in IANA time zones (DST gaps
//! and repeats handled), schedule files, ticks run exactly once across any number of daemons
//! by leases taken with conditional writes in the store, the daemon, and the trigger the
//! scheduled Lambda calls.

pub mod daemon;
pub mod error;
pub mod export;
pub mod expr;
pub mod runner;
pub mod schedule;
pub mod template;
pub mod ticks;
pub mod trigger;

pub use error::{CronError, Result};
pub use expr::CronExpr;
pub use schedule::{Missed, Overlap, Schedule};
