//! The session every action runs in: the state directory, the master key's reference, the
//! redactor every resolved secret is registered with, and where the metadata store is.

use crate::{Actor, Error, Result};
use hushflow_scheduler::store::{Store, StoreConfig};
use hushflow_scheduler::{
    Clock, DefinitionPublicKey, DefinitionSigner, DefinitionTrust, SystemClock,
};
use hushflow_secrets::{KeyProvider, Redactor, SecretRef};
use hushflow_state::StateDir;
use hushflow_state::audit::NewRecord;
use std::collections::BTreeMap;

/// What every action runs in: the state directory, the master key's reference, the redactor and
/// where the metadata store is. Built once by a front end and handed to each action; a clone
/// shares the redactor (and so what it masks).
#[derive(Clone)]
pub struct Session {
    state: StateDir,
    master_key: Option<SecretRef>,
    redactor: Redactor,
    /// The metadata store's reference as given (a secret reference holding a postgres:// URL);
    /// `None` for SQLite in the state directory. Resolved when an action needs the store.
    metadata: Option<String>,
    /// The reference of the key that signs definitions; `None`: the state directory's.
    definition_key: Option<String>,
    /// The public keys workers trust (`ed25519:…`, comma-separated); `None`: the signing key's.
    definition_public_keys: Option<String>,
}

impl Session {
    /// A session over an opened state directory. Secrets resolved in it are registered with
    /// `redactor`, so whatever the front end prints through it is masked.
    pub fn new(state: StateDir, redactor: Redactor) -> Session {
        Session {
            state,
            master_key: None,
            redactor,
            metadata: None,
            definition_key: None,
            definition_public_keys: None,
        }
    }

    /// The key that signs the definitions this session registers (a secret reference:
    /// `env:`, `file:`, `keyring:`), and the public keys the workers it runs trust. Without
    /// them, the state directory's key pair (made on first use) does both.
    pub fn with_definition_keys(
        mut self,
        signing: Option<String>,
        trusted: Option<String>,
    ) -> Session {
        self.definition_key = signing;
        self.definition_public_keys = trusted;
        self
    }

    /// The file of the state directory's definition signing key.
    pub fn definition_key_file(&self) -> std::path::PathBuf {
        self.state.root().join(crate::definition_keys::KEY_FILE)
    }

    /// Whether a signing key was named (`--definition-key`), rather than the state directory's.
    pub fn definition_key_reference(&self) -> Option<&str> {
        self.definition_key.as_deref()
    }

    /// The key that signs definitions when they are registered: the one `--definition-key`
    /// names, or the state directory's (made now if it has none).
    pub fn definition_signer(&self) -> Result<DefinitionSigner> {
        let Some(reference) = &self.definition_key else {
            return crate::definition_keys::load_or_create(&self.definition_key_file());
        };
        let bad = |e: &dyn std::fmt::Display| {
            Error::invalid(format!(
                "--definition-key: {e}; give a secret reference (env:NAME, file:PATH or \
                 keyring:NAME) holding a key made by `hushflow db definition-key create`"
            ))
        };
        let parsed = crate::secrets::providers(None)
            .parse(reference)
            .map_err(|e| bad(&e))?;
        let keyring = match parsed.scheme() {
            "keyring" => Some(self.keyring()?),
            _ => None,
        };
        let resolver = crate::secrets::resolver(
            &self.redactor,
            keyring.as_ref().map(|k| k as &dyn KeyProvider),
        );
        let value = resolver.resolve(&parsed).map_err(|e| bad(&e))?;
        DefinitionSigner::from_secret(value.expose()).map_err(|e| bad(&e))
    }

    /// The definitions the workers of this session execute: those signed by one of the keys
    /// `--definition-public-key` lists, or else by this session's signing key.
    pub fn definition_trust(&self) -> Result<DefinitionTrust> {
        let keys = match &self.definition_public_keys {
            Some(list) => DefinitionPublicKey::parse_list(list)
                .map_err(|e| Error::invalid(format!("--definition-public-key: {e}")))?,
            None => vec![self.definition_signer()?.public_key()],
        };
        Ok(DefinitionTrust::SignedBy(keys))
    }

    /// The keyring, sealed under the master key if there is one.
    pub(crate) fn keyring(&self) -> Result<hushflow_crypto::Keyring> {
        let master = match &self.master_key {
            Some(reference) => {
                let value = crate::secrets::resolver(&self.redactor, None)
                    .resolve(reference)
                    .map_err(Error::invalid)?;
                Some(crate::secrets::master_key(
                    &value,
                    self.state.root(),
                    &self.redactor,
                )?)
            }
            None => None,
        };
        hushflow_crypto::Keyring::open_with(self.state.root(), master).map_err(Error::failed)
    }

    /// The reference of the master key the keyring is sealed under.
    pub fn with_master_key(mut self, master_key: Option<SecretRef>) -> Session {
        self.master_key = master_key;
        self
    }

    /// Where the metadata store is: a secret reference (`env:NAME`, `file:PATH`) holding a
    /// postgres:// URL; without one, SQLite in the state directory (`metadata.db`).
    pub fn with_metadata(mut self, metadata: Option<String>) -> Session {
        self.metadata = metadata;
        self
    }

