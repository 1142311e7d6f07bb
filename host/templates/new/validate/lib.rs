//! {{name}}: an adstream validate plugin. The example rule rejects rows whose number in
//! one column is below a minimum (a negative revenue); the host sends rejected rows to
//! the dead letters with the rule and the message, and passes the others on.

use adstream_sdk::{
    Batch, ColumnKind, ConfigExt, FieldsExt, PluginError, Rejection, Setup, Validate,
    export_validate,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)] // a misspelt key is an error, not ignored
struct Config {
    column: String,
    min: f64,
}

pub struct Plugin {
    column: String,
    min: f64,
}

impl Validate for Plugin {
    fn configure(setup: &Setup) -> Result<Self, PluginError> {
        let cfg: Config = setup.config()?;
        setup.input.require(&cfg.column, &[ColumnKind::Float64])?;
        Ok(Plugin {
            column: cfg.column,
            min: cfg.min,
        })
    }

    fn validate(&mut self, input: &Batch, _watermark: i64) -> Result<Vec<Rejection>, PluginError> {
        let col = input.f64s(&self.column)?;
        let rejections = (0..input.len())
            .filter_map(|row| {
                let value = col.get(row)?; // a null breaks no minimum
                (value < self.min).then(|| Rejection {
                    row: row as u32,
                    rule: format!("min:{}", self.column),
                    message: format!("{} {value} is below {}", self.column, self.min),
                })
            })
            .collect();
        Ok(rejections)
    }
}

export_validate!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use adstream_sdk::{F64Builder, field};

    #[test]
    fn rejects_only_rows_below_the_minimum() {
        let setup = Setup {
            config: r#"{"column": "revenue", "min": 0.0}"#.into(),
            input: vec![field("revenue", ColumnKind::Float64, true)],
            secrets: vec![],
        };
        let mut plugin = Plugin::configure(&setup).unwrap();
        let mut revenue = F64Builder::default();
        for v in [Some(1.5), Some(-0.25), None, Some(0.0)] {
            revenue.push_opt(v);
        }
        let batch = Batch::from_columns(vec![revenue.finish("revenue")]).unwrap();
        let rejected = plugin.validate(&batch, 0).unwrap();
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].row, 1);
        assert_eq!(rejected[0].message, "revenue -0.25 is below 0");
    }
}
