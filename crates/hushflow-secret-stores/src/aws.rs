//! `aws-sm:NAME#KEY`: a secret in AWS Secrets Manager, whole (`aws-sm:crm/token`) or one key
//! of a JSON secret (`aws-sm:crm#token`). `NAME` is a secret name or a full ARN.
//!
//! Requests are the service's JSON protocol (`POST /`, `X-Amz-Target:
//! secretsmanager.GetSecretValue`) signed with SigV4 by the `aws-sigv4` crate: no SDK, no async
//! runtime. [`AwsClient`] is that one signed JSON call, which KMS uses too.
//!
//! Configuration, read from the environment at each request (so rotated credentials are picked
//! up):
//! - Region: `AWS_REGION`, then `AWS_DEFAULT_REGION`; an ARN's own region wins.
//! - Credentials, the first that is set: `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and
//!   `AWS_SESSION_TOKEN`); web identity (IRSA on EKS): `AWS_WEB_IDENTITY_TOKEN_FILE` and
//!   `AWS_ROLE_ARN` (`AWS_ROLE_SESSION_NAME` optional), exchanged with STS
//!   `AssumeRoleWithWebIdentity` for temporary credentials ([`WebIdentity`]); the profile
//!   `AWS_PROFILE` (default `default`) of the shared credentials file
//!   `AWS_SHARED_CREDENTIALS_FILE` (default `~/.aws/credentials`).
//! - Endpoint: `AWS_ENDPOINT_URL_SECRETS_MANAGER`, then `AWS_ENDPOINT_URL`, otherwise the
//!   region's public endpoint; `AWS_CA_BUNDLE` replaces the built-in roots.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine as _;
use hushflow_secrets::{Redactor, SecretError, SecretProvider, SecretValue};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::cache::Cache;
use crate::env::Env;
use crate::http::{Client, DEFAULT_TIMEOUT};
use crate::{Reason, StoreError, wipe_json};

/// One AWS service's JSON API, signed: Secrets Manager, KMS.
#[derive(Clone, Debug)]
pub struct AwsClient {
    /// The signing name and endpoint prefix (`secretsmanager`, `kms`).
    service: &'static str,
    /// The `X-Amz-Target` prefix (`secretsmanager`, `TrentService`).
    target: &'static str,
    /// The variable that overrides this service's endpoint (`AWS_ENDPOINT_URL_SECRETS_MANAGER`).
    endpoint_env: &'static str,
    /// Where settings are read.
    env: Env,
    /// Temporary credentials from web identity, shared by the clients of one provider.
    web_identity: Arc<WebIdentity>,
}

/// Credentials: from the environment, a profile of the shared credentials file, or STS.
#[derive(Clone)]
struct Keys {
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
    session_token: Option<Zeroizing<String>>,
}

impl AwsClient {
    /// Secrets Manager, configured from `env`.
    pub fn secrets_manager(env: Env) -> AwsClient {
        AwsClient {
            service: "secretsmanager",
            target: "secretsmanager",
            endpoint_env: "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            env,
            web_identity: Arc::default(),
        }
    }

    /// KMS, configured from `env`.
    pub fn kms(env: Env) -> AwsClient {
        AwsClient {
            service: "kms",
            target: "TrentService",
            endpoint_env: "AWS_ENDPOINT_URL_KMS",
            env,
            web_identity: Arc::default(),
        }
    }

    /// This client, sharing `web_identity`'s temporary credentials (so that the clients of one
    /// process ask STS once per session, not once per request).
    pub fn with_web_identity(mut self, web_identity: Arc<WebIdentity>) -> AwsClient {
        self.web_identity = web_identity;
        self
    }

