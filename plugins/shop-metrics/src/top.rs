//! `report = "top_products"`: per window, the exact top `top` products by revenue and by
//! units sold, from every order's items. Exact: every product sold in an open window is
//! counted (a catalogue's products, not events, bound the state); ties go to the lower
//! product id.

use crate::input::{Events, items, require};
use crate::money::{amount, cents};
use crate::out::{Head, head_fields};
use crate::windows::Windows;
use adstream_sdk::ColumnKind::{Dictionary, Float64, Int64};
use adstream_sdk::{Batch, DictBuilder, F64Builder, Field, I64Builder, PluginError, count, field};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const READS: &[&str] = &["event_time", "event_type", "items"];

#[derive(Default, Serialize, Deserialize, Clone)]
pub struct Sold {
    pub category: String,
    pub cents: i64,
    pub units: i64,
}

pub type Window = BTreeMap<String, Sold>;

pub fn fields() -> Vec<Field> {
    let mut f = head_fields();
    f.push(field("ranking", Dictionary, false));
    f.push(field("rank", Int64, false));
    f.push(field("product_id", Dictionary, false));
    f.push(field("category", Dictionary, false));
    f.push(field("revenue", Float64, false));
    f.push(field("units", Int64, false));
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
    let json = input.text("items")?;
    for (row, time) in ev.rows("order") {
        let Some(window) = w.slot(time) else {
            late.push(row as u32);
            continue;
        };
        let Some(items) = items(json.get(row)) else {
            count("orders_without_items", 1);
            continue;
        };
        for item in items {
            let sold = window.entry(item.product_id).or_default();
            if sold.category.is_empty() {
                sold.category = item.category;
            }
            sold.cents += cents(item.price) * item.quantity;
            sold.units += item.quantity;
        }
    }
    Ok(())
}

/// The `n` best of `window` by `key`, highest first, ties by product id.
fn best(window: &Window, n: usize, key: impl Fn(&Sold) -> i64) -> Vec<(&String, &Sold)> {
    let mut all: Vec<_> = window.iter().collect();
    all.sort_by(|a, b| key(b.1).cmp(&key(a.1)).then_with(|| a.0.cmp(b.0)));
    all.truncate(n);
    all
}

pub fn emit(
    closed: Vec<(i64, Window)>,
    size_ms: i64,
    label: &str,
    n: usize,
) -> Result<Batch, PluginError> {
    let mut head = Head::default();
    let (mut ranking, mut product, mut category) = (
        DictBuilder::default(),
        DictBuilder::default(),
        DictBuilder::default(),
    );
    let (mut rank, mut units, mut revenue) = (
        I64Builder::default(),
        I64Builder::default(),
        F64Builder::default(),
    );
    for (start, window) in &closed {
        let by_revenue = best(window, n, |s| s.cents);
        let by_units = best(window, n, |s| s.units);
        for (name, list) in [("revenue", by_revenue), ("units", by_units)] {
            for (i, (id, sold)) in list.into_iter().enumerate() {
                head.push(*start, size_ms, label);
                ranking.push(name);
                rank.push(i as i64 + 1);
                product.push(id);
                category.push(&sold.category);
                revenue.push(amount(sold.cents));
                units.push(sold.units);
            }
        }
    }
    let mut columns = head.finish();
    columns.extend([
        ranking.finish("ranking"),
        rank.finish("rank"),
        product.finish("product_id"),
        category.finish("category"),
        revenue.finish("revenue"),
        units.finish("units"),
    ]);
    Batch::from_columns(columns)
}
