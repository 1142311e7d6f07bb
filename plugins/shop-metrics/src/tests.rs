use super::*;
use adstream_sdk::ColumnKind::{Dictionary, Float64, Text, TimestampMs};
use adstream_sdk::{DictBuilder, F64Builder, I64Builder, TextBuilder, field};
use serde_json::{Value, json};

const MIN: i64 = 60_000;

fn setup(config: Value) -> Setup {
    Setup {
        config: config.to_string(),
        input: vec![
            field("event_time", TimestampMs, false),
            field("event_type", Dictionary, false),
            field("order_id", Text, true),
            field("items", Text, true),
            field("total", Float64, true),
            field("method", Dictionary, true),
            field("amount", Float64, true),
            field("status", Dictionary, true),
        ],
        secrets: vec![],
    }
}

fn plugin(config: Value) -> ShopMetrics {
    ShopMetrics::configure(&setup(config)).unwrap().0
}

/// A batch of shop events given as JSON objects.
fn batch(events: &[Value]) -> Batch {
    let (mut time, mut kind) = (I64Builder::default(), DictBuilder::default());
    let (mut order, mut items) = (TextBuilder::default(), TextBuilder::default());
    let (mut total, mut amount) = (F64Builder::default(), F64Builder::default());
    let (mut method, mut status) = (DictBuilder::default(), DictBuilder::default());
    for e in events {
        time.push(e["t"].as_i64().unwrap());
        kind.push(e["type"].as_str().unwrap());
        order.push_opt(e["order"].as_str());
        let json = (!e["items"].is_null()).then(|| e["items"].to_string());
        items.push_opt(json.as_deref());
        total.push_opt(e["total"].as_f64());
        method.push_opt(e["method"].as_str());
        amount.push_opt(e["amount"].as_f64());
        status.push_opt(e["status"].as_str());
    }
    Batch::from_columns(vec![
        time.finish_timestamp("event_time"),
        kind.finish("event_type"),
        order.finish("order_id"),
        items.finish("items"),
        total.finish("total"),
        method.finish("method"),
        amount.finish("amount"),
        status.finish("status"),
    ])
    .unwrap()
}

fn item(product: &str, category: &str, price: f64, quantity: i64) -> Value {
    json!({"product_id": product, "category": category, "price": price, "quantity": quantity})
}

fn order(t: i64, id: &str, items: Vec<Value>) -> Value {
    let total: f64 = items
        .iter()
        .map(|i| i["price"].as_f64().unwrap() * i["quantity"].as_f64().unwrap())
        .sum();
    json!({"t": t, "type": "order", "order": id, "items": items, "total": (total * 100.0).round() / 100.0})
}

fn pay(t: i64, order: &str, method: &str, amount: f64, status: &str) -> Value {
    json!({"t": t, "type": "payment", "order": order, "method": method, "amount": amount, "status": status})
}

/// Rows of `b` as JSON objects, for whole-row comparisons.
fn rows(b: &Batch) -> Vec<Value> {
    (0..b.len())
        .map(|r| {
            let mut row = serde_json::Map::new();
            for c in &b.columns {
                let v = match &c.values {
                    adstream_sdk::Values::Float64(_) => c
                        .as_f64s()
                        .unwrap()
                        .get(r)
                        .map_or(Value::Null, |x| json!(x)),
                    adstream_sdk::Values::Int64(_) | adstream_sdk::Values::TimestampMs(_) => c
                        .as_i64s()
                        .unwrap()
                        .get(r)
                        .map_or(Value::Null, |x| json!(x)),
                    _ => c
                        .as_text()
                        .unwrap()
                        .get(r)
                        .map_or(Value::Null, |x| json!(x)),
                };
                row.insert(c.name.clone(), v);
            }
            Value::Object(row)
        })
        .collect()
}

fn pick(rows: &[Value], keys: &[&str]) -> Vec<Value> {
    rows.iter()
        .map(|r| Value::Array(keys.iter().map(|k| r[*k].clone()).collect()))
        .collect()
}

