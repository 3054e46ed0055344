//! `conn:NAME`: a connection (usually a URL, `postgres://user:pw@host/db`) looked up by name in
//! the configured backends in order, as Airflow's secrets backends look up a `conn_id`:
//!
//! 1. the environment: `HUSHFLOW_CONN_<NAME>`, the name upper-cased with every character that
//!    is not a letter or digit turned into `_` (`conn:crm-db` reads `HUSHFLOW_CONN_CRM_DB`);
//! 2. Vault (with the `vault` feature, when `VAULT_ADDR` is set): field `conn_uri` of the
//!    key/value secret `HUSHFLOW_VAULT_CONNECTIONS_PATH/NAME` (default `secret/connections`,
//!    Airflow's mount `secret` and `connections_path`);
//! 3. AWS Secrets Manager (with the `aws` feature, when a region is set): the secret
//!    `HUSHFLOW_AWS_CONNECTIONS_PREFIX/NAME` (default `hushflow/connections`), its whole string,
//!    or its `conn_uri` key when it is a JSON object (as Airflow stores them).
//!
//! The first backend that has the connection wins. A backend that answers "not found" passes
//! the lookup on to the next; any other failure (permission denied, sealed, expired token,
//! unreachable) stops it with that reason, so that a sealed Vault is reported, not silently
//! replaced by an older copy further down the list. Not found anywhere is an error listing
//! where it looked, and which backends were skipped as not configured.

use hushflow_secrets::{SecretError, SecretProvider, SecretValue};

use crate::env::Env;
use crate::{Reason, StoreError};

/// The prefix of the environment variables that hold connections.
pub const ENV_PREFIX: &str = "HUSHFLOW_CONN_";

/// The setting naming the Vault path (mount and path) under which connections are kept.
#[cfg(feature = "vault")]
pub const VAULT_PATH_ENV: &str = "HUSHFLOW_VAULT_CONNECTIONS_PATH";

/// Where connections are kept in Vault when [`VAULT_PATH_ENV`] is not set.
#[cfg(feature = "vault")]
pub const DEFAULT_VAULT_PATH: &str = "secret/connections";

/// The field of a Vault secret that holds the connection (Airflow's name for it).
pub const URI_FIELD: &str = "conn_uri";

/// The setting naming the Secrets Manager prefix of connections.
#[cfg(feature = "aws")]
pub const AWS_PREFIX_ENV: &str = "HUSHFLOW_AWS_CONNECTIONS_PREFIX";

/// The Secrets Manager prefix when [`AWS_PREFIX_ENV`] is not set.
#[cfg(feature = "aws")]
pub const DEFAULT_AWS_PREFIX: &str = "hushflow/connections";

/// The environment variable holding connection `name`: `HUSHFLOW_CONN_` and the name
/// upper-cased, every character other than a letter or digit replaced by `_`.
pub fn env_name(name: &str) -> String {
    let mut out = String::from(ENV_PREFIX);
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    out
}

/// The `conn:` provider: the environment, then the stores this build has. Clones share the
/// stores' logins and caches.
#[derive(Clone, Debug, Default)]
pub struct ConnProvider {
    env: Env,
    #[cfg(feature = "vault")]
    vault: crate::vault::VaultProvider,
    #[cfg(feature = "aws")]
    aws_sm: crate::aws::SecretsManagerProvider,
}

/// One backend's answer.
enum Found {
    Value(SecretValue),
    /// Looked, not there: the sentence says where.
    NotThere(String),
    /// Not configured, so not consulted: the sentence says what would configure it.
    Skipped(String),
}

impl ConnProvider {
    /// A provider reading settings from `env` and asking these stores.
    pub fn new(
        env: Env,
        #[cfg(feature = "vault")] vault: crate::vault::VaultProvider,
        #[cfg(feature = "aws")] aws_sm: crate::aws::SecretsManagerProvider,
    ) -> ConnProvider {
        ConnProvider {
            env,
            #[cfg(feature = "vault")]
            vault,
            #[cfg(feature = "aws")]
            aws_sm,
        }
    }

