//! The dashboard in a real headless browser (Debian's Chromium, driven by playwright-core
//! through scripts/browser.sh, which installs both): served by the same endpoint as
//! `adstream run`, during a run of generated traffic with anomalies and a hot swap. The
//! page must show charts with data, the alerts, and the swapped plugin's new version.

use super::support::{AD_SCHEMA, pipeline_file, plugin, root};
use adstream::plugin::{PluginEngine, retag, sha256_hex};
use adstream::supervisor::{self, Supervisor};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Generated traffic at 5× real time, a few records broken: 10 s windows by country ×
/// format and the anomaly rules, with a CTR drop and a traffic spike.
fn pipeline(dir: &Path) -> String {
    format!(
        r#"
name = "dash"
dead_letter = "dead"
[source]
kind = "generator"
rate = 20000.0
speed = 5.0
seed = 42
align = "10s"
batch_size = 2000
flush_interval = "100ms"
malformed_rate = 0.001
[[source.scenario]]
kind = "ctr_drop"
at = "20s"
country = "US"
ad_format = "banner"
[[source.scenario]]
kind = "traffic_spike"
at = "30s"
country = "JP"
ad_format = "interstitial"
factor = 5.0
{AD_SCHEMA}
[event_time]
column = "event_time"
delay = "1s"
[[stage]]
name = "windows"
plugin = "windows.wasm"
config = {{ window = "10s", group_by = ["country", "ad_format"] }}
to = ["windows"]
[[stage]]
name = "anomalies"
plugin = "@PLUGINS@/anomaly_ema.wasm"
config = {{ min_impressions = 1000 }}
to = ["alerts"]
[sink.windows]
kind = "file"
path = "{dir}/windows.jsonl"
[sink.alerts]
kind = "file"
path = "{dir}/alerts.jsonl"
[sink.dead]
kind = "file"
path = "{dir}/dead.jsonl"
"#,
        dir = dir.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_live_charts_alerts_and_a_swapped_version_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let windows = dir.path().join("windows.wasm");
    let shipped = std::fs::read(plugin("window_aggregate")).unwrap();
    std::fs::write(&windows, &shipped).unwrap();
    let file = pipeline_file(dir.path(), "dash.toml", &pipeline(dir.path()));
    let mut sup = Supervisor::new(PluginEngine::new().unwrap());
    sup.start_file(&file)
        .await
        .unwrap_or_else(|d| panic!("{d:#?}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(supervisor::serve(listener, sup.board(), None));
    let handle = sup.spawn();

    // The browser opens the page at once; the new version arrives while it watches.
    let v2 = retag(&shipped, 7);
    let shot = std::env::var("ADSTREAM_SCREENSHOT")
        .unwrap_or_else(|_| dir.path().join("dashboard.png").display().to_string());
    let browser = tokio::process::Command::new("bash")
        .arg(root().join("scripts/browser.sh"))
        .args([&url, &shot, &sha256_hex(&v2)])
        .kill_on_drop(true)
        .output();
    let swap = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        std::fs::write(dir.path().join("v2.tmp"), &v2).unwrap();
        std::fs::rename(dir.path().join("v2.tmp"), &windows).unwrap();
        handle.files_changed(vec![windows.clone()]);
    };
    let (out, ()) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(900), browser),
        swap
    );
    let out = out.expect("the browser check ended").expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser check failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let alerts: Vec<&str> = seen["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert!(alerts.contains(&"ctr_drop"), "{seen}");
    assert!(seen["series"].as_u64().unwrap() >= 4, "{seen}");
    assert!(seen["dead"][0] == "decode", "{seen}");
    // The source's partitions, each with its own watermark (a time), and the rebalances.
    let partition = &seen["partitions"][0];
    assert_eq!(partition[0], "0", "{seen}");
    assert!(partition[2].as_str().unwrap().starts_with("20"), "{seen}");
    assert_eq!(seen["rebalances"][0], "0 rebalances", "{seen}");
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "a screenshot was saved"
    );
    handle.stop().await;
}

