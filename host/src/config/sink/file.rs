//! `[sink.NAME] kind = "file"` and `kind = "stdout"`.

use crate::config::template::Template;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    pub kind: String,
    /// The output file, relative to the working directory; folders are created.
    pub path: String,
    /// Add to an existing file instead of starting it afresh.
    #[serde(default)]
    pub append: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {
    pub kind: String,
    /// A line template such as `"{country} {ad_format} ctr={ctr:%}"`; JSON when unset.
    pub template: Option<Template>,
    /// Printed before each row.
    #[serde(default)]
    pub prefix: String,
}
