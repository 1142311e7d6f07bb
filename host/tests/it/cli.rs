//! The `adstream` binary as a user runs it.

use super::support::{AD_SCHEMA, pipeline_file, read_jsonl};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The binary, with its status endpoint off unless a test asks for it (tests run side by
/// side, and the default port can be taken only once).
fn adstream() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_adstream"));
    c.env("ADSTREAM_STATUS_ADDR", "off");
    c
}

#[test]
fn check_exits_non_zero_and_prints_positions() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline_file(dir.path(), "bad.toml", "[source]\nkind = \"nope\"\n");
    let out = adstream().arg("check").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:2:8: unknown source kind `nope`"),
        "{err}"
    );
    assert!(
        err.contains("bad.toml:1:1: the pipeline has no [schema]"),
        "{err}"
    );
    let good = super::support::root().join("pipelines/demo.toml");
    let out = adstream().arg("check").arg(&good).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ok: pipeline `demo`"), "{text}");
    // What crosses the boundary: quality's five rules name five columns (the demo's
    // schema has 17); pii-hash, a transform, is handed every column.
    assert!(
        text.contains("quality (validate quality 0.1.0, reads 5 of 17 columns)"),
        "{text}"
    );
    assert!(text.contains("pii (transform pii-hash 0.1.0)"), "{text}");
}

/// `ADSTREAM_PROFILE=perfmap` (docs/plugins.md, "Profile a plugin"): perf's map of the
/// process names the plugins' own functions.
#[test]
fn profile_perfmap_names_the_plugin_functions() {
    let demo = super::support::root().join("pipelines/demo.toml");
    let child = adstream()
        .arg("check")
        .arg(&demo)
        .env("ADSTREAM_PROFILE", "perfmap")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let map = std::path::PathBuf::from(format!("/tmp/perf-{}.map", child.id()));
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = std::fs::read_to_string(&map).unwrap_or_default();
    let _ = std::fs::remove_file(&map);
    for function in ["window_aggregate::", "quality::", "pii_hash::"] {
        assert!(text.contains(function), "no `{function}` in {map:?}");
    }
}

/// Ctrl-C flushes open windows before exit: the windows of events already read appear.
#[test]
fn interrupt_flushes_open_windows() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("windows.jsonl");
    let text = format!(
        r#"
[source]
kind = "generator"
rate = 2000.0
start = 1700000000000
{AD_SCHEMA}
[[stage]]
name = "windows"
plugin = "@PLUGINS@/window_aggregate.wasm"
config = {{ window = "1h", group_by = ["country"] }}
to = ["out"]
[sink.out]
kind = "file"
path = "{}"
"#,
        out.display()
    );
    let file = pipeline_file(dir.path(), "p.toml", &text);
    let child = adstream()
        .arg("run")
        .arg(&file)
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let result = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{err}");
    assert!(err.contains("flushing open windows"), "{err}");
    let windows = read_jsonl(&out);
    assert_eq!(
        windows.len(),
        5,
        "one open 1 h window per country, flushed: {windows:?}"
    );
    let events: i64 = windows
        .iter()
        .map(|w| {
            ["requests", "impressions", "clicks", "conversions"]
                .iter()
                .map(|k| w[k].as_i64().unwrap())
                .sum::<i64>()
        })
        .sum();
    assert!(
        events > 2000,
        "about 3 s of 2000 events/s went in: {events}"
    );
}

#[test]
fn run_stops_after_its_duration_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[source]\nkind = \"generator\"\nrate = 500.0\n{AD_SCHEMA}\n[sink.unused]\nkind = \"stdout\"\n"
    );
    let file = pipeline_file(dir.path(), "p.toml", &text);
    let out = adstream()
        .args(["run", "--duration", "1"])
        .arg(&file)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("pipeline `p` finished in"), "{err}");
}

