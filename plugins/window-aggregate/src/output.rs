//! Window rows: the output schema and the builder that turns closed windows into a batch.

use crate::WindowAggregate;
use crate::state::Closed;
use adstream_sdk::ColumnKind::{Dictionary, Float64, Int64, TimestampMs};
use adstream_sdk::{Batch, DictBuilder, F64Builder, Field, I64Builder, PluginError, field};

const COUNTS: [&str; 5] = ["requests", "fills", "impressions", "clicks", "conversions"];
const RATIOS: [&str; 6] = ["ctr", "cvr", "ecpm", "cpm", "cpc", "fill_rate"];

/// The columns of a window row, in order.
pub fn fields(group_by: &[String]) -> Vec<Field> {
    let mut f = vec![
        field("window_start", TimestampMs, false),
        field("window_end", TimestampMs, false),
        field("window", Dictionary, false),
    ];
    f.extend(group_by.iter().map(|d| field(d, Dictionary, false)));
    f.extend(COUNTS.iter().map(|c| field(c, Int64, false)));
    f.push(field("revenue", Float64, false));
    f.push(field("cost", Float64, false));
    f.extend(RATIOS.iter().map(|r| field(r, Float64, true)));
    f
}

impl WindowAggregate {
    /// Closed windows as rows, ordered by window start and then by dimension values, so
    /// that the same input always gives the same output.
    pub(crate) fn emit(&self, mut closed: Vec<Closed>) -> Result<Batch, PluginError> {
        let names = &self.windows.interner;
        closed.sort_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| {
                let da = a.1.iter().map(|&i| names.name(i));
                da.cmp(b.1.iter().map(|&i| names.name(i)))
            })
        });
        let n = closed.len();
        let (mut start, mut end) = (I64Builder::with_capacity(n), I64Builder::with_capacity(n));
        let mut label = DictBuilder::default();
        let mut dims: Vec<DictBuilder> = vec![DictBuilder::default(); self.group_by.len()];
        let mut counts: Vec<I64Builder> = vec![I64Builder::with_capacity(n); COUNTS.len()];
        let (mut revenue, mut cost) = (F64Builder::with_capacity(n), F64Builder::with_capacity(n));
        let mut ratios: Vec<F64Builder> = vec![F64Builder::with_capacity(n); RATIOS.len()];
        for (s, key, sums) in &closed {
            start.push(*s);
            end.push(s + self.windows.size_ms);
            label.push(&self.label);
            for (b, &id) in dims.iter_mut().zip(key.iter()) {
                b.push(names.name(id));
            }
            let c = [
                sums.requests,
                sums.fills,
                sums.impressions,
                sums.clicks,
                sums.conversions,
            ];
            for (b, v) in counts.iter_mut().zip(c) {
                b.push(v);
            }
            revenue.push(sums.revenue);
            cost.push(sums.cost);
            let r = sums.ratios();
            for (b, v) in ratios
                .iter_mut()
                .zip([r.ctr, r.cvr, r.ecpm, r.cpm, r.cpc, r.fill_rate])
            {
                b.push_opt(v);
            }
        }
        let mut columns = vec![
            start.finish_timestamp("window_start"),
            end.finish_timestamp("window_end"),
            label.finish("window"),
        ];
        columns.extend(
            dims.into_iter()
                .zip(&self.group_by)
                .map(|(b, d)| b.finish(d)),
        );
        columns.extend(counts.into_iter().zip(COUNTS).map(|(b, c)| b.finish(c)));
        columns.push(revenue.finish("revenue"));
        columns.push(cost.finish("cost"));
        columns.extend(ratios.into_iter().zip(RATIOS).map(|(b, r)| b.finish(r)));
        Batch::from_columns(columns)
    }
}
