//! Reading a stage's configuration and secrets in `configure`.

use crate::{PluginError, Setup};
use serde::de::DeserializeOwned;

/// Typed access to what `configure` receives.
pub trait ConfigExt {
    /// The stage's `config` table, deserialized. Use `#[serde(deny_unknown_fields)]` on
    /// `T` so that a misspelt key is an error rather than silently ignored.
    fn config<T: DeserializeOwned>(&self) -> Result<T, PluginError>;

    /// The secret called `name`, which the pipeline file must name for this stage.
    fn secret(&self, name: &str) -> Result<&[u8], PluginError>;
}

impl ConfigExt for Setup {
    fn config<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        let text = if self.config.trim().is_empty() {
            "{}"
        } else {
            &self.config
        };
        serde_json::from_str(text).map_err(|e| PluginError::InvalidConfig(strip_position(e)))
    }

    fn secret(&self, name: &str) -> Result<&[u8], PluginError> {
        self.secrets
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.value.as_slice())
            .ok_or_else(|| {
                PluginError::InvalidConfig(format!(
                    "secret `{name}` is missing: name it in the stage's `secrets` table, \
                     e.g. secrets.{name} = {{ env = \"VAR\" }}"
                ))
            })
    }
}

/// serde_json's "at line 1 column 57" points into JSON the user never wrote (the host
/// converts the TOML table); the host reports the position of the `config` table instead.
fn strip_position(e: serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
