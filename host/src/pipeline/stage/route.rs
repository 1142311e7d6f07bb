//! Which shard a keyed row goes to. A key (the hash of its `shard_by` values) keeps the
//! shard it was first given, since its state lives there. A key seen for the first time
//! is placed, largest first, on the shard with the fewest rows of the batch so far: with
//! few keys of unequal size (20 country × format pairs, the largest 14 % of the events),
//! a hash alone gave one shard 70 % of the rows, and the other waited.
//!
//! Placements are remembered for up to [`CAPACITY`] keys and checkpointed with the
//! shards' states; later keys go by hash, as every key did before placement: skew matters
//! when keys are few, and many keys spread evenly by hash.

use adstream_sdk::FastMap;

/// How many keys keep a placement.
pub(super) const CAPACITY: usize = 4096;

/// A row whose key is placed after the first pass.
const UNPLACED: u32 = u32::MAX;

#[derive(Clone, Default, Debug, PartialEq)]
pub(super) struct Router {
    placed: FastMap<u64, u32>,
    /// Every key by hash: the shards' states came from a checkpoint written before keys
    /// were placed, so that is where each key's state is.
    by_hash_only: bool,
}

impl Router {
    /// Each row's shard, out of `n`, from its key's hash; places the keys not seen before.
    pub fn route(&mut self, hashes: &[u64], n: usize) -> Vec<u32> {
        let by_hash = |h: u64| (h % n as u64) as u32;
        if self.by_hash_only {
            return hashes.iter().map(|&h| by_hash(h)).collect();
        }
        let room = self.placed.len() < CAPACITY;
        let mut load = vec![0usize; n];
        let mut new: FastMap<u64, usize> = FastMap::default();
        let mut shards: Vec<u32> = hashes
            .iter()
            .map(|&h| {
                let shard = match self.placed.get(&h) {
                    Some(&s) => s,
                    None if room => {
                        *new.entry(h).or_default() += 1;
                        return UNPLACED;
                    }
                    None => by_hash(h),
                };
                load[shard as usize] += 1;
                shard
            })
            .collect();
        if new.is_empty() {
            return shards;
        }
        self.place(new, &mut load, n);
        for (s, h) in shards
            .iter_mut()
            .zip(hashes)
            .filter(|(s, _)| **s == UNPLACED)
        {
            *s = self.placed.get(h).copied().unwrap_or_else(|| by_hash(*h));
        }
        shards
    }

    /// Longest first onto the lightest shard (ties: the lower hash, the lower shard), so
    /// the same batches always give the same placements.
    fn place(&mut self, new: FastMap<u64, usize>, load: &mut [usize], n: usize) {
        let mut new: Vec<(u64, usize)> = new.into_iter().collect();
        new.sort_unstable_by_key(|&(h, rows)| (std::cmp::Reverse(rows), h));
        for (h, rows) in new {
            let shard = match self.placed.len() < CAPACITY {
                true => {
                    let lightest = (0..n).min_by_key(|&s| load[s]).unwrap_or(0);
                    self.placed.insert(h, lightest as u32);
                    lightest
                }
                false => (h % n as u64) as usize,
            };
            load[shard] += rows;
        }
    }

    /// The placements as a checkpoint keeps them: their count, then (hash, shard) pairs
    /// in hash order, little-endian.
    pub fn write(&self, out: &mut Vec<u8>) {
        let mut placed: Vec<(&u64, &u32)> = self.placed.iter().collect();
        placed.sort_unstable();
        out.extend((placed.len() as u32).to_le_bytes());
        for (h, s) in placed {
            out.extend(h.to_le_bytes());
            out.extend(s.to_le_bytes());
        }
    }

    /// Placements `write` wrote, for `n` shards; `None` if the bytes are not that.
    pub fn read(bytes: &[u8], n: usize) -> Option<Router> {
        let (count, mut rest) = bytes.split_first_chunk::<4>()?;
        let count = u32::from_le_bytes(*count) as usize;
        if count > CAPACITY || rest.len() != count * 12 {
            return None;
        }
        let mut placed = FastMap::default();
        while let Some((h, tail)) = rest.split_first_chunk::<8>() {
            let (s, tail) = tail.split_first_chunk::<4>()?;
            let s = u32::from_le_bytes(*s);
            if s as usize >= n {
                return None;
            }
            placed.insert(u64::from_le_bytes(*h), s);
            rest = tail;
        }
        Some(Router {
            placed,
            by_hash_only: false,
        })
    }

