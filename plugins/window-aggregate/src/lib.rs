//! `window-aggregate`: tumbling event-time windows of ad metrics.
//!
//! ```toml
//! config = { window = "1m", group_by = ["country", "ad_format"], lateness = "10s" }
//! ```
//!
//! Counts requests, fills (requests with a `network`), impressions, clicks and
//! conversions, sums revenue and cost, and derives CTR, CVR, eCPM, CPM, CPC and fill rate
//! from the sums when a window closes. A window closes when the watermark passes its end
//! plus the allowed lateness; rows that arrive for a closed window are returned as late
//! (the host dead-letters them), never dropped.

mod groups;
mod intern;
mod output;
mod snapshot;
mod state;
pub mod sums;

use adstream_sdk::time::parse_duration_ms;
use adstream_sdk::{
    Aggregate, AggregateOutput, Batch, ConfigExt, Field, FieldsExt, INT_KINDS, PluginError,
    STRING_KINDS, Setup, count, export_aggregate,
};
use intern::DimReader;
use serde::Deserialize;
use state::Windows;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    window: String,
    group_by: Vec<String>,
    #[serde(default = "zero")]
    lateness: String,
    /// The value of the `window` column in the output; defaults to `window`.
    label: Option<String>,
    #[serde(default)]
    columns: Columns,
}

fn zero() -> String {
    "0s".to_string()
}

/// The input columns the plugin reads, renamable for other event schemas.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
struct Columns {
    time: String,
    event_type: String,
    network: String,
    revenue: String,
    cost: String,
}

impl Default for Columns {
    fn default() -> Self {
        Columns {
            time: "event_time".into(),
            event_type: "event_type".into(),
            network: "network".into(),
            revenue: "revenue".into(),
            cost: "cost".into(),
        }
    }
}

/// The configured aggregation.
pub struct WindowAggregate {
    label: String,
    group_by: Vec<String>,
    columns: Columns,
    windows: Windows,
}

/// Event types, decoded once per dictionary key.
#[derive(Clone, Copy, PartialEq)]
enum EventType {
    Request,
    Impression,
    Click,
    Conversion,
    Other,
}

impl EventType {
    fn parse(s: &str) -> EventType {
        match s {
            "request" => EventType::Request,
            "impression" => EventType::Impression,
            "click" => EventType::Click,
            "conversion" => EventType::Conversion,
            _ => EventType::Other,
        }
    }
}

fn config_error(key: &str) -> impl Fn(String) -> PluginError + '_ {
    move |e| PluginError::InvalidConfig(format!("{key}: {e}"))
}

impl WindowAggregate {
    fn check_input(cfg: &Config, input: &[Field]) -> Result<(), PluginError> {
        let c = &cfg.columns;
        input.require(&c.time, INT_KINDS)?;
        input.require(&c.event_type, STRING_KINDS)?;
        input.require(&c.network, STRING_KINDS)?;
        for money in [&c.revenue, &c.cost] {
            input.require(money, &[adstream_sdk::ColumnKind::Float64])?;
        }
        for dim in &cfg.group_by {
            input.require(dim, STRING_KINDS)?;
        }
        // Only these columns cross the boundary (7 of the seed's 17 by default).
        let mut reads = vec![&c.time, &c.event_type, &c.network, &c.revenue, &c.cost];
        reads.extend(&cfg.group_by);
        let reads: Vec<&str> = reads.into_iter().map(String::as_str).collect();
        adstream_sdk::reads(&reads);
        Ok(())
    }

    fn fold(&mut self, input: &Batch) -> Result<Vec<u32>, PluginError> {
        let c = &self.columns;
        let time = input.i64s(&c.time)?;
        let types = input.text(&c.event_type)?;
        let network = input.text(&c.network)?;
        let (revenue, cost) = (input.f64s(&c.revenue)?, input.f64s(&c.cost)?);
        let mut dims: Vec<DimReader> = self
            .group_by
            .iter()
            .map(|d| input.text(d).map(DimReader::new))
            .collect::<Result<_, _>>()?;
        let mut type_by_key: Vec<Option<EventType>> = Vec::new();
        let mut key = vec![0u32; dims.len()];
        let (mut late, mut other) = (Vec::new(), 0u64);
        for row in 0..input.len() {
            let Some(t) = time.get(row) else {
                late.push(row as u32);
                continue;
            };
            for (slot, dim) in key.iter_mut().zip(dims.iter_mut()) {
                *slot = dim.id(row, &mut self.windows.interner);
            }
            let start = self.windows.start_of(t);
            let Some(sums) = self.windows.slot(start, &key) else {
                late.push(row as u32);
                continue;
            };
            let event_type = match types.key(row) {
                Some(k) => {
                    let k = k as usize;
                    if k >= type_by_key.len() {
                        type_by_key.resize(k + 1, None);
                    }
                    *type_by_key[k].get_or_insert_with(|| EventType::parse(types.value(row)))
                }
                None => EventType::parse(types.value(row)),
            };
            match event_type {
                EventType::Request => {
                    sums.requests += 1;
                    sums.fills += i64::from(network.get(row).is_some_and(|n| !n.is_empty()));
                }
                EventType::Impression => sums.impressions += 1,
                EventType::Click => sums.clicks += 1,
                EventType::Conversion => sums.conversions += 1,
                EventType::Other => other += 1,
            }
            sums.revenue += revenue.get(row).unwrap_or(0.0);
            sums.cost += cost.get(row).unwrap_or(0.0);
        }
        if other > 0 {
            count("unknown_event_type", other);
        }
        if !late.is_empty() {
            count("late_rows", late.len() as u64);
        }
        Ok(late)
    }
}

impl Aggregate for WindowAggregate {
    fn configure(setup: &Setup) -> Result<(Self, Vec<Field>), PluginError> {
        let cfg: Config = setup.config()?;
        let size_ms = parse_duration_ms(&cfg.window).map_err(config_error("window"))?;
        let lateness_ms = parse_duration_ms(&cfg.lateness).map_err(config_error("lateness"))?;
        if size_ms <= 0 {
            return Err(PluginError::InvalidConfig(
                "window must be longer than 0".into(),
            ));
        }
        Self::check_input(&cfg, &setup.input)?;
        let fields = output::fields(&cfg.group_by);
        let dims = cfg.group_by.len();
        let plugin = WindowAggregate {
            label: cfg.label.unwrap_or_else(|| cfg.window.clone()),
            group_by: cfg.group_by,
            columns: cfg.columns,
            windows: Windows::new(size_ms, lateness_ms, dims),
        };
        Ok((plugin, fields))
    }

    fn aggregate(&mut self, input: &Batch, watermark: i64) -> Result<AggregateOutput, PluginError> {
        let late = self.fold(input)?;
        let closed = self.windows.close(watermark);
        let windows = self.emit(closed)?;
        self.windows.compact();
        Ok(AggregateOutput { windows, late })
    }

    fn flush(&mut self) -> Result<Batch, PluginError> {
        let closed = self.windows.close_all();
        self.emit(closed)
    }

    fn snapshot(&self) -> Result<Vec<u8>, PluginError> {
        self.windows.snapshot(&self.group_by)
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), PluginError> {
        self.windows.restore(state, &self.group_by)
    }
}

export_aggregate!(WindowAggregate);

#[cfg(test)]
mod tests;
