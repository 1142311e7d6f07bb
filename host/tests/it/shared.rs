//! Hosts sharing a topic through a consumer group (`[source] shared = true`), as users run
//! them: `adstream run` processes on the real broker, one killed with -9.

use super::instances::Instance;
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

fn pipeline(id: &str, dir: &Path, state: &str) -> String {
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
        key = dir.join("pii.key").display(),
    )
}

/// Where a test's checkpoint store is.
#[derive(Clone)]
enum StoreAt {
    Folder(PathBuf),
    /// An S3-compatible store of the test's own (`scripts/instance.sh start DIR s3`).
    Objects {
        port: u16,
        prefix: String,
    },
}

impl StoreAt {
    fn folder(&self) -> &Path {
        match self {
            StoreAt::Folder(dir) => dir,
            StoreAt::Objects { .. } => panic!("a folder store"),
        }
    }
}

/// One test's pipeline: its folder (the key, the checkpoint store, the hosts' logs), file
/// and topics, named apart from every other test's.
struct Setup {
    /// The object store, stopped when the test ends: before `dir` goes, which holds the
    /// pid it is stopped by (fields drop in this order).
    _s3: Option<Instance>,
    id: String,
    dir: tempfile::TempDir,
    file: PathBuf,
    store: StoreAt,
    /// The hosts' environment (where the object store is).
    env: Vec<(String, String)>,
    topic: String,
    out: String,
    dead: String,
}

impl Setup {
    /// With the checkpoint store in a folder.
    fn new() -> Setup {
        Setup::with(false)
    }

    /// With the checkpoint store in an S3-compatible object store when `s3`.
    fn with(s3: bool) -> Setup {
        services();
        let id = uid();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        std::fs::write(path.join("pii.key"), "a-test-key-of-enough-length\n").unwrap();
        let s3 = s3.then(|| Instance::start(path, "s3", &[]));
        let (state, store, env) = match &s3 {
            None => (
                path.join("state").display().to_string(),
                StoreAt::Folder(path.join(format!("state/s-{id}.partitions"))),
                Vec::new(),
            ),
            Some(s3) => (
                format!("s3://adstream/{id}"),
                StoreAt::Objects {
                    port: s3.port(),
                    prefix: format!("{id}/s-{id}"),
                },
                s3_env(s3.port()),
            ),
        };
        Setup {
            file: pipeline_file(path, "p.toml", &pipeline(&id, path, &state)),
            store,
            env,
            topic: format!("{id}-events"),
            out: format!("{id}-out"),
            dead: format!("{id}-dead"),
            id,
            dir,
            _s3: s3,
        }
    }

    /// An `adstream run` of the pipeline, logging to `<name>.log`.
    fn host(&self, name: &str) -> Child {
        host_in(&self.file, self.dir.path(), name, &self.env)
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
        let quiet = Duration::from_secs(3);
        let dead = consume_settled(&self.dead, n, Duration::from_secs(60), quiet);
        assert_eq!(dead.len(), n, "each duplicate rejected once\n{}", logs());
        let out = consume_settled(&self.out, n, Duration::from_secs(60), quiet);
        let out = event_ids(&out);
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
fn host(file: &Path, dir: &Path, name: &str) -> Child {
    host_in(file, dir, name, &[])
}

/// [`host`] with `env` besides.
fn host_in(file: &Path, dir: &Path, name: &str, env: &[(String, String)]) -> Child {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_adstream"))
        .env("ADSTREAM_STATUS_ADDR", "127.0.0.1:0")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("run")
        .arg(file)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// What a host needs to reach the object store on `port`, as users give it (the `AWS_*`
/// variables object_store reads).
fn s3_env(port: u16) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "adstream-test".into()),
        ("AWS_SECRET_ACCESS_KEY", "adstream-test".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
    .map(|(k, v)| (k.to_string(), v))
    .into()
}

/// The first line of each unit's object (its claim) in the object store.
fn object_claims(port: u16, prefix: &str) -> Vec<(i32, String)> {
    use object_store::ObjectStore;
    let store = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name("adstream")
        .with_endpoint(format!("http://127.0.0.1:{port}"))
        .with_allow_http(true)
        .with_access_key_id("adstream-test")
        .with_secret_access_key("adstream-test")
        .with_region("us-east-1")
        .build()
        .unwrap();
    let prefix = prefix.to_string();
    // A thread of its own: the tests call this from inside their runtime.
    let read = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut out = Vec::new();
            for p in 0..PARTITIONS {
                let path = object_store::path::Path::from(format!("{prefix}/partition-{p}"));
                if let Ok(got) = store.get(&path).await {
                    let bytes = got.bytes().await.unwrap();
                    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
                    out.push((p, String::from_utf8_lossy(line).into_owned()));
                }
            }
            out
        })
    });
    read.join().unwrap()
}

