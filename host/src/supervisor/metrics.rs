//! `/metrics`: the board's numbers in the OpenMetrics text format, written by the
//! Prometheus client crate (`prometheus-client`), which also escapes label values. The
//! counts live in the pipelines' stats; a collector reads them at each scrape. Latency
//! histograms are observed where the work happens (`pipeline::Latency`).

use super::status::{PipelineStatus, Status, Totals};
use crate::pipeline::{Latency, StageStats};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Per-pipeline counters: name (without `_total`), help, value.
type PipelineMetric = (&'static str, &'static str, fn(&PipelineStatus) -> u64);
const PIPELINE_COUNTERS: [PipelineMetric; 5] = [
    ("records", "Source records read.", |p| p.records),
    ("checkpoints", "Checkpoints written.", |p| p.checkpoints),
    (
        "checkpoint_failures",
        "Checkpoints not written (a snapshot or a sink failed).",
        |p| p.checkpoint_failures,
    ),
    ("decode_errors", "Records that could not be decoded.", |p| {
        p.decode_errors
    }),
    ("dead_letters", "Rows sent to the dead-letter sink.", |p| {
        p.dead_letters
    }),
];

/// Per-stage metrics: name, help, whether a counter (else a gauge), value.
type StageMetric = (&'static str, &'static str, bool, fn(&StageStats) -> f64);
const STAGE_METRICS: [StageMetric; 16] = [
    ("stage_rows_in", "Rows given to a stage.", true, |s| {
        s.rows_in as f64
    }),
    ("stage_rows_out", "Rows a stage produced.", true, |s| {
        s.rows_out as f64
    }),
    (
        "stage_failures",
        "Plugin calls that failed (trap, deadline, bad output).",
        true,
        |s| s.failures as f64,
    ),
    (
        "stage_timeouts",
        "Plugin calls stopped at their deadline (also counted as failures).",
        true,
        |s| s.timeouts as f64,
    ),
    (
        "stage_plugin_errors",
        "Errors plugins returned for a batch.",
        true,
        |s| s.plugin_errors as f64,
    ),
    (
        "stage_dead_letters",
        "Rows a stage sent to the dead letters (rejected, late, or in a failed batch).",
        true,
        |s| s.dead_letters as f64,
    ),
    (
        "stage_restarts",
        "Plugin instances re-created after a failure.",
        true,
        |s| s.restarts as f64,
    ),
    (
        "stage_quarantined",
        "1 while a stage's plugin is no longer called.",
        false,
        |s| f64::from(u8::from(s.quarantined)),
    ),
    (
        "stage_busy_seconds",
        "Time spent in the plugin.",
        true,
        |s| s.busy_ns as f64 / 1e9,
    ),
    (
        "stage_cpu_seconds",
        "CPU time of the threads calling the plugin, during its calls.",
        true,
        |s| s.cpu_ns as f64 / 1e9,
    ),
    (
        "stage_snapshots",
        "State snapshots the plugin gave (checkpoints, and bounding the redo log).",
        true,
        |s| s.snapshots as f64,
    ),
    (
        "stage_snapshot_seconds",
        "Time spent in those snapshots (not in busy seconds).",
        true,
        |s| s.snapshot_ns as f64 / 1e9,
    ),
    (
        "stage_logs_dropped",
        "Log lines a plugin wrote beyond its stage's log_lines_per_second, dropped.",
        true,
        |s| s.logs_dropped as f64,
    ),
    (
        "stage_counters_dropped",
        "Counter additions to names beyond the stage's `counters` budget, dropped.",
        true,
        |s| s.counters_dropped as f64,
    ),
    (
        "stage_canary_rows_compared",
        "Rows of the running version's output its canary's was compared with.",
        false,
        |s| s.canary.as_ref().map_or(0.0, |c| c.rows_current as f64),
    ),
    (
        "stage_canary_rows_differing",
        "Rows that differed between the running version and its canary.",
        false,
        |s| s.canary.as_ref().map_or(0.0, |c| c.diff.differing() as f64),
    ),
];

