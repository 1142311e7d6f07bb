//! Hosts sharing a topic through a consumer group (`[source] shared = true`), as users run
//! them: `adstream run` processes on the real broker, one killed with -9.

use super::services_support::*;
use super::support::{AD_SCHEMA, pipeline_file};
use adstream::batch::RawBatch;
use adstream::config::source::GeneratorConfig;
use adstream::sources::generator::GeneratorSource;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 4;

fn pipeline(id: &str, dir: &Path) -> String {
    format!(
        r#"
name = "s-{id}"
dead_letter = "dead"
[source]
kind = "kafka"
brokers = "{BROKERS}"
topic = "{id}-events"
group = "{id}-g"
shared = true
create_topic = {{ partitions = {PARTITIONS} }}
batch_size = 500
flush_interval = "50ms"
{AD_SCHEMA}
[checkpoint]
dir = "{state}"
interval = "500ms"
[[stage]]
name = "pii"
plugin = "@PLUGINS@/pii_hash.wasm"
secrets.key = {{ file = "{key}" }}
config = {{ hash = ["user_id", "device_id"], truncate_ip = ["ip"] }}
[[stage]]
name = "quality"
plugin = "@PLUGINS@/quality.wasm"
config.rules = [{{ rule = "unique", column = "event_id", window = "1h" }}]
to = ["out"]
[sink.out]
kind = "kafka"
brokers = "{BROKERS}"
topic = "{id}-out"
key = "event_id"
create_topic = {{ partitions = 1 }}
[sink.dead]
kind = "kafka"
brokers = "{BROKERS}"
topic = "{id}-dead"
value = "payload"
headers = ["*"]
create_topic = {{ partitions = 1 }}
"#,
        state = dir.join("state").display(),
        key = dir.join("pii.key").display(),
    )
}

/// One test's pipeline: its folder (the key, the checkpoint store, the hosts' logs), file
/// and topics, named apart from every other test's.
struct Setup {
    id: String,
    dir: tempfile::TempDir,
    file: PathBuf,
    store: PathBuf,
    topic: String,
    out: String,
    dead: String,
}

impl Setup {
    fn new() -> Setup {
        services();
        let id = uid();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        std::fs::write(path.join("pii.key"), "a-test-key-of-enough-length\n").unwrap();
        Setup {
            file: pipeline_file(path, "p.toml", &pipeline(&id, path)),
            store: path.join(format!("state/s-{id}.partitions")),
            topic: format!("{id}-events"),
            out: format!("{id}-out"),
            dead: format!("{id}-dead"),
            id,
            dir,
        }
    }

    /// Sends `parts` (`n` events) again: each is a duplicate the `unique` rule rejects
    /// exactly once, and no event went out twice.
    async fn every_duplicate_is_caught(&self, parts: &[RawBatch], n: usize) {
        let logs = || logs(self.dir.path());
        for part in parts {
            produce(&self.topic, part).await;
        }
        let dead = consume_all(&self.dead, n, Duration::from_secs(120));
        assert_eq!(
            dead.len(),
            n,
            "every event sent again is a duplicate\n{}",
            logs()
        );
        let dead = consume_all(&self.dead, n + 1, Duration::from_secs(3));
        assert_eq!(dead.len(), n, "each duplicate rejected once\n{}", logs());
        let out = event_ids(&consume_all(&self.out, 2 * n, Duration::from_secs(3)));
        let distinct: BTreeSet<&String> = out.iter().collect();
        let twice = out.len();
        assert_eq!(
            distinct.len(),
            n,
            "no duplicate went out ({twice} messages)\n{}",
            logs()
        );
    }
}

/// An `adstream run` of `file`, its log in `dir/<name>.log`, its status on a port of
/// its own (the log says which).
pub(super) fn host(file: &Path, dir: &Path, name: &str) -> Child {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_adstream"))
        .env("ADSTREAM_STATUS_ADDR", "127.0.0.1:0")
        .arg("run")
        .arg(file)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Each partition's claim in the store: (epoch, owner's pid).
