//! HubSpot's API as the source and sink use it: the three calls, the token, the rate limits,
//! and errors in words that quote no value (HubSpot's own messages quote the values they
//! refuse, so they are never shown: only the status and the error's category).

use super::config::{Auth, Common};
use crate::http::{
    Body, ClientOptions, HttpClient, OAuthRefresh, RateLimiter, Response, TokenSource, Verdict,
};
use hushflow_core::Error;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The contacts object's path.
pub(super) const CONTACTS: &str = "/crm/v3/objects/contacts";

/// What the run is told when HubSpot's daily limit is used up.
const DAILY: &str = "HubSpot: the account's daily API limit is used up (429, policy DAILY); the \
                     run stopped instead of retrying for hours, and the position of what was \
                     written is kept: run it again after the limit resets (midnight in the \
                     account's time zone)";

/// A connected HubSpot account.
pub(super) struct HubSpot {
    http: HttpClient,
    /// Search has its own, lower limit.
    search: RateLimiter,
    /// The daily limit is used up (a header said so, or a 429 did).
    daily_spent: Arc<AtomicBool>,
}

/// One contact as HubSpot returns it.
#[derive(Debug, Deserialize)]
pub(super) struct Contact {
    pub id: String,
    #[serde(default)]
    pub properties: Map<String, Value>,
}

