//! `report = "matching"`: orders matched with their payments within a lookback (15 min
//! by default). An order is decided once the watermark passes its time plus the lookback:
//! paid (a payment was authorised), failed (payments were tried, none authorised) or
//! unpaid (none came); counted in its own window, which therefore closes a lookback later
//! than other reports' do. A payment whose order is not seen within the lookback (before
//! or after it) is an orphan, counted in the payment's window. A paid order whose
//! authorised amount differs from its total by a cent or more is a mismatch.

use crate::input::{Events, require};
use crate::money::{cents, ratio};
use crate::out::{Head, head_fields};
use crate::windows::Windows;
use adstream_sdk::ColumnKind::{Float64, Int64};
use adstream_sdk::{Batch, F64Builder, Field, I64Builder, PluginError, field};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

pub const READS: &[&str] = &[
    "event_time",
    "event_type",
    "order_id",
    "total",
    "amount",
    "status",
];
const COUNTS: [&str; 7] = [
    "orders",
    "paid",
    "failed",
    "unpaid",
    "refunded",
    "amount_mismatch",
    "orphan_payments",
];

#[derive(Default, Serialize, Deserialize, Clone, Copy)]
pub struct Sums([i64; 7]);

#[derive(Serialize, Deserialize, Clone, Copy)]
struct Open {
    time: i64,
    cents: i64,
    authorised: bool,
    failed: bool,
    refunded: bool,
    mismatch: bool,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
struct Payment {
    time: i64,
    cents: i64,
    status: Status,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq)]
enum Status {
    Authorised,
    Failed,
    Refunded,
}

#[derive(Serialize, Deserialize, Clone)]
pub struct Matching {
    pub windows: Windows<Sums>,
    lookback_ms: i64,
    lateness_ms: i64,
    open: HashMap<String, Open>,
    /// Payments whose order has not been seen, by order id.
    waiting: HashMap<String, Vec<Payment>>,
    /// Order ids (open or waiting) by event time, to decide them in time order.
    orders_due: BTreeMap<i64, Vec<String>>,
    waiting_due: BTreeMap<i64, Vec<String>>,
}

pub fn fields() -> Vec<Field> {
    let mut f = head_fields();
    f.extend(COUNTS.map(|c| field(c, Int64, false)));
    f.push(field("paid_rate", Float64, true));
    f
}

pub fn check(input: &[Field]) -> Result<(), PluginError> {
    require(input, READS)
}

impl Open {
    fn apply(&mut self, p: Payment) {
        match p.status {
            Status::Authorised => {
                self.authorised = true;
                self.mismatch |= p.cents != self.cents;
            }
            Status::Failed => self.failed = true,
            Status::Refunded => self.refunded = true,
        }
    }
}

impl Matching {
    pub fn new(size_ms: i64, lateness_ms: i64, lookback_ms: i64) -> Self {
        Matching {
            windows: Windows::new(size_ms, lateness_ms + lookback_ms),
            lookback_ms,
            lateness_ms,
            open: HashMap::new(),
            waiting: HashMap::new(),
            orders_due: BTreeMap::new(),
            waiting_due: BTreeMap::new(),
        }
    }

    pub fn fold(&mut self, input: &Batch, late: &mut Vec<u32>) -> Result<(), PluginError> {
        let ev = Events::of(input)?;
        let (order_id, total) = (input.text("order_id")?, input.f64s("total")?);
        let (money, status) = (input.f64s("amount")?, input.text("status")?);
        for row in 0..input.len() {
            let (Some(kind), Some(time), Some(id)) =
                (ev.kind.get(row), ev.time.get(row), order_id.get(row))
            else {
                continue;
            };
            if self.windows.slot(time).is_none() {
                if matches!(kind, "order" | "payment") {
                    late.push(row as u32);
                }
                continue;
            }
            match kind {
                "order" => self.order(id, time, total.get(row).map_or(0, cents)),
                "payment" => {
                    let status = match status.get(row) {
                        Some("authorised") => Status::Authorised,
                        Some("failed") => Status::Failed,
                        Some("refunded") => Status::Refunded,
                        _ => continue,
                    };
                    let cents = money.get(row).map_or(0, cents);
                    self.payment(
                        id,
                        Payment {
                            time,
                            cents,
                            status,
                        },
                    );
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn order(&mut self, id: &str, time: i64, cents: i64) {
        if self.open.contains_key(id) {
            return;
        }
        let mut open = Open {
            time,
            cents,
            authorised: false,
            failed: false,
            refunded: false,
            mismatch: false,
        };
        for p in self.waiting.remove(id).unwrap_or_default() {
            open.apply(p);
        }
        self.open.insert(id.to_string(), open);
        self.orders_due
            .entry(time)
            .or_default()
            .push(id.to_string());
    }

    fn payment(&mut self, id: &str, p: Payment) {
        let lookback = self.lookback_ms;
        match self.open.get_mut(id) {
            Some(open) if p.time <= open.time.saturating_add(lookback) => open.apply(p),
            _ => {
                self.waiting.entry(id.to_string()).or_default().push(p);
                self.waiting_due
                    .entry(p.time)
                    .or_default()
                    .push(id.to_string());
            }
        }
    }

    /// Decides the orders and orphans whose lookback ended by `horizon`.
    fn decide(&mut self, horizon: i64) {
        let cutoff = horizon.saturating_sub(self.lookback_ms);
        while let Some(entry) = self.orders_due.first_entry().filter(|e| *e.key() <= cutoff) {
            for id in entry.remove() {
                let Some(o) = self.open.remove(&id) else {
                    continue;
                };
                let outcome = if o.authorised {
                    1
                } else if o.failed {
                    2
                } else {
                    3
                };
                if let Some(s) = self.windows.slot(o.time) {
                    s.0[0] += 1;
                    s.0[outcome] += 1;
                    s.0[4] += i64::from(o.refunded);
                    s.0[5] += i64::from(o.authorised && o.mismatch);
                }
            }
        }
        while let Some(entry) = self
            .waiting_due
            .first_entry()
            .filter(|e| *e.key() <= cutoff)
        {
            let time = *entry.key();
            for id in entry.remove() {
                let Some(list) = self.waiting.get_mut(&id) else {
                    continue;
                };
                let before = list.len();
                list.retain(|p| p.time != time);
                let orphans = (before - list.len()) as i64;
                if list.is_empty() {
                    self.waiting.remove(&id);
                }
                if let Some(s) = self.windows.slot(time) {
                    s.0[6] += orphans;
                }
            }
        }
    }

    pub fn close(&mut self, watermark: i64) -> Vec<(i64, Sums)> {
        self.decide(watermark.saturating_sub(self.lateness_ms));
        self.windows.close(watermark)
    }

    /// Decides everything (the input ended) and closes every window.
    pub fn close_all(&mut self) -> Vec<(i64, Sums)> {
        self.decide(i64::MAX);
        self.windows.close_all()
    }
}

pub fn emit(closed: Vec<(i64, Sums)>, size_ms: i64, label: &str) -> Result<Batch, PluginError> {
    let mut head = Head::default();
    let mut counts = [(); 7].map(|()| I64Builder::default());
    let mut rate = F64Builder::default();
    for (start, s) in closed {
        head.push(start, size_ms, label);
        for (b, v) in counts.iter_mut().zip(s.0) {
            b.push(v);
        }
        rate.push_opt(ratio(s.0[1], s.0[0]));
    }
    let mut columns = head.finish();
    columns.extend(counts.into_iter().zip(COUNTS).map(|(b, c)| b.finish(c)));
    columns.push(rate.finish("paid_rate"));
    Batch::from_columns(columns)
}
