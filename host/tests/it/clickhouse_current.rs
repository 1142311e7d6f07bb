//! What users run: a current ClickHouse (26.x: PyPI's chdb-core behind ClickHouse's HTTP
//! interface, `scripts/chdb-server.py`), beside the suite's Debian 18.16 server. The real
//! sink creates its table with its own DDL (`ad-metrics.toml`'s settings) and inserts
//! RowBinary; a replay's duplicate rows merge under FINAL into the windows counted from the
//! events; and every query of the Grafana reports dashboard runs on the table.

use super::instances::Instance;
use super::services_support::{
    clickhouse_at, oracle, reports_dashboard_queries_run_at, services, windows_at,
};
use super::support::pipeline_file;
use adstream::batch::RawBatch;
use adstream::config::source::GeneratorConfig;
use adstream::sources::generator::GeneratorSource;
use tokio::sync::watch;

const GENERATOR: &str = r#"kind = "generator"
rate = 1000.0
pace = false
start = 1700000000000
seed = 11
count = 240000
"#;

fn pipeline(url: &str, table: &str) -> String {
    format!(
        r#"
name = "current"
[source]
{GENERATOR}
[schema]
event_id = {{ type = "string", required = true }}
event_time = {{ type = "timestamp_ms", required = true }}
event_type = {{ type = "dict", required = true }}
country = {{ type = "dict", required = true }}
ad_format = {{ type = "dict", required = true }}
network = "dict"
revenue = "f64"
cost = "f64"
[[stage]]
name = "metrics_1m"
plugin = "@PLUGINS@/window_aggregate.wasm"
config = {{ window = "1m", group_by = ["country", "ad_format"] }}
to = ["ch"]
[sink.ch]
kind = "clickhouse"
url = "{url}"
table = "{table}"
create = true
order_by = ["window_start", "country", "ad_format"]
partition_by = "toYYYYMMDD(window_start)"
"#
    )
}

async fn run(dir: &std::path::Path, text: &str) {
    let file = pipeline_file(dir, "current.toml", text);
    let cfg = adstream::config::load(&file).unwrap_or_else(|d| panic!("{d:#?}"));
    let engine = adstream::plugin::PluginEngine::new().unwrap();
    let p = adstream::pipeline::build(&cfg, &engine).unwrap_or_else(|d| panic!("{d:#?}"));
    let (_stop, stopped) = watch::channel(false);
    adstream::pipeline::run(p, stopped, None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_and_every_report_query_work_on_a_current_clickhouse() {
    services();
    let dir = tempfile::tempdir().unwrap();
    let chdb = Instance::start(dir.path(), "chdb", &[]);
    let url = format!("http://127.0.0.1:{}", chdb.port());
    let version = clickhouse_at(&url, "SELECT version() AS v").await;
    let major: u32 = version[0]["v"]
        .as_str()
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(major >= 24, "not a current ClickHouse: {version:?}");

    let table = "adstream_current.ad_metrics_1m";
    let text = pipeline(&url, table);
    // Twice: the second run is a replay, whose rows the ReplacingMergeTree must merge.
    run(dir.path(), &text).await;
    run(dir.path(), &text).await;

    let cfg: GeneratorConfig = toml::from_str(GENERATOR).unwrap();
    let mut events = RawBatch::default();
    GeneratorSource::new(&cfg)
        .unwrap()
        .generate(240_000, &mut events);
    let want = oracle(&events, 60_000);
    let got = windows_at(&url, table).await;
    assert_eq!(got, want, "windows under FINAL");
    let count = |sql: String| {
        let url = url.clone();
        async move {
            let rows = clickhouse_at(&url, &sql).await;
            rows[0]["n"]
                .as_str()
                .map_or_else(|| rows[0]["n"].as_u64().unwrap(), |s| s.parse().unwrap())
        }
    };
    let all = count(format!("SELECT count() AS n FROM {table}")).await;
    let merged = count(format!("SELECT count() AS n FROM {table} FINAL")).await;
    assert_eq!((all, merged), (2 * want.len() as u64, want.len() as u64));
    reports_dashboard_queries_run_at(&url, table).await;

    // The DDL in docs/clickhouse.sql runs too, and makes the table the sink made.
    let ddl = std::fs::read_to_string(super::support::root().join("docs/clickhouse.sql")).unwrap();
    let code: String = ddl
        .lines()
        .filter(|l| !l.starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    for statement in code.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        clickhouse_at(&url, statement).await;
    }
    let columns = |t: &str| {
        let (url, t) = (url.clone(), t.to_string());
        async move {
            let rows = clickhouse_at(&url, &format!("DESCRIBE TABLE {t}")).await;
            rows.iter()
                .map(|r| (r["name"].clone(), r["type"].clone()))
                .collect::<Vec<_>>()
        }
    };
    let documented = columns("adstream.ad_metrics_10s").await;
    assert!(!documented.is_empty());
    assert_eq!(documented, columns(table).await);
}
