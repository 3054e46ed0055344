//! The blocking client: one `ureq` agent per connector, its base URL, its retry policy, its
//! token source. Requests and answers are never logged here; errors name the connector, the
//! method and the path template the caller gives, never a header, a body or a query value.

use super::rate_limit::RateLimiter;
use super::retry::{RetryPolicy, retry_after};
use super::token::TokenSource;
use hushflow_core::Error;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use ureq::http::{HeaderMap, HeaderValue, Method, Request};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use zeroize::Zeroizing;

/// How a connector's client is set up.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The service's name for messages (`HubSpot`).
    pub name: &'static str,
    /// The base URL (`https://api.hubapi.com`), checked by [`check_url`](super::check_url).
    pub base: String,
    /// Timeout for a whole request (connect, send, read).
    pub timeout: Duration,
    /// A PEM file of root certificates to trust instead of Mozilla's (a private proxy).
    pub ca_file: Option<PathBuf>,
    /// When to retry.
    pub retry: RetryPolicy,
    /// The largest answer read, in bytes.
    pub max_body: u64,
}

impl ClientOptions {
    /// Options with the defaults: 30 s timeout, the default retry policy, 16 MiB answers.
    pub fn new(name: &'static str, base: &str) -> ClientOptions {
        ClientOptions {
            name,
            base: base.trim().trim_end_matches('/').to_string(),
            timeout: Duration::from_secs(30),
            ca_file: None,
            retry: RetryPolicy::default(),
            max_body: 16 * 1024 * 1024,
        }
    }
}