    /// Calls `action` with the JSON `body` in `region` (or the configured one) and returns the
    /// answer. Errors name the service's error code (`AccessDeniedException`), never its message.
    pub fn call(
        &self,
        action: &str,
        region: Option<&str>,
        body: &Value,
    ) -> Result<Value, StoreError> {
        let region = match region {
            Some(r) => r.to_string(),
            None => configured_region(&self.env)?,
        };
        let var = |name: &str| self.env.get(name);
        let (endpoint, what) = match var(self.endpoint_env).or_else(|| var("AWS_ENDPOINT_URL")) {
            Some(url) => (url, "the AWS endpoint URL"),
            None => (
                format!("https://{}.{region}.amazonaws.com", self.service),
                "the AWS endpoint",
            ),
        };
        let ca = var("AWS_CA_BUNDLE").map(PathBuf::from);
        let client = Client::new(what, &endpoint, ca.as_deref(), DEFAULT_TIMEOUT)?;
        let keys = credentials(&self.env, &self.web_identity)?;
        let body = Zeroizing::new(body.to_string().into_bytes());
        let target = format!("{}.{action}", self.target);
        let content_type = "application/x-amz-json-1.1";
        let url = client.url("/");
        let unsigned = [
            ("content-type", content_type),
            ("x-amz-target", target.as_str()),
        ];

        let identity = Credentials::new(
            keys.access_key_id.clone(),
            keys.secret_access_key.as_str(),
            keys.session_token.as_ref().map(|t| t.to_string()),
            None,
            "hushflow",
        )
        .into();
        let signing_error = |_| {
            StoreError::new(
                Reason::NotConfigured,
                format!(
                    "cannot sign the {} request (check the region and endpoint)",
                    self.service
                ),
            )
        };
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&region)
            .name(self.service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|_| {
                StoreError::new(Reason::NotConfigured, "incomplete AWS signing parameters")
            })?
            .into();
        let signable = SignableRequest::new(
            "POST",
            url.as_str(),
            unsigned.iter().copied(),
            SignableBody::Bytes(&body),
        )
        .map_err(signing_error)?;
        let (instructions, _) = sign(signable, &params).map_err(signing_error)?.into_parts();
        let mut headers: Vec<(&str, &str)> = unsigned.to_vec();
        headers.extend(instructions.headers());
        let response = client.send("POST", "/", &headers, Some(&body))?;
        let json: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        if response.status == 200 {
            return Ok(json);
        }
        let xml_code = (!json.is_object())
            .then(|| xml_error_code(&response.body))
            .flatten();
        let json = match xml_code {
            Some(code) => serde_json::json!({ "__type": code }),
            None => json,
        };
        Err(aws_error(self.service, response.status, &json))
    }
}

/// The `<Code>` of an XML error (the signature and IAM checks answer in XML whatever the
/// service's protocol).
fn xml_error_code(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let end = text[start..].find("</Code>")? + start;
    Some(text[start..end].to_string())
}

