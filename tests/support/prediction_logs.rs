//! Reads back the prediction logs `serve` and the predict Lambda write under a store directory
//! (`prediction-logs/{endpoint}/{deployed_model}/{date}/*.jsonl`), for the tests of every crate.

#![allow(dead_code, clippy::unwrap_used)] // each including test uses part of it

use std::path::Path;

use serde_json::Value;

/// Every record of every prediction-log file under the store directory `dir`.
pub fn records(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join("prediction-logs")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "jsonl") {
                for line in std::fs::read_to_string(&path).unwrap().lines() {
                    out.push(serde_json::from_str(line).unwrap());
                }
            }
        }
    }
    out
}
