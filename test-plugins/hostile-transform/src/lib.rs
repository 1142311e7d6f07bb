//! `hostile-transform`: passes its input through unchanged, but panics when a row's
//! `event_id` is `poison` — a transform to test `on_error = "skip"` with. Not for
//! production pipelines.

use adstream_sdk::{Batch, Field, PluginError, Setup, Transform, export_transform};

pub struct HostileTransform;

impl Transform for HostileTransform {
    fn configure(setup: &Setup) -> Result<(Self, Vec<Field>), PluginError> {
        Ok((HostileTransform, setup.input.clone()))
    }

    fn transform(&mut self, input: Batch) -> Result<Batch, PluginError> {
        let ids = input.text("event_id")?;
        if (0..input.len()).any(|r| ids.get(r) == Some("poison")) {
            panic!("hostile-transform: poisoned row");
        }
        Ok(input)
    }
}

export_transform!(HostileTransform);
