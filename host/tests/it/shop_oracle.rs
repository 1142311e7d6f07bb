//! The shop pipeline's figures computed straight from the input lines, independently of
//! the plugins: what `shop.rs` compares the pipeline's windows with.

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

const MIN: i64 = 60_000;

pub fn cents(v: &Value) -> i64 {
    (v.as_f64().unwrap_or(0.0) * 100.0).round() as i64
}

fn minute(e: &Value) -> i64 {
    let t = e["event_time"].as_i64().unwrap();
    t - t.rem_euclid(MIN)
}

fn kind(e: &Value) -> &str {
    e["event_type"].as_str().unwrap()
}

fn items(e: &Value) -> &Vec<Value> {
    e["items"].as_array().unwrap()
}

/// Per minute: [product views, carts, orders, paid, attempts, failed, refunded] and
/// revenue in cents.
pub fn overview(events: &[Value]) -> BTreeMap<i64, ([i64; 7], i64)> {
    let mut out: BTreeMap<i64, ([i64; 7], i64)> = BTreeMap::new();
    for e in events {
        let counted: &[usize] = match (kind(e), e["status"].as_str()) {
            ("product_view", _) => &[0],
            ("add_to_cart", _) => &[1],
            ("order", _) => &[2],
            ("payment", Some("authorised")) => &[3, 4],
            ("payment", Some("failed")) => &[4, 5],
            ("payment", Some("refunded")) => &[6],
            _ => continue,
        };
        let slot = out.entry(minute(e)).or_default();
        counted.iter().for_each(|&i| slot.0[i] += 1);
        if kind(e) == "order" {
            slot.1 += cents(&e["total"]);
        }
    }
    out
}

/// (minute, dimension, value) → [orders, units, cents].
pub fn sales(events: &[Value]) -> BTreeMap<(i64, String, String), [i64; 3]> {
    let mut out: BTreeMap<_, [i64; 3]> = BTreeMap::new();
    for e in events.iter().filter(|e| kind(e) == "order") {
        let m = minute(e);
        let units: i64 = items(e)
            .iter()
            .map(|i| i["quantity"].as_i64().unwrap())
            .sum();
        let all = out.entry((m, "all".into(), "all".into())).or_default();
        all[0] += 1;
        all[1] += units;
        all[2] += cents(&e["total"]);
        let mut categories: Vec<&str> = items(e)
            .iter()
            .map(|i| i["category"].as_str().unwrap())
            .collect();
        categories.sort();
        categories.dedup();
        for c in categories {
            let slot = out.entry((m, "category".into(), c.into())).or_default();
            slot[0] += 1;
            for i in items(e).iter().filter(|i| i["category"] == c) {
                let q = i["quantity"].as_i64().unwrap();
                slot[1] += q;
                slot[2] += cents(&i["price"]) * q;
            }
        }
    }
    out
}

/// (minute, method) → [authorised, failed, refunded, authorised cents].
pub fn payments(events: &[Value]) -> BTreeMap<(i64, String), [i64; 4]> {
    let mut out: BTreeMap<_, [i64; 4]> = BTreeMap::new();
    for e in events.iter().filter(|e| kind(e) == "payment") {
        for method in ["all", e["method"].as_str().unwrap()] {
            let slot = out.entry((minute(e), method.to_string())).or_default();
            match e["status"].as_str().unwrap() {
                "authorised" => (slot[0], slot[3]) = (slot[0] + 1, slot[3] + cents(&e["amount"])),
                "failed" => slot[1] += 1,
                _ => slot[2] += 1,
            }
        }
    }
    out
}

/// (minute, ranking) → the best products as (product, units, cents), best first.
pub type Tops = BTreeMap<(i64, String), Vec<(String, i64, i64)>>;

/// The top `n` products of each minute, by revenue and by units, ties by id.
pub fn top(events: &[Value], n: usize) -> Tops {
    let mut sold: BTreeMap<i64, BTreeMap<String, (i64, i64)>> = BTreeMap::new();
    for e in events.iter().filter(|e| kind(e) == "order") {
        let window = sold.entry(minute(e)).or_default();
        for i in items(e) {
            let q = i["quantity"].as_i64().unwrap();
            let s = window
                .entry(i["product_id"].as_str().unwrap().into())
                .or_default();
            s.0 += q;
            s.1 += cents(&i["price"]) * q;
        }
    }
    let mut out = BTreeMap::new();
    for (m, products) in sold {
        for (ranking, by_units) in [("revenue", false), ("units", true)] {
            let mut all: Vec<(String, i64, i64)> = products
                .iter()
                .map(|(p, s)| (p.clone(), s.0, s.1))
                .collect();
            all.sort_by_key(|(p, u, c)| {
                (std::cmp::Reverse(if by_units { *u } else { *c }), p.clone())
            });
            all.truncate(n);
            out.insert((m, ranking.to_string()), all);
        }
    }
    out
}

/// Per minute: [orders, paid, failed, unpaid, refunded, amount mismatch, orphan payments],
/// with payments matched to their order within `lookback` after it.
pub fn matching(events: &[Value], lookback: i64) -> BTreeMap<i64, [i64; 7]> {
    let mut by_order: HashMap<&str, Vec<&Value>> = HashMap::new();
    for p in events.iter().filter(|e| kind(e) == "payment") {
        by_order
            .entry(p["order_id"].as_str().unwrap())
            .or_default()
            .push(p);
    }
    let mut out: BTreeMap<i64, [i64; 7]> = BTreeMap::new();
    let mut matched = std::collections::HashSet::new();
    for o in events.iter().filter(|e| kind(e) == "order") {
        let t = o["event_time"].as_i64().unwrap();
        let within: Vec<&Value> = (by_order
            .get(o["order_id"].as_str().unwrap())
            .into_iter()
            .flatten())
        .filter(|p| (t..=t + lookback).contains(&p["event_time"].as_i64().unwrap()))
        .copied()
        .collect();
        within.iter().for_each(|p| {
            matched.insert(p["payment_id"].as_str().unwrap());
        });
        let status = |s: &'static str| within.iter().filter(move |p| p["status"] == s);
        let paid = status("authorised").count() > 0;
        let outcome = if paid {
            1
        } else if status("failed").count() > 0 {
            2
        } else {
            3
        };
        let slot = out.entry(minute(o)).or_default();
        slot[0] += 1;
        slot[outcome] += 1;
        slot[4] += i64::from(status("refunded").count() > 0);
        slot[5] += i64::from(
            paid && status("authorised").any(|p| cents(&p["amount"]) != cents(&o["total"])),
        );
    }
    for p in events.iter().filter(|e| kind(e) == "payment") {
        if !matched.contains(p["payment_id"].as_str().unwrap()) {
            out.entry(minute(p)).or_default()[6] += 1;
        }
    }
    out
}