/// Secrets (the PII key, a webhook URL) appear in no log line, error or dead letter, even
/// at debug level and when the webhook cannot be reached.
#[test]
fn secrets_never_appear_in_logs_errors_or_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let key = "SUPERSECRET-PII-KEY-0123456789";
    let token = "SECRETTOKEN42";
    std::fs::write(dir.path().join("key"), key).unwrap();
    std::fs::write(
        dir.path().join("url"),
        format!("http://127.0.0.1:1/services/{token}"),
    )
    .unwrap();
    std::fs::write(dir.path().join("short"), "SHORTSECRET").unwrap();
    let dead = dir.path().join("dead.jsonl");
    let events: Vec<String> = (0..3)
        .map(|i| {
            format!(
                r#"{{"event_id": "e{i}", "event_time": {}, "user_id": "u{i}", "payload": "{{}}"}}"#,
                1_700_000_000_000i64 + i
            )
        })
        .collect();
    std::fs::write(dir.path().join("in.jsonl"), events.join("\n")).unwrap();
    let pipeline = |key_file: &str| {
        format!(
            r#"
dead_letter = "dead"
[source]
kind = "file"
path = "{input}"
[schema]
event_id = {{ type = "string", required = true }}
event_time = {{ type = "timestamp_ms", required = true }}
user_id = "string"
payload = "string"
[[stage]]
name = "pii"
plugin = "@PLUGINS@/pii_hash.wasm"
secrets.key = {{ file = "{key}" }}
config = {{ hash = ["user_id"] }}
to = ["hook"]
[sink.hook]
kind = "webhook"
url = {{ file = "{url}" }}
retry = {{ initial = "10ms", attempts = 2 }}
[sink.dead]
kind = "file"
path = "{dead}"
"#,
            input = dir.path().join("in.jsonl").display(),
            key = dir.path().join(key_file).display(),
            url = dir.path().join("url").display(),
            dead = dead.display(),
        )
    };
    let good = pipeline_file(dir.path(), "good.toml", &pipeline("key"));
    let run = adstream()
        .args(["--log", "debug", "run"])
        .arg(&good)
        .output()
        .unwrap();
    let check = adstream()
        .arg("check")
        .arg(pipeline_file(dir.path(), "short.toml", &pipeline("short")))
        .output()
        .unwrap();
    assert!(!check.status.success());
    let check_err = String::from_utf8_lossy(&check.stderr);
    assert!(
        check_err.contains("secret `key` has 11 bytes"),
        "{check_err}"
    );
    let everything = [
        String::from_utf8_lossy(&run.stdout).into_owned(),
        String::from_utf8_lossy(&run.stderr).into_owned(),
        check_err.into_owned(),
        std::fs::read_to_string(&dead).unwrap(),
    ]
    .concat();
    assert_eq!(
        read_jsonl(&dead).len(),
        3,
        "undeliverable rows are dead letters: {everything}"
    );
    for secret in [key, token, "SHORTSECRET"] {
        assert!(
            !everything.contains(secret),
            "`{secret}` leaked:\n{everything}"
        );
    }
}

/// Reads the host's stderr until it says where status is served; the rest is kept.
fn status_address(
    stderr: std::process::ChildStderr,
) -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let began = std::time::Instant::now();
    while began.elapsed() < Duration::from_secs(60) {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        if let Some(rest) = line.split("status on http://").nth(1) {
            return (rest.split('/').next().unwrap().to_string(), rx);
        }
    }
    panic!("the host never said where it serves status");
}

fn status_of(addr: &str, json: bool) -> String {
    let mut cmd = adstream();
    cmd.args(["status", "--addr", addr]);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// What `adstream status` prints on stderr, failing, against a peer that takes the
/// request, answers 200 and then sends its body with `send` (until the client hangs up).
fn status_against(send: fn(&mut std::net::TcpStream) -> std::io::Result<()>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        let _ = sock.read(&mut [0; 1024]);
        let _ = sock.write_all(b"HTTP/1.1 200 OK\r\n\r\n");
        while send(&mut sock).is_ok() {}
    });
    let out = adstream()
        .args(["status", "--addr", &addr])
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).replace(&addr, "ADDR")
}

/// `adstream status` pointed at something that is not an adstream host and answers
/// without end: an error naming the bound, not a process that grows until it is killed.
#[test]
fn status_refuses_an_endless_reply() {
    let err = status_against(|sock| std::io::Write::write_all(sock, &[b'x'; 64 << 10]));
    assert!(
        err.contains("ADDR sent more than 16 MiB, which no adstream host sends"),
        "{err}"
    );
}

