//! `shop-metrics`: the windows of seed 000's e-commerce pipeline, one report per stage.
//!
//! ```toml
//! config = { report = "sales", window = "1m", lateness = "5s" }
//! config = { report = "top_products", window = "1m", top = 10 }
//! config = { report = "matching", window = "1m", lookback = "15m" }
//! ```
//!
//! Reports: `overview` (one row of key figures per window, what anomaly rules read),
//! `sales` (orders, units, revenue, average order value; all and per category),
//! `payments` (attempts, failures and amounts per method), `funnel` (views → cart →
//! order → paid), `top_products` (exact top N by revenue and by units) and `matching`
//! (orders ↔ payments within a lookback). Money is summed in whole cents, so every sum
//! is exact and the same however the input was batched. A window closes when the
//! watermark passes its end plus `lateness` (plus `lookback` for matching); rows for a
//! closed window are returned as late, never dropped.

mod funnel;
mod input;
mod matching;
mod money;
mod out;
mod overview;
mod payments;
mod sales;
mod top;
mod windows;

use adstream_sdk::time::parse_duration_ms;
use adstream_sdk::{
    Aggregate, AggregateOutput, Batch, ConfigExt, Field, PluginError, Setup, export_aggregate,
};
use serde::{Deserialize, Serialize};
use windows::Windows;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    report: String,
    #[serde(default = "minute")]
    window: String,
    #[serde(default = "zero")]
    lateness: String,
    #[serde(default = "quarter")]
    lookback: String,
    #[serde(default = "ten")]
    top: usize,
    /// The value of the `window` column; defaults to `window`.
    label: Option<String>,
}

fn minute() -> String {
    "1m".into()
}
fn zero() -> String {
    "0s".into()
}
fn quarter() -> String {
    "15m".into()
}
fn ten() -> usize {
    10
}

/// A report's open windows: what a snapshot holds.
#[derive(Serialize, Deserialize)]
enum State {
    Overview(Windows<overview::Window>),
    Sales(Windows<sales::Window>),
    Payments(Windows<payments::Window>),
    Funnel(Windows<funnel::Window>),
    Top(Windows<top::Window>),
    Matching(Box<matching::Matching>),
}

pub struct ShopMetrics {
    state: State,
    label: String,
    size_ms: i64,
    top: usize,
}

fn duration(key: &str, text: &str) -> Result<i64, PluginError> {
    parse_duration_ms(text).map_err(|e| PluginError::InvalidConfig(format!("{key}: {e}")))
}

impl ShopMetrics {
    fn state(cfg: &Config, input: &[Field]) -> Result<(State, Vec<Field>), PluginError> {
        let size = duration("window", &cfg.window)?;
        let late = duration("lateness", &cfg.lateness)?;
        if size <= 0 {
            return Err(PluginError::InvalidConfig(
                "window must be longer than 0".into(),
            ));
        }
        Ok(match cfg.report.as_str() {
            "overview" => (
                overview::check(input).map(|()| State::Overview(Windows::new(size, late)))?,
                overview::fields(),
            ),
            "sales" => (
                sales::check(input).map(|()| State::Sales(Windows::new(size, late)))?,
                sales::fields(),
            ),
            "payments" => (
                payments::check(input).map(|()| State::Payments(Windows::new(size, late)))?,
                payments::fields(),
            ),
            "funnel" => (
                funnel::check(input).map(|()| State::Funnel(Windows::new(size, late)))?,
                funnel::fields(),
            ),
            "top_products" => (
                top::check(input).map(|()| State::Top(Windows::new(size, late)))?,
                top::fields(),
            ),
            "matching" => {
                matching::check(input)?;
                let lookback = duration("lookback", &cfg.lookback)?;
                (
                    State::Matching(Box::new(matching::Matching::new(size, late, lookback))),
                    matching::fields(),
                )
            }
            other => {
                return Err(PluginError::InvalidConfig(format!(
                    "report: unknown report `{other}` (overview, sales, payments, funnel, top_products, matching)"
                )));
            }
        })
    }

    fn fold(&mut self, input: &Batch) -> Result<Vec<u32>, PluginError> {
        let mut late = Vec::new();
        match &mut self.state {
            State::Overview(w) => overview::fold(w, input, &mut late)?,
            State::Sales(w) => sales::fold(w, input, &mut late)?,
            State::Payments(w) => payments::fold(w, input, &mut late)?,
            State::Funnel(w) => funnel::fold(w, input, &mut late)?,
            State::Top(w) => top::fold(w, input, &mut late)?,
            State::Matching(m) => m.fold(input, &mut late)?,
        }
        if !late.is_empty() {
            adstream_sdk::count("late_rows", late.len() as u64);
        }
        Ok(late)
    }

    /// Closes the windows `watermark` closes (every window when `None`) and emits them.
    fn close(&mut self, watermark: Option<i64>) -> Result<Batch, PluginError> {
        let (size, label) = (self.size_ms, self.label.as_str());
        fn take<S: Default>(w: &mut Windows<S>, at: Option<i64>) -> Vec<(i64, S)> {
            match at {
                Some(at) => w.close(at),
                None => w.close_all(),
            }
        }
        match &mut self.state {
            State::Overview(w) => overview::emit(take(w, watermark), size, label),
            State::Sales(w) => sales::emit(take(w, watermark), size, label),
            State::Payments(w) => payments::emit(take(w, watermark), size, label),
            State::Funnel(w) => funnel::emit(take(w, watermark), size, label),
            State::Top(w) => top::emit(take(w, watermark), size, label, self.top),
            State::Matching(m) => {
                let closed = match watermark {
                    Some(at) => m.close(at),
                    None => m.close_all(),
                };
                matching::emit(closed, size, label)
            }
        }
    }
}

impl Aggregate for ShopMetrics {
    fn configure(setup: &Setup) -> Result<(Self, Vec<Field>), PluginError> {
        let cfg: Config = setup.config()?;
        let (state, fields) = Self::state(&cfg, &setup.input)?;
        let plugin = ShopMetrics {
            state,
            label: cfg.label.unwrap_or_else(|| cfg.window.clone()),
            size_ms: duration("window", &cfg.window)?,
            top: cfg.top,
        };
        Ok((plugin, fields))
    }

    fn aggregate(&mut self, input: &Batch, watermark: i64) -> Result<AggregateOutput, PluginError> {
        let late = self.fold(input)?;
        let windows = self.close(Some(watermark))?;
        Ok(AggregateOutput { windows, late })
    }

    fn flush(&mut self) -> Result<Batch, PluginError> {
        self.close(None)
    }

    fn snapshot(&self) -> Result<Vec<u8>, PluginError> {
        postcard::to_allocvec(&self.state).map_err(|e| PluginError::Other(format!("snapshot: {e}")))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), PluginError> {
        let restored: State = postcard::from_bytes(state)
            .map_err(|e| PluginError::InvalidState(format!("unreadable snapshot: {e}")))?;
        if std::mem::discriminant(&restored) != std::mem::discriminant(&self.state) {
            return Err(PluginError::InvalidState(
                "the snapshot is of another report".into(),
            ));
        }
        self.state = restored;
        Ok(())
    }
}

export_aggregate!(ShopMetrics);

#[cfg(test)]
mod tests;
