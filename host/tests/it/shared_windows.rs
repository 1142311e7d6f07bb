//! Windows over partitions that several hosts read (`[source] shared = true` with
//! aggregates): each host's lanes send their partial windows to the partials topic, the
//! owner of partition 0 merges them. One host and three hosts on the same input write the
//! same ClickHouse rows and the same alerts, each equal to counts from the events.

use super::services::GENERATOR;
use super::services_support::*;
use super::support::root;
use adstream::batch::RawBatch;
use adstream::config::kafka::{CreateTopic, KafkaOptions};
use adstream::config::source::GeneratorConfig;
use adstream::sources::generator::GeneratorSource;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 6;

/// The environment that runs the shipped `pipelines/ad-metrics.toml` for group `name`,
/// shared, on the test's own topics, database, Redis keys and checkpoint folder.
fn group_env(id: &str, name: &str, dir: &Path) -> Vec<(String, String)> {
    let state = dir.join(format!("state-{name}"));
    [
        ("ADSTREAM_SHARED", "true".to_string()),
        ("ADSTREAM_NS", format!("{id}_{name}_")),
        ("ADSTREAM_CH_DB", format!("sw_{id}_{name}")),
        ("ADSTREAM_STATE", state.display().to_string()),
        ("ADSTREAM_KAFKA", BROKERS.to_string()),
        ("ADSTREAM_CLICKHOUSE", CLICKHOUSE.to_string()),
        ("ADSTREAM_REDIS", REDIS.to_string()),
        (
            "ADSTREAM_PII_KEY",
            "a-test-key-of-enough-length".to_string(),
        ),
        ("ADSTREAM_STATUS_ADDR", "127.0.0.1:0".to_string()),
    ]
    .map(|(k, v)| (k.to_string(), v))
    .into()
}

