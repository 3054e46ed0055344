//! The `[source]` table of a pipeline file with `type = "salesforce"`.

use crate::ConfigProblem;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Salesforce's production login host (a sandbox uses `https://test.salesforce.com`).
pub const DEFAULT_LOGIN_URL: &str = "https://login.salesforce.com";
/// The REST API version asked for.
pub const DEFAULT_API_VERSION: &str = "62.0";

/// Reads one sObject from Salesforce. Auth: `refresh_token`, `client_id` and `client_secret`
/// (a connected app), secrets by reference only.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SalesforceSourceConfig {
    /// The sObject to read (`Contact`, `Lead`, `Account`, a custom `Thing__c`). Default
    /// `Contact`.
    #[serde(default = "default_object")]
    pub object: String,
    /// A secret reference holding the connected app's OAuth refresh token.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// The connected app's consumer key (not secret).
    #[serde(default)]
    pub client_id: Option<String>,
    /// A secret reference holding the connected app's consumer secret.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Instead of `refresh_token` and `client_secret`: a secret reference holding the PEM
    /// private key (RSA) whose certificate the connected app holds, for the JWT bearer flow.
    #[serde(default)]
    pub private_key: Option<String>,
    /// With `private_key`: the Salesforce username the integration acts as.
    #[serde(default)]
    pub username: Option<String>,
    /// Read only records modified since the last run (`SystemModstamp`); the first run reads
    /// everything.
    #[serde(default)]
    pub incremental: bool,
    /// `rest` (the `query` resource, pages of up to 2,000 records: small and medium objects)
    /// or `bulk` (a Bulk API 2.0 query job, read as CSV: large objects). Default `rest`.
    #[serde(default)]
    pub api: Api,
    /// With `api = "bulk"`: milliseconds between looks at the job's state. Default 2000.
    #[serde(default = "default_poll")]
    pub poll_interval_ms: u64,
    /// With `api = "bulk"`: seconds the job may take. Default 3600.
    #[serde(default = "default_job_timeout")]
    pub job_timeout_secs: u64,
    /// Records modified in the last this many seconds before the run start are left to the
    /// next run (a transaction committing late keeps its earlier `SystemModstamp`). Default 30.
    #[serde(default = "default_settle")]
    pub settle_secs: u64,
    /// Where tokens come from: `https://login.salesforce.com`, `https://test.salesforce.com`
    /// or the org's My Domain; `http://` to a loopback address for a local fake.
    #[serde(default = "default_login")]
    pub login_url: String,
    /// The org's API host; default: the `instance_url` the token endpoint answers with.
    #[serde(default)]
    pub instance_url: Option<String>,
    /// The REST API version (`62.0`).
    #[serde(default = "default_version")]
    pub api_version: String,
    /// API requests of the org's daily allowance to leave for others: the run stops, keeping
    /// its position, when `Sforce-Limit-Info` says fewer are left. Default 1000.
    #[serde(default = "default_reserve")]
    pub api_reserve: u64,
    /// Requests a second at most (client side). Default 10.
    #[serde(default = "default_rate")]
    pub requests_per_second: f64,
    /// Seconds a request may take. Default 120 (a query's first page can be slow).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// A PEM file of root certificates to trust instead of the built-in ones (a TLS proxy);
    /// relative to the pipeline file.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// Writes records to one Salesforce sObject with Bulk API 2.0 ingest jobs, upserting on
