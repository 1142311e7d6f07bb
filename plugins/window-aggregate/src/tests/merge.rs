//! Merging partial windows: what one instance per partition emitted, merged by another
//! instance, equals one instance over all the events — counts exactly, floats to the
//! rounding of their sums — and comes out bit for bit the same whatever the order the
//! partials arrive in.

use super::*;

/// Every partition's window rows: one instance per partition over its events.
fn partials(events: &[Ev], parts: &[usize], k: usize) -> Vec<Batch> {
    (0..k)
        .flat_map(|p| {
            let own: Vec<Ev> = (events.iter().zip(parts))
                .filter(|(_, q)| **q % k == p)
                .map(|(e, _)| e.clone())
                .collect();
            let mut inst = plugin("10s", "0s");
            let mut rows = vec![
                inst.aggregate(&batch(&own, false), i64::MIN)
                    .unwrap()
                    .windows,
            ];
            rows.push(inst.flush().unwrap());
            rows
        })
        .collect()
}

/// One instance merging `batches` in this order, then closing everything.
fn merged(batches: &[&Batch]) -> Vec<(i64, String, Sums)> {
    let mut m = plugin("10s", "0s");
    let mut rows = Vec::new();
    for b in batches {
        let out = m.merge(b, i64::MIN).unwrap();
        assert!(out.late.is_empty());
        rows.extend(read(&out.windows));
    }
    rows.extend(read(&m.flush().unwrap()));
    rows.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    rows
}

proptest! {
    #[test]
    fn partitions_merged_equal_one_instance_and_do_not_depend_on_arrival(
        events in prop::collection::vec(arb_event(), 0..300),
        parts in prop::collection::vec(0usize..4, 300),
        k in 1usize..4,
        seed in any::<u64>(),
    ) {
        let batches = partials(&events, &parts, k);
        let mut forward: Vec<&Batch> = batches.iter().collect();
        let got = merged(&forward);
        // Another arrival order: rotated and reversed by the seed.
        let turn = seed as usize % forward.len().max(1);
        forward.rotate_left(turn);
        if seed % 2 == 0 {
            forward.reverse();
        }
        prop_assert_eq!(&merged(&forward), &got, "the order of partials changed a bit");
        let whole = aggregate_all(&events, false);
        prop_assert_eq!(got.len(), whole.len());
        for ((s1, c1, a), (s2, c2, b)) in got.iter().zip(&whole) {
            prop_assert_eq!((s1, c1), (s2, c2));
            prop_assert_eq!(
                (a.requests, a.fills, a.impressions, a.clicks, a.conversions),
                (b.requests, b.fills, b.impressions, b.clicks, b.conversions)
            );
            prop_assert!((a.revenue - b.revenue).abs() <= 1e-9 * b.revenue.abs().max(1.0));
            prop_assert!((a.cost - b.cost).abs() <= 1e-9 * b.cost.abs().max(1.0));
        }
    }
}

#[test]
fn a_partial_of_a_window_closed_already_is_late_and_state_survives_a_snapshot() {
    let part = |t: i64| {
        let mut inst = plugin("10s", "0s");
        inst.aggregate(&batch(&[ev(t, "impression", "US")], false), i64::MIN)
            .unwrap();
        inst.flush().unwrap()
    };
    let mut m = plugin("10s", "0s");
    assert!(read(&m.merge(&part(1_000), i64::MIN).unwrap().windows).is_empty());
    // Pending partials travel in the snapshot.
    let mut restored = plugin("10s", "0s");
    restored.restore(&m.snapshot().unwrap()).unwrap();
    let closed = restored.merge(&part(2_000), 10_000).unwrap();
    let rows = read(&closed.windows);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].2.impressions, 2, "both partials of [0, 10s)");
    let late = restored.merge(&part(3_000), 10_000).unwrap();
    assert_eq!(late.late, vec![0]);
    assert!(read(&late.windows).is_empty());
}
