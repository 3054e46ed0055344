//! `vault:MOUNT/PATH#FIELD`: a field of a secret in HashiCorp Vault or OpenBao's key/value
//! engine, version 2 or 1.
//!
//! The path is the one the Vault CLI takes: `vault:secret/crm#token` and
//! `vault:secret/data/crm#token` both name field `token` of secret `crm` on the KV v2 mount
//! `secret/`. The mount's version comes from `sys/internal/ui/mounts/PATH` (as `vault kv get`
//! does it), or from `HUSHFLOW_VAULT_KV_VERSION` (`1` or `2`) where the token may not read that.
//!
//! Configuration, read from the environment on first use:
//! - `VAULT_ADDR` (required), `VAULT_NAMESPACE`, `VAULT_CACERT` (a PEM file replacing the
//!   built-in roots), `VAULT_CLIENT_TIMEOUT` (seconds, default 10).
//! - Authentication, the first that is set: AppRole with `HUSHFLOW_VAULT_ROLE_ID` and
//!   `HUSHFLOW_VAULT_SECRET_ID` (both secret references, as `env:NAME` or `file:PATH`; mount
//!   `HUSHFLOW_VAULT_APPROLE_MOUNT`, default `approle`); Kubernetes service-account login with
//!   `HUSHFLOW_VAULT_KUBERNETES_ROLE` (mount `HUSHFLOW_VAULT_KUBERNETES_MOUNT`, default
//!   `kubernetes`; the token from `HUSHFLOW_VAULT_KUBERNETES_TOKEN_FILE`, default the pod's
//!   `/var/run/secrets/kubernetes.io/serviceaccount/token`, read at each login); a token from
//!   the reference in `HUSHFLOW_VAULT_TOKEN` (`file:/run/secrets/vault-token`); `VAULT_TOKEN`;
//!   the CLI's `~/.vault-token`.
//!
//! A renewable token (from a login, or given, whose lease `auth/token/lookup-self` reports) is
//! renewed with `auth/token/renew-self` halfway through its lease. When a renewal fails or no
//! longer extends the lease (the token's maximum time to live is near), a provider that can log
//! in (AppRole, Kubernetes, a token file) logs in again; a given token is used until it ends. A
//! request refused with 403 also logs in again once, since a token can be revoked or expire
//! early. A refused request is then told apart: when the token itself no longer looks itself
//! up, the error says the token is expired or revoked; otherwise that the token's policies deny
//! the path.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hushflow_secrets::{
    Redactor, SecretError, SecretProvider, SecretProviders, SecretRef, SecretResolver, SecretValue,
};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::cache::{Cache, Fields};
use crate::env::Env;
use crate::http::{Client, DEFAULT_TIMEOUT, Response};
use crate::{Reason, StoreError, wipe_json};

/// How the provider logs in.
#[derive(Debug)]
pub enum VaultAuth {
    /// A token, as given.
    Token(SecretValue),
    /// A token read from a reference (`file:/run/secrets/vault-token`) at each login, so a
    /// token that an agent rewrites is picked up.
    TokenRef(SecretRef),
    /// Kubernetes service-account login (`auth/MOUNT/login` with the role and the pod's
    /// service-account token, read from `token_file` at each login: the kubelet rotates it).
    Kubernetes {
        /// The auth mount, without slashes (`kubernetes`).
        mount: String,
        /// The Vault role the service account is bound to.
        role: String,
        /// The service-account token (a JWT) file.
        token_file: PathBuf,
    },
    /// AppRole: `role_id` and `secret_id` are references, resolved at each login.
    AppRole {
        /// The auth mount, without slashes (`approle`).
        mount: String,
        /// The role id's reference.
        role_id: SecretRef,
        /// The secret id's reference.
        secret_id: SecretRef,
    },
}

/// Where the Vault is and how to log in.
#[derive(Debug)]
pub struct VaultConfig {
    /// `https://vault.example:8200` (plain `http://` only to loopback).
    pub addr: String,
    /// The Enterprise / OpenBao namespace, sent as `X-Vault-Namespace`.
    pub namespace: Option<String>,
    /// A PEM file of CA certificates that replaces the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// The timeout of each request.
    pub timeout: Duration,
    /// How to log in.
    pub auth: VaultAuth,
    /// The KV version of every mount, instead of asking Vault per mount.
    pub kv_version: Option<u8>,
}

