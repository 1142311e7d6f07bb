//! The seed's chains from a JSON file, as `adstream run` runs them: read, decode, every
//! stage, sinks; events/s over the pipeline's own time, and each stage's share.

use super::data::{self, ANOMALIES, PII, QUALITY, WINDOWS};
use super::report::{Section, Stat};
use std::path::Path;
use tokio::sync::watch;

/// Runs `stages` over `events` `n` times; the events/s of each run and each stage's
/// median µs per row.
pub async fn chain(
    engine: &adstream::plugin::PluginEngine,
    dir: &Path,
    events: &Path,
    stages: &[&str],
    n: usize,
) -> (Stat, Vec<(String, f64)>) {
    let mut rates = Vec::new();
    let mut busy: Vec<(String, Vec<f64>)> = Vec::new();
    for _ in 0..n {
        let cfg = data::load(&data::pipeline(dir, events, 5000, stages));
        let p = adstream::pipeline::build(&cfg, engine).unwrap_or_else(|d| panic!("{d:#?}"));
        let (_tx, rx) = watch::channel(false);
        let summary = adstream::pipeline::run(p, rx, None).await.unwrap();
        let records = summary.stats.records as f64;
        rates.push(records / summary.elapsed.as_secs_f64());
        for (i, (name, s)) in summary.stats.stages.iter().enumerate() {
            let us = s.busy_ns as f64 / 1e3 / s.rows_in.max(1) as f64;
            match busy.get_mut(i) {
                Some((_, v)) => v.push(us),
                None => busy.push((name.clone(), vec![us])),
            }
        }
    }
    let stages = busy
        .into_iter()
        .map(|(name, v)| (name, Stat::of(v).median))
        .collect();
    (Stat::of(rates), stages)
}

pub async fn run(
    engine: &adstream::plugin::PluginEngine,
    dir: &Path,
    events: &Path,
    n: usize,
) -> Section {
    let chains: [(&str, Vec<&str>); 2] = [
        ("windows → anomaly-ema", vec![WINDOWS, ANOMALIES]),
        (
            "pii-hash → quality → windows → anomaly-ema",
            vec![PII, QUALITY, WINDOWS, ANOMALIES],
        ),
    ];
    let mut rows = Vec::new();
    for (name, stages) in chains {
        let (rate, per_stage) = chain(engine, dir, events, &stages, n).await;
        let shares = per_stage
            .iter()
            .map(|(s, us)| format!("{s} {us:.3}"))
            .collect::<Vec<_>>()
            .join(", ");
        rows.push(vec![name.to_string(), rate.rate(), shares]);
    }
    Section {
        title: "Chains from a JSON file",
        about: format!(
            "`adstream run` of a file source (batches of 5000, `quality` with its three \
             stateless rules) through the stages into a file sink, in this process: \
             events/s over the pipeline's run, median (min–max) of {n} runs; and each \
             stage's µs per row (time inside its plugin calls, median)."
        ),
        header: vec!["chain", "events/s", "µs/row by stage"],
        rows,
    }
}