/// A request body.
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    /// No body.
    None,
    /// `application/json`.
    Json(&'a [u8]),
    /// `application/x-www-form-urlencoded`, already encoded (it may hold secrets: it is wiped
    /// by its owner).
    Form(&'a [u8]),
    /// `text/csv` (Salesforce's Bulk API uploads).
    Csv(&'a [u8]),
}

/// An answer: status, headers, and the body (which may hold personal data or a token, so it is
/// wiped when dropped and never logged).
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The answer's headers.
    pub headers: HeaderMap,
    /// The body as read.
    pub body: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl Response {
    /// A header's value, when it is present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// What a connector makes of an answer before the client's default (retry 429 and 5xx, return
/// the rest).
#[derive(Debug)]
pub enum Verdict {
    /// Use the default.
    Default,
    /// Hand the answer back as it is.
    Done,
    /// Retry, after this long if the server said (else the backoff).
    Retry(Option<Duration>),
    /// Stop the run with this message (a daily limit: retrying would take hours).
    Stop(String),
}

/// A REST connector's client.
pub struct HttpClient {
    agent: ureq::Agent,
    options: ClientOptions,
    auth: Option<TokenSource>,
    limiter: Option<Arc<RateLimiter>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("name", &self.options.name)
            .field("base", &self.options.base)
            .finish()
    }
}

impl HttpClient {
    /// A client for `options.base`, authenticating with `auth` when given. Checks the URL
    /// (HTTPS, or HTTP to loopback) and reads the CA file; connects to nothing yet.
    pub fn new(options: ClientOptions, auth: Option<TokenSource>) -> Result<HttpClient, Error> {
        let name = options.name;
        super::check_url("base_url", &options.base)
            .map_err(|e| Error::Config(format!("{name}: {e}")))?;
        let mut tls = TlsConfig::builder();
        if let Some(path) = &options.ca_file {
            tls = tls.root_certs(RootCerts::Specific(Arc::new(read_ca_file(name, path)?)));
        }
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(options.timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .tls_config(tls.build())
            .build();
        Ok(HttpClient {
            agent: config.into(),
            options,
            auth,
            limiter: None,
        })
    }

    /// Spaces this client's requests with `limiter` (shared with other clients of the same
    /// account, if any).
    pub fn with_limiter(mut self, limiter: Arc<RateLimiter>) -> HttpClient {
        self.limiter = Some(limiter);
        self
    }

    /// The service's name, for messages.
    pub fn name(&self) -> &'static str {
        self.options.name
    }

    /// The limiter, for the connector to pause from rate-limit headers.
    pub fn limiter(&self) -> Option<&RateLimiter> {
        self.limiter.as_deref()
    }

    /// Sends `method` to the base URL + `path` (with its query string, already encoded),
    /// authenticated, retrying as [`RetryPolicy`] says and as `classify` decides; `what` names
    /// the call for messages (`listing contacts`), never with values.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Body<'_>,
        what: &str,
        classify: &dyn Fn(&Response) -> Verdict,
    ) -> Result<Response, Error> {
        let url = format!("{}{path}", self.options.base);
        self.exchange(method, &url, body, what, true, classify, "application/json")
    }

    /// [`HttpClient::send`] to a full URL (a host the token endpoint named, such as
    /// Salesforce's `instance_url`), checked as the base URL is.
    pub fn send_to(
        &self,
        method: &str,
        url: &str,
        body: Body<'_>,
        what: &str,
        classify: &dyn Fn(&Response) -> Verdict,
    ) -> Result<Response, Error> {
        let name = self.options.name;
        super::check_url("the API URL", url).map_err(|e| Error::Config(format!("{name}: {e}")))?;
        self.exchange(method, url, body, what, true, classify, "application/json")
    }

    /// [`HttpClient::send_to`], asking for `text/csv` (Salesforce's Bulk API results).
    pub fn send_to_for_csv(
        &self,
        method: &str,
        url: &str,
        body: Body<'_>,
        what: &str,
        classify: &dyn Fn(&Response) -> Verdict,
    ) -> Result<Response, Error> {
        let name = self.options.name;
        super::check_url("the API URL", url).map_err(|e| Error::Config(format!("{name}: {e}")))?;
        self.exchange(method, url, body, what, true, classify, "text/csv")
    }

    /// The token source, when the client authenticates.
    pub fn tokens(&self) -> Option<&TokenSource> {
        self.auth.as_ref()
    }

    /// [`HttpClient::send`] to a full URL, with or without the token (the token endpoint
    /// itself is called without).
    // Each argument is one independent choice of the call; a struct for them would be built
    // at four call sites only to be taken apart here.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn exchange(
        &self,
        method: &str,
        url: &str,
        body: Body<'_>,
        what: &str,
        authenticate: bool,
        classify: &dyn Fn(&Response) -> Verdict,
        accept: &str,
    ) -> Result<Response, Error> {
        let name = self.options.name;
        let retry = self.options.retry;
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| Error::Config(format!("{name}: unsupported method for {what}")))?;
        let mut attempt = 0u32;
        let mut refreshed = false;
        loop {
            if let Some(limiter) = &self.limiter {
                limiter.acquire();
            }
            let mut builder = Request::builder()
                .method(method.clone())
                .uri(url)
                .header("accept", accept);
            match body {
                Body::None => {}
                Body::Json(_) => builder = builder.header("content-type", "application/json"),
                Body::Form(_) => {
                    builder = builder.header("content-type", "application/x-www-form-urlencoded")
                }
                Body::Csv(_) => builder = builder.header("content-type", "text/csv"),
            }
            if authenticate && let Some(auth) = &self.auth {
                builder = builder.header("authorization", auth.authorization(self)?);
            }
            let bytes: &[u8] = match body {
                Body::None => &[],
                Body::Json(b) | Body::Form(b) | Body::Csv(b) => b,
            };
            let request = builder
                .body(bytes)
                .map_err(|_| Error::Config(format!("{name}: {what}: the request is malformed")))?;
            let answer = self.agent.run(request).and_then(|mut r| {
                let status = r.status().as_u16();
                let headers = std::mem::take(r.headers_mut());
                let body = r
                    .body_mut()
                    .with_config()
                    .limit(self.options.max_body)
                    .read_to_vec()?;
                Ok(Response {
                    status,
                    headers,
                    body: Zeroizing::new(body),
                })
            });
            let response = match answer {
                Ok(r) => r,
                Err(e) => {
                    let message = transport_error(name, what, &e);
                    // A body too large is not a passing fault; the rest may be.
                    if matches!(e, ureq::Error::BodyExceedsLimit(_)) || attempt >= retry.max_retries
                    {
                        return Err(Error::Config(message));
                    }
                    std::thread::sleep(retry.backoff(attempt));
                    attempt += 1;
                    continue;
                }
            };
            // An access token the server no longer takes (expired early, revoked and renewed):
            // refresh once and send again.
            if response.status == 401
                && authenticate
                && !refreshed
                && let Some(auth) = &self.auth
                && auth.can_refresh()
            {
                auth.invalidate();
                refreshed = true;
                continue;
            }
            let verdict = match classify(&response) {
                Verdict::Default if response.status == 429 || response.status >= 500 => {
                    Verdict::Retry(response.header("retry-after").and_then(retry_after))
                }
                Verdict::Default => Verdict::Done,
                v => v,
            };
            match verdict {
                Verdict::Done | Verdict::Default => return Ok(response),
                Verdict::Stop(message) => return Err(Error::Config(message)),
                Verdict::Retry(after) => {
                    if attempt >= retry.max_retries {
                        return Err(Error::Config(format!(
                            "{name}: {what}: still answered {} after {} tries; try again later",
                            response.status,
                            attempt + 1
                        )));
                    }
                    let wait = after.unwrap_or_else(|| retry.backoff(attempt));
                    if wait > retry.max_wait {
                        return Err(Error::Config(format!(
                            "{name}: {what}: answered {} and asked to wait {} s, longer than \
                             the {} s this run waits; run it again later",
                            response.status,
                            wait.as_secs(),
                            retry.max_wait.as_secs()
                        )));
                    }
                    tracing::debug!(
                        service = name,
                        call = what,
                        status = response.status,
                        wait_ms = wait.as_millis() as u64,
                        "retrying"
                    );
                    std::thread::sleep(wait);
                    attempt += 1;
                }
            }
        }
    }
}