    fn in_env(&self, name: &str) -> Found {
        let var = env_name(name);
        match self.env.get(&var) {
            Some(v) => Found::Value(SecretValue::new(v.into_bytes())),
            None => Found::NotThere(format!("the environment ({var})")),
        }
    }

    #[cfg(feature = "vault")]
    fn in_vault(&self, name: &str) -> Result<Found, StoreError> {
        if self.env.get("VAULT_ADDR").is_none() {
            return Ok(Found::Skipped("Vault (VAULT_ADDR is not set)".into()));
        }
        let base = self
            .env
            .get(VAULT_PATH_ENV)
            .unwrap_or_else(|| DEFAULT_VAULT_PATH.to_string());
        let path = format!("{}/{name}", base.trim_matches('/'));
        let place = format!("Vault ({path}#{URI_FIELD})");
        match self.vault.field(&path, URI_FIELD) {
            Ok(v) => Ok(Found::Value(v)),
            Err(e) if e.reason == Reason::NotFound => Ok(Found::NotThere(place)),
            Err(e) => Err(StoreError::new(
                e.reason,
                format!("looking in {place}: {}", e.detail()),
            )),
        }
    }

    #[cfg(feature = "aws")]
    fn in_aws(&self, name: &str) -> Result<Found, StoreError> {
        let var = |n: &str| self.env.get(n);
        if var("AWS_REGION").is_none() && var("AWS_DEFAULT_REGION").is_none() {
            return Ok(Found::Skipped(
                "AWS Secrets Manager (AWS_REGION is not set)".into(),
            ));
        }
        let prefix = var(AWS_PREFIX_ENV).unwrap_or_else(|| DEFAULT_AWS_PREFIX.to_string());
        let id = format!("{}/{name}", prefix.trim_matches('/'));
        let place = format!("AWS Secrets Manager ({id})");
        match self.aws_sm.whole(&id) {
            Ok(v) => Ok(Found::Value(conn_uri_of(v))),
            Err(e) if e.reason == Reason::NotFound => Ok(Found::NotThere(place)),
            Err(e) => Err(StoreError::new(
                e.reason,
                format!("looking in {place}: {}", e.detail()),
            )),
        }
    }

    /// Connection `name` from the first backend that has it.
    fn lookup(&self, name: &str) -> Result<SecretValue, StoreError> {
        let mut looked = Vec::new();
        let mut skipped = Vec::new();
        if let Some(v) = note(self.in_env(name), &mut looked, &mut skipped) {
            return Ok(v);
        }
        // Each store is asked only when the ones before do not have the connection.
        #[cfg(feature = "vault")]
        let vault = self.in_vault(name)?;
        #[cfg(not(feature = "vault"))]
        let vault = Found::Skipped("Vault (not in this build)".into());
        if let Some(v) = note(vault, &mut looked, &mut skipped) {
            return Ok(v);
        }
        #[cfg(feature = "aws")]
        let aws = self.in_aws(name)?;
        #[cfg(not(feature = "aws"))]
        let aws = Found::Skipped("AWS Secrets Manager (not in this build)".into());
        if let Some(v) = note(aws, &mut looked, &mut skipped) {
            return Ok(v);
        }
        let mut detail = format!("looked in {}", sentence(&looked));
        if !skipped.is_empty() {
            detail.push_str(&format!("; not consulted: {}", sentence(&skipped)));
        }
        detail.push_str(&format!(
            "; set {} or store the connection in a configured backend",
            env_name(name)
        ));
        Err(StoreError::new(Reason::NotFound, detail))
    }
}

