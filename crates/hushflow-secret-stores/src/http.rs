//! The one HTTP client the stores share: blocking `ureq` over rustls (ring, no OpenSSL), HTTPS
//! with full verification against Mozilla's roots or a CA file, plain HTTP only to loopback, a
//! timeout on every request, no redirects (a redirect could carry a token elsewhere), and
//! bodies read into memory that is wiped when dropped.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use zeroize::Zeroizing;

use crate::{Reason, StoreError};

/// Timeout for a whole request (connect, send, read) unless a store's own setting says otherwise.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest response body read: secrets are small; anything bigger is not an answer we asked for.
const MAX_BODY: u64 = 1024 * 1024;

/// An answer: its status and its body (which may hold a secret, so it is wiped on drop).
pub(crate) struct Response {
    pub status: u16,
    pub body: Zeroizing<Vec<u8>>,
}

/// A client for one store at `base` (`https://vault.example:8200`, no trailing slash).
#[derive(Clone)]
pub(crate) struct Client {
    agent: ureq::Agent,
    base: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).finish()
    }
}

impl Client {
    /// A client for `base`, refusing plain HTTP off loopback; `ca_file` (PEM) replaces the
    /// built-in roots when given. `what` names the setting for messages (`VAULT_ADDR`).
    pub fn new(
        what: &str,
        base: &str,
        ca_file: Option<&Path>,
        timeout: Duration,
    ) -> Result<Client, StoreError> {
        let base = base.trim().trim_end_matches('/').to_string();
        check_url(what, &base)?;
        let mut tls = TlsConfig::builder();
        if let Some(path) = ca_file {
            tls = tls.root_certs(RootCerts::Specific(Arc::new(read_ca_file(path)?)));
        }
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .tls_config(tls.build())
            .build();
        Ok(Client {
            agent: config.into(),
            base,
        })
    }

    /// The URL of `path` (`/v1/...`) on this store.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `method` to `base` + `path` with `headers` and, for POST/PUT, `body`.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, StoreError> {
        let url = self.url(path);
        let result = match method {
            "GET" => {
                let mut req = self.agent.get(&url);
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                req.call()
            }
            "POST" | "PUT" => {
                let mut req = if method == "POST" {
                    self.agent.post(&url)
                } else {
                    self.agent.put(&url)
                };
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                req.send(body.unwrap_or_default())
            }
            _ => {
                return Err(StoreError::new(
                    Reason::BadResponse,
                    format!("unsupported method {method}"),
                ));
            }
        };
        let mut response = result.map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| self.transport_error(e))?;
        Ok(Response {
            status,
            body: Zeroizing::new(body),
        })
    }

    /// A transport error in words that hold no request content: ureq's own messages may quote
    /// the URL, which is configuration here, but stay on the safe side and name the base only.
    fn transport_error(&self, e: ureq::Error) -> StoreError {
        let base = &self.base;
        match e {
            ureq::Error::Timeout(_) => StoreError::new(
                Reason::Unreachable,
                format!("{base} did not answer in time"),
            ),
            ureq::Error::HostNotFound => {
                StoreError::new(Reason::Unreachable, format!("{base}: host not found"))
            }
            ureq::Error::ConnectionFailed | ureq::Error::Io(_) => {
                StoreError::new(Reason::Unreachable, format!("cannot connect to {base}"))
            }
            ureq::Error::Tls(_) | ureq::Error::Rustls(_) => StoreError::new(
                Reason::Insecure,
                format!(
                    "TLS with {base} failed (is its certificate signed by a CA the client trusts? \
                     set the CA file for a private CA)"
                ),
            ),
            ureq::Error::BodyExceedsLimit(_) => StoreError::new(
                Reason::BadResponse,
                format!("{base} answered with more than {MAX_BODY} bytes"),
            ),
            _ => StoreError::new(Reason::Unreachable, format!("request to {base} failed")),
        }
    }
}

/// `https://` anywhere; `http://` only to a loopback address (a local dev server, an agent).
pub(crate) fn check_url(what: &str, url: &str) -> Result<(), StoreError> {
    let lower = url.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("https://") {
        if host_of(rest).is_empty() {
            return Err(StoreError::new(
                Reason::NotConfigured,
                format!("{what} has no host"),
            ));
        }
        return Ok(());
    }
    if let Some(rest) = lower.strip_prefix("http://") {
        if is_loopback(host_of(rest)) {
            return Ok(());
        }
        return Err(StoreError::new(
            Reason::Insecure,
            format!("{what} is plain http to a host that is not loopback; use https://"),
        ));
    }
    Err(StoreError::new(
        Reason::NotConfigured,
        format!("{what} must start with https:// (or http:// to a loopback address)"),
    ))
}

/// The host of `rest` (what follows `scheme://`), without port or brackets.
fn host_of(rest: &str) -> &str {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    authority.split(':').next().unwrap_or("")
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn read_ca_file(path: &Path) -> Result<Vec<Certificate<'static>>, StoreError> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| {
        StoreError::new(
            Reason::Insecure,
            format!("cannot read CA file {shown}: {e}"),
        )
    })?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(_) => {
                return Err(StoreError::new(
                    Reason::Insecure,
                    format!("CA file {shown} is not valid PEM"),
                ));
            }
        }
    }
    if certs.is_empty() {
        return Err(StoreError::new(
            Reason::Insecure,
            format!("CA file {shown} holds no certificate"),
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in [
            "https://vault.example:8200",
            "http://127.0.0.1:8200",
            "http://127.1.2.3",
            "http://localhost:1/x",
            "http://[::1]:8200",
        ] {
            assert!(check_url("X", ok).is_ok(), "{ok}");
        }
        for (bad, reason) in [
            ("http://vault.example:8200", Reason::Insecure),
            ("http://10.0.0.1", Reason::Insecure),
            ("http://localhost.example.com", Reason::Insecure),
            ("http://127.0.0.1@evil.example", Reason::Insecure),
            ("vault.example:8200", Reason::NotConfigured),
            ("https://", Reason::NotConfigured),
        ] {
            let e = check_url("X", bad).unwrap_err();
            assert_eq!(e.reason, reason, "{bad}: {e}");
        }
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let e = Client::new("X", "https://h", Some(&path), DEFAULT_TIMEOUT).unwrap_err();
        assert_eq!(e.reason, Reason::Insecure);
        assert!(e.to_string().contains("holds no certificate"), "{e}");
        let e = Client::new(
            "X",
            "https://h",
            Some(&dir.path().join("missing")),
            DEFAULT_TIMEOUT,
        )
        .unwrap_err();
        assert!(e.to_string().contains("cannot read CA file"), "{e}");
    }
}
