//! One shard against two: the chain pii-hash → quality → windows → anomaly-ema with every
//! stage in one shard, then in two, each stage keyed by what its state is (so each is cut
//! on its own), or all keyed alike (one chain, cut once); from the JSON file as `adstream
//! run` runs it (decoding shares the same two cores), and over batches decoded beforehand
//! (the stages alone, which is the work shards share).

use super::chains::chain;
use super::data::{self, ANOMALIES, PII, QUALITY, WINDOWS};
use super::report::{Section, Stat};
use adstream::batch::{DeadLetters, Envelope};
use adstream::pipeline::{lines_up, process_chain};
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
    stages: &[String],
    batches: &[Batch],
    copies: usize,
) -> f64 {
    let cfg = data::load(&data::pipeline(dir, events, 5000, &as_refs(stages)));
    let build = || adstream::pipeline::build(&cfg, engine).unwrap_or_else(|d| panic!("{d:#?}"));
    let mut pipelines: Vec<_> = (0..copies).map(|_| build()).collect();
    // The batches are copied before the clock starts: a source hands the processor its
    // batches, and a copy on the processor's thread would be serial work the shards wait on.
    let mut owned: Vec<Vec<Batch>> = (0..copies).map(|_| batches.to_vec()).collect();
    let began = Instant::now();
    std::thread::scope(|s| {
        for (p, batches) in pipelines.iter_mut().zip(&mut owned) {
            s.spawn(move || through(&mut p.stages, std::mem::take(batches)));
        }
    });
    let rows: usize = batches.iter().map(Batch::len).sum();
    (rows * copies) as f64 / began.elapsed().as_secs_f64()
}

/// Every batch through `stages` as the processor runs them (stages whose shards line up
/// as one chain, cut once), with a watermark that follows the batches' event time.
fn through(stages: &mut [adstream::pipeline::Stage], batches: Vec<Batch>) {
    let mut dl = DeadLetters::new("bench");
    let mut watermark = i64::MIN;
    let chain = stages.len() > 1 && stages.windows(2).all(|w| lines_up(&w[0], &w[1]));
    for b in batches {
        let times = b.column("event_time").and_then(|c| c.as_i64s().ok());
        let latest = times.and_then(|t| t.values().iter().copied().max());
        watermark = watermark.max(latest.unwrap_or(i64::MIN).saturating_sub(2000));
        let mut flow = vec![Envelope {
            batch: b,
            positions: None,
        }];
        if chain {
            process_chain(stages, flow, watermark, &mut dl).unwrap();
            continue;
        }
        for stage in stages.iter_mut() {
            flow = stage.process(flow, watermark, &mut dl).unwrap();
        }
    }
}

fn as_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The stages alone in rounds, each round one run of every setup in turn, so that each
/// ratio compares runs a moment apart (this machine's speed moves by up to 2× between
/// minutes): per setup its rates, and its ratio to one shard in the same round.
fn rounds(
    engine: &adstream::plugin::PluginEngine,
    (dir, events): (&Path, &Path),
    setups: &[(&[String], usize)],
    batches: &[Batch],
    n: usize,
) -> Vec<(Stat, Stat)> {
    let mut rates = vec![Vec::new(); setups.len()];
    for _ in 0..n {
        for (i, (stages, copies)) in setups.iter().enumerate() {
            rates[i].push(stages_alone(engine, dir, events, stages, batches, *copies));
        }
    }
    rates
        .iter()
        .map(|r| {
            let ratios = r.iter().zip(&rates[0]).map(|(x, one)| x / one).collect();
            (Stat::of(r.clone()), Stat::of(ratios))
        })
        .collect()
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
    // The machine's own ceiling: two pipelines that share nothing, one per core.
    let setups: [(&[String], usize); 4] = [(&one, 1), (&two, 1), (&two_alike, 1), (&one, 2)];
    let alone = rounds(engine, (dir, events), &setups, batches, n);
    let row = |what: &str, (rate, ratio): (Stat, Stat)| {
        vec![
            what.to_string(),
            alone[0].0.rate(),
            rate.rate(),
            ratio.show(2),
        ]
    };
    Section {
        title: "Shards",
        about: format!(
            "pii-hash → quality (3 stateless rules) → windows → anomaly-ema, every stage in \
             1 shard and in 2, {} cores. Each stage keyed on its own: pii-hash by user_id, \
             quality by event_id, windows and anomaly-ema by country and ad_format (each \
             stage cuts its input; windows → anomaly-ema run as one chain). One chain: every \
             stage by country and ad_format, cut once, as the processor runs it. From the \
             JSON file: `adstream run` in this process, decoding included, as one chain; \
             events/s, median (min–max) of {n} runs, and the ratio of the medians. Stages \
             alone: decoded batches of 5000 through the stages, in {n} rounds of one run of \
             each setup in turn; events/s, median (min–max), and the median (min–max) of \
             each round's ratio to one shard. The ceiling: two copies of the 1-shard \
             pipeline sharing nothing, each on its own thread, each through every batch \
             (their events together).",
            std::thread::available_parallelism().map_or(1, |c| c.get())
        ),
        header: vec!["what", "1 shard", "2 shards", "2 ÷ 1"],
        rows: vec![
            vec![
                "from the JSON file, one chain".into(),
                file_1.rate(),
                file_2.rate(),
                format!("{:.2}", file_2.median / file_1.median),
            ],
            row("stages alone, each stage keyed on its own", alone[1]),
            row("stages alone, one chain", alone[2]),
            row(
                "stages alone: 1 shard, then two whole copies of the pipeline on two threads (the ceiling)",
                alone[3],
            ),
        ],
    }
}
