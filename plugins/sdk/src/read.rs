//! Typed, read-only views of a batch's columns.
//!
//! Looking a column up checks its type once and returns a view whose `get` is a plain
//! index; string columns are checked for UTF-8 once per column, not once per row.

use crate::{Batch, Column, PluginError, Values};

/// True when bit `row` of an Arrow-style validity bitmap is set (or there is no bitmap).
#[inline]
pub(crate) fn is_valid(valid: Option<&[u8]>, row: usize) -> bool {
    match valid {
        None => true,
        Some(bits) => bits.get(row / 8).is_some_and(|b| b & (1 << (row % 8)) != 0),
    }
}

fn strings_str<'a>(s: &'a crate::Strings, name: &str) -> Result<&'a str, PluginError> {
    std::str::from_utf8(&s.bytes)
        .map_err(|e| PluginError::InvalidInput(format!("column `{name}` is not UTF-8: {e}")))
}

/// A string column, plain or dictionary-encoded.
#[derive(Clone, Copy)]
pub struct StrCol<'a> {
    repr: StrRepr<'a>,
    valid: Option<&'a [u8]>,
}

#[derive(Clone, Copy)]
enum StrRepr<'a> {
    Text {
        offsets: &'a [u32],
        text: &'a str,
    },
    Dict {
        keys: &'a [u32],
        offsets: &'a [u32],
        text: &'a str,
    },
}

#[inline]
fn slice<'a>(offsets: &[u32], text: &'a str, i: usize) -> &'a str {
    let (Some(&start), Some(&end)) = (offsets.get(i), offsets.get(i + 1)) else {
        return "";
    };
    text.get(start as usize..end as usize).unwrap_or("")
}

impl<'a> StrCol<'a> {
    /// The value of `row`, or `None` if it is null.
    #[inline(always)]
    pub fn get(&self, row: usize) -> Option<&'a str> {
        if !is_valid(self.valid, row) {
            return None;
        }
        Some(self.value(row))
    }

    /// The value of `row`; a null row reads as the empty string.
    #[inline(always)]
    pub fn value(&self, row: usize) -> &'a str {
        match self.repr {
            StrRepr::Text { offsets, text } => slice(offsets, text, row),
            StrRepr::Dict {
                keys,
                offsets,
                text,
            } => keys
                .get(row)
                .map_or("", |&k| slice(offsets, text, k as usize)),
        }
    }

    /// For a dictionary column, the key of `row`: rows with equal keys have equal values,
    /// which lets a plugin group rows without comparing strings.
    #[inline]
    pub fn key(&self, row: usize) -> Option<u32> {
        match self.repr {
            StrRepr::Dict { keys, .. } => keys.get(row).copied(),
            StrRepr::Text { .. } => None,
        }
    }

    /// Whether `row` has a value.
    #[inline]
    pub fn is_valid(&self, row: usize) -> bool {
        is_valid(self.valid, row)
    }

    /// For a dictionary column, how many values its dictionary holds. A key at or above
    /// it reads as the empty string, as [`value`](Self::value) does.
    pub fn dict_len(&self) -> Option<usize> {
        match self.repr {
            StrRepr::Dict { offsets, .. } => Some(offsets.len().saturating_sub(1)),
            StrRepr::Text { .. } => None,
        }
    }

    /// For a dictionary column, the value of dictionary key `key` (the empty string for a
    /// plain text column or a key out of range): a plugin can decode each distinct value
    /// once per batch instead of once per row.
    pub fn dict_value(&self, key: u32) -> &'a str {
        match self.repr {
            StrRepr::Dict { offsets, text, .. } => slice(offsets, text, key as usize),
            StrRepr::Text { .. } => "",
        }
    }
}

macro_rules! primitive_col {
    ($name:ident, $ty:ty, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy)]
        pub struct $name<'a> {
            values: &'a [$ty],
            valid: Option<&'a [u8]>,
        }

        impl<'a> $name<'a> {
            /// The value of `row`, or `None` if it is null.
            #[inline]
            pub fn get(&self, row: usize) -> Option<$ty> {
                if !is_valid(self.valid, row) {
                    return None;
                }
                self.values.get(row).copied()
            }

            /// The value of `row`; a null row reads as its placeholder.
            #[inline]
            pub fn value(&self, row: usize) -> $ty {
                self.values.get(row).copied().unwrap_or_default()
            }

            /// All values, nulls included as placeholders.
            pub fn values(&self) -> &'a [$ty] {
                self.values
            }

            /// Whether `row` has a value.
            #[inline]
            pub fn is_valid(&self, row: usize) -> bool {
                is_valid(self.valid, row)
            }
        }
    };
}

