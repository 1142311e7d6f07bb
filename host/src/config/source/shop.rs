//! `[source.shop]`: the generator's e-commerce mode (seed 000) — a catalogue, sessions of
//! views, carts, orders and payments, and the shop's anomaly scenarios.

use crate::config::units::Duration;
use serde::Deserialize;

/// `[source.shop]`: present, the generator writes shop events instead of ad events.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopConfig {
    /// Products in the catalogue; popularity follows Zipf's law over them.
    #[serde(default = "default_products")]
    pub products: u32,
    /// Distinct shoppers.
    #[serde(default = "default_users")]
    pub users: u64,
    /// Share of payment attempts that fail outside any scenario.
    #[serde(default = "default_failure_rate")]
    pub failure_rate: f64,
    /// Share of payments that arrive minutes after their order.
    #[serde(default = "default_late_payments")]
    pub late_payments: f64,
    /// Share of payments sent twice (a provider's retry).
    #[serde(default = "default_duplicates")]
    pub duplicate_payments: f64,
    #[serde(default)]
    pub scenario: Vec<ShopScenarioConfig>,
}

fn default_products() -> u32 {
    500
}
fn default_users() -> u64 {
    100_000
}
fn default_failure_rate() -> f64 {
    0.03
}
fn default_late_payments() -> f64 {
    0.02
}
fn default_duplicates() -> f64 {
    0.01
}

/// The shop's four anomalies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShopScenarioKind {
    /// One product takes `factor` of all product views.
    ViralProduct,
    /// Payments by one method (or all) fail at rate `factor`.
    PaymentOutage,
    /// Prices in one category (or all) are multiplied by `factor`.
    PriceBug,
    /// Carts turn into orders `factor` times as often.
    CheckoutBroken,
}

impl ShopScenarioKind {
    pub const NAMES: &str = "viral_product, payment_outage, price_bug, checkout_broken";

    /// The factor used when the scenario names none.
    pub fn default_factor(self) -> f64 {
        match self {
            ShopScenarioKind::ViralProduct => 0.3,
            ShopScenarioKind::PaymentOutage => 0.6,
            ShopScenarioKind::PriceBug => 0.1,
            ShopScenarioKind::CheckoutBroken => 0.1,
        }
    }
}

/// `[[source.shop.scenario]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopScenarioConfig {
    pub kind: ShopScenarioKind,
    /// Event time after the start when it begins, e.g. "2m".
    pub at: Duration,
    #[serde(default = "default_duration")]
    pub duration: Duration,
    /// The product (viral_product, default the 50th most popular), payment method
    /// (payment_outage, default every method) or category (price_bug, default every one).
    pub target: Option<String>,
    pub factor: Option<f64>,
}

fn default_duration() -> Duration {
    Duration::from_secs(60)
}
