//! Parsing a pipeline file: the spanned TOML tree, each section on its own, then the
//! names sections use to refer to each other.

use super::privacy::PrivacyConfig;
use super::{ByteSize, Diagnostic};
use super::{
    CheckpointConfig, DEFAULT_MAX_RECORD_BYTES, Diagnostics, EventTimeConfig, PipelineConfig,
    SchemaConfig, SinkConfig, SourceConfig, StageConfig, stage,
};
use serde::de::DeserializeOwned;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

const TOP_KEYS: &[&str] = &[
    "name",
    "dead_letter",
    "max_record_bytes",
    "source",
    "schema",
    "event_time",
    "checkpoint",
    "privacy",
    "stage",
    "sink",
];

/// Parses pipeline text; `path` names it in diagnostics and sets the base folder.
pub fn parse(path: &Path, text: &str) -> Result<PipelineConfig, Vec<Diagnostic>> {
    let mut diags = Diagnostics::new(path, text);
    let (root, errors) = DeTable::parse_recoverable(text);
    for e in &errors {
        diags.toml(e, "syntax error");
    }
    if !errors.is_empty() {
        return Err(diags.finish());
    }
    let mut root = root.into_inner();
    super::env::expand_all(&mut root, &mut diags);
    check_top_keys(&root, &mut diags);
    let name = scalar::<String>(&root, "name", &mut diags).map_or_else(
        || {
            path.file_stem()
                .map_or("pipeline".into(), |s| s.to_string_lossy().into_owned())
        },
        Spanned::into_inner,
    );
    let dead_letter = scalar::<String>(&root, "dead_letter", &mut diags);
    let max_record_bytes = scalar::<ByteSize>(&root, "max_record_bytes", &mut diags)
        .map_or(DEFAULT_MAX_RECORD_BYTES, Spanned::into_inner);
    let (source, schema, event_time) = core_sections(&root, &mut diags);
    let stages = stage::parse_all(root.get("stage"), &mut diags);
    let (sinks, sink_spans) = parse_sinks(root.get("sink"), &mut diags);
    check_names(&stages, &sinks, dead_letter.as_ref(), &mut diags);
    if let (Some(schema), Some(et)) = (&schema, &event_time) {
        schema.check_event_time(et, &mut diags);
    }
    let (Some(source), Some(schema), Some(event_time)) = (source, schema, event_time) else {
        return Err(diags.finish());
    };
    let checkpoint = checkpoint(&root, &source, &mut diags);
    let privacy = privacy(&root, &mut diags);
    let cfg = PipelineConfig {
        name,
        file: path.to_path_buf(),
        base_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        source,
        schema,
        event_time,
        stages,
        sinks,
        spans: super::Spans {
            source: root.get("source").map_or(0..0, |v| v.span()),
            sinks: sink_spans,
        },
        dead_letter,
        max_record_bytes,
        checkpoint,
        privacy,
        text: text.to_string(),
    };
    diags
        .is_empty()
        .then_some(cfg)
        .ok_or_else(|| diags.finish())
}

/// The sections every pipeline must make sense of before anything else: where events come
/// from, how they decode, which column is event time.
fn core_sections(
    root: &DeTable<'_>,
    diags: &mut Diagnostics,
) -> (
    Option<SourceConfig>,
    Option<SchemaConfig>,
    Option<EventTimeConfig>,
) {
    let source = required(root, "source", "add a [source] table with a `kind`", diags)
        .and_then(|v| SourceConfig::parse(v, diags));
    let schema = required(
        root,
        "schema",
        "list the event fields to decode, e.g. event_time = \"timestamp_ms\"",
        diags,
    )
    .and_then(|v| SchemaConfig::parse(v, diags));
    let event_time = match root.get("event_time") {
        Some(v) => section::<EventTimeConfig>(v, "[event_time]", diags),
        None => Some(EventTimeConfig::default()),
    };
    (source, schema, event_time)
}

fn check_top_keys(root: &DeTable<'_>, diags: &mut Diagnostics) {
    for (key, _) in root.iter() {
        if !TOP_KEYS.contains(&key.get_ref().as_ref()) {
            diags.error_hint(
                Some(key.span()),
                format!("unknown top-level key `{}`", key.get_ref()),
                format!("a pipeline file has: {}", TOP_KEYS.join(", ")),
            );
        }
    }
}

/// A section every pipeline must have; its absence is reported with `hint`.
fn required<'a, 'b>(
    root: &'a DeTable<'b>,
    key: &str,
    hint: &str,
    diags: &mut Diagnostics,
) -> Option<&'a Spanned<DeValue<'b>>> {
    let v = root.get(key);
    if v.is_none() {
        diags.error_hint(None, format!("the pipeline has no [{key}]"), hint);
    }
    v
}

