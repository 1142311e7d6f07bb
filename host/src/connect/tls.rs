//! TLS for the services reached through rustls (ClickHouse, Redis, webhooks): the public
//! roots (webpki-roots) plus the private authority a pipeline names in `tls.ca`. One
//! crypto provider (ring) for all of them. Kafka's TLS is librdkafka's (OpenSSL), set
//! through its options.

use crate::config::bounded::{read_at_most, size};
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::sync::Arc;

/// The most a CA file may hold: a system bundle is about 200 KiB.
pub const MAX_CA_BYTES: usize = 1 << 20;

/// Why TLS could not be set up.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsError {
    #[error("tls.ca {path}: {reason}")]
    Ca { path: String, reason: String },
}

/// Makes ring the process's crypto provider, for the clients (Redis) that ask rustls for
/// the default. Idempotent.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The PEM bytes of the CA file at `path`, checked to hold at least one certificate.
pub fn read_ca(path: &str) -> Result<Vec<u8>, TlsError> {
    let fail = |reason: String| TlsError::Ca {
        path: path.into(),
        reason,
    };
    let bytes = std::fs::File::open(path)
        .and_then(|f| read_at_most(f, MAX_CA_BYTES))
        .map_err(|e| fail(format!("cannot read it: {e}")))?
        .ok_or_else(|| fail(format!("larger than {}", size(MAX_CA_BYTES))))?;
    let certs = certificates(&bytes).map_err(fail)?;
    if certs.is_empty() {
        return Err(fail("holds no PEM certificate".into()));
    }
    Ok(bytes)
}

fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))
}

/// The public roots, plus the certificates of the CA file at `ca`.
pub fn roots(ca: Option<&str>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca {
        let fail = |reason: String| TlsError::Ca {
            path: path.into(),
            reason,
        };
        for cert in certificates(&read_ca(path)?).map_err(fail)? {
            roots.add(cert).map_err(|e| fail(e.to_string()))?;
        }
    }
    Ok(roots)
}

/// A client configuration that trusts [`roots`].
pub fn client_config(ca: Option<&str>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots(ca)?)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Whether `url` reaches a host beyond this machine without encryption: worth a warning,
/// since a password or the rows cross the network in the clear.
pub fn plaintext_beyond_loopback(url: &str, secure_schemes: &[&str]) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    let local = match parsed.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => true,
    };
    !local && !secure_schemes.contains(&parsed.scheme())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let err = read_ca(junk.to_str().unwrap()).unwrap_err().to_string();
        assert!(err.contains("holds no PEM certificate"), "{err}");
        let missing = read_ca("/nonexistent/ca.pem").unwrap_err().to_string();
        assert!(
            missing.starts_with("tls.ca /nonexistent/ca.pem: cannot read it"),
            "{missing}"
        );
        assert!(client_config(None).is_ok());
    }

    #[test]
    fn plaintext_is_flagged_only_beyond_loopback() {
        let secure = ["https", "rediss"];
        assert!(plaintext_beyond_loopback(
            "http://ch.example.com:8123",
            &secure
        ));
        assert!(plaintext_beyond_loopback("redis://10.0.0.5:6379", &secure));
        assert!(!plaintext_beyond_loopback(
            "https://ch.example.com:8443",
            &secure
        ));
        assert!(!plaintext_beyond_loopback(
            "rediss://10.0.0.5:6380",
            &secure
        ));
        assert!(!plaintext_beyond_loopback("http://127.0.0.1:8123", &secure));
        assert!(!plaintext_beyond_loopback(
            "redis://localhost:6379",
            &secure
        ));
        assert!(!plaintext_beyond_loopback("http://[::1]:8123", &secure));
    }
}