/// The error for a failed call, from the status and the error code in `__type` (only a code
/// made of letters, digits and dots is shown: it is the one part of the answer quoted).
fn aws_error(service: &str, status: u16, json: &Value) -> StoreError {
    let code = json["__type"]
        .as_str()
        .map(|t| t.rsplit('#').next().unwrap_or(t))
        .filter(|c| c.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'))
        .unwrap_or("");
    let (reason, what) = match code {
        "ResourceNotFoundException" | "NotFoundException" => {
            (Reason::NotFound, "no such secret or key")
        }
        "AccessDeniedException"
        | "AccessDenied"
        | "DecryptionFailure"
        | "KMSAccessDeniedException" => {
            (Reason::PermissionDenied, "the credentials may not do this")
        }
        "InvalidIdentityToken" => (
            Reason::ExpiredToken,
            "the web identity token was refused (expired, or not trusted by the role)",
        ),
        "IDPRejectedClaim" => (
            Reason::PermissionDenied,
            "the role does not trust this web identity",
        ),
        "ExpiredTokenException" | "ExpiredToken" => {
            (Reason::ExpiredToken, "the session token has expired")
        }
        "UnrecognizedClientException" | "InvalidClientTokenId" => (
            Reason::ExpiredToken,
            "the access key is unknown, expired or revoked",
        ),
        "InvalidSignatureException" | "SignatureDoesNotMatch" | "IncompleteSignature" => (
            Reason::ExpiredToken,
            "the request signature was refused (wrong secret access key, or a clock far off)",
        ),
        "InvalidRequestException" => (
            Reason::NotFound,
            "the request is not possible now (a secret marked for deletion, a disabled key)",
        ),
        "InvalidCiphertextException" | "IncorrectKeyException" => (
            Reason::PermissionDenied,
            "the ciphertext does not belong to this key or was altered",
        ),
        "ThrottlingException" | "Throttling" | "RequestLimitExceeded" => {
            (Reason::Unreachable, "the service is throttling requests")
        }
        _ if status == 403 => (Reason::PermissionDenied, "the credentials may not do this"),
        _ if status >= 500 => (Reason::Unreachable, "the service failed"),
        _ => (Reason::BadResponse, "the request was refused"),
    };
    let code = if code.is_empty() {
        String::new()
    } else {
        format!(", {code}")
    };
    StoreError::new(reason, format!("{service}: {what} (HTTP {status}{code})"))
}

fn configured_region(env: &Env) -> Result<String, StoreError> {
    let var = |name: &str| env.get(name);
    var("AWS_REGION")
        .or_else(|| var("AWS_DEFAULT_REGION"))
        .ok_or_else(|| {
            StoreError::new(
                Reason::NotConfigured,
                "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or name the secret by ARN",
            )
        })
}

fn credentials(env: &Env, web_identity: &WebIdentity) -> Result<Keys, StoreError> {
    let var = |name: &str| env.get(name);
    if let (Some(id), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        return Ok(Keys {
            access_key_id: id,
            secret_access_key: Zeroizing::new(secret),
            session_token: var("AWS_SESSION_TOKEN").map(Zeroizing::new),
        });
    }
    if let (Some(token_file), Some(role_arn)) =
        (var("AWS_WEB_IDENTITY_TOKEN_FILE"), var("AWS_ROLE_ARN"))
    {
        return web_identity.keys(env, &token_file, &role_arn);
    }
    let path = match var("AWS_SHARED_CREDENTIALS_FILE") {
        Some(p) => PathBuf::from(p),
        None => match env.home() {
            Some(home) => home.join(".aws").join("credentials"),
            None => return Err(no_credentials()),
        },
    };
    let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".to_string());
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => Zeroizing::new(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(no_credentials()),
        Err(e) => {
            return Err(StoreError::new(
                Reason::NotConfigured,
                format!("cannot read AWS credentials file {}: {e}", path.display()),
            ));
        }
    };
    profile_keys(&text, &profile).ok_or_else(|| {
        StoreError::new(
            Reason::NotConfigured,
            format!(
                "profile {profile} in {} has no aws_access_key_id and aws_secret_access_key",
                path.display()
            ),
        )
    })
}

/// Temporary credentials from a web identity token (IRSA: the token file EKS mounts in a pod
/// and the role it may assume), fetched from STS `AssumeRoleWithWebIdentity` and kept until
/// shortly before they expire, then fetched again with the token file read anew (it is
/// rotated too).
///
/// The request is an unsigned form POST (the token is the credential); the answer is XML, of
/// which the three credential elements are read. The STS endpoint is `AWS_ENDPOINT_URL_STS`,
/// then `AWS_ENDPOINT_URL`, otherwise the region's (`https://sts.REGION.amazonaws.com`, or the
/// global `https://sts.amazonaws.com` without a region). Sessions last
/// `HUSHFLOW_AWS_ROLE_SESSION_SECONDS` (default 3600) and are renewed when a quarter of that,
/// at most five minutes, is left.
#[derive(Default)]
pub struct WebIdentity {
    /// The credentials, when to fetch new ones, and for which role, token file and endpoint.
    cached: Mutex<Option<(String, Instant, Keys)>>,
    fetches: AtomicU64,
    /// Masks the web identity token and the temporary credentials, once fetched.
    redactor: Mutex<Option<Redactor>>,
}

impl std::fmt::Debug for WebIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebIdentity")
            .field("fetches", &self.fetches())
            .finish_non_exhaustive()
    }
}

/// The session length asked of STS when `HUSHFLOW_AWS_ROLE_SESSION_SECONDS` is not set.
const DEFAULT_SESSION: Duration = Duration::from_secs(3600);

/// Temporary credentials are fetched again this long (at most a quarter of the session)
/// before they expire.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// The largest web identity token file read (they are a few kilobytes).
const MAX_TOKEN_LEN: u64 = 64 * 1024;

impl WebIdentity {
    /// Registers the web identity token and the temporary credentials, when fetched, with
    /// `redactor`.
    pub fn set_redactor(&self, redactor: &Redactor) {
        if let Ok(mut r) = self.redactor.lock() {
            *r = Some(redactor.clone());
        }
    }

