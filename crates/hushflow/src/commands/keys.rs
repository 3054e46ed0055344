//! `hushflow keys` and `hushflow detokenize`: every use of key material is audited (who, which
//! key name and id, never material).
//!
//! A new key or version, and the sealing of a plain keyring, are recorded *before* the keyring
//! file that holds them is put in place: a process killed at any moment leaves no key without
//! its audit record (at worst a record of a change that never landed, which `keys list` shows
//! absent). A change that fails after its record was written gets a second record saying so.

use super::{Exit, Failure, Session, create_private, failure, invalid, resolver, secret_providers};
use crate::cli::{CreateKeyArgs, KeyName, KeyPurpose, KeysCommand, OutFile, RotateKeyArgs};
use hushflow_crypto::{
    Keyring, KeyringError, MasterKey, Purpose, Sealing, SubjectHandle, SubjectRoot, Tokenizer,
    parse_subject_key_id, token_key_id,
};
use hushflow_secrets::SecretValue;
use hushflow_state::subjects::SubjectStore;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// All or nothing: a single token that does not open prints no plaintext at all, so a caller
/// never pairs the wrong plaintext with a token. A keyring key opens tokens of every version it
/// has had (each token names the version's id).
pub(super) fn detokenize(
    session: &Session<'_>,
    key: &str,
    tokens: Vec<String>,
) -> Result<Exit, Failure> {
    let out = session.out;
    let reference = secret_providers(None).parse(key).map_err(invalid)?;
    let keyring = session.keyring()?;
    // Every version of the key, oldest first, as (id, material).
    let versions: Vec<(String, SecretValue)> = match reference.as_keyring() {
        Some(name) => keyring
            .versions(name)
            .map_err(invalid)?
            .into_iter()
            .map(|(info, material)| (info.id, material))
            .collect(),
        None => {
            let resolver = resolver(&out.redactor, Some(&keyring));
            let resolved = hushflow_spec::plan::resolve_key(&reference, &resolver, &keyring)
                .map_err(invalid)?;
            vec![(resolved.id, resolved.material)]
        }
    };
    let tokenizers: Vec<Tokenizer> = versions
        .iter()
        .map(|(id, material)| Tokenizer::new(id, material))
        .collect::<Result<_, _>>()
        .map_err(invalid)?;
    // Opened only if a token was made with a subject's own key.
    let mut subjects: Option<SubjectStore> = None;
    let tokens = if tokens.is_empty() {
        std::io::stdin()
            .lines()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| failure(format!("reading tokens from stdin: {e}")))?
            .into_iter()
            .filter(|t| !t.trim().is_empty())
            .collect()
    } else {
        tokens
    };
    let mut plaintexts = Vec::with_capacity(tokens.len());
    let mut failed = Vec::new();
    for (n, token) in tokens.iter().enumerate() {
        let id = token_key_id(token).unwrap_or_default();
        if let Some((root_id, handle)) = parse_subject_key_id(id) {
            let store = match &mut subjects {
                Some(s) => s,
                None => subjects
                    .insert(SubjectStore::open(session.state.root(), Vec::new()).map_err(failure)?),
            };
            match subject_detokenize(store, &versions, root_id, &handle, token) {
                Ok(p) => plaintexts.push(p),
                Err(e) => failed.push(format!("token {}: {e}", n + 1)),
            }
            continue;
        }
        // The version the token names, else the current one (whose error then says why).
        let tokenizer = token_key_id(token)
            .and_then(|id| tokenizers.iter().find(|t| t.key_id() == id))
            .or(tokenizers.last());
        let Some(tokenizer) = tokenizer else {
            return Err(invalid(format!("key {reference} has no versions")));
        };
        match tokenizer.detokenize(token) {
            Ok(p) => plaintexts.push(p),
            // Name the token by position: the token itself is a pseudonym of personal data.
            Err(e) => failed.push(format!("token {}: {e}", n + 1)),
        }
    }
    let counts = BTreeMap::from([
        ("tokens".to_string(), tokens.len() as u64),
        ("failed".to_string(), failed.len() as u64),
    ]);
    let outcome = if failed.is_empty() { "ok" } else { "failure" };
    session.audit("detokenize", format!("key {reference}"), counts, outcome)?;
    if !failed.is_empty() {
        return Err(failure(format!("nothing printed: {}", failed.join("; "))));
    }
    for p in plaintexts {
        out.line(String::from_utf8_lossy(&p));
    }
    Ok(Exit::Success)
}