impl VaultConfig {
    /// The configuration from the process environment (see the module documentation).
    pub fn from_env() -> Result<VaultConfig, StoreError> {
        VaultConfig::from_settings(&Env::process())
    }

    /// The configuration from `env` (see the module documentation).
    pub fn from_settings(env: &Env) -> Result<VaultConfig, StoreError> {
        let var = |name: &str| env.get(name);
        let addr = var("VAULT_ADDR").ok_or_else(|| {
            StoreError::new(
                Reason::NotConfigured,
                "VAULT_ADDR is not set; set it to the Vault's address (https://vault.example:8200)",
            )
        })?;
        let timeout = match var("VAULT_CLIENT_TIMEOUT") {
            None => DEFAULT_TIMEOUT,
            Some(v) => Duration::from_secs(
                v.trim_end_matches('s')
                    .parse::<u64>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| {
                        StoreError::new(
                            Reason::NotConfigured,
                            "VAULT_CLIENT_TIMEOUT is not a whole number of seconds",
                        )
                    })?,
            ),
        };
        let kv_version = match var("HUSHFLOW_VAULT_KV_VERSION").as_deref() {
            None => None,
            Some("1") => Some(1),
            Some("2") => Some(2),
            Some(_) => {
                return Err(StoreError::new(
                    Reason::NotConfigured,
                    "HUSHFLOW_VAULT_KV_VERSION must be 1 or 2",
                ));
            }
        };
        let reference = |name: &str| -> Result<Option<SecretRef>, StoreError> {
            var(name)
                .map(|v| {
                    SecretProviders::builtin()
                        .parse(&v)
                        .map_err(|e| StoreError::new(Reason::NotConfigured, format!("{name}: {e}")))
                })
                .transpose()
        };
        let auth = match (
            reference("HUSHFLOW_VAULT_ROLE_ID")?,
            reference("HUSHFLOW_VAULT_SECRET_ID")?,
        ) {
            (Some(role_id), Some(secret_id)) => VaultAuth::AppRole {
                mount: var("HUSHFLOW_VAULT_APPROLE_MOUNT")
                    .unwrap_or_else(|| "approle".to_string())
                    .trim_matches('/')
                    .to_string(),
                role_id,
                secret_id,
            },
            (Some(_), None) | (None, Some(_)) => {
                return Err(StoreError::new(
                    Reason::NotConfigured,
                    "AppRole needs both HUSHFLOW_VAULT_ROLE_ID and HUSHFLOW_VAULT_SECRET_ID",
                ));
            }
            (None, None) => {
                if let Some(role) = var("HUSHFLOW_VAULT_KUBERNETES_ROLE") {
                    VaultAuth::Kubernetes {
                        mount: var("HUSHFLOW_VAULT_KUBERNETES_MOUNT")
                            .unwrap_or_else(|| "kubernetes".to_string())
                            .trim_matches('/')
                            .to_string(),
                        role,
                        token_file: var("HUSHFLOW_VAULT_KUBERNETES_TOKEN_FILE")
                            .map_or_else(|| PathBuf::from(KUBERNETES_TOKEN_FILE), PathBuf::from),
                    }
                } else if let Some(r) = reference("HUSHFLOW_VAULT_TOKEN")? {
                    VaultAuth::TokenRef(r)
                } else if let Some(token) = var("VAULT_TOKEN") {
                    VaultAuth::Token(SecretValue::new(token.into_bytes()))
                } else if let Some(home) = env.home() {
                    let path = home.join(".vault-token");
                    if !path.exists() {
                        return Err(no_auth());
                    }
                    VaultAuth::TokenRef(SecretRef::file(path))
                } else {
                    return Err(no_auth());
                }
            }
        };
        Ok(VaultConfig {
            addr,
            namespace: var("VAULT_NAMESPACE"),
            ca_file: var("VAULT_CACERT").map(PathBuf::from),
            timeout,
            auth,
            kv_version,
        })
    }
}

