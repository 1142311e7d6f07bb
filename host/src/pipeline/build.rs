//! Building a pipeline from its config: every plugin loaded and configured with the columns
//! its input will have, every source and sink setting checked, every problem reported at
//! its place in the file. `adstream check` and `adstream run` build the same way, so
//! whatever `check` accepts, `run` can start.

mod plugins;

use super::checkpoint;
use super::stage::{CanarySpec, Input, Stage, StageSpec};
use crate::batch::decode::Decoder;
use crate::config::sink::FileSinkConfig;
use crate::config::units::bytes;
use crate::config::{Diagnostics, OnError, PipelineConfig, SinkConfig, SourceConfig, StageConfig};
use crate::plugin::{CallError, Limits, PluginEngine};
use adstream_sdk::{Field, PluginError, Setup};
use plugins::{Plugins, load};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where and how often checkpoints are saved.
#[derive(Debug, Clone)]
pub struct CheckpointPolicy {
    /// The checkpoint of a pipeline one host runs.
    pub file: PathBuf,
    /// The store of cuts of a pipeline hosts share.
    pub store: checkpoint::Location,
    pub every: Duration,
    pub on_missing: crate::config::OnMissing,
}

/// A pipeline ready to run: plugins loaded and configured, sinks resolved.
pub struct Pipeline {
    pub name: String,
    pub decoder: Decoder,
    pub source: SourceConfig,
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
    /// What dead letters keep of personal fields.
    pub privacy: Arc<crate::batch::Privacy>,
}

/// The sink used when a pipeline names no `dead_letter`.
pub fn default_dead_letter(name: &str) -> (String, SinkConfig) {
    (
        "dead_letters".to_string(),
        SinkConfig::File(FileSinkConfig {
            kind: "file".into(),
            path: format!("dead-letters/{name}.jsonl"),
            append: true,
        }),
    )
}

fn decoder(cfg: &PipelineConfig) -> Decoder {
    let et = &cfg.event_time;
    let mut decoder = Decoder::new(
        &cfg.schema,
        et.column.get_ref(),
        Some(et.max_future.as_millis_i64()),
    );
    decoder.max_past_ms = et.max_past.map(|d| d.as_millis_i64());
    decoder.max_record_bytes = bytes(cfg.max_record_bytes);
    decoder
}

/// Loads, configures and cross-checks everything in `cfg`; every problem is reported.
pub fn build(
    cfg: &PipelineConfig,
    engine: &PluginEngine,
) -> Result<Pipeline, Vec<crate::config::Diagnostic>> {
    let mut diags = cfg.diagnostics();
    let decoder = decoder(cfg);
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
    for e in crate::sources::check(&cfg.source) {
        diags.error(Some(cfg.spans.source.clone()), e.to_string());
    }
    let privacy = crate::batch::Privacy::of(cfg).unwrap_or_else(|e| {
        diags.error(None, e);
        Default::default()
    });
    let plugins = Plugins::load(cfg, engine);
    let stages = build_stages(cfg, &decoder, &sinks, &plugins, &mut diags);
    if !diags.is_empty() {
        return Err(diags.finish());
    }
    let stages: Vec<Stage> = stages
        .into_iter()
        .map(|s| s.expect("no diagnostics means every stage started"))
        .collect();
    sinks.extend(super::merge::partials_sink(cfg, &stages));
    let sink_fields = sink_fields(&stages, &sinks, dead_letter, &mut diags);
    for (i, (name, sink)) in cfg.sinks.iter().enumerate() {
        for e in crate::sinks::check(name, sink, sink_fields[i].as_deref()) {
            diags.error(cfg.spans.sinks.get(i).cloned(), e.to_string());
        }
    }
    if let Some(why) = super::group::check(cfg, &stages, &sinks) {
        diags.error(Some(cfg.spans.source.clone()), why);
    }
    if !diags.is_empty() {
        return Err(diags.finish());
    }
    Ok(Pipeline {
        name: cfg.name.clone(),
        decoder,
        source: cfg.source.clone(),
        delay_ms: cfg.event_time.delay.as_millis_i64(),
        idle: cfg.event_time.idle.get(),
        checkpoint: cfg.checkpoint.as_ref().map(|c| CheckpointPolicy {
            file: checkpoint::path(std::path::Path::new(&c.dir), &cfg.name),
            store: checkpoint::Location::of(&c.dir, &cfg.name),
            every: c.interval.get().max(Duration::from_millis(1)),
            on_missing: c.on_missing,
        }),
        stages,
        sinks,
        dead_letter,
        sink_fields,
        privacy: Arc::new(privacy),
    })
}

/// Where stage `i` reads from; `None` when it names a stage that does not exist (which
/// the config check reported).
fn input_of(cfg: &PipelineConfig, i: usize, sc: &StageConfig) -> Option<Input> {
    match sc.input.as_ref().map(|s| s.get_ref().as_str()) {
        Some("source") => Some(Input::Source),
        Some(name) => cfg
            .stages
            .iter()
            .position(|s| s.name.get_ref() == name)
            .map(Input::Stage),
        None if i == 0 => Some(Input::Source),
        None => Some(Input::Stage(i - 1)),
    }
}