/// `external_id_field`. The auth and connection keys are the source's.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SalesforceSinkConfig {
    /// The sObject to write (`Contact`, `Lead`, a custom `Thing__c`). Default `Contact`.
    #[serde(default = "default_object")]
    pub object: String,
    /// The field records are matched on (an external id field, or `Id`); its value is the
    /// record key's. Default: the pipeline's key.
    #[serde(default)]
    pub external_id_field: Option<String>,
    /// The fields to write; default every field the policy outputs.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// A secret reference holding the connected app's OAuth refresh token.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// The connected app's consumer key (not secret).
    #[serde(default)]
    pub client_id: Option<String>,
    /// A secret reference holding the connected app's consumer secret.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Instead of `refresh_token` and `client_secret`: a secret reference holding the PEM
    /// private key (RSA) whose certificate the connected app holds, for the JWT bearer flow.
    #[serde(default)]
    pub private_key: Option<String>,
    /// With `private_key`: the Salesforce username the integration acts as.
    #[serde(default)]
    pub username: Option<String>,
    /// Where tokens come from (see the source's key).
    #[serde(default = "default_login")]
    pub login_url: String,
    /// The org's API host; default: the token endpoint's `instance_url`.
    #[serde(default)]
    pub instance_url: Option<String>,
    /// The REST API version (`62.0`).
    #[serde(default = "default_version")]
    pub api_version: String,
    /// API requests of the org's daily allowance to leave for others. Default 1000.
    #[serde(default = "default_reserve")]
    pub api_reserve: u64,
    /// Requests a second at most (client side). Default 10.
    #[serde(default = "default_rate")]
    pub requests_per_second: f64,
    /// Seconds a request may take. Default 120.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Milliseconds between looks at a job's state. Default 2000.
    #[serde(default = "default_poll")]
    pub poll_interval_ms: u64,
    /// Seconds a job may take before the run gives up on it. Default 3600.
    #[serde(default = "default_job_timeout")]
    pub job_timeout_secs: u64,
    /// A PEM file of root certificates to trust instead of the built-in ones (a TLS proxy);
    /// relative to the pipeline file.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// The keys both ends share (the tables repeat them: serde's `flatten` and
/// `deny_unknown_fields` do not mix).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Common {
    pub object: String,
    pub refresh_token: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub private_key: Option<String>,
    pub username: Option<String>,
    pub login_url: String,
    pub instance_url: Option<String>,
    pub api_version: String,
    pub api_reserve: u64,
    pub requests_per_second: f64,
    pub timeout_secs: u64,
    pub ca_file: Option<PathBuf>,
}

macro_rules! common_of {
    ($t:ty) => {
        impl $t {
            /// The keys both ends share.
            pub(super) fn common(&self) -> Common {
                Common {
                    object: self.object.clone(),
                    refresh_token: self.refresh_token.clone(),
                    client_id: self.client_id.clone(),
                    client_secret: self.client_secret.clone(),
                    private_key: self.private_key.clone(),
                    username: self.username.clone(),
                    login_url: self.login_url.clone(),
                    instance_url: self.instance_url.clone(),
                    api_version: self.api_version.clone(),
                    api_reserve: self.api_reserve,
                    requests_per_second: self.requests_per_second,
                    timeout_secs: self.timeout_secs,
                    ca_file: self.ca_file.clone(),
                }
            }
        }
    };
}
common_of!(SalesforceSourceConfig);
common_of!(SalesforceSinkConfig);

fn default_poll() -> u64 {
    2000
}
fn default_job_timeout() -> u64 {
    3600
}
/// Which API the source reads with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// The REST `query` resource, following `nextRecordsUrl`.
    #[default]
    Rest,
    /// A Bulk API 2.0 query job, its CSV results read following `Sforce-Locator`.
    Bulk,
}

fn default_object() -> String {
    "Contact".into()
}
fn default_login() -> String {
    DEFAULT_LOGIN_URL.into()
}
fn default_version() -> String {
    DEFAULT_API_VERSION.into()
}
fn default_reserve() -> u64 {
    1000
}
fn default_rate() -> f64 {
    10.0
}
fn default_settle() -> u64 {
    30
}
fn default_timeout() -> u64 {
    120
}

impl Common {
    /// The token endpoint.
    pub(super) fn token_url(&self) -> String {
        format!(
            "{}/services/oauth2/token",
            self.login_url.trim().trim_end_matches('/')
        )
    }
}

