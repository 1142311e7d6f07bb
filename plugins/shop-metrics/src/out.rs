//! What every report's rows start with: the window's start, end and label.

use adstream_sdk::ColumnKind::{Dictionary, TimestampMs};
use adstream_sdk::{Column, DictBuilder, Field, I64Builder, field};

pub fn head_fields() -> Vec<Field> {
    vec![
        field("window_start", TimestampMs, false),
        field("window_end", TimestampMs, false),
        field("window", Dictionary, false),
    ]
}

#[derive(Default)]
pub struct Head {
    start: I64Builder,
    end: I64Builder,
    label: DictBuilder,
}

impl Head {
    pub fn push(&mut self, start: i64, size_ms: i64, label: &str) {
        self.start.push(start);
        self.end.push(start + size_ms);
        self.label.push(label);
    }

    pub fn finish(self) -> Vec<Column> {
        vec![
            self.start.finish_timestamp("window_start"),
            self.end.finish_timestamp("window_end"),
            self.label.finish("window"),
        ]
    }
}
