//! Folding a batch's rows into the open windows: the plugin's hot loop.
//!
//! The rows of one batch mostly fall in one window and a few dozen groups. So the window
//! is looked up only when a row's time leaves the last one's range, and when every
//! group-by column is dictionary-encoded a row finds its group through a per-batch memo
//! indexed by its dictionary keys, instead of interning its values and hashing the key.

use crate::groups::Groups;
use crate::intern::DimReader;
use crate::state::Windows;
use crate::sums::Sums;
use adstream_sdk::{F64Col, I64Col, StrCol};

/// The memo's largest size (entries of 16 bytes): past it, rows go the general way.
const MEMO_LIMIT: usize = 4096;

/// The columns a fold reads.
pub struct Cols<'a> {
    pub time: I64Col<'a>,
    pub types: StrCol<'a>,
    pub network: StrCol<'a>,
    pub revenue: F64Col<'a>,
    pub cost: F64Col<'a>,
    pub dims: Vec<StrCol<'a>>,
}

/// What a fold leaves for the caller to report.
#[derive(Default)]
pub struct Folded {
    /// Rows with no time or for a window that already closed.
    pub late: Vec<u32>,
    /// Rows of an event type no measure counts.
    pub other: u64,
}

/// Event types.
#[derive(Clone, Copy, PartialEq)]
enum EventType {
    Request,
    Impression,
    Click,
    Conversion,
    Other,
}

impl EventType {
    fn parse(s: &str) -> EventType {
        match s {
            "request" => EventType::Request,
            "impression" => EventType::Impression,
            "click" => EventType::Click,
            "conversion" => EventType::Conversion,
            _ => EventType::Other,
        }
    }
}

/// A string column read per row through a table of its dictionary's values decoded once
/// (index `len` stands for a key out of range), or decoded per row for plain text.
struct ByKey<'a, T> {
    col: StrCol<'a>,
    table: Vec<T>,
    decode: fn(&str) -> T,
}

impl<'a, T: Copy> ByKey<'a, T> {
    fn new(col: StrCol<'a>, decode: fn(&str) -> T) -> Self {
        let len = col.dict_len().unwrap_or(0);
        let table = (0..=len as u32)
            .map(|k| decode(col.dict_value(k)))
            .collect();
        ByKey { col, table, decode }
    }

    /// The decoded value of `row`, nulls included (their placeholder is decoded).
    #[inline]
    fn get(&self, row: usize) -> T {
        match self.col.key(row) {
            Some(k) => self.table[(k as usize).min(self.table.len() - 1)],
            None => self.decode_text(row),
        }
    }

    /// A row of a text column (not a dictionary), decoded each time: out of the row loop,
    /// which the shipped events (dictionaries) never take this way.
    #[cold]
    #[inline(never)]
    fn decode_text(&self, row: usize) -> T {
        (self.decode)(self.col.value(row))
    }
}

/// A row's group as one number: its group-by columns' dictionary keys in mixed radix,
/// a null row's digit being the dictionary's length (it groups under the empty string,
/// as a key out of range does).
struct Codes<'a> {
    digits: Vec<(StrCol<'a>, usize)>,
    len: usize,
}

impl<'a> Codes<'a> {
    /// `None` unless every column is dictionary-encoded and the codes fit the memo.
    fn new(dims: &[StrCol<'a>]) -> Option<Self> {
        let mut len = 1usize;
        let mut digits = Vec::with_capacity(dims.len());
        for col in dims {
            let radix = col.dict_len()? + 1;
            len = len.checked_mul(radix).filter(|&l| l <= MEMO_LIMIT)?;
            digits.push((*col, radix));
        }
        Some(Codes { digits, len })
    }

    #[inline]
    fn code(&self, row: usize) -> usize {
        self.digits.iter().fold(0, |code, (col, radix)| {
            let digit = match col.key(row) {
                Some(k) if col.is_valid(row) => (k as usize).min(radix - 1),
                _ => radix - 1,
            };
            code * radix + digit
        })
    }
}

/// A memo entry that names no group.
const EMPTY: (i64, u32) = (i64::MIN, u32::MAX);

/// Folds every row of `cols` into `windows`.
pub fn fold(windows: &mut Windows, cols: &Cols, rows: usize) -> Folded {
    let size = windows.size_ms;
    let closed_until = windows.closed_until;
    let n_dims = windows.dims;
    let Windows { open, interner, .. } = windows;
    let kinds = ByKey::new(cols.types, EventType::parse);
    let fills = ByKey::new(cols.network, |n| !n.is_empty());
    let codes = Codes::new(&cols.dims);
    let mut memo = vec![EMPTY; codes.as_ref().map_or(0, |c| c.len)];
    let mut readers: Vec<DimReader> = cols.dims.iter().map(|&c| DimReader::new(c)).collect();
    let mut key = vec![0u32; n_dims];
    let mut out = Folded::default();
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    let mut groups: Option<&mut Groups> = None;
    for row in 0..rows {
        let Some(t) = cols.time.get(row) else {
            out.late.push(row as u32);
            continue;
        };
        if t < lo || t >= hi {
            lo = t.div_euclid(size) * size;
            hi = lo.saturating_add(size);
            groups =
                (hi > closed_until).then(|| open.entry(lo).or_insert_with(|| Groups::new(n_dims)));
        }
        let Some(g) = groups.as_deref_mut() else {
            out.late.push(row as u32);
            continue;
        };
        let mut find = || {
            for (slot, dim) in key.iter_mut().zip(readers.iter_mut()) {
                *slot = dim.id(row, interner);
            }
            g.at(&key)
        };
        let at = match &codes {
            Some(c) => {
                let m = &mut memo[c.code(row)];
                if m.0 != lo || m.1 == EMPTY.1 {
                    *m = (lo, find() as u32);
                }
                m.1 as usize
            }
            None => find(),
        };
        let kind = kinds.get(row);
        let fill = kind == EventType::Request && cols.network.is_valid(row) && fills.get(row);
        let sums = &mut g.sums[at];
        add(sums, kind, fill, &mut out.other);
        sums.revenue += cols.revenue.get(row).unwrap_or(0.0);
        sums.cost += cols.cost.get(row).unwrap_or(0.0);
    }
    out
}

#[inline]
fn add(sums: &mut Sums, kind: EventType, fill: bool, other: &mut u64) {
    match kind {
        EventType::Request => {
            sums.requests += 1;
            sums.fills += i64::from(fill);
        }
        EventType::Impression => sums.impressions += 1,
        EventType::Click => sums.clicks += 1,
        EventType::Conversion => sums.conversions += 1,
        EventType::Other => *other += 1,
    }
}
