//! `tls = { ca = "path/ca.pem" }` on a service's settings (ClickHouse, Redis, a webhook, a
//! cooldown's Redis). The scheme turns TLS on (`https://`, `rediss://`); this table only
//! adds trust: the public roots are always trusted, and `ca` adds a private authority.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// A PEM file of the authority (or authorities) that signed the service's certificate,
    /// relative to the working directory.
    pub ca: Option<String>,
}

impl TlsConfig {
    pub fn ca(&self) -> Option<&str> {
        self.ca.as_deref()
    }
}