    /// Takes `leader`'s placements, if it has more: placements are only ever added, so
    /// two routers fed the same keys differ only in how many they hold.
    pub fn follow(&mut self, leader: &Router) {
        if self.placed.len() != leader.placed.len() || self.by_hash_only != leader.by_hash_only {
            self.clone_from(leader);
        }
    }

    /// For states checkpointed when every key went by hash.
    pub fn by_hash() -> Router {
        Router {
            placed: FastMap::default(),
            by_hash_only: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of keys 0..sizes.len(), key k `sizes[k]` times, interleaved.
    fn rows(sizes: &[usize]) -> Vec<u64> {
        let most = sizes.iter().copied().max().unwrap_or(0);
        (0..most)
            .flat_map(|i| (0..sizes.len()).filter(move |&k| i < sizes[k]))
            .map(|k| (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect()
    }

    fn loads(shards: &[u32], n: usize) -> Vec<usize> {
        let mut load = vec![0; n];
        shards.iter().for_each(|&s| load[s as usize] += 1);
        load
    }

    #[test]
    fn skewed_keys_are_spread_evenly_and_stay_where_they_were_placed() {
        // Shaped like country × ad_format: a few large keys and a tail.
        let sizes = [
            700, 520, 480, 400, 350, 330, 300, 280, 260, 240, 200, 180, 150, 120,
        ];
        let hashes = rows(&sizes);
        let mut router = Router::default();
        let first = router.route(&hashes, 2);
        let load = loads(&first, 2);
        let total: usize = sizes.iter().sum();
        assert!(
            load.iter().all(|&l| l * 100 <= total * 51),
            "uneven: {load:?}"
        );
        // The same keys in another order and amount go where they went.
        let mut again: Vec<u64> = rows(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
        again.reverse();
        let second = router.route(&again, 2);
        for (h, s) in again.iter().zip(&second) {
            let before = hashes.iter().position(|x| x == h).unwrap();
            assert_eq!(*s, first[before]);
        }
    }

    #[test]
    fn a_new_key_goes_to_the_lighter_shard() {
        let mut router = Router::default();
        let a = router.route(&rows(&[10, 1]), 2);
        let light = 1 - a[0];
        let new_key = 2u64.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut next = rows(&[10, 1]);
        next.push(new_key);
        let b = router.route(&next, 2);
        assert_eq!(*b.last().unwrap(), light);
    }

    #[test]
    fn placements_are_bounded_and_later_keys_go_by_hash() {
        let mut router = Router::default();
        let many: Vec<u64> = (0..CAPACITY as u64 + 100).collect();
        let shards = router.route(&many, 3);
        assert_eq!(router.placed.len(), CAPACITY);
        let unplaced = many
            .iter()
            .zip(&shards)
            .filter(|(h, _)| !router.placed.contains_key(h));
        for (h, s) in unplaced {
            assert_eq!(u64::from(*s), h % 3);
        }
    }

    #[test]
    fn placements_come_back_from_their_bytes() {
        let mut router = Router::default();
        router.route(&rows(&[5, 4, 3, 2, 1]), 3);
        let mut bytes = Vec::new();
        router.write(&mut bytes);
        assert_eq!(Router::read(&bytes, 3), Some(router.clone()));
        assert_eq!(Router::read(&bytes, 2), None, "a shard out of range");
        assert_eq!(Router::read(&bytes[..bytes.len() - 1], 3), None);
        let mut again = Vec::new();
        Router::read(&bytes, 3).unwrap().write(&mut again);
        assert_eq!(again, bytes, "the same placements, the same bytes");
    }

    #[test]
    fn states_from_before_placement_keep_going_by_hash() {
        let mut router = Router::by_hash();
        let hashes: Vec<u64> = (0..50).collect();
        let shards = router.route(&hashes, 2);
        assert!(
            hashes
                .iter()
                .zip(&shards)
                .all(|(h, s)| u64::from(*s) == h % 2)
        );
    }
}
