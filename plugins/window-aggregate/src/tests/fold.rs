//! The fold's two ways to a group agree: dictionary-encoded group columns go through the
//! per-batch memo, text ones through the interner and the index.

use super::*;

/// Events that stress the memo: unknown types, countries left null (the empty string
/// goes in as a null), times spread over six windows in no order.
fn arb_messy_event() -> impl Strategy<Value = Ev> {
    events_of(
        &["request", "impression", "click", "view"],
        &["US", "KR", "JP", "", "DE"],
        &["admob", ""],
    )
}

type Windows = Vec<(i64, String, Sums, u64, u64)>;

/// Every window and every batch's late rows, with the events cut into batches at `cuts`
/// (each batch has its own dictionary) and the watermark 5 s behind each batch's latest.
fn run(events: &[Ev], cuts: &[usize], text_dims: bool) -> (Windows, Vec<Vec<u32>>) {
    let mut p = plugin("10s", "0s");
    let mut bounds: Vec<usize> = cuts.iter().map(|&c| c.min(events.len())).collect();
    bounds.extend([0, events.len()]);
    bounds.sort();
    let (mut rows, mut late) = (Vec::new(), Vec::new());
    for w in bounds.windows(2) {
        let part = &events[w[0]..w[1]];
        let watermark = part.iter().map(|e| e.t - 5_000).max().unwrap_or(i64::MIN);
        let out = p.aggregate(&batch(part, text_dims), watermark).unwrap();
        rows.extend(read(&out.windows));
        late.push(out.late);
    }
    rows.extend(read(&p.flush().unwrap()));
    let mut rows: Windows = rows
        .into_iter()
        .map(|(t, c, s)| (t, c, s, s.revenue.to_bits(), s.cost.to_bits()))
        .collect();
    rows.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    (rows, late)
}

proptest! {
    #[test]
    fn dictionary_and_text_group_columns_fold_alike(
        events in prop::collection::vec(arb_messy_event(), 0..400),
        cuts in prop::collection::vec(0usize..400, 0..4),
    ) {
        let (dict_rows, dict_late) = run(&events, &cuts, false);
        let (text_rows, text_late) = run(&events, &cuts, true);
        prop_assert_eq!(dict_rows, text_rows);
        prop_assert_eq!(dict_late, text_late);
    }
}