/// A sensitive header value (`http` keeps it out of `Debug` output).
pub(super) fn sensitive(value: &str) -> Result<HeaderValue, ()> {
    let mut v = HeaderValue::from_str(value).map_err(|_| ())?;
    v.set_sensitive(true);
    Ok(v)
}

/// A transport error in words that hold no request content: ureq's own messages may quote the
/// URL, whose query holds property names only, but stay on the safe side and name none.
fn transport_error(name: &str, what: &str, e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => format!("{name}: {what}: no answer in time"),
        ureq::Error::HostNotFound => format!("{name}: {what}: host not found"),
        ureq::Error::ConnectionFailed | ureq::Error::Io(_) => {
            format!("{name}: {what}: cannot connect (is the base URL right and reachable?)")
        }
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => format!(
            "{name}: {what}: TLS failed (is the server's certificate signed by a CA the client \
             trusts? set `ca_file` for a private CA)"
        ),
        ureq::Error::BodyExceedsLimit(limit) => {
            format!("{name}: {what}: the answer is larger than {limit} bytes")
        }
        _ => format!("{name}: {what}: the request failed"),
    }
}

fn read_ca_file(name: &str, path: &std::path::Path) -> Result<Vec<Certificate<'static>>, Error> {
    let shown = path.display();
    let pem = std::fs::read(path)
        .map_err(|e| Error::Config(format!("{name}: cannot read CA file {shown}: {e}")))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(_) => {
                return Err(Error::Config(format!(
                    "{name}: CA file {shown} is not valid PEM"
                )));
            }
        }
    }
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "{name}: CA file {shown} holds no certificate"
        )));
    }
    Ok(certs)
}