    /// How many times credentials were fetched from STS (for tests and metrics).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn keys(&self, env: &Env, token_file: &str, role_arn: &str) -> Result<Keys, StoreError> {
        let var = |name: &str| env.get(name);
        let (endpoint, what) = match var("AWS_ENDPOINT_URL_STS").or_else(|| var("AWS_ENDPOINT_URL"))
        {
            Some(url) => (url, "the STS endpoint URL"),
            None => match configured_region(env) {
                Ok(region) => (format!("https://sts.{region}.amazonaws.com"), "STS"),
                Err(_) => ("https://sts.amazonaws.com".to_string(), "STS"),
            },
        };
        let key = format!("{role_arn}\n{token_file}\n{endpoint}");
        let mut cached = self
            .cached
            .lock()
            .map_err(|_| StoreError::new(Reason::BadResponse, "internal lock poisoned"))?;
        if let Some((k, refresh_at, keys)) = cached.as_ref()
            && *k == key
            && Instant::now() < *refresh_at
        {
            return Ok(keys.clone());
        }
        let session = match var("HUSHFLOW_AWS_ROLE_SESSION_SECONDS") {
            None => DEFAULT_SESSION,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|s| *s > 0)
                .map(Duration::from_secs)
                .ok_or_else(|| {
                    StoreError::new(
                        Reason::NotConfigured,
                        "HUSHFLOW_AWS_ROLE_SESSION_SECONDS is not a whole number of seconds",
                    )
                })?,
        };
        let asked = Instant::now();
        let redactor = self
            .redactor
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .unwrap_or_default();
        let keys = assume_role_with_web_identity(
            env, &endpoint, what, token_file, role_arn, session, &redactor,
        )?;
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let refresh_at = asked + session - REFRESH_MARGIN.min(session / 4);
        *cached = Some((key, refresh_at, keys.clone()));
        tracing::debug!(role = %role_arn, "assumed the role with the web identity token");
        Ok(keys)
    }
}

/// STS `AssumeRoleWithWebIdentity`: the token in `token_file` for credentials of `role_arn`.
fn assume_role_with_web_identity(
    env: &Env,
    endpoint: &str,
    what: &str,
    token_file: &str,
    role_arn: &str,
    session: Duration,
    redactor: &Redactor,
) -> Result<Keys, StoreError> {
    use std::io::Read as _;
    let cannot = |e: std::io::Error| {
        StoreError::new(
            Reason::NotConfigured,
            format!(
                "cannot read the web identity token {token_file} (AWS_WEB_IDENTITY_TOKEN_FILE): {e}"
            ),
        )
    };
    let mut token = Zeroizing::new(Vec::new());
    std::fs::File::open(token_file)
        .map_err(cannot)?
        .take(MAX_TOKEN_LEN)
        .read_to_end(&mut token)
        .map_err(cannot)?;
    let token = Zeroizing::new(String::from_utf8_lossy(&token).trim().to_string());
    if token.is_empty() {
        return Err(StoreError::new(
            Reason::NotConfigured,
            format!("the web identity token {token_file} is empty"),
        ));
    }
    redactor.register(&SecretValue::new(token.as_bytes().to_vec()));
    let session_name = env.get("AWS_ROLE_SESSION_NAME").unwrap_or_else(|| {
        let secs = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        format!("hushflow-{secs}")
    });
    let body = Zeroizing::new(format!(
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn={}&RoleSessionName={}\
         &DurationSeconds={}&WebIdentityToken={}",
        form_encode(role_arn),
        form_encode(&session_name),
        session.as_secs(),
        form_encode(&token),
    ));
    let ca = env.get("AWS_CA_BUNDLE").map(PathBuf::from);
    let client = Client::new(what, endpoint, ca.as_deref(), DEFAULT_TIMEOUT)?;
    let response = client.send(
        "POST",
        "/",
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(body.as_bytes()),
    )?;
    if response.status != 200 {
        let code = xml_error_code(&response.body);
        let json = serde_json::json!({ "__type": code });
        return Err(aws_error("sts", response.status, &json));
    }
    let text = std::str::from_utf8(&response.body).unwrap_or("");
    let field = |tag: &str| xml_text(text, tag).map(xml_unescape);
    match (
        field("AccessKeyId"),
        field("SecretAccessKey"),
        field("SessionToken"),
    ) {
        (Some(id), Some(secret), Some(session_token)) => {
            for credential in [&secret, &session_token] {
                redactor.register(&SecretValue::new(credential.as_bytes().to_vec()));
            }
            Ok(Keys {
                access_key_id: id,
                secret_access_key: Zeroizing::new(secret),
                session_token: Some(Zeroizing::new(session_token)),
            })
        }
        _ => Err(StoreError::new(
            Reason::BadResponse,
            "sts: AssumeRoleWithWebIdentity answered without credentials",
        )),
    }
}

/// The text of the first `<tag>…</tag>` in `xml` (the STS answer has no attributes on these).
fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(&xml[start..end])
}

