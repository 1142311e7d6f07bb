//! `report = "payments"`: per window and payment method (and `all`), attempts,
//! authorised, failed and refunded payments, the amounts, and the failure rate
//! (failed ÷ attempts, where attempts are authorised + failed).

use crate::input::{Events, require};
use crate::money::{amount, cents, ratio};
use crate::out::{Head, head_fields};
use crate::windows::Windows;
use adstream_sdk::ColumnKind::{Dictionary, Float64, Int64};
use adstream_sdk::{Batch, DictBuilder, F64Builder, Field, I64Builder, PluginError, count, field};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const READS: &[&str] = &["event_time", "event_type", "method", "amount", "status"];
const COUNTS: [&str; 4] = ["attempts", "authorised", "failed", "refunded"];

#[derive(Default, Serialize, Deserialize, Clone, Copy)]
pub struct Sums {
    pub authorised: i64,
    pub failed: i64,
    pub refunded: i64,
    pub authorised_cents: i64,
    pub refunded_cents: i64,
}

pub type Window = BTreeMap<String, Sums>;

pub fn fields() -> Vec<Field> {
    let mut f = head_fields();
    f.push(field("method", Dictionary, false));
    f.extend(COUNTS.map(|c| field(c, Int64, false)));
    f.push(field("authorised_amount", Float64, false));
    f.push(field("refunded_amount", Float64, false));
    f.push(field("failure_rate", Float64, true));
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
    let (method, money, status) = (
        input.text("method")?,
        input.f64s("amount")?,
        input.text("status")?,
    );
    for (row, time) in ev.rows("payment") {
        let Some(window) = w.slot(time) else {
            late.push(row as u32);
            continue;
        };
        let c = money.get(row).map_or(0, cents);
        let by = method.get(row).unwrap_or("unknown");
        for key in ["all", by] {
            let s = window.entry(key.to_string()).or_default();
            match status.get(row) {
                Some("authorised") => {
                    (s.authorised, s.authorised_cents) = (s.authorised + 1, s.authorised_cents + c)
                }
                Some("failed") => s.failed += 1,
                Some("refunded") => {
                    (s.refunded, s.refunded_cents) = (s.refunded + 1, s.refunded_cents + c)
                }
                _ => {
                    count("payments_of_unknown_status", 1);
                    break;
                }
            }
        }
    }
    Ok(())
}

pub fn emit(closed: Vec<(i64, Window)>, size_ms: i64, label: &str) -> Result<Batch, PluginError> {
    let mut head = Head::default();
    let mut method = DictBuilder::default();
    let mut counts = [(); 4].map(|()| I64Builder::default());
    let (mut paid, mut refunded, mut rate) = (
        F64Builder::default(),
        F64Builder::default(),
        F64Builder::default(),
    );
    for (start, window) in closed {
        for (m, s) in window {
            head.push(start, size_ms, label);
            method.push(&m);
            let attempts = s.authorised + s.failed;
            for (b, v) in counts
                .iter_mut()
                .zip([attempts, s.authorised, s.failed, s.refunded])
            {
                b.push(v);
            }
            paid.push(amount(s.authorised_cents));
            refunded.push(amount(s.refunded_cents));
            rate.push_opt(ratio(s.failed, attempts));
        }
    }
    let mut columns = head.finish();
    columns.push(method.finish("method"));
    columns.extend(counts.into_iter().zip(COUNTS).map(|(b, c)| b.finish(c)));
    columns.push(paid.finish("authorised_amount"));
    columns.push(refunded.finish("refunded_amount"));
    columns.push(rate.finish("failure_rate"));
    Batch::from_columns(columns)
}