/// The value of `found`, or where it was not (noted in `looked` or `skipped`).
fn note(found: Found, looked: &mut Vec<String>, skipped: &mut Vec<String>) -> Option<SecretValue> {
    match found {
        Found::Value(v) => Some(v),
        Found::NotThere(place) => {
            looked.push(place);
            None
        }
        Found::Skipped(place) => {
            skipped.push(place);
            None
        }
    }
}

/// A Secrets Manager connection: the `conn_uri` of a JSON object, otherwise the whole string.
#[cfg(feature = "aws")]
fn conn_uri_of(value: SecretValue) -> SecretValue {
    let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(value.expose()) else {
        return value;
    };
    let uri = json[URI_FIELD].as_str().map(|s| s.as_bytes().to_vec());
    crate::wipe_json(&mut json);
    uri.map_or(value, SecretValue::new)
}

/// "a, b and c".
fn sentence(items: &[String]) -> String {
    match items.split_last() {
        None => "nothing".to_string(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// A connection name: 1 to 128 characters from letters, digits, `_`, `-` and `.`, starting
/// with a letter or digit (so it is one path segment in every backend).
fn check_name(name: &str) -> Result<(), StoreError> {
    let ok = (1..=128).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StoreError::new(
            Reason::BadReference,
            "write conn:NAME, as in conn:crm_db (1 to 128 letters, digits, `_`, `-` and `.`, \
             starting with a letter or digit)",
        ))
    }
}

impl SecretProvider for ConnProvider {
    fn scheme(&self) -> &'static str {
        "conn"
    }

    fn usage(&self) -> &'static str {
        "conn:NAME"
    }

    fn example(&self) -> &'static str {
        "conn:crm_db"
    }

    fn check(&self, name: &str) -> Result<(), SecretError> {
        check_name(name).map_err(|e| SecretError::Provider {
            scheme: "conn",
            name: String::new(),
            source: Box::new(e),
        })
    }

    fn resolve(&self, name: &str) -> Result<SecretValue, SecretError> {
        check_name(name).map_err(|e| SecretError::Provider {
            scheme: "conn",
            name: String::new(),
            source: Box::new(e),
        })?;
        self.lookup(name).map_err(|e| SecretError::Provider {
            scheme: "conn",
            name: name.to_string(),
            source: Box::new(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_are_upper_cased_with_underscores() {
        assert_eq!(env_name("crm_db"), "HUSHFLOW_CONN_CRM_DB");
        assert_eq!(env_name("crm-db.eu"), "HUSHFLOW_CONN_CRM_DB_EU");
    }

    #[test]
    fn names_are_checked_without_being_repeated() {
        let p = ConnProvider::default();
        assert!(p.check("crm_db").is_ok());
        assert!(p.check("Crm-1.eu").is_ok());
        for bad in ["..", "a/b", "-x", "pasted secret", "a#b", &"x".repeat(129)] {
            let e = p.check(bad).unwrap_err().to_string();
            assert!(e.starts_with("conn:: malformed reference"), "{e}");
            assert!(!e.contains(bad), "{e}");
        }
    }

    #[test]
    fn the_environment_is_asked_first_and_a_miss_says_where_it_looked() {
        let p = ConnProvider::new(
            Env::from_pairs([("HUSHFLOW_CONN_CRM_DB", "postgres://u:p@h/db")]),
            #[cfg(feature = "vault")]
            crate::vault::VaultProvider::default(),
            #[cfg(feature = "aws")]
            crate::aws::SecretsManagerProvider::default(),
        );
        assert_eq!(
            p.resolve("crm-db").unwrap().expose(),
            b"postgres://u:p@h/db"
        );
        let e = p.resolve("other").unwrap_err().to_string();
        assert!(
            e.starts_with("conn:other: not found: looked in the environment (HUSHFLOW_CONN_OTHER)"),
            "{e}"
        );
        assert!(e.contains("not consulted: Vault"), "{e}");
        assert!(e.contains("AWS Secrets Manager"), "{e}");
    }
}