#[test]
fn sales_sum_cents_per_category_and_in_all() {
    let mut p = plugin(json!({"report": "sales"}));
    let input = batch(&[
        order(
            1_000,
            "o1",
            vec![item("a", "books", 10.10, 2), item("b", "toys", 0.1, 3)],
        ),
        order(2_000, "o2", vec![item("c", "books", 5.0, 1)]),
        order(MIN + 1, "o3", vec![item("a", "books", 10.10, 1)]),
    ]);
    let out = p.aggregate(&input, MIN).unwrap();
    let got = pick(
        &rows(&out.windows),
        &[
            "window_start",
            "dimension",
            "value",
            "orders",
            "units",
            "revenue",
            "avg_order_value",
        ],
    );
    assert_eq!(
        got,
        vec![
            json!([0, "all", "all", 2, 6, 25.5, 12.75]),
            json!([0, "category", "books", 2, 3, 25.2, 12.6]),
            json!([0, "category", "toys", 1, 3, 0.3, 0.3]),
        ]
    );
    let late = p
        .aggregate(
            &batch(&[order(5, "o4", vec![item("a", "books", 1.0, 1)])]),
            MIN,
        )
        .unwrap();
    assert_eq!(late.late, vec![0], "an order for a closed window is late");
    let rest = rows(&p.flush().unwrap());
    assert_eq!(
        pick(&rest, &["window_start", "value", "revenue"])[0],
        json!([MIN, "all", 10.1])
    );
}

#[test]
fn top_products_are_exact_with_ties_by_id() {
    let mut p = plugin(json!({"report": "top_products", "top": 2}));
    let input = batch(&[
        order(
            1,
            "o1",
            vec![item("c", "toys", 5.0, 4), item("a", "books", 20.0, 1)],
        ),
        order(
            2,
            "o2",
            vec![item("b", "books", 10.0, 2), item("d", "home", 1.0, 1)],
        ),
    ]);
    p.aggregate(&input, 0).unwrap();
    let got = pick(
        &rows(&p.flush().unwrap()),
        &["ranking", "rank", "product_id", "revenue", "units"],
    );
    assert_eq!(
        got,
        vec![
            json!(["revenue", 1, "a", 20.0, 1]),
            json!(["revenue", 2, "b", 20.0, 2]),
            json!(["units", 1, "c", 20.0, 4]),
            json!(["units", 2, "b", 20.0, 2]),
        ]
    );
}

#[test]
fn the_funnel_counts_steps_and_converts() {
    let mut p = plugin(json!({"report": "funnel"}));
    let mut evs: Vec<Value> = [
        "page_view",
        "product_view",
        "product_view",
        "product_view",
        "product_view",
        "add_to_cart",
        "add_to_cart",
    ]
    .iter()
    .map(|k| json!({"t": 10, "type": k}))
    .collect();
    evs.push(order(11, "o1", vec![item("a", "books", 1.0, 1)]));
    evs.push(pay(12, "o1", "card", 1.0, "failed"));
    evs.push(pay(13, "o1", "card", 1.0, "authorised"));
    p.aggregate(&batch(&evs), 0).unwrap();
    let got = rows(&p.flush().unwrap());
    let keys = [
        "page_views",
        "product_views",
        "carts",
        "orders",
        "paid",
        "view_to_cart",
        "cart_to_order",
        "order_to_paid",
        "view_to_paid",
    ];
    assert_eq!(
        pick(&got, &keys),
        vec![json!([1, 4, 2, 1, 1, 0.5, 0.5, 1.0, 0.25])]
    );
}

#[test]
fn the_overview_puts_the_key_figures_in_one_row() {
    let mut p = plugin(json!({"report": "overview"}));
    let mut evs = vec![
        json!({"t": 1, "type": "product_view"}),
        json!({"t": 1, "type": "product_view"}),
        json!({"t": 1, "type": "add_to_cart"}),
    ];
    evs.push(order(2, "o1", vec![item("a", "books", 3.0, 1)]));
    evs.push(order(2, "o2", vec![item("a", "books", 1.0, 1)]));
    evs.push(pay(3, "o1", "card", 3.0, "failed"));
    evs.push(pay(4, "o1", "card", 3.0, "authorised"));
    p.aggregate(&batch(&evs), 0).unwrap();
    let got = rows(&p.flush().unwrap());
    let keys = [
        "orders",
        "revenue",
        "avg_order_value",
        "attempts",
        "failure_rate",
        "view_to_cart",
        "cart_to_order",
        "order_to_paid",
    ];
    assert_eq!(
        pick(&got, &keys),
        vec![json!([2, 4.0, 2.0, 2, 0.5, 0.5, 2.0, 0.5])]
    );
}

