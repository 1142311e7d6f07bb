//! `[[stage]]` tables: which plugin runs, with what configuration, secrets and limits,
//! reading from where and sending to which sinks.

use super::secret::SecretRef;
use super::units::{ByteSize, Duration};
use super::{Diagnostics, section};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::num::{NonZeroU32, NonZeroUsize};
use toml::Spanned;
use toml::de::DeValue;

/// One `[[stage]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    pub name: Spanned<String>,
    /// Path of the plugin's `.wasm` file, relative to the pipeline file.
    pub plugin: Spanned<String>,
    /// The plugin's own configuration, passed to its `configure` as JSON.
    #[serde(default)]
    pub config: Option<Spanned<toml::Table>>,
    /// The stage or `source` this stage reads; defaults to the stage before it.
    pub input: Option<Spanned<String>>,
    /// Sinks that receive this stage's output.
    #[serde(default)]
    pub to: Vec<Spanned<String>>,
    /// Secrets the host resolves for the plugin, by the name the plugin asks for.
    #[serde(default)]
    pub secrets: BTreeMap<String, Spanned<SecretRef>>,
    /// Most rows per plugin call; larger batches are split.
    pub batch_size: Option<NonZeroUsize>,
    pub limits: Option<Spanned<LimitsConfig>>,
    #[serde(default)]
    pub on_error: OnError,
    /// Failed batches in a row after which the plugin is quarantined (no longer called;
    /// `on_error` applies to every batch until a new version is loaded).
    #[serde(default = "default_max_failures")]
    pub max_failures: NonZeroU32,
    /// A candidate version that runs in shadow on the live stream, compared, not emitted.
    pub canary: Option<Spanned<CanaryConfig>>,
    /// Instances of the plugin that share the stage's rows, each on its own thread.
    pub shards: Option<Spanned<NonZeroUsize>>,
    /// The columns whose values choose a row's shard: what a stateful plugin keys its
    /// state by (a window's group, a `unique` rule's column). Without it, a stateless
    /// stage's rows are cut into consecutive runs, in order.
    #[serde(default)]
    pub shard_by: Vec<Spanned<String>>,
}

/// Most shards of one stage: each is a thread and an instance with its own memory.
pub const MAX_SHARDS: usize = 16;

/// `[stage.canary]`: a candidate version of the stage's plugin (or of its config) that
/// sees every batch the running version sees, from the same state, for a while; its output
/// is compared with the running version's and dropped. See docs/plugins.md.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryConfig {
    /// The candidate's `.wasm`, relative to the pipeline file; the stage's own by default
    /// (to try a new `config`).
    pub plugin: Option<Spanned<String>>,
    /// The candidate's configuration; the stage's own by default.
    pub config: Option<Spanned<toml::Table>>,
    /// Compare for this many plugin calls...
    pub batches: Option<std::num::NonZeroU64>,
    /// ...or for this long, whichever ends first (100 calls when neither is set).
    pub duration: Option<Duration>,
    /// What happens when the comparison ends: `manual` (the default) reports and stops the
    /// candidate; `auto` also promotes it when its outputs matched.
    #[serde(default)]
    pub promote: Promote,
    /// Largest relative difference between two floating-point values that still counts
    /// as the same (0.001 = 0.1 %); every other value must be equal.
    #[serde(default)]
    pub tolerance: f64,
}

/// Whether a canary that matched takes over by itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Promote {
    #[default]
    Manual,
    Auto,
}

fn default_max_failures() -> NonZeroU32 {
    NonZeroU32::new(5).expect("not zero")
}

/// Per-stage sandbox limits; unset ones take the host's defaults.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Memory cap of the plugin instance, e.g. "64MiB".
    pub memory: Option<ByteSize>,
    /// Longest one plugin call may run, e.g. "500ms".
    pub deadline: Option<Duration>,
    /// Most rows one call may return.
    pub max_output_rows: Option<u64>,
    /// Fuel (about one unit per wasm instruction) one call may use: a deterministic limit,
    /// where the deadline depends on the machine. Metering slows the plugin down.
    pub fuel: Option<u64>,
    /// Most bytes one call may return (all columns together), e.g. "64MiB".
    pub output_bytes: Option<ByteSize>,
    /// Most bytes of one text value the plugin returns, e.g. "1MiB".
    pub value_bytes: Option<ByteSize>,
    /// Longest error, rejection or log message kept; longer ones are cut, with a note.
    pub message_bytes: Option<ByteSize>,
    /// Log lines per second the plugin may write; the rest are dropped and counted.
    pub log_lines_per_second: Option<u32>,
    /// Distinct counter names the plugin may use; new ones beyond are dropped and counted.
    pub counters: Option<u32>,
    /// Most bytes of the plugin's snapshot.
    pub snapshot_bytes: Option<ByteSize>,
}

