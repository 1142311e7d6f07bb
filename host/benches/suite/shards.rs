//! One shard against two: the chain pii-hash → quality → windows → anomaly-ema with every
//! stage in one shard, then in two, each stage keyed by what its state is (so each is cut
//! on its own), or all keyed alike (one chain, cut once); from the JSON file as `adstream
//! run` runs it (decoding shares the same two cores), and over batches decoded beforehand
//! (the stages alone, which is the work shards share).

use super::chains::chain;
use super::data::{self, ANOMALIES, PII, QUALITY, WINDOWS};
use super::report::{Section, Stat, repeat};
use adstream::batch::{DeadLetters, Envelope};
use adstream_sdk::Batch;
use std::path::Path;
use std::time::Instant;

/// `stage` (one of the bench's stage tables) in `n` shards; `alike`: keyed as the windows
/// are, so that the stages' shards line up in one chain.
fn in_shards(stage: &str, n: usize, alike: bool) -> String {
    let by = match stage {
        _ if alike => "shard_by = [\"country\", \"ad_format\"]\n",
        // pii-hash reuses the previous row's hash of an equal id: keyed by user, a user's
        // rows stay together.
        s if s == PII => "shard_by = [\"user_id\"]\n",
        s if s == QUALITY => "shard_by = [\"event_id\"]\n",
        s if s == WINDOWS || s == ANOMALIES => "shard_by = [\"country\", \"ad_format\"]\n",
        _ => "",
    };
    let name_end = stage.find("\nplugin").expect("a stage table");
    let (head, tail) = stage.split_at(name_end + 1);
    format!("{head}shards = {n}\n{by}{tail}")
}

/// Events/s of the stages alone over `batches`, each batch through every stage in turn, in
/// `copies` independent pipelines at once, each on its own thread (together).
fn stages_alone(
    engine: &adstream::plugin::PluginEngine,
    dir: &Path,
    events: &Path,
    stages: &[&str],
    batches: &[Batch],
    (n, copies): (usize, usize),
) -> Stat {
    repeat(n, || {
        let cfg = data::load(&data::pipeline(dir, events, 5000, stages));
        let build = || adstream::pipeline::build(&cfg, engine).unwrap_or_else(|d| panic!("{d:#?}"));
        let mut pipelines: Vec<_> = (0..copies).map(|_| build()).collect();
        let began = Instant::now();
        std::thread::scope(|s| {
            for p in &mut pipelines {
                s.spawn(|| through(&mut p.stages, batches));
            }
        });
        let rows: usize = batches.iter().map(Batch::len).sum();
        (rows * copies) as f64 / began.elapsed().as_secs_f64()
    })
}

/// Every batch through `stages`, with a watermark that follows the batches' event time.
fn through(stages: &mut [adstream::pipeline::Stage], batches: &[Batch]) {
    let mut dl = DeadLetters::new("bench");
    let mut watermark = i64::MIN;
    for b in batches {
        let times = b.column("event_time").and_then(|c| c.as_i64s().ok());
        let latest = times.and_then(|t| t.values().iter().copied().max());
        watermark = watermark.max(latest.unwrap_or(i64::MIN).saturating_sub(2000));
        let mut flow = vec![Envelope {
            batch: b.clone(),
            positions: None,
        }];
        for stage in stages.iter_mut() {
            flow = stage.process(flow, watermark, &mut dl).unwrap();
        }
    }
}

fn as_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

pub async fn run(
    engine: &adstream::plugin::PluginEngine,
    dir: &Path,
    events: &Path,
    batches: &[Batch],
    n: usize,
) -> Section {
    let chain_in = |shards: usize, alike: bool| -> Vec<String> {
        [PII, QUALITY, WINDOWS, ANOMALIES]
            .iter()
            .map(|s| in_shards(s, shards, alike))
            .collect()
    };
    let (one, two, two_alike) = (chain_in(1, false), chain_in(2, false), chain_in(2, true));
    let (file_1, _) = chain(engine, dir, events, &as_refs(&one), n).await;
    let (file_2, _) = chain(engine, dir, events, &as_refs(&two_alike), n).await;
    let alone_1 = stages_alone(engine, dir, events, &as_refs(&one), batches, (n, 1));
    let alone_2 = stages_alone(engine, dir, events, &as_refs(&two), batches, (n, 1));
    let alike_2 = stages_alone(engine, dir, events, &as_refs(&two_alike), batches, (n, 1));
    // The machine's own ceiling: two pipelines that share nothing, one per core.
    let apart = stages_alone(engine, dir, events, &as_refs(&one), batches, (n, 2));
    let row = |what: &str, a: Stat, b: Stat| {
        let ratio = format!("{:.2}", b.median / a.median);
        vec![what.to_string(), a.rate(), b.rate(), ratio]
    };
    Section {
        title: "Shards",
        about: format!(
            "pii-hash → quality (3 stateless rules) → windows → anomaly-ema, every stage in \
             1 shard and in 2, {} cores. Each stage keyed on its own: pii-hash by user_id, \
             quality by event_id, windows and anomaly-ema by country and ad_format (each \
             stage cuts its input; windows → anomaly-ema run as one chain). One chain: every \
             stage by country and ad_format (cut once). From the JSON file: `adstream run` \
             in this process, decoding included, as one chain. Stages alone: decoded batches of 5000 through the stages. The ceiling: \
             two copies of the 1-shard pipeline sharing nothing, each on its own thread, \
             each through every batch (their events together). Events/s, median (min–max) \
             of {n} runs.",
            std::thread::available_parallelism().map_or(1, |c| c.get())
        ),
        header: vec!["what", "1 shard", "2 shards", "2 ÷ 1"],
        rows: vec![
            row("from the JSON file, one chain", file_1, file_2),
            row(
                "stages alone, each stage keyed on its own",
                alone_1,
                alone_2,
            ),
            row("stages alone, one chain", alone_1, alike_2),
            row(
                "stages alone: 1 shard, then two whole copies of the pipeline on two threads (the ceiling)",
                alone_1,
                apart,
            ),
        ],
    }
}