impl Common {
    pub(super) fn problems(&self) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        match (&self.refresh_token, &self.private_key) {
            (Some(_), Some(_)) => out.push(ConfigProblem {
                key: "refresh_token",
                message: "give either `refresh_token` or `private_key`, not both".into(),
            }),
            (None, None) => out.push(ConfigProblem {
                key: "refresh_token",
                message: "is missing: give the connected app's refresh token by secret \
                          reference, with `client_id` and `client_secret`; or `private_key` \
                          and `username` for the JWT bearer flow"
                    .into(),
            }),
            (Some(_), None) => {
                if self.client_secret.is_none() {
                    out.push(ConfigProblem {
                        key: "client_secret",
                        message: "is needed with `refresh_token`: the connected app's consumer \
                                  secret, by secret reference"
                            .into(),
                    });
                }
            }
            (None, Some(_)) => {
                if self.username.as_deref().is_none_or(|u| u.trim().is_empty()) {
                    out.push(ConfigProblem {
                        key: "username",
                        message: "is needed with `private_key`: the user the integration acts as"
                            .into(),
                    });
                }
            }
        }
        if self
            .client_id
            .as_deref()
            .is_none_or(|c| c.trim().is_empty())
        {
            out.push(ConfigProblem {
                key: "client_id",
                message: "is needed: the connected app's consumer key".into(),
            });
        }
        if !super::soql::is_identifier(&self.object) {
            out.push(ConfigProblem {
                key: "object",
                message: "must be an sObject's API name (letters, digits and underscores, \
                          starting with a letter), such as `Contact`"
                    .into(),
            });
        }
        if !version_ok(&self.api_version) {
            out.push(ConfigProblem {
                key: "api_version",
                message: "must be a version number such as `62.0`".into(),
            });
        }
        for (key, url) in [
            ("login_url", Some(self.login_url.as_str())),
            ("instance_url", self.instance_url.as_deref()),
        ] {
            if let Some(url) = url
                && let Err(e) = crate::http::check_url(key, url)
            {
                out.push(ConfigProblem {
                    key,
                    message: e.trim_start_matches(key).trim_start().to_string(),
                });
            }
        }
        if !(self.requests_per_second.is_finite() && self.requests_per_second > 0.0) {
            out.push(ConfigProblem {
                key: "requests_per_second",
                message: "must be a number above 0".into(),
            });
        }
        if self.timeout_secs == 0 {
            out.push(ConfigProblem {
                key: "timeout_secs",
                message: "must be at least 1".into(),
            });
        }
        out
    }
}

/// Whether `version` is `NN.N` (it goes into every path).
pub(super) fn version_ok(version: &str) -> bool {
    let mut parts = version.split('.');
    let (Some(a), Some(b), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    [a, b]
        .iter()
        .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|c| c.is_ascii_digit()))
}

/// The connection: the refresh token by reference, the client secret besides.
#[derive(Debug)]
struct SalesforceConnection<'a> {
    /// `refresh_token` or `private_key`.
    key: &'static str,
    reference: &'a str,
    more: Vec<(&'static str, &'a str)>,
    login_url: &'a str,
}

impl crate::Connection for SalesforceConnection<'_> {
    fn reference(&self) -> &str {
        self.reference
    }

    fn key(&self) -> &'static str {
        self.key
    }

    fn holds(&self) -> &'static str {
        if self.key == "private_key" {
            "the private key"
        } else {
            "the refresh token"
        }
    }

    fn more_references(&self) -> Vec<(&'static str, &str)> {
        self.more.clone()
    }

    /// The value is a refresh token (one form field's worth of text) or a PEM private key, not
    /// a URL; the login URL is checked here too.
    fn check_url(&self, value: &str, _base: &Path) -> Result<Vec<String>, String> {
        // A PEM key is lines with spaces in its armour: only a token is held to one field.
        if self.key == "private_key" {
            if !value.contains("PRIVATE KEY-----") {
                return Err("the private key is not PEM (-----BEGIN PRIVATE KEY-----)".into());
            }
        } else {
            crate::http::check_token("the refresh token", value)?;
        }
        crate::http::check_url("login_url", self.login_url)?;
        let mut warnings = Vec::new();
        if crate::http::is_loopback_url(self.login_url) {
            warnings.push(
                "the Salesforce login_url is plain http to this machine (a test server?), not \
                 Salesforce"
                    .to_string(),
            );
        }
        Ok(warnings)
    }
}

