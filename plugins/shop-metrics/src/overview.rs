//! `report = "overview"`: one row per window with the shop's key figures together —
//! orders, revenue, average order value, payment attempts and failure rate, the funnel's
//! steps and conversions — the row anomaly rules read and the dashboard's headline.

use crate::input::{Events, require};
use crate::money::{amount, cents, ratio};
use crate::out::{Head, head_fields};
use crate::windows::Windows;
use adstream_sdk::ColumnKind::{Float64, Int64};
use adstream_sdk::{Batch, F64Builder, Field, I64Builder, PluginError, field};
use serde::{Deserialize, Serialize};

pub const READS: &[&str] = &["event_time", "event_type", "total", "status"];
const COUNTS: [&str; 7] = [
    "product_views",
    "carts",
    "orders",
    "paid",
    "attempts",
    "failed",
    "refunded",
];
const FIGURES: [&str; 6] = [
    "revenue",
    "avg_order_value",
    "failure_rate",
    "view_to_cart",
    "cart_to_order",
    "order_to_paid",
];

#[derive(Default, Serialize, Deserialize, Clone, Copy)]
pub struct Window {
    counts: [i64; 7],
    cents: i64,
}

pub fn fields() -> Vec<Field> {
    let mut f = head_fields();
    f.extend(COUNTS.map(|c| field(c, Int64, false)));
    f.extend(FIGURES.map(|c| field(c, Float64, c != "revenue")));
    f
}

pub fn check(input: &[Field]) -> Result<(), PluginError> {
    require(input, READS)
}

pub fn fold(
    w: &mut Windows<Window>,
    input: &Batch,
    late: &mut Vec<u32>,
) -> Result<(), PluginError> {
    let ev = Events::of(input)?;
    let (total, status) = (input.f64s("total")?, input.text("status")?);
    for row in 0..input.len() {
        let (Some(kind), Some(time)) = (ev.kind.get(row), ev.time.get(row)) else {
            continue;
        };
        let counted: &[usize] = match (kind, status.get(row)) {
            ("product_view", _) => &[0],
            ("add_to_cart", _) => &[1],
            ("order", _) => &[2],
            ("payment", Some("authorised")) => &[3, 4],
            ("payment", Some("failed")) => &[4, 5],
            ("payment", Some("refunded")) => &[6],
            _ => continue,
        };
        let Some(s) = w.slot(time) else {
            late.push(row as u32);
            continue;
        };
        counted.iter().for_each(|&i| s.counts[i] += 1);
        if kind == "order" {
            s.cents += total.get(row).map_or(0, cents);
        }
    }
    Ok(())
}

pub fn emit(closed: Vec<(i64, Window)>, size_ms: i64, label: &str) -> Result<Batch, PluginError> {
    let mut head = Head::default();
    let mut counts = [(); 7].map(|()| I64Builder::default());
    let mut figures = [(); 6].map(|()| F64Builder::default());
    for (start, s) in closed {
        head.push(start, size_ms, label);
        for (b, v) in counts.iter_mut().zip(s.counts) {
            b.push(v);
        }
        let [views, carts, orders, paid, attempts, failed, _] = s.counts;
        let f = [
            Some(amount(s.cents)),
            ratio(s.cents, orders).map(|x| x / 100.0),
            ratio(failed, attempts),
            ratio(carts, views),
            ratio(orders, carts),
            ratio(paid, orders),
        ];
        for (b, v) in figures.iter_mut().zip(f) {
            b.push_opt(v);
        }
    }
    let mut columns = head.finish();
    columns.extend(counts.into_iter().zip(COUNTS).map(|(b, c)| b.finish(c)));
    columns.extend(figures.into_iter().zip(FIGURES).map(|(b, c)| b.finish(c)));
    Batch::from_columns(columns)
}
