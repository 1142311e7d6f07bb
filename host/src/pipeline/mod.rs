//! Pipelines: building one from its config (loading and configuring every plugin, checking
//! that each stage's input fits it) and running it.
//!
//! A batch moves through every stage before the next batch starts, so a batch boundary is a
//! consistent point for checkpoints and for swapping a plugin.

mod checkpoint;
mod deadletter;
mod envelope;
mod processor;
mod run;
mod secrets;
mod stage;
mod watermark;

pub use deadletter::{DeadLetters, Reason};
pub use envelope::Envelope;
pub use processor::{CheckpointPolicy, PipelineStats};
pub use run::{
    Feed, Rewire, RunError, RunSummary, RunningPipeline, SinkEntry, SinkSet, open_sink, run, start,
};
pub use secrets::{SecretError, resolve as resolve_secret};
pub use stage::{Input, Replacement, Stage, StageSpec, StageStats, SwapOutcome, instantiate};

use crate::batch::decode::Decoder;
use crate::config::{Diagnostics, OnError, PipelineConfig, StageConfig};
use crate::plugin::{CallError, Limits, LoadedPlugin, PluginEngine, limits::parse_size};
use crate::sinks::SinkConfig;
use crate::sinks::file::FileSinkConfig;
use adstream_sdk::time::parse_duration_ms;
use adstream_sdk::{Field, PluginError, Setup};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A pipeline ready to run: plugins loaded and configured, sinks resolved.
pub struct Pipeline {
    pub name: String,
    pub decoder: Decoder,
    pub source: crate::sources::SourceConfig,
    /// Watermark = slowest partition's latest event time − this.
    pub delay_ms: i64,
    /// A partition quiet for this long stops holding the watermark back.
    pub idle: Duration,
    pub checkpoint: Option<CheckpointPolicy>,
    pub stages: Vec<Stage>,
    pub sinks: Vec<(String, SinkConfig)>,
    /// Index in `sinks` of the dead-letter sink.
    pub dead_letter: usize,
    /// For each sink, the columns of its rows when a single schema feeds it.
    pub sink_fields: Vec<Option<Vec<Field>>>,
}

/// The sink used when a pipeline names no `dead_letter`.
pub fn default_dead_letter(name: &str) -> (String, SinkConfig) {
    let path = format!("dead-letters/{name}.jsonl");
    (
        "dead_letters".to_string(),
        SinkConfig::File(FileSinkConfig {
            kind: "file".into(),
            path,
            append: true,
        }),
    )
}

