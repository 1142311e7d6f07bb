//! `hostile-validate`: rejects every row it is given with a message of 100 KB, to show
//! that rejection messages are cut to the stage's `limits.message_bytes` before they reach
//! the dead letters. With `config = { reads = [...] }` it declares those columns as the
//! ones it reads (`host.reads`) and instead rejects every row with the names of the
//! columns it was handed, to show what crosses the boundary. Not for production pipelines.

use adstream_sdk::{
    Batch, ConfigExt, PluginError, Rejection, Setup, Validate, export_validate, reads,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Config {
    reads: Option<Vec<String>>,
}

pub struct RejectAll {
    /// Whether to report the columns received instead of the long message.
    report_columns: bool,
}

impl Validate for RejectAll {
    fn configure(setup: &Setup) -> Result<Self, PluginError> {
        let cfg: Config = setup.config()?;
        if let Some(columns) = &cfg.reads {
            reads(&columns.iter().map(String::as_str).collect::<Vec<_>>());
        }
        Ok(RejectAll {
            report_columns: cfg.reads.is_some(),
        })
    }

    fn validate(&mut self, input: &Batch, _: i64) -> Result<Vec<Rejection>, PluginError> {
        let (rule, message) = match self.report_columns {
            true => {
                let names: Vec<&str> = input.columns.iter().map(|c| c.name.as_str()).collect();
                ("received", names.join(","))
            }
            false => ("everything", "m".repeat(100 << 10)),
        };
        Ok((0..input.rows)
            .map(|row| Rejection {
                row,
                rule: rule.into(),
                message: message.clone(),
            })
            .collect())
    }
}

export_validate!(RejectAll);
