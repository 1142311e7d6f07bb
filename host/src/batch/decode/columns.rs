//! Growable column buffers that can drop a half-decoded row, and the serde visitor that
//! appends one JSON value to one of them.

use crate::config::FieldType;
use adstream_sdk::{Column, Dict, FastMap, Strings, Values};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Unexpected, Visitor};
use std::fmt;

enum Data {
    Text {
        offsets: Vec<u32>,
        bytes: Vec<u8>,
    },
    /// A text column of whatever JSON value the field holds, written back compactly:
    /// nested values (an order's items) for the plugins that parse them.
    Json {
        offsets: Vec<u32>,
        bytes: Vec<u8>,
    },
    Dict {
        keys: Vec<u32>,
        offsets: Vec<u32>,
        bytes: Vec<u8>,
        index: FastMap<String, u32>,
        /// The last key pushed: neighbouring events (of one ad request) mostly share
        /// their dimensions, and comparing with it is cheaper than hashing.
        last: Option<u32>,
    },
    I64(Vec<i64>),
    F64(Vec<f64>),
    Bool(Vec<u8>),
    Time(Vec<i64>),
}

/// One column being decoded.
pub struct ColumnBuf {
    data: Data,
    /// One byte per row (1 = has a value); turned into a bitmap at the end.
    valid: Vec<u8>,
    nulls: usize,
}

impl ColumnBuf {
    pub fn new(ty: FieldType, rows: usize) -> Self {
        let data = match ty {
            FieldType::String => Data::Text {
                offsets: vec![0],
                bytes: Vec::with_capacity(rows * 16),
            },
            FieldType::Json => Data::Json {
                offsets: vec![0],
                bytes: Vec::with_capacity(rows * 16),
            },
            FieldType::Dict => Data::Dict {
                keys: Vec::with_capacity(rows),
                offsets: vec![0],
                bytes: Vec::new(),
                index: FastMap::default(),
                last: None,
            },
            FieldType::I64 => Data::I64(Vec::with_capacity(rows)),
            FieldType::F64 => Data::F64(Vec::with_capacity(rows)),
            FieldType::Bool => Data::Bool(Vec::with_capacity(rows)),
            FieldType::TimestampMs => Data::Time(Vec::with_capacity(rows)),
        };
        ColumnBuf {
            data,
            valid: Vec::with_capacity(rows),
            nulls: 0,
        }
    }

