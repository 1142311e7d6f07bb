//! The status endpoint's bearer token. When one is set, every request must carry it: as
//! `Authorization: Bearer TOKEN` (Prometheus, `adstream status`), or, for the dashboard in
//! a browser — whose live feed (`EventSource`) cannot send headers — as a cookie, set by
//! opening `/?token=TOKEN` once. Without a token the endpoint may listen only on loopback.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;

/// The environment variable `adstream run`, `demo` and `status` read the token from.
pub const TOKEN_ENV: &str = "ADSTREAM_STATUS_TOKEN";
/// Shortest token accepted: one that can be guessed protects nothing.
pub const MIN_TOKEN_BYTES: usize = 16;
const COOKIE: &str = "adstream_token";

/// Why the endpoint will not serve.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(
        "refusing to serve the dashboard and /metrics on {addr} without a token: it is reachable \
         beyond this machine. Set {TOKEN_ENV} (or --status-token-file) to a secret of at least \
         {MIN_TOKEN_BYTES} bytes, or listen on 127.0.0.1"
    )]
    Open { addr: SocketAddr },
    #[error("the status token is shorter than {MIN_TOKEN_BYTES} bytes")]
    Short,
}

/// A token, kept as its SHA-256: comparing digests takes the same time however much of
/// an offered token matches, and the cookie carries the digest rather than the token.
#[derive(Clone)]
pub struct Token {
    digest: Arc<str>,
}

impl Token {
    pub fn new(secret: &[u8]) -> Result<Token, AccessError> {
        if secret.len() < MIN_TOKEN_BYTES {
            return Err(AccessError::Short);
        }
        Ok(Token {
            digest: digest(secret).into(),
        })
    }

    fn matches(&self, offered: &[u8]) -> bool {
        *self.digest == digest(offered)
    }

    /// Whether the request's headers carry the token (or the cookie made from it).
    fn admits(&self, headers: &HeaderMap) -> bool {
        let bearer = (headers.get(header::AUTHORIZATION))
            .and_then(|v| v.to_str().ok()?.strip_prefix("Bearer "))
            .is_some_and(|t| self.matches(t.trim().as_bytes()));
        let cookie = (headers.get_all(header::COOKIE).iter())
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
            .any(|c| c == &*self.digest);
        bearer || cookie
    }
}

fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Refuses an address beyond loopback when there is no token.
pub fn check_bind(addr: SocketAddr, token: Option<&Token>) -> Result<(), AccessError> {
    match (addr.ip().is_loopback(), token) {
        (false, None) => Err(AccessError::Open { addr }),
        _ => Ok(()),
    }
}

/// The middleware: passes a request that carries the token, turns `/?token=TOKEN` into
/// the cookie, refuses the rest with 401.
pub async fn guard(State(token): State<Option<Token>>, req: Request, next: Next) -> Response {
    let Some(token) = token else {
        return next.run(req).await;
    };
    if token.admits(req.headers()) {
        return next.run(req).await;
    }
    let offered = (req.uri().query().into_iter())
        .flat_map(|q| url::form_urlencoded::parse(q.as_bytes()))
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned());
    if req.uri().path() == "/"
        && let Some(offered) = offered.filter(|t| token.matches(t.as_bytes()))
    {
        let cookie = format!(
            "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
            digest(offered.as_bytes())
        );
        // Back to `/`, so the token does not stay in the address bar or the history.
        let headers = [(header::SET_COOKIE, cookie), (header::LOCATION, "/".into())];
        return (StatusCode::SEE_OTHER, headers).into_response();
    }
    let why = "this adstream host needs its status token: `Authorization: Bearer TOKEN`, \
               or open /?token=TOKEN once in a browser\n";
    let headers = [(header::WWW_AUTHENTICATE, "Bearer")];
    (StatusCode::UNAUTHORIZED, headers, why).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_admitted_by_header_or_cookie_and_nothing_else() {
        let token = Token::new(b"0123456789abcdef-secret").unwrap();
        let with = |name, value: &str| {
            let mut h = HeaderMap::new();
            h.insert(name, value.parse().unwrap());
            h
        };
        assert!(token.admits(&with(
            header::AUTHORIZATION,
            "Bearer 0123456789abcdef-secret"
        )));
        assert!(!token.admits(&with(header::AUTHORIZATION, "Bearer 0123456789abcdef")));
        assert!(!token.admits(&HeaderMap::new()));
        let cookie = format!("a=b; {COOKIE}={}", digest(b"0123456789abcdef-secret"));
        assert!(token.admits(&with(header::COOKIE, &cookie)));
        assert!(!token.admits(&with(
            header::COOKIE,
            "adstream_token=0123456789abcdef-secret"
        )));
        assert!(Token::new(b"short").is_err());
    }

    #[test]
    fn only_loopback_may_go_without_a_token() {
        let token = Token::new(&[7; 32]).unwrap();
        let (local, open) = (
            "127.0.0.1:9464".parse().unwrap(),
            "0.0.0.0:9464".parse().unwrap(),
        );
        assert!(check_bind(local, None).is_ok());
        assert!(check_bind("[::1]:9464".parse().unwrap(), None).is_ok());
        assert!(matches!(
            check_bind(open, None),
            Err(AccessError::Open { .. })
        ));
        assert!(check_bind(open, Some(&token)).is_ok());
    }
}
