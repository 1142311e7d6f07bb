//! The groups of one open window, laid out flat: each group's dimension ids back to back
//! in `keys`, its measures in `sums`, and an index from key to position. Folding a row is
//! one index lookup; a snapshot writes the two arrays nearly as they are.

use crate::sums::Sums;
use adstream_sdk::FastMap;

#[derive(Default)]
pub struct Groups {
    dims: usize,
    index: FastMap<Box<[u32]>, u32>,
    pub keys: Vec<u32>,
    pub sums: Vec<Sums>,
}

/// Bytes one group's measures take in a snapshot.
pub const SUMS_BYTES: usize = 7 * 8;

impl Groups {
    pub fn new(dims: usize) -> Self {
        Groups {
            dims,
            ..Default::default()
        }
    }

    pub fn len(&self) -> usize {
        self.sums.len()
    }

    /// The measures of group `key`, created empty on first use.
    pub fn slot(&mut self, key: &[u32]) -> &mut Sums {
        let at = self.at(key);
        &mut self.sums[at]
    }

    /// Where in `sums` group `key` is, created empty on first use.
    #[inline]
    pub fn at(&mut self, key: &[u32]) -> usize {
        match self.index.get(key) {
            Some(&at) => at as usize,
            None => self.insert(key, Sums::default()),
        }
    }

    fn insert(&mut self, key: &[u32], sums: Sums) -> usize {
        let at = self.sums.len();
        self.index.insert(key.into(), at as u32);
        self.keys.extend_from_slice(key);
        self.sums.push(sums);
        at
    }

    /// Every group: its key and measures.
    pub fn iter(&self) -> impl Iterator<Item = (&[u32], &Sums)> {
        let d = self.dims;
        self.sums
            .iter()
            .enumerate()
            .map(move |(i, s)| (&self.keys[i * d..(i + 1) * d], s))
    }

    /// The same groups with their keys mapped through `f` (dimension ids renumbered).
    pub fn remap(&self, mut f: impl FnMut(u32) -> u32) -> Groups {
        let mut out = Groups::new(self.dims);
        for (key, sums) in self.iter() {
            let key: Vec<u32> = key.iter().map(|&k| f(k)).collect();
            out.insert(&key, *sums);
        }
        out
    }

    /// The measures as snapshot bytes, little-endian, field by field.
    pub fn sums_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.sums.len() * SUMS_BYTES);
        for s in &self.sums {
            for v in [s.requests, s.fills, s.impressions, s.clicks, s.conversions] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&s.revenue.to_bits().to_le_bytes());
            out.extend_from_slice(&s.cost.to_bits().to_le_bytes());
        }
        out
    }

    /// The keys as snapshot bytes, little-endian.
    pub fn keys_bytes(&self) -> Vec<u8> {
        self.keys.iter().flat_map(|k| k.to_le_bytes()).collect()
    }

    /// Groups read back from [`keys_bytes`](Self::keys_bytes) and
    /// [`sums_bytes`](Self::sums_bytes); `None` if the two do not fit together.
    pub fn from_bytes(dims: usize, keys: &[u8], sums: &[u8]) -> Option<Groups> {
        let n = sums.len() / SUMS_BYTES;
        if !sums.len().is_multiple_of(SUMS_BYTES) || keys.len() != n * dims * 4 {
            return None;
        }
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        let mut out = Groups::new(dims);
        for (i, s) in sums.chunks_exact(SUMS_BYTES).enumerate() {
            let key: Vec<u32> = keys[i * dims * 4..(i + 1) * dims * 4]
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect();
            let w: Vec<u64> = s.chunks_exact(8).map(word).collect();
            let sums = Sums {
                requests: w[0] as i64,
                fills: w[1] as i64,
                impressions: w[2] as i64,
                clicks: w[3] as i64,
                conversions: w[4] as i64,
                revenue: f64::from_bits(w[5]),
                cost: f64::from_bits(w[6]),
            };
            out.insert(&key, sums);
        }
        Some(out)
    }
}
