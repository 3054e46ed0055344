//! Where a connector's `Authorization` header comes from: a static bearer token (a private-app
//! token, given by secret reference), or the OAuth 2.0 refresh-token grant (RFC 6749 §6).
//!
//! The grant is one form POST and a JSON answer, written here on the same `ureq` agent rather
//! than with the `oauth2` crate: that crate (even without default features) brings its own
//! `http`, `url`, `rand` and `chrono` use plus an adapter for the blocking client, for what is
//! thirty lines here; and here the secrets stay in [`SecretValue`]s (wiped on drop) and are
//! registered with the redactor the moment they arrive.
//!
//! The access token is refreshed ahead of `expires_in` (by [`OAuthRefresh::EARLY`]) and again
//! when a request answers 401. A refresh token the server rotates is kept for the rest of the
//! run (and registered with the redactor) and handed to the run's
//! [`CredentialSaver`](crate::config::CredentialSaver) under the reference it came from, which
//! stores it in the sealed keyring when that reference is `keyring:NAME` (an issuer that
//! rotates has revoked the old token, so the next run would otherwise fail to sign in). When it
//! cannot be saved, a warning says so and names the reference.

use super::client::{Body, HttpClient, Verdict, sensitive};
use hushflow_core::Error;
use hushflow_secrets::{Redactor, SecretValue};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use ureq::http::HeaderValue;
use zeroize::Zeroizing;

/// Where the `Authorization` header comes from.
#[derive(Debug)]
pub enum TokenSource {
    /// A static bearer token (a private-app token, an API key).
    Bearer(SecretValue),
    /// Access tokens from the refresh-token grant.
    OAuth(OAuthRefresh),
}

/// Makes a signed assertion for the JWT bearer grant (RFC 7523), fresh for each request.
pub type MakeAssertion = Box<dyn Fn() -> Result<Zeroizing<String>, String> + Send + Sync>;

/// The assertion maker, kept out of `Debug` output.
struct Assertion(MakeAssertion);

impl std::fmt::Debug for Assertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Assertion")
    }
}

/// The OAuth 2.0 refresh-token grant against one token endpoint (or, made with
/// [`OAuthRefresh::jwt_bearer`], the JWT bearer grant: a signed assertion instead of a refresh
/// token, a new one each time).
#[derive(Debug)]
pub struct OAuthRefresh {
    /// The JWT bearer grant's assertion maker, instead of the refresh token.
    assertion: Option<Assertion>,
    token_url: String,
    client_id: String,
    client_secret: SecretValue,
    state: Mutex<RefreshState>,
    redactor: Redactor,
    /// Where a rotated refresh token goes: its reference and the run's saver.
    rotation: Option<Box<(String, Option<crate::config::SaverHandle>)>>,
}

#[derive(Debug)]
struct RefreshState {
    refresh_token: SecretValue,
    /// The access token and when to stop using it (already `EARLY` before it expires).
    access: Option<(SecretValue, Instant)>,
    /// Refreshes made, for tests and reports.
    refreshes: u32,
    /// The `instance_url` the last grant named (Salesforce answers with the org's own host).
    instance_url: Option<String>,
}

/// The JSON a token endpoint answers (RFC 6749 §5.1). Its strings move into [`SecretValue`]s
/// without a copy.
#[derive(serde::Deserialize)]
struct Grant {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    /// Salesforce's: the org's API host, to send requests to.
    #[serde(default)]
    instance_url: Option<String>,
}

impl OAuthRefresh {
    /// How long before `expires_in` runs out a token is refreshed.
    pub const EARLY: Duration = Duration::from_secs(300);

    /// The grant at `token_url` (a full URL: HTTPS, or HTTP to loopback) for `client_id`,
    /// with the client secret and refresh token resolved from their references. Tokens it gets
    /// are registered with `redactor`.
    pub fn new(
        token_url: &str,
        client_id: &str,
        client_secret: SecretValue,
        refresh_token: SecretValue,
        redactor: Redactor,
    ) -> Result<OAuthRefresh, String> {
        super::check_url("token_url", token_url)?;
        redactor.register(&client_secret);
        redactor.register(&refresh_token);
        Ok(OAuthRefresh {
            assertion: None,
            token_url: token_url.trim().to_string(),
            client_id: client_id.to_string(),
            client_secret,
            state: Mutex::new(RefreshState {
                refresh_token,
                access: None,
                refreshes: 0,
                instance_url: None,
            }),
            redactor,
            rotation: None,
        })
    }

