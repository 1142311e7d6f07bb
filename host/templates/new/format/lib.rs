//! {{name}}: an adstream format plugin. The example turns each alert row into one line of
//! text for a chat webhook or a log; a sink sends the `text` column as it is.

use adstream_sdk::{
    Batch, ColumnKind, ConfigExt, Field, FieldsExt, Format, PluginError, STRING_KINDS, Setup,
    TextBuilder, export_format, field,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)] // a misspelt key is an error, not ignored
struct Config {
    /// Put before each message, e.g. "[ads]".
    #[serde(default = "default_prefix")]
    prefix: String,
}

fn default_prefix() -> String {
    "ALERT".into()
}

pub struct Plugin {
    prefix: String,
}

impl Format for Plugin {
    fn configure(setup: &Setup) -> Result<(Self, Vec<Field>), PluginError> {
        let cfg: Config = setup.config()?;
        setup.input.require("message", STRING_KINDS)?;
        Ok((Plugin { prefix: cfg.prefix }, vec![field("text", ColumnKind::Text, false)]))
    }

    fn format(&mut self, alerts: &Batch) -> Result<Batch, PluginError> {
        let message = alerts.text("message")?;
        let mut text = TextBuilder::with_capacity(alerts.len(), alerts.len() * 64);
        for row in 0..alerts.len() {
            text.push(&format!("{}: {}", self.prefix, message.value(row)));
        }
        Batch::from_columns(vec![text.finish("text")])
    }
}

export_format!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_alert() {
        let setup = Setup {
            config: r#"{"prefix": "[ads]"}"#.into(),
            input: vec![field("message", ColumnKind::Text, false)],
            secrets: vec![],
        };
        let (mut p, _) = Plugin::configure(&setup).unwrap();
        let mut message = TextBuilder::default();
        message.push("CTR fell 60 %");
        let alerts = Batch::from_columns(vec![message.finish("message")]).unwrap();
        let out = p.format(&alerts).unwrap();
        assert_eq!(out.text("text").unwrap().get(0), Some("[ads]: CTR fell 60 %"));
    }
}
