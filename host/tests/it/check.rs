//! `adstream check`: each kind of mistake in a pipeline file gets one clear
//! `file:line:col` message, and all of them are reported at once.

use super::support::{AD_SCHEMA, pipeline_file};
use adstream::cli::check::check_file;
use adstream::plugin::PluginEngine;

const GOOD_STAGE: &str = r#"
[[stage]]
name = "windows"
plugin = "@PLUGINS@/window_aggregate.wasm"
config = { window = "10s", group_by = ["country"] }
to = ["out"]

[sink.out]
kind = "stdout"
"#;

fn check(text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline_file(dir.path(), "p.toml", text);
    let engine = PluginEngine::new().unwrap();
    match check_file(&engine, &file) {
        Ok(_) => Vec::new(),
        Err(diags) => diags
            .iter()
            .map(|d| {
                d.to_string()
                    .replace(&format!("{}/", dir.path().display()), "")
            })
            .collect(),
    }
}

fn source() -> String {
    format!("[source]\nkind = \"generator\"\n{AD_SCHEMA}")
}

/// Asserts `text` gives exactly one diagnostic, starting with `want`.
fn one(text: &str, want: &str) {
    let got = check(text);
    assert_eq!(got.len(), 1, "expected one problem, got {got:#?}");
    assert!(
        got[0].starts_with(want),
        "expected `{want}`, got `{}`",
        got[0]
    );
}

#[test]
fn a_good_pipeline_checks_clean() {
    assert!(check(&format!("{}{GOOD_STAGE}", source())).is_empty());
    let demo = adstream::config::load(&super::support::root().join("pipelines/demo.toml"));
    let engine = PluginEngine::new().unwrap();
    assert!(adstream::pipeline::build(&demo.unwrap(), &engine).is_ok());
}

#[test]
fn a_file_too_large_or_not_text_is_refused_before_parsing() {
    // Over the bound: a comment of a MiB after a good pipeline.
    let huge = format!("{}{GOOD_STAGE}#{}\n", source(), "x".repeat(1 << 20));
    one(
        &huge,
        "p.toml:1:1: the pipeline file is larger than 1 MiB, the most one may be",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    std::fs::write(&file, b"name = \"caf\xe9\"\n").unwrap();
    let diags = adstream::config::load(&file).unwrap_err();
    let got = diags[0].to_string();
    assert!(
        got.ends_with("p.toml:1:1: the pipeline file is not UTF-8 text (byte 11 is not)"),
        "{got}"
    );
}

#[test]
fn syntax_errors_point_at_the_spot() {
    one(
        "[source]\nkind = \"generator\nrate = 1\n",
        "p.toml:2:18: syntax error: invalid basic string",
    );
}

#[test]
fn unknown_keys_are_named_with_a_hint() {
    let got = check(&format!("threads = 4\n{}{GOOD_STAGE}", source()));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("p.toml:1:1: unknown top-level key `threads`"),
        "{}",
        got[0]
    );
    assert!(got[0].contains("hint: a pipeline file has:"), "{}", got[0]);
    let typo = format!("{}{}", source(), GOOD_STAGE.replace("to = [", "too = ["));
    one(&typo, "p.toml:");
    assert!(
        check(&typo)[0].contains("unknown field `too`"),
        "{:?}",
        check(&typo)
    );
}

#[test]
fn source_mistakes() {
    one(
        &format!("{AD_SCHEMA}{GOOD_STAGE}"),
        "p.toml:1:1: the pipeline has no [source]",
    );
    let bad_kind = format!("[source]\nkind = \"kafkaa\"\n{AD_SCHEMA}{GOOD_STAGE}");
    one(&bad_kind, "p.toml:2:8: unknown source kind `kafkaa`");
    let bad_rate =
        format!("[source]\nkind = \"generator\"\nrate = \"fast\"\n{AD_SCHEMA}{GOOD_STAGE}");
    one(
        &bad_rate,
        "p.toml:3:8: [source]: invalid type: string \"fast\", expected f64",
    );
}

#[test]
fn schema_and_event_time_mistakes() {
    let bad_type = format!(
        "[source]\nkind = \"generator\"\n{}{GOOD_STAGE}",
        AD_SCHEMA.replace("revenue = \"f64\"", "revenue = \"money\"")
    );
    let got = check(&bad_type);
    assert!(
        got.iter()
            .any(|d| d.contains("[schema] field `revenue` has an unknown type")),
        "{got:#?}"
    );
    let no_time = format!("{}[event_time]\ncolumn = \"ts\"\n{GOOD_STAGE}", source());
    one(&no_time, "p.toml:");
    assert!(check(&no_time)[0].contains("event time column `ts` is not in [schema]"));
}

