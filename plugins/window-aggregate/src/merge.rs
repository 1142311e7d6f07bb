//! Merging partial windows (`MergeAggregate`): the window rows other instances returned,
//! each over some partitions' events, folded into the windows one instance over all the
//! events would close. Counts add up whatever the order; floats do not quite (a sum's last
//! bit depends on the order of its terms), so each window and group keeps its partials
//! apart and adds them up in one fixed order when it closes: the rows come out the same
//! whichever partials arrived first, and whichever hosts read which partitions.

use crate::WindowAggregate;
use crate::state::Closed;
use crate::sums::Sums;
use adstream_sdk::{AggregateOutput, Batch, PluginError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The partials of the windows not closed yet: by window start, then group key (ids in
/// the stage's interner), every partial's sums.
#[derive(Default, Serialize, Deserialize, Debug, PartialEq)]
pub struct Partials {
    pub open: BTreeMap<i64, BTreeMap<Box<[u32]>, Vec<Sums>>>,
}

/// A total order on partials, so that their sum does not depend on their arrival.
fn order(a: &Sums, b: &Sums) -> std::cmp::Ordering {
    let key = |s: &Sums| {
        (
            (s.requests, s.fills, s.impressions, s.clicks, s.conversions),
            s.revenue.to_bits(),
            s.cost.to_bits(),
        )
    };
    key(a).cmp(&key(b))
}

impl Partials {
    /// Removes and returns the windows that end at or before `horizon`, each group's
    /// partials added up in the fixed order.
    fn close(&mut self, horizon: i64, size_ms: i64) -> Vec<Closed> {
        let mut closed = Vec::new();
        while let Some(entry) = self.open.first_entry() {
            if entry.key().saturating_add(size_ms) > horizon {
                break;
            }
            let start = *entry.key();
            for (key, mut parts) in entry.remove() {
                parts.sort_by(order);
                let mut total = Sums::default();
                parts.iter().for_each(|p| total.merge(p));
                closed.push((start, key, total));
            }
        }
        closed
    }
}

impl WindowAggregate {
    /// Folds partial window rows in and returns the windows `watermark` closed; partials
    /// of windows closed already come back as late.
    pub(crate) fn merge_partials(
        &mut self,
        partials: &Batch,
        watermark: i64,
    ) -> Result<AggregateOutput, PluginError> {
        let late = match partials.len() {
            // Only the watermark moved: nothing to read (the batch may have no columns).
            0 => Vec::new(),
            _ => self.fold_partials(partials)?,
        };
        let horizon = watermark.saturating_sub(self.windows.lateness_ms);
        let closed = self.partials.close(horizon, self.windows.size_ms);
        self.windows.closed_until = self.windows.closed_until.max(horizon);
        let windows = self.emit(closed)?;
        Ok(AggregateOutput { windows, late })
    }

    /// Keeps each partial row under its window and group; the indexes of those whose
    /// window had closed.
    fn fold_partials(&mut self, partials: &Batch) -> Result<Vec<u32>, PluginError> {
        let starts = partials.i64s("window_start")?;
        let counts =
            ["requests", "fills", "impressions", "clicks", "conversions"].map(|c| partials.i64s(c));
        let [requests, fills, impressions, clicks, conversions] = counts;
        let (requests, fills, impressions) = (requests?, fills?, impressions?);
        let (clicks, conversions) = (clicks?, conversions?);
        let (revenue, cost) = (partials.f64s("revenue")?, partials.f64s("cost")?);
        let dims: Vec<_> = (self.group_by.iter())
            .map(|d| partials.text(d))
            .collect::<Result<_, _>>()?;
        let size_ms = self.windows.size_ms;
        let mut late = Vec::new();
        for r in 0..partials.len() {
            let start = starts.get(r).unwrap_or_default();
            if start.saturating_add(size_ms) <= self.windows.closed_until {
                late.push(r as u32);
                continue;
            }
            let key: Box<[u32]> = (dims.iter())
                .map(|d| self.windows.interner.id(d.get(r).unwrap_or("")))
                .collect();
            let at = |c: &adstream_sdk::I64Col<'_>, r| c.get(r).unwrap_or_default();
            let sums = Sums {
                requests: at(&requests, r),
                fills: at(&fills, r),
                impressions: at(&impressions, r),
                clicks: at(&clicks, r),
                conversions: at(&conversions, r),
                revenue: revenue.get(r).unwrap_or_default(),
                cost: cost.get(r).unwrap_or_default(),
            };
            let groups = self.partials.open.entry(start).or_default();
            groups.entry(key).or_default().push(sums);
        }
        Ok(late)
    }

    /// Closes every window the partials hold (end of input).
    pub(crate) fn flush_partials(&mut self) -> Vec<Closed> {
        let last = self.partials.open.keys().next_back().copied();
        let horizon = last.map_or(i64::MIN, |s| s + self.windows.size_ms);
        self.partials.close(horizon, self.windows.size_ms)
    }
}