/// Loads, configures and cross-checks everything in `cfg`; every problem is reported.
pub fn build(
    cfg: &PipelineConfig,
    engine: &PluginEngine,
) -> Result<Pipeline, Vec<crate::config::Diagnostic>> {
    let mut diags = cfg.diagnostics();
    let mut duration = |s: &toml::Spanned<String>, key: &str| {
        parse_duration_ms(s.get_ref()).unwrap_or_else(|e| {
            diags.error(Some(s.span()), format!("{key}: {e}"));
            0
        })
    };
    let et = &cfg.event_time;
    let delay_ms = duration(&et.delay, "[event_time] delay");
    let idle = Duration::from_millis(duration(&et.idle, "[event_time] idle").max(0) as u64);
    let max_future = duration(&et.max_future, "[event_time] max_future");
    let checkpoint = cfg.checkpoint.as_ref().map(|c| CheckpointPolicy {
        file: checkpoint::path(std::path::Path::new(&c.dir), &cfg.name),
        every: Duration::from_millis(duration(&c.interval, "[checkpoint] interval").max(1) as u64),
    });
    let max_past = et
        .max_past
        .as_ref()
        .map(|p| duration(p, "[event_time] max_past"));
    let mut decoder = Decoder::new(&cfg.schema, et.column.get_ref(), Some(max_future));
    decoder.max_past_ms = max_past;
    decoder.max_record_bytes = cfg.max_record_bytes;
    let mut sinks = cfg.sinks.clone();
    let dead_letter = match &cfg.dead_letter {
        Some(name) => sinks
            .iter()
            .position(|(n, _)| n == name.get_ref())
            .unwrap_or(0),
        None => {
            sinks.push(default_dead_letter(&cfg.name));
            sinks.len() - 1
        }
    };
    let mut loaded = Loaded::new();
    let mut stages: Vec<Option<Stage>> = Vec::new();
    for (i, sc) in cfg.stages.iter().enumerate() {
        let input = match sc.input.as_ref().map(|s| s.get_ref().as_str()) {
            Some("source") => Input::Source,
            Some(name) => match cfg.stages.iter().position(|s| s.name.get_ref() == name) {
                Some(j) => Input::Stage(j),
                None => continue, // reported by the config check
            },
            None if i == 0 => Input::Source,
            None => Input::Stage(i - 1),
        };
        let fields = match input {
            Input::Source => Some(decoder.fields()),
            Input::Stage(j) => stages
                .get(j)
                .and_then(|s| s.as_ref())
                .map(|s| s.output.clone()),
        };
        let stage = fields.and_then(|fields| {
            let spec = spec(
                cfg,
                sc,
                input,
                fields,
                &sinks,
                engine,
                &mut loaded,
                &mut diags,
            )?;
            start_stage(sc, spec, &mut diags)
        });
        stages.push(stage);
    }
    if !diags.is_empty() {
        return Err(diags.finish());
    }
    let stages: Vec<Stage> = stages
        .into_iter()
        .map(|s| s.expect("no diagnostics means every stage started"))
        .collect();
    let sink_fields = sink_fields(&stages, &sinks, dead_letter, &mut diags);
    if !diags.is_empty() {
        return Err(diags.finish());
    }
    Ok(Pipeline {
        name: cfg.name.clone(),
        decoder,
        source: cfg.source.clone(),
        delay_ms,
        idle,
        checkpoint,
        stages,
        sinks,
        dead_letter,
        sink_fields,
    })
}

/// The schema of each sink's rows, when every stage that feeds it has the same one; a sink
/// that must know its schema (ClickHouse) and has none is an error.
fn sink_fields(
    stages: &[Stage],
    sinks: &[(String, SinkConfig)],
    dead_letter: usize,
    diags: &mut Diagnostics,
) -> Vec<Option<Vec<Field>>> {
    sinks
        .iter()
        .enumerate()
        .map(|(i, (name, sink))| {
            let feeds: Vec<&Vec<Field>> = stages
                .iter()
                .filter(|s| s.spec.to.contains(&i))
                .map(|s| &s.output)
                .collect();
            let one = feeds
                .first()
                .filter(|f| feeds.iter().all(|g| g == *f))
                .map(|f| (*f).clone());
            if sink.needs_fields() && (one.is_none() || i == dead_letter) {
                diags.error_hint(
                    None,
                    format!("sink `{name}` must be fed by stages that all have the same columns"),
                    format!("send one stage's output to it: to = [\"{name}\"] on a single stage"),
                );
            }
            one
        })
        .collect()
}

/// Plugins compiled so far, by path and whether they run metered.
type Loaded = HashMap<(std::path::PathBuf, bool), Arc<LoadedPlugin>>;

