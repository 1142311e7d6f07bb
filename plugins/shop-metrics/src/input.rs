//! The shop events' columns each report reads, checked at `configure`, and an order's
//! items parsed from their JSON.

use adstream_sdk::ColumnKind::{Float64, Text};
use adstream_sdk::{
    Batch, ColumnKind, Field, FieldsExt, INT_KINDS, PluginError, STRING_KINDS, StrCol,
};
use serde::Deserialize;

const NUMBER: &[ColumnKind] = &[Float64];
const JSON: &[ColumnKind] = &[Text];

/// The kinds each shop column must have.
fn kinds(column: &str) -> &'static [ColumnKind] {
    match column {
        "event_time" => INT_KINDS,
        "total" | "amount" | "price" => NUMBER,
        "quantity" => INT_KINDS,
        "items" => JSON,
        _ => STRING_KINDS,
    }
}

/// Checks that `input` has `columns` and declares them as the only ones the plugin reads.
pub fn require(input: &[Field], columns: &[&str]) -> Result<(), PluginError> {
    for c in columns {
        input.require(c, kinds(c))?;
    }
    adstream_sdk::reads(columns);
    Ok(())
}

/// Event time and type, which every report reads.
pub struct Events<'a> {
    pub time: adstream_sdk::I64Col<'a>,
    pub kind: StrCol<'a>,
}

impl<'a> Events<'a> {
    pub fn of(input: &'a Batch) -> Result<Self, PluginError> {
        Ok(Events {
            time: input.i64s("event_time")?,
            kind: input.text("event_type")?,
        })
    }

    /// Rows of type `kind` with an event time.
    pub fn rows(&self, kind: &'a str) -> impl Iterator<Item = (usize, i64)> + '_ {
        (0..self.time.values().len()).filter_map(move |r| {
            (self.kind.get(r) == Some(kind)).then_some(())?;
            Some((r, self.time.get(r)?))
        })
    }
}

/// One line of an order.
#[derive(Deserialize)]
pub struct Item {
    pub product_id: String,
    pub category: String,
    pub price: f64,
    pub quantity: i64,
}

/// The items of an order, or `None` if they are not a JSON array of items (the quality
/// stage rejects those before any report sees them).
pub fn items(json: Option<&str>) -> Option<Vec<Item>> {
    let items: Vec<Item> = serde_json::from_str(json?).ok()?;
    Some(items)
}
