//! Salesforce's REST API as the source uses it: the token and the org's host, the `query`
//! resource and its `nextRecordsUrl` pages, the daily API allowance, and errors in words that
//! quote no value (Salesforce's messages can quote what they refuse, so only the status and
//! the `errorCode` are shown).

use super::config::{Common, version_ok};
use crate::http::{
    Body, ClientOptions, HttpClient, OAuthRefresh, RateLimiter, Response, TokenSource, Verdict,
};
use hushflow_core::Error;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A connected org.
pub(super) struct Salesforce {
    http: HttpClient,
    /// The configured host, when `instance_url` is set (else the token endpoint's).
    instance: Option<String>,
    version: String,
    /// Requests of the daily allowance left for others.
    reserve: u64,
    /// The last `Sforce-Limit-Info` seen: requests used, and the allowance.
    usage: Mutex<Option<(u64, u64)>>,
    /// The allowance (less the reserve) is used up.
    spent: AtomicBool,
}

/// A page of a query's answer.
#[derive(Debug, Deserialize)]
pub(super) struct QueryPage {
    #[serde(default)]
    pub records: Vec<Value>,
    #[serde(default)]
    pub done: bool,
    #[serde(default, rename = "nextRecordsUrl")]
    pub next_records_url: Option<String>,
}

/// A Bulk API 2.0 job's info (the fields the sink reads).
#[derive(Debug, Deserialize)]
pub(super) struct Job {
    pub id: String,
    pub state: String,
    #[serde(default, rename = "numberRecordsFailed")]
    pub failed: Option<u64>,
}

fn job_of(response: &Response, what: &str) -> Result<Job, Error> {
    serde_json::from_slice(&response.body).map_err(|_| {
        Error::Config(format!(
            "Salesforce: {what}: the answer is not the job info expected"
        ))
    })
}

impl Salesforce {
    /// A client for the org the config's credentials open; connects to nothing yet.
    pub(super) fn connect(
        config: &Common,
        connections: &crate::Connections,
    ) -> Result<Salesforce, Error> {
        let secret = |reference: &str| -> Result<hushflow_secrets::SecretValue, Error> {
            let value = connections.get(reference).ok_or_else(|| {
                Error::Config(format!("the connection {reference} was not resolved"))
            })?;
            Ok(hushflow_secrets::SecretValue::new(value.expose().to_vec()))
        };
        if !version_ok(&config.api_version) {
            return Err(Error::Config(
                "Salesforce: api_version must be a version number such as 62.0".into(),
            ));
        }
        let Some(client_id) = config.client_id.as_deref() else {
            return Err(Error::Config(
                "Salesforce: give `client_id` (the connected app's consumer key)".into(),
            ));
        };
        let grant = match (
            config.refresh_token.as_deref(),
            config.private_key.as_deref(),
            config.client_secret.as_deref(),
            config.username.as_deref(),
        ) {
            (Some(refresh), None, Some(client_secret), _) => OAuthRefresh::new(
                &config.token_url(),
                client_id,
                secret(client_secret)?,
                secret(refresh)?,
                connections.redactor().clone(),
            )
            .map(|grant| grant.saving_rotations(refresh, connections)),
            (None, Some(key), _, Some(username)) => {
                let pem = secret(key)?;
                let signer =
                    super::jwt::Signer::new(pem.expose(), client_id, username, &config.login_url)
                        .map_err(|e| Error::Config(format!("Salesforce: {e}")))?;
                drop(pem);
                OAuthRefresh::jwt_bearer(
                    &config.token_url(),
                    Box::new(move || signer.assertion()),
                    connections.redactor().clone(),
                )
            }
            _ => {
                return Err(Error::Config(
                    "Salesforce: give `refresh_token` with `client_secret`, or `private_key` \
                     with `username` (secrets by reference)"
                        .into(),
                ));
            }
        };
        let tokens =
            TokenSource::OAuth(grant.map_err(|e| Error::Config(format!("Salesforce: {e}")))?);
        let mut options = ClientOptions::new("Salesforce", &config.login_url);
        options.timeout = Duration::from_secs(config.timeout_secs.max(1));
        options.ca_file = config.ca_file.clone();
        let burst = config.requests_per_second.ceil().clamp(1.0, 1000.0) as u32;
        let http = HttpClient::new(options, Some(tokens))?.with_limiter(Arc::new(
            RateLimiter::new(config.requests_per_second, burst),
        ));
        let instance = match &config.instance_url {
            Some(url) => {
                crate::http::check_url("instance_url", url)
                    .map_err(|e| Error::Config(format!("Salesforce: {e}")))?;
                Some(url.trim().trim_end_matches('/').to_string())
            }
            None => None,
        };
        Ok(Salesforce {
            http,
            instance,
            version: config.api_version.clone(),
            reserve: config.api_reserve,
            usage: Mutex::new(None),
            spent: AtomicBool::new(false),
        })
    }

