//! TLS and authentication to every service, for real: a Redis that listens only on its
//! `tls-port` and wants a password, a ClickHouse over HTTPS with a password, and the
//! broker over TLS with SASL/SCRAM — each a private instance (`scripts/instance.sh`) with
//! certificates the test makes (`scripts/tls-certs.sh`). A pipeline reaches all three with
//! the right authority and passwords; with a wrong certificate or password for any of
//! them it fails at start, with an error naming the service.

use super::instances::{Instance, certificates};
use super::services_support::{eventually, services};
use super::support::{AD_SCHEMA, pipeline_file};
use adstream::batch::RawBatch;
use adstream::config::source::GeneratorConfig;
use adstream::pipeline::PipelineStats;
use adstream::sources::generator::GeneratorSource;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

const PASSWORDS: [(&str, &str); 3] = [
    ("kafka.pw", "kafka-pass-0"),
    ("ch.pw", "clickhouse-pass-0"),
    ("redis.url.pass", "redis-pass-0"),
];

struct Services {
    kafka: Instance,
    clickhouse: Instance,
    redis: Instance,
    certs: PathBuf,
}

fn start_services(dir: &Path) -> Services {
    let certs = certificates(&dir.join("certs"));
    let tls = certs.display().to_string();
    Services {
        kafka: Instance::start(
            dir,
            "kafka",
            &["--tls", &tls, "--sasl", "adstream:kafka-pass-0"],
        ),
        clickhouse: Instance::start(
            dir,
            "clickhouse",
            &["--tls", &tls, "--password", "clickhouse-pass-0"],
        ),
        redis: Instance::start(dir, "redis", &["--tls", &tls, "--password", "redis-pass-0"]),
        certs,
    }
}

/// What one pipeline file is given: the CA each client trusts and the passwords.
struct Trust {
    kafka_ca: PathBuf,
    clickhouse_ca: PathBuf,
    redis_ca: PathBuf,
    kafka_pw: &'static str,
    clickhouse_pw: &'static str,
    redis_pw: &'static str,
}

impl Trust {
    fn right(certs: &Path) -> Trust {
        Trust {
            kafka_ca: certs.join("ca.pem"),
            clickhouse_ca: certs.join("ca.pem"),
            redis_ca: certs.join("ca.pem"),
            kafka_pw: PASSWORDS[0].1,
            clickhouse_pw: PASSWORDS[1].1,
            redis_pw: PASSWORDS[2].1,
        }
    }
}

/// The pipeline: Kafka (SASL_SSL) → 10 s windows → ClickHouse (HTTPS) and Redis (TLS);
/// dead letters back to Kafka over TLS. Credentials come from secret files in `dir`.
fn pipeline(dir: &Path, s: &Services, t: &Trust, id: &str) -> PathBuf {
    std::fs::write(dir.join("kafka.pw"), t.kafka_pw).unwrap();
    std::fs::write(dir.join("ch.pw"), t.clickhouse_pw).unwrap();
    let redis_url = format!("rediss://:{}@127.0.0.1:{}", t.redis_pw, s.redis.port());
    std::fs::write(dir.join("redis.url"), redis_url).unwrap();
    let kafka_options = format!(
        r#"{{ "security.protocol" = "SASL_SSL", "sasl.mechanism" = "SCRAM-SHA-512", "sasl.username" = "adstream", "sasl.password" = {{ file = "{}" }}, "ssl.ca.location" = "{}" }}"#,
        dir.join("kafka.pw").display(),
        t.kafka_ca.display()
    );
    let text = format!(
        r#"
name = "tls"
dead_letter = "dead"
[source]
kind = "kafka"
brokers = "127.0.0.1:{kafka}"
topic = "{id}-events"
group = "{id}"
create_topic = {{ partitions = 1 }}
flush_interval = "50ms"
options = {kafka_options}
{AD_SCHEMA}
[checkpoint]
dir = "{state}"
interval = "1s"
[[stage]]
name = "windows"
plugin = "@PLUGINS@/window_aggregate.wasm"
config = {{ window = "10s", group_by = ["country", "ad_format"] }}
to = ["ch", "live"]
[sink.ch]
kind = "clickhouse"
url = "https://127.0.0.1:{https}"
table = "{id}.windows"
password = {{ file = "{ch_pw}" }}
tls = {{ ca = "{ch_ca}" }}
create = true
order_by = ["window_start", "country", "ad_format"]
max_delay = "100ms"
[sink.live]
kind = "redis"
url = {{ file = "{redis_url}" }}
tls = {{ ca = "{redis_ca}" }}
key = "{id}:{{country}}:{{ad_format}}:{{window}}"
[sink.dead]
kind = "kafka"
brokers = "127.0.0.1:{kafka}"
topic = "{id}-dead"
create_topic = {{ partitions = 1 }}
options = {kafka_options}
"#,
        kafka = s.kafka.port(),
        https = s.clickhouse.ports["https_port"],
        state = dir.join("state").display(),
        ch_pw = dir.join("ch.pw").display(),
        ch_ca = t.clickhouse_ca.display(),
        redis_url = dir.join("redis.url").display(),
        redis_ca = t.redis_ca.display(),
    );
    pipeline_file(dir, &format!("{id}.toml"), &text)
}

