//! `--status-addr` and `--status-token-file`, shared by `run` and `demo`. The endpoint is
//! bound before any pipeline starts, so that a taken port, or an address beyond loopback
//! without a token, is an error at once rather than a warning after start-up.

use crate::config::SecretRef;
use crate::supervisor::{self, Board, TOKEN_ENV, Token};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;

#[derive(clap::Args, Debug, Clone)]
pub struct StatusServe {
    /// Where to serve the dashboard, /status and /metrics; `off` for nowhere. An address
    /// beyond loopback (e.g. 0.0.0.0:9464) needs a token.
    #[arg(long, default_value = super::status::DEFAULT_ADDR, env = "ADSTREAM_STATUS_ADDR")]
    pub status_addr: String,
    /// A file holding the bearer token every request to the endpoint must carry (default:
    /// the ADSTREAM_STATUS_TOKEN environment variable, when set).
    #[arg(long)]
    pub status_token_file: Option<PathBuf>,
}

/// The endpoint, bound and not yet serving.
pub struct Bound {
    listener: TcpListener,
    token: Option<Token>,
    at: String,
}

/// The token from `file`, or else from [`TOKEN_ENV`] when it is set.
pub fn token(file: Option<&PathBuf>) -> Result<Option<Token>, String> {
    let secret = match file {
        Some(f) => SecretRef {
            file: Some(f.display().to_string()),
            ..Default::default()
        },
        None if std::env::var_os(TOKEN_ENV).is_some() => SecretRef {
            env: Some(TOKEN_ENV.into()),
            ..Default::default()
        },
        None => return Ok(None),
    };
    let value = secret.resolve("status token").map_err(|e| e.to_string())?;
    Token::new(value.bytes())
        .map(Some)
        .map_err(|e| e.to_string())
}

impl StatusServe {
    /// Binds the endpoint, unless it is `off`.
    pub async fn bind(&self) -> Result<Option<Bound>, String> {
        if self.status_addr == "off" {
            return Ok(None);
        }
        let addr = &self.status_addr;
        let token = token(self.status_token_file.as_ref())?;
        let wanted = tokio::net::lookup_host(addr)
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| {
                format!("--status-addr {addr} is not an address (e.g. 127.0.0.1:9464)")
            })?;
        supervisor::check_bind(wanted, token.as_ref()).map_err(|e| e.to_string())?;
        let listener = TcpListener::bind(wanted).await.map_err(|e| {
            format!("cannot serve status on {addr}: {e} (choose another --status-addr, or `off`)")
        })?;
        let at = listener
            .local_addr()
            .map_or(addr.clone(), |a| a.to_string());
        Ok(Some(Bound {
            listener,
            token,
            at,
        }))
    }
}

impl Bound {
    /// Serves `board` from now on; the address it serves on.
    pub fn serve(self, board: Arc<Board>) -> String {
        let at = self.at;
        tracing::info!(
            "dashboard on http://{at}/, status on http://{at}/status and http://{at}/metrics (`adstream status --addr {at}`){}",
            if self.token.is_some() {
                "; a token is required"
            } else {
                ""
            }
        );
        tokio::spawn(supervisor::serve(self.listener, board, self.token));
        at
    }
}
