//! `adstream generate`: realistic ad events, with anomaly scenarios at chosen times, to a
//! Kafka topic at a chosen rate or count, with progress once a second.

use super::scenario::{parse_scenario, parse_shop_scenario};
use crate::batch::RawBatch;
use crate::config::kafka::{CreateTopic, KafkaOptions};
use crate::config::source::{GeneratorConfig, ShopConfig};
use crate::config::units::Duration as Span;
use crate::connect::kafka::{client_config, ensure_topic};
use crate::sources::generator::GeneratorSource;
use anyhow::{anyhow, bail};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// What `adstream generate` was asked for.
#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// The topic; `ad-events` by default, `shop-events` with --shop.
    #[arg(long)]
    pub topic: Option<String>,
    /// Shop events (seed 000's e-commerce system: views, carts, orders, payments) instead
    /// of ad events.
    #[arg(long)]
    pub shop: bool,
    /// Events per second (of event time, and of wall time unless --no-pace).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Stop after this many events.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this many seconds of event time.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Generate as fast as the broker takes it.
    #[arg(long)]
    pub no_pace: bool,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// An anomaly to inject, e.g. `ctr_drop@20s:US/banner` (10 s long) or
    /// `traffic_spike@2m+1m:JP/interstitial*5` (from 2 min for 1 min, 5×); kinds: ctr_drop,
    /// ctr_spike, traffic_spike, ecpm_drop. With --shop: `payment_outage@2m+1m:paypal*0.8`
    /// (1 min long by default; the target is optional); kinds: viral_product,
    /// payment_outage, price_bug, checkout_broken. Repeatable.
    #[arg(long = "scenario")]
    pub scenarios: Vec<String>,
    /// Round the first event time down to a multiple of this, e.g. `1m`.
    #[arg(long)]
    pub align: Option<Span>,
    /// Share of events written broken, as some ad servers do.
    #[arg(long, default_value_t = 0.0)]
    pub malformed_rate: f64,
    /// Create the topic with this many partitions if it does not exist.
    #[arg(long)]
    pub create_partitions: Option<NonZeroU32>,
    /// Write the events to this file, one JSON object per line, instead of to Kafka (for a
    /// `file` source, or to look at them).
    #[arg(long, conflicts_with_all = ["brokers", "topic", "create_partitions"])]
    pub out: Option<std::path::PathBuf>,
}

fn config(args: &GenerateArgs) -> anyhow::Result<GeneratorConfig> {
    let mut cfg: GeneratorConfig = toml::from_str("kind = \"generator\"")?;
    cfg.rate = args.rate;
    cfg.pace = !args.no_pace;
    cfg.seed = args.seed;
    cfg.align = args.align;
    cfg.malformed_rate = args.malformed_rate;
    cfg.count = match (args.count, args.duration) {
        (Some(c), _) => Some(c),
        (None, Some(d)) => Some((d * args.rate) as u64),
        (None, None) => None,
    };
    let scenarios = args.scenarios.iter();
    if args.shop {
        let mut shop: ShopConfig = toml::from_str("")?;
        shop.scenario = scenarios
            .map(|s| parse_shop_scenario(s))
            .collect::<Result<_, _>>()?;
        cfg.shop = Some(shop);
    } else {
        cfg.scenario = scenarios
            .map(|s| parse_scenario(s))
            .collect::<Result<_, _>>()?;
    }
    Ok(cfg)
}

pub async fn generate(args: GenerateArgs) -> ExitCode {
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let cfg = config(&args)?;
    if let Some(path) = &args.out {
        if cfg.count.is_none() {
            bail!("--out needs --count or --duration: a file is written to its end");
        }
        return write_file(path, &cfg).await;
    }
    let create = args
        .create_partitions
        .map(|partitions| CreateTopic { partitions });
    let default = if args.shop {
        "shop-events"
    } else {
        "ad-events"
    };
    let topic = args.topic.as_deref().unwrap_or(default);
    produce(&args.brokers, topic, create.as_ref(), &cfg, true)
        .await
        .map(|_| ())
}

/// Produces what the generator `cfg` makes to `topic` until it ends (its `count`) or Ctrl-C;
/// returns how many events the broker acknowledged.
pub async fn produce(
    brokers: &str,
    topic: &str,
    create: Option<&CreateTopic>,
    cfg: &GeneratorConfig,
    progress: bool,
) -> anyhow::Result<u64> {
    let mut out = Producing {
        producer: producer(brokers, topic, create).await?,
        topic,
        by_user: cfg.shop.is_some(),
        pending: VecDeque::new(),
        sent: 0,
        delivered: 0,
    };
    let mut source = GeneratorSource::new(cfg)?;
    let say = |line: String| {
        if progress {
            eprintln!("{line}");
        }
    };
    let scenarios = match cfg.scenario.len() + cfg.shop.as_ref().map_or(0, |s| s.scenario.len()) {
        0 => String::new(),
        n => format!(", {n} scenario(s)"),
    };
    let count = cfg
        .count
        .map(|c| format!(", {c} events"))
        .unwrap_or_default();
    say(format!(
        "generating to `{topic}` on {brokers}: {} events/s{count}{scenarios}",
        cfg.rate
    ));
    let (began, mut last_report) = (Instant::now(), Instant::now());
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        let batch: RawBatch = tokio::select! {
            b = crate::sources::Source::next_batch(&mut source) => match b? {
                Some(b) => b,
                None => break,
            },
            _ = &mut stop => break,
        };
        out.send(&batch).await?;
        if last_report.elapsed() >= Duration::from_secs(1) {
            say(out.progress(began.elapsed(), cfg.count));
            last_report = Instant::now();
        }
    }
    out.delivered += settle(&mut out.pending, usize::MAX).await?;
    let _ = out.producer.flush(Duration::from_secs(10));
    say(format!(
        "done: {} events sent, {} acknowledged by the broker, in {:.1} s",
        out.sent,
        out.delivered,
        began.elapsed().as_secs_f64()
    ));
    Ok(out.delivered)
}

