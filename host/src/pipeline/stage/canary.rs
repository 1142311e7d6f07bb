//! A canary: a candidate version of a stage's plugin (or of its config) that runs in
//! shadow on the live stream. It takes the running version's state before its first call,
//! then sees every batch the running version processes successfully, with the same
//! watermark; its output is compared row by row (`batch::compare`) and dropped. After
//! its calls or its time it stops, with a verdict; with `promote = "auto"` a candidate
//! whose outputs matched takes over, with the state it has built. Nothing it does reaches
//! a sink, a dead letter or the running version: a failing candidate only ends its canary.

use super::{Stage, StageSpec, StageView};
use crate::batch::compare::{self, Row};
use crate::config::Promote;
use crate::pipeline::stats::{CanaryReport, CanaryState};
use crate::plugin::{CallError, Instance, Output, Plugin};
use adstream_sdk::{Batch, Field, PluginInfo, Setup};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Examples of differences kept in the report.
const EXAMPLES: usize = 10;
/// Calls compared when a canary names neither `batches` nor `duration`.
pub const DEFAULT_CALLS: u64 = 100;

/// A stage's `[stage.canary]`, loaded.
#[derive(Clone)]
pub struct CanarySpec {
    pub plugin: Arc<dyn Plugin>,
    pub setup: Setup,
    pub calls: Option<u64>,
    pub duration: Option<Duration>,
    pub promote: Promote,
    pub tolerance: f64,
}

/// Why a candidate could not start.
#[derive(Debug, thiserror::Error)]
pub enum CanaryError {
    #[error("the candidate implements the `{new}` world, the stage's plugin the `{old}` world")]
    WrongRole {
        new: &'static str,
        old: &'static str,
    },
    #[error("the candidate failed to start: {0}")]
    Start(#[from] CallError),
    #[error("the candidate's output columns differ from the running version's")]
    Columns,
}

/// A candidate running in shadow.
pub struct Canary {
    instance: Box<dyn Instance>,
    info: PluginInfo,
    /// When it took the running version's state (before its first call).
    began: Option<Instant>,
}

impl Canary {
    /// Instantiates and configures the candidate `spec` names, if any; slow, so it is done
    /// off the processor thread. `output` is the running version's output columns.
    pub fn start(spec: &StageSpec, output: &[Field]) -> Result<Option<Canary>, CanaryError> {
        let Some(c) = &spec.canary else {
            return Ok(None);
        };
        if c.plugin.role() != spec.plugin.role() {
            return Err(CanaryError::WrongRole {
                new: c.plugin.role().name(),
                old: spec.plugin.role().name(),
            });
        }
        let mut instance = c
            .plugin
            .instantiate(spec.name.clone(), &spec.limits, spec.seed)?;
        if instance.configure(c.setup.clone())? != output {
            return Err(CanaryError::Columns);
        }
        Ok(Some(Canary {
            info: instance.info().clone(),
            instance,
            began: None,
        }))
    }
}

/// What the comparison counts: the rows of an output, in one list.
fn rows(out: &Output) -> Vec<Row<'_>> {
    match out {
        Output::Batch(b) => compare::rows(b),
        Output::Rejections(r) => r
            .iter()
            .map(|r| {
                Row::label(format!(
                    "rejected input row {}: {}: {}",
                    r.row, r.rule, r.message
                ))
            })
            .collect(),
        Output::Windows { windows, late } => {
            let mut rows = compare::rows(windows);
            rows.extend(
                late.iter()
                    .map(|i| Row::label(format!("late input row {i}"))),
            );
            rows
        }
    }
}

impl Stage {
    /// Starts the candidate the stage's spec names (a freshly built stage).
    pub fn start_canary(&mut self) -> Result<(), CanaryError> {
        let canary = Canary::start(&self.spec, &self.output)?;
        self.attach_canary(canary);
        Ok(())
    }

    /// Starts comparing `canary` (a new one, or none) from the next call on.
    pub(super) fn attach_canary(&mut self, canary: Option<Canary>) {
        self.stats.canary = match (&canary, &self.spec.canary) {
            (Some(c), Some(spec)) => Some(CanaryReport {
                plugin: spec.plugin.path().display().to_string(),
                version: c.info.version.clone(),
                hash: spec.plugin.hash().to_string(),
                state: CanaryState::Comparing,
                calls: 0,
                rows_current: 0,
                rows_candidate: 0,
                busy_ns: 0,
                diff: Default::default(),
                error: None,
                verdict: None,
            }),
            _ => None,
        };
        self.canary = canary;
    }

