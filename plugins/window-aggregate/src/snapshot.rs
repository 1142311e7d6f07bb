//! The snapshot format. Version 2 is postcard: the dimension values once in a table, then
//! per open window its start and its groups as two byte arrays (keys as ids into the
//! table, measures as raw little-endian words) — nearly a copy of the state, so that a
//! million groups are written in milliseconds. `size_ms` and `group_by` are kept so that
//! a snapshot is never restored into a stage that would misread it. Version 1 (JSON, each
//! group's values spelled out) is still read, so that an older build hands its state over.

use crate::groups::Groups;
use crate::merge::Partials;
use crate::state::Windows;
use crate::sums::Sums;
use adstream_sdk::PluginError;
use serde::{Deserialize, Serialize};

/// Bytes written as one byte string (a `&[u8]` field would be written byte by byte).
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

#[derive(Serialize)]
struct Write<'a> {
    v: u32,
    size_ms: i64,
    group_by: &'a [String],
    closed_until: i64,
    names: &'a [String],
    windows: Vec<(i64, Bytes<'a>, Bytes<'a>)>,
}

#[derive(Deserialize)]
struct Read<'a> {
    v: u32,
    size_ms: i64,
    group_by: Vec<String>,
    closed_until: i64,
    names: Vec<String>,
    #[serde(borrow)]
    windows: Vec<(i64, &'a [u8], &'a [u8])>,
}

/// Version 1, JSON.
#[derive(Deserialize)]
struct V1 {
    v: u32,
    size_ms: i64,
    group_by: Vec<String>,
    closed_until: i64,
    windows: Vec<V1Window>,
}

#[derive(Deserialize)]
struct V1Window {
    start: i64,
    dims: Vec<String>,
    sums: Sums,
}

/// Version 3: a merging instance's partials beside its windows (a version 2 snapshot).
#[derive(Serialize)]
struct WithPartials<'a> {
    v: u32,
    windows: Bytes<'a>,
    partials: &'a Partials,
}

#[derive(Deserialize)]
struct ReadPartials<'a> {
    v: u32,
    windows: &'a [u8],
    partials: Partials,
}

/// The snapshot of `windows`, with `partials` when there are any (an instance that
/// aggregates events writes version 2, as before merging existed).
pub fn with_partials(windows: Vec<u8>, partials: &Partials) -> Result<Vec<u8>, PluginError> {
    if partials.open.is_empty() {
        return Ok(windows);
    }
    let snap = WithPartials {
        v: 3,
        windows: Bytes(&windows),
        partials,
    };
    postcard::to_allocvec(&snap).map_err(|e| PluginError::Other(e.to_string()))
}

/// The windows' snapshot and the partials in `bytes` (none before version 3).
pub fn split_partials(bytes: &[u8]) -> Result<(&[u8], Partials), PluginError> {
    // postcard writes the version first, as one byte while it is under 128.
    if bytes.first() != Some(&3) {
        return Ok((bytes, Partials::default()));
    }
    let snap: ReadPartials = postcard::from_bytes(bytes).map_err(unreadable)?;
    debug_assert_eq!(snap.v, 3);
    Ok((snap.windows, snap.partials))
}

fn unreadable(e: impl std::fmt::Display) -> PluginError {
    PluginError::InvalidState(format!("unreadable snapshot: {e}"))
}

impl Windows {
    pub fn snapshot(&self, group_by: &[String]) -> Result<Vec<u8>, PluginError> {
        let arrays: Vec<(i64, Vec<u8>, Vec<u8>)> = self
            .open
            .iter()
            .map(|(&start, g)| (start, g.keys_bytes(), g.sums_bytes()))
            .collect();
        let snap = Write {
            v: 2,
            size_ms: self.size_ms,
            group_by,
            closed_until: self.closed_until,
            names: self.interner.names(),
            windows: arrays
                .iter()
                .map(|(s, k, v)| (*s, Bytes(k), Bytes(v)))
                .collect(),
        };
        postcard::to_allocvec(&snap).map_err(|e| PluginError::Other(e.to_string()))
    }

    /// Replaces the windows with a snapshot's (either version).
    pub fn restore(&mut self, bytes: &[u8], group_by: &[String]) -> Result<(), PluginError> {
        if bytes.first() == Some(&b'{') {
            return self.restore_v1(bytes, group_by);
        }
        let snap: Read = postcard::from_bytes(bytes).map_err(unreadable)?;
        self.check(snap.v, snap.size_ms, &snap.group_by, group_by)?;
        let mut fresh = Windows::new(self.size_ms, self.lateness_ms, group_by.len());
        fresh.closed_until = snap.closed_until;
        for name in &snap.names {
            fresh.interner.id(name);
        }
        for (start, keys, sums) in snap.windows {
            let groups = Groups::from_bytes(group_by.len(), keys, sums)
                .filter(|g| g.keys.iter().all(|&k| (k as usize) < snap.names.len()))
                .ok_or_else(|| unreadable("a window's groups do not fit its table"))?;
            fresh.open.insert(start, groups);
        }
        *self = fresh;
        Ok(())
    }

    fn restore_v1(&mut self, bytes: &[u8], group_by: &[String]) -> Result<(), PluginError> {
        let snap: V1 = serde_json::from_slice(bytes).map_err(unreadable)?;
        self.check(snap.v + 1, snap.size_ms, &snap.group_by, group_by)?;
        let mut fresh = Windows::new(self.size_ms, self.lateness_ms, group_by.len());
        fresh.closed_until = snap.closed_until;
        for w in snap.windows {
            let key: Vec<u32> = w.dims.iter().map(|d| fresh.interner.id(d)).collect();
            *fresh
                .slot(w.start, &key)
                .ok_or_else(|| unreadable("a window closed twice"))? = w.sums;
        }
        *self = fresh;
        Ok(())
    }

    /// A snapshot of another version, window or grouping is refused, not misread.
    fn check(
        &self,
        v: u32,
        size_ms: i64,
        theirs: &[String],
        ours: &[String],
    ) -> Result<(), PluginError> {
        if v != 2 || size_ms != self.size_ms || theirs != ours {
            return Err(PluginError::InvalidState(format!(
                "snapshot v{v} holds {size_ms} ms windows by {theirs:?}; this stage has {} ms windows by {ours:?}",
                self.size_ms
            )));
        }
        Ok(())
    }
}
