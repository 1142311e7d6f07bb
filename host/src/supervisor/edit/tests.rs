//! What each kind of edit to a pipeline file leads to.

use super::{Plan, plan};
use crate::config::{PipelineConfig, parse};
use std::path::Path;

const BASE: &str = r#"
name = "p"
[source]
kind = "file"
path = "in.jsonl"
[schema]
event_time = { type = "timestamp_ms", required = true }
country = "dict"
[[stage]]
name = "a"
plugin = "a.wasm"
config = { window = "10s" }
to = ["out"]
[[stage]]
name = "b"
plugin = "b.wasm"
[sink.out]
kind = "file"
path = "out.jsonl"
"#;

fn cfg(text: &str) -> PipelineConfig {
    parse(Path::new("p.toml"), text).unwrap_or_else(|d| panic!("{d:?}"))
}

fn edited(from: &str, to: &str) -> Plan {
    assert!(BASE.contains(from), "`{from}` is not in the base file");
    plan(&cfg(BASE), &cfg(&BASE.replacen(from, to, 1)))
}

#[test]
fn the_same_file_changes_nothing() {
    assert_eq!(
        plan(&cfg(BASE), &cfg(&format!("# a comment\n{BASE}"))),
        Plan::Nothing
    );
}

#[test]
fn a_stage_config_edit_swaps_only_that_stage() {
    assert_eq!(
        edited("\"10s\"", "\"1m\""),
        Plan::Update {
            rewire: false,
            stages: vec![0]
        }
    );
}

#[test]
fn a_new_sink_and_route_rewires_without_swapping() {
    let with_sink = format!("{BASE}\n[sink.more]\nkind = \"stdout\"\n").replacen(
        "to = [\"out\"]",
        "to = [\"out\", \"more\"]",
        1,
    );
    assert_eq!(
        plan_of(&with_sink),
        Plan::Update {
            rewire: true,
            stages: vec![]
        }
    );
}

fn plan_of(text: &str) -> Plan {
    plan(&cfg(BASE), &cfg(text))
}

#[test]
fn a_changed_sink_setting_rewires() {
    assert_eq!(
        edited("path = \"out.jsonl\"", "path = \"other.jsonl\""),
        Plan::Update {
            rewire: true,
            stages: vec![]
        }
    );
}

#[test]
fn source_schema_and_graph_changes_restart() {
    for (from, to) in [
        ("path = \"in.jsonl\"", "path = \"other-in.jsonl\""),
        ("country = \"dict\"", "country = \"string\""),
        ("name = \"b\"", "name = \"c\""),
        ("name = \"p\"", "name = \"q\""),
    ] {
        let plan = edited(from, to);
        assert!(matches!(plan, Plan::Restart(_)), "{from} -> {to}: {plan:?}");
    }
}

#[test]
fn a_change_of_shards_restarts_the_pipeline() {
    let want = Plan::Restart("stage `a`'s shards changed".into());
    assert_eq!(edited("to = [\"out\"]", "shards = 2\nto = [\"out\"]"), want);
    let by = "shards = 2\nshard_by = [\"country\"]\nto = [\"out\"]";
    assert_eq!(edited("to = [\"out\"]", by), want);
}