/// Where Kubernetes mounts a pod's service-account token.
pub const KUBERNETES_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// The largest service-account token file read (they are a few kilobytes).
const MAX_JWT_LEN: u64 = 64 * 1024;

fn no_auth() -> StoreError {
    StoreError::new(
        Reason::NotConfigured,
        "no Vault credentials: set VAULT_TOKEN, HUSHFLOW_VAULT_TOKEN (a reference such as \
         file:/run/secrets/vault-token), HUSHFLOW_VAULT_ROLE_ID and HUSHFLOW_VAULT_SECRET_ID, \
         or HUSHFLOW_VAULT_KUBERNETES_ROLE",
    )
}

/// The `vault:` provider. Clones share one login, one cache and one table of mounts.
#[derive(Clone, Default)]
pub struct VaultProvider {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Where the configuration is read from on first use.
    env: Env,
    /// The configuration, once read (or as given).
    preset: Mutex<Option<Arc<VaultConfig>>>,
    session: Mutex<Option<Session>>,
    cache: Cache,
    /// Mount path (`secret/`) to KV version, as Vault reported them.
    mounts: Mutex<HashMap<String, u8>>,
    redactor: Mutex<Option<Redactor>>,
    /// How many times the provider logged in, and renewed its token (for tests and metrics).
    logins: AtomicU64,
    renewals: AtomicU64,
}

/// A logged-in client.
struct Session {
    config: Arc<VaultConfig>,
    client: Client,
    token: Arc<SecretValue>,
    /// When the token's lease ends (less a margin); `None` when it does not expire, or Vault
    /// would not say.
    expires: Option<Instant>,
    /// When to renew the token (`auth/token/renew-self`): halfway through its lease, for a
    /// renewable token; `None` otherwise, or once a renewal no longer extends it.
    renew_at: Option<Instant>,
    /// The lease the token was given, to tell a renewal that extends it from one cut short by
    /// the token's maximum time to live.
    lease: Duration,
}

/// A token's lease, as Vault reports it for a login, a lookup or a renewal.
#[derive(Clone, Copy, Debug)]
struct Lease {
    /// Zero when the token does not expire.
    duration: Duration,
    renewable: bool,
}

impl Session {
    /// Sets the times of a lease that starts now.
    fn start_lease(&mut self, lease: Option<Lease>) {
        let now = Instant::now();
        match lease.filter(|l| !l.duration.is_zero()) {
            None => {
                self.expires = None;
                self.renew_at = None;
            }
            Some(l) => {
                self.lease = l.duration;
                // The margin is at most a quarter of the lease, so that the renewal, due at
                // half of it, comes first even for a lease of a few seconds.
                self.expires = Some(now + l.duration - LEASE_MARGIN.min(l.duration / 4));
                self.renew_at = l.renewable.then(|| now + l.duration / 2);
            }
        }
    }
}

impl std::fmt::Debug for VaultProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultProvider")
            .field("cache", &self.inner.cache)
            .finish_non_exhaustive()
    }
}

/// A token's lease is treated as over this long (at most a quarter of the lease) before Vault
/// says, so that a request sent just before expiry does not arrive just after.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

impl VaultProvider {
    /// A provider configured from the environment on first use.
    pub fn from_env() -> VaultProvider {
        VaultProvider::default()
    }

    /// A provider configured from `env` on first use.
    pub fn with_env(env: Env) -> VaultProvider {
        VaultProvider {
            inner: Arc::new(Inner {
                env,
                ..Inner::default()
            }),
        }
    }

    /// A provider with `config` (tests, and callers that configure it themselves).
    pub fn with_config(config: VaultConfig) -> VaultProvider {
        let provider = VaultProvider::default();
        if let Ok(mut preset) = provider.inner.preset.lock() {
            *preset = Some(Arc::new(config));
        }
        provider
    }

    /// Registers tokens this provider obtains, and the credentials it resolves to log in, with
    /// `redactor`.
    pub fn set_redactor(&self, redactor: &Redactor) {
        if let Ok(mut r) = self.inner.redactor.lock() {
            *r = Some(redactor.clone());
        }
    }

