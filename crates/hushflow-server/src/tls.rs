//! TLS for `serve`: rustls with the ring provider (no aws-lc, no OpenSSL), TLS 1.2 and 1.3, the
//! certificate chain and key read from PEM files. HTTP/1.1 only, as the router speaks it.

use crate::{ServeError, TlsFiles};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// The rustls configuration for `files`. Errors name the file, never its content.
pub fn server_config(files: &TlsFiles) -> Result<ServerConfig, ServeError> {
    let bad = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
        ServeError::Invalid(format!("{what} {}: {e}", path.display()))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| bad("--tls-cert", &files.cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad("--tls-cert", &files.cert, &e))?;
    if certs.is_empty() {
        return Err(bad(
            "--tls-cert",
            &files.cert,
            &"no CERTIFICATE block: give the certificate chain as PEM, leaf first",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        bad(
            "--tls-key",
            &files.key,
            &format!("{e}; give the private key as PEM (PKCS#8, PKCS#1 or SEC1)"),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Failed(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            ServeError::Invalid(format!(
                "--tls-cert {} and --tls-key {}: {e}",
                files.cert.display(),
                files.key.display()
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