/// A page of contacts, and the cursor of the next one.
#[derive(Debug, Deserialize)]
pub(super) struct Page {
    #[serde(default)]
    pub results: Vec<Value>,
    #[serde(default)]
    pub paging: Option<Paging>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Paging {
    pub next: Option<Next>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Next {
    pub after: String,
}

impl Page {
    pub(super) fn next_after(&self) -> Option<&str> {
        self.paging
            .as_ref()
            .and_then(|p| p.next.as_ref())
            .map(|n| n.after.as_str())
    }
}

impl HubSpot {
    /// A client for the account the auth keys name; connects to nothing yet.
    pub(super) fn connect(
        auth: &Auth<'_>,
        common: &Common,
        connections: &crate::Connections,
    ) -> Result<HubSpot, Error> {
        let secret = |reference: &str| -> Result<hushflow_secrets::SecretValue, Error> {
            let value = connections.get(reference).ok_or_else(|| {
                Error::Config(format!("the connection {reference} was not resolved"))
            })?;
            Ok(hushflow_secrets::SecretValue::new(value.expose().to_vec()))
        };
        let tokens = match (auth.token, auth.refresh_token) {
            (Some(token), _) => TokenSource::Bearer(secret(token)?),
            (None, Some(refresh)) => {
                let (Some(client_id), Some(client_secret)) = (auth.client_id, auth.client_secret)
                else {
                    return Err(Error::Config(
                        "HubSpot: `refresh_token` needs `client_id` and `client_secret`".into(),
                    ));
                };
                TokenSource::OAuth(
                    OAuthRefresh::new(
                        &common.token_url(),
                        client_id,
                        secret(client_secret)?,
                        secret(refresh)?,
                        connections.redactor().clone(),
                    )
                    .map_err(|e| Error::Config(format!("HubSpot: {e}")))?
                    .saving_rotations(refresh, connections),
                )
            }
            (None, None) => {
                return Err(Error::Config(
                    "HubSpot: give `token` or `refresh_token` (by secret reference)".into(),
                ));
            }
        };
        let mut options = ClientOptions::new("HubSpot", &common.base_url);
        options.timeout = Duration::from_secs(common.timeout_secs.max(1));
        options.ca_file = common.ca_file.clone();
        // HubSpot counts requests in 10-second windows: a burst of a second's worth.
        let burst = common.requests_per_second.ceil().clamp(1.0, 1000.0) as u32;
        let http = HttpClient::new(options, Some(tokens))?.with_limiter(Arc::new(
            RateLimiter::new(common.requests_per_second, burst),
        ));
        Ok(HubSpot {
            http,
            search: RateLimiter::new(common.search_requests_per_second, 1),
            daily_spent: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Time callers spent waiting on the client-side limiters.
    pub(super) fn waited(&self) -> Duration {
        self.http.limiter().map_or(Duration::ZERO, |l| l.waited()) + self.search.waited()
    }

    /// A page of all contacts (`GET`), `limit` at most, after the cursor `after`.
    pub(super) fn list(
        &self,
        properties: &[String],
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, Error> {
        let mut path = format!("{CONTACTS}?limit={limit}&archived=false");
        if !properties.is_empty() {
            path.push_str("&properties=");
            path.push_str(&encode(&properties.join(",")));
        }
        if let Some(after) = after {
            path.push_str("&after=");
            path.push_str(&encode(after));
        }
        let response = self.call("GET", &path, Body::None, "listing contacts")?;
        parse(&response, "listing contacts")
    }

    /// A page of a contacts search (`POST …/search`).
    pub(super) fn search(&self, body: &Value) -> Result<Page, Error> {
        self.search.acquire();
        let bytes = serde_json::to_vec(body)
            .map_err(|_| Error::Config("HubSpot: the search could not be encoded".into()))?;
        let response = self.call(
            "POST",
            &format!("{CONTACTS}/search"),
            Body::Json(&bytes),
            "searching contacts",
        )?;
        parse(&response, "searching contacts")
    }

    /// Upserts a batch (`POST …/batch/upsert`): the answer, 200 or 207 (some refused).
    pub(super) fn upsert(&self, body: &[u8]) -> Result<Response, Error> {
        let what = "upserting contacts";
        let response = self.call(
            "POST",
            &format!("{CONTACTS}/batch/upsert"),
            Body::Json(body),
            what,
        )?;
        match response.status {
            200 | 201 | 207 => Ok(response),
            _ => Err(refused(&response, what)),
        }
    }

    /// Deletes one contact for good (`POST …/gdpr-delete`, by record id); 204 when done.
    pub(super) fn gdpr_delete(&self, id: &str) -> Result<(), Error> {
        let body = serde_json::to_vec(&serde_json::json!({ "objectId": id }))
            .map_err(|_| Error::Config("HubSpot: the delete could not be encoded".into()))?;
        self.call(
            "POST",
            &format!("{CONTACTS}/gdpr-delete"),
            Body::Json(&body),
            "deleting a contact (GDPR delete)",
        )
        .map(|_| ())
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        body: Body<'_>,
        what: &str,
    ) -> Result<Response, Error> {
        if self.daily_spent.load(Ordering::Relaxed) {
            return Err(Error::Config(DAILY.into()));
        }
        let response = self
            .http
            .send(method, path, body, what, &|r| self.classify(r))?;
        if response.ok() {
            Ok(response)
        } else {
            Err(refused(&response, what))
        }
    }

    /// Reads HubSpot's rate-limit headers and decides about 429s: the daily policy stops the
    /// run; the ten-second and per-second ones are retried after `Retry-After`, or after the
    /// window the headers name.
    fn classify(&self, response: &Response) -> Verdict {
        let number = |name: &str| {
            response
                .header(name)
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let interval = number("x-hubspot-ratelimit-interval-milliseconds")
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_secs(10));
        if number("x-hubspot-ratelimit-remaining") == Some(0)
            && let Some(limiter) = self.http.limiter()
        {
            // This window is used up: hold every request until it rolls over.
            limiter.pause_for(interval);
        }
        if number("x-hubspot-ratelimit-daily-remaining") == Some(0) {
            self.daily_spent.store(true, Ordering::Relaxed);
        }
        if response.status != 429 {
            return Verdict::Default;
        }
        let policy = serde_json::from_slice::<Value>(&response.body)
            .ok()
            .and_then(|v| {
                v.get("policyName")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
        if policy.as_deref() == Some("DAILY") {
            self.daily_spent.store(true, Ordering::Relaxed);
            return Verdict::Stop(DAILY.into());
        }
        let after = response
            .header("retry-after")
            .and_then(crate::http::retry::retry_after);
        // Without Retry-After, the backoff (jittered) applies; a ten-second window that is
        // used up says how long at most.
        Verdict::Retry(
            after.or_else(|| {
                (number("x-hubspot-ratelimit-remaining") == Some(0)).then_some(interval)
            }),
        )
    }
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn parse(response: &Response, what: &str) -> Result<Page, Error> {
    serde_json::from_slice(&response.body).map_err(|_| {
        Error::Config(format!(
            "HubSpot: {what}: the answer is not the JSON page expected"
        ))
    })
}

/// An error for a refused request: the status, and HubSpot's error category (a fixed word such
/// as `VALIDATION_ERROR`), never its message, which may quote values.
pub(super) fn refused(response: &Response, what: &str) -> Error {
    let category = category_of(&response.body);
    let hint = match response.status {
        401 => {
            "; the token was refused: check the token reference (a private app's token, or \
                the OAuth app's refresh token), and that it was not revoked"
        }
        403 => {
            "; the token lacks a scope: the app needs crm.objects.contacts.read (source) or \
                crm.objects.contacts.write (sink)"
        }
        404 => "; check base_url",
        _ => "",
    };
    Error::Config(format!(
        "HubSpot: {what}: answered {}{}{hint}",
        response.status,
        category.map(|c| format!(" ({c})")).unwrap_or_default()
    ))
}

/// The `category` of HubSpot's error body, when it is one fixed word.
pub(super) fn category_of(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    word(v.get("category")?)
}

/// A value that is one upper-case word (`VALIDATION_ERROR`, `INVALID_EMAIL`), so safe to show.
pub(super) fn word(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    (!s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
    .then(|| s.to_string())
}
