//! {{name}}: an adstream transform. The example rule writes one text column in upper
//! case (country codes that some ad servers send as `us`).

use adstream_sdk::{
    Batch, ColumnKind, ConfigExt, Field, FieldsExt, PluginError, STRING_KINDS, Setup,
    TextBuilder, Transform, export_transform, field,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)] // a misspelt key is an error, not ignored
struct Config {
    /// The column to write in upper case.
    column: String,
}

pub struct Plugin {
    column: String,
}

impl Transform for Plugin {
    fn configure(setup: &Setup) -> Result<(Self, Vec<Field>), PluginError> {
        let cfg: Config = setup.config()?;
        setup.input.require(&cfg.column, STRING_KINDS)?;
        // The input's columns, the changed one as plain text.
        let output = (setup.input.iter())
            .map(|f| match f.name == cfg.column {
                true => field(&f.name, ColumnKind::Text, f.nullable),
                false => f.clone(),
            })
            .collect();
        Ok((Plugin { column: cfg.column }, output))
    }

    fn transform(&mut self, input: Batch) -> Result<Batch, PluginError> {
        let rows = input.len();
        let mut upper = TextBuilder::with_capacity(rows, rows * 4);
        let col = input.text(&self.column)?;
        for row in 0..rows {
            upper.push_opt(col.get(row).map(str::to_uppercase).as_deref());
        }
        let mut upper = Some(upper.finish(&self.column));
        let columns = (input.columns.into_iter())
            .map(|c| match c.name == self.column {
                true => upper.take().expect("one column has the name"),
                false => c,
            })
            .collect();
        Ok(Batch {
            rows: input.rows,
            columns,
        })
    }
}

export_transform!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_column_in_upper_case_and_keeps_nulls() {
        let setup = Setup {
            config: r#"{"column": "country"}"#.into(),
            input: vec![field("country", ColumnKind::Text, true)],
            secrets: vec![],
        };
        let (mut plugin, _) = Plugin::configure(&setup).unwrap();
        let mut country = TextBuilder::default();
        country.push("us");
        country.push_opt(None);
        let batch = Batch::from_columns(vec![country.finish("country")]).unwrap();
        let out = plugin.transform(batch).unwrap();
        let col = out.text("country").unwrap();
        assert_eq!((col.get(0), col.get(1)), (Some("US"), None));
    }

    #[test]
    fn a_column_the_input_lacks_is_a_config_error() {
        let setup = Setup {
            config: r#"{"column": "nope"}"#.into(),
            input: vec![field("country", ColumnKind::Text, true)],
            secrets: vec![],
        };
        assert!(Plugin::configure(&setup).is_err());
    }
}
