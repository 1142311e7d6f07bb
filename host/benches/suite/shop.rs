//! The shop chain (seed 000, `pipelines/shop-demo.toml`'s stages) from a JSON file of
//! generated shop events: events/s over the pipeline's run, and events per CPU-second of
//! the whole process (decoding threads, stages, sinks) — the "per core" figure.

use super::report::{Section, Stat};
use std::path::{Path, PathBuf};
use tokio::sync::watch;

/// `count` generated shop events (a 12-minute day part with the four scenarios) in
/// `dir/shop.jsonl`.
pub async fn events(dir: &Path, count: u64) -> PathBuf {
    let cfg: adstream::config::source::GeneratorConfig = toml::from_str(&format!(
        "kind = \"generator\"\npace = false\nrate = 2000.0\nseed = 7\nstart = 1767225600000\n\
         count = {count}\nbatch_size = 5000\n[shop]"
    ))
    .unwrap();
    let mut source = adstream::sources::generator::GeneratorSource::new(&cfg).unwrap();
    let path = dir.join("shop.jsonl");
    let mut text = Vec::new();
    while let Some(b) = adstream::sources::Source::next_batch(&mut source)
        .await
        .unwrap()
    {
        for i in 0..b.len() {
            text.extend_from_slice(b.record(i));
            text.push(b'\n');
        }
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// The shipped shop demo with a file source of `events` and its sinks in `dir`.
fn pipeline(dir: &Path, events: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shipped = std::fs::read_to_string(root.join("pipelines/shop-demo.toml")).unwrap();
    let rest = shipped[shipped.find("[schema]").unwrap()..]
        .replace(
            "../plugins/dist",
            &super::data::plugins_dir().display().to_string(),
        )
        .replace(
            "path = \"shop-out/",
            &format!("path = \"{}/", dir.display()),
        )
        .replace("kind = \"stdout\"", "kind = \"file\"\npath = \"/dev/null\"")
        .replace("template = ", "# template = ");
    let text = format!(
        "name = \"bench-shop\"\ndead_letter = \"dead_letters\"\n[source]\nkind = \"file\"\n\
         path = \"{}\"\nbatch_size = 5000\n{rest}",
        events.display()
    );
    let path = dir.join("shop.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// CPU seconds (user + system) this process has used.
fn cpu_seconds() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

pub async fn run(
    engine: &adstream::plugin::PluginEngine,
    dir: &Path,
    count: u64,
    n: usize,
) -> Section {
    let events = events(dir, count).await;
    let (mut rates, mut per_cpu) = (Vec::new(), Vec::new());
    let mut busy: Vec<(String, Vec<f64>)> = Vec::new();
    for _ in 0..n {
        let cfg = super::data::load(&pipeline(dir, &events));
        let p = adstream::pipeline::build(&cfg, engine).unwrap_or_else(|d| panic!("{d:#?}"));
        let (_tx, rx) = watch::channel(false);
        let cpu = cpu_seconds();
        let summary = adstream::pipeline::run(p, rx, None).await.unwrap();
        let records = summary.stats.records as f64;
        per_cpu.push(records / (cpu_seconds() - cpu));
        rates.push(records / summary.elapsed.as_secs_f64());
        for (i, (name, s)) in summary.stats.stages.iter().enumerate() {
            let us = s.busy_ns as f64 / 1e3 / s.rows_in.max(1) as f64;
            match busy.get_mut(i) {
                Some((_, v)) => v.push(us),
                None => busy.push((name.clone(), vec![us])),
            }
        }
    }
    let stages = (busy.into_iter())
        .map(|(name, v)| format!("{name} {:.3}", Stat::of(v).median))
        .collect::<Vec<_>>()
        .join(", ");
    Section {
        title: "The shop chain from a JSON file",
        about: format!(
            "`pipelines/shop-demo.toml`'s stages (quality with 17 rules, pii-hash, six \
             shop-metrics reports, metric-alerts, slack-format) over {count} generated shop \
             events read from a file (batches of 5000) into file sinks, in this process: \
             events/s over the pipeline's run, events per CPU-second of the whole process \
             (user + system time of every thread: decoding, stages, sinks), median (min–max) \
             of {n} runs; and each stage's µs per row (time inside its plugin calls, median)."
        ),
        header: vec!["events/s", "events per CPU-second", "µs/row by stage"],
        rows: vec![vec![
            Stat::of(rates).rate(),
            Stat::of(per_cpu).rate(),
            stages,
        ]],
    }
}