#[test]
fn references_between_sections() {
    let bad_sink = format!(
        "{}{}",
        source(),
        GOOD_STAGE.replace("to = [\"out\"]", "to = [\"ou\"]")
    );
    let got = check(&bad_sink);
    assert!(
        got[0].contains("stage `windows` sends to unknown sink `ou`")
            && got[0].contains("sinks in this file: out"),
        "{got:?}"
    );
    let bad_input = format!(
        "{}{}",
        source(),
        GOOD_STAGE.replace(
            "name = \"windows\"",
            "name = \"windows\"\ninput = \"later\""
        )
    );
    assert!(check(&bad_input)[0].contains("reads from `later`, which is not an earlier stage"));
    let twice = format!(
        "{}{GOOD_STAGE}{}",
        source(),
        GOOD_STAGE.replace("[sink.out]\nkind = \"stdout\"", "")
    );
    assert!(
        check(&twice)
            .iter()
            .any(|d| d.contains("stage name `windows` is used twice")),
        "{:?}",
        check(&twice)
    );
    let dl = format!("dead_letter = \"nowhere\"\n{}{GOOD_STAGE}", source());
    one(&dl, "p.toml:1:15: dead_letter names unknown sink `nowhere`");
}

#[test]
fn plugin_mistakes_are_placed_on_the_stage() {
    let missing = format!(
        "{}{}",
        source(),
        GOOD_STAGE.replace("window_aggregate.wasm", "no_such.wasm")
    );
    let got = check(&missing);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].contains("stage `windows`: cannot read plugin")
            && got[0].contains("hint: build the plugins"),
        "{}",
        got[0]
    );
    let bad_config = format!(
        "{}{}",
        source(),
        GOOD_STAGE.replace("window = \"10s\"", "window = \"10 parsecs\"")
    );
    let got = check(&bad_config);
    let line = bad_config
        .lines()
        .position(|l| l.starts_with("config = "))
        .unwrap()
        + 1;
    let want = format!(
        "p.toml:{line}:10: stage `windows`: plugin rejected its configuration: invalid config: window:"
    );
    assert!(got[0].starts_with(&want), "{got:?}");
    // A detector reading raw events does not fit: it needs window rows.
    let wrong_input = format!(
        "{}[[stage]]\nname = \"rules\"\nplugin = \"@PLUGINS@/anomaly_ema.wasm\"\n",
        source()
    );
    let got = check(&wrong_input);
    assert!(got[0].contains("stage `rules`: plugin does not fit its input: schema mismatch: input has no column `window_start`"), "{got:?}");
}

