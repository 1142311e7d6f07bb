//! A fast, deterministic hash map for plugin state.
//!
//! std's default hasher seeds itself from the system's randomness at every start, which
//! makes iteration order (and so output order) differ between runs of the same input;
//! plugins must give the same output for the same input, so they hash with foldhash and a
//! fixed seed instead. (An FxHash used before collapsed ids that differ only in their last
//! characters, `u0000001`, `u0000002`, ..., into a few dozen buckets: a million such keys
//! made each lookup scan thousands of entries.)

use std::collections::HashMap;

/// foldhash, seeded with a constant.
pub type FixedHasher = foldhash::fast::FixedState;

/// A `HashMap` with [`FixedHasher`].
pub type FastMap<K, V> = HashMap<K, V, FixedHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn ids_that_differ_at_the_end_spread_over_the_buckets() {
        let h = FixedHasher::default();
        let buckets: std::collections::HashSet<u64> = (0..10_000)
            .map(|i| h.hash_one(format!("u{i:07}")) & 0xffff)
            .collect();
        assert!(buckets.len() > 8_000, "{} of 65536 buckets", buckets.len());
        assert_eq!(
            h.hash_one("x"),
            FixedHasher::default().hash_one("x"),
            "deterministic"
        );
    }
}
