//! Dimension values as small integers: a group key is a few ids, not strings.

use adstream_sdk::{FastMap, StrCol};

/// Interns dimension values so that a group key is a few integers, not strings.
#[derive(Default)]
pub struct Interner {
    ids: FastMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    pub fn id(&mut self, value: &str) -> u32 {
        if let Some(&id) = self.ids.get(value) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(value.to_string());
        self.ids.insert(value.to_string(), id);
        id
    }

    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// Every value, by id.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }
}

/// Maps a string column's rows to interned ids; a dictionary column is looked up once
/// per distinct key and batch, not once per row.
pub struct DimReader<'a> {
    col: StrCol<'a>,
    by_key: Vec<u32>,
}

const UNSEEN: u32 = u32::MAX;

impl<'a> DimReader<'a> {
    pub fn new(col: StrCol<'a>) -> Self {
        DimReader {
            col,
            by_key: Vec::new(),
        }
    }

    #[inline]
    pub fn id(&mut self, row: usize, interner: &mut Interner) -> u32 {
        let Some(key) = self.col.key(row).filter(|_| self.col.is_valid(row)) else {
            return text_id(&self.col, row, interner);
        };
        let k = key as usize;
        if k >= self.by_key.len() {
            self.by_key.resize(k + 1, UNSEEN);
        }
        if self.by_key[k] == UNSEEN {
            self.by_key[k] = text_id(&self.col, row, interner);
        }
        self.by_key[k]
    }
}

/// The id of `row`'s text (a null row's is the empty string's): once per dictionary value,
/// or per row of a text column; out of the row loop.
#[cold]
#[inline(never)]
fn text_id(col: &StrCol<'_>, row: usize, interner: &mut Interner) -> u32 {
    interner.id(col.get(row).unwrap_or(""))
}