impl crate::SourceConfig for SalesforceSourceConfig {
    fn kind(&self) -> &'static str {
        "salesforce"
    }

    fn location(&self) -> &Path {
        Path::new("Salesforce")
    }

    fn file(&self) -> Option<&Path> {
        None
    }

    fn resolve_paths(&mut self, base: &Path) {
        if let Some(p) = &mut self.ca_file {
            *p = base.join(&*p);
        }
    }

    fn problems(&self) -> Vec<ConfigProblem> {
        let mut out = self.common().problems();
        if self.poll_interval_ms == 0 {
            out.push(ConfigProblem {
                key: "poll_interval_ms",
                message: "must be at least 1".into(),
            });
        }
        out
    }

    fn connection(&self) -> Option<Box<dyn crate::Connection + '_>> {
        connection(
            &self.refresh_token,
            &self.private_key,
            &self.client_secret,
            &self.login_url,
        )
    }

    fn incremental(&self) -> bool {
        self.incremental
    }

    fn open(
        &self,
        ctx: &crate::SourceContext<'_>,
    ) -> Result<Box<dyn hushflow_core::Source>, hushflow_core::Error> {
        let api = super::client::Salesforce::connect(&self.common(), ctx.connections)?;
        Ok(Box::new(super::SalesforceSource::open(
            api, self, ctx.fields, ctx.after,
        )?))
    }
}

fn connection<'a>(
    refresh_token: &'a Option<String>,
    private_key: &'a Option<String>,
    client_secret: &'a Option<String>,
    login_url: &'a str,
) -> Option<Box<dyn crate::Connection + 'a>> {
    if let Some(reference) = private_key.as_deref().filter(|_| refresh_token.is_none()) {
        return Some(Box::new(SalesforceConnection {
            key: "private_key",
            reference,
            more: Vec::new(),
            login_url,
        }));
    }
    let reference = refresh_token.as_deref()?;
    let more = client_secret
        .as_deref()
        .map(|s| vec![("client_secret", s)])
        .unwrap_or_default();
    Some(Box::new(SalesforceConnection {
        key: "refresh_token",
        reference,
        more,
        login_url,
    }))
}

impl crate::SinkConfig for SalesforceSinkConfig {
    fn kind(&self) -> &'static str {
        "salesforce"
    }

    fn location(&self) -> &Path {
        Path::new("Salesforce")
    }

    fn file(&self) -> Option<&Path> {
        None
    }

    /// A replay writes to the same org: upserts are idempotent.
    fn relocate(&mut self, _to: &Path) {}

    fn resolve_paths(&mut self, base: &Path) {
        if let Some(p) = &mut self.ca_file {
            *p = base.join(&*p);
        }
    }

    fn fields(&self) -> Option<&[String]> {
        self.fields.as_deref()
    }

    fn problems(&self) -> Vec<ConfigProblem> {
        let mut out = self.common().problems();
        if self
            .external_id_field
            .as_deref()
            .is_some_and(|f| !super::soql::is_identifier(f))
        {
            out.push(ConfigProblem {
                key: "external_id_field",
                message: "must be a field's API name, such as `Email__c` or `Id`".into(),
            });
        }
        if self.poll_interval_ms == 0 {
            out.push(ConfigProblem {
                key: "poll_interval_ms",
                message: "must be at least 1".into(),
            });
        }
        out
    }

    fn connection(&self) -> Option<Box<dyn crate::Connection + '_>> {
        connection(
            &self.refresh_token,
            &self.private_key,
            &self.client_secret,
            &self.login_url,
        )
    }

    fn keeps_rows(&self) -> bool {
        true
    }

    fn describe(&self, key: &str) -> Option<String> {
        Some(format!(
            "(Bulk API 2.0 upsert on `{}`)",
            self.external_id_field.as_deref().unwrap_or(key)
        ))
    }

    fn open(
        &self,
        ctx: &crate::SinkContext<'_>,
    ) -> Result<Box<dyn hushflow_core::Sink>, hushflow_core::Error> {
        let api = super::client::Salesforce::connect(&self.common(), ctx.connections)?;
        Ok(Box::new(super::SalesforceSink::new(api, self, ctx.key)))
    }

    /// A person's records, found with SOQL and deleted one by one.
    fn rows(
        &self,
        ctx: &crate::SinkContext<'_>,
    ) -> Result<Option<Box<dyn crate::SinkRows>>, hushflow_core::Error> {
        let api = super::client::Salesforce::connect(&self.common(), ctx.connections)?;
        Ok(Some(Box::new(crate::rows::ById(
            super::rows::SalesforceRows::new(api, &self.object),
        ))))
    }
}
