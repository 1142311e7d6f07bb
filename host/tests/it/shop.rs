//! The shipped shop pipeline (`pipelines/shop-demo.toml`'s stages) on a fixed generated
//! input: every minute's overview, sales, payments, top 10, funnel and match counts equal
//! counts computed here from the accepted input lines (`shop_oracle.rs`); every scenario
//! raises its alert, and nothing else does; nothing is lost.

use super::shop_oracle as oracle;
use super::support::{pipeline_file, read_jsonl, root};
use adstream::batch::RawBatch;
use adstream::config::source::GeneratorConfig;
use adstream::sources::generator::GeneratorSource;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const START: i64 = 1_700_000_040_000;
const MIN: i64 = 60_000;

/// 12 minutes of a shop's evening (traffic 1.6 times the day's mean of 300 events/s), a
/// scenario in each of minutes 3, 5, 7 and 9.
const GENERATOR: &str = r#"
kind = "generator"
rate = 300.0
pace = false
start = 1700000040000
seed = 11
count = 360000
malformed_rate = 0.001
[shop]
scenario = [
    { kind = "payment_outage", at = "3m", target = "paypal", factor = 0.8 },
    { kind = "viral_product", at = "5m", target = "p00120" },
    { kind = "price_bug", at = "7m" },
    { kind = "checkout_broken", at = "9m" },
]
"#;

fn write_input(path: &Path) -> usize {
    let cfg: GeneratorConfig = toml::from_str(GENERATOR).unwrap();
    let mut raw = RawBatch::default();
    GeneratorSource::new(&cfg)
        .unwrap()
        .generate(u64::MAX, &mut raw);
    let text: String = (0..raw.len())
        .map(|i| format!("{}\n", std::str::from_utf8(raw.record(i)).unwrap()))
        .collect();
    std::fs::write(path, text).unwrap();
    raw.len()
}

/// The shipped demo's schema, stages and sinks, reading `input` and writing into `dir`.
fn pipeline(dir: &Path, input: &Path) -> String {
    let shipped = std::fs::read_to_string(root().join("pipelines/shop-demo.toml")).unwrap();
    let rest = &shipped[shipped.find("[schema]").unwrap()..];
    let rest = rest
        .replace("../plugins/dist", "@PLUGINS@")
        .replace(
            "path = \"shop-out/",
            &format!("path = \"{}/", dir.display()),
        )
        .replace("kind = \"stdout\"", "kind = \"file\"\npath = \"/dev/null\"")
        .replace("template = ", "# template = ");
    format!(
        "name = \"shop-golden\"\ndead_letter = \"dead_letters\"\n[source]\nkind = \"file\"\npath = \"{}\"\nbatch_size = 997\n{rest}",
        input.display()
    )
}

fn rows(dir: &Path, name: &str) -> Vec<Value> {
    read_jsonl(&dir.join(name))
}

fn int(v: &Value, k: &str) -> i64 {
    v[k].as_i64().unwrap_or_else(|| panic!("{k} in {v}"))
}

/// The input lines the pipeline accepted: every line but the dead letters' (whose offsets
/// are line numbers from 1), each checked to be a line that deserved it.
fn accepted(input: &Path, dead: &[Value]) -> Vec<Value> {
    let rejected: BTreeSet<i64> = dead.iter().map(|d| int(d, "offset")).collect();
    let text = std::fs::read_to_string(input).unwrap();
    let mut kept = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let parsed = serde_json::from_str::<Value>(line)
            .ok()
            .filter(|e| e["event_type"].is_string());
        match (parsed, rejected.contains(&(i as i64 + 1))) {
            (Some(e), false) => kept.push(e),
            (None, false) => panic!("line {} is not an event, yet no dead letter: {line}", i + 1),
            _ => {}
        }
    }
    kept
}

