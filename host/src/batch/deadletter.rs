//! Dead letters: every record or row the pipeline could not process, with why and where
//! from, as rows of a batch that goes to the pipeline's dead-letter sink.

use super::encode::row_json;
use super::privacy::Privacy;
use super::{Envelope, Position, RawBatch};
use adstream_sdk::{Batch, DictBuilder, I64Builder, TextBuilder};

/// Longest raw payload a dead letter carries; a message bus would refuse more.
pub const MAX_PAYLOAD: usize = 64 << 10;

/// Why a record became a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The record did not decode against the schema.
    Decode,
    /// A validate plugin rejected the row.
    Rejected,
    /// The row arrived after its window closed.
    Late,
    /// The plugin returned an error for the batch.
    PluginError,
    /// The plugin trapped, timed out, ran out of memory or returned a malformed result.
    PluginFailure,
    /// A sink could not deliver the row.
    Delivery,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Decode => "decode",
            Reason::Rejected => "rejected",
            Reason::Late => "late",
            Reason::PluginError => "plugin_error",
            Reason::PluginFailure => "plugin_failure",
            Reason::Delivery => "delivery",
        }
    }
}

/// Who was processing the record.
#[derive(Debug, Clone, Default)]
pub struct Culprit<'a> {
    pub stage: &'a str,
    pub plugin: &'a str,
    pub version: &'a str,
}

/// Builds the dead-letter rows of one source batch.
pub struct DeadLetters {
    source: String,
    reason: DictBuilder,
    stage: DictBuilder,
    plugin: DictBuilder,
    version: DictBuilder,
    error: TextBuilder,
    origin: DictBuilder,
    partition: I64Builder,
    offset: I64Builder,
    payload: TextBuilder,
    /// Rows per reason, for status.
    by_reason: std::collections::BTreeMap<&'static str, u64>,
}

impl DeadLetters {
    pub fn new(source: &str) -> Self {
        DeadLetters {
            source: source.to_string(),
            reason: DictBuilder::default(),
            stage: DictBuilder::default(),
            plugin: DictBuilder::default(),
            version: DictBuilder::default(),
            error: TextBuilder::default(),
            origin: DictBuilder::default(),
            partition: I64Builder::default(),
            offset: I64Builder::default(),
            payload: TextBuilder::default(),
            by_reason: Default::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.reason.len()
    }

    /// The source whose records these are.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Adds `other`'s rows after these (a stage's shards each collect their own).
    pub fn extend(&mut self, other: DeadLetters) {
        if other.is_empty() {
            return;
        }
        for (reason, n) in other.by_reason() {
            *self.by_reason.entry(reason).or_default() += n;
        }
        let batch = other.finish();
        let text = |name: &str| batch.text(name).expect("a dead-letter column");
        let int = |name: &str| batch.i64s(name).expect("a dead-letter column");
        let (reason, stage, plugin, version) = (
            text("reason"),
            text("stage"),
            text("plugin"),
            text("plugin_version"),
        );
        let (error, origin, payload) = (text("error"), text("source"), text("payload"));
        let (partition, offset) = (int("partition"), int("offset"));
        for r in 0..batch.len() {
            self.reason.push(reason.value(r));
            self.stage.push(stage.value(r));
            self.plugin.push(plugin.value(r));
            self.version.push(version.value(r));
            self.error.push(error.value(r));
            self.origin.push(origin.value(r));
            self.partition.push_opt(partition.get(r));
            self.offset.push_opt(offset.get(r));
            self.payload.push(payload.value(r));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.reason.is_empty()
    }

    /// How many rows so far, by reason.
    pub fn by_reason(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.by_reason.iter().map(|(r, n)| (*r, *n))
    }

    fn push(
        &mut self,
        reason: Reason,
        who: &Culprit,
        error: &str,
        at: Option<Position>,
        payload: &str,
    ) {
        self.reason.push(reason.name());
        *self.by_reason.entry(reason.name()).or_default() += 1;
        self.stage.push(who.stage);
        self.plugin.push(who.plugin);
        self.version.push(who.version);
        self.error.push(error);
        self.origin.push(&self.source);
        self.partition.push_opt(at.map(|p| p.partition as i64));
        self.offset.push_opt(at.map(|p| p.offset));
        self.payload.push(payload);
    }

    /// A raw record that did not decode; its bytes are kept as text (invalid UTF-8
    /// replaced), the first `MAX_PAYLOAD` bytes of a longer one (its position says where
    /// the whole record is).
    pub fn record(&mut self, raw: &RawBatch, i: usize, error: &str) {
        let bytes = raw.record(i);
        let payload = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_PAYLOAD)]);
        self.push(
            Reason::Decode,
            &Culprit {
                stage: "decode",
                ..Default::default()
            },
            error,
            Some(raw.position(i)),
            &payload,
        );
    }

    /// Row `row` of `env`, as JSON.
    pub fn row(&mut self, reason: Reason, who: &Culprit, error: &str, env: &Envelope, row: usize) {
        let payload = row_json(&env.batch, row);
        self.push(reason, who, error, env.position(row), &payload);
    }

    /// Row `row` of `batch`, which sink `sink` could not deliver.
    pub fn delivery(&mut self, sink: &str, batch: &Batch, row: usize, error: &str) {
        let who = Culprit {
            stage: sink,
            ..Default::default()
        };
        self.push(Reason::Delivery, &who, error, None, &row_json(batch, row));
    }

    /// Every row of `env`, for a batch whose plugin call failed.
    pub fn batch(&mut self, reason: Reason, who: &Culprit, error: &str, env: &Envelope) {
        for row in 0..env.rows() {
            self.row(reason, who, error, env, row);
        }
    }

    /// The rows as they leave the pipeline: with what `privacy` lets them keep of personal
    /// fields.
    pub fn seal(self, privacy: &Privacy) -> Batch {
        let batch = self.finish();
        if !privacy.protects() {
            return batch;
        }
        let text = |name: &str| batch.text(name).expect("a dead-letter column");
        let (reason, payload, error) = (text("reason"), text("payload"), text("error"));
        let (mut kept_payload, mut kept_error) = (TextBuilder::default(), TextBuilder::default());
        for r in 0..batch.len() {
            let undecoded = reason.value(r) == Reason::Decode.name();
            let kept = privacy.apply(payload.value(r), error.value(r), undecoded);
            kept_payload.push(&kept.payload);
            kept_error.push(&kept.error);
        }
        let (payload, error) = (kept_payload.finish("payload"), kept_error.finish("error"));
        let columns = (batch.columns.into_iter())
            .map(|c| match c.name.as_str() {
                "payload" => payload.clone(),
                "error" => error.clone(),
                _ => c,
            })
            .collect();
        Batch::from_columns(columns).expect("the same rows")
    }

    pub fn finish(self) -> Batch {
        let columns = vec![
            self.reason.finish("reason"),
            self.stage.finish("stage"),
            self.plugin.finish("plugin"),
            self.version.finish("plugin_version"),
            self.error.finish("error"),
            self.origin.finish("source"),
            self.partition.finish("partition"),
            self.offset.finish("offset"),
            self.payload.finish("payload"),
        ];
        Batch::from_columns(columns).expect("dead-letter columns are built together")
    }
}
