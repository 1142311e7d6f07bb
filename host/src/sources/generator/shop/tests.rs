//! The shop generator, through `GeneratorSource` as a pipeline sees it.

use crate::batch::RawBatch;
use crate::config::source::GeneratorConfig;
use crate::sources::generator::GeneratorSource;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

fn events(extra: &str, n: u64) -> Vec<Value> {
    let text =
        format!("kind = \"generator\"\nrate = 1000.0\npace = false\nstart = 0\n[shop]\n{extra}");
    let cfg: GeneratorConfig = toml::from_str(&text).unwrap();
    let mut g = GeneratorSource::new(&cfg).unwrap();
    let mut b = RawBatch::default();
    g.generate(n, &mut b);
    (0..b.len())
        .map(|i| serde_json::from_slice(b.record(i)).unwrap())
        .collect()
}

fn of<'a>(evs: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> {
    evs.iter().filter(move |e| e["event_type"] == kind)
}

fn cents(v: &Value) -> i64 {
    (v.as_f64().unwrap() * 100.0).round() as i64
}

/// Share of payments that failed, among those whose method passes `keep`.
fn failure_share(evs: &[Value], keep: impl Fn(&str) -> bool) -> f64 {
    let pays: Vec<_> = of(evs, "payment")
        .filter(|p| keep(p["method"].as_str().unwrap()) && p["status"] != "refunded")
        .collect();
    let failed = pays.iter().filter(|p| p["status"] == "failed").count();
    failed as f64 / pays.len() as f64
}

#[test]
fn sessions_orders_and_payments_hang_together() {
    let evs = events("", 60_000);
    assert_eq!(
        evs,
        events("", 60_000),
        "the same seed gives the same events"
    );
    let mut orders = BTreeMap::new();
    for o in of(&evs, "order") {
        let sum: i64 = (o["items"].as_array().unwrap().iter())
            .map(|i| cents(&i["price"]) * i["quantity"].as_i64().unwrap())
            .sum();
        assert_eq!(cents(&o["total"]), sum, "{o}");
        assert!(o["email"].as_str().unwrap().contains('@'));
        orders.insert(
            o["order_id"].as_str().unwrap().to_string(),
            cents(&o["total"]),
        );
    }
    let pays: Vec<_> = of(&evs, "payment").collect();
    assert!(orders.len() > 500, "{} orders", orders.len());
    for p in &pays {
        let order = p["order_id"].as_str().unwrap();
        assert!(
            orders.contains_key(order),
            "a payment comes after its order: {p}"
        );
    }
    let ids: BTreeSet<_> = pays
        .iter()
        .map(|p| p["payment_id"].as_str().unwrap())
        .collect();
    assert!(ids.len() < pays.len(), "some payments are sent twice");
    let mismatched = pays
        .iter()
        .filter(|p| orders[p["order_id"].as_str().unwrap()] != cents(&p["amount"]))
        .count();
    assert!(
        mismatched < pays.len() / 50,
        "{mismatched} of {}",
        pays.len()
    );
    let share = failure_share(&evs, |_| true);
    assert!((0.01..0.06).contains(&share), "failures {share}");
    let views = of(&evs, "product_view").count();
    let top = of(&evs, "product_view")
        .filter(|v| v["product_id"] == "p00000")
        .count();
    assert!(
        top * 40 > views,
        "Zipf: the first product is popular ({top} of {views})"
    );
}

#[test]
fn each_scenario_bends_its_measure() {
    let at = "at = \"20s\"\nduration = \"60s\"";
    let base = events("", 80_000);
    let scenario = |kind: &str, target: &str| {
        events(
            &format!("[[shop.scenario]]\nkind = \"{kind}\"\n{at}\n{target}"),
            80_000,
        )
    };
    let outage = scenario("payment_outage", "target = \"paypal\"");
    let paypal = |m: &str| m == "paypal";
    assert!(failure_share(&outage, paypal) > 3.0 * failure_share(&base, paypal));
    assert!(failure_share(&outage, |m| m == "card") < 0.06);

    let viral = scenario("viral_product", "target = \"p00300\"");
    let hits = |evs: &[Value]| {
        of(evs, "product_view")
            .filter(|v| v["product_id"] == "p00300")
            .count()
    };
    assert!(
        hits(&viral) > 20 * hits(&base).max(1),
        "{} vs {}",
        hits(&viral),
        hits(&base)
    );

    let per_order = |evs: &[Value]| {
        let totals: Vec<i64> = of(evs, "order").map(|o| cents(&o["total"])).collect();
        totals.iter().sum::<i64>() as f64 / totals.len() as f64
    };
    assert!(per_order(&scenario("price_bug", "")) < 0.6 * per_order(&base));

    let orders_per_cart =
        |evs: &[Value]| of(evs, "order").count() as f64 / of(evs, "add_to_cart").count() as f64;
    assert!(orders_per_cart(&scenario("checkout_broken", "")) < 0.6 * orders_per_cart(&base));
}

#[test]
fn a_bad_target_or_ad_scenarios_are_refused() {
    let bad = |text: &str| {
        let cfg: GeneratorConfig = toml::from_str(text).unwrap();
        GeneratorSource::new(&cfg).err().map(|e| e.to_string())
    };
    let head = "kind = \"generator\"\n";
    let e = bad(&format!(
        "{head}[shop]\n[[shop.scenario]]\nkind = \"payment_outage\"\nat = \"1s\"\ntarget = \"cash\""
    ))
    .unwrap();
    assert!(
        e.contains("shop scenario 1: no payment method `cash`"),
        "{e}"
    );
    let e = bad(&format!("{head}[shop]\n[[scenario]]\nkind = \"ctr_drop\"\nat = \"1s\"\ncountry = \"US\"\nad_format = \"banner\"")).unwrap();
    assert!(e.contains("[[source.shop.scenario]]"), "{e}");
}
