//! Sharded stages against the scripted fake plugin: shares, states per shard through a
//! checkpoint, swaps, key placements and the shards' threads.

use super::SwapOutcome;
use super::tests::{env, ids, replacement};
use crate::batch::DeadLetters;
use crate::pipeline::fake::{FakePlugin, spec, stage};
use crate::pipeline::stage::instantiate;
use std::sync::Arc;
use tokio::sync::oneshot;

fn sharded(plugin: &Arc<FakePlugin>) -> super::Stage {
    let spec = super::StageSpec {
        shards: 2,
        shard_by: Arc::from(["id".to_string()]),
        partition_local: false,
        partitioned: false,
        ..spec(plugin, 5)
    };
    super::Stage::start(spec).unwrap()
}

/// Each shard's row count, from a sharded stage's snapshot.
fn shard_counts(s: &mut super::Stage) -> Vec<u64> {
    let state = s.snapshot().unwrap().unwrap();
    super::shards::unframe(&state)
        .expect("a framed state")
        .0
        .into_iter()
        .map(|st| u64::from_le_bytes(st.unwrap().try_into().unwrap()))
        .collect()
}

#[test]
fn shards_share_the_rows_and_each_keeps_its_own_state_through_a_checkpoint() {
    let plugin = FakePlugin::new("1");
    let mut s = sharded(&plugin);
    let mut dl = DeadLetters::new("test");
    let out = s.process(vec![env(&ids(100, None))], 0, &mut dl).unwrap();
    assert_eq!(out.iter().map(|e| e.rows()).sum::<usize>(), 100);
    assert_eq!((s.totals().rows_in, s.totals().rows_out), (100, 100));
    // Each shard is a whole instance under the stage's own limits.
    assert!(s.lanes.iter().all(|l| l.spec.limits == s.spec.limits));
    let counts = shard_counts(&mut s);
    assert_eq!(counts.iter().sum::<u64>(), 100);
    assert!(
        counts.iter().all(|&c| c > 20),
        "rows spread over both: {counts:?}"
    );

    let state = s.snapshot().unwrap().unwrap();
    let mut again = sharded(&plugin);
    again.restore(&state).unwrap();
    assert_eq!(shard_counts(&mut again), counts);
    let why = stage(&plugin, 5).restore(&state).unwrap_err();
    assert!(
        why.contains("state of 2 shards, and the stage now has one"),
        "{why}"
    );
    let why = again.restore(&10u64.to_le_bytes()).unwrap_err();
    assert!(
        why.contains("state of one instance, and the stage now has 2"),
        "{why}"
    );
}

#[test]
fn a_swap_of_a_sharded_stage_swaps_every_shard_with_its_state() {
    let (old, new) = (FakePlugin::new("1"), FakePlugin::new("2"));
    let mut s = sharded(&old);
    let mut dl = DeadLetters::new("test");
    s.process(vec![env(&ids(50, None))], 0, &mut dl).unwrap();
    let before = shard_counts(&mut s);
    let mut r = replacement(&new);
    r.add_shard(instantiate(&r.spec).unwrap().0);
    let (reply, outcome) = oneshot::channel();
    s.begin_swap(r, reply);
    s.process(vec![env(&ids(50, None))], 0, &mut dl).unwrap();
    let outcome = outcome.blocking_recv().unwrap();
    assert!(
        matches!(outcome, SwapOutcome::Swapped { .. }),
        "{outcome:?}"
    );
    assert_eq!(s.info.version, "2");
    assert!(s.lanes.iter().all(|l| l.info.version == "2"));
    let after = shard_counts(&mut s);
    assert_eq!(
        after.iter().sum::<u64>(),
        100,
        "the new shards went on from the old states"
    );
    assert!(after.iter().zip(&before).all(|(a, b)| a > b));
}

/// A key keeps its shard through a checkpoint: the placements are restored with the states,
/// so rows of unequal keys after a restore go where they went before it.
#[test]
fn a_restored_sharded_stage_sends_each_key_where_it_went_before() {
    let plugin = FakePlugin::new("1");
    let mut s = sharded(&plugin);
    let mut dl = DeadLetters::new("test");
    s.process(vec![env(&ids(100, None))], 0, &mut dl).unwrap();
    let state = s.snapshot().unwrap().unwrap();
    let mut again = sharded(&plugin);
    again.restore(&state).unwrap();
    // The same keys, now unequal: placed afresh they would be spread another way.
    let unequal: Vec<String> = (0..100)
        .flat_map(|i| std::iter::repeat_n(format!("e{i}"), i % 7 + 1))
        .collect();
    for stage in [&mut s, &mut again] {
        stage.process(vec![env(&unequal)], 0, &mut dl).unwrap();
    }
    assert_eq!(shard_counts(&mut again), shard_counts(&mut s));
    let damaged = &state[..state.len() - 12];
    let why = sharded(&plugin).restore(damaged).unwrap_err();
    assert!(why.contains("placements of keys"), "{why}");
}

