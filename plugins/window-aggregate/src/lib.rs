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

mod fold;
mod groups;
mod intern;
mod merge;
mod output;
mod snapshot;
mod state;
pub mod sums;

use adstream_sdk::time::parse_duration_ms;
use adstream_sdk::{
    Aggregate, AggregateOutput, Batch, ConfigExt, Field, FieldsExt, INT_KINDS, MergeAggregate,
    PluginError, STRING_KINDS, Setup, count, export_mergeable_aggregate,
};
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
    /// The partial windows of other instances being merged (`merge.rs`); empty in an
    /// instance that aggregates events.
    partials: merge::Partials,
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
        let cols = fold::Cols {
            time: input.i64s(&c.time)?,
            types: input.text(&c.event_type)?,
            network: input.text(&c.network)?,
            revenue: input.f64s(&c.revenue)?,
            cost: input.f64s(&c.cost)?,
            dims: self
                .group_by
                .iter()
                .map(|d| input.text(d))
                .collect::<Result<_, _>>()?,
        };
        let folded = fold::fold(&mut self.windows, &cols, input.len());
        if folded.other > 0 {
            count("unknown_event_type", folded.other);
        }
        if !folded.late.is_empty() {
            count("late_rows", folded.late.len() as u64);
        }
        Ok(folded.late)
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
            partials: merge::Partials::default(),
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
        let mut closed = self.windows.close_all();
        closed.extend(self.flush_partials());
        self.emit(closed)
    }

    fn snapshot(&self) -> Result<Vec<u8>, PluginError> {
        snapshot::with_partials(self.windows.snapshot(&self.group_by)?, &self.partials)
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), PluginError> {
        let (windows, partials) = snapshot::split_partials(state)?;
        self.windows.restore(windows, &self.group_by)?;
        self.partials = partials;
        Ok(())
    }
}

impl MergeAggregate for WindowAggregate {
    fn merge(&mut self, partials: &Batch, watermark: i64) -> Result<AggregateOutput, PluginError> {
        self.merge_partials(partials, watermark)
    }
}

export_mergeable_aggregate!(WindowAggregate);

#[cfg(test)]
mod tests;