fn claims(store: &Path) -> BTreeMap<i32, (u64, u32)> {
    (0..PARTITIONS)
        .filter_map(|p| {
            let text = std::fs::read_to_string(store.join(format!("partition-{p}.claim"))).ok()?;
            let (epoch, owner) = text.trim().split_once(' ')?;
            let pid = owner.rsplit('/').next()?.parse().ok()?;
            Some((p, (epoch.parse().ok()?, pid)))
        })
        .collect()
}

/// Waits until `check` holds of the claims, for at most `timeout`.
fn claims_until(
    store: &Path,
    timeout: Duration,
    check: impl Fn(&BTreeMap<i32, (u64, u32)>) -> bool,
) -> Option<Duration> {
    let began = Instant::now();
    while began.elapsed() < timeout {
        if check(&claims(store)) {
            return Some(began.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

fn owners(claims: &BTreeMap<i32, (u64, u32)>) -> BTreeSet<u32> {
    claims.values().map(|&(_, pid)| pid).collect()
}

fn event_ids(messages: &[Consumed]) -> Vec<String> {
    messages
        .iter()
        .map(|(value, _)| {
            let v: serde_json::Value = serde_json::from_slice(value).unwrap();
            v["event_id"].as_str().unwrap().to_string()
        })
        .collect()
}

fn logs(dir: &Path) -> String {
    ["a", "b"]
        .iter()
        .map(|h| std::fs::read_to_string(dir.join(format!("{h}.log"))).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

fn generate(n: u64) -> RawBatch {
    let cfg: GeneratorConfig =
        toml::from_str("kind = \"generator\"\npace = false\nseed = 5").unwrap();
    let mut events = RawBatch::default();
    GeneratorSource::new(&cfg).unwrap().generate(n, &mut events);
    events
}

fn part(events: &RawBatch, range: std::ops::Range<usize>) -> RawBatch {
    let mut out = RawBatch::default();
    for i in range {
        out.push(events.record(i), events.position(i));
    }
    out
}

/// A host joins one that reads every partition, and the group gives it half; a host is
/// killed with -9, and the other takes its partitions back. At each move a partition's
/// state goes with it: every event sent again at the end is a duplicate that the `unique`
/// rule rejects, on every partition, which it can only do with the memory of what each
/// partition's owners accepted before. The join loses and repeats nothing (the partitions
/// taken are held until their last cut is written); the kill repeats what came after the
/// dead host's last cut, and nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_share_a_topic_and_partitions_move_with_their_state() {
    let t = Setup::new();
    let (dir, file, store) = (t.dir.path(), t.file.clone(), t.store.clone());
    let (topic, out_topic) = (t.topic.clone(), t.out.clone());
    let events = generate(4000);
    let n = events.len();
    // Each part produced on its own, again at the end: a record keeps its key, and so its
    // partition, as a producer's retry does (`unique` is per partition).
    let parts = [
        part(&events, 0..n / 2),
        part(&events, n / 2..n * 3 / 4),
        part(&events, n * 3 / 4..n),
    ];

    let mut a = host(&file, dir, "a");
    let alone = claims_until(&store, Duration::from_secs(60), |c| {
        c.len() == PARTITIONS as usize && owners(c) == BTreeSet::from([a.id()])
    });
    assert!(
        alone.is_some(),
        "the first host never had every partition: {:?}\n{}",
        claims(&store),
        logs(dir)
    );
    produce(&topic, &parts[0]).await;
    assert_eq!(
        consume_all(&out_topic, n / 2, Duration::from_secs(60)).len(),
        n / 2,
        "{}",
        logs(dir)
    );

    let mut b = host(&file, dir, "b");
    let split = claims_until(&store, Duration::from_secs(60), |c| owners(c).len() == 2);
    assert!(
        split.is_some(),
        "the group never gave the second host partitions: {:?}\n{}",
        claims(&store),
        logs(dir)
    );
    produce(&topic, &parts[1]).await;
    let m = n * 3 / 4;
    let out = consume_all(&out_topic, m, Duration::from_secs(60));
    assert_eq!(out.len(), m, "{}", logs(dir));
    // A checkpoint is taken at the first batch after its interval: the last part makes
    // each host cut what it did with the second (the kill then repeats only the third).
    std::thread::sleep(Duration::from_secs(1));
    produce(&topic, &parts[2]).await;
    assert_eq!(
        consume_all(&out_topic, n, Duration::from_secs(60)).len(),
        n,
        "{}",
        logs(dir)
    );
    let out = consume_all(&out_topic, n + 1, Duration::from_secs(3));
    assert_eq!(
        out.len(),
        n,
        "each event out once across the join\n{}",
        logs(dir)
    );
    // The partitions the second host took were held by the first until their last cut
    // was written, and claimed only then.
    let line = |host: &str, what: &str| {
        let log = std::fs::read_to_string(dir.join(format!("{host}.log"))).unwrap();
        let found = log.lines().find(|l| l.contains(what)).map(str::to_string);
        found.unwrap_or_else(|| panic!("no `{what}` in {host}'s log:\n{log}"))
    };
    let released = line("a", "partitions released to the group");
    let claimed = line("b", "claimed partition");
    assert!(released[..27] < claimed[..27], "{released}\n{claimed}");
    eprintln!("at the join: {released}");
    let before = claims(&store);
    assert_eq!(
        owners(&before),
        BTreeSet::from([a.id(), b.id()]),
        "{before:?}"
    );
    for (p, (_, pid)) in &before {
        let cut = store.join(format!("partition-{p}.cut"));
        assert!(
            cut.exists(),
            "partition {p} (host {pid}) has a cut\n{}",
            logs(dir)
        );
    }

    b.kill().unwrap();
    b.wait().unwrap();
    let moved = claims_until(&store, Duration::from_secs(60), |c| {
        owners(c) == BTreeSet::from([a.id()])
    });
    let Some(moved) = moved else {
        panic!(
            "the dead host's partitions never moved: {:?}\n{}",
            claims(&store),
            logs(dir)
        );
    };
    eprintln!("from kill -9 to every partition claimed by the survivor: {moved:?}");
    for (p, (epoch, _)) in claims(&store) {
        assert!(
            epoch > before[&p].0 || before[&p].1 == a.id(),
            "partition {p} claimed anew"
        );
    }

    t.every_duplicate_is_caught(&parts, n).await;
    // What the survivor says of itself: every partition, and the moves it saw.
    let log = std::fs::read_to_string(dir.join("a.log")).unwrap();
    let addr = log
        .split("status on http://")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_adstream"))
        .args(["status", "--json", "--addr", addr])
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let p = &status["pipelines"][0];
    assert_eq!(p["partitions"], serde_json::json!([0, 1, 2, 3]), "{p}");
    assert!(
        p["rebalances"].as_u64().unwrap() >= 3,
        "all, then half, then all: {p}"
    );
    let metrics = Command::new(env!("CARGO_BIN_EXE_adstream"))
        .args(["status", "--addr", addr])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&metrics.stdout);
    assert!(text.contains("partitions 0 (lag 0, watermark 20"), "{text}");
    let marks = p["partition_watermarks"].as_object().unwrap();
    assert_eq!(marks.len(), 4, "every partition's own watermark: {p}");
    // Each time b joined, a let two partitions go once their cuts were written.
    let url = format!("http://{addr}/metrics");
    let metrics = reqwest::get(url).await.unwrap().text().await.unwrap();
    let held = metrics
        .lines()
        .find(|l| l.starts_with("adstream_rebalance_seconds_count"));
    let held: u64 = held
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0);
    assert!(
        held >= 1,
        "rebalances that waited for this host's cuts: {metrics}"
    );
    a.kill().unwrap();
    a.wait().unwrap();
}

/// A host that stops answering (SIGSTOP: a long pause, a network cut) loses its
/// partitions to the other after the session timeout; when it wakes up it still holds
/// their old claims, and its cut of them is refused (fencing) — while everything is
/// still counted once: every duplicate sent after is caught.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_host_that_wakes_up_cannot_write_the_partitions_it_lost() {
    let t = Setup::new();
    let (dir, file, store) = (t.dir.path(), t.file.clone(), t.store.clone());
    let (topic, out_topic) = (t.topic.clone(), t.out.clone());
    let events = generate(2000);
    let n = events.len();
    let parts = [part(&events, 0..n / 2), part(&events, n / 2..n)];
    let mut a = host(&file, dir, "a");
    let mut b = host(&file, dir, "b");
    let split = claims_until(&store, Duration::from_secs(60), |c| {
        c.len() == PARTITIONS as usize && owners(c).len() == 2
    });
    assert!(split.is_some(), "{:?}\n{}", claims(&store), logs(dir));
    produce(&topic, &parts[0]).await;
    let out = consume_all(&out_topic, n / 2, Duration::from_secs(60));
    assert_eq!(out.len(), n / 2, "{}", logs(dir));
    // A checkpoint after its interval: the paused host has something to try to write.
    std::thread::sleep(Duration::from_secs(1));

    let signal = |sig: &str, child: &Child| {
        let pid = child.id().to_string();
        assert!(
            Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    signal("-STOP", &b);
    let moved = claims_until(&store, Duration::from_secs(60), |c| {
        owners(c) == BTreeSet::from([a.id()])
    });
    assert!(moved.is_some(), "{:?}\n{}", claims(&store), logs(dir));
    produce(&topic, &parts[1]).await;
    let out = consume_all(&out_topic, n, Duration::from_secs(60));
    assert_eq!(out.len(), n, "{}", logs(dir));
    signal("-CONT", &b);
    let refused = (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        let log = std::fs::read_to_string(dir.join("b.log")).unwrap_or_default();
        log.contains("was taken over by")
    });
    assert!(
        refused,
        "the woken host's cut was not refused\n{}",
        logs(dir)
    );

    t.every_duplicate_is_caught(&parts, n).await;
    for child in [&mut a, &mut b] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

/// Static membership (`group.instance.id` in `options`, one per host): a host killed and
/// started again within the session timeout gets its own partitions back at once, and the
/// other host's partitions do not move at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_restarted_in_time_gets_its_partitions_back_and_nothing_else_moves() {
    let t = Setup::new();
    let (id, dir) = (&t.id, t.dir.path());
    let as_member = |member: &str| {
        let text = pipeline(id, dir).replace(
            "shared = true\n",
            &format!("shared = true\noptions = {{ \"group.instance.id\" = \"{member}\" }}\n"),
        );
        pipeline_file(dir, &format!("{member}.toml"), &text)
    };
    let store = t.store.clone();
    let mut a = host(&as_member("a"), dir, "a");
    let b = host(&as_member("b"), dir, "b");
    let split = claims_until(&store, Duration::from_secs(60), |c| {
        c.len() == PARTITIONS as usize && owners(c).len() == 2
    });
    assert!(split.is_some(), "{:?}\n{}", claims(&store), logs(dir));
    std::thread::sleep(Duration::from_secs(1));
    let before = claims(&store);
    let taken_from_a = || {
        let log = std::fs::read_to_string(dir.join("a.log")).unwrap();
        log.matches("partitions taken from this host").count()
    };
    let taken = taken_from_a();

    let mut b = b;
    b.kill().unwrap();
    b.wait().unwrap();
    let mut b2 = host(&as_member("b"), dir, "b2");
    let b_had: Vec<i32> = (before.iter())
        .filter(|(_, (_, pid))| *pid == b.id())
        .map(|(p, _)| *p)
        .collect();
    let back = claims_until(&store, Duration::from_secs(8), |c| {
        b_had
            .iter()
            .all(|p| c.get(p).is_some_and(|(_, pid)| *pid == b2.id()))
    });
    let b2_log = std::fs::read_to_string(dir.join("b2.log")).unwrap_or_default();
    assert!(
        back.is_some(),
        "{:?} {b_had:?}\n{}\n---\n{b2_log}",
        claims(&store),
        logs(dir)
    );
    eprintln!("restarted member had its partitions back after {back:?}");
    assert_eq!(
        taken_from_a(),
        taken,
        "the other host's partitions stayed\n{}",
        logs(dir)
    );
    for child in [&mut a, &mut b2] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