#[test]
fn secret_and_limit_mistakes() {
    let stage = r#"
[[stage]]
name = "pii"
plugin = "@PLUGINS@/pii_hash.wasm"
secrets.key = { env = "ADSTREAM_TEST_UNSET_VARIABLE" }
limits = { memory = "64MiB", deadline = "1s" }
config = { hash = ["user_id"] }
"#;
    let got = check(&format!("{}{stage}", source()));
    assert!(
        got.iter().any(|d| d.contains(
            "secret `key`: environment variable ADSTREAM_TEST_UNSET_VARIABLE is not set"
        )),
        "{got:#?}"
    );
    // Limits are typed: a bad one is found when the file is read, at its value.
    for (bad, want) in [
        ("memory = \"lots\"", "`lots` is not a size"),
        ("deadline = \"1 eon\"", "`1 eon` is not a duration"),
        ("deadline = \"0s\"", "limits.deadline must be positive"),
    ] {
        let text = stage.replace(
            "limits = { memory = \"64MiB\", deadline = \"1s\" }",
            &format!("limits = {{ {bad} }}"),
        );
        let got = check(&format!("{}{text}", source()));
        assert!(got.iter().any(|d| d.contains(want)), "{bad}: {got:#?}");
    }
    let two_sources = stage.replace(
        "{ env = \"ADSTREAM_TEST_UNSET_VARIABLE\" }",
        "{ env = \"X\", file = \"/k\" }",
    );
    assert!(
        check(&format!("{}{two_sources}", source()))
            .iter()
            .any(|d| d.contains("must name exactly one of env, file, insecure_value"))
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = format!(
        "colour = 1\n[source]\nkind = \"generator\"\nbatch = 3\n{AD_SCHEMA}{}\n[sink.x]\nkind = \"stdout\"\ntemplate = \"{{ctr:fancy}}\"\n",
        GOOD_STAGE.replace("to = [\"out\"]", "to = [\"nope\"]")
    );
    let got = check(&text);
    assert!(got.len() >= 4, "{got:#?}");
    let lines: Vec<usize> = got
        .iter()
        .map(|d| d.split(':').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(
        lines.windows(2).all(|w| w[0] <= w[1]),
        "sorted by position: {got:#?}"
    );
}

#[test]
fn shard_mistakes() {
    let with = |extra: &str| {
        let stage = GOOD_STAGE.replace("to = [\"out\"]", &format!("{extra}\nto = [\"out\"]"));
        format!("{}{stage}", source())
    };
    assert!(check(&with("shards = 2\nshard_by = [\"country\"]")).is_empty());
    let line =
        |text: &str, start: &str| text.lines().position(|l| l.starts_with(start)).unwrap() + 1;
    let keyless = with("shards = 2");
    let l = line(&keyless, "shards");
    one(
        &keyless,
        &format!(
            "p.toml:{l}:10: stage `windows` keeps state, so with shards > 1 it needs `shard_by`"
        ),
    );
    let unknown = with("shards = 2\nshard_by = [\"planet\"]");
    let l = line(&unknown, "shard_by");
    one(
        &unknown,
        &format!("p.toml:{l}:13: stage `windows`: shard_by column `planet` is not in its input"),
    );
    let many = with("shards = 17\nshard_by = [\"country\"]");
    let l = line(&many, "shards");
    one(
        &many,
        &format!("p.toml:{l}:10: stage `windows`: shards must be at most 16"),
    );
    let canary = with(
        "shards = 2\nshard_by = [\"country\"]\ncanary = { config = { window = \"1m\", group_by = [\"country\"] } }",
    );
    let got = check(&canary);
    assert!(
        got.iter()
            .any(|d| d.contains("a canary cannot run on a stage with shards > 1")),
        "{got:?}"
    );
}

/// A Kafka source shared by hosts refuses, at `check` already, what would give other
/// results depending on how partitions are split: an aggregate, and a file sink (the
/// default dead letters are one); a pipeline of per-partition stages passes.
#[test]
fn a_shared_source_refuses_what_hosts_cannot_merge_and_file_sinks() {
    let source = format!(
        "dead_letter = \"dead\"\n[source]\nkind = \"kafka\"\nbrokers = \"127.0.0.1:9\"\ntopic = \"t\"\ngroup = \"g\"\nshared = true\n{AD_SCHEMA}\n[sink.dead]\nkind = \"kafka\"\nbrokers = \"127.0.0.1:9\"\ntopic = \"d\"\n"
    );
    // A mergeable aggregate: its lanes' partials are merged by one host.
    let got = check(&format!("{source}{GOOD_STAGE}"));
    assert_eq!(got, Vec::<String>::new());
    let over = "[[stage]]\nname = \"hourly\"\ninput = \"windows\"\nplugin = \"@TEST_PLUGINS@/hostile.wasm\"\nconfig = { mode = \"ok\" }\n";
    let got = check(&format!("{source}{GOOD_STAGE}{over}"));
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].contains("stage `hourly` aggregates another aggregate's windows")
            && got[0].contains("Several hosts"),
        "{got:#?}"
    );
    let unmergeable = "[[stage]]\nname = \"odd\"\nplugin = \"@TEST_PLUGINS@/hostile.wasm\"\nconfig = { mode = \"ok\" }\n";
    let got = check(&format!("{source}{unmergeable}"));
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].contains("stage `odd` is an aggregate whose plugin does not merge"),
        "{got:#?}"
    );
    let quality = r#"
[[stage]]
name = "quality"
plugin = "@PLUGINS@/quality.wasm"
config.rules = [{ rule = "unique", column = "event_id", window = "1m" }]
to = ["out"]
"#;
    let file_sink = "[sink.out]\nkind = \"file\"\npath = \"out.jsonl\"\n";
    let got = check(&format!("{source}{quality}{file_sink}"));
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(got[0].contains("sink `out` is a file"), "{got:#?}");
    let kafka_sink = "[sink.out]\nkind = \"kafka\"\nbrokers = \"127.0.0.1:9\"\ntopic = \"o\"\n";
    assert_eq!(
        check(&format!("{source}{quality}{kafka_sink}")),
        Vec::<String>::new()
    );
    let default_dead = source.replace("dead_letter = \"dead\"\n", "");
    let got = check(&format!("{default_dead}{quality}{kafka_sink}"));
    assert!(got.iter().any(|d| d.contains("is a file")), "{got:#?}");
}

/// An object store holds the cuts of a pipeline hosts share; a pipeline one host runs is
/// refused one, at `check`, rather than failing to save its first checkpoint.
#[test]
fn an_object_store_is_for_a_pipeline_hosts_share() {
    let got = check(&format!(
        "[source]\nkind = \"kafka\"\nbrokers = \"127.0.0.1:9\"\ntopic = \"t\"\ngroup = \"g\"\n{AD_SCHEMA}[checkpoint]\ndir = \"s3://ads/state\"\n{GOOD_STAGE}"
    ));
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].contains("dir = \"s3://ads/state\" is an object store")
            && got[0].contains("shared = true"),
        "{got:#?}"
    );
}
