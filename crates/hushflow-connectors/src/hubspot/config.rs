//! The `[source]` and `[sink]` tables of a pipeline file with `type = "hubspot"`.

use crate::ConfigProblem;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// HubSpot's API.
pub const DEFAULT_BASE_URL: &str = "https://api.hubapi.com";

/// How the connector authenticates and where it connects; the same keys in `[source]` and
/// `[sink]`. Give `token` (a private-app token), or `refresh_token`, `client_id` and
/// `client_secret` (an OAuth app); secrets by reference only.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HubSpotSourceConfig {
    /// A secret reference (`env:HUBSPOT_TOKEN`) holding a private app's access token.
    #[serde(default)]
    pub token: Option<String>,
    /// A secret reference holding an OAuth refresh token (instead of `token`).
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// The OAuth app's client id (not secret), with `refresh_token`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// A secret reference holding the OAuth app's client secret, with `refresh_token`.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Read only contacts modified since the last run (search on `lastmodifieddate`); the
    /// first run reads everything.
    #[serde(default)]
    pub incremental: bool,
    /// Contacts modified in the last this many seconds before the sync start are left to the
    /// next run: HubSpot's search index trails writes by a few seconds. Default 30.
    #[serde(default = "default_settle")]
    pub settle_secs: u64,
    /// The API's base URL; `https://`, or `http://` to a loopback address (a local fake).
    #[serde(default = "default_base")]
    pub base_url: String,
    /// The OAuth token endpoint; default `{base_url}/oauth/v1/token`.
    #[serde(default)]
    pub token_url: Option<String>,
    /// Requests a second at most (client side). Default 10: HubSpot allows private apps 100
    /// per 10 seconds (more on higher tiers).
    #[serde(default = "default_rate")]
    pub requests_per_second: f64,
    /// Search requests a second at most. Default 4 (HubSpot allows 5).
    #[serde(default = "default_search_rate")]
    pub search_requests_per_second: f64,
    /// Seconds a request may take. Default 30.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// A PEM file of root certificates to trust instead of the built-in ones (a TLS proxy);
    /// relative to the pipeline file.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// Writes contacts to HubSpot, upserting on `id_property`.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HubSpotSinkConfig {
    /// A secret reference holding a private app's access token.
    #[serde(default)]
    pub token: Option<String>,
    /// A secret reference holding an OAuth refresh token (instead of `token`).
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// The OAuth app's client id, with `refresh_token`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// A secret reference holding the OAuth app's client secret, with `refresh_token`.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// The unique property contacts are matched on (`email`, or a custom unique property);
    /// its value is the record key's. Default: the pipeline's key.
    #[serde(default)]
    pub id_property: Option<String>,
    /// The fields to write, as properties; default every field the policy outputs.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// Contacts a request, at most 100 (HubSpot's limit). Default 100.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// The API's base URL; `https://`, or `http://` to a loopback address (a local fake).
    #[serde(default = "default_base")]
    pub base_url: String,
    /// The OAuth token endpoint; default `{base_url}/oauth/v1/token`.
    #[serde(default)]
    pub token_url: Option<String>,
    /// Requests a second at most (client side). Default 10: HubSpot allows private apps 100
    /// per 10 seconds (more on higher tiers).
    #[serde(default = "default_rate")]
    pub requests_per_second: f64,
    /// Search requests a second at most. Default 4 (HubSpot allows 5).
    #[serde(default = "default_search_rate")]
    pub search_requests_per_second: f64,
    /// Seconds a request may take. Default 30.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// A PEM file of root certificates to trust instead of the built-in ones (a TLS proxy);
    /// relative to the pipeline file.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// The keys both ends share (the tables repeat them: serde's `flatten` and
/// `deny_unknown_fields` do not mix).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Common {
    pub base_url: String,
    pub token_url: Option<String>,
    pub requests_per_second: f64,
    pub search_requests_per_second: f64,
    pub timeout_secs: u64,
    pub ca_file: Option<PathBuf>,
}

macro_rules! common_of {
    ($t:ty) => {
        impl $t {
            /// The keys both ends share.
            pub(super) fn common(&self) -> Common {
                Common {
                    base_url: self.base_url.clone(),
                    token_url: self.token_url.clone(),
                    requests_per_second: self.requests_per_second,
                    search_requests_per_second: self.search_requests_per_second,
                    timeout_secs: self.timeout_secs,
                    ca_file: self.ca_file.clone(),
                }
            }
        }
    };
}
common_of!(HubSpotSourceConfig);
common_of!(HubSpotSinkConfig);

fn default_base() -> String {
    DEFAULT_BASE_URL.to_string()
}
fn default_rate() -> f64 {
    10.0
}
fn default_search_rate() -> f64 {
    4.0
}
fn default_timeout() -> u64 {
    30
}
fn default_settle() -> u64 {
    30
}
fn default_batch() -> usize {
    100
}

