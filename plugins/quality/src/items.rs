//! `items_total`: an order's total equals the sum of its items' price × quantity (to the
//! cent), its items being a JSON array of objects with `price` and `quantity`.

use crate::Failures;
use adstream_sdk::{Batch, PluginError};
use serde::Deserialize;

#[derive(Deserialize)]
struct Item {
    price: f64,
    quantity: i64,
}

/// The sum of the items in cents, or why they are not items.
fn sum_cents(json: &str) -> Result<i64, String> {
    let items: Vec<Item> = serde_json::from_str(json).map_err(|e| e.to_string())?;
    Ok(items
        .iter()
        .map(|i| (i.price * 100.0).round() as i64 * i.quantity)
        .sum())
}

pub fn check(
    input: &Batch,
    total: &str,
    items: &str,
    out: &mut Failures,
) -> Result<(), PluginError> {
    let (totals, lists) = (input.f64s(total)?, input.text(items)?);
    for row in 0..input.len() {
        if out.failed(row) {
            continue;
        }
        let Some(t) = totals.get(row) else {
            out.fail(row, format!("{total} is null"));
            continue;
        };
        match lists.get(row).map(sum_cents) {
            None => out.fail(row, format!("{items} is null")),
            Some(Err(e)) => out.fail(
                row,
                format!("{items} is not a list of {{price, quantity}}: {e}"),
            ),
            Some(Ok(sum)) if sum != (t * 100.0).round() as i64 => {
                let msg = format!(
                    "{total} {t} is not the sum of its {items} ({:.2})",
                    sum as f64 / 100.0
                );
                out.fail(row, msg);
            }
            Some(Ok(_)) => {}
        }
    }
    Ok(())
}