    fn type_name(&self) -> &'static str {
        match self.data {
            Data::Text { .. } => "a string",
            Data::Json { .. } => "a JSON value",
            Data::Dict { .. } => "a string",
            Data::I64(_) => "an integer",
            Data::F64(_) => "a number",
            Data::Bool(_) => "a boolean",
            Data::Time(_) => "a timestamp in milliseconds",
        }
    }

    fn len(&self) -> usize {
        self.valid.len()
    }

    /// Drops rows from `rows` on.
    pub fn truncate(&mut self, rows: usize) {
        if self.len() <= rows {
            return;
        }
        self.nulls -= self.valid[rows..].iter().filter(|&&v| v == 0).count();
        self.valid.truncate(rows);
        match &mut self.data {
            Data::Text { offsets, bytes } | Data::Json { offsets, bytes } => {
                offsets.truncate(rows + 1);
                bytes.truncate(offsets[rows] as usize);
            }
            Data::Dict { keys, .. } => keys.truncate(rows),
            Data::I64(v) | Data::Time(v) => v.truncate(rows),
            Data::F64(v) => v.truncate(rows),
            Data::Bool(v) => v.truncate(rows),
        }
    }

    pub fn push_null(&mut self) {
        match &mut self.data {
            Data::Text { offsets, bytes } | Data::Json { offsets, bytes } => {
                offsets.push(bytes.len() as u32);
            }
            Data::Dict { keys, .. } => keys.push(0),
            Data::I64(v) | Data::Time(v) => v.push(0),
            Data::F64(v) => v.push(0.0),
            Data::Bool(v) => v.push(0),
        }
        if let Data::Dict {
            offsets,
            bytes,
            index,
            ..
        } = &mut self.data
            && index.is_empty()
        {
            // Key 0 must exist for null rows to point at.
            index.insert(String::new(), 0);
            offsets.push(bytes.len() as u32);
        }
        self.valid.push(0);
        self.nulls += 1;
    }

    fn push_str(&mut self, s: &str) -> bool {
        match &mut self.data {
            Data::Text { offsets, bytes } => {
                bytes.extend_from_slice(s.as_bytes());
                offsets.push(bytes.len() as u32);
            }
            Data::Dict {
                keys,
                offsets,
                bytes,
                index,
                last,
            } => {
                let value =
                    |k: u32| &bytes[offsets[k as usize] as usize..offsets[k as usize + 1] as usize];
                let key = match *last {
                    Some(k) if value(k) == s.as_bytes() => k,
                    _ => match index.get(s) {
                        Some(&k) => k,
                        None => {
                            let k = (offsets.len() - 1) as u32;
                            bytes.extend_from_slice(s.as_bytes());
                            offsets.push(bytes.len() as u32);
                            index.insert(s.to_string(), k);
                            k
                        }
                    },
                };
                *last = Some(key);
                keys.push(key);
            }
            _ => return false,
        }
        self.valid.push(1);
        true
    }

    fn push_json(&mut self, value: &serde_json::Value) {
        if let Data::Json { offsets, bytes } = &mut self.data {
            // Writing a `Value` into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *bytes, value);
            offsets.push(bytes.len() as u32);
            self.valid.push(1);
        }
    }

    fn push_i64(&mut self, x: i64) -> bool {
        match &mut self.data {
            Data::I64(v) | Data::Time(v) => v.push(x),
            Data::F64(v) => v.push(x as f64),
            _ => return false,
        }
        self.valid.push(1);
        true
    }

    fn push_f64(&mut self, x: f64) -> bool {
        match &mut self.data {
            Data::F64(v) => v.push(x),
            _ => return false,
        }
        self.valid.push(1);
        true
    }

    fn push_bool(&mut self, x: bool) -> bool {
        match &mut self.data {
            Data::Bool(v) => v.push(u8::from(x)),
            _ => return false,
        }
        self.valid.push(1);
        true
    }

    /// The last value of an integer or timestamp column, if it is not null.
    pub fn last_i64(&self) -> Option<i64> {
        match &self.data {
            Data::I64(v) | Data::Time(v) if self.valid.last() == Some(&1) => v.last().copied(),
            _ => None,
        }
    }

    /// Largest value of an integer or timestamp column.
    pub fn max_i64(&self) -> Option<i64> {
        match &self.data {
            Data::I64(v) | Data::Time(v) => v
                .iter()
                .zip(&self.valid)
                .filter(|(_, ok)| **ok != 0)
                .map(|(x, _)| *x)
                .max(),
            _ => None,
        }
    }

    pub fn finish(self, name: &str) -> Column {
        let valid = (self.nulls > 0).then(|| {
            let mut bits = vec![0u8; self.valid.len().div_ceil(8)];
            for (i, _) in self.valid.iter().enumerate().filter(|(_, v)| **v != 0) {
                bits[i / 8] |= 1 << (i % 8);
            }
            bits
        });
        let values = match self.data {
            Data::Text { offsets, bytes } | Data::Json { offsets, bytes } => {
                Values::Text(Strings { offsets, bytes })
            }
            Data::Dict {
                keys,
                offsets,
                bytes,
                ..
            } => Values::Dictionary(Dict {
                keys,
                values: Strings { offsets, bytes },
            }),
            Data::I64(v) => Values::Int64(v),
            Data::Time(v) => Values::TimestampMs(v),
            Data::F64(v) => Values::Float64(v),
            Data::Bool(v) => Values::Boolean(v),
        };
        Column {
            name: name.to_string(),
            values,
            valid,
        }
    }
}

/// Appends one JSON value to a column, or fails with a message naming the field.
pub struct ValueSeed<'a> {
    pub buf: &'a mut ColumnBuf,
    pub name: &'a str,
    pub required: bool,
}

impl ValueSeed<'_> {
    fn wrong<E: de::Error>(&self, got: Unexpected) -> E {
        E::custom(format_args!(
            "field `{}`: expected {}, got {got}",
            self.name,
            self.buf.type_name()
        ))
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if !matches!(self.buf.data, Data::Json { .. }) {
            return d.deserialize_any(self);
        }
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Null => self.visit_unit(),
            value => {
                self.buf.push_json(&value);
                Ok(())
            }
        }
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} for field `{}`", self.buf.type_name(), self.name)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        if self.buf.push_str(v) {
            Ok(())
        } else {
            Err(self.wrong(Unexpected::Str(v)))
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        if self.buf.push_i64(v) {
            Ok(())
        } else {
            Err(self.wrong(Unexpected::Signed(v)))
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        match i64::try_from(v) {
            Ok(x) => self.visit_i64(x),
            Err(_) if matches!(self.buf.data, Data::F64(_)) => self.visit_f64(v as f64),
            Err(_) => Err(E::custom(format_args!(
                "field `{}`: {v} is out of range",
                self.name
            ))),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        if self.buf.push_f64(v) {
            Ok(())
        } else {
            Err(self.wrong(Unexpected::Float(v)))
        }
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        if self.buf.push_bool(v) {
            Ok(())
        } else {
            Err(self.wrong(Unexpected::Bool(v)))
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        if self.required {
            return Err(E::custom(format_args!(
                "required field `{}` is null",
                self.name
            )));
        }
        self.buf.push_null();
        Ok(())
    }

    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.wrong(Unexpected::Map))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.wrong(Unexpected::Seq))
    }
}