    /// Forgets cached secrets (they are wiped), so the next resolution asks Vault again.
    pub fn clear_cache(&self) {
        self.inner.cache.clear();
    }

    fn config(&self) -> Result<Arc<VaultConfig>, StoreError> {
        let mut preset = self
            .inner
            .preset
            .lock()
            .map_err(|_| StoreError::new(Reason::BadResponse, "internal lock poisoned"))?;
        if let Some(c) = &*preset {
            return Ok(c.clone());
        }
        let config = Arc::new(VaultConfig::from_settings(&self.inner.env)?);
        *preset = Some(config.clone());
        Ok(config)
    }

    fn redactor(&self) -> Redactor {
        self.inner
            .redactor
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .unwrap_or_default()
    }

    /// How many times this provider logged in (a given token's first use counts as one).
    pub fn logins(&self) -> u64 {
        self.inner.logins.load(Ordering::Relaxed)
    }

    /// How many times this provider renewed its token.
    pub fn renewals(&self) -> u64 {
        self.inner.renewals.load(Ordering::Relaxed)
    }

    /// The current session's client and token: logging in when there is none or its lease
    /// ended, renewing the token halfway through its lease, and logging in again when the
    /// renewal fails or no longer extends the lease (the token's maximum time to live is near).
    fn session(&self) -> Result<(Arc<VaultConfig>, Client, Arc<SecretValue>), StoreError> {
        let mut session = self
            .inner
            .session
            .lock()
            .map_err(|_| StoreError::new(Reason::BadResponse, "internal lock poisoned"))?;
        let now = Instant::now();
        let (expired, renew) = match session.as_ref() {
            None => (true, false),
            Some(s) => (
                s.expires.is_some_and(|at| now >= at),
                s.renew_at.is_some_and(|at| now >= at),
            ),
        };
        if expired {
            *session = Some(self.login()?);
        } else if renew && let Some(s) = session.as_mut() {
            match renew_self(s) {
                Some(lease) if lease.duration > s.lease / 2 => {
                    s.start_lease(Some(lease));
                    self.inner.renewals.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(addr = %s.config.addr, "renewed the Vault token");
                }
                outcome => {
                    if can_login_again(&s.config.auth) {
                        tracing::debug!(
                            addr = %s.config.addr,
                            "the Vault token cannot be renewed any further; logging in again"
                        );
                        *session = Some(self.login()?);
                    } else {
                        // A given token: use it for what is left of its lease, renewing no more.
                        if let Some(lease) = outcome {
                            s.start_lease(Some(lease));
                        }
                        s.renew_at = None;
                    }
                }
            }
        }
        let s = session
            .as_ref()
            .ok_or_else(|| StoreError::new(Reason::BadResponse, "no session"))?;
        Ok((s.config.clone(), s.client.clone(), s.token.clone()))
    }

    fn drop_session(&self) {
        if let Ok(mut s) = self.inner.session.lock() {
            *s = None;
        }
    }

