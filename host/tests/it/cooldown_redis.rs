//! What "each alert reaches Slack once" needs of Redis: the cooldown's keys must survive a
//! Redis restart. With its append-only file (`appendonly yes`, `appendfsync always`, as
//! the project's scripts run it) a restart keeps them and a repeat is held back; without
//! persistence the keys are gone, the repeat is sent, and the sink says so (logged, and
//! counted in `adstream_sink_state_lost_total`). Each case on a private Redis, killed with
//! -9 between two alerts of the same country, format and type.

use super::instances::Instance;
use super::services_support::{Receiver, services};
use adstream::config::SinkConfig;
use adstream::sinks::{SinkContext, SinkMeter};
use adstream_sdk::{Batch, TextBuilder};
use std::sync::Arc;

fn alert(id: &str) -> Arc<Batch> {
    let column = |name: &str, value: &str| {
        let mut b = TextBuilder::default();
        b.push(value);
        b.finish(name)
    };
    let columns = vec![
        column("alert_id", id),
        column("country", "US"),
        column("ad_format", "banner"),
        column("alert_type", "ctr_drop"),
        column("payload", &format!("{{\"text\": \"{id}\"}}")),
    ];
    Arc::new(Batch::from_columns(columns).unwrap())
}

/// Sends alert A, kills and restarts Redis, sends alert B (same key, another id); returns
/// the bodies the webhook accepted and how many times the sink found the keys lost.
async fn a_then_restart_then_b(redis_options: &[&str]) -> (Vec<String>, u64) {
    services();
    let dir = tempfile::tempdir().unwrap();
    let mut redis = Instance::start(dir.path(), "redis", redis_options);
    let hook = Receiver::start(vec![]).await;
    std::fs::write(dir.path().join("hook.url"), &hook.url).unwrap();
    let text = format!(
        "kind = \"webhook\"\nurl = {{ file = \"{}\" }}\ncooldown = {{ redis = \"redis://127.0.0.1:{}\", ttl = \"10m\" }}\n",
        dir.path().join("hook.url").display(),
        redis.port()
    );
    let cfg: adstream::config::sink::WebhookConfig = toml::from_str(&text).unwrap();
    let meter = Arc::new(SinkMeter::default());
    let ctx = SinkContext {
        meter: meter.clone(),
        ..Default::default()
    };
    let mut sink = adstream::sinks::open("slack", &SinkConfig::Webhook(cfg), ctx)
        .await
        .unwrap();
    sink.write(alert("alert-a")).await.unwrap();
    tokio::task::block_in_place(|| {
        redis.kill();
        redis.restart();
    });
    sink.write(alert("alert-b")).await.unwrap();
    (hook.bodies(200), meter.lost_total())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_redis_keeps_the_cooldown_through_a_restart() {
    let (sent, lost) = a_then_restart_then_b(&["--persist"]).await;
    assert_eq!(sent.len(), 1, "the repeat was held back: {sent:?}");
    assert!(sent[0].contains("alert-a"));
    assert_eq!(lost, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_loses_its_memory_is_noticed_and_said() {
    let (sent, lost) = a_then_restart_then_b(&[]).await;
    assert_eq!(
        sent.len(),
        2,
        "the cooldown was lost with Redis's memory: {sent:?}"
    );
    assert_eq!(lost, 1, "the sink noticed the loss once");
}
