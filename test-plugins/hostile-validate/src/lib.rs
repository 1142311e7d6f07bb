//! `hostile-validate`: rejects every row it is given with a message of 100 KB, to show
//! that rejection messages are cut to the stage's `limits.message_bytes` before they reach
//! the dead letters. Not for production pipelines.

use adstream_sdk::{Batch, PluginError, Rejection, Setup, Validate, export_validate};

pub struct RejectAll;

impl Validate for RejectAll {
    fn configure(_: &Setup) -> Result<Self, PluginError> {
        Ok(RejectAll)
    }

    fn validate(&mut self, input: &Batch, _: i64) -> Result<Vec<Rejection>, PluginError> {
        let message = "m".repeat(100 << 10);
        Ok((0..input.rows)
            .map(|row| Rejection {
                row,
                rule: "everything".into(),
                message: message.clone(),
            })
            .collect())
    }
}

export_validate!(RejectAll);
