use super::*;

fn config(extra: &str) -> GeneratorConfig {
    let rate = if extra.contains("rate =") {
        ""
    } else {
        "rate = 1000.0\n"
    };
    let text = format!("kind = \"generator\"\n{rate}pace = false\nstart = 0\n{extra}");
    toml::from_str(&text).unwrap()
}

fn events(cfg: &GeneratorConfig, n: u64) -> Vec<serde_json::Value> {
    let mut g = GeneratorSource::new(cfg).unwrap();
    let mut b = RawBatch::default();
    g.generate(n, &mut b);
    (0..b.len())
        .map(|i| serde_json::from_slice(b.record(i)).unwrap())
        .collect()
}

#[test]
fn same_seed_same_events_and_times_follow_the_rate() {
    let cfg = config("seed = 7");
    let (a, b) = (events(&cfg, 500), events(&cfg, 500));
    assert_eq!(a, b);
    assert_eq!(a.len(), 500);
    assert_eq!(a[499]["event_time"], 499);
    let other = events(&config("seed = 8"), 500);
    assert_ne!(a, other);
}

#[test]
fn events_carry_the_brief_fields() {
    let evs = events(&config(""), 2000);
    let types: std::collections::BTreeSet<_> = evs
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types.into_iter().collect::<Vec<_>>(),
        ["click", "conversion", "impression", "request"]
    );
    let imp = evs
        .iter()
        .find(|e| e["event_type"] == "impression")
        .unwrap();
    for f in [
        "event_id",
        "user_id",
        "device_id",
        "ip",
        "country",
        "ad_format",
        "placement_id",
        "campaign_id",
        "advertiser_id",
        "network",
        "os",
        "app_id",
    ] {
        assert!(imp[f].is_string(), "{f} in {imp}");
    }
    assert!(imp["revenue"].as_f64().unwrap() > 0.0);
    let unfilled = evs
        .iter()
        .filter(|e| e["event_type"] == "request" && e["network"].is_null())
        .count();
    assert!(unfilled > 0, "some requests go unfilled");
}

#[test]
fn ctr_drop_scenario_lowers_ctr_of_its_segment_only_while_active() {
    let cfg = config(
        "rate = 20000.0\n[[scenario]]\nkind = \"ctr_drop\"\nat = \"10s\"\nduration = \"10s\"\ncountry = \"US\"\nad_format = \"banner\"\nfactor = 0.25",
    );
    let evs = events(&cfg, 400_000);
    let ctr = |from: i64, to: i64| {
        let seg = |e: &&serde_json::Value| {
            e["country"] == "US"
                && e["ad_format"] == "banner"
                && (from..to).contains(&e["event_time"].as_i64().unwrap())
        };
        let count = |t: &str| {
            evs.iter()
                .filter(seg)
                .filter(|e| e["event_type"] == t)
                .count() as f64
        };
        count("click") / count("impression")
    };
    let (before, during) = (ctr(0, 10_000), ctr(10_000, 20_000));
    assert!((before - 0.02).abs() < 0.004, "{before}");
    assert!((during - 0.005).abs() < 0.002, "{during}");
}

#[test]
fn count_stops_exactly_and_bad_config_is_refused() {
    let mut g = GeneratorSource::new(&config("count = 10")).unwrap();
    let mut b = RawBatch::default();
    g.generate(100, &mut b);
    assert_eq!(b.len(), 10);
    assert!(g.finished());
    let err = GeneratorSource::new(&config(
        "[[scenario]]\nkind = \"ctr_drop\"\nat = \"1s\"\ncountry = \"XX\"\nad_format = \"banner\"",
    ))
    .err()
    .unwrap();
    assert!(err.to_string().contains("no segment XX banner"), "{err}");
}

#[test]
fn malformed_and_late_events_appear_at_their_rates() {
    let cfg = config("malformed_rate = 0.05\nlate_rate = 0.02");
    let mut g = GeneratorSource::new(&cfg).unwrap();
    let mut b = RawBatch::default();
    g.generate(20_000, &mut b);
    let parsed: Vec<Option<serde_json::Value>> = (0..b.len())
        .map(|i| serde_json::from_slice(b.record(i)).ok())
        .collect();
    let broken = parsed.iter().filter(|p| p.is_none()).count();
    let damaged = parsed
        .iter()
        .flatten()
        .filter(|e| {
            e.get("kountry").is_some()
                || e["event_type"] == "bogus"
                || e["revenue"].as_f64().is_some_and(|r| r < 0.0)
        })
        .count();
    let late = parsed
        .iter()
        .enumerate()
        .filter(|(i, e)| {
            e.as_ref()
                .is_some_and(|e| e["event_time"].as_i64().unwrap() < *i as i64 - 100_000)
        })
        .count();
    assert!((150..350).contains(&broken), "{broken} truncated");
    assert!((450..850).contains(&damaged), "{damaged} damaged");
    assert!((250..550).contains(&late), "{late} late");
}

/// Paced without a configured start, event time starts when the first batch is made, not
/// when the source was: a pipeline that took long to open its sinks and plugins still
/// stamps events with the wall clock (the latency bench measures against it).
#[tokio::test]
async fn paced_event_time_starts_at_the_first_batch() {
    let cfg: GeneratorConfig = toml::from_str(
        "kind = \"generator\"\nrate = 1000.0\nbatch_size = 10\nflush_interval = \"20ms\"",
    )
    .unwrap();
    let mut g = GeneratorSource::new(&cfg).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let before = now_ms();
    let b = g.next_batch().await.unwrap().unwrap();
    let first: serde_json::Value = serde_json::from_slice(b.record(0)).unwrap();
    let lag = before - first["event_time"].as_i64().unwrap();
    assert!(lag <= 5, "event time lags the wall clock by {lag} ms");
}