/// Every `adstream_…` metric the README and docs name, and the Grafana dashboards query.
fn documented_metrics() -> std::collections::BTreeSet<String> {
    let mut texts = vec![std::fs::read_to_string(root().join("README.md")).unwrap()];
    for dir in ["docs", "docs/grafana"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap() {
            let path = e.unwrap().path();
            if path.extension().is_some_and(|x| x == "md" || x == "json") {
                texts.push(std::fs::read_to_string(path).unwrap());
            }
        }
    }
    let mut names = std::collections::BTreeSet::new();
    for text in texts {
        for (i, _) in text.match_indices("adstream_") {
            let name: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            // `adstream_sdk` is the crate, not a metric.
            if name != "adstream_sdk" && name.len() > "adstream_".len() {
                names.insert(name);
            }
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_with_a_prometheus_parser_and_every_documented_metric_exists() {
    let dir = tempfile::tempdir().unwrap();
    let text = pipeline(dir.path())
        .replace("speed = 5.0", "speed = 50.0")
        .replace("windows.wasm", "@PLUGINS@/window_aggregate.wasm");
    let file = pipeline_file(dir.path(), "dash.toml", &text);
    let mut sup = Supervisor::new(PluginEngine::new().unwrap());
    sup.start_file(&file)
        .await
        .unwrap_or_else(|d| panic!("{d:#?}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    tokio::spawn(supervisor::serve(listener, sup.board(), None));
    let handle = sup.spawn();
    // Until a broken record has been dead-lettered, so that every family has a sample.
    let began = std::time::Instant::now();
    let metrics = loop {
        let body = reqwest::get(&url).await.unwrap().text().await.unwrap();
        if body.contains("adstream_dead_letters_by_reason_total{") {
            break body;
        }
        assert!(began.elapsed() < Duration::from_secs(60), "{body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    handle.stop().await;

    let mut parse = tokio::process::Command::new("bash")
        .arg(root().join("scripts/prom-parse.sh"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt;
    let mut stdin = parse.stdin.take().unwrap();
    stdin.write_all(metrics.as_bytes()).await.unwrap();
    drop(stdin);
    let out = parse.wait_with_output().await.unwrap();
    let parsed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the parser refused /metrics: {}\n{metrics}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Families (`name type samples`; a counter's family name drops `_total`) and samples.
    let mut names: Vec<String> = Vec::new();
    for line in parsed.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        names.push(words[0].to_string());
        if words.get(1) == Some(&"counter") {
            names.push(format!("{}_total", words[0]));
        }
    }
    let documented = documented_metrics();
    assert!(documented.len() >= 15, "{documented:?}");
    let missing: Vec<&String> = documented.iter().filter(|d| !names.contains(d)).collect();
    assert!(
        missing.is_empty(),
        "documented but not served: {missing:?}\n{parsed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_bounds_connections_header_time_bodies_and_live_feeds() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(supervisor::serve(listener, Arc::default(), None));
    let url = |path: &str| format!("http://{addr}{path}");

    // A request with a body is refused.
    let client = reqwest::Client::new();
    let with_body = client.get(url("/status")).body("x").send().await.unwrap();
    assert_eq!(with_body.status(), 413);

    // At most 16 live feeds; the 17th is told so.
    let mut feeds = Vec::new();
    for _ in 0..16 {
        let feed = client.get(url("/events")).send().await.unwrap();
        assert_eq!(feed.status(), 200);
        feeds.push(feed);
    }
    let extra = client.get(url("/events")).send().await.unwrap();
    assert_eq!(extra.status(), 503);
    drop(feeds);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // At most 64 connections: 64 that say nothing, and the 65th is closed at once.
    let mut silent = Vec::new();
    for _ in 0..64 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /status HTTP/1.1\r\nhost: x\r\n\r\n")
        .await;
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(3), extra.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "a 65th connection was served: {read:?}"
    );

    // A connection that sends no headers is closed after 10 s, freeing its place.
    let began = std::time::Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(20), silent[0].read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
    assert!(began.elapsed() < Duration::from_secs(15));
    drop(silent);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = client.get(url("/status")).send().await.unwrap();
    assert_eq!(again.status(), 200);
}

/// With a token, every route wants it: as a bearer (Prometheus, `adstream status`) or as
/// the cookie a browser gets by opening `/?token=...` once (its live feed cannot send
/// headers). Without it: 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_guards_every_route_and_a_browser_gets_it_as_a_cookie() {
    let secret = "a-status-token-of-32-bytes-00000";
    let token = supervisor::Token::new(secret.as_bytes()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(supervisor::serve(listener, Arc::default(), Some(token)));
    let url = |path: &str| format!("http://{addr}{path}");
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/", "/status", "/metrics", "/events"] {
        let refused = plain.get(url(path)).send().await.unwrap();
        assert_eq!(refused.status(), 401, "{path}");
        let wrong = plain
            .get(url(path))
            .bearer_auth("a-status-token-of-32-bytes-00001");
        assert_eq!(wrong.send().await.unwrap().status(), 401, "{path}");
    }
    let status = plain.get(url("/status")).bearer_auth(secret).send().await;
    assert_eq!(status.unwrap().status(), 200);
    let metrics = adstream::cli::status::get(&addr.to_string(), "/metrics", Some(secret));
    assert!(metrics.unwrap().contains("# EOF"));
    let refused = adstream::cli::status::get(&addr.to_string(), "/status", None);
    let said = refused.unwrap_err().to_string();
    assert!(said.contains("needs its status token"), "{said}");

    // The browser's way: the token in the address once, then a cookie (not the token).
    let opened = plain
        .get(url(&format!("/?token={secret}")))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 303);
    assert_eq!(opened.headers()["location"], "/");
    let cookie = opened.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && !cookie.contains(secret),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    let page = plain
        .get(url("/"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let feed = plain
        .get(url("/events"))
        .header("cookie", &pair)
        .send()
        .await;
    assert_eq!(feed.unwrap().status(), 200);
    let guessed = plain.get(url("/?token=nope")).send().await.unwrap();
    assert_eq!(guessed.status(), 401);
}
