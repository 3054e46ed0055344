//! The secret stores this build knows, registered in one place so that validation, resolution
//! and every action agree on the schemes: the built-in `env:`, `file:` and `keyring:`, and the
//! networked stores of `hushflow-secret-stores` that this build's features enable (`vault:`
//! with `vault`, `aws-sm:` with `aws`), and `conn:`, which looks a named connection up in the
//! environment and then in those stores.
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
use hushflow_secrets::{
    KeyProvider, Redactor, SecretError, SecretProviders, SecretResolver, SecretValue,
};

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

/// Whether one secret reference of a pipeline resolves, as `hushflow check` reports it. Holds
/// where the reference is, the reference (configuration, not secret) and the reason it failed;
/// never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceCheck {
    /// The key that holds the reference: `policy.fields.email.key`, `source.url`.
    pub at: String,
    /// The reference as written (`vault:secret/crm#token`), or a placeholder when it does not
    /// parse (the text may then be a pasted secret).
    pub reference: String,
    /// `ok`, or the reason it failed: `not found`, `permission denied`, `sealed`,
    /// `expired token`, `unreachable`, `not configured`, `insecure`, `invalid`, `empty`,
    /// `unexpected response`.
    pub status: &'static str,
    /// The error, naming the reference and the reason (`None` when it resolved).
    pub error: Option<String>,
}

impl ReferenceCheck {
    /// Whether the reference resolved.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Resolves every reference of `references` (where it is, and its text: as
/// [`hushflow_spec::Plan::secret_references`] lists them) through `resolver`, so each value is
/// registered with its redactor and dropped, wiped, right away, and says for each whether it
/// resolved. A `file:` reference is relative to `base`, the pipeline file's directory.
pub fn check_references(
    references: Vec<(String, String)>,
    base: &Path,
    resolver: &SecretResolver<'_>,
) -> Vec<ReferenceCheck> {
    references
        .into_iter()
        .map(|(at, text)| {
            let parsed = match resolver.parse(&text) {
                Ok(r) => r.relative_to(base),
                Err(e) => {
                    return ReferenceCheck {
                        at,
                        reference: "(not shown: it does not parse)".into(),
                        status: "invalid",
                        error: Some(e.to_string()),
                    };
                }
            };
            match resolver.resolve(&parsed) {
                Ok(_) => ReferenceCheck {
                    at,
                    reference: text,
                    status: "ok",
                    error: None,
                },
                Err(e) => ReferenceCheck {
                    at,
                    reference: text,
                    status: reason(&e),
                    error: Some(e.to_string()),
                },
            }
        })
        .collect()
}

/// The reason a resolution failed, in one of the words [`ReferenceCheck::status`] lists.
pub fn reason(e: &SecretError) -> &'static str {
    use hushflow_secret_stores::{Reason, StoreError};
    match e {
        SecretError::Provider { source, .. } => match source.downcast_ref::<StoreError>() {
            Some(s) => match s.reason {
                Reason::NotFound => "not found",
                Reason::PermissionDenied => "permission denied",
                Reason::Sealed => "sealed",
                Reason::ExpiredToken => "expired token",
                Reason::Unreachable => "unreachable",
                Reason::NotConfigured => "not configured",
                Reason::Insecure => "insecure",
                Reason::BadReference => "invalid",
                _ => "unexpected response",
            },
            None => "unexpected response",
        },
        SecretError::EnvMissing { .. } => "not found",
        SecretError::FileRead { source, .. } => match source.kind() {
            std::io::ErrorKind::NotFound => "not found",
            std::io::ErrorKind::PermissionDenied => "permission denied",
            _ => "unreachable",
        },
        SecretError::FilePermissions { .. } => "insecure",
        SecretError::Empty { .. } => "empty",
        SecretError::NoKeyring { .. } => "not configured",
        SecretError::KeyProvider { .. } => "not found",
        _ => "invalid",
    }
}

/// Saves a credential that its issuer rotated during a run (an OAuth refresh token) into the
/// sealed keyring, when the pipeline named it `keyring:NAME`, with an audit record first; any
/// other reference cannot be written, and the connector warns with the reason.
pub struct KeyringSaver {
    session: crate::Session,
    actor: crate::Actor,
}

impl KeyringSaver {
    /// Saves into `session`'s keyring, audited as `actor`.
    pub fn new(session: crate::Session, actor: crate::Actor) -> KeyringSaver {
        KeyringSaver { session, actor }
    }
}

/// Why a rotated credential was not saved: the keyring refused, or the audit record failed (and
/// then nothing changed).
enum SaveStep {
    Keyring(hushflow_crypto::KeyringError),
    Audit(Error),
}

impl From<hushflow_crypto::KeyringError> for SaveStep {
    fn from(e: hushflow_crypto::KeyringError) -> SaveStep {
        SaveStep::Keyring(e)
    }
}

impl hushflow_connectors::CredentialSaver for KeyringSaver {
    fn save(&self, reference: &str, value: &SecretValue) -> std::result::Result<(), String> {
        let parsed = providers(None)
            .parse(reference)
            .map_err(|e| e.to_string())?;
        let Some(name) = parsed.as_keyring() else {
            return Err(format!(
                "only keyring: references are written back, and this is {}:",
                parsed.scheme()
            ));
        };
        let mut keyring = self.session.keyring().map_err(|e| e.to_string())?;
        let result = keyring.put_credential_with_intent(name, value, |info| {
            self.session
                .audit(
                    &self.actor,
                    "keys.import",
                    format!(
                        "credential {} version {} id {} (rotated by its issuer during a run)",
                        info.name, info.version, info.id
                    ),
                    std::collections::BTreeMap::new(),
                    "ok",
                )
                .map_err(SaveStep::Audit)
        });
        match result {
            Ok(_) => Ok(()),
            Err(SaveStep::Keyring(e)) => Err(e.to_string()),
            Err(SaveStep::Audit(e)) => Err(format!("the audit record could not be written: {e}")),
        }
    }
}