/// Each partition's claim in the store: (epoch, owner's pid).
fn claims(store: &StoreAt) -> BTreeMap<i32, (u64, u32)> {
    let lines: Vec<(i32, String)> = match store {
        StoreAt::Folder(dir) => (0..PARTITIONS)
            .filter_map(|p| {
                let path = dir.join(format!("partition-{p}.claim"));
                Some((p, std::fs::read_to_string(path).ok()?))
            })
            .collect(),
        StoreAt::Objects { port, prefix } => object_claims(*port, prefix),
    };
    lines
        .into_iter()
        .filter_map(|(p, text)| {
            let (epoch, owner) = text.trim().split_once(' ')?;
            let pid = owner.rsplit('/').next()?.parse().ok()?;
            Some((p, (epoch.parse().ok()?, pid)))
        })
        .collect()
}

/// Waits until `check` holds of the claims, for at most `timeout`.
fn claims_until(
    store: &StoreAt,
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
    let out = consume_settled(
        &out_topic,
        n,
        Duration::from_secs(60),
        Duration::from_secs(3),
    );
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
        let cut = store.folder().join(format!("partition-{p}.cut"));
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
    // A cut before anything was read commits nothing (an empty commit is an error to
    // librdkafka, logged as a warning after every assignment).
    assert!(!log.contains("committing offsets"), "{log}");
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
    a_paused_host_is_fenced(Setup::new()).await;
}

/// The same with the checkpoint store in an S3-compatible object store, where a unit's
/// claim and cut are one object written only over the version its writer read
/// (`If-Match`): the store itself refuses the host that woke up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_an_object_store_a_paused_host_that_wakes_up_cannot_write_the_partitions_it_lost() {
    a_paused_host_is_fenced(Setup::with(true)).await;
}

async fn a_paused_host_is_fenced(t: Setup) {
    let (dir, store) = (t.dir.path(), t.store.clone());
    let (topic, out_topic) = (t.topic.clone(), t.out.clone());
    let events = generate(2000);
    let n = events.len();
    let parts = [part(&events, 0..n / 2), part(&events, n / 2..n)];
    let mut a = t.host("a");
    let mut b = t.host("b");
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
        let state = dir.join("state").display().to_string();
        let text = pipeline(id, dir, &state).replace(
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

/// Two hosts of different consumer groups on one checkpoint store (here an object
/// store): each group would read every partition and overwrite the other's cuts, so the
/// second is refused at start, saying whose store it is, and the first runs on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_of_another_group_is_refused_the_store_loudly() {
    let t = Setup::with(true);
    let (id, dir) = (&t.id, t.dir.path());
    let mut a = t.host("a");
    let all = claims_until(&t.store, Duration::from_secs(60), |c| {
        c.len() == PARTITIONS as usize
    });
    assert!(all.is_some(), "{}", logs(dir));
    let text = std::fs::read_to_string(&t.file).unwrap();
    let ours = format!("group = \"{id}-g\"");
    let other = text.replace(&ours, &format!("group = \"{id}-other\""));
    let other = pipeline_file(dir, "other.toml", &other);
    let mut b = host_in(&other, dir, "b", &t.env);
    let began = Instant::now();
    let status = loop {
        if let Some(status) = b.try_wait().unwrap() {
            break status;
        }
        assert!(began.elapsed() < Duration::from_secs(60), "{}", logs(dir));
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(dir.join("b.log")).unwrap();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(&format!("belongs to consumer group `{id}-g`"))
            && log.contains(&format!("`{id}-other`")),
        "{log}"
    );
    assert!(a.try_wait().unwrap().is_none(), "{}", logs(dir));
    a.kill().unwrap();
    a.wait().unwrap();
}