/// The auth keys of either table.
pub(super) struct Auth<'a> {
    pub token: Option<&'a str>,
    pub refresh_token: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub client_secret: Option<&'a str>,
}

impl Auth<'_> {
    fn problems(&self, out: &mut Vec<ConfigProblem>) {
        match (self.token, self.refresh_token) {
            (Some(_), Some(_)) => out.push(ConfigProblem {
                key: "token",
                message: "give either `token` or `refresh_token`, not both".into(),
            }),
            (None, None) => out.push(ConfigProblem {
                key: "token",
                message: "is missing: give `token` (a private app's token, by secret reference) \
                          or `refresh_token` with `client_id` and `client_secret`"
                    .into(),
            }),
            (None, Some(_)) => {
                if self.client_id.is_none_or(|c| c.trim().is_empty()) {
                    out.push(ConfigProblem {
                        key: "client_id",
                        message: "is needed with `refresh_token`".into(),
                    });
                }
                if self.client_secret.is_none() {
                    out.push(ConfigProblem {
                        key: "client_secret",
                        message: "is needed with `refresh_token` (by secret reference)".into(),
                    });
                }
            }
            (Some(_), None) => {}
        }
    }
}

impl Common {
    fn problems(&self, out: &mut Vec<ConfigProblem>) {
        if let Err(e) = crate::http::check_url("base_url", &self.base_url) {
            out.push(ConfigProblem {
                key: "base_url",
                message: e.trim_start_matches("base_url ").to_string(),
            });
        }
        if let Some(url) = &self.token_url
            && let Err(e) = crate::http::check_url("token_url", url)
        {
            out.push(ConfigProblem {
                key: "token_url",
                message: e.trim_start_matches("token_url ").to_string(),
            });
        }
        for (key, rate) in [
            ("requests_per_second", self.requests_per_second),
            (
                "search_requests_per_second",
                self.search_requests_per_second,
            ),
        ] {
            if !(rate.is_finite() && rate > 0.0) {
                out.push(ConfigProblem {
                    key,
                    message: "must be a number above 0".into(),
                });
            }
        }
        if self.timeout_secs == 0 {
            out.push(ConfigProblem {
                key: "timeout_secs",
                message: "must be at least 1".into(),
            });
        }
    }

    /// The token endpoint.
    pub(super) fn token_url(&self) -> String {
        self.token_url.clone().unwrap_or_else(|| {
            format!(
                "{}/oauth/v1/token",
                self.base_url.trim().trim_end_matches('/')
            )
        })
    }
}

fn resolve_ca(ca_file: &mut Option<PathBuf>, base: &Path) {
    if let Some(p) = ca_file {
        *p = base.join(&*p);
    }
}

impl HubSpotSourceConfig {
    pub(super) fn auth(&self) -> Auth<'_> {
        Auth {
            token: self.token.as_deref(),
            refresh_token: self.refresh_token.as_deref(),
            client_id: self.client_id.as_deref(),
            client_secret: self.client_secret.as_deref(),
        }
    }
}

impl HubSpotSinkConfig {
    pub(super) fn auth(&self) -> Auth<'_> {
        Auth {
            token: self.token.as_deref(),
            refresh_token: self.refresh_token.as_deref(),
            client_id: self.client_id.as_deref(),
            client_secret: self.client_secret.as_deref(),
        }
    }
}

/// The connection: the token (or refresh token) by reference, the client secret besides, and
/// the URLs to check.
#[derive(Debug)]
struct HubSpotConnection<'a> {
    key: &'static str,
    reference: &'a str,
    more: Vec<(&'static str, &'a str)>,
    base_url: &'a str,
}

impl crate::Connection for HubSpotConnection<'_> {
    fn reference(&self) -> &str {
        self.reference
    }

    fn key(&self) -> &'static str {
        self.key
    }

    fn holds(&self) -> &'static str {
        "the token"
    }

    fn more_references(&self) -> Vec<(&'static str, &str)> {
        self.more.clone()
    }

    /// The value is a token, not a URL: checked for being one header's worth of text; the
    /// base URL and token URL are checked here too.
    fn check_url(&self, value: &str, _base: &Path) -> Result<Vec<String>, String> {
        crate::http::check_token("the token", value)?;
        crate::http::check_url("base_url", self.base_url)?;
        let mut warnings = Vec::new();
        if crate::http::is_loopback_url(self.base_url) {
            warnings.push(
                "the HubSpot base_url is plain http to this machine (a test server?), not HubSpot"
                    .to_string(),
            );
        }
        Ok(warnings)
    }
}

