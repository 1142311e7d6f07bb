//! `report = "funnel"`: per window, the events at each step — product views, add-to-cart,
//! orders, authorised payments — and the conversion from each step to the next
//! (page views are counted too, as the top of the funnel).

use crate::input::{Events, require};
use crate::money::ratio;
use crate::out::{Head, head_fields};
use crate::windows::Windows;
use adstream_sdk::ColumnKind::{Float64, Int64};
use adstream_sdk::{Batch, F64Builder, Field, I64Builder, PluginError, field};

pub const READS: &[&str] = &["event_time", "event_type", "status"];
const STEPS: [&str; 5] = ["page_views", "product_views", "carts", "orders", "paid"];
const RATES: [&str; 4] = [
    "view_to_cart",
    "cart_to_order",
    "order_to_paid",
    "view_to_paid",
];

/// Events per step, in `STEPS` order.
pub type Window = [i64; 5];

pub fn fields() -> Vec<Field> {
    let mut f = head_fields();
    f.extend(STEPS.map(|c| field(c, Int64, false)));
    f.extend(RATES.map(|c| field(c, Float64, true)));
    f
}

pub fn check(input: &[Field]) -> Result<(), PluginError> {
    require(input, READS)
}

fn step(kind: &str, status: Option<&str>) -> Option<usize> {
    Some(match kind {
        "page_view" => 0,
        "product_view" => 1,
        "add_to_cart" => 2,
        "order" => 3,
        "payment" if status == Some("authorised") => 4,
        _ => return None,
    })
}

pub fn fold(
    w: &mut Windows<Window>,
    input: &Batch,
    late: &mut Vec<u32>,
) -> Result<(), PluginError> {
    let ev = Events::of(input)?;
    let status = input.text("status")?;
    for row in 0..input.len() {
        let (Some(kind), Some(time)) = (ev.kind.get(row), ev.time.get(row)) else {
            continue;
        };
        let Some(i) = step(kind, status.get(row)) else {
            continue;
        };
        match w.slot(time) {
            Some(window) => window[i] += 1,
            None => late.push(row as u32),
        }
    }
    Ok(())
}

pub fn emit(closed: Vec<(i64, Window)>, size_ms: i64, label: &str) -> Result<Batch, PluginError> {
    let mut head = Head::default();
    let mut steps = [(); 5].map(|()| I64Builder::default());
    let mut rates = [(); 4].map(|()| F64Builder::default());
    for (start, s) in closed {
        head.push(start, size_ms, label);
        for (b, v) in steps.iter_mut().zip(s) {
            b.push(v);
        }
        let r = [
            ratio(s[2], s[1]),
            ratio(s[3], s[2]),
            ratio(s[4], s[3]),
            ratio(s[4], s[1]),
        ];
        for (b, v) in rates.iter_mut().zip(r) {
            b.push_opt(v);
        }
    }
    let mut columns = head.finish();
    columns.extend(steps.into_iter().zip(STEPS).map(|(b, c)| b.finish(c)));
    columns.extend(rates.into_iter().zip(RATES).map(|(b, c)| b.finish(c)));
    Batch::from_columns(columns)
}
