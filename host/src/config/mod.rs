//! Pipeline files: TOML parsed into config types, with every problem reported at once as
//! `file:line:col: message`.
//!
//! Parsing is in two steps so that one mistake does not hide the next: the whole file is
//! parsed into a spanned TOML tree (collecting every syntax error), then each section is
//! deserialized on its own (collecting each section's error), then references between
//! sections are checked. Plugins are loaded later, by [`crate::pipeline::build`].

mod diag;
mod schema;
mod stage;

pub use diag::{Diagnostic, Diagnostics};
pub use schema::{EventTimeConfig, FieldType, SchemaConfig};
pub use stage::{LimitsConfig, OnError, SecretRef, StageConfig, toml_to_json};

use crate::sinks::SinkConfig;
use crate::sources::SourceConfig;
use serde::de::DeserializeOwned;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

/// A parsed and cross-checked pipeline file.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub name: String,
    pub file: PathBuf,
    /// The folder plugin paths are relative to (the pipeline file's).
    pub base_dir: PathBuf,
    pub source: SourceConfig,
    pub schema: SchemaConfig,
    pub event_time: EventTimeConfig,
    pub stages: Vec<StageConfig>,
    pub sinks: Vec<(String, SinkConfig)>,
    pub dead_letter: Option<Spanned<String>>,
    /// Longer records are dead-lettered undecoded.
    pub max_record_bytes: usize,
    /// `None` for sources without offsets, which replay nothing after a restart.
    pub checkpoint: Option<CheckpointConfig>,
    /// The text of the file, kept to place diagnostics found later (plugin errors).
    pub text: String,
}

impl PipelineConfig {
    /// A diagnostics collector for this file, for checks done after parsing.
    pub fn diagnostics(&self) -> Diagnostics<'_> {
        Diagnostics::new(&self.file, &self.text)
    }
}

/// Records longer than this are dead-lettered unless the file says otherwise.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;

const TOP_KEYS: &[&str] = &[
    "name",
    "dead_letter",
    "max_record_bytes",
    "source",
    "schema",
    "event_time",
    "checkpoint",
    "stage",
    "sink",
];

/// `[checkpoint]`: where the state of stateful stages is saved, and how often. On by
/// default for sources with offsets (Kafka).
#[derive(Debug, Clone, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Folder of checkpoint files, relative to the working directory.
    #[serde(default = "default_state_dir")]
    pub dir: String,
    #[serde(default = "default_interval")]
    pub interval: Spanned<String>,
}

fn default_state_dir() -> String {
    "state".into()
}

fn default_interval() -> Spanned<String> {
    Spanned::new(0..0, "5s".into())
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            dir: default_state_dir(),
            interval: default_interval(),
        }
    }
}

/// Reads and parses a pipeline file.
pub fn load(path: &Path) -> Result<PipelineConfig, Vec<Diagnostic>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Diagnostic::at_start(
            path,
            format!("cannot read pipeline file: {e}"),
        )]
    })?;
    parse(path, &text)
}

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
    let root = root.into_inner();
    for (key, value) in root.iter() {
        if !TOP_KEYS.contains(&key.get_ref().as_ref()) {
            diags.error_hint(
                Some(key.span()),
                format!("unknown top-level key `{}`", key.get_ref()),
                format!("a pipeline file has: {}", TOP_KEYS.join(", ")),
            );
            let _ = value;
        }
    }
    let name = scalar::<String>(&root, "name", &mut diags)
        .map(Spanned::into_inner)
        .unwrap_or_else(|| {
            path.file_stem()
                .map_or("pipeline".into(), |s| s.to_string_lossy().into_owned())
        });
    let dead_letter = scalar::<String>(&root, "dead_letter", &mut diags);
    let max_record_bytes = scalar::<usize>(&root, "max_record_bytes", &mut diags)
        .map_or(DEFAULT_MAX_RECORD_BYTES, Spanned::into_inner);
    let source = match root.get("source") {
        Some(v) => SourceConfig::parse(v, &mut diags),
        None => {
            diags.error_hint(
                None,
                "the pipeline has no [source]",
                "add a [source] table with a `kind`",
            );
            None
        }
    };
    let schema = match root.get("schema") {
        Some(v) => SchemaConfig::parse(v, &mut diags),
        None => {
            diags.error_hint(
                None,
                "the pipeline has no [schema]",
                "list the event fields to decode, e.g. event_time = \"timestamp_ms\"",
            );
            None
        }
    };
    let event_time = match root.get("event_time") {
        Some(v) => section::<EventTimeConfig>(v, "[event_time]", &mut diags),
        None => Some(EventTimeConfig::default()),
    };
    let checkpoint = root
        .get("checkpoint")
        .and_then(|v| section::<CheckpointConfig>(v, "[checkpoint]", &mut diags));
    let stages = stage::parse_all(root.get("stage"), &mut diags);
    let sinks = parse_sinks(root.get("sink"), &mut diags);
    check_names(&stages, &sinks, dead_letter.as_ref(), &mut diags);
    if let (Some(schema), Some(event_time)) = (&schema, &event_time) {
        schema.check_event_time(event_time, &mut diags);
    }
    let (Some(source), Some(schema), Some(event_time)) = (source, schema, event_time) else {
        return Err(diags.finish());
    };
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let has_offsets = matches!(source, SourceConfig::Kafka(_));
    if checkpoint.is_some()
        && !has_offsets
        && let Some(v) = root.get("checkpoint")
    {
        diags.error_hint(
            Some(v.span()),
            "[checkpoint] needs a source with offsets to resume from (kafka)",
            "remove [checkpoint]; this source starts from its beginning on every run",
        );
    }
    let checkpoint = if has_offsets {
        Some(checkpoint.unwrap_or_default())
    } else {
        None
    };
    let cfg = PipelineConfig {
        name,
        file: path.to_path_buf(),
        base_dir,
        source,
        schema,
        event_time,
        stages,
        sinks,
        dead_letter,
        max_record_bytes,
        checkpoint,
        text: text.to_string(),
    };
    if diags.is_empty() {
        Ok(cfg)
    } else {
        Err(diags.finish())
    }
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
) -> Vec<(String, SinkConfig)> {
    let Some(value) = value else {
        return Vec::new();
    };
    let Some(table) = value.get_ref().as_table() else {
        diags.error(
            Some(value.span()),
            "`sink` must be a table of named sinks, e.g. [sink.out]",
        );
        return Vec::new();
    };
    table
        .iter()
        .filter_map(|(name, v)| {
            let cfg = SinkConfig::parse(name.get_ref(), v, diags)?;
            Some((name.get_ref().to_string(), cfg))
        })
        .collect()
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