/// `[privacy]`, defaulting to `redact`.
fn privacy(root: &DeTable<'_>, diags: &mut Diagnostics) -> PrivacyConfig {
    let Some(v) = root.get("privacy") else {
        return PrivacyConfig::default();
    };
    let cfg = section::<PrivacyConfig>(v, "[privacy]", diags).unwrap_or_default();
    if let Some(problem) = cfg.problem() {
        diags.error(Some(v.span()), problem);
    }
    cfg
}

/// `[checkpoint]`: on by default for sources with offsets, an error for the others.
fn checkpoint(
    root: &DeTable<'_>,
    source: &SourceConfig,
    diags: &mut Diagnostics,
) -> Option<CheckpointConfig> {
    let table = root.get("checkpoint");
    let cfg = table.and_then(|v| section::<CheckpointConfig>(v, "[checkpoint]", diags));
    if !source.has_offsets() {
        if let Some(v) = table {
            diags.error_hint(
                Some(v.span()),
                "[checkpoint] needs a source with offsets to resume from (kafka)",
                "remove [checkpoint]; this source starts from its beginning on every run",
            );
        }
        return None;
    }
    Some(cfg.unwrap_or_default())
}

/// Deserializes one section, recording its error.
pub fn section<T: DeserializeOwned>(
    value: &Spanned<DeValue<'_>>,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<T> {
    T::deserialize(ValueDeserializer::from(value.clone()))
        .map_err(|e| diags.toml(&e, what))
        .ok()
}

fn scalar<T: DeserializeOwned>(
    root: &DeTable<'_>,
    key: &str,
    diags: &mut Diagnostics,
) -> Option<Spanned<T>> {
    section::<Spanned<T>>(root.get(key)?, key, diags)
}

/// The `kind` of a component table, which picks the config type to read it with.
pub fn kind_of<'a>(
    value: &'a Spanned<DeValue<'_>>,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<&'a str> {
    let Some(table) = value.get_ref().as_table() else {
        diags.error(Some(value.span()), format!("{what} must be a table"));
        return None;
    };
    match table.get("kind").map(|k| (k.get_ref().as_str(), k.span())) {
        Some((Some(kind), _)) => Some(kind),
        Some((None, span)) => {
            diags.error(Some(span), format!("{what}: `kind` must be a string"));
            None
        }
        None => {
            diags.error_hint(
                Some(value.span()),
                format!("{what} has no `kind`"),
                "add kind = \"...\"",
            );
            None
        }
    }
}

fn parse_sinks(
    value: Option<&Spanned<DeValue<'_>>>,
    diags: &mut Diagnostics,
) -> (Vec<(String, SinkConfig)>, Vec<Range<usize>>) {
    let Some(value) = value else {
        return (Vec::new(), Vec::new());
    };
    let Some(table) = value.get_ref().as_table() else {
        diags.error(
            Some(value.span()),
            "`sink` must be a table of named sinks, e.g. [sink.out]",
        );
        return (Vec::new(), Vec::new());
    };
    table
        .iter()
        .filter_map(|(name, v)| {
            let cfg = SinkConfig::parse(name.get_ref(), v, diags)?;
            Some(((name.get_ref().to_string(), cfg), v.span()))
        })
        .unzip()
}

fn span_of<T>(s: &Spanned<T>) -> Option<Range<usize>> {
    Some(s.span())
}

/// Checks the names that sections use to refer to each other.
fn check_names(
    stages: &[StageConfig],
    sinks: &[(String, SinkConfig)],
    dead_letter: Option<&Spanned<String>>,
    diags: &mut Diagnostics,
) {
    let sink_names: Vec<&str> = sinks.iter().map(|(n, _)| n.as_str()).collect();
    let sink_hint = || {
        format!(
            "sinks in this file: {}",
            if sink_names.is_empty() {
                "none".to_string()
            } else {
                sink_names.join(", ")
            }
        )
    };
    let mut seen: Vec<&str> = vec!["source"];
    for stage in stages {
        let name = stage.name.get_ref().as_str();
        if seen.contains(&name) {
            diags.error(
                span_of(&stage.name),
                format!("stage name `{name}` is used twice (or is the reserved name `source`)"),
            );
        }
        if let Some(input) = &stage.input
            && !seen.contains(&input.get_ref().as_str())
        {
            diags.error_hint(
                span_of(input),
                format!(
                    "stage `{name}` reads from `{}`, which is not an earlier stage",
                    input.get_ref()
                ),
                format!("use `source` or one of: {}", seen[1..].join(", ")),
            );
        }
        for to in &stage.to {
            if !sink_names.contains(&to.get_ref().as_str()) {
                diags.error_hint(
                    span_of(to),
                    format!("stage `{name}` sends to unknown sink `{}`", to.get_ref()),
                    sink_hint(),
                );
            }
        }
        seen.push(name);
    }
    if let Some(dl) = dead_letter
        && !sink_names.contains(&dl.get_ref().as_str())
    {
        diags.error_hint(
            span_of(dl),
            format!("dead_letter names unknown sink `{}`", dl.get_ref()),
            sink_hint(),
        );
    }
}
