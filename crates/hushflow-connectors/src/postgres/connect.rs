//! Connections with libpq's `sslmode` semantics, over rustls (ring provider; no OpenSSL):
//!
//! | mode | encrypted | server checked |
//! | --- | --- | --- |
//! | `disable` | never | - |
//! | `allow`, `prefer` | when the server offers it | no |
//! | `require` | always | no; as `verify-ca` when `sslrootcert` names a file (as libpq) |
//! | `verify-ca` | always | the chain, against the roots |
//! | `verify-full` | always | the chain and the host name |
//!
//! The default is `verify-full`, except for a loopback address or a Unix socket (`prefer`).
//! A mode that may send data unencrypted to any other host is refused unless the pipeline says
//! `allow_insecure = true`. Roots come from `sslrootcert` (a PEM file) or the system store.
//!
//! Errors never contain the URL: it holds a password.

use super::config::Tls;
use hushflow_core::Error;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// libpq's `sslmode`: whether the connection is encrypted and how the server is checked (see the
/// module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Never encrypt.
    Disable,
    /// Try without encryption, then with it; the server is not checked.
    Allow,
    /// Try with encryption, then without it; the server is not checked.
    Prefer,
    /// Encrypt; the server is not checked, unless `sslrootcert` names a file (then as
    /// `verify-ca`, as libpq does).
    Require,
    /// Encrypt, and check that the server's certificate is signed by a trusted root.
    VerifyCa,
    /// Encrypt, and check the certificate and that it names the host.
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Result<SslMode, Error> {
        Ok(match text {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => {
                return Err(Error::Config(
                    "sslmode must be one of disable, allow, prefer, require, verify-ca, \
                     verify-full"
                        .into(),
                ));
            }
        })
    }

    /// The mode as libpq writes it (`verify-full`).
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether this mode may send data in the clear.
    fn may_be_plain(self) -> bool {
        matches!(self, SslMode::Disable | SslMode::Allow | SslMode::Prefer)
    }
}

/// A connection URL checked and split into what tokio-postgres takes and what hushflow decides.
pub struct Target {
    config: postgres::Config,
    /// The `sslmode` that applies: the pipeline's, the URL's, or the default.
    pub mode: SslMode,
    roots: Option<PathBuf>,
    /// The host, for messages (never the URL).
    pub host: String,
    /// Whether the host is a loopback address or a Unix socket.
    pub loopback: bool,
}

/// Parses `url` and the pipeline's TLS keys (relative `sslrootcert` paths resolved against
/// `base`), and refuses what the rules above refuse. Connects to nothing.
pub fn target(url: &str, tls: &Tls, base: &Path) -> Result<Target, Error> {
    let url = url.trim();
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(Error::Config(
            "the connection URL must start with postgres:// (the secret holds \
             postgres://user:password@host:port/database)"
                .into(),
        ));
    }
    // libpq's TLS parameters are ours to interpret; tokio-postgres gets the rest.
    let (base_url, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    let (mut url_mode, mut url_roots) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "sslmode" => url_mode = Some(percent_decode(v)),
            "sslrootcert" => url_roots = Some(percent_decode(v)),
            _ => kept.push(pair),
        }
    }
    let rebuilt = if kept.is_empty() {
        base_url.to_string()
    } else {
        format!("{base_url}?{}", kept.join("&"))
    };
    let mut config: postgres::Config = rebuilt.parse().map_err(|_| {
        Error::Config(
            "the connection URL does not parse (postgres://user:password@host:port/database)"
                .into(),
        )
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    let (host, loopback) = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => (h.clone(), is_loopback(h)),
        Some(postgres::config::Host::Unix(p)) => (p.display().to_string(), true),
        None => ("localhost".into(), true),
    };
    let mode = match tls.sslmode.as_deref().or(url_mode.as_deref()) {
        Some(m) => SslMode::parse(m)?,
        None if loopback => SslMode::Prefer,
        None => SslMode::VerifyFull,
    };
    if mode.may_be_plain() && !loopback && !tls.allow_insecure {
        return Err(Error::Config(format!(
            "sslmode={} may send data to {host} unencrypted; use sslmode=verify-full (the \
             default for hosts that are not loopback), or set allow_insecure = true if the \
             network is trusted",
            mode.as_str()
        )));
    }
    let roots = match tls.sslrootcert.clone().or(url_roots.map(PathBuf::from)) {
        Some(p) if p.as_os_str() == "system" => None,
        Some(p) if p.is_relative() => Some(base.join(p)),
        other => other,
    };
    Ok(Target {
        config,
        mode,
        roots,
        host,
        loopback,
    })
}