/// The other shard's calls run on one thread of its own, batch after batch (the docs'
/// promise), not on a thread started per batch.
#[test]
fn the_other_shard_keeps_one_thread_of_its_own() {
    let plugin = FakePlugin::new("1");
    let mut s = sharded(&plugin);
    let mut dl = DeadLetters::new("test");
    for _ in 0..3 {
        s.process(vec![env(&ids(40, None))], 0, &mut dl).unwrap();
    }
    let here = std::thread::current().id();
    let threads = plugin.threads.lock().unwrap().clone();
    let others: std::collections::BTreeSet<String> = (threads.iter())
        .filter(|t| **t != here)
        .map(|t| format!("{t:?}"))
        .collect();
    assert_eq!(threads.iter().filter(|t| **t == here).count(), 3);
    assert_eq!(others.len(), 1, "{threads:?}");
    assert_eq!(threads.len(), 6);
}

/// A new version of a sharded stage keyed by `id` (as `sharded` is), an instance per shard.
fn sharded_replacement(plugin: &Arc<FakePlugin>, input: super::Input) -> super::Replacement {
    let spec = super::StageSpec {
        input,
        shards: 2,
        shard_by: Arc::from(["id".to_string()]),
        partition_local: false,
        partitioned: false,
        ..spec(plugin, 5)
    };
    let (instance, output) = instantiate(&spec).unwrap();
    let mut r = super::Replacement::new(spec, instance, output, None);
    r.add_shard(instantiate(&r.spec).unwrap().0);
    r
}

/// A version that traps on the row `e7`, which the version before took.
fn fails_on_e7(version: &'static str) -> Arc<FakePlugin> {
    Arc::new(FakePlugin {
        version,
        traps_on: Some("e7"),
        ..Default::default()
    })
}

fn refused_for_its_own_failure(outcome: SwapOutcome) {
    match outcome {
        SwapOutcome::Rejected(why) => {
            assert!(matches!(why, super::Refusal::FirstBatch(_)), "{why}")
        }
        other => panic!("the swap took: {other:?}"),
    }
}

/// The new version fails its first batch in the shard that holds `e7` and passes it in the
/// other: it goes back in both (never two versions at once, as the swap is reported
/// refused), and every row counts once, on the old version.
#[test]
fn a_new_version_failing_in_one_shard_goes_back_in_every_shard() {
    let mut s = sharded(&FakePlugin::new("1"));
    let mut dl = DeadLetters::new("test");
    s.process(vec![env(&ids(50, None))], 0, &mut dl).unwrap();
    let (reply, outcome) = oneshot::channel();
    s.begin_swap(
        sharded_replacement(&fails_on_e7("2"), super::Input::Source),
        reply,
    );
    let out = s.process(vec![env(&ids(50, None))], 0, &mut dl).unwrap();
    assert_eq!(out.iter().map(|e| e.rows()).sum::<usize>(), 50);
    refused_for_its_own_failure(outcome.blocking_recv().unwrap());
    let versions: Vec<&str> = std::iter::once(&s)
        .chain(&s.lanes)
        .map(|l| &*l.info.version)
        .collect();
    assert_eq!(versions, ["1", "1"]);
    assert_eq!(shard_counts(&mut s).iter().sum::<u64>(), 100);
    assert_eq!(
        s.totals().rows_in,
        100,
        "the share run again is counted once"
    );
    assert!(dl.is_empty(), "the old version took every row");
}

/// The same in a chain, where each shard runs its rows through every stage: the stage on
/// trial goes back in every shard before the next stage sees its output; a version that
/// passes is then kept in every shard.
#[test]
fn in_a_chain_the_stage_on_trial_keeps_one_version_in_every_shard() {
    use crate::pipeline::fake::sharded as stage_of;
    use crate::pipeline::stage::{Input, process_chain};
    let mut stages = vec![
        stage_of(Input::Source, 2, &["id"]),
        stage_of(Input::Stage(0), 2, &["id"]),
    ];
    let mut dl = DeadLetters::new("test");
    process_chain(&mut stages, vec![env(&ids(50, None))], 0, &mut dl).unwrap();
    let versions = |s: &super::Stage| -> Vec<String> {
        std::iter::once(s)
            .chain(&s.lanes)
            .map(|l| l.info.version.clone())
            .collect()
    };
    for (new, took) in [(fails_on_e7("2"), false), (FakePlugin::new("3"), true)] {
        let (reply, outcome) = oneshot::channel();
        stages[1].begin_swap(sharded_replacement(&new, Input::Stage(0)), reply);
        let outs = process_chain(&mut stages, vec![env(&ids(50, None))], 0, &mut dl).unwrap();
        assert_eq!(outs[1].iter().map(|e| e.rows()).sum::<usize>(), 50);
        let outcome = outcome.blocking_recv().unwrap();
        match took {
            false => refused_for_its_own_failure(outcome),
            true => assert!(
                matches!(outcome, SwapOutcome::Swapped { .. }),
                "{outcome:?}"
            ),
        }
        let want = if took { "3" } else { "1" };
        assert_eq!(versions(&stages[1]), [want, want]);
    }
    for s in &mut stages {
        assert_eq!(
            shard_counts(s).iter().sum::<u64>(),
            150,
            "every row once in each stage"
        );
    }
    assert!(dl.is_empty());
}