#[test]
fn payments_fail_at_a_rate_per_method() {
    let mut p = plugin(json!({"report": "payments"}));
    let input = batch(&[
        pay(1, "o1", "card", 10.0, "failed"),
        pay(2, "o1", "card", 10.0, "authorised"),
        pay(3, "o2", "paypal", 5.5, "authorised"),
        pay(4, "o2", "paypal", 5.5, "refunded"),
    ]);
    p.aggregate(&input, 0).unwrap();
    let got = pick(
        &rows(&p.flush().unwrap()),
        &[
            "method",
            "attempts",
            "failed",
            "refunded",
            "authorised_amount",
            "failure_rate",
        ],
    );
    assert_eq!(
        got,
        vec![
            json!(["all", 3, 1, 1, 15.5, 1.0 / 3.0]),
            json!(["card", 2, 1, 0, 10.0, 0.5]),
            json!(["paypal", 1, 0, 1, 5.5, 0.0])
        ]
    );
}

fn matching_input() -> Vec<Value> {
    vec![
        pay(500, "o2", "card", 7.0, "authorised"), // before its order
        order(1_000, "o1", vec![item("a", "books", 10.0, 1)]),
        order(2_000, "o2", vec![item("a", "books", 7.0, 1)]),
        order(3_000, "o3", vec![item("a", "books", 3.0, 1)]),
        order(4_000, "o4", vec![item("a", "books", 4.0, 1)]),
        pay(5_000, "o1", "card", 10.0, "failed"),
        pay(6_000, "o1", "card", 10.0, "authorised"),
        pay(7_000, "o3", "card", 3.0, "failed"),
        pay(8_000, "o9", "card", 1.0, "authorised"), // no such order
        pay(9_000, "o4", "card", 4.5, "authorised"), // not its total
    ]
}

#[test]
fn matching_decides_each_order_after_the_lookback() {
    let mut p = plugin(json!({"report": "matching", "lookback": "2m"}));
    let out = p.aggregate(&batch(&matching_input()), 2 * MIN).unwrap();
    assert!(out.windows.is_empty(), "a window waits for its lookback");
    // o1 at 1 s is decided at 2m 1s; the window [0, 1m) closes at 3m.
    let late_payment = pay(2 * MIN + 1_500, "o1", "card", 10.0, "refunded");
    let out = p.aggregate(&batch(&[late_payment]), 3 * MIN).unwrap();
    let keys = [
        "orders",
        "paid",
        "failed",
        "unpaid",
        "refunded",
        "amount_mismatch",
        "orphan_payments",
        "paid_rate",
    ];
    assert_eq!(
        pick(&rows(&out.windows), &keys),
        vec![json!([4, 3, 1, 0, 0, 1, 1, 0.75])]
    );
    let rest = rows(&p.flush().unwrap());
    assert_eq!(
        pick(&rest, &["window_start", "orders", "orphan_payments"]),
        vec![json!([2 * MIN, 0, 1])],
        "a payment after its order was decided is an orphan"
    );
}

#[test]
fn a_restored_snapshot_continues_exactly() {
    for report in [
        "overview",
        "sales",
        "payments",
        "funnel",
        "top_products",
        "matching",
    ] {
        let config = json!({"report": report, "lookback": "30s"});
        let evs = matching_input();
        let (first, second) = (batch(&evs[..5]), batch(&evs[5..]));
        let mut whole = plugin(config.clone());
        whole.aggregate(&first, 0).unwrap();
        whole.aggregate(&second, 0).unwrap();
        let mut a = plugin(config.clone());
        a.aggregate(&first, 0).unwrap();
        let mut b = plugin(config);
        b.restore(&a.snapshot().unwrap()).unwrap();
        b.aggregate(&second, 0).unwrap();
        assert_eq!(
            rows(&whole.flush().unwrap()),
            rows(&b.flush().unwrap()),
            "{report}"
        );
    }
    let other = plugin(json!({"report": "funnel"})).snapshot().unwrap();
    assert!(plugin(json!({"report": "sales"})).restore(&other).is_err());
}

#[test]
fn a_bad_report_or_missing_column_is_a_config_error() {
    let e = ShopMetrics::configure(&setup(json!({"report": "profit"})))
        .err()
        .unwrap();
    assert!(
        e.describe().contains("unknown report `profit`"),
        "{}",
        e.describe()
    );
    let mut s = setup(json!({"report": "sales"}));
    s.input.retain(|f| f.name != "items");
    let e = ShopMetrics::configure(&s).err().unwrap();
    assert!(
        e.describe().contains("no column `items`"),
        "{}",
        e.describe()
    );
}