/// Reverses a token made with a subject's own key: found by its handle, unwrapped under the
/// root key version the token names.
fn subject_detokenize(
    store: &SubjectStore,
    versions: &[(String, SecretValue)],
    root_id: &str,
    handle: &SubjectHandle,
    token: &str,
) -> Result<Vec<u8>, String> {
    let (id, material) = versions
        .iter()
        .find(|(id, _)| id == root_id)
        .ok_or_else(|| format!("it was made under key id {root_id}, not this key"))?;
    let root = SubjectRoot::new(id, material);
    let wrapped = store
        .wrapped(root_id, handle)
        .map_err(|e| e.to_string())?
        .ok_or("its subject was erased (or never had a key in this state directory)")?;
    let key = root
        .unwrap_key(handle, &wrapped)
        .map_err(|e| e.to_string())?;
    let tokenizer = root.tokenizer(handle, &key).map_err(|e| e.to_string())?;
    tokenizer.detokenize(token).map_err(|e| e.to_string())
}

/// `hushflow erase --pipeline P --subject ID`: deletes the subject's keys under every version
/// of each per-subject tokenize key of the pipeline, so that its tokens can never be reversed.
pub(super) fn erase(
    session: &Session<'_>,
    pipeline: &Path,
    subject: &str,
) -> Result<Exit, Failure> {
    let super::run::Prepared {
        plan,
        keys,
        keyring,
        ..
    } = super::run::prepare(session, pipeline)?;
    let references = plan.per_subject_keys();
    if references.is_empty() {
        return Err(invalid(format!(
            "pipeline `{}` keeps no key per subject, so there is nothing to erase: its tokens \
             are reversed with the pipeline's key (add `per_subject = true` to a tokenize rule \
             for erasable tokens)",
            plan.name
        )));
    }
    let subject = subject.trim();
    if subject.is_empty() {
        return Err(invalid(
            "--subject is empty; give the record's key (the pipeline's `key` field)",
        ));
    }
    let mut roots = Vec::new();
    for reference in &references {
        match secret_providers(None)
            .parse(reference)
            .map_err(invalid)?
            .as_keyring()
        {
            Some(name) => {
                for (info, material) in keyring.versions(name).map_err(invalid)? {
                    roots.push(SubjectRoot::new(&info.id, &material));
                }
            }
            None => {
                let k = keys
                    .get(*reference)
                    .ok_or_else(|| invalid(format!("key {reference} did not resolve")))?;
                roots.push(SubjectRoot::new(&k.id, &k.material));
            }
        }
    }
    let store = SubjectStore::open(session.state.root(), Vec::new()).map_err(failure)?;
    let erased = store.erase(&roots, subject).map_err(failure)?;
    // The audit names the subject by its handle (a keyed pseudonym), never by its id.
    let handle = roots
        .first()
        .map(|r| hushflow_crypto::handle_hex(&r.handle(subject.as_bytes())))
        .unwrap_or_default();
    session.audit(
        "erase",
        format!(
            "pipeline {}: subject handle {handle} under {}",
            plan.name,
            references.join(", ")
        ),
        BTreeMap::from([("keys_erased".to_string(), erased as u64)]),
        "ok",
    )?;
    session.out.line(if erased == 0 {
        "no key of this subject was found (never tokenized here, or erased before); nothing changed".to_string()
    } else {
        format!(
            "erased {erased} subject key(s): the subject's tokens under {} can no longer be reversed",
            references.join(", ")
        )
    });
    Ok(Exit::Success)
}

