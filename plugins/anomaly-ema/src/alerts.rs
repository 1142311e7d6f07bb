//! Alert rows: the seed's alert record as columns, with a replay-stable `alert_id`.

use crate::rules::{AlertType, Language, Reading};
use adstream_sdk::ColumnKind::{Dictionary, Float64, Text, TimestampMs};
use adstream_sdk::time::iso8601;
use adstream_sdk::{
    Batch, DictBuilder, F64Builder, Field, I64Builder, PluginError, TextBuilder, field,
};
use sha2::{Digest, Sha256};

/// The columns of an alert row.
pub fn fields(group_by: &[String]) -> Vec<Field> {
    let mut f = vec![
        field("alert_id", Text, false),
        field("alert_time", Text, false),
        field("alert_type", Dictionary, false),
        field("severity", Dictionary, false),
    ];
    f.extend(group_by.iter().map(|d| field(d, Dictionary, false)));
    f.extend([
        field("metric_name", Dictionary, false),
        field("current_value", Float64, false),
        field("expected_value", Float64, false),
        field("deviation_percent", Float64, false),
        field("message", Text, false),
        field("window_start", TimestampMs, false),
        field("window_end", TimestampMs, false),
    ]);
    f
}

/// A UUID-shaped id from SHA-256 of rule, dimensions and window, so that replaying the
/// same windows gives the same ids (and downstream deduplication works).
pub fn alert_id(rule: AlertType, dims: &[&str], window: (i64, i64)) -> String {
    let mut h = Sha256::new();
    h.update(rule.name());
    for d in dims {
        h.update([0x1f]);
        h.update(d);
    }
    h.update(window.0.to_le_bytes());
    h.update(window.1.to_le_bytes());
    let mut b: [u8; 16] = h.finalize()[..16].try_into().expect("SHA-256 has 32 bytes");
    b[6] = (b[6] & 0x0f) | 0x80; // version 8: custom
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Accumulates alert rows.
pub struct AlertRows {
    id: TextBuilder,
    time: TextBuilder,
    kind: DictBuilder,
    severity: DictBuilder,
    dims: Vec<DictBuilder>,
    metric: DictBuilder,
    current: F64Builder,
    expected: F64Builder,
    deviation: F64Builder,
    message: TextBuilder,
    start: I64Builder,
    end: I64Builder,
}

impl AlertRows {
    pub fn new(dims: usize) -> Self {
        AlertRows {
            id: TextBuilder::default(),
            time: TextBuilder::default(),
            kind: DictBuilder::default(),
            severity: DictBuilder::default(),
            dims: vec![DictBuilder::default(); dims],
            metric: DictBuilder::default(),
            current: F64Builder::default(),
            expected: F64Builder::default(),
            deviation: F64Builder::default(),
            message: TextBuilder::default(),
            start: I64Builder::default(),
            end: I64Builder::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }

    pub fn push(
        &mut self,
        rule: AlertType,
        dims: &[&str],
        window: (i64, i64),
        r: Reading,
        lang: Language,
    ) {
        let deviation = r.deviation_percent();
        self.id.push(&alert_id(rule, dims, window));
        self.time.push(&iso8601(window.1));
        self.kind.push(rule.name());
        self.severity.push(rule.severity(deviation));
        for (b, d) in self.dims.iter_mut().zip(dims) {
            b.push(d);
        }
        self.metric.push(rule.metric_name());
        self.current.push(r.current);
        self.expected.push(r.expected);
        self.deviation.push((deviation * 100.0).round() / 100.0);
        self.message
            .push(&rule.message(lang, &dims.join(" "), r, deviation));
        self.start.push(window.0);
        self.end.push(window.1);
    }

    pub fn finish(self, group_by: &[String]) -> Result<Batch, PluginError> {
        let mut columns = vec![
            self.id.finish("alert_id"),
            self.time.finish("alert_time"),
            self.kind.finish("alert_type"),
            self.severity.finish("severity"),
        ];
        columns.extend(
            self.dims
                .into_iter()
                .zip(group_by)
                .map(|(b, d)| b.finish(d)),
        );
        columns.extend([
            self.metric.finish("metric_name"),
            self.current.finish("current_value"),
            self.expected.finish("expected_value"),
            self.deviation.finish("deviation_percent"),
            self.message.finish("message"),
            self.start.finish_timestamp("window_start"),
            self.end.finish_timestamp("window_end"),
        ]);
        Batch::from_columns(columns)
    }
}
