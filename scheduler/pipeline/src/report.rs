//! `litehouse pipeline compare`: one metric across a pipeline's runs and the versions they
//! registered, as rows for a table and as an SVG chart (the champion marked, gated and failed
//! runs drawn apart, the gate's threshold as a line).

use std::fmt::Write as _;

use serde::Serialize;

use crate::run::record::{RunRecord, RunState};

/// One run in a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The run.
    pub run: String,
    /// How it ended.
    pub state: RunState,
    /// When it started (RFC 3339).
    pub started: String,
    /// The model version it registered.
    pub version: Option<u64>,
    /// The role it was deployed in.
    pub role: Option<String>,
    /// The metric's value for the run's candidate.
    pub value: Option<f64>,
    /// Whether its version is the champion now.
    pub champion: bool,
}

/// A metric across runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The pipeline.
    pub pipeline: String,
    /// The metric compared.
    pub metric: String,
    /// The gate's threshold, when the runs had one.
    pub threshold: Option<f64>,
    /// The champion version now.
    pub champion: Option<u64>,
    /// Runs, oldest first.
    pub rows: Vec<Row>,
}

/// The model name a run registered under: the `name` input of the task that output a version.
pub fn model_name(r: &RunRecord) -> Option<String> {
    r.tasks
        .values()
        .find(|t| t.outputs.contains_key("version"))
        .or_else(|| r.tasks.values().find(|t| t.inputs.contains_key("name")))
        .and_then(|t| t.inputs.get("name"))
        .and_then(|v| v.as_str())
        .map(String::from)
}

/// `metric` `auto`: the one the latest gate judged by, else accuracy when the runs measured
/// it, else r2, else the first figure.
pub fn pick_metric(runs: &[RunRecord], metric: &str) -> String {
    if metric != "auto" {
        return metric.into();
    }
    let gated_on = runs.iter().rev().find_map(|r| {
        r.tasks.values().find_map(|t| {
            t.inputs
                .get("metric")
                .and_then(|m| m.as_str())
                .filter(|m| *m != "auto" && t.inputs.contains_key("threshold"))
                .map(String::from)
        })
    });
    if let Some(m) = gated_on {
        return m;
    }
    let all: Vec<String> = runs.iter().flat_map(|r| r.metrics().into_keys()).collect();
    for m in ["accuracy", "r2"] {
        if all.iter().any(|k| k == m) {
            return m.into();
        }
    }
    all.into_iter().next().unwrap_or_else(|| "accuracy".into())
}