    /// The last `Sforce-Limit-Info` seen (requests used, allowance).
    pub(super) fn usage(&self) -> Option<(u64, u64)> {
        *self.usage.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The org's host: configured, or the one the token endpoint named.
    fn base(&self) -> Result<String, Error> {
        if let Some(url) = &self.instance {
            return Ok(url.clone());
        }
        let named = match self.http.tokens() {
            Some(t) => t.instance_url(&self.http)?,
            None => None,
        };
        let url = named.ok_or_else(|| {
            Error::Config(
                "Salesforce: the token endpoint named no instance_url; set `instance_url` to \
                 the org's host"
                    .into(),
            )
        })?;
        crate::http::check_url("instance_url", &url).map_err(|e| {
            Error::Config(format!(
                "Salesforce: the token endpoint's {e}; set `instance_url` to the org's host"
            ))
        })?;
        Ok(url.trim().trim_end_matches('/').to_string())
    }

    /// The first page of `soql`'s answer.
    pub(super) fn query(&self, soql: &str) -> Result<QueryPage, Error> {
        let q = percent_encoding::utf8_percent_encode(soql, percent_encoding::NON_ALPHANUMERIC);
        let path = format!("/services/data/v{}/query?q={q}", self.version);
        self.page(&path, "querying records")
    }

    /// The page at a `nextRecordsUrl` (a path on the org's host).
    pub(super) fn query_more(&self, next: &str) -> Result<QueryPage, Error> {
        // The path came from the server: only a query locator under the REST API is followed,
        // so a token is never sent to another host or resource.
        let safe = next.starts_with("/services/data/v")
            && !next.contains("..")
            && next
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'-' | b'_'));
        if !safe {
            return Err(Error::Config(
                "Salesforce: querying records: the answer's nextRecordsUrl is not a query \
                 locator path"
                    .into(),
            ));
        }
        self.page(next, "reading the next page of records")
    }

    /// Creates a Bulk API 2.0 ingest job upserting `object` on `external_id`: its id.
    pub(super) fn create_ingest_job(
        &self,
        object: &str,
        external_id: &str,
    ) -> Result<String, Error> {
        let what = "creating a Bulk API ingest job";
        let body = serde_json::to_vec(&serde_json::json!({
            "object": object,
            "externalIdFieldName": external_id,
            "contentType": "CSV",
            "operation": "upsert",
            "lineEnding": "LF",
        }))
        .map_err(|_| Error::Config(format!("Salesforce: {what}: could not encode it")))?;
        let path = format!("/services/data/v{}/jobs/ingest", self.version);
        let response = self.call("POST", &path, Body::Json(&body), what)?;
        job_of(&response, what).map(|job| job.id)
    }

    /// Creates a Bulk API 2.0 query job for `soql`: its id.
    pub(super) fn create_query_job(&self, soql: &str) -> Result<String, Error> {
        let what = "creating a Bulk API query job";
        let body = serde_json::to_vec(&serde_json::json!({
            "operation": "query",
            "query": soql,
            "contentType": "CSV",
            "lineEnding": "LF",
        }))
        .map_err(|_| Error::Config(format!("Salesforce: {what}: could not encode it")))?;
        let path = format!("/services/data/v{}/jobs/query", self.version);
        let response = self.call("POST", &path, Body::Json(&body), what)?;
        job_of(&response, what).map(|job| job.id)
    }

    /// A query job's state.
    pub(super) fn query_job(&self, job: &str) -> Result<Job, Error> {
        let what = "reading a Bulk API query job's state";
        let path = self.job_path_of("query", job)?;
        let response = self.call("GET", &path, Body::None, what)?;
        job_of(&response, what)
    }

    /// A page of a query job's CSV results, and the locator of the next page (`None` after
    /// the last).
    pub(super) fn query_results(
        &self,
        job: &str,
        locator: Option<&str>,
    ) -> Result<(Response, Option<String>), Error> {
        let what = "reading a Bulk API query job's results";
        let mut path = format!("{}/results", self.job_path_of("query", job)?);
        if let Some(l) = locator {
            path.push_str("?locator=");
            path.extend(percent_encoding::utf8_percent_encode(
                l,
                percent_encoding::NON_ALPHANUMERIC,
            ));
        }
        let response = self.call_csv("GET", &path, what)?;
        let next = match response.header("sforce-locator").map(str::trim) {
            None | Some("") | Some("null") => None,
            Some(l)
                if l.len() <= 200
                    && l.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+/=_-".contains(&b)) =>
            {
                Some(l.to_string())
            }
            Some(_) => {
                return Err(Error::Config(format!(
                    "Salesforce: {what}: the Sforce-Locator header is not a locator"
                )));
            }
        };
        Ok((response, next))
    }

    /// Uploads a job's CSV (one upload a job).
    pub(super) fn upload(&self, job: &str, csv: &[u8]) -> Result<(), Error> {
        let path = format!("{}/batches", self.job_path(job)?);
        self.call(
            "PUT",
            &path,
            Body::Csv(csv),
            "uploading a Bulk API job's records",
        )?;
        Ok(())
    }

    /// Marks the upload complete: Salesforce starts processing the job.
    pub(super) fn close(&self, job: &str) -> Result<(), Error> {
        let path = self.job_path(job)?;
        self.call(
            "PATCH",
            &path,
            Body::Json(br#"{"state":"UploadComplete"}"#),
            "closing a Bulk API job",
        )?;
        Ok(())
    }

    /// Deletes one record (`DELETE …/sobjects/OBJECT/ID`); it goes to the Recycle Bin.
    pub(super) fn delete_record(&self, object: &str, id: &str) -> Result<(), Error> {
        if !super::soql::is_identifier(object) || !super::soql::is_record_id(id) {
            return Err(Error::Config(
                "Salesforce: deleting a record: the object or the record id is malformed".into(),
            ));
        }
        let path = format!("/services/data/v{}/sobjects/{object}/{id}", self.version);
        self.call("DELETE", &path, Body::None, "deleting a record")?;
        Ok(())
    }

    /// A job's state.
    pub(super) fn job(&self, job: &str) -> Result<Job, Error> {
        let what = "reading a Bulk API job's state";
        let response = self.call("GET", &self.job_path(job)?, Body::None, what)?;
        job_of(&response, what)
    }

    /// A job's failed rows: CSV with `sf__Id`, `sf__Error` and the columns sent.
    pub(super) fn failed_results(&self, job: &str) -> Result<Response, Error> {
        let path = format!("{}/failedResults", self.job_path(job)?);
        self.call_csv("GET", &path, "reading a Bulk API job's failed rows")
    }

    fn job_path(&self, job: &str) -> Result<String, Error> {
        self.job_path_of("ingest", job)
    }

    fn job_path_of(&self, kind: &str, job: &str) -> Result<String, Error> {
        if !super::soql::is_record_id(job) {
            return Err(Error::Config(
                "Salesforce: the Bulk API answered with a job id that is not a Salesforce id"
                    .into(),
            ));
        }
        Ok(format!(
            "/services/data/v{}/jobs/{kind}/{job}",
            self.version
        ))
    }

    fn call_csv(&self, method: &str, path: &str, what: &str) -> Result<Response, Error> {
        if self.spent.load(Ordering::Relaxed) {
            return Err(Error::Config(self.limit_message()));
        }
        let url = format!("{}{path}", self.base()?);
        let response = self
            .http
            .send_to_for_csv(method, &url, Body::None, what, &|r| self.classify(r))?;
        if response.ok() {
            Ok(response)
        } else {
            Err(refused(&response, what))
        }
    }

    fn page(&self, path: &str, what: &str) -> Result<QueryPage, Error> {
        let response = self.call("GET", path, Body::None, what)?;
        serde_json::from_slice(&response.body).map_err(|_| {
            Error::Config(format!(
                "Salesforce: {what}: the answer is not the JSON page expected"
            ))
        })
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        body: Body<'_>,
        what: &str,
    ) -> Result<Response, Error> {
        if self.spent.load(Ordering::Relaxed) {
            return Err(Error::Config(self.limit_message()));
        }
        let url = format!("{}{path}", self.base()?);
        let response = self
            .http
            .send_to(method, &url, body, what, &|r| self.classify(r))?;
        if response.ok() {
            Ok(response)
        } else {
            Err(refused(&response, what))
        }
    }

    fn limit_message(&self) -> String {
        let used = self
            .usage()
            .map(|(used, max)| format!(" ({used} of {max} used)"))
            .unwrap_or_default();
        format!(
            "Salesforce: the org's daily API allowance is nearly used up{used}, and \
             api_reserve keeps {} requests for others; the run stopped and the position of what \
             was read is kept: run it again when the 24-hour window frees requests, or lower \
             api_reserve",
            self.reserve
        )
    }

    /// Reads `Sforce-Limit-Info` and decides about refusals: the allowance used up stops the
    /// run (retrying cannot help for hours); the rest is the client's default.
    fn classify(&self, response: &Response) -> Verdict {
        if let Some((used, max)) = response.header("sforce-limit-info").and_then(api_usage) {
            *self.usage.lock().unwrap_or_else(|e| e.into_inner()) = Some((used, max));
            if used.saturating_add(self.reserve) >= max {
                self.spent.store(true, Ordering::Relaxed);
            }
        }
        if response.status == 403
            && error_code(&response.body).as_deref() == Some("REQUEST_LIMIT_EXCEEDED")
        {
            self.spent.store(true, Ordering::Relaxed);
            return Verdict::Stop(self.limit_message());
        }
        Verdict::Default
    }
}

