//! `/metrics`: the board's numbers in Prometheus' text format.

use super::status::{PipelineStatus, Status, Totals};
use crate::pipeline::StageStats;
use std::fmt::Write as _;

/// Per-pipeline counters: name, help, value.
type PipelineMetric = (&'static str, &'static str, fn(&PipelineStatus) -> u64);
const PIPELINE_COUNTERS: [PipelineMetric; 5] = [
    ("records_total", "Source records read.", |p| p.records),
    ("checkpoints_total", "Checkpoints written.", |p| {
        p.checkpoints
    }),
    (
        "checkpoint_failures_total",
        "Checkpoints not written (a snapshot or a sink failed).",
        |p| p.checkpoint_failures,
    ),
    (
        "decode_errors_total",
        "Records that could not be decoded.",
        |p| p.decode_errors,
    ),
    (
        "dead_letters_total",
        "Rows sent to the dead-letter sink.",
        |p| p.dead_letters,
    ),
];

/// Per-stage metrics: name, help, Prometheus type, value.
type StageMetric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&StageStats) -> f64,
);
const STAGE_METRICS: [StageMetric; 8] = [
    (
        "stage_rows_in_total",
        "Rows given to a stage.",
        "counter",
        |s| s.rows_in as f64,
    ),
    (
        "stage_rows_out_total",
        "Rows a stage produced.",
        "counter",
        |s| s.rows_out as f64,
    ),
    (
        "stage_failures_total",
        "Plugin calls that failed (trap, deadline, bad output).",
        "counter",
        |s| s.failures as f64,
    ),
    (
        "stage_restarts_total",
        "Plugin instances re-created after a failure.",
        "counter",
        |s| s.restarts as f64,
    ),
    (
        "stage_quarantined",
        "1 while a stage's plugin is no longer called.",
        "gauge",
        |s| f64::from(u8::from(s.quarantined)),
    ),
    (
        "stage_busy_seconds_total",
        "Time spent in the plugin.",
        "counter",
        |s| s.busy_ns as f64 / 1e9,
    ),
    (
        "stage_canary_rows_compared",
        "Rows of the running version's output its canary's was compared with.",
        "gauge",
        |s| s.canary.as_ref().map_or(0.0, |c| c.rows_current as f64),
    ),
    (
        "stage_canary_rows_differing",
        "Rows that differed between the running version and its canary.",
        "gauge",
        |s| s.canary.as_ref().map_or(0.0, |c| c.diff.differing() as f64),
    ),
];

pub(super) fn prometheus(s: &Status, totals: &Totals) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, help: &str, kind: &str, rows: Vec<(String, f64)>| {
        let _ = writeln!(
            out,
            "# HELP adstream_{name} {help}\n# TYPE adstream_{name} {kind}"
        );
        for (labels, v) in rows {
            let _ = writeln!(out, "adstream_{name}{{{labels}}} {v}");
        }
    };
    let per_pipeline = |f: fn(&PipelineStatus) -> u64| {
        s.pipelines
            .iter()
            .map(|p| (format!("pipeline=\"{}\"", esc(&p.name)), f(p) as f64))
            .collect()
    };
    for (name, help, f) in PIPELINE_COUNTERS {
        metric(name, help, "counter", per_pipeline(f));
    }
    let gauge = |f: fn(&PipelineStatus) -> Option<f64>| gauge_rows(s, f);
    metric(
        "checkpoint_age_seconds",
        "Seconds since the newest checkpoint was written.",
        "gauge",
        gauge(|p| p.checkpoint_age_s),
    );
    metric(
        "source_stalled",
        "1 while the source has records waiting but delivers none.",
        "gauge",
        gauge(|p| Some(f64::from(u8::from(p.source_stalled.is_some())))),
    );
    for (name, help, kind, f) in STAGE_METRICS {
        metric(name, help, kind, stage_rows(s, f));
    }
    metric(
        "dead_letters_by_reason_total",
        "Rows sent to the dead-letter sink, by reason.",
        "counter",
        reason_rows(s),
    );
    metric(
        "changes_total",
        "Plugin swaps and pipeline edits tried, by outcome.",
        "counter",
        change_rows(totals),
    );
    out
}

fn stage_rows(s: &Status, f: fn(&StageStats) -> f64) -> Vec<(String, f64)> {
    s.pipelines
        .iter()
        .flat_map(|p| {
            p.stages.iter().map(move |st| {
                let labels = format!(
                    "pipeline=\"{}\",stage=\"{}\",plugin=\"{}\",version=\"{}\"",
                    esc(&p.name),
                    esc(&st.name),
                    esc(&st.plugin.name),
                    esc(&st.plugin.version)
                );
                (labels, f(&st.stats))
            })
        })
        .collect()
}

fn reason_rows(s: &Status) -> Vec<(String, f64)> {
    s.pipelines
        .iter()
        .flat_map(|p| {
            p.dead_letters_by_reason.iter().map(|(reason, n)| {
                let labels = format!("pipeline=\"{}\",reason=\"{reason}\"", esc(&p.name));
                (labels, *n as f64)
            })
        })
        .collect()
}

fn gauge_rows(s: &Status, f: fn(&PipelineStatus) -> Option<f64>) -> Vec<(String, f64)> {
    s.pipelines
        .iter()
        .filter_map(|p| Some((format!("pipeline=\"{}\"", esc(&p.name)), f(p)?)))
        .collect()
}

fn change_rows(totals: &Totals) -> Vec<(String, f64)> {
    totals
        .iter()
        .map(|((pipeline, kind, accepted), n)| {
            let outcome = if *accepted { "applied" } else { "rejected" };
            let pipeline = esc(pipeline);
            let labels = format!("pipeline=\"{pipeline}\",kind=\"{kind}\",outcome=\"{outcome}\"");
            (labels, *n as f64)
        })
        .collect()
}

/// A label value as the text format writes one: backslash, quote and newline escaped.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values_cannot_break_out_of_their_quotes() {
        assert_eq!(super::esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