const LOCATION: &str = "HubSpot contacts";

impl crate::SourceConfig for HubSpotSourceConfig {
    fn kind(&self) -> &'static str {
        "hubspot"
    }

    fn location(&self) -> &Path {
        Path::new(LOCATION)
    }

    fn file(&self) -> Option<&Path> {
        None
    }

    fn resolve_paths(&mut self, base: &Path) {
        resolve_ca(&mut self.ca_file, base);
    }

    fn problems(&self) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        self.auth().problems(&mut out);
        self.common().problems(&mut out);
        out
    }

    fn connection(&self) -> Option<Box<dyn crate::Connection + '_>> {
        let auth = self.auth();
        // `Auth` borrows `self`; the connection borrows the same fields.
        let (key, reference) = match (auth.token, auth.refresh_token) {
            (Some(t), _) => ("token", t),
            (None, Some(r)) => ("refresh_token", r),
            (None, None) => return None,
        };
        let more = match (key, self.client_secret.as_deref()) {
            ("refresh_token", Some(s)) => vec![("client_secret", s)],
            _ => Vec::new(),
        };
        Some(Box::new(HubSpotConnection {
            key,
            reference,
            more,
            base_url: &self.base_url,
        }))
    }

    fn incremental(&self) -> bool {
        self.incremental
    }

    fn open(
        &self,
        ctx: &crate::SourceContext<'_>,
    ) -> Result<Box<dyn hushflow_core::Source>, hushflow_core::Error> {
        let api = super::client::HubSpot::connect(&self.auth(), &self.common(), ctx.connections)?;
        Ok(Box::new(super::HubSpotSource::open(
            api, self, ctx.fields, ctx.after,
        )?))
    }
}

impl crate::SinkConfig for HubSpotSinkConfig {
    fn kind(&self) -> &'static str {
        "hubspot"
    }

    fn location(&self) -> &Path {
        Path::new(LOCATION)
    }

    fn file(&self) -> Option<&Path> {
        None
    }

    /// A replay writes to the same CRM: upserts are idempotent.
    fn relocate(&mut self, _to: &Path) {}

    fn resolve_paths(&mut self, base: &Path) {
        resolve_ca(&mut self.ca_file, base);
    }

    fn fields(&self) -> Option<&[String]> {
        self.fields.as_deref()
    }

    fn problems(&self) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        self.auth().problems(&mut out);
        self.common().problems(&mut out);
        if !(1..=100).contains(&self.batch_size) {
            out.push(ConfigProblem {
                key: "batch_size",
                message: "must be between 1 and 100 (HubSpot's batch limit)".into(),
            });
        }
        if self
            .id_property
            .as_deref()
            .is_some_and(|p| p.trim().is_empty())
        {
            out.push(ConfigProblem {
                key: "id_property",
                message: "is empty; name a unique property such as `email`".into(),
            });
        }
        out
    }

    fn connection(&self) -> Option<Box<dyn crate::Connection + '_>> {
        let (key, reference) = match (self.token.as_deref(), self.refresh_token.as_deref()) {
            (Some(t), _) => ("token", t),
            (None, Some(r)) => ("refresh_token", r),
            (None, None) => return None,
        };
        let more = match (key, self.client_secret.as_deref()) {
            ("refresh_token", Some(s)) => vec![("client_secret", s)],
            _ => Vec::new(),
        };
        Some(Box::new(HubSpotConnection {
            key,
            reference,
            more,
            base_url: &self.base_url,
        }))
    }

    fn keeps_rows(&self) -> bool {
        true
    }

    /// Not yet: HubSpot archives contacts by their own id only (`batch/archive`), which needs a
    /// lookup by `id_property` first.
    fn withdraws_rows(&self) -> bool {
        false
    }

    fn describe(&self, key: &str) -> Option<String> {
        Some(format!(
            "(upsert on `{}`)",
            self.id_property.as_deref().unwrap_or(key)
        ))
    }

    fn open(
        &self,
        ctx: &crate::SinkContext<'_>,
    ) -> Result<Box<dyn hushflow_core::Sink>, hushflow_core::Error> {
        let api = super::client::HubSpot::connect(&self.auth(), &self.common(), ctx.connections)?;
        Ok(Box::new(super::HubSpotSink::new(api, self, ctx.key)))
    }

    /// A person's contacts, found by search and erased with the GDPR delete.
    fn rows(
        &self,
        ctx: &crate::SinkContext<'_>,
    ) -> Result<Option<Box<dyn crate::SinkRows>>, hushflow_core::Error> {
        let api = super::client::HubSpot::connect(&self.auth(), &self.common(), ctx.connections)?;
        Ok(Some(Box::new(crate::rows::ById(
            super::rows::HubSpotRows::new(api),
        ))))
    }
}
