//! Single sign-on with OpenID Connect: which provider, and how its users' claims map to
//! hushflow roles. The authorization code flow itself (discovery, the redirect, the token
//! request, the ID token's signature) is the server's; this module decides who a verified ID
//! token's claims make the user, and makes the flow's one-time values (PKCE, state, nonce).

use super::secret::new_secret;
use super::{AccessError, Principal, Role};
use crate::Actor;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

fn default_scopes() -> Vec<String> {
    vec!["openid".into()]
}

fn default_user_claim() -> String {
    "sub".into()
}

/// An OpenID provider and the mapping of its users to roles (the `[oidc]` table of the
/// server's settings).
///
/// ```toml
/// [oidc]
/// issuer = "https://id.example.com/realms/ops"
/// client_id = "hushflow"
/// client_secret = "env:HUSHFLOW_OIDC_SECRET"
/// redirect_url = "https://hushflow.example.com/auth/callback"
/// role_claim = "realm_access.roles"
/// roles = { hushflow-admins = "admin", hushflow-ops = "op", staff = "viewer" }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer URL (`https://…`; `http://` only on a loopback address, for tests): its
    /// `/.well-known/openid-configuration` is discovered, and ID tokens must name it as `iss`.
    pub issuer: String,
    /// The client id registered with the provider.
    pub client_id: String,
    /// A secret reference (`env:NAME`, `file:PATH`, `vault:…`) to the client secret; none for a
    /// public client (PKCE alone).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Where the provider sends the browser back: the server's callback URL.
    pub redirect_url: String,
    /// Scopes asked for; `openid` is always among them.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The claim naming the user (`sub` by default: an opaque id, not an e-mail address, so
    /// that the audit log holds no personal data). Audited as `api-user:oidc:VALUE`.
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    /// The claim holding the user's groups or roles: a name, or a dotted path into nested
    /// objects (`realm_access.roles`); a string or an array of strings.
    pub role_claim: String,
    /// Claim value → role. A user with several mapped values gets the highest role.
    pub roles: BTreeMap<String, Role>,
    /// The role of a user none of whose values is mapped; `None`: such users are refused.
    #[serde(default)]
    pub default_role: Option<Role>,
}

/// The value at a dotted `path` in `claims` (a top-level claim whose name holds a dot wins).
fn claim<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    path.split('.').try_fold(claims, |v, key| v.get(key))
}

fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.split(']').next())
        .unwrap_or_else(|| host.rsplit_once(':').map_or(host, |(h, _)| h));
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl OidcConfig {
    /// Refuses settings that cannot work or are unsafe, naming the field (never a value of a
    /// secret: `client_secret` is a reference).
    pub fn validate(&self) -> Result<(), AccessError> {
        let bad =
            |field: &str, what: &str| Err(AccessError::Invalid(format!("[oidc] {field}: {what}")));
        for (field, url) in [
            ("issuer", &self.issuer),
            ("redirect_url", &self.redirect_url),
        ] {
            if !(url.starts_with("https://") || is_loopback_http(url)) {
                return bad(
                    field,
                    "give an https:// URL (http:// only on a loopback address)",
                );
            }
        }
        if self.client_id.trim().is_empty() {
            return bad(
                "client_id",
                "give the client id registered with the provider",
            );
        }
        if let Some(secret) = &self.client_secret
            && !secret.contains(':')
        {
            return bad(
                "client_secret",
                "give a secret reference (env:NAME, file:PATH, vault:…), not the secret",
            );
        }
        if self.user_claim.trim().is_empty() || self.role_claim.trim().is_empty() {
            return bad("user_claim/role_claim", "name a claim");
        }
        if self.roles.is_empty() && self.default_role.is_none() {
            return bad(
                "roles",
                "map at least one claim value to a role, or give default_role",
            );
        }
        Ok(())
    }

    /// The scopes to ask for: the configured ones, with `openid` first.
    pub fn scopes(&self) -> Vec<String> {
        let mut scopes = vec!["openid".to_string()];
        scopes.extend(self.scopes.iter().filter(|s| *s != "openid").cloned());
        scopes
    }

    /// The role a verified ID token's (or userinfo's) `claims` give: the highest mapped value
    /// of the role claim, else the default role; `None`: the user is refused.
    pub fn role_for(&self, claims: &Value) -> Option<Role> {
        let values: Vec<&str> = match claim(claims, &self.role_claim) {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        values
            .iter()
            .filter_map(|v| self.roles.get(*v).copied())
            .max()
            .or(self.default_role)
    }

    /// The user name `claims` give (the user claim, a string or number).
    pub fn user_name(&self, claims: &Value) -> Result<String, AccessError> {
        let name = match claim(claims, &self.user_claim) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(AccessError::Invalid(format!(
                    "the ID token has no `{}` claim to name the user; set [oidc] user_claim",
                    self.user_claim
                )));
            }
        };
        if name.chars().any(char::is_control) || name.chars().count() > 255 {
            return Err(AccessError::Invalid(format!(
                "the ID token's `{}` claim is not a usable name",
                self.user_claim
            )));
        }
        Ok(name)
    }

    /// The principal a verified ID token's `claims` make: `api-user:oidc:NAME` with the mapped
    /// role (grants of local users do not apply). Refused ([`AccessError::SignInRefused`])
    /// when no role is mapped and there is no default.
    pub fn principal(&self, claims: &Value) -> Result<Principal, AccessError> {
        let name = self.user_name(claims)?;
        let role = self.role_for(claims).ok_or(AccessError::SignInRefused)?;
        Ok(Principal::new(
            Actor::api_user(format!("oidc:{name}")),
            role,
        ))
    }
}

/// The one-time values of one authorization request: kept by the server (in a short-lived,
/// signed or server-side cookie) until the callback.
pub struct OidcRequest {
    /// The PKCE code verifier (43 characters), sent with the token request.
    pub verifier: Zeroizing<String>,
    /// Its S256 challenge, sent in the authorization URL (`code_challenge_method=S256`).
    pub challenge: String,
    /// The `state` parameter, checked at the callback (CSRF).
    pub state: String,
    /// The `nonce` parameter, checked in the ID token (replay).
    pub nonce: String,
}

impl std::fmt::Debug for OidcRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OidcRequest(hidden)")
    }
}

impl OidcRequest {
    /// New random values (32 bytes each from the operating system).
    pub fn new() -> Result<OidcRequest, AccessError> {
        let verifier = new_secret()?;
        Ok(OidcRequest {
            challenge: pkce_challenge(&verifier),
            verifier,
            state: new_secret()?.to_string(),
            nonce: new_secret()?.to_string(),
        })
    }
}

/// The S256 PKCE challenge of `verifier` (RFC 7636): base64url of its SHA-256.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}
