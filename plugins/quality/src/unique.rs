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

/// A bucket no value is added to any more (the window has moved on): its fingerprints
/// sorted, 16 bytes each and nothing more, with where each run of the same leading
/// `bits` bits starts. Fingerprints are uniform, so a run holds about four: a lookup
/// reads one entry of `starts` and a cache line or two of `values`, like a hash set, in
/// three quarters of a set's memory; and a snapshot copies it as it is, without sorting.
struct Frozen {
    bits: u32,
    starts: Vec<u32>,
    values: Vec<Fingerprint>,
}

impl Frozen {
    fn new(set: Set) -> Frozen {
        let mut values: Vec<Fingerprint> = set.into_iter().collect();
        values.sort_unstable();
        let bits = (values.len() / 4)
            .next_power_of_two()
            .trailing_zeros()
            .min(20);
        let mut starts = vec![0u32; (1 << bits) + 1];
        for &v in &values {
            starts[prefix(v, bits) + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        Frozen {
            bits,
            starts,
            values,
        }
    }

    fn contains(&self, fp: Fingerprint) -> bool {
        let p = prefix(fp, self.bits);
        let run = self.starts[p] as usize..self.starts[p + 1] as usize;
        self.values[run].contains(&fp)
    }
}

/// The leading `bits` bits of `fp`.
fn prefix(fp: Fingerprint, bits: u32) -> usize {
    fp.checked_shr(128 - bits).unwrap_or(0) as usize
}

/// The fingerprints first seen in one bucket of time.
enum Bucket {
    /// The current bucket, which takes new values.
    Open(Set),
    Frozen(Frozen),
}

impl Bucket {
    fn contains(&self, fp: Fingerprint) -> bool {
        match self {
            Bucket::Open(set) => set.contains(&fp),
            Bucket::Frozen(f) => f.contains(fp),
        }
    }

    fn len(&self) -> usize {
        match self {
            Bucket::Open(set) => set.len(),
            Bucket::Frozen(f) => f.values.len(),
        }
    }

    fn freeze(&mut self) {
        if let Bucket::Open(set) = self {
            *self = Bucket::Frozen(Frozen::new(std::mem::take(set)));
        }
    }
}

pub struct Unique {
    window_ms: i64,
    /// (bucket start, fingerprints first seen in it), oldest first; only the last is open.
    buckets: VecDeque<(i64, Bucket)>,
}

/// What [`Unique`] remembers, as its snapshot holds it: buckets oldest first, each with
/// its fingerprints sorted (so that the same state always gives the same bytes).
pub type UniqueState = Vec<(i64, Vec<Fingerprint>)>;

impl Unique {
    /// Appends each bucket (oldest first) as postcard writes an `(i64, bytes)`: its
    /// start, then its fingerprints as 16 little-endian bytes each, sorted (so that the
    /// same state always gives the same bytes): a frozen bucket is already; the open one
    /// is sorted in place in `out`.
    pub fn write_sorted(&self, mut out: Vec<u8>) -> postcard::Result<Vec<u8>> {
        for (start, bucket) in &self.buckets {
            out = postcard::to_extend(&(*start, bucket.len() * 16), out)?;
            match bucket {
                Bucket::Frozen(f) => out.extend(f.values.iter().flat_map(|v| v.to_le_bytes())),
                Bucket::Open(set) => {
                    let from = out.len();
                    out.extend(set.iter().flat_map(|f| f.to_le_bytes()));
                    let (values, _) = out[from..].as_chunks_mut::<16>();
                    values.sort_unstable_by_key(|v| u128::from_le_bytes(*v));
                }
            }
        }
        Ok(out)
    }

    /// How many buckets, and the bytes their fingerprints take.
    pub fn size(&self) -> (usize, usize) {
        let values: usize = self.buckets.iter().map(|(_, b)| b.len()).sum();
        (self.buckets.len(), values * 16)
    }

    /// Takes the buckets of a snapshot: the last one open, the others frozen.
    pub fn set_state(&mut self, state: UniqueState) {
        self.buckets = state
            .into_iter()
            .map(|(start, values)| (start, Bucket::Open(values.into_iter().collect())))
            .collect();
        let open = self.buckets.len().saturating_sub(1);
        self.buckets
            .iter_mut()
            .take(open)
            .for_each(|(_, b)| b.freeze());
    }

    pub fn new(window_ms: i64) -> Self {
        Unique {
            window_ms: window_ms.max(1),
            buckets: VecDeque::new(),
        }
    }

    /// Moves to the bucket of `watermark`, dropping buckets older than the window and
    /// freezing the one that was open.
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
            let expected = self.buckets.back().map_or(0, |(_, b)| b.len());
            if let Some((_, last)) = self.buckets.back_mut() {
                last.freeze();
            }
            let set = Set::with_capacity_and_hasher(expected, Default::default());
            self.buckets.push_back((bucket, Bucket::Open(set)));
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
        for row in 0..input.len() {
            if out.failed(row) {
                continue;
            }
            let Some(v) = col.get(row) else { continue };
            let fp = fingerprint(v);
            if self.buckets.iter().any(|(_, b)| b.contains(fp)) {
                out.fail(
                    row,
                    format!("{column} `{v}` was already seen within the window"),
                );
            } else if let Some((_, Bucket::Open(set))) = self.buckets.back_mut() {
                set.insert(fp);
            }
        }
        Ok(())
    }
}
