//! Projection: a plugin that declares the input columns it reads (`host.reads`) is handed
//! only those, while every row downstream (and in the dead letters) stays whole.

use super::hostile::{dead, events, pipeline, run};
use super::support::{pipeline_file, plugin};
use adstream::plugin::{Plugin, PluginEngine};
use adstream_sdk::{ColumnKind, Setup, field};

fn validate(reads: &str) -> String {
    format!("plugin = \"@TEST_PLUGINS@/hostile_validate.wasm\"\nconfig = {{ reads = {reads} }}")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_is_handed_only_the_columns_it_declared_and_rows_stay_whole() {
    let dir = tempfile::tempdir().unwrap();
    let input = events(dir.path(), 30, None);
    let text = pipeline(dir.path(), &input, 10, &validate(r#"["event_time"]"#));
    run(dir.path(), &text).await.unwrap();
    let dead = dead(dir.path());
    assert_eq!(dead.len(), 30);
    for d in &dead {
        // The plugin names the columns it was handed.
        assert_eq!(d["error"].as_str().unwrap(), "received: event_time", "{d}");
        // The row it rejected is whole: the column it never saw is still there.
        let row: serde_json::Value = serde_json::from_str(d["payload"].as_str().unwrap()).unwrap();
        assert!(row["event_id"].as_str().unwrap().starts_with('e'), "{d}");
        assert!(row["event_time"].as_i64().is_some(), "{d}");
    }
}

#[test]
fn a_declared_column_the_input_lacks_fails_the_check_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let input = events(dir.path(), 1, None);
    let text = pipeline(dir.path(), &input, 10, &validate(r#"["event_id", "nope"]"#));
    let file = pipeline_file(dir.path(), "p.toml", &text);
    let cfg = adstream::config::load(&file).unwrap_or_else(|d| panic!("{d:#?}"));
    let engine = PluginEngine::new().unwrap();
    let Err(diags) = adstream::pipeline::build(&cfg, &engine) else {
        panic!("a plugin reading a column that does not exist was accepted");
    };
    let text: Vec<String> = diags.iter().map(ToString::to_string).collect();
    let text = text.join("\n");
    assert!(
        text.contains("`nope`, which its input does not have (it has: event_id, event_time)"),
        "{text}"
    );
}

/// The reference plugins declare what they read: the seed's 17 columns do not all cross.
#[test]
fn reference_plugins_declare_the_columns_they_read() {
    let engine = PluginEngine::new().unwrap();
    let names = [
        "event_id",
        "event_time",
        "event_type",
        "user_id",
        "country",
        "ad_format",
        "network",
        "revenue",
        "cost",
    ];
    let input: Vec<_> = names
        .iter()
        .map(|n| match *n {
            "event_time" => field(n, ColumnKind::TimestampMs, false),
            "revenue" | "cost" => field(n, ColumnKind::Float64, true),
            "event_type" | "country" | "ad_format" | "network" => {
                field(n, ColumnKind::Dictionary, true)
            }
            _ => field(n, ColumnKind::Text, true),
        })
        .collect();
    let cases = [
        (
            "quality",
            r#"{"rules": [{"rule": "in_set", "column": "event_type", "values": ["click"]},
                          {"rule": "unique", "column": "event_id", "window": "10s"}]}"#,
            vec!["event_id", "event_type"],
        ),
        (
            "window_aggregate",
            r#"{"window": "1m", "group_by": ["country"]}"#,
            vec![
                "event_time",
                "event_type",
                "country",
                "network",
                "revenue",
                "cost",
            ],
        ),
    ];
    for (file, config, want) in cases {
        let p = engine.load(&plugin(file), false).unwrap();
        let mut inst = p.instantiate("t".into(), &Default::default(), 0).unwrap();
        inst.configure(Setup {
            config: config.into(),
            input: input.clone(),
            secrets: vec![],
        })
        .unwrap();
        assert_eq!(inst.reads().unwrap(), want, "{file}");
    }
}