/// What one scrape reports.
#[derive(Debug)]
struct Board {
    status: Status,
    totals: Totals,
}

pub(super) fn prometheus(status: Status, totals: Totals) -> String {
    let mut registry = Registry::with_prefix("adstream");
    registry.register_collector(Box::new(Board { status, totals }));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)
        .expect("writing to a String does not fail");
    out
}

/// Writes one family: `rows` of labels and a value each.
fn family(
    e: &mut DescriptorEncoder,
    (name, help): (&str, &str),
    counter: bool,
    rows: Vec<(Labels, f64)>,
) -> Result<(), std::fmt::Error> {
    let kind = if counter {
        MetricType::Counter
    } else {
        MetricType::Gauge
    };
    let mut f = e.encode_descriptor(name, help, None, kind)?;
    for (labels, v) in rows {
        let m = f.encode_family(&labels)?;
        // Whole numbers are written as integers (`3`, not `3.0`), as counts read best.
        let whole = v.fract() == 0.0 && v.abs() < 9e15;
        match (counter, whole) {
            (true, true) => ConstCounter::new(v as u64).encode(m)?,
            (true, false) => ConstCounter::new(v).encode(m)?,
            (false, true) => ConstGauge::new(v as i64).encode(m)?,
            (false, false) => ConstGauge::new(v).encode(m)?,
        }
    }
    Ok(())
}