/// What `validate` should say about a target.
pub fn warnings(target: &Target, tls: &Tls) -> Vec<String> {
    let mut out = Vec::new();
    if tls.allow_insecure && target.mode.may_be_plain() && !target.loopback {
        out.push(format!(
            "allow_insecure: data to {} may travel unencrypted (sslmode={})",
            target.host,
            target.mode.as_str()
        ));
    }
    if target.mode == SslMode::Require && target.roots.is_none() && !target.loopback {
        out.push(format!(
            "sslmode=require encrypts but does not check {}'s certificate; use verify-full",
            target.host
        ));
    }
    out
}

/// A query value percent-decoded (libpq's URLs are), bytes that are not UTF-8 replaced.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn root_store(roots: Option<&Path>) -> Result<RootCertStore, Error> {
    let mut store = RootCertStore::empty();
    match roots {
        Some(path) => {
            use rustls::pki_types::pem::PemObject;
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| Error::Config(format!("sslrootcert {}: {e}", path.display())))?
                .collect::<Result<_, _>>()
                .map_err(|e| Error::Config(format!("sslrootcert {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(Error::Config(format!(
                    "sslrootcert {}: holds no PEM certificate",
                    path.display()
                )));
            }
            for cert in certs {
                store
                    .add(cert)
                    .map_err(|e| Error::Config(format!("sslrootcert {}: {e}", path.display())))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A system store may hold certificates rustls cannot use; skip those.
                let _ = store.add(cert);
            }
            if store.is_empty() {
                return Err(Error::Config(
                    "no root certificates in the system store; set sslrootcert to a PEM file"
                        .into(),
                ));
            }
        }
    }
    Ok(store)
}

fn client_config(target: &Target) -> Result<ClientConfig, Error> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS set-up: {e}")))?;
    let verify_chain = matches!(target.mode, SslMode::VerifyCa | SslMode::VerifyFull)
        || (target.mode == SslMode::Require && target.roots.is_some());
    if !verify_chain {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth());
    }
    let roots = Arc::new(root_store(target.roots.as_deref())?);
    if target.mode == SslMode::VerifyFull {
        return Ok(builder.with_root_certificates(roots).with_no_client_auth());
    }
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
        .build()
        .map_err(|e| Error::Config(format!("TLS set-up: {e}")))?;
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainOnly(inner)))
        .with_no_client_auth())
}

/// Connects as the target says. The error names the host and the reason, never the URL.
pub fn connect(target: &Target) -> Result<postgres::Client, Error> {
    let failed = |e: postgres::Error| {
        // tokio-postgres puts the cause (a TLS or auth failure) in the source chain.
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        let port = target.config.get_ports().first().copied().unwrap_or(5432);
        Error::Config(format!(
            "connecting to PostgreSQL at {}:{port} (sslmode={}): {text}",
            target.host,
            target.mode.as_str()
        ))
    };
    let mut config = target.config.clone();
    match target.mode {
        SslMode::Disable => config.connect(postgres::NoTls).map_err(failed),
        mode => {
            config.ssl_mode(match mode {
                SslMode::Allow | SslMode::Prefer => postgres::config::SslMode::Prefer,
                _ => postgres::config::SslMode::Require,
            });
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(client_config(target)?);
            config.connect(tls).map_err(failed)
        }
    }
}

/// `require` without roots, `allow`, `prefer`: encryption without authentication of the server
/// (libpq's behaviour). Handshake signatures are still checked, so the session is the server's.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the host name is not compared.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