pub(super) fn keys(session: &Session<'_>, cmd: KeysCommand) -> Result<Exit, Failure> {
    let out = session.out;
    let audited =
        |action: &str, detail: String| session.audit(action, detail, BTreeMap::new(), "ok");
    if let KeysCommand::NewMasterKey = cmd {
        let key = MasterKey::generate_base64().map_err(failure)?;
        out.note(
            "a new master key: keep it in a secret store and give it to hushflow as \
             HUSHFLOW_MASTER_KEY; a keyring sealed with it cannot be opened without it",
        );
        // Printed directly: it is registered nowhere, and is meant to be seen this once.
        println!("{}", String::from_utf8_lossy(key.expose()));
        return Ok(Exit::Success);
    }
    if let KeysCommand::Seal = cmd {
        return seal(session);
    }
    if let KeysCommand::RewrapMasterKey = cmd {
        return rewrap_master_key(session);
    }
    let mut keyring = session.keyring()?;
    match cmd {
        KeysCommand::NewMasterKey | KeysCommand::Seal | KeysCommand::RewrapMasterKey => {}
        KeysCommand::Create(CreateKeyArgs {
            name,
            purpose,
            if_missing,
        }) => {
            if if_missing && keyring.contains(&name) {
                out.line(format!("key {name} exists; left as it is"));
                return Ok(Exit::Success);
            }
            let purpose = purpose.map(|p| match p {
                KeyPurpose::Hash => Purpose::Hash,
                KeyPurpose::Tokenize => Purpose::Tokenize,
            });
            let mut recorded = None;
            let result = keyring.create_with_intent(&name, purpose, |info| {
                let detail = format!("key {} id {}", info.name, info.id);
                record_intent(session, "keys.create", detail, &mut recorded)
            });
            let info = committed(session, "keys.create", result, recorded)?;
            out.line(format!("created key {} (id {})", info.name, info.id));
        }
        KeysCommand::Rotate(RotateKeyArgs {
            key: KeyName { name },
            i_understand_hashes_change,
        }) => {
            let note = if i_understand_hashes_change {
                ", hashes change"
            } else {
                ""
            };
            let mut recorded = None;
            let result = keyring.rotate_with_intent(&name, i_understand_hashes_change, |info| {
                let detail = format!(
                    "key {} version {} id {}{note}",
                    info.name, info.version, info.id
                );
                record_intent(session, "keys.rotate", detail, &mut recorded)
            });
            let info = committed(session, "keys.rotate", result, recorded)?;
            out.line(format!(
                "key {} is now version {} (id {}); earlier versions still detokenize",
                info.name, info.version, info.id
            ));
            // Rotating a tokenize key is routine (old tokens still detokenize), so it needs no
            // flag; but a token column used as a join key splits at the rotation: say so.
            if info.purpose == Some(hushflow_crypto::Purpose::Tokenize) {
                out.note(format!(
                    "warning: from now on {} makes new tokens for values tokenized before: a \
                     token column used to join or deduplicate across runs no longer matches \
                     earlier rows; join on detokenized values, or re-run the sync in full so \
                     every row carries the new version's token",
                    info.name
                ));
            }
        }
        KeysCommand::Export(KeyName { name }) => {
            let (info, material) = keyring.get(&name).map_err(invalid)?;
            audited(
                "keys.export",
                format!("key {} version {} id {}", info.name, info.version, info.id),
            )?;
            out.note(format!(
                "warning: this is the secret key {name}; whoever holds it can compute and reverse its pseudonyms"
            ));
            // The one place key material is printed, on purpose: not through `out`, whose redactor
            // would rightly mask it if it were registered.
            use base64::Engine as _;
            println!(
                "{}",
                base64::engine::general_purpose::STANDARD.encode(material.expose())
            );
        }
        KeysCommand::ExportIdentity(OutFile { out: file }) => {
            let identity = keyring.state_identity().map_err(failure)?;
            let recipient = identity.recipient();
            let secret = identity.secret();
            audited(
                "keys.export-identity",
                format!("identity of recipient {recipient}"),
            )?;
            out.note(format!(
                "warning: this identity opens every quarantined and staged file of {}",
                session.state.root().display()
            ));
            match file {
                Some(path) => {
                    let mut f = create_private(&path)?;
                    let write = |f: &mut std::fs::File| -> std::io::Result<()> {
                        writeln!(f, "# public key: {recipient}")?;
                        f.write_all(secret.expose())?;
                        f.write_all(b"\n")?;
                        f.sync_all()
                    };
                    write(&mut f).map_err(|e| failure(format!("{}: {e}", path.display())))?;
                    out.line(format!(
                        "wrote the identity of {recipient} to {} (mode 0600)",
                        path.display()
                    ));
                }
                None => println!("{}", String::from_utf8_lossy(secret.expose())),
            }
        }
        KeysCommand::Import(KeyName { name }) => {
            let value = read_credential()?;
            let mut recorded = None;
            let result = keyring.put_credential_with_intent(&name, &value, |info| {
                let detail = format!(
                    "credential {} version {} id {}",
                    info.name, info.version, info.id
                );
                record_intent(session, "keys.import", detail, &mut recorded)
            });
            let info = committed(session, "keys.import", result, recorded)?;
            out.line(format!(
                "credential {} stored (version {}); pipelines name it keyring:{}",
                info.name, info.version, info.name
            ));
        }
        KeysCommand::List => {
            let keys = keyring.list();
            audited("keys.list", format!("{} key versions", keys.len()))?;
            if keys.is_empty() {
                out.line("no keys; create one with `hushflow keys create NAME`");
            }
            for k in keys {
                let purpose = match k.purpose {
                    Some(Purpose::Hash) => "hash",
                    Some(Purpose::Tokenize) => "tokenize",
                    Some(Purpose::Credential) => "credential",
                    None => "-",
                };
                out.line(format!(
                    "{:<24} v{:<3} {}  {:<8}  {}",
                    k.name, k.version, k.id, purpose, k.created_at
                ));
            }
        }
    }
    Ok(Exit::Success)
}

