//! Column declarations: what `configure` receives and returns.

use crate::{ColumnKind, Field, PluginError, Values};

/// A field declaration.
pub fn field(name: &str, kind: ColumnKind, nullable: bool) -> Field {
    Field {
        name: name.to_string(),
        kind,
        nullable,
    }
}

/// The kind a column's values have.
pub fn kind_of(values: &Values) -> ColumnKind {
    match values {
        Values::Int64(_) => ColumnKind::Int64,
        Values::Float64(_) => ColumnKind::Float64,
        Values::Boolean(_) => ColumnKind::Boolean,
        Values::Text(_) => ColumnKind::Text,
        Values::Dictionary(_) => ColumnKind::Dictionary,
        Values::TimestampMs(_) => ColumnKind::TimestampMs,
    }
}

/// The name a kind has in pipeline files and messages.
pub fn kind_name(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Int64 => "i64",
        ColumnKind::Float64 => "f64",
        ColumnKind::Boolean => "bool",
        ColumnKind::Text => "string",
        ColumnKind::Dictionary => "dict",
        ColumnKind::TimestampMs => "timestamp_ms",
    }
}

/// Kinds that hold strings.
pub const STRING_KINDS: &[ColumnKind] = &[ColumnKind::Text, ColumnKind::Dictionary];
/// Kinds that hold integers.
pub const INT_KINDS: &[ColumnKind] = &[ColumnKind::Int64, ColumnKind::TimestampMs];

/// Lookups on a list of fields, for checking an input schema in `configure`.
pub trait FieldsExt {
    /// The field called `name`, if any.
    fn get_field(&self, name: &str) -> Option<&Field>;

    /// The field called `name`, which must have one of `kinds`; the error says what is
    /// missing or wrong, for `adstream check` to show.
    fn require(&self, name: &str, kinds: &[ColumnKind]) -> Result<&Field, PluginError>;
}

impl FieldsExt for [Field] {
    fn get_field(&self, name: &str) -> Option<&Field> {
        self.iter().find(|f| f.name == name)
    }

    fn require(&self, name: &str, kinds: &[ColumnKind]) -> Result<&Field, PluginError> {
        let wanted = || {
            kinds
                .iter()
                .map(|k| kind_name(*k))
                .collect::<Vec<_>>()
                .join(" or ")
        };
        let f = self.get_field(name).ok_or_else(|| {
            PluginError::SchemaMismatch(format!("input has no column `{name}` ({})", wanted()))
        })?;
        if !kinds.contains(&f.kind) {
            return Err(PluginError::SchemaMismatch(format!(
                "column `{name}` is {}, expected {}",
                kind_name(f.kind),
                wanted()
            )));
        }
        Ok(f)
    }
}

impl PluginError {
    /// The error as one line for a person, e.g. `invalid config: missing field `window``.
    pub fn describe(&self) -> String {
        match self {
            PluginError::InvalidConfig(m) => format!("invalid config: {m}"),
            PluginError::SchemaMismatch(m) => format!("schema mismatch: {m}"),
            PluginError::InvalidInput(m) => format!("invalid input: {m}"),
            PluginError::InvalidState(m) => format!("invalid state: {m}"),
            PluginError::Other(m) => m.clone(),
        }
    }
}