fn build(file: &Path) -> adstream::pipeline::Pipeline {
    let cfg = adstream::config::load(file).unwrap_or_else(|d| panic!("{d:#?}"));
    let engine = adstream::plugin::PluginEngine::new().unwrap();
    adstream::pipeline::build(&cfg, &engine).unwrap_or_else(|d| panic!("{d:#?}"))
}

/// The producer the test feeds the broker with, over TLS with SCRAM.
fn producer(s: &Services) -> FutureProducer {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", format!("127.0.0.1:{}", s.kafka.port()))
        .set("security.protocol", "SASL_SSL")
        .set("sasl.mechanism", "SCRAM-SHA-512")
        .set("sasl.username", "adstream")
        .set("sasl.password", PASSWORDS[0].1)
        .set(
            "ssl.ca.location",
            s.certs.join("ca.pem").display().to_string(),
        )
        .create()
        .unwrap()
}

fn events() -> RawBatch {
    let cfg: GeneratorConfig = toml::from_str(
        "kind = \"generator\"\nrate = 1000.0\npace = false\nstart = 1700000000000\nseed = 5",
    )
    .unwrap();
    let mut raw = RawBatch::default();
    GeneratorSource::new(&cfg)
        .unwrap()
        .generate(30_000, &mut raw);
    raw
}

async fn clickhouse_rows(s: &Services, table: &str) -> usize {
    let ca = std::fs::read(s.certs.join("ca.pem")).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{}/", s.clickhouse.ports["https_port"]);
    let answer = client
        .post(url)
        .basic_auth("default", Some(PASSWORDS[1].1))
        .body(format!("SELECT count() FROM {table} FINAL"))
        .send()
        .await;
    match answer {
        Ok(r) if r.status().is_success() => r.text().await.unwrap().trim().parse().unwrap_or(0),
        _ => 0,
    }
}

async fn redis_keys(s: &Services, pattern: &str) -> usize {
    let url = format!("rediss://:{}@127.0.0.1:{}", PASSWORDS[2].1, s.redis.port());
    let certs = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(std::fs::read(s.certs.join("ca.pem")).unwrap()),
    };
    let client = redis::Client::build_with_tls(url, certs).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query_async(&mut conn)
        .await
        .unwrap();
    keys.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pipeline_reaches_every_service_over_tls_with_its_credentials() {
    services();
    let dir = tempfile::tempdir().unwrap();
    let s = start_services(dir.path());
    let id = "tlsok";
    let p = build(&pipeline(dir.path(), &s, &Trust::right(&s.certs), id));
    let (stop, stopped) = watch::channel(false);
    let stats = Arc::new(Mutex::new(PipelineStats::default()));
    let run = tokio::spawn(adstream::pipeline::run(p, stopped, Some(stats.clone())));

    let raw = events();
    let topic = format!("{id}-events");
    super::services_support::wait_for_topic_with(&producer_config(&s), &topic).await;
    let producer = producer(&s);
    let mut deliveries = Vec::new();
    for i in 0..raw.len() {
        let record = FutureRecord::to(&topic).key("k").payload(raw.record(i));
        deliveries.push(producer.send_result(record).unwrap());
    }
    for d in deliveries {
        let delivered = d.await.unwrap();
        assert!(delivered.is_ok(), "{delivered:?}");
    }
    let read = eventually(Duration::from_secs(60), async || {
        stats.lock().unwrap().records == raw.len() as u64
    })
    .await;
    if run.is_finished() {
        panic!("the pipeline ended: {:?}", run.await.unwrap().err());
    }
    assert!(
        read,
        "read {} of {}",
        stats.lock().unwrap().records,
        raw.len()
    );
    // 30 s of events: the first two 10 s windows closed, in ClickHouse and Redis.
    let table = format!("{id}.windows");
    let landed = eventually(Duration::from_secs(30), async || {
        clickhouse_rows(&s, &table).await >= 2 && redis_keys(&s, &format!("{id}:*")).await >= 2
    })
    .await;
    assert!(
        landed,
        "ClickHouse rows {}, Redis keys {}",
        clickhouse_rows(&s, &table).await,
        redis_keys(&s, &format!("{id}:*")).await
    );
    let _ = stop.send(true);
    let summary = run.await.unwrap().unwrap();
    assert_eq!(summary.stats.records, raw.len() as u64);
}

/// The producer's settings, for waiting on the topic the pipeline creates.
fn producer_config(s: &Services) -> rdkafka::ClientConfig {
    let mut c = rdkafka::ClientConfig::new();
    c.set("bootstrap.servers", format!("127.0.0.1:{}", s.kafka.port()))
        .set("security.protocol", "SASL_SSL")
        .set("sasl.mechanism", "SCRAM-SHA-512")
        .set("sasl.username", "adstream")
        .set("sasl.password", PASSWORDS[0].1)
        .set(
            "ssl.ca.location",
            s.certs.join("ca.pem").display().to_string(),
        );
    c
}