    /// Saves a refresh token the endpoint rotates under `reference` (the one the first came
    /// from) through `connections`' saver; without one, a rotation is only warned about.
    pub fn saving_rotations(
        mut self,
        reference: &str,
        connections: &crate::Connections,
    ) -> OAuthRefresh {
        self.rotation = Some(Box::new((
            reference.to_string(),
            connections.saver().cloned(),
        )));
        self
    }

    /// The JWT bearer grant (RFC 7523) at `token_url`: each token is asked for with a new
    /// assertion from `make`. Tokens and assertions are registered with `redactor`.
    pub fn jwt_bearer(
        token_url: &str,
        make: MakeAssertion,
        redactor: Redactor,
    ) -> Result<OAuthRefresh, String> {
        let mut grant = OAuthRefresh::new(
            token_url,
            "",
            SecretValue::new(Vec::new()),
            SecretValue::new(Vec::new()),
            redactor,
        )?;
        grant.assertion = Some(Assertion(make));
        Ok(grant)
    }

    /// How many times a token was fetched so far.
    pub fn refreshes(&self) -> u32 {
        self.lock().refreshes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RefreshState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A valid access token's header, refreshing first when there is none or it is about to
    /// expire.
    fn header(&self, http: &HttpClient) -> Result<HeaderValue, Error> {
        let name = http.name();
        let mut state = self.lock();
        let fresh = state
            .access
            .as_ref()
            .is_some_and(|(_, until)| Instant::now() < *until);
        if !fresh {
            let grant = self.refresh(http, &state.refresh_token)?;
            let access = SecretValue::new(grant.access_token.into_bytes());
            self.redactor.register(&access);
            let lifetime = Duration::from_secs(grant.expires_in.unwrap_or(1800));
            // A token shorter-lived than the margin is used for half its life.
            let margin = Self::EARLY.min(lifetime / 2);
            state.access = Some((access, Instant::now() + lifetime - margin));
            if let Some(rotated) = grant.refresh_token {
                let rotated = SecretValue::new(rotated.into_bytes());
                self.redactor.register(&rotated);
                if self.assertion.is_none() && rotated.expose() != state.refresh_token.expose() {
                    self.save_rotated(name, &rotated);
                }
                state.refresh_token = rotated;
            }
            state.refreshes += 1;
            if grant.instance_url.is_some() {
                state.instance_url = grant.instance_url;
            }
        }
        let Some((token, _)) = &state.access else {
            return Err(Error::Config(format!("{name}: no access token")));
        };
        bearer(name, token)
    }

    /// Hands a rotated refresh token to the run's saver; a failure is a warning, since this run
    /// goes on with the new token either way.
    fn save_rotated(&self, name: &str, rotated: &SecretValue) {
        let Some((reference, saver)) = self.rotation.as_deref() else {
            return;
        };
        let outcome = match saver {
            Some(saver) => saver.0.save(reference, rotated),
            None => Err("this run has nowhere to save it".to_string()),
        };
        match outcome {
            Ok(()) => tracing::info!(
                "{name}: the token endpoint rotated the refresh token; saved to {reference}"
            ),
            Err(why) => tracing::warn!(
                "{name}: the token endpoint rotated the refresh token, but {reference} could not \
                 be updated ({why}); the next run needs the new token: store refresh tokens with \
                 `hushflow keys import NAME` and name them keyring:NAME, which is updated in place"
            ),
        }
    }

    fn refresh(&self, http: &HttpClient, refresh_token: &SecretValue) -> Result<Grant, Error> {
        let name = http.name();
        let text = |v: &SecretValue, what: &str| {
            v.expose_str()
                .map(str::to_string)
                .map(Zeroizing::new)
                .map_err(|_| Error::Config(format!("{name}: the OAuth {what} is not UTF-8")))
        };
        let (secret, refresh) = (
            text(&self.client_secret, "client secret")?,
            text(refresh_token, "refresh token")?,
        );
        let assertion = match &self.assertion {
            Some(make) => {
                let a = (make.0)().map_err(|e| Error::Config(format!("{name}: {e}")))?;
                self.redactor
                    .register(&SecretValue::new(a.as_bytes().to_vec()));
                Some(a)
            }
            None => None,
        };
        // Built in place, with room reserved up front, so no copy of a secret is left behind
        // by a reallocation or a temporary string.
        let refresh_pairs = [
            ("grant_type", "refresh_token"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", secret.as_str()),
            ("refresh_token", refresh.as_str()),
        ];
        let jwt_pairs;
        let pairs: &[(&str, &str)] = match &assertion {
            Some(a) => {
                jwt_pairs = [
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", a.as_str()),
                ];
                &jwt_pairs
            }
            None => &refresh_pairs,
        };
        let room = pairs.iter().map(|(k, v)| k.len() + 2 + 3 * v.len()).sum();
        let mut form = Zeroizing::new(String::with_capacity(room));
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                form.push('&');
            }
            form.push_str(k);
            form.push('=');
            form.extend(percent_encoding::utf8_percent_encode(
                v,
                percent_encoding::NON_ALPHANUMERIC,
            ));
        }
        let response = http.exchange(
            "POST",
            &self.token_url,
            Body::Form(form.as_bytes()),
            "refreshing the OAuth access token",
            false,
            &|_| Verdict::Default,
            "application/json",
        )?;
        if !response.ok() {
            // The endpoint's error code (`invalid_grant`) is safe to show; its description
            // might quote what was sent, so it is left out.
            let code = serde_json::from_slice::<serde_json::Value>(&response.body)
                .ok()
                .and_then(|v| {
                    v.get("error")
                        .or_else(|| v.get("status"))
                        .and_then(|e| e.as_str())
                        .filter(|e| e.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                        .map(str::to_string)
                })
                .unwrap_or_else(|| "no error code".into());
            if self.assertion.is_some() {
                return Err(Error::Config(format!(
                    "{name}: the token endpoint refused the JWT bearer assertion ({}, {code}); \
                     check the client id, the username, that the connected app holds the \
                     certificate of the private key, and that the user is pre-authorized",
                    response.status
                )));
            }
            return Err(Error::Config(format!(
                "{name}: the token endpoint refused the refresh token ({}, {code}); check the \
                 client id, the client secret and the refresh token references, or authorize \
                 the app again for a new refresh token",
                response.status
            )));
        }
        serde_json::from_slice::<Grant>(&response.body).map_err(|_| {
            Error::Config(format!(
                "{name}: the token endpoint answered without an access_token"
            ))
        })
    }
}

impl TokenSource {
    /// The `Authorization` header to send (marked sensitive).
    pub fn authorization(&self, http: &HttpClient) -> Result<HeaderValue, Error> {
        match self {
            TokenSource::Bearer(token) => bearer(http.name(), token),
            TokenSource::OAuth(oauth) => oauth.header(http),
        }
    }