/// A credential from stdin: one line (its line break dropped), never from the command line,
/// where other users of the machine could read it.
fn read_credential() -> Result<SecretValue, Failure> {
    use std::io::Read as _;
    // Moved, not copied, into the SecretValue, which wipes it when dropped.
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(hushflow_crypto::MAX_CREDENTIAL_LEN as u64 + 2)
        .read_to_end(&mut bytes)
        .map_err(|e| failure(format!("could not read the credential from stdin: {e}")))?;
    while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        bytes.pop();
    }
    if bytes.is_empty() {
        return Err(invalid(
            "give the credential on stdin, e.g. `hushflow keys import NAME < token.txt`",
        ));
    }
    Ok(SecretValue::new(bytes))
}

/// Why a keyring change with an audit record written ahead did not happen.
enum Step {
    /// The keyring refused it or could not be saved.
    Keyring(KeyringError),
    /// Its audit record could not be written (so nothing changed), or it was refused.
    Stopped(Failure),
}

impl From<KeyringError> for Step {
    fn from(e: KeyringError) -> Step {
        Step::Keyring(e)
    }
}

/// Writes the audit record of a change about to be committed, and remembers its detail.
fn record_intent(
    session: &Session<'_>,
    action: &str,
    detail: String,
    recorded: &mut Option<String>,
) -> Result<(), Step> {
    session
        .audit(action, detail.clone(), BTreeMap::new(), "ok")
        .map_err(Step::Stopped)?;
    *recorded = Some(detail);
    Ok(())
}

/// The outcome of a change whose record was written ahead; if the record was written but the
/// change failed after all, a second record says it was not saved.
fn committed<T>(
    session: &Session<'_>,
    action: &str,
    result: Result<T, Step>,
    recorded: Option<String>,
) -> Result<T, Failure> {
    match result {
        Ok(value) => Ok(value),
        Err(Step::Stopped(f)) => Err(f),
        Err(Step::Keyring(e)) => {
            if let Some(detail) = recorded {
                // The category only: the error names paths, never material, but stays out.
                session.audit(
                    action,
                    format!("{detail}: not saved (the keyring file was not replaced)"),
                    BTreeMap::new(),
                    "failure",
                )?;
            }
            Err(invalid(e))
        }
    }
}