/// The five predefined XML entities, decoded.
fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// `application/x-www-form-urlencoded` value encoding (RFC 3986 unreserved kept).
fn form_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn no_credentials() -> StoreError {
    StoreError::new(
        Reason::NotConfigured,
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
         AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, or a profile in the shared credentials \
         file (AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE)",
    )
}

/// The keys of `[profile]` in a shared credentials file (INI: `key = value`, `#`/`;` comments).
fn profile_keys(text: &str, profile: &str) -> Option<Keys> {
    let mut in_profile = false;
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let section = section.trim();
            let section = section.strip_prefix("profile ").unwrap_or(section).trim();
            in_profile = section == profile;
            continue;
        }
        if !in_profile {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let value = value.trim().to_string();
            match key.trim().to_ascii_lowercase().as_str() {
                "aws_access_key_id" => id = Some(value),
                "aws_secret_access_key" => secret = Some(Zeroizing::new(value)),
                "aws_session_token" => token = Some(Zeroizing::new(value)),
                _ => {}
            }
        }
    }
    Some(Keys {
        access_key_id: id.filter(|i| !i.is_empty())?,
        secret_access_key: secret.filter(|s| !s.is_empty())?,
        session_token: token.filter(|t| !t.is_empty()),
    })
}

/// The `aws-sm:` provider. Clones share one cache.
#[derive(Clone, Debug, Default)]
pub struct SecretsManagerProvider {
    env: Env,
    cache: Arc<Cache>,
    web_identity: Arc<WebIdentity>,
}

impl SecretsManagerProvider {
    /// A provider configured from the environment at each request.
    pub fn from_env() -> SecretsManagerProvider {
        SecretsManagerProvider::default()
    }

    /// A provider configured from `env`, with the cache's time to live from the process
    /// environment.
    pub fn with_settings(env: Env) -> SecretsManagerProvider {
        SecretsManagerProvider {
            env,
            cache: Arc::default(),
            web_identity: Arc::default(),
        }
    }

    /// A provider configured from `env`, whose cache keeps secrets for `ttl`.
    pub fn with_env(env: Env, ttl: Duration) -> SecretsManagerProvider {
        SecretsManagerProvider {
            env,
            cache: Arc::new(Cache::new(ttl)),
            web_identity: Arc::default(),
        }
    }

    /// The temporary credentials this provider's clients share (KMS uses them too).
    pub fn web_identity(&self) -> Arc<WebIdentity> {
        self.web_identity.clone()
    }

    /// The whole secret `id` (its string, or its binary value decoded).
    pub(crate) fn whole(&self, id: &str) -> Result<SecretValue, StoreError> {
        if let Some(Some(v)) = self.cache.field(id, "") {
            return Ok(v);
        }
        let region = id
            .strip_prefix("arn:")
            .and_then(|arn| arn.split(':').nth(2))
            .filter(|r| !r.is_empty());
        let mut json = AwsClient::secrets_manager(self.env.clone())
            .with_web_identity(self.web_identity.clone())
            .call(
                "GetSecretValue",
                region,
                &serde_json::json!({ "SecretId": id }),
            )?;
        let value = if let Some(s) = json["SecretString"].as_str() {
            Some(SecretValue::new(s.as_bytes().to_vec()))
        } else if let Some(b) = json["SecretBinary"].as_str() {
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .ok()
                .map(SecretValue::new)
        } else {
            None
        };
        wipe_json(&mut json);
        let value = value.ok_or_else(|| {
            StoreError::new(
                Reason::BadResponse,
                "secretsmanager answered without SecretString or a valid SecretBinary",
            )
        })?;
        self.cache.insert(
            id,
            vec![(String::new(), SecretValue::new(value.expose().to_vec()))],
        );
        Ok(value)
    }

    fn get(&self, id: &str, key: Option<&str>) -> Result<SecretValue, StoreError> {
        let whole = self.whole(id)?;
        let Some(key) = key else {
            return Ok(whole);
        };
        let not_json = || {
            StoreError::new(
                Reason::NotFound,
                format!("the secret is not a JSON object, so it has no key {key}"),
            )
        };
        let mut json: Value = serde_json::from_slice(whole.expose()).map_err(|_| not_json())?;
        if !json.is_object() {
            wipe_json(&mut json);
            return Err(not_json());
        }
        let value = match &json[key] {
            Value::Null => None,
            Value::String(s) => Some(s.as_bytes().to_vec()),
            other => Some(other.to_string().into_bytes()),
        };
        wipe_json(&mut json);
        value.map(SecretValue::new).ok_or_else(|| {
            StoreError::new(Reason::NotFound, format!("the secret has no key {key}"))
        })
    }
}