    /// The `instance_url` the token endpoint named with the access token (Salesforce), fetching
    /// a token first if there is none yet; `None` when the endpoint names none.
    pub fn instance_url(&self, http: &HttpClient) -> Result<Option<String>, Error> {
        match self {
            TokenSource::Bearer(_) => Ok(None),
            TokenSource::OAuth(oauth) => {
                oauth.header(http)?;
                Ok(oauth.lock().instance_url.clone())
            }
        }
    }

    /// Whether a 401 can be cured by fetching a new token.
    pub fn can_refresh(&self) -> bool {
        matches!(self, TokenSource::OAuth(_))
    }

    /// Forgets the access token (the server refused it), so the next request fetches another.
    pub fn invalidate(&self) {
        if let TokenSource::OAuth(oauth) = self {
            oauth.lock().access = None;
        }
    }
}

fn bearer(name: &str, token: &SecretValue) -> Result<HeaderValue, Error> {
    let token = token
        .expose_str()
        .map_err(|_| Error::Config(format!("{name}: the token is not UTF-8")))?;
    let value = Zeroizing::new(format!("Bearer {}", token.trim()));
    sensitive(&value).map_err(|_| {
        Error::Config(format!(
            "{name}: the token holds characters a header cannot carry (a line break?)"
        ))
    })
}

/// Checks that a resolved token (an API token, a refresh token) is one header or form field's
/// worth of text; `what` names it for the message, which never quotes it.
pub fn check_token(what: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{what} is empty"));
    }
    if value.trim().chars().any(|c| c.is_control() || c == ' ') {
        return Err(format!("{what} holds spaces or control characters"));
    }
    Ok(())
}