#[tokio::test(flavor = "multi_thread")]
async fn every_figure_equals_the_input_counted_independently() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    let generated = write_input(&input);
    let file = pipeline_file(dir.path(), "shop.toml", &pipeline(dir.path(), &input));
    let cfg = adstream::config::load(&file).unwrap();
    let engine = adstream::plugin::PluginEngine::new().unwrap();
    let p = adstream::pipeline::build(&cfg, &engine).unwrap();
    let (_stop, stop) = tokio::sync::watch::channel(false);
    let summary = adstream::pipeline::run(p, stop, None).await.unwrap();
    assert_eq!(summary.stats.records as usize, generated);

    let dead = rows(dir.path(), "dead-letters.jsonl");
    let events = accepted(&input, &dead);
    // Nothing lost: every line is an accepted event or a dead letter.
    assert_eq!(events.len() + dead.len(), generated);
    check_dead_letters(&dead, &input);

    let overview = rows(dir.path(), "overview-1m.jsonl");
    let got: BTreeMap<i64, ([i64; 7], i64)> = (overview.iter())
        .map(|r| {
            let c = [
                "product_views",
                "carts",
                "orders",
                "paid",
                "attempts",
                "failed",
                "refunded",
            ]
            .map(|k| int(r, k));
            (int(r, "window_start"), (c, oracle::cents(&r["revenue"])))
        })
        .collect();
    assert_eq!(got, oracle::overview(&events), "overview");
    assert!(
        got.len() >= 12,
        "a row for each of the 12 minutes: {}",
        got.len()
    );

    let sales: BTreeMap<(i64, String, String), [i64; 3]> = (rows(dir.path(), "sales-1m.jsonl")
        .iter())
    .map(|r| {
        let key = (
            int(r, "window_start"),
            r["dimension"].as_str().unwrap().into(),
            r["value"].as_str().unwrap().into(),
        );
        (
            key,
            [
                int(r, "orders"),
                int(r, "units"),
                oracle::cents(&r["revenue"]),
            ],
        )
    })
    .collect();
    assert_eq!(sales, oracle::sales(&events), "sales");

    let payments: BTreeMap<(i64, String), [i64; 4]> = (rows(dir.path(), "payments-1m.jsonl")
        .iter())
    .map(|r| {
        let key = (int(r, "window_start"), r["method"].as_str().unwrap().into());
        (
            key,
            [
                int(r, "authorised"),
                int(r, "failed"),
                int(r, "refunded"),
                oracle::cents(&r["authorised_amount"]),
            ],
        )
    })
    .collect();
    assert_eq!(payments, oracle::payments(&events), "payments");

    let funnel: BTreeMap<i64, [i64; 4]> = (rows(dir.path(), "funnel-1m.jsonl").iter())
        .map(|r| {
            (
                int(r, "window_start"),
                ["product_views", "carts", "orders", "paid"].map(|k| int(r, k)),
            )
        })
        .collect();
    let from_overview = oracle::overview(&events)
        .into_iter()
        .map(|(m, (c, _))| (m, [c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(funnel, from_overview, "funnel");

    let mut top = oracle::Tops::new();
    for r in rows(dir.path(), "top-products-1m.jsonl") {
        let key = (
            int(&r, "window_start"),
            r["ranking"].as_str().unwrap().to_string(),
        );
        let list = top.entry(key).or_default();
        assert_eq!(int(&r, "rank") as usize, list.len() + 1);
        list.push((
            r["product_id"].as_str().unwrap().into(),
            int(&r, "units"),
            oracle::cents(&r["revenue"]),
        ));
    }
    let want_top = oracle::top(&events, 10);
    assert_eq!(top, want_top, "top products");
    assert_eq!(
        top[&(START + 5 * MIN, "units".into())][0].0,
        "p00120",
        "the viral product leads its minute"
    );

    let matching: BTreeMap<i64, [i64; 7]> = (rows(dir.path(), "matching-1m.jsonl").iter())
        .map(|r| {
            let k = [
                "orders",
                "paid",
                "failed",
                "unpaid",
                "refunded",
                "amount_mismatch",
                "orphan_payments",
            ];
            (int(r, "window_start"), k.map(|k| int(r, k)))
        })
        .collect();
    assert_eq!(matching, oracle::matching(&events, 2 * MIN), "matching");

    check_alerts(dir.path());
}

/// Each scenario raised its alerts in its minute, and nothing else fired.
fn check_alerts(dir: &Path) {
    let alerts = rows(dir, "alerts.jsonl");
    let fired: BTreeSet<(String, i64)> = (alerts.iter())
        .map(|a| {
            (
                a["alert_type"].as_str().unwrap().to_string(),
                (int(a, "window_start") - START) / MIN,
            )
        })
        .collect();
    let want: BTreeSet<(String, i64)> = [
        ("payment_failure_spike", 3),
        ("revenue_drop", 7),
        ("order_value_drop", 7),
        ("checkout_conversion_drop", 9),
        // Fewer orders are less revenue: a broken checkout shows in both.
        ("revenue_drop", 9),
    ]
    .map(|(a, m)| (a.to_string(), m))
    .into();
    assert_eq!(fired, want, "{alerts:#?}");
    assert_eq!(rows(dir, "slack.jsonl").len(), alerts.len());
}

/// Dead letters: the generator's broken lines, each payment sent twice (the second
/// time), and nothing else.
fn check_dead_letters(dead: &[Value], input: &Path) {
    let text = std::fs::read_to_string(input).unwrap();
    let mut seen = BTreeSet::new();
    let mut duplicates = 0;
    for line in text.lines() {
        let Ok(e) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if let Some(id) = e["payment_id"]
            .as_str()
            .filter(|_| e["event_type"] == "payment")
        {
            duplicates += usize::from(!seen.insert(id.to_string()));
        }
    }
    let rules: BTreeMap<String, usize> = dead.iter().fold(BTreeMap::new(), |mut m, d| {
        let reason = d["reason"].as_str().unwrap();
        let rule = match reason {
            "rejected" => d["error"]
                .as_str()
                .unwrap()
                .split(':')
                .take(2)
                .collect::<Vec<_>>()
                .join(":"),
            other => other.to_string(),
        };
        *m.entry(rule).or_default() += 1;
        m
    });
    assert_eq!(
        rules.get("unique:payment_id"),
        Some(&duplicates),
        "{rules:?}"
    );
    assert!(
        duplicates > 50,
        "the input has duplicate payments: {duplicates}"
    );
    let expected = [
        "decode",
        "unique:payment_id",
        "in_range:price",
        "in_range:amount",
        "matches:email",
        "items_total:total",
    ];
    for rule in rules.keys() {
        assert!(
            expected.contains(&rule.as_str()),
            "unexpected dead letters `{rule}`: {rules:?}"
        );
    }
    for d in dead {
        let payload = d["payload"].as_str().unwrap_or_default();
        assert!(
            !payload.contains("@example.com"),
            "no email in clear in a dead letter: {payload}"
        );
    }
}