/// Splits `NAME#KEY` (`KEY` optional); the error does not repeat the name.
fn split(name: &str) -> Result<(&str, Option<&str>), StoreError> {
    let (id, key) = match name.rsplit_once('#') {
        Some((id, key)) => (id, Some(key)),
        None => (name, None),
    };
    let id_ok = !id.is_empty()
        && id.len() <= 2048
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-:".contains(c));
    let key_ok = key.is_none_or(|k| !k.is_empty() && !k.chars().any(|c| c.is_control()));
    if id_ok && key_ok {
        Ok((id, key))
    } else {
        Err(StoreError::new(
            Reason::BadReference,
            "write aws-sm:NAME or aws-sm:NAME#KEY, as in aws-sm:prod/crm#token (a secret name \
             or ARN from letters, digits and /_+=.@-:, and a key of its JSON)",
        ))
    }
}

impl SecretProvider for SecretsManagerProvider {
    fn scheme(&self) -> &'static str {
        "aws-sm"
    }

    fn usage(&self) -> &'static str {
        "aws-sm:NAME#KEY"
    }

    fn example(&self) -> &'static str {
        "aws-sm:prod/crm#token"
    }

    fn check(&self, name: &str) -> Result<(), SecretError> {
        split(name).map(|_| ()).map_err(|e| SecretError::Provider {
            scheme: "aws-sm",
            name: String::new(),
            source: Box::new(e),
        })
    }

    fn resolve(&self, name: &str) -> Result<SecretValue, SecretError> {
        let (id, key) = split(name).map_err(|e| SecretError::Provider {
            scheme: "aws-sm",
            name: String::new(),
            source: Box::new(e),
        })?;
        self.get(id, key).map_err(|e| SecretError::Provider {
            scheme: "aws-sm",
            name: name.to_string(),
            source: Box::new(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_without_being_repeated() {
        assert_eq!(
            split("prod/crm#token").unwrap(),
            ("prod/crm", Some("token"))
        );
        assert_eq!(split("prod/crm").unwrap(), ("prod/crm", None));
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:crm-AbCdEf";
        assert_eq!(split(&format!("{arn}#k")).unwrap(), (arn, Some("k")));
        for bad in ["#token", "prod/crm#", "prod crm", "prod/crm\n#x"] {
            let e = SecretsManagerProvider::default()
                .check(bad)
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("aws-sm:: malformed reference: write aws-sm:NAME"),
                "{e}"
            );
        }
    }

    #[test]
    fn profiles_are_read_from_the_credentials_file() {
        let text = "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s1\n\
                    # comment\n[profile ci]\naws_access_key_id=AKIDCI\naws_secret_access_key=s2\n\
                    aws_session_token = t2\n[empty]\naws_access_key_id = AKIDX\n";
        let d = profile_keys(text, "default").unwrap();
        assert_eq!(
            (d.access_key_id.as_str(), d.secret_access_key.as_str()),
            ("AKIDDEFAULT", "s1")
        );
        assert!(d.session_token.is_none());
        let ci = profile_keys(text, "ci").unwrap();
        assert_eq!(ci.access_key_id, "AKIDCI");
        assert_eq!(ci.session_token.as_deref().map(String::as_str), Some("t2"));
        assert!(profile_keys(text, "empty").is_none());
        assert!(profile_keys(text, "missing").is_none());
    }

    #[test]
    fn error_codes_become_reasons_without_the_message() {
        let e = aws_error(
            "secretsmanager",
            400,
            &serde_json::json!({"__type": "ResourceNotFoundException", "message": "canary-msg"}),
        );
        assert_eq!(e.reason, Reason::NotFound);
        assert!(!e.to_string().contains("canary-msg"), "{e}");
        let e = aws_error(
            "kms",
            400,
            &serde_json::json!({"__type": "com.amazon#AccessDeniedException"}),
        );
        assert_eq!(e.reason, Reason::PermissionDenied);
        assert!(e.to_string().contains("AccessDeniedException"), "{e}");
        let e = aws_error("kms", 400, &serde_json::json!({"__type": "x y <canary>"}));
        assert!(!e.to_string().contains("canary"), "{e}");
        assert_eq!(
            aws_error("kms", 503, &Value::Null).reason,
            Reason::Unreachable
        );
    }
}
