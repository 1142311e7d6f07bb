//! Windows over partitions that several hosts read (`[source] shared = true` with
//! aggregates): each host's lanes send their partial windows to the partials topic, the
//! owner of partition 0 merges them. One host and three hosts on the same input write the
//! same ClickHouse rows and the same alerts, each equal to counts from the events.

use super::services::GENERATOR;
use super::services_support::*;
use super::shared::host;
use super::support::{AD_SCHEMA, pipeline_file};
use adstream::batch::RawBatch;
use adstream::config::source::GeneratorConfig;
use adstream::sources::generator::GeneratorSource;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 6;

fn pipeline(id: &str, name: &str, dir: &Path, interval: &str) -> String {
    format!(
        r#"
name = "{name}-{id}"
dead_letter = "dead"
[source]
kind = "kafka"
brokers = "{BROKERS}"
topic = "{id}-events"
group = "{id}-{name}"
shared = true
create_topic = {{ partitions = {PARTITIONS} }}
batch_size = 2000
flush_interval = "50ms"
{AD_SCHEMA}
[event_time]
delay = "2s"
[checkpoint]
dir = "{state}"
interval = "{interval}"
[[stage]]
name = "pii"
plugin = "@PLUGINS@/pii_hash.wasm"
secrets.key = {{ file = "{key}" }}
config = {{ hash = ["user_id", "device_id"], truncate_ip = ["ip"] }}
[[stage]]
name = "metrics_1m"
plugin = "@PLUGINS@/window_aggregate.wasm"
config = {{ window = "1m", group_by = ["country", "ad_format"], lateness = "5s" }}
to = ["clickhouse"]
[[stage]]
name = "anomalies"
plugin = "@PLUGINS@/anomaly_ema.wasm"
config = {{ min_impressions = 500 }}
to = ["alerts"]
[sink.clickhouse]
kind = "clickhouse"
table = "adstream_{id}.{name}_1m"
create = true
order_by = ["window_start", "country", "ad_format"]
[sink.alerts]
kind = "kafka"
brokers = "{BROKERS}"
topic = "{id}-{name}-alerts"
key = "alert_id"
create_topic = {{ partitions = 1 }}
[sink.dead]
kind = "kafka"
brokers = "{BROKERS}"
topic = "{id}-{name}-dead"
value = "payload"
headers = ["*"]
create_topic = {{ partitions = 1 }}
"#,
        state = dir.join(format!("state-{name}")).display(),
        key = dir.join("pii.key").display(),
    )
}

/// Host processes, killed when the test ends however it ends.
struct Hosts(Vec<Child>);

impl Drop for Hosts {
    fn drop(&mut self) {
        for h in &mut self.0 {
            let _ = h.kill();
            let _ = h.wait();
        }
    }
}

fn logs(dir: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            out += &format!("--- {}\n", path.display());
            out += &tail.into_iter().rev().collect::<Vec<_>>().join("\n");
            out += "\n";
        }
    }
    out
}

/// The alerts of `topic`, each as its JSON text, sorted.
fn alerts(topic: &str, expect: usize, timeout: Duration) -> Vec<String> {
    let values = consume_all(topic, expect, timeout)
        .into_iter()
        .map(|(v, _)| v);
    let mut out: Vec<String> = values.map(|v| String::from_utf8(v).unwrap()).collect();
    out.sort();
    out
}