primitive_col!(I64Col, i64, "An integer or timestamp column.");
primitive_col!(F64Col, f64, "A float column.");
primitive_col!(BoolCol, u8, "A boolean column (0 or 1 per row).");

fn wrong_type(name: &str, want: &str, col: &Column) -> PluginError {
    PluginError::SchemaMismatch(format!(
        "column `{name}` is {}, expected {want}",
        crate::schema::kind_name(crate::schema::kind_of(&col.values))
    ))
}

impl Batch {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows as usize
    }

    /// True when the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The column called `name`, if any.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    fn require(&self, name: &str) -> Result<&Column, PluginError> {
        self.column(name)
            .ok_or_else(|| PluginError::SchemaMismatch(format!("batch has no column `{name}`")))
    }

    /// A text or dictionary column.
    pub fn text(&self, name: &str) -> Result<StrCol<'_>, PluginError> {
        self.require(name)?.as_text()
    }

    /// An int64 or timestamp column.
    pub fn i64s(&self, name: &str) -> Result<I64Col<'_>, PluginError> {
        self.require(name)?.as_i64s()
    }

    /// A float column.
    pub fn f64s(&self, name: &str) -> Result<F64Col<'_>, PluginError> {
        self.require(name)?.as_f64s()
    }

    /// A boolean column.
    pub fn bools(&self, name: &str) -> Result<BoolCol<'_>, PluginError> {
        self.require(name)?.as_bools()
    }
}

impl Column {
    /// This column as strings, if it is text or dictionary.
    pub fn as_text(&self) -> Result<StrCol<'_>, PluginError> {
        let name = &self.name;
        let repr = match &self.values {
            Values::Text(s) => StrRepr::Text {
                offsets: &s.offsets,
                text: strings_str(s, name)?,
            },
            Values::Dictionary(d) => StrRepr::Dict {
                keys: &d.keys,
                offsets: &d.values.offsets,
                text: strings_str(&d.values, name)?,
            },
            _ => return Err(wrong_type(name, "text or dictionary", self)),
        };
        Ok(StrCol {
            repr,
            valid: self.valid.as_deref(),
        })
    }

    /// This column as integers, if it is int64 or timestamp.
    pub fn as_i64s(&self) -> Result<I64Col<'_>, PluginError> {
        match &self.values {
            Values::Int64(v) | Values::TimestampMs(v) => Ok(I64Col {
                values: v,
                valid: self.valid.as_deref(),
            }),
            _ => Err(wrong_type(&self.name, "int64 or timestamp", self)),
        }
    }

    /// This column as floats.
    pub fn as_f64s(&self) -> Result<F64Col<'_>, PluginError> {
        match &self.values {
            Values::Float64(v) => Ok(F64Col {
                values: v,
                valid: self.valid.as_deref(),
            }),
            _ => Err(wrong_type(&self.name, "float64", self)),
        }
    }

    /// This column as booleans.
    pub fn as_bools(&self) -> Result<BoolCol<'_>, PluginError> {
        match &self.values {
            Values::Boolean(v) => Ok(BoolCol {
                values: v,
                valid: self.valid.as_deref(),
            }),
            _ => Err(wrong_type(&self.name, "boolean", self)),
        }
    }

    /// Whether `row` has a value.
    pub fn is_valid(&self, row: usize) -> bool {
        is_valid(self.valid.as_deref(), row)
    }

    /// Number of values stored in the column.
    pub fn len(&self) -> usize {
        match &self.values {
            Values::Int64(v) | Values::TimestampMs(v) => v.len(),
            Values::Float64(v) => v.len(),
            Values::Boolean(v) => v.len(),
            Values::Text(s) => s.offsets.len().saturating_sub(1),
            Values::Dictionary(d) => d.keys.len(),
        }
    }

    /// True when the column holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