/// Resolves a stage's plugin, secrets and limits.
#[allow(clippy::too_many_arguments)]
fn spec(
    cfg: &PipelineConfig,
    sc: &StageConfig,
    input: Input,
    fields: Vec<Field>,
    sinks: &[(String, SinkConfig)],
    engine: &PluginEngine,
    loaded: &mut Loaded,
    diags: &mut Diagnostics,
) -> Option<StageSpec> {
    let name = sc.name.get_ref();
    let path = cfg.base_dir.join(sc.plugin.get_ref());
    let metered = sc
        .limits
        .as_ref()
        .is_some_and(|l| l.get_ref().fuel.is_some());
    let key = (path.clone(), metered);
    let plugin = match loaded.get(&key) {
        Some(p) => p.clone(),
        None => match LoadedPlugin::load_on(
            if metered {
                &engine.metered
            } else {
                &engine.plain
            },
            &path,
        ) {
            Ok(p) => {
                let p = Arc::new(p);
                loaded.insert(key, p.clone());
                p
            }
            Err(e) => {
                let hint = "build the plugins with scripts/build-plugins.sh; paths are relative to the pipeline file";
                diags.error_hint(Some(sc.plugin.span()), format!("stage `{name}`: {e}"), hint);
                return None;
            }
        },
    };
    let mut secrets = Vec::new();
    for (secret, r) in &sc.secrets {
        match secrets::resolve(secret, r.get_ref()) {
            Ok(s) => secrets.push(s),
            Err(e) => diags.error(Some(r.span()), format!("stage `{name}`: {e}")),
        }
    }
    let limits = limits(sc, diags)?;
    if sc.batch_size.as_ref().is_some_and(|b| *b.get_ref() == 0) {
        diags.error(
            sc.batch_size.as_ref().map(|b| b.span()),
            format!("stage `{name}`: batch_size must be at least 1"),
        );
    }
    let to = sc
        .to
        .iter()
        .filter_map(|t| sinks.iter().position(|(n, _)| n == t.get_ref()))
        .collect();
    Some(StageSpec {
        name: Arc::from(name.as_str()),
        plugin,
        setup: Setup {
            config: sc.config_json(),
            input: fields,
            secrets,
        },
        limits,
        on_error: sc.on_error,
        max_failures: sc.max_failures.max(1),
        batch_size: sc
            .batch_size
            .as_ref()
            .map_or(usize::MAX, |b| *b.get_ref())
            .max(1),
        input,
        to,
    })
}

fn limits(sc: &StageConfig, diags: &mut Diagnostics) -> Option<Limits> {
    let mut limits = Limits::default();
    let Some(spanned) = &sc.limits else {
        return Some(limits);
    };
    let l = spanned.get_ref();
    let span = Some(spanned.span());
    let name = sc.name.get_ref();
    let mut ok = true;
    if let Some(m) = &l.memory {
        match parse_size(m) {
            Ok(bytes) => limits.memory_bytes = bytes,
            Err(e) => {
                diags.error(span.clone(), format!("stage `{name}`: limits.memory: {e}"));
                ok = false;
            }
        }
    }
    if let Some(d) = &l.deadline {
        match parse_duration_ms(d) {
            Ok(ms) if ms > 0 => limits.deadline = Duration::from_millis(ms as u64),
            Ok(_) => {
                diags.error(
                    span.clone(),
                    format!("stage `{name}`: limits.deadline must be positive"),
                );
                ok = false;
            }
            Err(e) => {
                diags.error(
                    span.clone(),
                    format!("stage `{name}`: limits.deadline: {e}"),
                );
                ok = false;
            }
        }
    }
    if let Some(rows) = l.max_output_rows {
        limits.max_output_rows = rows;
    }
    limits.fuel = l.fuel;
    ok.then_some(limits)
}

/// Instantiates and configures a stage, placing its errors in the file.
fn start_stage(sc: &StageConfig, spec: StageSpec, diags: &mut Diagnostics) -> Option<Stage> {
    let name = sc.name.get_ref();
    let input_fields = spec.setup.input.clone();
    match Stage::start(spec) {
        Ok(stage) => {
            if stage.spec.on_error == OnError::Skip && stage.output != input_fields {
                diags.error_hint(
                    Some(sc.name.span()),
                    format!("stage `{name}` has on_error = \"skip\", but its output columns differ from its input"),
                    "skipping only works for stages that keep the columns; use dead_letter or stop",
                );
            }
            Some(stage)
        }
        Err(e) => {
            let (span, what) = match &e {
                CallError::Plugin(PluginError::InvalidConfig(_)) => (
                    sc.config
                        .as_ref()
                        .map(|c| c.span())
                        .unwrap_or(sc.plugin.span()),
                    "rejected its configuration",
                ),
                CallError::Plugin(PluginError::SchemaMismatch(_)) => (
                    sc.input
                        .as_ref()
                        .map(|i| i.span())
                        .unwrap_or(sc.name.span()),
                    "does not fit its input",
                ),
                _ => (sc.plugin.span(), "failed to start"),
            };
            diags.error(
                Some(span),
                format!("stage `{name}`: plugin {what}: {}", e.describe()),
            );
            None
        }
    }
}