fn build_stages(
    cfg: &PipelineConfig,
    decoder: &Decoder,
    sinks: &[(String, SinkConfig)],
    plugins: &Plugins,
    diags: &mut Diagnostics,
) -> Vec<Option<Stage>> {
    let mut stages: Vec<Option<Stage>> = Vec::new();
    for (i, sc) in cfg.stages.iter().enumerate() {
        let Some(input) = input_of(cfg, i, sc) else {
            continue;
        };
        let fields = match input {
            Input::Source => Some(decoder.fields()),
            Input::Stage(j) => stages
                .get(j)
                .and_then(|s| s.as_ref())
                .map(|s| s.output.clone()),
        };
        // A stage can run per source partition when nothing an aggregate made reaches it.
        let local = match input {
            Input::Source => true,
            Input::Stage(j) => (stages.get(j).and_then(|s| s.as_ref())).is_some_and(|s| {
                s.spec.partition_local && s.spec.plugin.role() != crate::plugin::Role::Aggregate
            }),
        };
        let stage = fields.and_then(|fields| {
            let mut spec = spec(cfg, sc, input, fields, sinks, plugins, diags)?;
            spec.partition_local = local;
            start_stage(sc, spec, diags)
        });
        stages.push(stage);
    }
    stages
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

/// The stage's `[stage.canary]`, its plugin loaded.
fn canary(
    cfg: &PipelineConfig,
    sc: &StageConfig,
    setup: &Setup,
    plugins: &Plugins,
    diags: &mut Diagnostics,
) -> Option<Arc<CanarySpec>> {
    let c = sc.canary.as_ref()?.get_ref();
    let plugin = load(
        cfg,
        sc,
        c.plugin.as_ref().unwrap_or(&sc.plugin),
        plugins,
        diags,
    )?;
    Some(Arc::new(CanarySpec {
        plugin,
        setup: Setup {
            config: c.config_json(sc),
            ..setup.clone()
        },
        calls: c.batches.map(|n| n.get()),
        duration: c.duration.map(|d| d.get()),
        promote: c.promote,
        tolerance: c.tolerance,
    }))
}

fn spec(
    cfg: &PipelineConfig,
    sc: &StageConfig,
    input: Input,
    fields: Vec<Field>,
    sinks: &[(String, SinkConfig)],
    plugins: &Plugins,
    diags: &mut Diagnostics,
) -> Option<StageSpec> {
    let name = sc.name.get_ref();
    let plugin = load(cfg, sc, &sc.plugin, plugins, diags)?;
    let mut secrets = Vec::new();
    for (secret, r) in &sc.secrets {
        match r.get_ref().resolve(secret) {
            Ok(s) => secrets.push(adstream_sdk::Secret {
                name: s.name.clone(),
                value: s.into_bytes(),
            }),
            Err(e) if e.not_read() => secrets.push(adstream_sdk::Secret {
                name: secret.clone(),
                value: crate::config::secret::PLACEHOLDER.to_vec(),
            }),
            Err(e) => diags.error(Some(r.span()), format!("stage `{name}`: {e}")),
        }
    }
    let to = sc
        .to
        .iter()
        .filter_map(|t| sinks.iter().position(|(n, _)| n == t.get_ref()))
        .collect();
    let setup = Setup {
        config: sc.config_json(),
        input: fields,
        secrets,
    };
    let canary = canary(cfg, sc, &setup, plugins, diags);
    let shard_by = shard_by(sc, &setup.input, plugin.stateful(), diags);
    Some(StageSpec {
        name: Arc::from(name.as_str()),
        plugin,
        setup,
        canary,
        limits: Limits::from_config(sc.limits.as_ref().map(|l| l.get_ref())),
        on_error: sc.on_error,
        max_failures: sc.max_failures,
        batch_size: sc.batch_size.map_or(usize::MAX, |b| b.get()),
        input,
        to,
        seed: seed(&cfg.name, name),
        shards: sc.shard_count(),
        shard_by,
        partition_local: false,
        partitioned: false,
    })
}

/// The columns that choose a row's shard, checked against the stage's input: a plugin
/// that keeps state must say what its state is keyed by before its rows can be shared.
fn shard_by(
    sc: &StageConfig,
    input: &[Field],
    stateful: bool,
    diags: &mut Diagnostics,
) -> Arc<[String]> {
    let name = sc.name.get_ref();
    for c in &sc.shard_by {
        if !input.iter().any(|f| f.name == *c.get_ref()) {
            diags.error(
                Some(c.span()),
                format!(
                    "stage `{name}`: shard_by column `{}` is not in its input",
                    c.get_ref()
                ),
            );
        }
    }
    if let Some(shards) = sc.shards.as_ref().filter(|s| s.get_ref().get() > 1)
        && sc.shard_by.is_empty()
        && stateful
    {
        diags.error_hint(
            Some(shards.span()),
            format!("stage `{name}` keeps state, so with shards > 1 it needs `shard_by`"),
            "name the columns its state is keyed by, e.g. shard_by = [\"country\", \"ad_format\"] for windows grouped by them",
        );
    }
    sc.shard_by.iter().map(|c| c.get_ref().clone()).collect()
}

/// A stage's random seed, from the pipeline's and the stage's names.
fn seed(pipeline: &str, stage: &str) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{pipeline}/{stage}"));
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// Instantiates and configures a stage, placing its errors in the file.
fn start_stage(sc: &StageConfig, spec: StageSpec, diags: &mut Diagnostics) -> Option<Stage> {
    let name = sc.name.get_ref();
    let input_fields = spec.setup.input.clone();
    match Stage::start(spec) {
        Ok(mut stage) => {
            if let Err(e) = stage.start_canary() {
                let span = sc.canary.as_ref().map(|c| c.span());
                diags.error(span, format!("stage `{name}`: canary: {e}"));
            }
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
                    sc.config.as_ref().map_or(sc.plugin.span(), |c| c.span()),
                    "rejected its configuration",
                ),
                CallError::Plugin(PluginError::SchemaMismatch(_)) => (
                    sc.input.as_ref().map_or(sc.name.span(), |i| i.span()),
                    "does not fit its input",
                ),
                _ => (sc.plugin.span(), "failed to start"),
            };
            diags.error(Some(span), format!("stage `{name}`: plugin {what}: {e}"));
            None
        }
    }
}