/// `hushflow keys seal`: seals a plain keyring under the master key, once and audited. Refused
/// when the audit log shows that this state directory's keyring was sealed before: a plain
/// keyring now means it was replaced, and sealing it would make the replacement's keys trusted.
fn seal(session: &Session<'_>) -> Result<Exit, Failure> {
    let out = session.out;
    let Some(master) = session.master_key()? else {
        return Err(invalid(
            "`keys seal` seals the keyring under the master key, and none was given: set \
             HUSHFLOW_MASTER_KEY or pass --master-key (make one with `hushflow keys new-master-key`)",
        ));
    };
    let state = session.state.root();
    let mut recorded = None;
    let result = Keyring::seal_with_intent(state, master, || {
        if let Some(seq) = earlier_seal(session).map_err(Step::Stopped)? {
            let refused = "refused: keyring.json is not sealed, but it was sealed before";
            session
                .audit("keys.seal", refused.into(), BTreeMap::new(), "refused")
                .map_err(Step::Stopped)?;
            return Err(Step::Stopped(failure(format!(
                "the keyring in {} was sealed before (audit record {seq}), so a plain keyring \
                 there now means it was replaced: it is not sealed. Restore keyring.json from a \
                 backup, and do not use the keys of this one",
                state.display()
            ))));
        }
        let detail = "sealed keyring.json under the master key".to_string();
        record_intent(session, "keys.seal", detail, &mut recorded)
    });
    match committed(session, "keys.seal", result, recorded)? {
        (keyring, Sealing::Sealed) => out.line(format!(
            "sealed {} under the master key: from now on it opens only with it",
            keyring.path().display()
        )),
        (keyring, Sealing::AlreadySealed) => {
            session.audit(
                "keys.seal",
                "already sealed; nothing changed".into(),
                BTreeMap::new(),
                "ok",
            )?;
            out.line(format!(
                "{} is already sealed under this master key; nothing changed",
                keyring.path().display()
            ));
        }
    }
    Ok(Exit::Success)
}

/// `hushflow keys rewrap-master-key`: the wrapped data key re-encrypted under the custodian's
/// newest key version, then checked by opening the keyring with it; audited.
fn rewrap_master_key(session: &Session<'_>) -> Result<Exit, Failure> {
    let Some(reference) = session.master_key.as_ref() else {
        return Err(invalid(
            "`keys rewrap-master-key` needs a master key held by a custodian: set \
             HUSHFLOW_MASTER_KEY to vault-transit:KEYNAME or aws-kms:KEY_ID",
        ));
    };
    let value = super::resolver(&session.out.redactor, None)
        .resolve(reference)
        .map_err(invalid)?;
    // The custodian is not printed or audited: it is the value of the master-key secret.
    hushflow_app::secrets::rewrap_master_key(&value, session.state.root())?;
    // The rewrapped key must still open the keyring.
    session.keyring()?;
    session.audit(
        "keys.rewrap-master-key",
        "rewrapped the data key under the newest version of its wrapping key".into(),
        BTreeMap::new(),
        "ok",
    )?;
    session.out.line(
        "rewrapped the data key under the newest version of its wrapping key; the keyring is \
         unchanged",
    );
    Ok(Exit::Success)
}

/// The audit record of this state directory's last successful seal, if any.
fn earlier_seal(session: &Session<'_>) -> Result<Option<u64>, Failure> {
    let audit = session.state.audit_log().map_err(failure)?;
    let records = audit.list().map_err(failure)?;
    Ok(records
        .iter()
        .rev()
        .find(|r| r.action == "keys.seal" && r.outcome == "ok")
        .map(|r| r.seq))
}
