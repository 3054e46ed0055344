//! The secret stores this build knows, registered in one place so that validation, resolution
//! and every action agree on the schemes. A new store (`vault:`, `aws-sm:`) is a provider behind
//! a Cargo feature, registered in [`providers`] and nowhere else.

use hushflow_secrets::{KeyProvider, Redactor, SecretProviders, SecretResolver};

/// The registered providers, with the keyring behind `keyring:` (`None` before the keyring is
/// open, which is enough to parse and validate references).
pub fn providers(keys: Option<&dyn KeyProvider>) -> SecretProviders<'_> {
    SecretProviders::new(keys)
}

/// A resolver over [`providers`]: every value it resolves is registered with `redactor`.
pub fn resolver<'a>(redactor: &Redactor, keys: Option<&'a dyn KeyProvider>) -> SecretResolver<'a> {
    SecretResolver::with_providers(redactor.clone(), providers(keys))
}
