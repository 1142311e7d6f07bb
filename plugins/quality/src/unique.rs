//! The `unique` rule: a value may appear once per window of event time.
//!
//! Rows are bucketed by the watermark at the time they arrive, since the rule must not
//! depend on a column the user may not have; buckets older than one window are dropped
//! whole, which bounds memory by the number of distinct values per window.
//!
//! A value is remembered by its 128-bit XXH3 fingerprint, not its text: 16 bytes and no
//! allocation per value, and the fingerprint is its own hash (the sets hash it no
//! further). Two different values share a fingerprint with a probability of about
//! n²/2¹²⁹ (for a billion values, 10⁻²¹); the hash is specified, so a snapshot's
//! fingerprints stay valid across versions.

use crate::Failures;
use adstream_sdk::{Batch, PluginError};
use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

/// A value's fingerprint.
pub type Fingerprint = u128;

/// The fingerprint of `value`.
pub fn fingerprint(value: &str) -> Fingerprint {
    xxhash_rust::xxh3::xxh3_128(value.as_bytes())
}

/// Hashes a fingerprint by its low word: it is uniformly spread already.
#[derive(Default)]
pub struct LowWord(u64);

impl Hasher for LowWord {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Fingerprints arrive through `write_u128`; anything else is mixed in plainly.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u128(&mut self, fingerprint: u128) {
        self.0 = fingerprint as u64;
    }
}

type Set = HashSet<Fingerprint, BuildHasherDefault<LowWord>>;

pub struct Unique {
    window_ms: i64,
    /// (bucket start, fingerprints first seen in it), oldest first.
    buckets: VecDeque<(i64, Set)>,
}

/// What [`Unique`] remembers, as its snapshot holds it: buckets oldest first, each with
/// its fingerprints sorted (so that the same state always gives the same bytes).
pub type UniqueState = Vec<(i64, Vec<Fingerprint>)>;

impl Unique {
    /// Appends each bucket (oldest first) as postcard writes an `(i64, bytes)`: its
    /// start, then its fingerprints as 16 little-endian bytes each, sorted in place (so
    /// that the same state always gives the same bytes).
    pub fn write_sorted(&self, mut out: Vec<u8>) -> postcard::Result<Vec<u8>> {
        for (start, set) in &self.buckets {
            out = postcard::to_extend(&(*start, set.len() * 16), out)?;
            let from = out.len();
            // A whole fingerprint at a time: a flat_map of its bytes pushed them one by one.
            out.reserve(set.len() * 16);
            for f in set {
                out.extend_from_slice(&f.to_le_bytes());
            }
            let (values, _) = out[from..].as_chunks_mut::<16>();
            values.sort_unstable_by_key(|v| u128::from_le_bytes(*v));
        }
        Ok(out)
    }

    /// How many buckets, and the bytes their fingerprints take.
    pub fn size(&self) -> (usize, usize) {
        let values: usize = self.buckets.iter().map(|(_, set)| set.len()).sum();
        (self.buckets.len(), values * 16)
    }

    pub fn set_state(&mut self, state: UniqueState) {
        self.buckets = state
            .into_iter()
            .map(|(start, values)| (start, values.into_iter().collect()))
            .collect();
    }

    pub fn new(window_ms: i64) -> Self {
        Unique {
            window_ms: window_ms.max(1),
            buckets: VecDeque::new(),
        }
    }

    /// Moves to the bucket of `watermark`, dropping buckets older than the window.
    fn advance(&mut self, watermark: i64) {
        let bucket = watermark.div_euclid(self.window_ms) * self.window_ms;
        let oldest = bucket.saturating_sub(self.window_ms);
        while self
            .buckets
            .front()
            .is_some_and(|(start, _)| *start < oldest)
        {
            self.buckets.pop_front();
        }
        if self
            .buckets
            .back()
            .is_none_or(|(start, _)| *start != bucket)
        {
            // Sized like the bucket before it: a set that grows by doubling holds its old
            // and new tables at once, and leaves the old one's memory behind.
            let expected = self.buckets.back().map_or(0, |(_, set)| set.len());
            let set = Set::with_capacity_and_hasher(expected, Default::default());
            self.buckets.push_back((bucket, set));
        }
    }

    pub fn check(
        &mut self,
        input: &Batch,
        column: &str,
        watermark: i64,
        out: &mut Failures,
    ) -> Result<(), PluginError> {
        self.advance(watermark);
        let col = input.text(column)?;
        let Some(((_, open), older)) = self.buckets.make_contiguous().split_last_mut() else {
            return Ok(());
        };
        for row in 0..input.len() {
            if out.failed(row) {
                continue;
            }
            let Some(v) = col.get(row) else { continue };
            let fp = fingerprint(v);
            // The open bucket is probed once: `insert` says whether it held the value.
            let seen = older.iter().any(|(_, set)| set.contains(&fp)) || !open.insert(fp);
            if seen {
                out.fail(
                    row,
                    format!("{column} `{v}` was already seen within the window"),
                );
            }
        }
        Ok(())
    }
}
