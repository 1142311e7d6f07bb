//! `report = "sales"`: per window, orders, units, revenue and average order value, for
//! all orders (`dimension = "all"`) and per category (an order counts once in each
//! category it has items in; its revenue there is those items' price × quantity).

use crate::input::{Events, items, require};
use crate::money::{amount, cents, ratio};
use crate::out::{Head, head_fields};
use crate::windows::Windows;
use adstream_sdk::ColumnKind::{Dictionary, Float64, Int64};
use adstream_sdk::{Batch, DictBuilder, F64Builder, Field, I64Builder, PluginError, count, field};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const READS: &[&str] = &["event_time", "event_type", "items", "total"];

#[derive(Default, Serialize, Deserialize, Clone, Copy)]
pub struct Sums {
    pub orders: i64,
    pub units: i64,
    pub cents: i64,
}

/// A window's sums by (dimension, value).
pub type Window = BTreeMap<(String, String), Sums>;

pub fn fields() -> Vec<Field> {
    let mut f = head_fields();
    f.push(field("dimension", Dictionary, false));
    f.push(field("value", Dictionary, false));
    f.extend(["orders", "units"].map(|c| field(c, Int64, false)));
    f.push(field("revenue", Float64, false));
    f.push(field("avg_order_value", Float64, true));
    f
}

pub fn check(input: &[Field]) -> Result<(), PluginError> {
    require(input, READS)
}

/// Folds the orders of `input` in; rows for closed windows go to `late`.
pub fn fold(
    w: &mut Windows<Window>,
    input: &Batch,
    late: &mut Vec<u32>,
) -> Result<(), PluginError> {
    let ev = Events::of(input)?;
    let (json, total) = (input.text("items")?, input.f64s("total")?);
    for (row, time) in ev.rows("order") {
        let Some(window) = w.slot(time) else {
            late.push(row as u32);
            continue;
        };
        let Some(items) = items(json.get(row)) else {
            count("orders_without_items", 1);
            continue;
        };
        let mut by_category: BTreeMap<&str, Sums> = BTreeMap::new();
        for item in &items {
            let s = by_category.entry(&item.category).or_default();
            s.units += item.quantity;
            s.cents += cents(item.price) * item.quantity;
        }
        let all = window.entry(("all".into(), "all".into())).or_default();
        all.orders += 1;
        all.units += items.iter().map(|i| i.quantity).sum::<i64>();
        all.cents += total.get(row).map_or(0, cents);
        for (category, s) in by_category {
            let t = window
                .entry(("category".into(), category.into()))
                .or_default();
            t.orders += 1;
            t.units += s.units;
            t.cents += s.cents;
        }
    }
    Ok(())
}

pub fn emit(closed: Vec<(i64, Window)>, size_ms: i64, label: &str) -> Result<Batch, PluginError> {
    let mut head = Head::default();
    let (mut dim, mut value) = (DictBuilder::default(), DictBuilder::default());
    let (mut orders, mut units) = (I64Builder::default(), I64Builder::default());
    let (mut revenue, mut aov) = (F64Builder::default(), F64Builder::default());
    for (start, window) in closed {
        for ((d, v), s) in window {
            head.push(start, size_ms, label);
            dim.push(&d);
            value.push(&v);
            orders.push(s.orders);
            units.push(s.units);
            revenue.push(amount(s.cents));
            aov.push_opt(ratio(s.cents, s.orders).map(|x| x / 100.0));
        }
    }
    let mut columns = head.finish();
    columns.extend([
        dim.finish("dimension"),
        value.finish("value"),
        orders.finish("orders"),
        units.finish("units"),
        revenue.finish("revenue"),
        aov.finish("avg_order_value"),
    ]);
    Batch::from_columns(columns)
}