    fn login(&self) -> Result<Session, StoreError> {
        let config = self.config()?;
        let client = Client::new(
            "VAULT_ADDR",
            &config.addr,
            config.ca_file.as_deref(),
            config.timeout,
        )?;
        let redactor = self.redactor();
        let resolve = |r: &SecretRef, what: &str| {
            SecretResolver::with_providers(redactor.clone(), SecretProviders::new(None))
                .resolve(r)
                .map_err(|e| StoreError::new(Reason::NotConfigured, format!("{what}: {e}")))
        };
        // A login answers with its lease; a given token's lease is looked up below.
        let (token, lease) = match &config.auth {
            VaultAuth::Token(t) => (SecretValue::new(t.expose().to_vec()), None),
            VaultAuth::TokenRef(r) => {
                let t = resolve(r, "the Vault token")?;
                let trimmed = String::from_utf8_lossy(t.expose())
                    .trim()
                    .as_bytes()
                    .to_vec();
                (SecretValue::new(trimmed), None)
            }
            VaultAuth::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                let role_id = resolve(role_id, "HUSHFLOW_VAULT_ROLE_ID")?;
                let secret_id = resolve(secret_id, "HUSHFLOW_VAULT_SECRET_ID")?;
                let body = Zeroizing::new(
                    serde_json::json!({
                        "role_id": String::from_utf8_lossy(role_id.expose()).trim(),
                        "secret_id": String::from_utf8_lossy(secret_id.expose()).trim(),
                    })
                    .to_string(),
                );
                let refused = format!(
                    "AppRole login at auth/{mount} was refused: the role_id or secret_id is \
                     wrong, expired or used up"
                );
                let (token, lease) = login_at(&config, &client, mount, &body, &refused)?;
                (token, Some(lease))
            }
            VaultAuth::Kubernetes {
                mount,
                role,
                token_file,
            } => {
                let jwt = read_jwt(token_file)?;
                redactor.register(&jwt);
                let body = Zeroizing::new(
                    serde_json::json!({
                        "role": role,
                        "jwt": String::from_utf8_lossy(jwt.expose()).trim(),
                    })
                    .to_string(),
                );
                let refused = format!(
                    "Kubernetes login at auth/{mount} as role {role} was refused: the \
                     service-account token in {} is expired, or not bound to that role",
                    token_file.display()
                );
                let (token, lease) = login_at(&config, &client, mount, &body, &refused)?;
                (token, Some(lease))
            }
        };
        if token.is_empty() {
            return Err(StoreError::new(
                Reason::NotConfigured,
                "the Vault token is empty",
            ));
        }
        redactor.register(&token);
        let lease = match lease {
            Some(lease) => Some(lease),
            // A given token: ask Vault how long it lives, so that a renewable one is renewed.
            // A token that cannot look itself up (or a sealed Vault) is used as it is; the
            // requests then say what is wrong.
            None => lookup_self(&config, &client, &token),
        };
        let mut session = Session {
            config,
            client,
            token: Arc::new(token),
            expires: None,
            renew_at: None,
            lease: Duration::ZERO,
        };
        session.start_lease(lease);
        self.inner.logins.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(addr = %session.config.addr, "logged in to Vault");
        Ok(session)
    }

    /// Sends an authenticated request; on 403 from a login-based session, logs in once more and
    /// retries (the token may have been revoked or have expired early).
    pub(crate) fn request(
        &self,
        method: &str,
        api_path: &str,
        body: Option<&[u8]>,
    ) -> Result<Response, StoreError> {
        let mut retried = false;
        loop {
            let (config, client, token) = self.session()?;
            let response = send_with_token(&config, &client, &token, method, api_path, body)?;
            if response.status == 403 && can_login_again(&config.auth) && !retried {
                retried = true;
                self.drop_session();
                continue;
            }
            if response.status == 403 {
                // Tell a dead token from a policy that denies the path.
                let lookup = send_with_token(
                    &config,
                    &client,
                    &token,
                    "GET",
                    "auth/token/lookup-self",
                    None,
                )?;
                if lookup.status == 403 {
                    self.drop_session();
                    return Err(StoreError::new(
                        Reason::ExpiredToken,
                        "the Vault token is expired, revoked or invalid; log in again or \
                         set a new token",
                    ));
                }
            }
            return Ok(response);
        }
    }

    /// The KV version of the mount `path` is on, or `None` when Vault will not say.
    fn kv_version(&self, path: &str) -> Result<Option<(String, u8)>, StoreError> {
        if let Ok(mounts) = self.inner.mounts.lock()
            && let Some((mount, version)) =
                mounts.iter().find(|(m, _)| path.starts_with(m.as_str()))
        {
            return Ok(Some((mount.clone(), *version)));
        }
        let response = self.request("GET", &format!("sys/internal/ui/mounts/{path}"), None)?;
        if response.status != 200 {
            return Ok(None);
        }
        let json: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        let data = &json["data"];
        let Some(mount) = data["path"].as_str().filter(|m| !m.is_empty()) else {
            return Ok(None);
        };
        let version = match (data["type"].as_str(), data["options"]["version"].as_str()) {
            (Some("kv" | "generic"), Some("2")) => 2,
            _ => 1,
        };
        if let Ok(mut mounts) = self.inner.mounts.lock() {
            mounts.insert(mount.to_string(), version);
        }
        Ok(Some((mount.to_string(), version)))
    }

    /// The API path to read for `path` and whether the answer is KV v2 (`None`: unknown).
    fn api_path(&self, path: &str) -> Result<(String, Option<u8>), StoreError> {
        let config = self.config()?;
        let (mount, version) = match config.kv_version {
            Some(v) => {
                let mount = path.split_inclusive('/').next().unwrap_or(path).to_string();
                (mount, v)
            }
            None => match self.kv_version(path)? {
                Some(found) => found,
                None => return Ok((path.to_string(), None)),
            },
        };
        if version == 2 {
            let rest = path.strip_prefix(&mount).unwrap_or(path);
            if !rest.starts_with("data/") {
                return Ok((format!("{mount}data/{rest}"), Some(2)));
            }
        }
        Ok((path.to_string(), Some(version)))
    }

    /// Reads the secret at `path` (as written in the reference) and returns its fields.
    fn read(&self, path: &str) -> Result<Fields, StoreError> {
        let (api_path, version) = self.api_path(path)?;
        let response = self.request("GET", &api_path, None)?;
        if response.status != 200 {
            return Err(status_error(&response, &api_path));
        }
        let mut json = parse(&response)?;
        let data = &json["data"];
        let is_v2 = match version {
            Some(v) => v == 2,
            None => data["data"].is_object() && data["metadata"].is_object(),
        };
        let fields = if is_v2 { &data["data"] } else { data };
        let Some(object) = fields.as_object() else {
            wipe_json(&mut json);
            return Err(StoreError::new(
                Reason::NotFound,
                format!("{api_path} holds no key/value secret (deleted, or not a KV mount)"),
            ));
        };
        let out: Fields = object
            .iter()
            .map(|(name, value)| {
                let bytes = match value {
                    Value::String(s) => s.as_bytes().to_vec(),
                    other => other.to_string().into_bytes(),
                };
                (name.clone(), SecretValue::new(bytes))
            })
            .collect();
        wipe_json(&mut json);
        Ok(out)
    }

    /// Field `field` of the secret at `path`, from the cache or from Vault.
    pub(crate) fn field(&self, path: &str, field: &str) -> Result<SecretValue, StoreError> {
        if let Some(cached) = self.inner.cache.field(path, field) {
            return cached.ok_or_else(|| no_field(path, field));
        }
        let fields = self.read(path)?;
        let value = fields
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, v)| SecretValue::new(v.expose().to_vec()));
        self.inner.cache.insert(path, fields);
        value.ok_or_else(|| no_field(path, field))
    }

    /// Sends an authenticated POST to `api_path` (under `/v1/`) with a JSON body and returns
    /// the answer's `data`, for engines other than KV (Transit).
    pub fn post_json(&self, api_path: &str, body: &Value) -> Result<Value, StoreError> {
        let text = Zeroizing::new(body.to_string());
        let response = self.request("POST", api_path, Some(text.as_bytes()))?;
        if response.status != 200 {
            return Err(status_error(&response, api_path));
        }
        let mut json = parse(&response)?;
        Ok(json["data"].take())
    }
}

