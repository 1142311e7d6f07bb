//! The `unique` rule: a value may appear once per window of event time.
//!
//! Rows are bucketed by the watermark at the time they arrive, since the rule must not
//! depend on a column the user may not have; buckets older than one window are forgotten,
//! which bounds memory by the number of distinct values per window.

use crate::Failures;
use adstream_sdk::{Batch, FastMap, PluginError};
use std::collections::VecDeque;

pub struct Unique {
    window_ms: i64,
    /// (bucket start, values first seen in it), oldest first.
    buckets: VecDeque<(i64, FastMap<String, ()>)>,
}

/// What [`Unique`] remembers, as its snapshot holds it: buckets oldest first, each with
/// its values sorted (so that the same state always gives the same bytes).
pub type UniqueState = Vec<(i64, Vec<String>)>;

impl Unique {
    pub fn state(&self) -> UniqueState {
        self.buckets
            .iter()
            .map(|(start, set)| {
                let mut values: Vec<String> = set.keys().cloned().collect();
                values.sort_unstable();
                (*start, values)
            })
            .collect()
    }

    pub fn set_state(&mut self, state: UniqueState) {
        self.buckets = state
            .into_iter()
            .map(|(start, values)| (start, values.into_iter().map(|v| (v, ())).collect()))
            .collect();
    }

    pub fn new(window_ms: i64) -> Self {
        Unique {
            window_ms: window_ms.max(1),
            buckets: VecDeque::new(),
        }
    }

    fn seen(&self, value: &str) -> bool {
        self.buckets.iter().any(|(_, set)| set.contains_key(value))
    }

    pub fn check(
        &mut self,
        input: &Batch,
        column: &str,
        watermark: i64,
        out: &mut Failures,
    ) -> Result<(), PluginError> {
        let bucket = watermark.div_euclid(self.window_ms) * self.window_ms;
        while self
            .buckets
            .front()
            .is_some_and(|(start, _)| *start < bucket.saturating_sub(self.window_ms))
        {
            self.buckets.pop_front();
        }
        if self
            .buckets
            .back()
            .is_none_or(|(start, _)| *start != bucket)
        {
            self.buckets.push_back((bucket, FastMap::default()));
        }
        let col = input.text(column)?;
        for row in 0..input.len() {
            if out.failed(row) {
                continue;
            }
            let Some(v) = col.get(row) else { continue };
            if self.seen(v) {
                out.fail(
                    row,
                    format!("{column} `{v}` was already seen within the window"),
                );
            } else if let Some((_, set)) = self.buckets.back_mut() {
                set.insert(v.to_string(), ());
            }
        }
        Ok(())
    }
}
