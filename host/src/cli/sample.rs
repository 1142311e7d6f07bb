//! The columns of a sample input file, for commands that run a plugin on JSON lines
//! without a pipeline file: each key's type read from its values in the first lines.

use crate::config::FieldType;
use adstream_sdk::Field;
use serde_json::Value;
use std::path::Path;

/// Lines read to learn the columns.
const SAMPLE_LINES: usize = 1000;

/// The columns of a JSON-lines file, in the order they first appear.
pub struct Columns {
    /// (name, type, whether every sampled row has a value).
    pub fields: Vec<(String, FieldType, bool)>,
    pub time_column: String,
}

fn type_of(v: &Value, is_time: bool) -> Option<FieldType> {
    Some(match v {
        Value::String(_) => FieldType::String,
        Value::Number(n) if n.is_i64() && is_time => FieldType::TimestampMs,
        Value::Number(n) if n.is_i64() => FieldType::I64,
        Value::Number(_) => FieldType::F64,
        Value::Bool(_) => FieldType::Bool,
        Value::Array(_) | Value::Object(_) => FieldType::Json,
        Value::Null => return None,
    })
}

/// The text of a file `adstream test` reads (sample events, expected rows, cases), within
/// [`MAX_SAMPLE_BYTES`](crate::config::bounded::MAX_SAMPLE_BYTES); `what` names it in the
/// error, which starts with its path.
pub fn read_file(path: &Path, what: &str) -> Result<String, String> {
    let limit = crate::config::bounded::MAX_SAMPLE_BYTES;
    crate::config::bounded::read_text(path, limit, what)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Learns the columns of `path`; `time_column` must be an integer (ms) in every row.
pub fn columns(path: &Path, time_column: &str) -> Result<Columns, String> {
    let text = read_file(path, "a file of sample events")?;
    let mut fields: Vec<(String, FieldType, usize)> = Vec::new();
    let mut rows = 0;
    for (i, line) in text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(SAMPLE_LINES)
        .enumerate()
    {
        let Ok(Value::Object(record)) = serde_json::from_str::<Value>(line) else {
            return Err(format!("{}:{}: not a JSON object", path.display(), i + 1));
        };
        rows += 1;
        for (key, value) in record {
            let Some(ty) = type_of(&value, key == time_column) else {
                continue;
            };
            match fields.iter_mut().find(|(n, _, _)| *n == key) {
                Some((_, t, seen)) => {
                    *seen += 1;
                    if *t != ty {
                        *t = match (*t, ty) {
                            (FieldType::I64, FieldType::F64) | (FieldType::F64, FieldType::I64) => {
                                FieldType::F64
                            }
                            _ => {
                                return Err(format!(
                                    "{}:{}: `{key}` changes type",
                                    path.display(),
                                    i + 1
                                ));
                            }
                        };
                    }
                }
                None => fields.push((key, ty, 1)),
            }
        }
    }
    let time = fields
        .iter()
        .find(|(n, t, seen)| n == time_column && *t == FieldType::TimestampMs && *seen == rows);
    if time.is_none() {
        return Err(format!(
            "{}: every row needs `{time_column}`, the event time in ms (or name another with --time-column)",
            path.display()
        ));
    }
    Ok(Columns {
        fields: fields
            .into_iter()
            .map(|(n, t, seen)| (n, t, seen == rows))
            .collect(),
        time_column: time_column.to_string(),
    })
}

impl Columns {
    /// As a plugin's `configure` sees them.
    pub fn fields(&self) -> Vec<Field> {
        (self.fields.iter())
            .map(|(n, t, required)| adstream_sdk::field(n, t.kind(), !required))
            .collect()
    }

    /// As a pipeline file's `[schema]` and `[event_time]` sections.
    pub fn toml(&self) -> String {
        let mut out = String::from("[schema]\n");
        for (name, ty, required) in &self.fields {
            let ty = match ty {
                FieldType::String => "string",
                FieldType::Json => "json",
                FieldType::Dict => "dict",
                FieldType::I64 => "i64",
                FieldType::F64 => "f64",
                FieldType::Bool => "bool",
                FieldType::TimestampMs => "timestamp_ms",
            };
            out += &format!(
                "{} = {{ type = \"{ty}\", required = {required} }}\n",
                toml_key(name)
            );
        }
        out + &format!(
            "[event_time]\ncolumn = {}\ndelay = \"0s\"\n",
            toml_key(&self.time_column)
        )
    }
}

/// `name` as a TOML key (a JSON string is a valid TOML basic string).
fn toml_key(name: &str) -> String {
    serde_json::to_string(name).expect("a string serializes")
}