/// Whether the provider can get a new token by itself (not for a token given as a value).
fn can_login_again(auth: &VaultAuth) -> bool {
    !matches!(auth, VaultAuth::Token(_))
}

/// Logs in at `auth/MOUNT/login` with the JSON `body`; `refused` is the error's sentence when
/// Vault refuses the credentials.
fn login_at(
    config: &VaultConfig,
    client: &Client,
    mount: &str,
    body: &str,
    refused: &str,
) -> Result<(SecretValue, Lease), StoreError> {
    let path = format!("/v1/auth/{mount}/login");
    let mut headers = namespace_header(config);
    headers.push(("Content-Type", "application/json"));
    let response = client.send("POST", &path, &headers, Some(body.as_bytes()))?;
    match response.status {
        200 => {}
        400 | 403 => return Err(StoreError::new(Reason::ExpiredToken, refused)),
        _ => return Err(status_error(&response, &format!("auth/{mount}/login"))),
    }
    let mut json = parse(&response)?;
    let token = json["auth"]["client_token"]
        .as_str()
        .map(|t| SecretValue::new(t.as_bytes().to_vec()));
    let lease = lease_of(&json["auth"], "lease_duration");
    wipe_json(&mut json);
    let token = token.ok_or_else(|| {
        StoreError::new(
            Reason::BadResponse,
            format!("the login at auth/{mount} answered without a token"),
        )
    })?;
    Ok((token, lease))
}

