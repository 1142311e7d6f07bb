//! Open windows: folding rows in, closing windows by watermark, and the snapshot format.

use crate::sums::Sums;
use adstream_sdk::{FastMap, PluginError, StrCol};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
            return interner.id(self.col.get(row).unwrap_or(""));
        };
        let k = key as usize;
        if k >= self.by_key.len() {
            self.by_key.resize(k + 1, UNSEEN);
        }
        if self.by_key[k] == UNSEEN {
            self.by_key[k] = interner.id(self.col.value(row));
        }
        self.by_key[k]
    }
}

/// The open windows of one stage.
pub struct Windows {
    pub size_ms: i64,
    pub lateness_ms: i64,
    /// Every window ending at or before this time has been emitted; rows for those windows
    /// are late.
    pub closed_until: i64,
    pub open: BTreeMap<i64, FastMap<Box<[u32]>, Sums>>,
    pub interner: Interner,
}

/// A closed window: its start, its group's dimension ids and its sums.
pub type Closed = (i64, Box<[u32]>, Sums);

impl Windows {
    pub fn new(size_ms: i64, lateness_ms: i64) -> Self {
        Windows {
            size_ms,
            lateness_ms,
            closed_until: i64::MIN,
            open: BTreeMap::new(),
            interner: Interner::default(),
        }
    }

    /// The start of the window `t` falls in.
    #[inline]
    pub fn start_of(&self, t: i64) -> i64 {
        t.div_euclid(self.size_ms) * self.size_ms
    }

    /// The sums of the group `key` in the window starting at `start`, or `None` if that
    /// window already closed.
    #[inline]
    pub fn slot(&mut self, start: i64, key: &[u32]) -> Option<&mut Sums> {
        if start.saturating_add(self.size_ms) <= self.closed_until {
            return None;
        }
        let groups = self.open.entry(start).or_default();
        if !groups.contains_key(key) {
            groups.insert(key.into(), Sums::default());
        }
        groups.get_mut(key)
    }

    /// Removes and returns the windows the watermark closed.
    pub fn close(&mut self, watermark: i64) -> Vec<Closed> {
        let horizon = watermark.saturating_sub(self.lateness_ms);
        let mut closed = Vec::new();
        while let Some(entry) = self.open.first_entry() {
            if entry.key().saturating_add(self.size_ms) > horizon {
                break;
            }
            let start = *entry.key();
            closed.extend(entry.remove().into_iter().map(|(k, s)| (start, k, s)));
        }
        self.closed_until = self.closed_until.max(horizon);
        closed
    }

    /// Removes and returns every open window.
    pub fn close_all(&mut self) -> Vec<Closed> {
        let last_end = self.open.keys().next_back().map(|s| s + self.size_ms);
        let closed = std::mem::take(&mut self.open)
            .into_iter()
            .flat_map(|(start, groups)| groups.into_iter().map(move |(k, s)| (start, k, s)))
            .collect();
        if let Some(end) = last_end {
            self.closed_until = self.closed_until.max(end);
        }
        closed
    }
}

/// The snapshot format. `size_ms` and `group_by` are kept so that a snapshot is never
/// restored into a stage that would misread it.
#[derive(Serialize, Deserialize)]
pub struct Snapshot {
    pub v: u32,
    pub size_ms: i64,
    pub group_by: Vec<String>,
    pub closed_until: i64,
    pub windows: Vec<SavedWindow>,
}

#[derive(Serialize, Deserialize)]
pub struct SavedWindow {
    pub start: i64,
    pub dims: Vec<String>,
    pub sums: Sums,
}

impl Windows {
    pub fn snapshot(&self, group_by: &[String]) -> Result<Vec<u8>, PluginError> {
        let windows = self
            .open
            .iter()
            .flat_map(|(&start, groups)| {
                groups.iter().map(move |(key, sums)| SavedWindow {
                    start,
                    dims: key
                        .iter()
                        .map(|&id| self.interner.name(id).to_string())
                        .collect(),
                    sums: *sums,
                })
            })
            .collect();
        let snap = Snapshot {
            v: 1,
            size_ms: self.size_ms,
            group_by: group_by.to_vec(),
            closed_until: self.closed_until,
            windows,
        };
        serde_json::to_vec(&snap).map_err(|e| PluginError::Other(e.to_string()))
    }

    pub fn restore(&mut self, bytes: &[u8], group_by: &[String]) -> Result<(), PluginError> {
        let snap: Snapshot = serde_json::from_slice(bytes)
            .map_err(|e| PluginError::InvalidState(format!("unreadable snapshot: {e}")))?;
        if snap.v != 1 || snap.size_ms != self.size_ms || snap.group_by != group_by {
            return Err(PluginError::InvalidState(format!(
                "snapshot v{} holds {} ms windows by {:?}; this stage has {} ms windows by {:?}",
                snap.v, snap.size_ms, snap.group_by, self.size_ms, group_by
            )));
        }
        let mut fresh = Windows::new(self.size_ms, self.lateness_ms);
        fresh.closed_until = snap.closed_until;
        for w in snap.windows {
            let key: Vec<u32> = w.dims.iter().map(|d| fresh.interner.id(d)).collect();
            fresh
                .open
                .entry(w.start)
                .or_default()
                .insert(key.into(), w.sums);
        }
        *self = fresh;
        Ok(())
    }
}