    /// The directories no pipeline path may lead into (the state directory), for every load of
    /// a pipeline file.
    pub fn protected(&self) -> hushflow_spec::Protected {
        hushflow_spec::Protected::state_dir(self.state.root())
    }

    /// The state directory actions read and write.
    pub fn state(&self) -> &StateDir {
        &self.state
    }

    /// The reference of the master key the keyring is sealed under, if one was given.
    pub fn master_key(&self) -> Option<&SecretRef> {
        self.master_key.as_ref()
    }

    /// The redactor every secret resolved in this session is registered with.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Where the metadata lives, its URL resolved (and registered with the redactor).
    pub fn store_config(&self) -> Result<StoreConfig> {
        match &self.metadata {
            None => Ok(StoreConfig::Sqlite(self.state.root().join("metadata.db"))),
            Some(reference) => {
                let resolver = crate::secrets::resolver(&self.redactor, None);
                let reference = resolver.parse(reference).map_err(|e| {
                    Error::invalid(format!(
                        "--metadata: {e}; give a secret reference (env:NAME or file:PATH) holding the postgres:// URL"
                    ))
                })?;
                let url = resolver.resolve(&reference).map_err(Error::invalid)?;
                // The resolver masks the URL and its password from here on.
                Ok(StoreConfig::Postgres(url))
            }
        }
    }

    /// Opens the metadata store (SQLite migrates itself; PostgreSQL must be migrated).
    pub fn open_store(&self) -> Result<Store> {
        open_store(&self.store_config()?)
    }

    /// Records a control action on a pipeline (trigger, backfill, pause) in the audit log.
    pub fn audit_pipeline(
        &self,
        actor: &Actor,
        action: &str,
        pipeline: &str,
        detail: String,
    ) -> Result<()> {
        self.audit_task(actor, action, pipeline, detail, BTreeMap::new(), "success")
    }

    /// An audit record about a pipeline, with counts and an outcome.
    pub fn audit_task(
        &self,
        actor: &Actor,
        action: &str,
        pipeline: &str,
        detail: String,
        counts: BTreeMap<String, u64>,
        outcome: &str,
    ) -> Result<()> {
        self.append_audit(actor, action, Some(pipeline), detail, counts, outcome)
    }

    /// Records a privileged action in the audit log: key operations, detokenization, exports.
    pub fn audit(
        &self,
        actor: &Actor,
        action: &str,
        detail: String,
        counts: BTreeMap<String, u64>,
        outcome: &str,
    ) -> Result<()> {
        self.append_audit(actor, action, None, detail, counts, outcome)
    }

    fn append_audit(
        &self,
        actor: &Actor,
        action: &str,
        pipeline: Option<&str>,
        detail: String,
        counts: BTreeMap<String, u64>,
        outcome: &str,
    ) -> Result<()> {
        let mut audit = self.state.audit_log().map_err(Error::failed)?;
        audit
            .append(NewRecord {
                actor: actor.audit_name(),
                action: action.into(),
                pipeline: pipeline.map(str::to_string),
                policy_fingerprint: None,
                counts,
                outcome: outcome.into(),
                detail: Some(detail),
            })
            .map_err(Error::failed)?;
        Ok(())
    }
}

/// Opens the metadata store a configuration names, now.
pub(crate) fn open_store(config: &StoreConfig) -> Result<Store> {
    config.open(SystemClock.now()).map_err(Error::failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ActorKind;

    fn session(dir: &tempfile::TempDir) -> Session {
        Session::new(
            StateDir::open(dir.path().join("state")).unwrap(),
            Redactor::new(),
        )
    }

    #[test]
    fn audit_records_carry_their_actor() {
        let dir = tempfile::tempdir().unwrap();
        let s = session(&dir);
        s.audit_pipeline(&Actor::api_user("ada"), "pause", "nightly", "paused".into())
            .unwrap();
        s.audit(
            &Actor::new(ActorKind::OsUser, "root"),
            "keys.list",
            "2 key versions".into(),
            BTreeMap::new(),
            "ok",
        )
        .unwrap();
        let records = s.state().audit_log().unwrap().list().unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].actor, "api-user:ada");
        assert_eq!(records[0].pipeline.as_deref(), Some("nightly"));
        assert_eq!(records[0].outcome, "success");
        assert_eq!(records[1].actor, "root");
        assert_eq!(records[1].pipeline, None);
    }

    #[test]
    fn the_metadata_store_defaults_to_sqlite_in_the_state_directory() {
        let dir = tempfile::tempdir().unwrap();
        let s = session(&dir);
        match s.store_config().unwrap() {
            StoreConfig::Sqlite(path) => assert_eq!(path, s.state().root().join("metadata.db")),
            other => panic!("{other:?}"),
        }
        let bad = session(&dir).with_metadata(Some("postgres://u:p@h/db".into()));
        let e = bad.store_config().unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Invalid);
        assert!(!e.message.contains("u:p"), "{e}");
    }
}
