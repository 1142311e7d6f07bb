//! A batch cut into shares, one per shard: with `shard_by` each row goes to the shard of
//! its key (`route.rs` places keys; a key is the hash, CRC-32, of its values' bytes),
//! without it the rows are cut into consecutive runs.

use super::route::Router;
use crate::batch::{Envelope, Position};
use adstream_sdk::{Batch, Column, Strings, Values};
use std::sync::Arc;

/// One shard's rows of a cut: chosen by the processor, copied out by the shard itself on
/// its own thread, so that the shards copy at once (copying on the processor's thread
/// took 6–8 % of a two-shard run, while the other shard waited).
pub(super) struct Share {
    inputs: Arc<[Envelope]>,
    /// For each input, the rows of this share.
    picks: Vec<Vec<u32>>,
}

impl Share {
    /// The rows `picks` names of each of `inputs`.
    pub fn new(inputs: Arc<[Envelope]>, picks: Vec<Vec<u32>>) -> Share {
        Share { inputs, picks }
    }

    pub fn take(self) -> Vec<Envelope> {
        (self.inputs.iter().zip(&self.picks))
            .map(|(env, rows)| env.take(rows))
            .collect()
    }
}

/// The input's source positions when keyed by `by` (and every row has one: the shards'
/// outputs are put back in input order by them, see `shards::merge`), and its share for
/// each shard.
pub(super) fn cut(
    inputs: Vec<Envelope>,
    by: &[String],
    router: &mut Router,
    n: usize,
) -> (Option<Vec<Position>>, Vec<Share>) {
    let gather = |mut all: Vec<Position>, e: &Envelope| {
        all.extend(e.positions.as_ref()?);
        Some(all)
    };
    let positions = match by.is_empty() {
        true => None,
        false => inputs.iter().try_fold(Vec::new(), gather),
    };
    let mut picks: Vec<Vec<Vec<u32>>> = (0..n).map(|_| Vec::new()).collect();
    for env in &inputs {
        for (share, rows) in picks.iter_mut().zip(split(env, by, router, n)) {
            share.push(rows);
        }
    }
    let inputs: Arc<[Envelope]> = inputs.into();
    let shares = (picks.into_iter())
        .map(|picks| Share {
            inputs: inputs.clone(),
            picks,
        })
        .collect();
    (positions, shares)
}

/// The rows of `env` for each of `n` shards (some may have none).
fn split(env: &Envelope, by: &[String], router: &mut Router, n: usize) -> Vec<Vec<u32>> {
    let rows = env.rows();
    let mut picks: Vec<Vec<u32>> = (0..n).map(|_| Vec::new()).collect();
    if by.is_empty() {
        let per = rows.div_ceil(n).max(1);
        for (r, pick) in (0..rows as u32).zip((0..rows).map(|r| r / per)) {
            picks[pick].push(r);
        }
    } else {
        let shards = router.route(&row_hashes(&env.batch, by), n);
        for (r, shard) in shards.into_iter().enumerate() {
            picks[shard as usize].push(r as u32);
        }
    }
    picks
}

/// A hash per row of the values in the columns `by`.
fn row_hashes(batch: &Batch, by: &[String]) -> Vec<u64> {
    const NULL: u32 = 0x9e37_79b9;
    let mut hashes = vec![0u64; batch.len()];
    for col in by.iter().filter_map(|name| batch.column(name)) {
        // A dictionary's values are hashed once per batch, not once per row.
        let entries: Vec<u32> = match &col.values {
            Values::Dictionary(d) => (0..d.values.offsets.len().saturating_sub(1))
                .map(|i| text_hash(&d.values, i))
                .collect(),
            _ => Vec::new(),
        };
        for (r, h) in hashes.iter_mut().enumerate() {
            let v = match &col.values {
                _ if !col.is_valid(r) => NULL,
                Values::Dictionary(d) => entries[d.keys[r] as usize],
                _ => value_hash(col, r),
            };
            *h = (*h ^ u64::from(v)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    // Spread the bits, so that a small shard count sees all of them.
    hashes.iter().map(|&h| h ^ (h >> 29)).collect()
}

fn text_hash(s: &Strings, i: usize) -> u32 {
    let (a, b) = (s.offsets[i] as usize, s.offsets[i + 1] as usize);
    crc32fast::hash(&s.bytes[a..b])
}

fn value_hash(col: &Column, r: usize) -> u32 {
    match &col.values {
        Values::Int64(v) | Values::TimestampMs(v) => crc32fast::hash(&v[r].to_le_bytes()),
        Values::Float64(v) => crc32fast::hash(&v[r].to_bits().to_le_bytes()),
        Values::Boolean(v) => crc32fast::hash(&[v[r]]),
        Values::Text(s) => text_hash(s, r),
        Values::Dictionary(d) => text_hash(&d.values, d.keys[r] as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use adstream_sdk::{DictBuilder, I64Builder};

    fn batch(countries: &[&str]) -> Envelope {
        let mut c = DictBuilder::default();
        let mut i = I64Builder::default();
        for (n, v) in countries.iter().enumerate() {
            c.push(v);
            i.push(n as i64);
        }
        let batch = Batch::from_columns(vec![c.finish("country"), i.finish("n")]).unwrap();
        Envelope {
            batch,
            positions: None,
        }
    }

    /// `env` cut for two shards, each share taken.
    fn pieces(env: Envelope, by: &[String], router: &mut Router) -> Vec<Envelope> {
        let (_, shares) = cut(vec![env], by, router, 2);
        shares.into_iter().flat_map(Share::take).collect()
    }

    fn column(env: &Envelope, name: &str) -> Vec<String> {
        let b = &env.batch;
        (0..b.len())
            .map(|r| crate::batch::encode::row_json(b, r))
            .map(|row| {
                let v: serde_json::Value = serde_json::from_str(&row).unwrap();
                v[name].to_string()
            })
            .collect()
    }

    #[test]
    fn a_key_goes_to_the_same_shard_in_every_batch() {
        let by = ["country".to_string()];
        let mut shard_of = std::collections::BTreeMap::new();
        let mut router = Router::default();
        let batches = [
            vec!["KR", "US", "JP", "KR", "DE"],
            vec!["DE", "JP", "US", "KR", "FR"],
        ];
        for countries in batches {
            let parts = pieces(batch(&countries), &by, &mut router);
            assert_eq!(parts.iter().map(Envelope::rows).sum::<usize>(), 5);
            for (shard, part) in parts.iter().enumerate() {
                for key in column(part, "country") {
                    assert_eq!(
                        *shard_of.entry(key.clone()).or_insert(shard),
                        shard,
                        "{key}"
                    );
                }
            }
        }
        let used: std::collections::BTreeSet<_> = shard_of.values().collect();
        assert_eq!(
            used.len(),
            2,
            "five keys all hashed to one shard: {shard_of:?}"
        );
    }

    #[test]
    fn without_keys_rows_are_cut_into_runs_in_order() {
        let parts = pieces(
            batch(&["a", "b", "c", "d", "e"]),
            &[],
            &mut Router::default(),
        );
        let runs: Vec<Vec<String>> = parts.iter().map(|p| column(p, "n")).collect();
        assert_eq!(runs, vec![vec!["0", "1", "2"], vec!["3", "4"]]);
    }
}