/// What `adstream status` says of host `pid` (its status address is in its log).
fn status_text(dir: &Path, hosts: &Hosts, pid: u32) -> String {
    let at = hosts.0.iter().position(|h| h.id() == pid).unwrap();
    let name = ["one", "three-a", "three-b", "three-c"][at];
    let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap();
    let addr = log.split("status on http://").nth(1).unwrap();
    let addr = addr.split('/').next().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_adstream"))
        .args(["status", "--addr", addr])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The pid of the host that owns `partition`, from its claim.
fn owner(store: &Path, partition: i32) -> Option<u32> {
    let text = std::fs::read_to_string(store.join(format!("partition-{partition}.claim")));
    let text = text.ok()?;
    let (_, owner) = text.trim().split_once(' ')?;
    owner.rsplit('/').next()?.parse().ok()
}

async fn windows_equal(table: &str, want: &Windows, dir: &Path) {
    let done = eventually(Duration::from_secs(240), async || {
        windows(table).await == *want
    })
    .await;
    let got = windows(table).await;
    assert!(
        done,
        "{table}: {} of {} windows, first differing: {:?}\n{}",
        got.len(),
        want.len(),
        want.iter().find(|(k, v)| got.get(*k) != Some(*v)),
        logs(dir)
    );
}

/// The pids that own the partitions, once `n` hosts own them all, within a minute.
fn owned_by(store: &Path, n: usize) -> Option<BTreeSet<u32>> {
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(60) {
        let owners: Vec<Option<u32>> = (0..PARTITIONS).map(|p| owner(store, p)).collect();
        let all: Option<BTreeSet<u32>> = owners.into_iter().collect();
        if let Some(all) = all.filter(|a| a.len() == n) {
            return Some(all);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// One host, and hosts of another group scaled 1 → 3 → 2 → 1 while events flow (two
/// join, one leaves with SIGTERM, the merging one is killed with -9): the same windows,
/// equal to counts from the events, and the same alerts (a Kafka sink may send what
/// came after the dead host's last cut again: the same alert, with its id).
#[tokio::test(flavor = "multi_thread")]
async fn hosts_that_join_leave_and_die_write_the_windows_and_alerts_one_host_writes() {
    services();
    let id = uid();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("pii.key"), "a-test-key-of-enough-length\n").unwrap();
    let cfg: GeneratorConfig = toml::from_str(GENERATOR).unwrap();
    let mut generator = GeneratorSource::new(&cfg).unwrap();
    let parts: Vec<RawBatch> = (0..3)
        .map(|_| {
            let mut part = RawBatch::default();
            generator.generate(100_000, &mut part);
            part
        })
        .collect();
    let mut all = RawBatch::default();
    for part in &parts {
        (0..part.len()).for_each(|i| all.push(part.record(i), part.position(i)));
    }
    let mut want = oracle(&all, 60_000);
    // The last window stays open: no partition has passed it.
    let last = want.last_key_value().unwrap().0.0;
    want.retain(|(t, _, _), _| *t < last);

    let one = pipeline_file(dir, "one.toml", &pipeline(&id, "one", dir, "1s"));
    // Few cuts: the hosts that take a dead host's partitions read them again from long
    // before it died, and send windows the merger had again.
    let three = pipeline_file(dir, "three.toml", &pipeline(&id, "three", dir, "1m"));
    let store = dir.join(format!("state-three/three-{id}.partitions"));
    let events = format!("{id}-events");
    let mut hosts = Hosts(vec![host(&one, dir, "one"), host(&three, dir, "three-a")]);
    produce(&events, &parts[0]).await;
    let table = format!("adstream_{id}.three_1m");
    let merged = eventually(Duration::from_secs(120), async || {
        !windows(&table).await.is_empty()
    })
    .await;
    assert!(merged, "a host alone merged a window\n{}", logs(dir));

    // 1 → 3 while events flow.
    let flow = {
        let (events, part) = (events.clone(), parts[1].clone());
        tokio::spawn(async move { produce(&events, &part).await })
    };
    hosts.0.push(host(&three, dir, "three-b"));
    hosts.0.push(host(&three, dir, "three-c"));
    flow.await.unwrap();
    let three_owners = owned_by(&store, 3);
    assert!(
        three_owners.is_some(),
        "three hosts own the partitions\n{}",
        logs(dir)
    );

    // 3 → 2: a host that does not merge leaves, then 2 → 1: the merging host dies, both
    // while events flow.
    let flow = {
        let (events, part) = (events.clone(), parts[2].clone());
        tokio::spawn(async move { produce(&events, &part).await })
    };
    let merging = owner(&store, 0).unwrap();
    let leaver = hosts.0[1..].iter_mut().find(|h| h.id() != merging).unwrap();
    let term = Command::new("kill")
        .args(["-TERM", &leaver.id().to_string()])
        .status();
    assert!(term.unwrap().success());
    assert!(
        leaver.wait().unwrap().success(),
        "a host stops cleanly on SIGTERM"
    );
    assert!(
        owned_by(&store, 2).is_some(),
        "two hosts own the partitions\n{}",
        logs(dir)
    );
    let victim = hosts.0.iter_mut().find(|h| h.id() == merging).unwrap();
    victim.kill().unwrap();
    victim.wait().unwrap();
    flow.await.unwrap();

    windows_equal(&format!("adstream_{id}.one_1m"), &want, dir).await;
    windows_equal(&table, &want, dir).await;
    let survivor = owned_by(&store, 1).expect("the survivor owns every partition");
    assert!(!survivor.contains(&merging));
    let text = status_text(dir, &hosts, survivor.first().copied().unwrap());
    assert!(
        text.contains("merges the hosts' windows (watermark 20"),
        "{text}"
    );
    let text = status_text(dir, &hosts, hosts.0[0].id());
    assert!(
        text.contains("merges the hosts' windows (watermark 20"),
        "one: {text}"
    );

    let by_one = alerts(&format!("{id}-one-alerts"), 4, Duration::from_secs(30));
    assert!(by_one.len() >= 4, "the scenarios' alerts: {by_one:?}");
    let mut by_three = alerts(
        &format!("{id}-three-alerts"),
        3 * by_one.len(),
        Duration::from_secs(10),
    );
    by_three.dedup();
    assert_eq!(by_three, by_one, "the same alerts\n{}", logs(dir));
    // No window sent again by a lane read from an older cut reached the merger: it would
    // be merged twice, or be late there (a dead letter).
    for name in ["one", "three"] {
        let dead = consume_all(&format!("{id}-{name}-dead"), 1, Duration::from_secs(3));
        let first = dead.first().map(|(v, h)| (String::from_utf8_lossy(v), h));
        assert!(first.is_none(), "{name}: a dead letter: {first:?}");
    }
}
