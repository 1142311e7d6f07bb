//! A canary ends on its pipeline's processor thread. The supervisor notices on its tick:
//! it records the verdict in the change history and, when the candidate took over, shows
//! the stage's new version.

use super::{Supervisor, status::Change};
use crate::pipeline::CanaryState;

/// A canary's end as last recorded: its state, candidate hash and calls compared.
pub(super) type Seen = std::collections::BTreeMap<String, (CanaryState, String, u64)>;

impl Supervisor {
    pub(super) fn canaries(&mut self) {
        for p in 0..self.pipelines.len() {
            let stats = self.pipelines[p].running.stats();
            let ended: Vec<_> = stats
                .lock()
                .expect("stats lock")
                .stages
                .iter()
                .filter_map(|(stage, s)| Some((stage.clone(), s.canary.clone()?)))
                .filter(|(_, c)| c.state != CanaryState::Comparing)
                .collect();
            for (stage, c) in ended {
                let now = (c.state, c.hash.clone(), c.calls);
                if self.pipelines[p].canaries.get(&stage) == Some(&now) {
                    continue;
                }
                self.pipelines[p].canaries.insert(stage.clone(), now);
                let m = &self.pipelines[p];
                let accepted = matches!(c.state, CanaryState::Matched | CanaryState::Promoted);
                let detail = format!(
                    "canary {} ({}): {:?}; {}",
                    c.version,
                    crate::plugin::short_hash(&c.hash),
                    c.state,
                    c.verdict.unwrap_or_default()
                );
                let mut change =
                    Change::new(m.running.name(), Some(&stage), "canary", accepted, detail);
                change.hash = Some(c.hash);
                self.board.record(change);
                if c.state == CanaryState::Promoted {
                    self.publish(m, "running");
                }
            }
        }
    }
}
