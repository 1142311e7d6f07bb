//! The stage runtime against a scripted fake plugin: bisection, restarts, quarantine,
//! swaps and probation. Fast, and no `.wasm` needed.

use super::SwapOutcome;
use crate::batch::DeadLetters;
use crate::config::Promote;
use crate::pipeline::CanaryState;
use crate::pipeline::fake::Fake;
use crate::pipeline::fake::{FakePlugin, rows, spec, stage};
use crate::pipeline::stage::{Replacement, instantiate};
use std::sync::Arc;
use tokio::sync::oneshot;

pub(super) fn ids(n: usize, poison: Option<usize>) -> Vec<String> {
    (0..n)
        .map(|i| {
            if Some(i) == poison {
                "poison".into()
            } else {
                format!("e{i}")
            }
        })
        .collect()
}

pub(super) fn env(ids: &[String]) -> crate::batch::Envelope {
    rows(&ids.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn bisection_dead_letters_only_the_poisoned_row_and_counts_the_rest_once() {
    let plugin = FakePlugin::new("1");
    let mut s = stage(&plugin, 5);
    let mut dl = DeadLetters::new("test");
    let out = s.process(vec![env(&ids(16, Some(5)))], 0, &mut dl).unwrap();
    let passed: usize = out.iter().map(|e| e.rows()).sum();
    assert_eq!((passed, dl.len()), (15, 1));
    assert_eq!(plugin.count(), 15, "every good row counted exactly once");
    assert!(
        s.stats.restarts >= 1,
        "each trap restarts the instance from its snapshot"
    );
    assert!(!s.stats.quarantined);
}

#[test]
fn a_plugin_that_keeps_failing_is_quarantined_and_no_longer_called() {
    let plugin = FakePlugin::broken("1");
    let mut s = stage(&plugin, 3);
    let mut dl = DeadLetters::new("test");
    for _ in 0..3 {
        s.process(vec![env(&ids(4, None))], 0, &mut dl).unwrap();
    }
    assert!(s.stats.quarantined);
    let calls = plugin.calls.load(std::sync::atomic::Ordering::Relaxed);
    s.process(vec![env(&ids(4, None))], 0, &mut dl).unwrap();
    assert_eq!(
        plugin.calls.load(std::sync::atomic::Ordering::Relaxed),
        calls
    );
    assert_eq!(dl.len(), 16, "every row of every batch is a dead letter");
}

pub(super) fn replacement(plugin: &std::sync::Arc<FakePlugin>) -> Replacement {
    let spec = spec(plugin, 5);
    let (instance, output) = instantiate(&spec).unwrap();
    Replacement::new(spec, instance, output, None)
}

#[test]
fn a_swap_hands_the_state_over_and_is_confirmed_by_the_first_batch() {
    let (old, new) = (FakePlugin::new("1"), FakePlugin::new("2"));
    let mut s = stage(&old, 5);
    let mut dl = DeadLetters::new("test");
    s.process(vec![env(&ids(10, None))], 0, &mut dl).unwrap();
    let (reply, mut outcome) = oneshot::channel();
    s.begin_swap(replacement(&new), reply);
    assert!(s.on_probation());
    assert!(
        outcome.try_recv().is_err(),
        "not confirmed before a batch ran"
    );
    s.process(vec![env(&ids(3, None))], 0, &mut dl).unwrap();
    assert!(matches!(
        outcome.try_recv(),
        Ok(SwapOutcome::Swapped { .. })
    ));
    assert_eq!(
        new.count(),
        13,
        "the new version continued from the old state"
    );
    assert_eq!(s.info.version, "2");
}

#[test]
fn a_new_version_that_fails_its_first_batch_is_dropped_and_the_old_one_takes_it() {
    let (old, new) = (FakePlugin::new("1"), FakePlugin::broken("2"));
    let mut s = stage(&old, 5);
    let mut dl = DeadLetters::new("test");
    s.process(vec![env(&ids(10, None))], 0, &mut dl).unwrap();
    let (reply, mut outcome) = oneshot::channel();
    s.begin_swap(replacement(&new), reply);
    let out = s.process(vec![env(&ids(3, None))], 0, &mut dl).unwrap();
    assert!(matches!(outcome.try_recv(), Ok(SwapOutcome::Rejected(_))));
    assert_eq!(out.iter().map(|e| e.rows()).sum::<usize>(), 3);
    assert_eq!(
        (dl.len(), old.count()),
        (0, 13),
        "nothing lost, nothing counted twice"
    );
    assert_eq!(s.info.version, "1");
}

#[test]
fn a_failed_call_leaves_the_state_as_it_was_before_it() {
    let plugin = FakePlugin::new("1");
    let mut s = stage(&plugin, 5);
    let mut dl = DeadLetters::new("test");
    s.process(vec![env(&ids(10, None))], 0, &mut dl).unwrap();
    // The fake counts this batch, then fails: the stage must not keep that count.
    let mut bad = ids(4, None);
    bad[2] = "error".into();
    s.process(vec![env(&bad)], 0, &mut dl).unwrap();
    assert_eq!(dl.len(), 1, "only the failing row is a dead letter");
    s.process(vec![env(&ids(5, None))], 0, &mut dl).unwrap();
    assert_eq!(plugin.count(), 10 + 3 + 5);
    // A checkpoint's snapshot becomes the base: a later failure replays from there.
    assert_eq!(s.stats.snapshots, 0);
    let state = s.snapshot().unwrap().unwrap();
    assert_eq!(u64::from_le_bytes(state.try_into().unwrap()), 18);
    // Counted and timed apart from the calls.
    assert_eq!(s.stats.snapshots, 1);
    assert!(s.stats.snapshot_ns > 0);
    s.process(vec![env(&ids(6, Some(1)))], 0, &mut dl).unwrap();
    assert_eq!(plugin.count(), 18 + 5);
}

#[test]
fn isolating_a_poisoned_row_is_not_a_failure_that_quarantines() {
    let plugin = FakePlugin::new("1");
    let mut s = stage(&plugin, 3);
    let mut dl = DeadLetters::new("test");
    for i in 0..6 {
        s.process(vec![env(&ids(8, Some(i)))], 0, &mut dl).unwrap();
    }
    assert!(
        !s.stats.quarantined,
        "a healthy plugin with a bad row per batch keeps running"
    );
    assert_eq!((dl.len(), plugin.count()), (6, 6 * 7));
}

fn with_canary(
    current: &Arc<FakePlugin>,
    candidate: &Arc<FakePlugin>,
    promote: crate::config::Promote,
) -> super::Stage {
    let mut spec = spec(current, 5);
    spec.canary = Some(Arc::new(super::CanarySpec {
        plugin: Arc::new(Fake(candidate.clone())),
        setup: spec.setup.clone(),
        calls: Some(3),
        duration: None,
        promote,
        tolerance: 0.0,
    }));
    let mut s = super::Stage::start(spec).unwrap();
    s.start_canary().unwrap();
    s
}

/// Runs batches of 10, 4, 4, 4 and 4 rows: the canary, set to 3 calls, sees the first three.
fn run_canary(s: &mut super::Stage) -> (usize, DeadLetters) {
    let mut dl = DeadLetters::new("test");
    let mut passed = 0;
    for n in [10, 4, 4, 4, 4] {
        let out = s.process(vec![env(&ids(n, None))], 0, &mut dl).unwrap();
        passed += out.iter().map(|e| e.rows()).sum::<usize>();
    }
    (passed, dl)
}

#[test]
fn a_canary_that_matches_is_reported_and_the_running_version_stays() {
    let (old, new) = (FakePlugin::new("1"), FakePlugin::new("2"));
    let mut s = with_canary(&old, &new, Promote::Manual);
    let (passed, dl) = run_canary(&mut s);
    let c = s.stats.canary.clone().unwrap();
    assert_eq!(c.state, CanaryState::Matched, "{c:?}");
    assert_eq!((c.calls, c.diff.same, c.diff.differing()), (3, 18, 0));
    assert_eq!((passed, dl.len(), s.info.version.as_str()), (26, 0, "1"));
    assert_eq!(
        new.count(),
        18,
        "it saw the 18 rows of its three calls, no more"
    );
    assert!(s.take_promoted().is_none());
}

#[test]
fn a_canary_that_matches_with_promote_auto_takes_over_with_its_state() {
    let (old, new) = (FakePlugin::new("1"), FakePlugin::new("2"));
    let mut s = with_canary(&old, &new, Promote::Auto);
    let (passed, _) = run_canary(&mut s);
    assert_eq!(
        s.stats.canary.as_ref().unwrap().state,
        CanaryState::Promoted
    );
    assert_eq!((s.info.version.as_str(), passed), ("2", 26));
    assert_eq!(
        new.count(),
        26,
        "the last batch ran on the promoted candidate only"
    );
    assert_eq!(s.take_promoted().unwrap().info.version, "2");
}

#[test]
fn a_canary_that_differs_is_not_promoted_and_its_differences_are_shown() {
    let old = FakePlugin::new("1");
    let new = Arc::new(FakePlugin {
        version: "2",
        rename: Some(("e1", "renamed")),
        ..Default::default()
    });
    let mut s = with_canary(&old, &new, Promote::Auto);
    let (passed, dl) = run_canary(&mut s);
    let c = s.stats.canary.clone().unwrap();
    assert_eq!(c.state, CanaryState::Differs);
    assert_eq!((c.diff.added, c.diff.removed, c.diff.same), (3, 3, 15));
    assert!(
        c.diff
            .examples
            .contains(&"+ {\"id\":\"renamed\"}".to_string()),
        "{c:?}"
    );
    assert_eq!((passed, dl.len(), s.info.version.as_str()), (26, 0, "1"));
}

#[test]
fn a_failing_canary_ends_and_never_touches_the_running_version() {
    let (old, new) = (FakePlugin::new("1"), FakePlugin::broken("2"));
    let mut s = with_canary(&old, &new, Promote::Auto);
    let (passed, dl) = run_canary(&mut s);
    let c = s.stats.canary.clone().unwrap();
    assert_eq!((c.state, c.calls), (CanaryState::Failed, 0));
    assert!(c.error.unwrap().contains("scripted trap"));
    assert_eq!((passed, dl.len(), old.count()), (26, 0, 26));
    assert_eq!(
        s.stats.failures, 0,
        "the candidate's failure is not the stage's"
    );
}

/// A plugin that declared the columns it reads is replayed only those after a failure:
/// the redo log keeps no more.
#[test]
fn the_replay_after_a_failure_hands_over_only_the_declared_columns() {
    let plugin = Arc::new(FakePlugin {
        version: "1",
        reads: Some(vec!["id".into()]),
        ..Default::default()
    });
    let mut s = stage(&plugin, 5);
    let mut dl = DeadLetters::new("test");
    let wide = |ids: &[&str]| {
        let mut e = rows(ids);
        let mut extra = adstream_sdk::TextBuilder::default();
        ids.iter().for_each(|_| extra.push("unread"));
        e.batch.columns.push(extra.finish("extra"));
        e
    };
    s.process(vec![wide(&["a", "b"])], 0, &mut dl).unwrap();
    s.process(vec![wide(&["error"])], 0, &mut dl).unwrap();
    let seen = plugin.seen.lock().unwrap().clone();
    let both = vec!["id".to_string(), "extra".into()];
    // The two calls as the stage made them, then the rebuilt instance's replay of the
    // first batch from the log (then the bisection's retry of the failed one).
    assert_eq!(seen[..2], [both.clone(), both]);
    assert_eq!(seen[2], ["id"], "{seen:?}");
    assert_eq!(plugin.count(), 2, "the replay restored the state");
}

/// Busy time is the calls' wall time, CPU time what the calling thread used meanwhile: a
/// call that waits (here, sleeps) counts in full in the first and hardly in the second.
#[test]
fn a_stage_counts_wall_time_and_cpu_time_of_its_calls_apart() {
    let plugin = Arc::new(FakePlugin {
        version: "1",
        sleep: Some(std::time::Duration::from_millis(30)),
        ..Default::default()
    });
    let mut s = stage(&plugin, 5);
    let mut dl = DeadLetters::new("test");
    for _ in 0..2 {
        s.process(vec![env(&ids(4, None))], 0, &mut dl).unwrap();
    }
    let (busy, cpu) = (s.stats.busy_ns, s.stats.cpu_ns);
    assert!(busy >= 60_000_000, "two calls of 30 ms: {busy} ns busy");
    assert!(cpu > 0, "the calls used some CPU");
    assert!(
        cpu < busy / 2,
        "{cpu} ns of CPU in {busy} ns of mostly sleeping"
    );
}