/// What a stage does with a batch whose plugin call failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Send the batch to the dead letters and go on with the next.
    #[default]
    DeadLetter,
    /// Pass the batch on unchanged, as if the stage were not there.
    Skip,
    /// Stop the pipeline.
    Stop,
}

pub(super) fn parse_all(
    value: Option<&Spanned<DeValue<'_>>>,
    diags: &mut Diagnostics,
) -> Vec<StageConfig> {
    let Some(value) = value else {
        return Vec::new();
    };
    let Some(array) = value.get_ref().as_array() else {
        diags.error_hint(
            Some(value.span()),
            "`stage` must be an array of tables",
            "write each stage as [[stage]]",
        );
        return Vec::new();
    };
    let mut stages = Vec::new();
    for (i, v) in array.iter().enumerate() {
        let Some(stage) = section::<StageConfig>(v, &format!("stage {}", i + 1), diags) else {
            continue;
        };
        if let Some(l) = &stage.limits
            && l.get_ref().deadline.is_some_and(|d| d.get().is_zero())
        {
            diags.error(
                Some(l.span()),
                format!(
                    "stage `{}`: limits.deadline must be positive",
                    stage.name.get_ref()
                ),
            );
        }
        check_canary(&stage, diags);
        check_shards(&stage, diags);
        stages.push(stage);
    }
    stages
}

fn check_canary(stage: &StageConfig, diags: &mut Diagnostics) {
    let Some(c) = &stage.canary else {
        return;
    };
    let t = c.get_ref().tolerance;
    if !(t.is_finite() && t >= 0.0) {
        diags.error(
            Some(c.span()),
            format!(
                "stage `{}`: canary.tolerance must be a number ≥ 0, not {t}",
                stage.name.get_ref()
            ),
        );
    }
    if c.get_ref().plugin.is_none() && c.get_ref().config.is_none() {
        diags.error_hint(
            Some(c.span()),
            format!(
                "stage `{}`: the canary is the running version itself",
                stage.name.get_ref()
            ),
            "give the canary a `plugin` (a new version) or a `config` (new settings)",
        );
    }
}

fn check_shards(stage: &StageConfig, diags: &mut Diagnostics) {
    let Some(shards) = &stage.shards else {
        return;
    };
    let name = stage.name.get_ref();
    if shards.get_ref().get() > MAX_SHARDS {
        diags.error(
            Some(shards.span()),
            format!("stage `{name}`: shards must be at most {MAX_SHARDS}"),
        );
    }
    if shards.get_ref().get() > 1
        && let Some(c) = &stage.canary
    {
        diags.error_hint(
            Some(c.span()),
            format!("stage `{name}`: a canary cannot run on a stage with shards > 1"),
            "try the candidate with shards = 1, or in `adstream replay --swap`",
        );
    }
}

impl StageConfig {
    /// How many instances share the stage's rows.
    pub fn shard_count(&self) -> usize {
        self.shards.as_ref().map_or(1, |s| s.get_ref().get())
    }
}

/// A TOML value as JSON, the form plugins receive their configuration in. Datetimes become
/// RFC 3339 strings.
pub fn toml_to_json(value: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

impl StageConfig {
    /// The stage's `config` table as a JSON string (`{}` when absent).
    pub fn config_json(&self) -> String {
        table_json(self.config.as_ref())
    }
}

impl CanaryConfig {
    /// The candidate's config as JSON: its own, or else the stage's.
    pub fn config_json(&self, stage: &StageConfig) -> String {
        table_json(self.config.as_ref().or(stage.config.as_ref()))
    }
}

fn table_json(table: Option<&Spanned<toml::Table>>) -> String {
    match table {
        Some(t) => toml_to_json(&toml::Value::Table(t.get_ref().clone())).to_string(),
        None => "{}".to_string(),
    }
}
