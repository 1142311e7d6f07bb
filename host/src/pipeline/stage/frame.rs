//! A spread stage's snapshot: the frame, the number of lanes, each lane's partition and
//! state (length u32::MAX: none), then the merger's. The cut of one partition takes its
//! lane's part of it (`state_of_partition`).

/// Marks a checkpointed state as one per partition, then the merger's.
pub(super) const FRAME: &[u8; 8] = b"ADPARTS1";

pub(super) fn write(out: &mut Vec<u8>, state: Option<&[u8]>) {
    let len = state.map_or(u32::MAX, |s| s.len() as u32);
    out.extend(len.to_le_bytes());
    out.extend(state.into_iter().flatten());
}

/// Reads a framed snapshot from the front.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let (head, tail) = (self.0.get(..len)?, self.0.get(len..)?);
        self.0 = tail;
        Some(head)
    }

    fn word(&mut self) -> Option<[u8; 4]> {
        self.take(4)?.try_into().ok()
    }

    /// A state written by [`write`]: `Some(None)` for none.
    fn state(&mut self) -> Option<Option<&'a [u8]>> {
        match u32::from_le_bytes(self.word()?) {
            u32::MAX => Some(None),
            len => Some(Some(self.take(len as usize)?)),
        }
    }
}

/// What of a stage's snapshot belongs to `partition`'s cut: its lane's state, framed as
/// a snapshot of that lane alone (which restores that lane and leaves the others be), and
/// the merger's in the cut of the partition whose owner merges (`merging`,
/// `pipeline/merge/`). A stage not spread (a topic of one partition, a stage after an
/// aggregate) is merged state: whole, in that cut only. `None` when there is nothing.
pub fn state_of_partition(state: &[u8], partition: i32, merging: bool) -> Option<Vec<u8>> {
    let Some((states, merger)) = unframe(state) else {
        return merging.then(|| state.to_vec());
    };
    let own = states.into_iter().find(|&(id, _)| id == partition);
    let own = own.and_then(|(_, s)| s);
    let merger = merger.filter(|_| merging);
    if own.is_none() && merger.is_none() {
        return None;
    }
    let mut out = FRAME.to_vec();
    out.extend(u32::from(own.is_some()).to_le_bytes());
    if let Some(own) = own {
        out.extend(partition.to_le_bytes());
        write(&mut out, Some(own));
    }
    write(&mut out, merger);
    Some(out)
}

/// A partition's state.
type PartitionState<'a> = (i32, Option<&'a [u8]>);

/// Each partition's state and the merger's, from a framed snapshot; `None` if `state` is
/// not one.
pub(super) fn unframe(state: &[u8]) -> Option<(Vec<PartitionState<'_>>, Option<&[u8]>)> {
    let mut c = Cursor(state.strip_prefix(FRAME.as_slice())?);
    let n = u32::from_le_bytes(c.word()?);
    let mut states = Vec::new();
    for _ in 0..n {
        let id = i32::from_le_bytes(c.word()?);
        states.push((id, c.state()?));
    }
    let merger = c.state()?;
    Some((states, merger))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framed_partitions_come_back_as_they_went() {
        let mut out = FRAME.to_vec();
        out.extend(2u32.to_le_bytes());
        out.extend(3i32.to_le_bytes());
        write(&mut out, Some(b"abc"));
        out.extend(7i32.to_le_bytes());
        write(&mut out, None);
        write(&mut out, Some(b"merger"));
        let (states, merger) = unframe(&out).unwrap();
        assert_eq!(states, vec![(3, Some(&b"abc"[..])), (7, None)]);
        assert_eq!(merger, Some(&b"merger"[..]));
        assert!(unframe(b"a plain state").is_none());
        assert!(unframe(&out[..out.len() - 3]).is_none());
        let three = state_of_partition(&out, 3, false).unwrap();
        assert_eq!(
            unframe(&three).unwrap(),
            (vec![(3, Some(&b"abc"[..]))], None)
        );
        let seven = state_of_partition(&out, 7, true).unwrap();
        assert_eq!(unframe(&seven).unwrap(), (vec![], Some(&b"merger"[..])));
        assert_eq!(state_of_partition(&out, 7, false), None, "no state");
        assert_eq!(state_of_partition(&out, 9, false), None, "no lane");
        assert_eq!(state_of_partition(b"plain", 0, true).unwrap(), b"plain");
        assert_eq!(state_of_partition(b"plain", 1, false), None);
    }
}