/// The lease in `auth` (or a lookup's `data`): seconds under `key`, and `renewable`.
fn lease_of(auth: &Value, key: &str) -> Lease {
    Lease {
        duration: Duration::from_secs(auth[key].as_u64().unwrap_or(0)),
        renewable: auth["renewable"].as_bool().unwrap_or(false),
    }
}

/// A given token's lease (`auth/token/lookup-self`), or `None` when Vault does not say.
fn lookup_self(config: &VaultConfig, client: &Client, token: &SecretValue) -> Option<Lease> {
    let response =
        send_with_token(config, client, token, "GET", "auth/token/lookup-self", None).ok()?;
    if response.status != 200 {
        return None;
    }
    let mut json = parse(&response).ok()?;
    let lease = lease_of(&json["data"], "ttl");
    wipe_json(&mut json);
    Some(lease)
}

/// Renews the session's token (`auth/token/renew-self`); `None` when Vault refuses.
fn renew_self(s: &Session) -> Option<Lease> {
    let response = send_with_token(
        &s.config,
        &s.client,
        &s.token,
        "POST",
        "auth/token/renew-self",
        Some(b"{}"),
    )
    .ok()?;
    if response.status != 200 {
        return None;
    }
    let mut json = parse(&response).ok()?;
    let lease = lease_of(&json["auth"], "lease_duration");
    wipe_json(&mut json);
    Some(lease)
}

/// The service-account token in `path`, trimmed. Not a `file:` reference: Kubernetes mounts it
/// readable by the pod's group (mode 0644 by default), which `file:` refuses for secrets.
fn read_jwt(path: &std::path::Path) -> Result<SecretValue, StoreError> {
    use std::io::Read as _;
    let shown = path.display();
    let cannot = |e: std::io::Error| {
        StoreError::new(
            Reason::NotConfigured,
            format!(
                "cannot read the Kubernetes service-account token {shown}: {e}; set                  HUSHFLOW_VAULT_KUBERNETES_TOKEN_FILE"
            ),
        )
    };
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_JWT_LEN)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    let text = String::from_utf8_lossy(&bytes);
    let jwt = text.trim();
    if jwt.is_empty() {
        return Err(StoreError::new(
            Reason::NotConfigured,
            format!("the Kubernetes service-account token {shown} is empty"),
        ));
    }
    Ok(SecretValue::new(jwt.as_bytes().to_vec()))
}

fn no_field(path: &str, field: &str) -> StoreError {
    StoreError::new(
        Reason::NotFound,
        format!("the secret at {path} has no field {field}"),
    )
}

fn namespace_header(config: &VaultConfig) -> Vec<(&str, &str)> {
    let mut headers = vec![("X-Vault-Request", "true")];
    if let Some(ns) = &config.namespace {
        headers.push(("X-Vault-Namespace", ns.as_str()));
    }
    headers
}

fn send_with_token(
    config: &VaultConfig,
    client: &Client,
    token: &SecretValue,
    method: &str,
    api_path: &str,
    body: Option<&[u8]>,
) -> Result<Response, StoreError> {
    let token = std::str::from_utf8(token.expose())
        .map_err(|_| StoreError::new(Reason::NotConfigured, "the Vault token is not text"))?;
    let mut headers = namespace_header(config);
    headers.push(("X-Vault-Token", token));
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    client.send(method, &format!("/v1/{api_path}"), &headers, body)
}