/// `adstream run pipelines/ad-metrics.toml` in `env`, its log in `dir/<log>.log`.
fn host(env: &[(String, String)], dir: &Path, log: &str) -> Child {
    let file = std::fs::File::create(dir.join(format!("{log}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_adstream"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("run")
        .arg(root().join("pipelines/ad-metrics.toml"))
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .unwrap()
}

/// Host processes by name, killed when the test ends however it ends.
struct Hosts(Vec<(String, Child)>);

impl Drop for Hosts {
    fn drop(&mut self) {
        for (_, h) in &mut self.0 {
            let _ = h.kill();
            let _ = h.wait();
        }
    }
}

impl Hosts {
    fn name_of(&self, pid: u32) -> &str {
        let found = self.0.iter().find(|(_, h)| h.id() == pid);
        &found.expect("a host of the test").0
    }

    /// Group three's hosts still running, other than `but`.
    fn others(&mut self, but: u32) -> Vec<&mut Child> {
        let three = self.0.iter_mut().filter(|(n, _)| n.starts_with("three"));
        let running = three.filter_map(|(_, h)| h.try_wait().unwrap().is_none().then_some(h));
        running.filter(|h| h.id() != but).collect()
    }
}

/// What happens to group three's hosts while a part of the events is produced.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// A host joins.
    Join,
    /// A host that does not merge the windows stops (SIGTERM).
    Leave,
    /// A host that does not merge the windows is killed (-9).
    Kill,
    /// The host that merges the windows is killed (-9).
    KillMerger,
}

/// The steps taken while each part of the events is produced: the suite's short form,
/// or with `ADSTREAM_CHAOS=full` (`scripts/chaos.sh`) 600,000 events and more moves.
fn plan() -> Vec<Vec<Step>> {
    use Step::*;
    match std::env::var("ADSTREAM_CHAOS").as_deref() {
        Ok("full") => vec![
            vec![],
            vec![Join, Join],
            vec![Leave],
            vec![Join],
            vec![Kill],
            vec![KillMerger],
        ],
        _ => vec![vec![], vec![Join, Join], vec![Leave, KillMerger]],
    }
}

/// Takes `step` on group three (`env`, claims in `store`): how many hosts run after it,
/// and the merging host's pid if it was the one killed.
fn take(
    step: Step,
    hosts: &mut Hosts,
    env: &[(String, String)],
    dir: &Path,
    store: &Path,
) -> (usize, Option<u32>) {
    let merging = owner(store, 0).unwrap();
    let running = hosts.others(0).len();
    match step {
        Step::Join => {
            let name = format!("three-{}", hosts.0.len());
            let child = host(env, dir, &name);
            hosts.0.push((name, child));
            return (running + 1, None);
        }
        Step::Leave => {
            let leaver = hosts
                .others(merging)
                .into_iter()
                .next()
                .expect("a host to leave");
            let term = Command::new("kill")
                .args(["-TERM", &leaver.id().to_string()])
                .status();
            assert!(term.unwrap().success());
            assert!(
                leaver.wait().unwrap().success(),
                "a host stops cleanly on SIGTERM"
            );
        }
        Step::Kill => {
            let victim = hosts
                .others(merging)
                .into_iter()
                .next()
                .expect("a host to kill");
            victim.kill().unwrap();
            victim.wait().unwrap();
        }
        Step::KillMerger => {
            let three = hosts.0.iter_mut().map(|(_, h)| h);
            let victim = three.into_iter().find(|h| h.id() == merging).unwrap();
            victim.kill().unwrap();
            victim.wait().unwrap();
            return (running - 1, Some(merging));
        }
    }
    (running - 1, None)
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
    let name = hosts.name_of(pid);
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

/// Waits until `table`'s closed windows (`closed`'s `(window, until, lateness)`) are
/// `want`.
async fn windows_equal(table: &str, want: &Windows, by: (i64, i64, i64), dir: &Path) {
    let (window, until, lateness) = by;
    let got = async || closed(windows(table).await, window, until, lateness);
    let done = eventually(Duration::from_secs(240), async || got().await == *want).await;
    let got = got().await;
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

/// The windows of `window_ms` that every partition has passed by (its latest event time
/// less the event-time delay and `lateness_ms`) in `got` and in `want`.
fn closed(mut windows: Windows, window_ms: i64, until: i64, lateness_ms: i64) -> Windows {
    windows.retain(|(t, _, _), _| t + window_ms + lateness_ms + 2_000 <= until);
    windows
}

/// A time every partition's events have reached: the last second holds about a thousand
/// events, spread over the partitions by their keys.
fn every_partition_reached(all: &RawBatch) -> i64 {
    let time = |i| {
        serde_json::from_slice::<serde_json::Value>(all.record(i)).unwrap()["event_time"].as_i64()
    };
    let last = (0..all.len()).filter_map(time).max().unwrap();
    last - 1_000
}

/// One host, and hosts of another group scaled 1 → 3 → 2 → 1 while events flow (two
/// join, one leaves with SIGTERM, the merging one is killed with -9; in full, `plan`,
/// 1 → 3 → 2 → 3 → 2 → 1 with a -9 of a host that does not merge too), both running the
/// shipped `pipelines/ad-metrics.toml` with `ADSTREAM_SHARED=true`: the same 1 min and
/// 10 s windows, equal to counts from the events, and the same alerts (a Kafka sink may
/// send what came after the dead host's last cut again: the same alert, with its id).
#[tokio::test(flavor = "multi_thread")]
async fn hosts_that_join_leave_and_die_write_the_windows_and_alerts_one_host_writes() {
    services();
    let id = uid();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cfg: GeneratorConfig = toml::from_str(GENERATOR).unwrap();
    let mut generator = GeneratorSource::new(&cfg).unwrap();
    let plan = plan();
    let parts: Vec<RawBatch> = (0..plan.len())
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
    let (one, three) = (group_env(&id, "one", dir), group_env(&id, "three", dir));
    let topics = [
        format!("{id}_one_ad-events"),
        format!("{id}_three_ad-events"),
    ];
    for topic in &topics {
        let create = CreateTopic {
            partitions: (PARTITIONS as u32).try_into().unwrap(),
        };
        let options = KafkaOptions::default();
        adstream::connect::kafka::ensure_topic(BROKERS, topic, Some(&create), &options)
            .await
            .unwrap();
    }
    let produce_part = |k: usize| {
        let (topics, part) = (topics.clone(), parts[k].clone());
        tokio::spawn(async move {
            for topic in &topics {
                produce(topic, &part).await;
            }
        })
    };
    let store = dir.join("state-three/ad-metrics.partitions");
    let mut hosts = Hosts(vec![
        ("one".into(), host(&one, dir, "one")),
        ("three-a".into(), host(&three, dir, "three-a")),
    ]);
    let tables = |name: &str| {
        let db = format!("sw_{id}_{name}");
        [
            format!("{db}.ad_metrics_1m"),
            format!("{db}.ad_metrics_10s"),
        ]
    };
    // Each part produced while its steps are taken; per step, how long until the hosts
    // left owned every partition.
    let mut summary = Vec::new();
    let mut merging = None;
    for (k, steps) in plan.iter().enumerate() {
        let flow = produce_part(k);
        for &step in steps {
            let began = Instant::now();
            let (n, killed) = take(step, &mut hosts, &three, dir, &store);
            merging = killed.or(merging);
            let settled = owned_by(&store, n);
            assert!(
                settled.is_some(),
                "{n} hosts own the partitions after {step:?}\n{}",
                logs(dir)
            );
            summary.push((k, step, n, began.elapsed()));
        }
        flow.await.unwrap();
        if k == 0 {
            let merged = eventually(Duration::from_secs(120), async || {
                !windows(&tables("three")[1]).await.is_empty()
            })
            .await;
            assert!(merged, "a host alone merged a window\n{}", logs(dir));
        }
    }
    println!("| while producing events | step | hosts after | every partition owned after |");
    println!("|---|---|---|---|");
    for (k, step, n, took) in &summary {
        let events = format!("{}–{}", k * 100_000, (k + 1) * 100_000);
        println!(
            "| {events} | {step:?} | {n} | {:.1} s |",
            took.as_secs_f64()
        );
    }
    let merging = merging.expect("the plan kills the merging host");

    let until = every_partition_reached(&all);
    for (window, lateness, at) in [(60_000, 5_000, 0), (10_000, 0, 1)] {
        let want = closed(oracle(&all, window), window, until, lateness);
        for name in ["one", "three"] {
            windows_equal(&tables(name)[at], &want, (window, until, lateness), dir).await;
        }
    }
    let survivor = owned_by(&store, 1).expect("the survivor owns every partition");
    assert!(!survivor.contains(&merging));
    let text = status_text(dir, &hosts, survivor.first().copied().unwrap());
    assert!(
        text.contains("merges the hosts' windows (watermark 20"),
        "{text}"
    );
    let text = status_text(dir, &hosts, hosts.0[0].1.id());
    assert!(
        text.contains("merges the hosts' windows (watermark 20"),
        "one: {text}"
    );

    let by_one = alerts(&format!("{id}_one_alerts"), 4, Duration::from_secs(30));
    assert!(by_one.len() >= 4, "the scenarios' alerts: {by_one:?}");
    let mut by_three = alerts(
        &format!("{id}_three_alerts"),
        3 * by_one.len(),
        Duration::from_secs(10),
    );
    by_three.dedup();
    assert_eq!(by_three, by_one, "the same alerts\n{}", logs(dir));
    // No window sent again by a lane read from an older cut reached the merger: it would
    // be merged twice, or be late there (a dead letter).
    for name in ["one", "three"] {
        let dead = consume_all(
            &format!("{id}_{name}_dead-letters"),
            1,
            Duration::from_secs(3),
        );
        let first = dead.first().map(|(v, h)| (String::from_utf8_lossy(v), h));
        assert!(first.is_none(), "{name}: a dead letter: {first:?}");
    }
}
