//! Open windows: folding rows in, closing windows by watermark, and forgetting dimension
//! values no open window needs.

use crate::groups::Groups;
use crate::intern::Interner;
use crate::sums::Sums;
use std::collections::BTreeMap;

/// The open windows of one stage.
pub struct Windows {
    pub size_ms: i64,
    pub lateness_ms: i64,
    /// Dimensions per group key.
    pub dims: usize,
    /// Every window ending at or before this time has been emitted; rows for those windows
    /// are late.
    pub closed_until: i64,
    pub open: BTreeMap<i64, Groups>,
    pub interner: Interner,
}

/// A closed window: its start, its group's dimension ids and its sums.
pub type Closed = (i64, Box<[u32]>, Sums);

impl Windows {
    pub fn new(size_ms: i64, lateness_ms: i64, dims: usize) -> Self {
        Windows {
            size_ms,
            lateness_ms,
            dims,
            closed_until: i64::MIN,
            open: BTreeMap::new(),
            interner: Interner::default(),
        }
    }

    /// The sums of the group `key` in the window starting at `start`, or `None` if that
    /// window already closed.
    pub fn slot(&mut self, start: i64, key: &[u32]) -> Option<&mut Sums> {
        if start.saturating_add(self.size_ms) <= self.closed_until {
            return None;
        }
        let dims = self.dims;
        Some(
            self.open
                .entry(start)
                .or_insert_with(|| Groups::new(dims))
                .slot(key),
        )
    }

    fn closed(start: i64, groups: Groups) -> impl Iterator<Item = Closed> {
        let all: Vec<Closed> = groups.iter().map(|(k, s)| (start, k.into(), *s)).collect();
        all.into_iter()
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
            closed.extend(Self::closed(start, entry.remove()));
        }
        self.closed_until = self.closed_until.max(horizon);
        closed
    }

    /// Removes and returns every open window.
    pub fn close_all(&mut self) -> Vec<Closed> {
        let last_end = self.open.keys().next_back().map(|s| s + self.size_ms);
        let closed = std::mem::take(&mut self.open)
            .into_iter()
            .flat_map(|(start, groups)| Self::closed(start, groups))
            .collect();
        if let Some(end) = last_end {
            self.closed_until = self.closed_until.max(end);
        }
        closed
    }

    /// Forgets dimension values no open window uses any more, once they are most of the
    /// table: without this, a high-cardinality dimension (a user id) would grow the table
    /// for ever. Ids change, so only call it when no closed window still holds old ones.
    pub fn compact(&mut self) {
        let live: usize = self.open.values().map(Groups::len).sum();
        if self.interner.len() < 4096 || self.interner.len() < 4 * live.max(1) {
            return;
        }
        let mut fresh = Interner::default();
        let old = &self.interner;
        for groups in self.open.values_mut() {
            *groups = groups.remap(|id| fresh.id(old.name(id)));
        }
        self.interner = fresh;
    }
}