    /// Before the running version's call: a candidate that has not started takes its
    /// state, so that both see the coming batch from the same state.
    pub(super) fn before_call(&mut self) {
        let Some(c) = self.canary.as_mut().filter(|c| c.began.is_none()) else {
            return;
        };
        let taken = match self.instance.snapshot() {
            Ok(Some(s)) => c.instance.restore(&s),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        match taken {
            Ok(()) => c.began = Some(Instant::now()),
            Err(e) => self.end_canary(Err(format!("taking the running state: {}", e.describe()))),
        }
    }

    /// Runs the candidate on the batch the running version just processed into `current`,
    /// and compares. Returns the batch.
    pub(super) fn shadow(&mut self, batch: Batch, watermark: i64, current: &Output) -> Batch {
        let (Some(c), Some(report)) = (self.canary.as_mut(), self.stats.canary.as_mut()) else {
            return batch;
        };
        if c.began.is_none() {
            return batch;
        }
        let began = Instant::now();
        let (batch, result) = c.instance.process(batch, watermark);
        report.busy_ns += began.elapsed().as_nanos() as u64;
        // Its logs and counters are not the stage's: the running version's are.
        c.instance.take_reports();
        let candidate = match result {
            Ok(out) => out,
            Err(e) => {
                self.end_canary(Err(e.describe()));
                return batch;
            }
        };
        let tolerance = self.spec.canary.as_ref().map_or(0.0, |s| s.tolerance);
        let (a, b) = (rows(current), rows(&candidate));
        report.calls += 1;
        report.rows_current += a.len() as u64;
        report.rows_candidate += b.len() as u64;
        report
            .diff
            .add(compare::compare(&a, &b, tolerance, EXAMPLES), EXAMPLES);
        if self.canary_due() {
            self.end_canary(Ok(()));
        }
        batch
    }

    fn canary_due(&self) -> bool {
        let (Some(spec), Some(c), Some(report)) =
            (&self.spec.canary, &self.canary, &self.stats.canary)
        else {
            return false;
        };
        let calls = spec
            .calls
            .or(spec.duration.is_none().then_some(DEFAULT_CALLS));
        calls.is_some_and(|n| report.calls >= n)
            || spec
                .duration
                .zip(c.began)
                .is_some_and(|(d, began)| began.elapsed() >= d)
    }

    /// Ends the comparison: `Err` when the candidate failed. A candidate that matched
    /// takes over when its policy says so.
    fn end_canary(&mut self, failed: Result<(), String>) {
        let (Some(c), Some(report)) = (self.canary.take(), self.stats.canary.as_mut()) else {
            return;
        };
        let (calls, rows) = (report.calls, report.rows_current.max(report.rows_candidate));
        let differing = report.diff.differing();
        let auto = self
            .spec
            .canary
            .as_ref()
            .is_some_and(|s| s.promote == Promote::Auto);
        let (state, verdict) = match failed {
            Err(why) => {
                report.error = Some(why);
                let v = "failed; the running version stays. Fix the candidate, or remove [stage.canary]";
                (CanaryState::Failed, v.to_string())
            }
            Ok(()) if differing > 0 => (
                CanaryState::Differs,
                format!(
                    "{differing} of {rows} rows differed over {calls} calls; the running version \
                     stays. Promote the candidate by naming it in the stage, or remove [stage.canary]"
                ),
            ),
            Ok(()) if !auto => (
                CanaryState::Matched,
                format!(
                    "matched over {calls} calls ({rows} rows). Promote it by naming it in the \
                     stage (plugin, config) and removing [stage.canary]"
                ),
            ),
            Ok(()) => return self.promote(c),
        };
        tracing::info!(stage = &*self.spec.name, "canary ended: {verdict}");
        (report.state, report.verdict) = (state, Some(verdict));
    }

    /// The candidate becomes the running version, with the state it has built.
    fn promote(&mut self, mut c: Canary) {
        let state = match c.instance.snapshot() {
            Ok(state) => state,
            Err(e) => {
                self.canary = Some(c);
                return self.end_canary(Err(format!("its snapshot failed: {}", e.describe())));
            }
        };
        let spec = self.spec.canary.take().expect("a canary has its spec");
        let report = self.stats.canary.as_mut().expect("a canary has its report");
        let (calls, old) = (report.calls, self.spec.plugin.path().display().to_string());
        report.state = CanaryState::Promoted;
        report.verdict = Some(format!(
            "matched over {calls} calls and took over (promote = \"auto\"). The pipeline file \
             still names {old}, which a restart would run: name the candidate in the stage"
        ));
        tracing::info!(
            stage = &*self.spec.name,
            "canary promoted after {calls} calls"
        );
        self.instance = c.instance;
        self.info = c.info;
        self.spec.plugin = spec.plugin.clone();
        self.spec.setup = spec.setup.clone();
        self.recovery.rebase(state.as_deref());
        self.promoted = true;
    }

    /// What the stage runs now, once after a canary took over.
    pub fn take_promoted(&mut self) -> Option<StageView> {
        std::mem::take(&mut self.promoted).then(|| StageView::of(self))
    }

    /// Compares the windows both versions close at the end of input.
    pub(super) fn shadow_flush(&mut self, current: Option<&Batch>) {
        let (Some(c), Some(report)) = (self.canary.as_mut(), self.stats.canary.as_mut()) else {
            return;
        };
        if c.began.is_none() {
            return;
        }
        let candidate = match c.instance.flush() {
            Ok(b) => b,
            Err(e) => return self.end_canary(Err(e.describe())),
        };
        let tolerance = self.spec.canary.as_ref().map_or(0.0, |s| s.tolerance);
        let (a, b) = (
            current.map(compare::rows).unwrap_or_default(),
            candidate.as_ref().map(compare::rows).unwrap_or_default(),
        );
        report.rows_current += a.len() as u64;
        report.rows_candidate += b.len() as u64;
        report
            .diff
            .add(compare::compare(&a, &b, tolerance, EXAMPLES), EXAMPLES);
    }
}
