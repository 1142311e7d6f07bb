//! The `[schema]` and `[event_time]` sections: which JSON fields are decoded into which
//! columns, and which column is event time.

use super::units::Duration;
use super::{Diagnostics, section};
use adstream_sdk::ColumnKind;
use serde::Deserialize;
use std::ops::Range;
use toml::Spanned;
use toml::de::DeValue;

/// The type a JSON field is decoded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    /// The field's JSON value (an array or object too) kept as compact JSON text.
    Json,
    Dict,
    I64,
    F64,
    Bool,
    TimestampMs,
}

impl FieldType {
    pub fn kind(self) -> ColumnKind {
        match self {
            FieldType::String | FieldType::Json => ColumnKind::Text,
            FieldType::Dict => ColumnKind::Dictionary,
            FieldType::I64 => ColumnKind::Int64,
            FieldType::F64 => ColumnKind::Float64,
            FieldType::Bool => ColumnKind::Boolean,
            FieldType::TimestampMs => ColumnKind::TimestampMs,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FieldSpec {
    Short(FieldType),
    Long(LongSpec),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongSpec {
    #[serde(rename = "type")]
    ty: FieldType,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    personal: bool,
}

/// One decoded field. Equality ignores `span`: moving a field in the file changes nothing.
#[derive(Debug, Clone)]
pub struct SchemaField {
    pub name: String,
    pub ty: FieldType,
    /// A row without this field is rejected instead of getting a null.
    pub required: bool,
    /// The field identifies a person: dead letters do not keep it in clear (`[privacy]`).
    pub personal: bool,
    pub span: Range<usize>,
}

/// The decoded fields, in file order. Equality ignores `span`, as for fields.
#[derive(Debug, Clone)]
pub struct SchemaConfig {
    pub fields: Vec<SchemaField>,
    pub span: Range<usize>,
}

impl PartialEq for SchemaField {
    fn eq(&self, other: &Self) -> bool {
        (&self.name, self.ty, self.required, self.personal)
            == (&other.name, other.ty, other.required, other.personal)
    }
}

impl PartialEq for SchemaConfig {
    fn eq(&self, other: &Self) -> bool {
        self.fields == other.fields
    }
}

const TYPES: &str = "string, dict, i64, f64, bool, timestamp_ms";

impl SchemaConfig {
    pub fn parse(value: &Spanned<DeValue<'_>>, diags: &mut Diagnostics) -> Option<SchemaConfig> {
        let Some(table) = value.get_ref().as_table() else {
            diags.error(
                Some(value.span()),
                "[schema] must be a table of field = \"type\"",
            );
            return None;
        };
        let mut fields = Vec::new();
        for (name, v) in table.iter() {
            let what = format!("[schema] field `{}`", name.get_ref());
            let spec = FieldSpec::deserialize(toml::de::ValueDeserializer::from(v.clone()));
            match spec {
                Ok(FieldSpec::Short(ty)) => fields.push((name, ty, false, false, v.span())),
                Ok(FieldSpec::Long(l)) => {
                    fields.push((name, l.ty, l.required, l.personal, v.span()));
                }
                // The untagged error says nothing useful: re-read a table as the long form
                // for its precise error, and name the accepted types otherwise.
                Err(_) if v.get_ref().is_table() => {
                    let _ = section::<LongSpec>(v, &what, diags);
                }
                Err(_) => diags.error_hint(
                    Some(v.span()),
                    format!("{what} has an unknown type"),
                    format!(
                        "write a type ({TYPES}) or {{ type = \"...\", required = true, personal = true }}"
                    ),
                ),
            }
        }
        if fields.is_empty() {
            diags.error(Some(value.span()), "[schema] declares no fields");
        }
        let fields = fields
            .into_iter()
            .map(|(n, ty, required, personal, span)| SchemaField {
                name: n.get_ref().to_string(),
                ty,
                required,
                personal,
                span,
            })
            .collect();
        Some(SchemaConfig {
            fields,
            span: value.span(),
        })
    }

    /// Event time must be a required timestamp field.
    pub fn check_event_time(&self, et: &EventTimeConfig, diags: &mut Diagnostics) {
        let column = et.column.get_ref();
        match self.fields.iter().find(|f| f.name == *column) {
            None => diags.error_hint(
                Some(et.column.span()),
                format!("event time column `{column}` is not in [schema]"),
                format!(
                    "add {column} = {{ type = \"timestamp_ms\", required = true }} to [schema]"
                ),
            ),
            Some(f) if f.ty != FieldType::TimestampMs || !f.required => diags.error_hint(
                Some(f.span.clone()),
                format!("event time field `{column}` must be a required timestamp_ms"),
                format!("write {column} = {{ type = \"timestamp_ms\", required = true }}"),
            ),
            Some(_) => {}
        }
    }
}

/// Which column is event time and how the watermark follows it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventTimeConfig {
    #[serde(default = "default_column")]
    pub column: Spanned<String>,
    /// How far behind the latest event time the watermark stays, to let slightly
    /// out-of-order events into their windows.
    #[serde(default = "default_delay")]
    pub delay: Duration,
    /// A partition that sent nothing for this long stops holding the watermark back.
    #[serde(default = "default_idle")]
    pub idle: Duration,
    /// Events stamped further than this past the host's clock are dead-lettered: one such
    /// event would otherwise push the watermark ahead and make every other event late.
    #[serde(default = "default_max_future")]
    pub max_future: Duration,
    /// Events stamped further than this before the host's clock are dead-lettered; unset
    /// by default, since replaying old data is normal.
    pub max_past: Option<Duration>,
}

fn default_idle() -> Duration {
    Duration::from_secs(10)
}

fn default_max_future() -> Duration {
    Duration::from_secs(3600)
}

fn default_column() -> Spanned<String> {
    Spanned::new(0..0, "event_time".to_string())
}

fn default_delay() -> Duration {
    Duration::from_secs(1)
}

impl Default for EventTimeConfig {
    fn default() -> Self {
        EventTimeConfig {
            column: default_column(),
            delay: default_delay(),
            idle: default_idle(),
            max_future: default_max_future(),
            max_past: None,
        }
    }
}
