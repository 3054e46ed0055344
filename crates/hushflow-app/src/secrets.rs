//! The secret stores this build knows, registered in one place so that validation, resolution
//! and every action agree on the schemes: the built-in `env:`, `file:` and `keyring:`, and the
//! networked stores of `hushflow-secret-stores` that this build's features enable (`vault:`
//! with `vault`, `aws-sm:` with `aws`).
//!
//! The networked stores are one value for the whole process, so that every registry built here
//! shares one Vault login and one cache of resolved secrets for the run. They read their
//! settings from the environment when a reference of theirs is first resolved.

use std::sync::LazyLock;

use hushflow_secret_stores::Stores;
use hushflow_secrets::{KeyProvider, Redactor, SecretProviders, SecretResolver};

/// The process's networked stores (see the module documentation).
static STORES: LazyLock<Stores> = LazyLock::new(Stores::from_env);

/// The registered providers, with the keyring behind `keyring:` (`None` before the keyring is
/// open, which is enough to parse and validate references).
pub fn providers(keys: Option<&dyn KeyProvider>) -> SecretProviders<'_> {
    let mut providers = SecretProviders::new(keys);
    STORES.register(&mut providers);
    providers
}

/// A resolver over [`providers`]: every value it resolves is registered with `redactor`, and so
/// are the credentials the stores obtain themselves (a Vault token from a login).
pub fn resolver<'a>(redactor: &Redactor, keys: Option<&'a dyn KeyProvider>) -> SecretResolver<'a> {
    STORES.set_redactor(redactor);
    SecretResolver::with_providers(redactor.clone(), providers(keys))
}
