//! `quality`: a validate plugin with data-quality rules in the spirit of Great
//! Expectations. Each rejected row carries the first rule it broke and a message; the host
//! sends it to the dead letters and passes the other rows on.
//!
//! ```toml
//! config = { rules = [
//!   { rule = "not_null", columns = ["event_id", "country"] },
//!   { rule = "in_set", column = "event_type", values = ["request", "impression"] },
//!   { rule = "in_range", column = "revenue", min = 0.0, max = 50.0 },
//!   { rule = "matches", column = "country", pattern = "^[A-Z]{2}$" },
//!   { rule = "fresh", column = "event_time", max_lag = "5m" },
//!   { rule = "unique", column = "event_id", window = "1m" },
//!   { rule = "items_total", column = "total", items = "items", when = { event_type = ["order"] } },
//! ] }
//! ```
//!
//! `when` limits a rule to the rows whose column holds one of the values.

mod items;
mod rules;
mod unique;
mod when;

use adstream_sdk::{
    Batch, ConfigExt, PluginError, Rejection, Setup, StatefulValidate, Validate, count,
    export_stateful_validate,
};
use rules::{Rule, RuleConfig};
use serde::Deserialize;
use when::When;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    rules: Vec<Entry>,
}

/// A rule and the rows it applies to.
#[derive(Deserialize)]
struct Entry {
    #[serde(flatten)]
    rule: RuleConfig,
    when: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

/// The first failure of each row: later rules skip rows that already failed, so that
/// `unique` remembers only values it accepted.
pub struct Failures {
    rule: usize,
    rows: Vec<Option<(usize, String)>>,
    /// Rows the current rule does not apply to (its `when`); empty when it applies to all.
    skip: Vec<bool>,
}

impl Failures {
    /// Whether `row` already broke an earlier rule, or the current rule skips it.
    pub fn failed(&self, row: usize) -> bool {
        self.rows[row].is_some() || self.skip.get(row) == Some(&true)
    }

    /// Records that `row` broke the current rule.
    pub fn fail(&mut self, row: usize, message: String) {
        if !self.failed(row) {
            self.rows[row] = Some((self.rule, message));
        }
    }
}

/// The configured rules, checked in the order the pipeline file lists them.
pub struct Quality {
    rules: Vec<Rule>,
    /// Each rule's `when`, if it has one.
    when: Vec<Option<When>>,
}

impl Validate for Quality {
    fn configure(setup: &Setup) -> Result<Self, PluginError> {
        let cfg: Config = setup.config()?;
        let mut rules = Vec::new();
        let mut when = Vec::new();
        for (i, entry) in cfg.rules.into_iter().enumerate() {
            let at = |e: PluginError| match e {
                PluginError::InvalidConfig(m) => {
                    PluginError::InvalidConfig(format!("rules[{i}]: {m}"))
                }
                PluginError::SchemaMismatch(m) => {
                    PluginError::SchemaMismatch(format!("rules[{i}]: {m}"))
                }
                other => other,
            };
            rules.push(Rule::compile(entry.rule, &setup.input).map_err(at)?);
            when.push(
                entry
                    .when
                    .map(|w| When::compile(w, &setup.input))
                    .transpose()
                    .map_err(at)?,
            );
        }
        // Only the columns the rules name cross the boundary.
        let mut columns: Vec<&str> = rules.iter().flat_map(Rule::columns).collect();
        columns.extend(when.iter().flatten().map(When::column));
        adstream_sdk::reads(&columns);
        Ok(Quality { rules, when })
    }

