//! Secret providers for networked secret stores, and only that: `vault:` (HashiCorp Vault and
//! OpenBao: KV v2 and v1, token, AppRole and Kubernetes auth) behind the `vault` feature,
//! `aws-sm:` (AWS Secrets Manager, requests signed with SigV4) behind the `aws` feature, and
//! `conn:` ([`conn`]), which looks a named connection up in the environment and then in those
//! stores, in order.
//!
//! Each store is a [`hushflow_secrets::SecretProvider`]: whoever builds the process's
//! [`hushflow_secrets::SecretProviders`] registers it (the CLI, through the app layer, in one
//! place). A provider reads its configuration from the environment when it first resolves a
//! reference, not when it is registered, so that validating a pipeline that names `vault:`
//! references works without a Vault at hand. Providers are cheap clones of one shared state, so
//! every registry a process builds shares one login and one cache.
//!
//! What this crate guarantees:
//! - Requests go over HTTPS with full certificate verification (Mozilla's roots, or a CA file);
//!   plain HTTP only to a loopback address. Every request has a timeout.
//! - Errors name the reference and the reason (permission denied, not found, sealed, expired
//!   token, ...), never a secret value, a token or a store's own error text (which may quote the
//!   request).
//! - Resolved secrets are cached for the run, for a bounded time ([`cache`]), in memory that is
//!   wiped when dropped. Redaction is not done here: `SecretResolver::resolve` registers every
//!   value with the redactor; credentials a store hands out (a Vault login token) are
//!   registered with the redactor given by [`Stores::set_redactor`].
//!
//! This crate does no I/O until a reference is resolved, and needs no async runtime.

#[cfg(feature = "aws")]
pub mod aws;
pub mod cache;
pub mod conn;
pub mod custody;
mod env;
mod error;
// Without a store feature nothing uses the client; it still builds and its tests still run.
#[cfg_attr(not(any(feature = "vault", feature = "aws")), allow(dead_code))]
mod http;
#[cfg(feature = "vault")]
pub mod vault;

pub use env::Env;
pub use error::{Reason, StoreError};

use hushflow_secrets::{Redactor, SecretProviders};

/// The stores this build knows, each as one shared provider. Make one per process (the app
/// layer keeps it for the run) and [`register`](Stores::register) it in every registry.
#[derive(Clone, Debug, Default)]
pub struct Stores {
    env: Env,
    #[cfg(feature = "vault")]
    vault: vault::VaultProvider,
    #[cfg(feature = "aws")]
    aws_sm: aws::SecretsManagerProvider,
}

impl Stores {
    /// Providers configured from the process environment when they are first used.
    pub fn from_env() -> Stores {
        Stores::default()
    }

    /// Providers configured from `env` when they are first used.
    pub fn with_env(env: Env) -> Stores {
        Stores {
            #[cfg(feature = "vault")]
            vault: vault::VaultProvider::with_env(env.clone()),
            #[cfg(feature = "aws")]
            aws_sm: aws::SecretsManagerProvider::with_settings(env.clone()),
            env,
        }
    }

    /// Where the stores read their settings.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// The `conn:` provider over this build's stores (see [`conn`]).
    pub fn conn(&self) -> conn::ConnProvider {
        conn::ConnProvider::new(
            self.env.clone(),
            #[cfg(feature = "vault")]
            self.vault.clone(),
            #[cfg(feature = "aws")]
            self.aws_sm.clone(),
        )
    }

    /// Adds every store this build has to `providers`, and `conn:`, which looks connections up
    /// in them.
    pub fn register(&self, providers: &mut SecretProviders<'_>) {
        providers.register(self.conn());
        #[cfg(feature = "vault")]
        providers.register(self.vault.clone());
        #[cfg(feature = "aws")]
        providers.register(self.aws_sm.clone());
    }

    /// Registers credentials that the stores obtain themselves (a Vault token from a login, a
    /// service-account or web identity token, temporary AWS credentials) with `redactor`, so
    /// that they are masked like resolved secrets.
    pub fn set_redactor(&self, redactor: &Redactor) {
        #[cfg(feature = "vault")]
        self.vault.set_redactor(redactor);
        #[cfg(feature = "aws")]
        self.aws_sm.web_identity().set_redactor(redactor);
        let _ = redactor;
    }

    /// The `aws-sm:` provider.
    #[cfg(feature = "aws")]
    pub fn aws_sm(&self) -> &aws::SecretsManagerProvider {
        &self.aws_sm
    }

    /// The `vault:` provider.
    #[cfg(feature = "vault")]
    pub fn vault(&self) -> &vault::VaultProvider {
        &self.vault
    }
}

/// Wipes every string in `value` (a parsed answer that held secrets) before it is dropped:
/// `serde_json` does not zeroize what it frees.
#[cfg_attr(not(any(feature = "vault", feature = "aws")), allow(dead_code))] // used by the stores only
pub(crate) fn wipe_json(value: &mut serde_json::Value) {
    use zeroize::Zeroize;
    match value {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(wipe_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(wipe_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn wipe_json_clears_every_string() {
        let mut v = serde_json::json!({"a": "secret", "b": ["x", {"c": "y"}], "d": 1});
        super::wipe_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"a": "", "b": ["", {"c": ""}], "d": 1})
        );
    }
}