/// Writes what the generator `cfg` makes to `path` as JSON lines.
async fn write_file(path: &std::path::Path, cfg: &GeneratorConfig) -> anyhow::Result<()> {
    use std::io::Write;
    let what = |e: std::io::Error| anyhow!("writing {}: {e}", path.display());
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).map_err(what)?);
    let mut source = GeneratorSource::new(cfg)?;
    let (began, mut written, mut bytes) = (Instant::now(), 0u64, 0u64);
    while let Some(batch) = crate::sources::Source::next_batch(&mut source).await? {
        for i in 0..batch.len() {
            file.write_all(batch.record(i)).map_err(what)?;
            file.write_all(b"\n").map_err(what)?;
            bytes += batch.record(i).len() as u64 + 1;
        }
        written += batch.len() as u64;
    }
    file.flush().map_err(what)?;
    eprintln!(
        "wrote {written} events ({}) to {} in {:.1} s",
        bytesize::ByteSize(bytes),
        path.display(),
        began.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A producer and what it has sent so far.
struct Producing<'a> {
    producer: FutureProducer,
    topic: &'a str,
    /// Shop events are keyed by their user, so that a user's order, its payments and a
    /// payment sent twice meet on one partition (where a stage's `unique` rule and state
    /// see them together); ad events go unkeyed.
    by_user: bool,
    pending: VecDeque<DeliveryFuture>,
    sent: u64,
    delivered: u64,
}

/// The value of a generated event's `user_id` (the generator writes it unescaped).
fn user_of(record: &[u8]) -> Option<&[u8]> {
    const FIELD: &[u8] = br#""user_id":""#;
    let at = record.windows(FIELD.len()).position(|w| w == FIELD)? + FIELD.len();
    let len = record[at..].iter().position(|&b| b == b'"')?;
    Some(&record[at..at + len])
}

impl Producing<'_> {
    /// Queues every record of `batch`, waiting for deliveries while the queue is full.
    async fn send(&mut self, batch: &RawBatch) -> anyhow::Result<()> {
        for i in 0..batch.len() {
            let key = self.by_user.then(|| user_of(batch.record(i))).flatten();
            loop {
                let mut record =
                    FutureRecord::<[u8], [u8]>::to(self.topic).payload(batch.record(i));
                if let Some(k) = key {
                    record = record.key(k);
                }
                match self.producer.send_result(record) {
                    Ok(f) => break self.pending.push_back(f),
                    Err((e, _))
                        if e.rdkafka_error_code()
                            == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
                    {
                        self.delivered += settle(&mut self.pending, 1000).await?;
                    }
                    Err((e, _)) => bail!("producing to `{}`: {e}", self.topic),
                }
            }
            self.sent += 1;
        }
        if self.pending.len() > 50_000 {
            self.delivered += settle(&mut self.pending, 25_000).await?;
        }
        Ok(())
    }

    /// `sent N events (R/s), M acknowledged`, with how long is left when the count is known.
    fn progress(&self, elapsed: Duration, count: Option<u64>) -> String {
        let rate = self.sent as f64 / elapsed.as_secs_f64().max(1e-9);
        let eta = match count {
            Some(total) if rate > 0.0 => {
                let left = total.saturating_sub(self.sent) as f64 / rate;
                format!(
                    ", {:.0}% done, about {left:.0} s left",
                    100.0 * self.sent as f64 / total.max(1) as f64
                )
            }
            _ => String::new(),
        };
        format!(
            "sent {} events ({rate:.0}/s), {} acknowledged{eta}",
            self.sent, self.delivered
        )
    }
}

/// A producer for `topic`, which is created first if `create` says so.
async fn producer(
    brokers: &str,
    topic: &str,
    create: Option<&CreateTopic>,
) -> anyhow::Result<FutureProducer> {
    let options = KafkaOptions::default();
    ensure_topic(brokers, topic, create, &options).await?;
    let defaults = [
        ("enable.idempotence", "false"),
        ("acks", "all"),
        ("max.in.flight.requests.per.connection", "1"),
        ("linger.ms", "5"),
        ("message.timeout.ms", "30000"),
    ];
    Ok(client_config(brokers, &defaults, &options)?.create()?)
}

/// Waits for up to `n` of the oldest deliveries.
async fn settle(pending: &mut VecDeque<DeliveryFuture>, n: usize) -> anyhow::Result<u64> {
    let mut done = 0;
    while done < n as u64 {
        let Some(f) = pending.pop_front() else { break };
        match f.await {
            Ok(Ok(_)) => done += 1,
            Ok(Err((e, _))) => bail!("delivery failed: {e}"),
            Err(_) => bail!("the producer was dropped"),
        }
    }
    Ok(done)
}