    fn validate(&mut self, input: &Batch, watermark: i64) -> Result<Vec<Rejection>, PluginError> {
        let mut failures = Failures {
            rule: 0,
            rows: vec![None; input.len()],
            skip: Vec::new(),
        };
        for (i, rule) in self.rules.iter_mut().enumerate() {
            failures.rule = i;
            failures.skip = match &self.when[i] {
                Some(w) => w.skipped(input)?,
                None => Vec::new(),
            };
            rule.check(input, watermark, &mut failures)?;
        }
        let mut per_rule = vec![0u64; self.rules.len()];
        let rejections: Vec<Rejection> = failures
            .rows
            .into_iter()
            .enumerate()
            .filter_map(|(row, f)| {
                let (i, message) = f?;
                per_rule[i] += 1;
                Some(Rejection {
                    row: row as u32,
                    rule: self.rules[i].name().to_string(),
                    message,
                })
            })
            .collect();
        for (rule, n) in self.rules.iter().zip(per_rule) {
            if n > 0 {
                count(&format!("rejected:{}", rule.name()), n);
            }
        }
        Ok(rejections)
    }
}

/// The snapshot: each `unique` rule's state, by the rule's place in the list.
struct State {
    unique: Vec<(usize, unique::UniqueState)>,
}

/// Marks a version 2 snapshot: postcard, each bucket's fingerprints as one byte string of
/// 16 little-endian bytes each. Version 1 was JSON with the values spelled out.
const MAGIC: &[u8] = b"quality/2\n";

type Wire<B> = Vec<(usize, Vec<(i64, B)>)>;

/// A version 1 snapshot, still read so that an older build hands its state over.
#[derive(Deserialize)]
struct StateV1 {
    unique: Wire<Vec<String>>,
}

impl State {
    fn read(bytes: &[u8]) -> Result<State, String> {
        if let Some(v2) = bytes.strip_prefix(MAGIC) {
            let wire: Wire<&[u8]> = postcard::from_bytes(v2).map_err(|e| e.to_string())?;
            let fps = |b: &[u8]| {
                b.len()
                    .is_multiple_of(16)
                    .then(|| {
                        b.chunks_exact(16)
                            .map(|c| u128::from_le_bytes(c.try_into().unwrap()))
                            .collect()
                    })
                    .ok_or("a bucket's bytes are not whole fingerprints")
            };
            let unique = (wire.into_iter())
                .map(|(i, buckets)| {
                    let buckets = buckets.into_iter().map(|(start, b)| Ok((start, fps(b)?)));
                    Ok((i, buckets.collect::<Result<_, String>>()?))
                })
                .collect::<Result<_, String>>()?;
            return Ok(State { unique });
        }
        let v1: StateV1 = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let hashed = |buckets: Vec<(i64, Vec<String>)>| {
            (buckets.into_iter())
                .map(|(start, values)| {
                    (
                        start,
                        values.iter().map(|v| unique::fingerprint(v)).collect(),
                    )
                })
                .collect()
        };
        Ok(State {
            unique: v1.unique.into_iter().map(|(i, b)| (i, hashed(b))).collect(),
        })
    }
}

impl StatefulValidate for Quality {
    /// The bytes of `postcard` for a [`Wire`] of byte strings, written by hand so that
    /// each bucket's fingerprints are copied once, straight into the output, and sorted
    /// there: a large state costs its own size once more in the plugin's memory, not
    /// twice (linear memory never shrinks, so a snapshot's peak stays resident).
    fn snapshot(&self) -> Result<Vec<u8>, PluginError> {
        let rules: Vec<(usize, &unique::Unique)> = (self.rules.iter().enumerate())
            .filter_map(|(i, r)| Some((i, r.unique_ref()?)))
            .collect();
        // Values, plus at most 10 bytes for each of a bucket's two numbers.
        let size = |u: &unique::Unique| u.size().0 * 20 + u.size().1 + 20;
        let mut out = Vec::with_capacity(
            MAGIC.len() + 10 + rules.iter().map(|(_, u)| size(u)).sum::<usize>(),
        );
        out.extend_from_slice(MAGIC);
        let err = |e: postcard::Error| PluginError::Other(format!("snapshot: {e}"));
        out = postcard::to_extend(&rules.len(), out).map_err(err)?;
        for (i, unique) in rules {
            out = postcard::to_extend(&(i, unique.size().0), out).map_err(err)?;
            out = unique.write_sorted(out).map_err(err)?;
        }
        Ok(out)
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), PluginError> {
        let state = State::read(state)
            .map_err(|e| PluginError::InvalidState(format!("not a quality snapshot: {e}")))?;
        for (i, s) in state.unique {
            // A rule list that changed since the snapshot keeps what still lines up.
            if let Some(u) = self.rules.get_mut(i).and_then(Rule::unique) {
                u.set_state(s);
            }
        }
        Ok(())
    }
}

export_stateful_validate!(Quality);

#[cfg(test)]
mod tests;