/// Builds the comparison of `runs` on `metric`.
pub fn compare(
    pipeline: &str,
    runs: &[RunRecord],
    metric: &str,
    champion: Option<u64>,
) -> Comparison {
    let metric = pick_metric(runs, metric);
    let threshold = runs.iter().rev().find_map(|r| {
        r.tasks.values().find_map(|t| {
            let same = t.inputs.get("metric").and_then(|m| m.as_str());
            let applies = matches!(same, Some(m) if m == metric || m == "auto");
            applies
                .then(|| t.inputs.get("threshold").and_then(|v| v.as_f64()))
                .flatten()
        })
    });
    let rows = runs
        .iter()
        .map(|r| {
            let version = r.version();
            Row {
                run: r.run.clone(),
                state: r.state,
                started: r.started.to_rfc3339(),
                version,
                role: r.role().map(String::from),
                value: r.metrics().get(&metric).copied(),
                champion: version.is_some() && version == champion,
            }
        })
        .collect();
    Comparison {
        pipeline: pipeline.into(),
        metric,
        threshold,
        champion,
        rows,
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The comparison as an SVG line chart: one point per run, the champion ringed and labelled,
/// gated runs hollow, failed runs as a cross on the axis, the threshold dashed.
pub fn svg(c: &Comparison) -> String {
    let (w, h) = (760.0_f64, 360.0_f64);
    let (left, right, top, bottom) = (64.0, 24.0, 48.0, 72.0);
    let values: Vec<f64> = c
        .rows
        .iter()
        .filter_map(|r| r.value)
        .chain(c.threshold)
        .collect();
    let (mut lo, mut hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(*v), b.max(*v))
        });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi - lo < 1e-9 {
        (lo, hi) = (lo - 0.5, hi + 0.5);
    }
    let pad = (hi - lo) * 0.1;
    let (lo, hi) = (lo - pad, hi + pad);
    let n = c.rows.len().max(1);
    let x = |i: usize| {
        if n == 1 {
            left + (w - left - right) / 2.0
        } else {
            left + (w - left - right) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| top + (h - top - bottom) * (1.0 - (v - lo) / (hi - lo));
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="{left}" y="24" font-size="15" font-weight="bold">{} · {} per run</text>
"##,
        escape(&c.pipeline),
        escape(&c.metric)
    );
    // Axes and five gridlines with their values.
    for k in 0..=4 {
        let v = lo + (hi - lo) * k as f64 / 4.0;
        let yy = y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{v:.3}</text>"##,
            w - right,
            left - 6.0,
            yy + 4.0
        );
    }
    if let Some(t) = c.threshold {
        let yy = y(t);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#d97706" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#d97706">gate {t}</text>"##,
            w - right,
            w - right,
            yy - 5.0
        );
    }
    let points: Vec<String> = c
        .rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.value.map(|v| format!("{:.1},{:.1}", x(i), y(v))))
        .collect();
    if points.len() > 1 {
        let _ = writeln!(
            s,
            r##"<polyline points="{}" fill="none" stroke="#2563eb" stroke-width="2"/>"##,
            points.join(" ")
        );
    }
    for (i, r) in c.rows.iter().enumerate() {
        let xx = x(i);
        let label = match r.version {
            Some(v) => format!("{} (v{v})", r.run),
            None => r.run.clone(),
        };
        let _ = writeln!(
            s,
            r##"<text transform="translate({xx:.1},{:.1}) rotate(-30)" text-anchor="end" fill="#333">{}</text>"##,
            h - bottom + 16.0,
            escape(&label)
        );
        match (r.value, r.state) {
            (Some(v), state) => {
                let yy = y(v);
                let (fill, stroke) = match state {
                    RunState::Gated => ("#ffffff", "#6b7280"),
                    RunState::Failed => ("#ffffff", "#dc2626"),
                    _ => ("#2563eb", "#2563eb"),
                };
                let _ = writeln!(
                    s,
                    r##"<circle cx="{xx:.1}" cy="{yy:.1}" r="5" fill="{fill}" stroke="{stroke}" stroke-width="2"><title>{}: {} {v:.4} ({})</title></circle>"##,
                    escape(&r.run),
                    escape(&c.metric),
                    state.name()
                );
                if r.champion {
                    let _ = writeln!(
                        s,
                        r##"<circle cx="{xx:.1}" cy="{yy:.1}" r="10" fill="none" stroke="#16a34a" stroke-width="2.5"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle" fill="#16a34a" font-weight="bold">champion</text>"##,
                        yy - 16.0
                    );
                }
            }
            (None, state) => {
                let yy = h - bottom - 8.0;
                let _ = writeln!(
                    s,
                    r##"<text x="{xx:.1}" y="{yy:.1}" text-anchor="middle" fill="#dc2626" font-size="14">×<title>{}: no {} ({})</title></text>"##,
                    escape(&r.run),
                    escape(&c.metric),
                    state.name()
                );
            }
        }
    }
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">filled: deployed · hollow grey: gated · ×: failed before scoring</text>"##,
        w - right,
        h - 8.0
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(run: &str, state: RunState, version: Option<u64>, value: Option<f64>) -> Row {
        Row {
            run: run.into(),
            state,
            started: String::new(),
            version,
            role: None,
            value,
            champion: version == Some(1),
        }
    }

    #[test]
    fn the_chart_marks_the_champion_and_draws_every_run() {
        let c = Comparison {
            pipeline: "p<1>".into(),
            metric: "accuracy".into(),
            threshold: Some(0.9),
            champion: Some(1),
            rows: vec![
                row("r1", RunState::Succeeded, Some(1), Some(0.95)),
                row("r2", RunState::Gated, None, Some(0.5)),
                row("r3", RunState::Failed, None, None),
            ],
        };
        let s = svg(&c);
        assert!(s.starts_with("<svg"));
        assert!(s.trim_end().ends_with("</svg>"));
        assert_eq!(s.matches(">champion<").count(), 1);
        assert!(s.contains("r1 (v1)") && s.contains(">r2<") && s.contains(">r3<"));
        assert!(s.contains("gate 0.9"));
        assert!(s.contains("p&lt;1&gt;"), "names are escaped");
        assert!(s.contains("r3: no accuracy (failed)"));
    }
}
