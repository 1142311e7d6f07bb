//! `adstream generate`: realistic ad events, with anomaly scenarios at chosen times, to a
//! Kafka topic at a chosen rate or count, with progress once a second.

use crate::kafka::{CreateTopic, client_config, ensure_topic};
use crate::sources::RawBatch;
use crate::sources::generator::{GeneratorConfig, GeneratorSource, ScenarioConfig};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use std::collections::{BTreeMap, VecDeque};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// What `adstream generate` was asked for.
#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub brokers: String,
    #[arg(long, default_value = "ad-events")]
    pub topic: String,
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
    /// ctr_spike, traffic_spike, ecpm_drop. Repeatable.
    #[arg(long = "scenario")]
    pub scenarios: Vec<String>,
    /// Round the first event time down to a multiple of this, e.g. `1m`.
    #[arg(long)]
    pub align: Option<String>,
    /// Share of events written broken, as some ad servers do.
    #[arg(long, default_value_t = 0.0)]
    pub malformed_rate: f64,
    /// Create the topic with this many partitions if it does not exist.
    #[arg(long)]
    pub create_partitions: Option<i32>,
}

/// Parses `KIND@AT[+DURATION]:COUNTRY/FORMAT[*FACTOR]`.
pub fn parse_scenario(text: &str) -> Result<ScenarioConfig, String> {
    let err = || {
        format!(
            "scenario `{text}`: write KIND@AT[+DURATION]:COUNTRY/FORMAT[*FACTOR], e.g. ctr_drop@2m+1m:US/banner"
        )
    };
    let (kind, rest) = text.split_once('@').ok_or_else(err)?;
    let (when, rest) = rest.split_once(':').ok_or_else(err)?;
    let (at, duration) = when.split_once('+').unwrap_or((when, "10s"));
    let (segment, factor) = match rest.split_once('*') {
        Some((s, f)) => (s, Some(f.parse::<f64>().map_err(|_| err())?)),
        None => (rest, None),
    };
    let (country, ad_format) = segment.split_once('/').ok_or_else(err)?;
    let kind = serde_json::from_value(serde_json::Value::String(kind.to_string()))
        .map_err(|_| format!("scenario `{text}`: unknown kind `{kind}` (ctr_drop, ctr_spike, traffic_spike, ecpm_drop)"))?;
    Ok(ScenarioConfig {
        kind,
        at: at.to_string(),
        duration: duration.to_string(),
        country: country.to_string(),
        ad_format: ad_format.to_string(),
        factor,
    })
}

fn config(args: &GenerateArgs) -> Result<GeneratorConfig, String> {
    let mut cfg: GeneratorConfig =
        toml::from_str("kind = \"generator\"").map_err(|e| e.to_string())?;
    cfg.rate = args.rate;
    cfg.pace = !args.no_pace;
    cfg.seed = args.seed;
    cfg.align = args.align.clone();
    cfg.malformed_rate = args.malformed_rate;
    cfg.count = match (args.count, args.duration) {
        (Some(c), _) => Some(c),
        (None, Some(d)) => Some((d * args.rate) as u64),
        (None, None) => None,
    };
    cfg.scenario = args
        .scenarios
        .iter()
        .map(|s| parse_scenario(s))
        .collect::<Result<_, _>>()?;
    Ok(cfg)
}

pub async fn generate(args: GenerateArgs) -> ExitCode {
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: GenerateArgs) -> Result<(), String> {
    let cfg = config(&args)?;
    let create = args
        .create_partitions
        .map(|partitions| CreateTopic { partitions });
    produce(&args.brokers, &args.topic, create.as_ref(), &cfg, true)
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
) -> Result<u64, String> {
    let options = BTreeMap::new();
    ensure_topic(brokers, topic, create, &options).await?;
    let mut config = client_config(brokers, &options);
    config
        .set("enable.idempotence", "false")
        .set("acks", "all")
        .set("max.in.flight.requests.per.connection", "1")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000");
    let producer: FutureProducer = config.create().map_err(|e| e.to_string())?;
    let mut source = GeneratorSource::new(cfg).map_err(|e| e.to_string())?;
    let say = |line: String| {
        if progress {
            eprintln!("{line}");
        }
    };
    say(format!(
        "generating to `{topic}` on {brokers}: {} events/s{}{}",
        cfg.rate,
        cfg.count
            .map(|c| format!(", {c} events"))
            .unwrap_or_default(),
        if cfg.scenario.is_empty() {
            String::new()
        } else {
            format!(", {} scenario(s)", cfg.scenario.len())
        }
    ));
    let began = Instant::now();
    let (mut sent, mut delivered, mut last_report) = (0u64, 0u64, Instant::now());
    let mut pending: VecDeque<DeliveryFuture> = VecDeque::new();
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        let batch: RawBatch = tokio::select! {
            b = crate::sources::Source::next_batch(&mut source) => match b.map_err(|e| e.to_string())? {
                Some(b) => b,
                None => break,
            },
            _ = &mut stop => break,
        };
        for i in 0..batch.len() {
            loop {
                match producer
                    .send_result(FutureRecord::<(), [u8]>::to(topic).payload(batch.record(i)))
                {
                    Ok(f) => break pending.push_back(f),
                    Err((e, _))
                        if e.rdkafka_error_code()
                            == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
                    {
                        delivered += settle(&mut pending, 1000).await?;
                    }
                    Err((e, _)) => return Err(format!("producing to `{topic}`: {e}")),
                }
            }
            sent += 1;
        }
        if pending.len() > 50_000 {
            delivered += settle(&mut pending, 25_000).await?;
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            let rate = sent as f64 / began.elapsed().as_secs_f64();
            say(format!(
                "sent {sent} events ({rate:.0}/s), {delivered} acknowledged"
            ));
            last_report = Instant::now();
        }
    }
    delivered += settle(&mut pending, usize::MAX).await?;
    let _ = producer.flush(Duration::from_secs(10));
    say(format!(
        "done: {sent} events sent, {delivered} acknowledged by the broker, in {:.1} s",
        began.elapsed().as_secs_f64()
    ));
    Ok(delivered)
}

/// Waits for up to `n` of the oldest deliveries.
async fn settle(pending: &mut VecDeque<DeliveryFuture>, n: usize) -> Result<u64, String> {
    let mut done = 0;
    while done < n as u64 {
        let Some(f) = pending.pop_front() else { break };
        match f.await {
            Ok(Ok(_)) => done += 1,
            Ok(Err((e, _))) => return Err(format!("delivery failed: {e}")),
            Err(_) => return Err("the producer was dropped".into()),
        }
    }
    Ok(done)
}
