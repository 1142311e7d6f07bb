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
//! ] }
//! ```

mod rules;
mod unique;

use adstream_sdk::{
    Batch, ConfigExt, PluginError, Rejection, Setup, StatefulValidate, Validate, count,
    export_stateful_validate,
};
use rules::{Rule, RuleConfig};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    rules: Vec<RuleConfig>,
}

/// The first failure of each row: later rules skip rows that already failed, so that
/// `unique` remembers only values it accepted.
pub struct Failures {
    rule: usize,
    rows: Vec<Option<(usize, String)>>,
}

impl Failures {
    /// Whether `row` already broke an earlier rule.
    pub fn failed(&self, row: usize) -> bool {
        self.rows[row].is_some()
    }

    /// Records that `row` broke the current rule.
    pub fn fail(&mut self, row: usize, message: String) {
        if self.rows[row].is_none() {
            self.rows[row] = Some((self.rule, message));
        }
    }
}

/// The configured rules, checked in the order the pipeline file lists them.
pub struct Quality {
    rules: Vec<Rule>,
}

impl Validate for Quality {
    fn configure(setup: &Setup) -> Result<Self, PluginError> {
        let cfg: Config = setup.config()?;
        let rules = cfg
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                Rule::compile(r, &setup.input).map_err(|e| match e {
                    PluginError::InvalidConfig(m) => {
                        PluginError::InvalidConfig(format!("rules[{i}]: {m}"))
                    }
                    PluginError::SchemaMismatch(m) => {
                        PluginError::SchemaMismatch(format!("rules[{i}]: {m}"))
                    }
                    other => other,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Quality { rules })
    }

    fn validate(&mut self, input: &Batch, watermark: i64) -> Result<Vec<Rejection>, PluginError> {
        let mut failures = Failures {
            rule: 0,
            rows: vec![None; input.len()],
        };
        for (i, rule) in self.rules.iter_mut().enumerate() {
            failures.rule = i;
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
#[derive(serde::Serialize, Deserialize)]
struct State {
    unique: Vec<(usize, unique::UniqueState)>,
}

impl StatefulValidate for Quality {
    fn snapshot(&self) -> Result<Vec<u8>, PluginError> {
        let mut rules = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            if let Some(u) = r.unique_ref() {
                rules.push((i, u.state()));
            }
        }
        serde_json::to_vec(&State { unique: rules })
            .map_err(|e| PluginError::Other(format!("snapshot: {e}")))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), PluginError> {
        let state: State = serde_json::from_slice(state)
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
