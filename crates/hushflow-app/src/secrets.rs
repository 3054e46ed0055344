//! The secret stores this build knows, registered in one place so that validation, resolution
//! and every action agree on the schemes: the built-in `env:`, `file:` and `keyring:`, and the
//! networked stores of `hushflow-secret-stores` that this build's features enable (`vault:`
//! with `vault`, `aws-sm:` with `aws`).
//!
//! The networked stores are one value for the whole process, so that every registry built here
//! shares one Vault login and one cache of resolved secrets for the run. They read their
//! settings from the environment when a reference of theirs is first resolved.

use std::path::Path;
use std::sync::LazyLock;

use base64::Engine as _;
use hushflow_crypto::MasterKey;
use hushflow_secret_stores::Stores;
use hushflow_secret_stores::custody::{self, Custodian};
use hushflow_secrets::{KeyProvider, Redactor, SecretProviders, SecretResolver, SecretValue};

use crate::{Error, Result};

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

/// The file in the state directory holding the data key that a custodian wraps (see
/// [`master_key`]).
pub const WRAPPED_MASTER_KEY_FILE: &str = "master-key.wrapped";

/// The master key that the resolved master-key secret `value` stands for: either base64 key
/// material, or a custodian, `vault-transit:KEYNAME` or `aws-kms:KEY_ID`, that wraps a random data
/// key kept in `state_dir`'s [`WRAPPED_MASTER_KEY_FILE`] (made on first use), so that no master
/// key sits on disk or in the environment. The data key is registered with `redactor`.
pub fn master_key(value: &SecretValue, state_dir: &Path, redactor: &Redactor) -> Result<MasterKey> {
    let custodian = match value.expose_str().ok().and_then(Custodian::parse) {
        None => return MasterKey::from_base64(value).map_err(Error::invalid),
        Some(parsed) => parsed.map_err(|e| Error::invalid(format!("the master key: {e}")))?,
    };
    let path = state_dir.join(WRAPPED_MASTER_KEY_FILE);
    let data_key = custody::open_or_create(&custodian, &STORES, &path)
        .map_err(|e| Error::failed(format!("the master key's custodian: {e}")))?;
    let encoded = SecretValue::new(
        base64::engine::general_purpose::STANDARD
            .encode(data_key.expose())
            .into_bytes(),
    );
    redactor.register(&data_key);
    redactor.register(&encoded);
    MasterKey::from_base64(&encoded).map_err(Error::invalid)
}

/// Re-encrypts the wrapped data key of `state_dir` under the newest version of its wrapping key
/// (after that key was rotated), leaving the data key, and so the keyring, as they are.
pub fn rewrap_master_key(value: &SecretValue, state_dir: &Path) -> Result<()> {
    let custodian = match value.expose_str().ok().and_then(Custodian::parse) {
        Some(parsed) => parsed.map_err(|e| Error::invalid(format!("the master key: {e}")))?,
        None => {
            return Err(Error::invalid(
                "the master key is key material, not a custodian (vault-transit:KEYNAME or \
                 aws-kms:KEY_ID): there is nothing to rewrap",
            ));
        }
    };
    custody::rewrap_file(
        &custodian,
        &STORES,
        &state_dir.join(WRAPPED_MASTER_KEY_FILE),
    )
    .map_err(|e| Error::failed(format!("rewrapping the master key: {e}")))
}