/// A peer that trickles its reply, a byte at a time: `adstream status` gives up after 10 s
/// in all, not 10 s per read.
#[test]
fn status_gives_up_on_a_reply_that_trickles() {
    let err = status_against(|sock| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::io::Write::write_all(sock, b" ")
    });
    assert!(err.contains("the reply took longer than 10s"), "{err}");
}

/// What a user does: run a pipeline, ask `adstream status`, rebuild its plugin (here: put
/// a different build in place), and see the new version loaded and the swap listed.
#[test]
fn status_shows_plugins_and_a_rebuilt_plugin_being_swapped_in() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("window_aggregate.wasm");
    let original = std::fs::read(super::support::plugin("window_aggregate")).unwrap();
    std::fs::write(&wasm, &original).unwrap();
    let text = format!(
        r#"
name = "watched"
dead_letter = "dead"
[source]
kind = "generator"
rate = 5000.0
flush_interval = "50ms"
{AD_SCHEMA}
[[stage]]
name = "windows"
plugin = "window_aggregate.wasm"
config = {{ window = "1s", group_by = ["country"] }}
to = ["dead"]
[sink.dead]
kind = "file"
path = "{}"
"#,
        dir.path().join("out.jsonl").display()
    );
    let file = pipeline_file(dir.path(), "watched.toml", &text);
    let mut child = adstream()
        .args(["run", "--status-addr", "127.0.0.1:0", "--duration", "60"])
        .arg(&file)
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, _log) = status_address(child.stderr.take().unwrap());

    let before = status_of(&addr, false);
    let old_hash = adstream::plugin::sha256_hex(&original);
    assert!(before.contains("pipeline watched"), "{before}");
    assert!(
        before.contains("stage windows") && before.contains("aggregate window-aggregate"),
        "{before}"
    );
    assert!(
        before.contains(&format!("sha256:{}", &old_hash[..12])),
        "{before}"
    );

    // A rebuild writes aside and renames over the old file; the watcher does the rest.
    let rebuilt = adstream::plugin::retag(&original, 1);
    std::fs::write(dir.path().join("new.wasm.tmp"), &rebuilt).unwrap();
    std::fs::rename(dir.path().join("new.wasm.tmp"), &wasm).unwrap();
    let new_hash = adstream::plugin::sha256_hex(&rebuilt);
    let began = std::time::Instant::now();
    let status: serde_json::Value = loop {
        let s: serde_json::Value = serde_json::from_str(&status_of(&addr, true)).unwrap();
        if s["changes"].as_array().is_some_and(|c| !c.is_empty()) {
            break s;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "no swap after 30 s: {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let change = &status["changes"][0];
    assert_eq!(change["accepted"], true, "{change}");
    assert_eq!(change["stage"], "windows");
    assert_eq!(
        status["pipelines"][0]["stages"][0]["plugin"]["hash"],
        new_hash.as_str()
    );
    let after = status_of(&addr, false);
    assert!(after.contains("applied  plugin"), "{after}");
    assert!(
        after.contains(&format!("sha256:{}", &new_hash[..12])),
        "{after}"
    );
    let metrics = adstream::cli::status::get(&addr, "/metrics", None).unwrap();
    assert!(
        metrics.contains(
            "adstream_changes_total{pipeline=\"watched\",kind=\"plugin\",outcome=\"applied\"} 1"
        ),
        "{metrics}"
    );

    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// Every credential-bearing setting is a secret and never shows: not in `check`'s output,
/// not in a failed run's errors and logs, not in `/status` or `/metrics` of a running host.
#[test]
fn credentials_never_show_in_check_run_errors_status_or_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let (redis_pw, ch_pw, kafka_pw, key) = (
        "REDISPW-xyzzy1",
        "CHPW-plugh22",
        "KAFKAPW-frotz3",
        "PIIKEY-quux4444-0123456789",
    );
    let envs = [
        ("T_REDIS_URL", format!("redis://:{redis_pw}@127.0.0.1:1/0")),
        ("T_CH_URL", format!("http://u:{ch_pw}@127.0.0.1:1")),
        ("T_CH_PW", ch_pw.to_string()),
        ("T_KAFKA_PW", kafka_pw.to_string()),
        ("T_KEY", key.to_string()),
    ];
    let head = format!(
        "dead_letter = \"dead\"\n[source]\nkind = \"generator\"\nrate = 2000.0\n{AD_SCHEMA}\n\
         [[stage]]\nname = \"pii\"\nplugin = \"@PLUGINS@/pii_hash.wasm\"\n\
         secrets.key = {{ env = \"T_KEY\" }}\nconfig = {{ hash = [\"user_id\"] }}\n\
         [sink.dead]\nkind = \"file\"\npath = \"{}\"\n",
        dir.path().join("dead.jsonl").display()
    );
    let run = |name: &str, sinks: &str, args: &[&str]| {
        let file = pipeline_file(dir.path(), name, &format!("{head}{sinks}"));
        let mut cmd = adstream();
        cmd.args(args).arg(&file).current_dir(dir.path());
        envs.iter().for_each(|(k, v)| {
            cmd.env(k, v);
        });
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let inline = format!(
        "[sink.r]\nkind = \"redis\"\nurl = \"redis://:{redis_pw}@127.0.0.1:1\"\nkey = \"k:{{country}}\"\n"
    );
    let (ok, check) = run("inline.toml", &inline, &["check"]);
    assert!(!ok && check.contains("redis://:***@127.0.0.1:1"), "{check}");
    let redis =
        "[sink.r]\nkind = \"redis\"\nurl = { env = \"T_REDIS_URL\" }\nkey = \"k:{country}\"\n";
    let (ok, redis_run) = run(
        "redis.toml",
        redis,
        &["--log", "debug", "run", "--duration", "5"],
    );
    assert!(
        !ok && redis_run.contains("cannot reach Redis at redis://:***@127.0.0.1:1/0"),
        "{redis_run}"
    );
    let ch = "[sink.c]\nkind = \"clickhouse\"\nurl = { env = \"T_CH_URL\" }\nuser = \"u\"\n\
              password = { env = \"T_CH_PW\" }\ntable = \"t\"\n\
              [sink.k]\nkind = \"kafka\"\nbrokers = \"127.0.0.1:1\"\ntopic = \"t\"\n\
              options = { \"sasl.password\" = { env = \"T_KAFKA_PW\" } }\n";
    let (_, ch_check) = run("ch.toml", ch, &["check"]);
    let (ok, ch_run) = run("ch.toml", ch, &["--log", "debug", "run", "--duration", "5"]);
    assert!(!ok, "{ch_run}");
    let plain = "[sink.out]\nkind = \"file\"\npath = \"out.jsonl\"\n";
    let file = pipeline_file(
        dir.path(),
        "plain.toml",
        &format!("{head}{plain}").replace(
            "config = { hash = [\"user_id\"] }",
            "config = { hash = [\"user_id\"] }\nto = [\"out\"]",
        ),
    );
    let mut cmd = adstream();
    cmd.args([
        "--log",
        "debug",
        "run",
        "--status-addr",
        "127.0.0.1:0",
        "--duration",
        "30",
    ])
    .arg(&file)
    .current_dir(dir.path())
    .stderr(Stdio::piped());
    envs.iter().for_each(|(k, v)| {
        cmd.env(k, v);
    });
    let mut child = cmd.spawn().unwrap();
    let (addr, log) = status_address(child.stderr.take().unwrap());
    std::thread::sleep(Duration::from_millis(500));
    let status = adstream::cli::status::get(&addr, "/status", None).unwrap();
    let metrics = adstream::cli::status::get(&addr, "/metrics", None).unwrap();
    assert!(status.contains("pii"), "{status}");
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let logs: Vec<String> = log.try_iter().collect();
    let everything = [
        check,
        redis_run,
        ch_check,
        ch_run,
        status,
        metrics,
        logs.join("\n"),
    ]
    .concat();
    for secret in [redis_pw, ch_pw, kafka_pw, key] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked: {everything}"
        );
    }
}

#[test]
fn generate_writes_a_json_lines_file_of_the_count_asked() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let out = adstream()
        .args(["generate", "--no-pace", "--count", "2500", "--out"])
        .arg(&events)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("wrote 2500 events"), "{stderr}");
    let lines: Vec<serde_json::Value> = read_jsonl(&events);
    assert_eq!(lines.len(), 2500);
    assert!(lines.iter().all(|e| e["event_id"].is_string()));
    // Without a count there is no end to write to.
    let out = adstream()
        .args(["generate", "--out"])
        .arg(dir.path().join("endless.jsonl"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out needs --count or --duration"));
}
