//! Where `hushflow serve` listens and how: TLS from PEM files, or plain HTTP on loopback (or
//! elsewhere only when asked for, with a warning on every start).

use crate::ServeError;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The certificate chain and private key the server presents, as PEM files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The address to listen on; port 0 takes any free port.
    pub addr: SocketAddr,
    /// TLS, when given: HTTPS only, with HSTS and `Secure` cookies.
    pub tls: Option<TlsFiles>,
    /// Serve plain HTTP on an address other than loopback (credentials then cross the network
    /// in the clear).
    pub insecure_http: bool,
    /// How long requests in flight may take to finish once a stop is asked for.
    pub grace: Duration,
}

impl ServeOptions {
    /// Options for `addr`, plain HTTP, a 10 s grace.
    pub fn new(addr: SocketAddr) -> ServeOptions {
        ServeOptions {
            addr,
            tls: None,
            insecure_http: false,
            grace: Duration::from_secs(10),
        }
    }

    /// Refuses plain HTTP on a non-loopback address unless `insecure_http`; answers the warnings
    /// to show on this start (the same on every start).
    pub fn check(&self) -> Result<Vec<String>, ServeError> {
        let mut warnings = Vec::new();
        if self.tls.is_none() && !self.addr.ip().is_loopback() {
            if !self.insecure_http {
                return Err(ServeError::Invalid(format!(
                    "refusing to serve {} in plain HTTP: passwords, session cookies and API \
                     tokens would cross the network in the clear; give --tls-cert and \
                     --tls-key (PEM files), listen on 127.0.0.1, or pass --insecure-http if a \
                     TLS proxy in front of this address terminates TLS",
                    self.addr
                )));
            }
            warnings.push(format!(
                "warning: serving {} in plain HTTP (--insecure-http): passwords, session cookies \
                 and API tokens cross the network in the clear unless a TLS proxy terminates TLS \
                 in front of it",
                self.addr
            ));
        }
        Ok(warnings)
    }

    /// Whether the server speaks TLS.
    pub fn tls_on(&self) -> bool {
        self.tls.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_for_loopback_unless_asked_for_with_a_warning() {
        let local = ServeOptions::new("127.0.0.1:8080".parse().unwrap());
        assert!(local.check().unwrap().is_empty());
        let v6 = ServeOptions::new("[::1]:8080".parse().unwrap());
        assert!(v6.check().unwrap().is_empty());
        let mut open = ServeOptions::new("0.0.0.0:8080".parse().unwrap());
        let e = open.check().unwrap_err().to_string();
        assert!(
            e.contains("--insecure-http") && e.contains("--tls-cert"),
            "{e}"
        );
        open.insecure_http = true;
        let warnings = open.check().unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("plain HTTP"));
        open.insecure_http = false;
        open.tls = Some(TlsFiles {
            cert: "c.pem".into(),
            key: "k.pem".into(),
        });
        assert!(open.check().unwrap().is_empty());
    }
}