/// `api-usage=N/M` from a `Sforce-Limit-Info` header (which may list other usages too).
pub(super) fn api_usage(header: &str) -> Option<(u64, u64)> {
    header.split(',').find_map(|part| {
        let (used, max) = part.trim().strip_prefix("api-usage=")?.split_once('/')?;
        Some((used.trim().parse().ok()?, max.trim().parse().ok()?))
    })
}

/// The first `errorCode` of Salesforce's error list, when it is one fixed word.
pub(super) fn error_code(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let first = v.as_array().and_then(|a| a.first()).unwrap_or(&v);
    word(first.get("errorCode")?)
}

/// A value that is one upper-case word (`INVALID_FIELD`), so safe to show.
pub(super) fn word(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    (!s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
    .then(|| s.to_string())
}

/// An error for a refused request: the status and the `errorCode`, never the message.
pub(super) fn refused(response: &Response, what: &str) -> Error {
    let code = error_code(&response.body);
    let hint = match (response.status, code.as_deref()) {
        (_, Some("INVALID_FIELD")) => {
            "; a field the policy reads does not exist on the object (or the user cannot see \
             it): check the field names against the object's API names"
        }
        (_, Some("INVALID_TYPE")) => "; check `object` (an sObject's API name)",
        (401, _) => {
            "; the access token was refused after a refresh: check the connected app and the \
             user's access"
        }
        (403, _) => "; the user lacks API access or a permission on the object",
        (404, _) => "; check instance_url and api_version",
        _ => "",
    };
    Error::Config(format!(
        "Salesforce: {what}: answered {}{}{hint}",
        response.status,
        code.map(|c| format!(" ({c})")).unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_header_and_error_codes_are_read() {
        assert_eq!(api_usage("api-usage=18/5000"), Some((18, 5000)));
        assert_eq!(
            api_usage("per-app-api-usage=2/250(appName=x), api-usage=25/5000"),
            Some((25, 5000))
        );
        assert_eq!(api_usage("api-usage=x/5000"), None);
        assert_eq!(
            error_code(
                br#"[{"message":"No such column 'secret@x.com'","errorCode":"INVALID_FIELD"}]"#
            ),
            Some("INVALID_FIELD".into())
        );
        assert_eq!(error_code(br#"[{"errorCode":"bad value"}]"#), None);
    }
}