/// The error for an answer that is not a success, from its status and (for 503) whether
/// Vault says it is sealed. Vault's own error text is not quoted.
fn status_error(response: &Response, api_path: &str) -> StoreError {
    match response.status {
        403 => StoreError::new(
            Reason::PermissionDenied,
            format!("the token's policies do not allow this request on {api_path}"),
        ),
        404 => StoreError::new(Reason::NotFound, format!("nothing at {api_path}")),
        503 => {
            let sealed = String::from_utf8_lossy(&response.body)
                .to_ascii_lowercase()
                .contains("sealed");
            if sealed {
                StoreError::new(Reason::Sealed, "Vault is sealed; unseal it and try again")
            } else {
                StoreError::new(
                    Reason::Unreachable,
                    "Vault is unavailable (HTTP 503, standby?)",
                )
            }
        }
        400 => StoreError::new(
            Reason::BadResponse,
            format!("Vault refused the request on {api_path} as malformed (HTTP 400)"),
        ),
        // Rate limited, or a server error: worth trying again later, like an outage.
        s @ (429 | 500..) => StoreError::new(
            Reason::Unreachable,
            format!("Vault failed on {api_path} (HTTP {s}); try again later"),
        ),
        s => StoreError::new(
            Reason::BadResponse,
            format!("Vault answered HTTP {s} on {api_path}"),
        ),
    }
}

fn parse(response: &Response) -> Result<Value, StoreError> {
    serde_json::from_slice(&response.body)
        .map_err(|_| StoreError::new(Reason::BadResponse, "Vault's answer is not JSON"))
}

/// Splits `PATH#FIELD`; the error does not repeat the name (it may be a pasted secret).
fn split(name: &str) -> Result<(&str, &str), StoreError> {
    let bad = || {
        StoreError::new(
            Reason::BadReference,
            "write vault:MOUNT/PATH#FIELD, as in vault:secret/data/crm#token (a relative path \
             without `..`, `?` or spaces, and a field name)",
        )
    };
    let (path, field) = name.rsplit_once('#').ok_or_else(bad)?;
    let path_ok = !path.is_empty()
        && !path.starts_with('/')
        && path.contains('/')
        && !path.split('/').any(|s| s == ".." || s == ".")
        && !path
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "?#%\\".contains(c));
    let field_ok = !field.is_empty() && !field.chars().any(|c| c.is_control());
    if path_ok && field_ok {
        Ok((path, field))
    } else {
        Err(bad())
    }
}

impl SecretProvider for VaultProvider {
    fn scheme(&self) -> &'static str {
        "vault"
    }

    fn usage(&self) -> &'static str {
        "vault:MOUNT/PATH#FIELD"
    }

    fn example(&self) -> &'static str {
        "vault:secret/data/crm#token"
    }

    fn check(&self, name: &str) -> Result<(), SecretError> {
        split(name).map(|_| ()).map_err(|e| SecretError::Provider {
            scheme: "vault",
            name: String::new(),
            source: Box::new(e),
        })
    }

    fn resolve(&self, name: &str) -> Result<SecretValue, SecretError> {
        let provider_error = |e: StoreError| SecretError::Provider {
            scheme: "vault",
            name: name.to_string(),
            source: Box::new(e),
        };
        let (path, field) = split(name).map_err(|e| SecretError::Provider {
            scheme: "vault",
            name: String::new(),
            source: Box::new(e),
        })?;
        self.field(path, field).map_err(provider_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_without_being_repeated() {
        assert_eq!(
            split("secret/data/crm#token").unwrap(),
            ("secret/data/crm", "token")
        );
        for bad in [
            "kv/pasted",
            "kv/pasted#",
            "#pasted",
            "pasted#token",
            "/kv/pasted#token",
            "kv/../pasted#x",
            "kv/pa sted#x",
            "kv/pasted?x=1#y",
            "kv/pasted#b#c",
        ] {
            let e = VaultProvider::default().check(bad).unwrap_err().to_string();
            assert!(
                e.starts_with("vault:: malformed reference: write vault:MOUNT/PATH#FIELD"),
                "{bad}: {e}"
            );
            assert!(!e.contains(bad), "{e}");
        }
    }
}