fn histograms(
    e: &mut DescriptorEncoder,
    (name, help): (&str, &str),
    rows: Vec<(Labels, &Latency)>,
) -> Result<(), std::fmt::Error> {
    let mut f = e.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, h) in rows {
        h.0.encode(f.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for Board {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        pipeline_families(&mut e, &self.status)?;
        stage_families(&mut e, &self.status)?;
        sink_families(&mut e, &self.status)?;
        let changes = self.totals.iter().map(|((pipeline, kind, accepted), n)| {
            let outcome = if *accepted { "applied" } else { "rejected" };
            let labels = vec![
                ("pipeline", pipeline.clone()),
                ("kind", kind.to_string()),
                ("outcome", outcome.into()),
            ];
            (labels, *n as f64)
        });
        let help = "Plugin swaps, pipeline edits and canary verdicts, by outcome.";
        family(&mut e, ("changes", help), true, changes.collect())
    }
}

fn pipeline_families(e: &mut DescriptorEncoder, s: &Status) -> Result<(), std::fmt::Error> {
    let pipeline = |p: &PipelineStatus| vec![("pipeline", p.name.clone())];
    for (name, help, f) in PIPELINE_COUNTERS {
        let rows = s.pipelines.iter().map(|p| (pipeline(p), f(p) as f64));
        family(e, (name, help), true, rows.collect())?;
    }
    let reasons = s.pipelines.iter().flat_map(|p| {
        p.dead_letters_by_reason.iter().map(|(r, n)| {
            let labels = vec![("pipeline", p.name.clone()), ("reason", r.to_string())];
            (labels, *n as f64)
        })
    });
    let help = "Rows sent to the dead-letter sink, by reason.";
    family(e, ("dead_letters_by_reason", help), true, reasons.collect())?;
    let age = (s.pipelines.iter()).filter_map(|p| Some((pipeline(p), p.checkpoint_age_s?)));
    let help = "Seconds since the newest checkpoint was written.";
    family(e, ("checkpoint_age_seconds", help), false, age.collect())?;
    let stalled = (s.pipelines.iter())
        .map(|p| (pipeline(p), f64::from(u8::from(p.source_stalled.is_some()))));
    let help = "1 while the source has records waiting but delivers none.";
    family(e, ("source_stalled", help), false, stalled.collect())?;
    let lag = s.pipelines.iter().flat_map(|p| {
        p.source_lag.iter().map(|(part, n)| {
            let labels = vec![
                ("pipeline", p.name.clone()),
                ("partition", part.to_string()),
            ];
            (labels, *n as f64)
        })
    });
    let help = "Records behind each source partition's end (Kafka sources).";
    family(e, ("source_lag_records", help), false, lag.collect())?;
    let owned = (s.pipelines.iter()).map(|p| (pipeline(p), p.partitions.len() as f64));
    let help = "Source partitions this host reads (for a shared source, its share).";
    family(e, ("source_partitions", help), false, owned.collect())?;
    let moved = (s.pipelines.iter()).map(|p| (pipeline(p), p.rebalances as f64));
    let help = "Rebalances that moved partitions of a shared source to or from this host.";
    family(e, ("rebalances", help), true, moved.collect())?;
    let held = s
        .pipelines
        .iter()
        .map(|p| (pipeline(p), &p.rebalance_seconds));
    let help = "Time a rebalance waited for the last cuts of partitions this host let go.";
    histograms(e, ("rebalance_seconds", help), held.collect())?;
    let batches = s.pipelines.iter().map(|p| (pipeline(p), &p.batch_seconds));
    let help = "Time a batch takes through every stage, in seconds.";
    histograms(e, ("batch_seconds", help), batches.collect())
}

fn stage_families(e: &mut DescriptorEncoder, s: &Status) -> Result<(), std::fmt::Error> {
    for (name, help, counter, f) in STAGE_METRICS {
        let rows = stages(s).map(|(labels, st)| (labels, f(st)));
        family(e, (name, help), counter, rows.collect())?;
    }
    let calls = stages(s).map(|(labels, st)| (labels, &st.call_seconds));
    let help = "Time one plugin call takes, in seconds.";
    histograms(e, ("stage_call_seconds", help), calls.collect())
}

fn sink_families(e: &mut DescriptorEncoder, s: &Status) -> Result<(), std::fmt::Error> {
    let sinks = || {
        s.pipelines.iter().flat_map(|p| {
            p.sinks.iter().map(|k| {
                let labels = vec![("pipeline", p.name.clone()), ("sink", k.name.clone())];
                (labels, k)
            })
        })
    };
    let help = "Batches waiting in a sink's queue.";
    let queued = sinks().map(|(l, k)| (l, k.queued as f64));
    family(e, ("sink_queued_batches", help), false, queued.collect())?;
    let help = "Writes a sink retried.";
    let retries = sinks().map(|(l, k)| (l, k.retries as f64));
    family(e, ("sink_retries", help), true, retries.collect())?;
    let help = "Alerts a webhook sink's cooldown held back.";
    let held = sinks().map(|(l, k)| (l, k.held_back as f64));
    family(e, ("sink_held_back", help), true, held.collect())?;
    let help =
        "Times a sink found that the service keeping its state (a cooldown's Redis) had lost it.";
    let lost = sinks().map(|(l, k)| (l, k.state_lost as f64));
    family(e, ("sink_state_lost", help), true, lost.collect())
}

/// Every stage with its labels.
fn stages(s: &Status) -> impl Iterator<Item = (Labels, &StageStats)> {
    s.pipelines.iter().flat_map(|p| {
        p.stages.iter().map(move |st| {
            let labels = vec![
                ("pipeline", p.name.clone()),
                ("stage", st.name.clone()),
                ("plugin", st.plugin.name.clone()),
                ("version", st.plugin.version.clone()),
            ];
            (labels, &st.stats)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_cannot_break_out_of_their_quotes() {
        let status = Status {
            started_at: String::new(),
            pipelines: Vec::new(),
            changes: Vec::new(),
        };
        let mut totals = Totals::new();
        totals.insert(("a\"b\\c\nd".into(), "plugin", true), 1);
        let text = prometheus(status, totals);
        assert!(text.contains(r#"pipeline="a\"b\\c\nd""#), "{text}");
    }
}
