//! Builders for output columns. Each builder appends rows and turns into a [`Column`];
//! [`Batch::from_columns`] checks that the columns agree on the row count.

use crate::hash::FastMap;
use crate::{Batch, Column, Dict, PluginError, Strings, Values};

/// An Arrow-style validity bitmap that stays absent until the first null.
#[derive(Default, Clone, Debug)]
struct Validity {
    bits: Option<Vec<u8>>,
    len: usize,
}

impl Validity {
    #[inline]
    fn push(&mut self, valid: bool) {
        if !valid && self.bits.is_none() {
            let mut bits = vec![0xFF; self.len.div_ceil(8)];
            if !self.len.is_multiple_of(8) {
                let last = bits.len() - 1;
                bits[last] = (1u8 << (self.len % 8)) - 1;
            }
            self.bits = Some(bits);
        }
        if let Some(bits) = &mut self.bits {
            if self.len.is_multiple_of(8) {
                bits.push(0);
            }
            if valid {
                bits[self.len / 8] |= 1 << (self.len % 8);
            }
        }
        self.len += 1;
    }
}

fn column(name: &str, values: Values, valid: Validity) -> Column {
    Column {
        name: name.to_string(),
        values,
        valid: valid.bits,
    }
}

macro_rules! primitive_builder {
    ($name:ident, $ty:ty, $case:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Default, Clone, Debug)]
        pub struct $name {
            values: Vec<$ty>,
            valid: Validity,
        }

        impl $name {
            /// An empty builder with room for `rows` rows.
            pub fn with_capacity(rows: usize) -> Self {
                Self {
                    values: Vec::with_capacity(rows),
                    valid: Validity::default(),
                }
            }

            /// Append a value.
            #[inline]
            pub fn push(&mut self, value: $ty) {
                self.values.push(value);
                self.valid.push(true);
            }

            /// Append a null.
            #[inline]
            pub fn push_null(&mut self) {
                self.values.push(<$ty>::default());
                self.valid.push(false);
            }

            /// Append a value or a null.
            #[inline]
            pub fn push_opt(&mut self, value: Option<$ty>) {
                match value {
                    Some(v) => self.push(v),
                    None => self.push_null(),
                }
            }

            /// Number of rows so far.
            pub fn len(&self) -> usize {
                self.values.len()
            }

            /// True when no row was appended.
            pub fn is_empty(&self) -> bool {
                self.values.is_empty()
            }

            /// The finished column.
            pub fn finish(self, name: &str) -> Column {
                column(name, Values::$case(self.values), self.valid)
            }
        }
    };
}

primitive_builder!(I64Builder, i64, Int64, "Builds an int64 column.");
primitive_builder!(F64Builder, f64, Float64, "Builds a float64 column.");
primitive_builder!(
    BoolBuilder,
    u8,
    Boolean,
    "Builds a boolean column (0 or 1 per row)."
);

impl I64Builder {
    /// The finished column, typed as milliseconds since the epoch.
    pub fn finish_timestamp(self, name: &str) -> Column {
        column(name, Values::TimestampMs(self.values), self.valid)
    }
}

/// Builds a text column.
#[derive(Clone, Debug)]
pub struct TextBuilder {
    offsets: Vec<u32>,
    bytes: Vec<u8>,
    valid: Validity,
}

impl Default for TextBuilder {
    fn default() -> Self {
        Self {
            offsets: vec![0],
            bytes: Vec::new(),
            valid: Validity::default(),
        }
    }
}

impl TextBuilder {
    /// An empty builder with room for `rows` rows of `bytes` bytes in all.
    pub fn with_capacity(rows: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Self {
            offsets,
            bytes: Vec::with_capacity(bytes),
            valid: Validity::default(),
        }
    }

    /// Append a value.
    #[inline]
    pub fn push(&mut self, value: &str) {
        self.bytes.extend_from_slice(value.as_bytes());
        self.offsets.push(self.bytes.len() as u32);
        self.valid.push(true);
    }

    /// Append a null.
    #[inline]
    pub fn push_null(&mut self) {
        self.offsets.push(self.bytes.len() as u32);
        self.valid.push(false);
    }

    /// Append a value or a null.
    #[inline]
    pub fn push_opt(&mut self, value: Option<&str>) {
        match value {
            Some(v) => self.push(v),
            None => self.push_null(),
        }
    }

    /// Append a value written by `write` straight into the column's buffer, so that
    /// formatting a value needs no temporary string.
    #[inline]
    pub fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.bytes.len();
        write(&mut self.bytes);
        if std::str::from_utf8(&self.bytes[start..]).is_err() {
            self.bytes.truncate(start);
        }
        self.offsets.push(self.bytes.len() as u32);
        self.valid.push(true);
    }

    /// Number of rows so far.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// True when no row was appended.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn into_strings(self) -> (Strings, Validity) {
        (
            Strings {
                offsets: self.offsets,
                bytes: self.bytes,
            },
            self.valid,
        )
    }

    /// The finished column.
    pub fn finish(self, name: &str) -> Column {
        let (strings, valid) = self.into_strings();
        column(name, Values::Text(strings), valid)
    }
}

/// Builds a dictionary-encoded text column; equal values share one dictionary entry.
#[derive(Default, Clone, Debug)]
pub struct DictBuilder {
    keys: Vec<u32>,
    values: TextBuilder,
    index: FastMap<String, u32>,
    valid: Validity,
}

impl DictBuilder {
    /// Append a value.
    #[inline]
    pub fn push(&mut self, value: &str) {
        let key = match self.index.get(value) {
            Some(&k) => k,
            None => {
                let k = self.values.len() as u32;
                self.values.push(value);
                self.index.insert(value.to_string(), k);
                k
            }
        };
        self.keys.push(key);
        self.valid.push(true);
    }

    /// Append a null.
    #[inline]
    pub fn push_null(&mut self) {
        self.keys.push(0);
        if self.values.is_empty() {
            self.values.push("");
            self.index.insert(String::new(), 0);
        }
        self.valid.push(false);
    }

    /// Append a value or a null.
    #[inline]
    pub fn push_opt(&mut self, value: Option<&str>) {
        match value {
            Some(v) => self.push(v),
            None => self.push_null(),
        }
    }

    /// Number of rows so far.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no row was appended.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The finished column.
    pub fn finish(self, name: &str) -> Column {
        let (values, _) = self.values.into_strings();
        column(
            name,
            Values::Dictionary(Dict {
                keys: self.keys,
                values,
            }),
            self.valid,
        )
    }
}

impl Batch {
    /// A batch of `columns`, which must all have the same number of rows.
    pub fn from_columns(columns: Vec<Column>) -> Result<Batch, PluginError> {
        let rows = columns.first().map_or(0, Column::len);
        if let Some(bad) = columns.iter().find(|c| c.len() != rows) {
            return Err(PluginError::Other(format!(
                "column `{}` has {} rows but `{}` has {rows}",
                bad.name,
                bad.len(),
                columns[0].name
            )));
        }
        Ok(Batch {
            rows: rows as u32,
            columns,
        })
    }

    /// A batch with no rows and no columns.
    pub fn empty() -> Batch {
        Batch {
            rows: 0,
            columns: Vec::new(),
        }
    }
}