/// A wrong authority or password for any one service: the pipeline does not start, and
/// the error names the service and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_certificate_or_password_fails_at_start_naming_the_service() {
    services();
    let dir = tempfile::tempdir().unwrap();
    let s = start_services(dir.path());
    let other = s.certs.join("other-ca.pem");
    type Spoil = fn(&mut Trust, &Path);
    let cases: [(&str, Spoil, &[&str]); 6] = [
        (
            "kafka-ca",
            |t, o| t.kafka_ca = o.into(),
            &["Kafka broker", "certificate"],
        ),
        (
            "kafka-pw",
            |t, _| t.kafka_pw = "wrong-pass",
            &["Kafka broker", "uthentication"],
        ),
        (
            "ch-ca",
            |t, o| t.clickhouse_ca = o.into(),
            &["ClickHouse at https://", "certificate"],
        ),
        (
            "ch-pw",
            |t, _| t.clickhouse_pw = "wrong-pass",
            &["ClickHouse at https://", "refused", "password"],
        ),
        (
            "redis-ca",
            |t, o| t.redis_ca = o.into(),
            &["Redis at rediss://", "certificate"],
        ),
        (
            "redis-pw",
            |t, _| t.redis_pw = "wrong-pass",
            &["Redis at rediss://", "Password authentication failed"],
        ),
    ];
    let mut runs = Vec::new();
    for (case, spoil, _) in &cases {
        let mut trust = Trust::right(&s.certs);
        spoil(&mut trust, &other);
        let case_dir = dir.path().join(case);
        std::fs::create_dir(&case_dir).unwrap();
        let p = build(&pipeline(
            &case_dir,
            &s,
            &trust,
            &format!("tls{}", case.replace('-', "")),
        ));
        let (_stop, stopped) = watch::channel(false);
        runs.push(tokio::spawn(async move {
            let result = adstream::pipeline::run(p, stopped, None).await;
            drop(_stop);
            result
        }));
    }
    for ((case, _, wants), run) in cases.iter().zip(runs) {
        let result = tokio::time::timeout(Duration::from_secs(60), run).await;
        let error = match result {
            Ok(Ok(Err(e))) => e.to_string(),
            other => panic!("{case}: the pipeline did not fail at start: {other:?}"),
        };
        for want in *wants {
            assert!(error.contains(want), "{case}: `{want}` not in: {error}");
        }
        for (_, password) in PASSWORDS {
            assert!(!error.contains(password), "{case}: a password in: {error}");
        }
    }
}

/// A receiver standing in for a webhook endpoint behind TLS (the test's server
/// certificate): it answers every request 200 and keeps the bodies.
fn https_receiver(certs: &Path) -> (String, Arc<Mutex<Vec<String>>>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::io::{Read, Write};
    let chain: Vec<CertificateDer> = CertificateDer::pem_file_iter(certs.join("server.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(certs.join("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let config = Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://127.0.0.1:{}/hook",
        listener.local_addr().unwrap().port()
    );
    let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, stream);
            let mut request = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = tls.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&request);
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = (text[..end].lines())
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        kept.lock().unwrap().push(text[end + 4..].to_string());
                        let _ = tls.write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        );
                        let _ = tls.flush();
                        break;
                    }
                }
            }
        }
    });
    (url, bodies)
}

/// A webhook over TLS trusts its `tls.ca`; with another authority the post fails on the
/// certificate, and the URL (a credential) is not in the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_over_tls_trusts_its_ca_and_refuses_another() {
    use adstream::config::SinkConfig;
    use adstream::sinks::{SinkContext, SinkMeter};
    let dir = tempfile::tempdir().unwrap();
    let certs = certificates(&dir.path().join("certs"));
    let (url, bodies) = https_receiver(&certs);
    std::fs::write(dir.path().join("hook.url"), &url).unwrap();
    let alert = {
        let mut b = adstream_sdk::TextBuilder::default();
        b.push("{\"text\": \"over tls\"}");
        Arc::new(adstream_sdk::Batch::from_columns(vec![b.finish("payload")]).unwrap())
    };
    for (ca, ok) in [("ca.pem", true), ("other-ca.pem", false)] {
        let text = format!(
            "kind = \"webhook\"\nurl = {{ file = \"{}\" }}\ntls = {{ ca = \"{}\" }}\nretry = {{ attempts = 1 }}\n",
            dir.path().join("hook.url").display(),
            certs.join(ca).display()
        );
        let cfg: adstream::config::sink::WebhookConfig = toml::from_str(&text).unwrap();
        let ctx = SinkContext {
            meter: Arc::new(SinkMeter::default()),
            ..Default::default()
        };
        let mut sink = adstream::sinks::open("hook", &SinkConfig::Webhook(cfg), ctx)
            .await
            .unwrap();
        let written = sink.write(alert.clone()).await;
        match ok {
            true => assert!(written.is_ok(), "{written:?}"),
            false => {
                let error = written.unwrap_err().to_string();
                assert!(error.contains("certificate"), "{error}");
                assert!(!error.contains(&url), "the URL leaked: {error}");
            }
        }
    }
    assert_eq!(*bodies.lock().unwrap(), ["{\"text\": \"over tls\"}"]);
}
