//! The ClickHouse client: its own hyper client with rustls (`connect/tls.rs`), so that an
//! `https://` URL is trusted by the public roots and the pipeline's `tls.ca`, and the
//! user and password the sink is configured with.

use crate::config::sink::ClickHouseConfig;
use crate::connect::tls;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Under ClickHouse's own keep-alive timeout (3 s before 23.11, 10 s since), so that the
/// client never reuses a connection the server is closing.
const POOL_IDLE: Duration = Duration::from_secs(2);
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// A client for `url` with the sink's credentials.
pub fn client(url: &str, cfg: &ClickHouseConfig) -> Result<clickhouse::Client, String> {
    let mut http = HttpConnector::new();
    http.set_keepalive(Some(TCP_KEEPALIVE));
    http.enforce_http(false);
    let config = tls::client_config(cfg.tls.ca()).map_err(|e| e.to_string())?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*config).clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let hyper = HyperClient::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .build(https);
    let mut client = clickhouse::Client::with_http_client(hyper)
        .with_url(url)
        .with_validation(false);
    // A password alone is the `default` user's (ClickHouse Cloud's first user); the client
    // would otherwise send it with an empty user name, which ClickHouse refuses.
    let user = (cfg.user.as_deref()).or(cfg.password.as_ref().map(|_| "default"));
    if let Some(user) = user {
        client = client.with_user(user);
    }
    if let Some(p) = &cfg.password {
        let password = p.resolve("password").map_err(|e| e.to_string())?;
        client = client.with_password(password.text().map_err(|e| e.to_string())?);
    }
    Ok(client)
}
