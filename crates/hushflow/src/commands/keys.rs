//! `hushflow keys` and `hushflow detokenize`: every use of key material is audited (who, which
//! key name and id, never material).

use super::{Exit, Failure, Session, create_private, failure, invalid};
use crate::cli::{KeyPurpose, KeysCommand};
use hushflow_crypto::{MasterKey, Purpose, Tokenizer, token_key_id};
use hushflow_secrets::{SecretRef, SecretResolver};
use std::collections::BTreeMap;
use std::io::Write;

/// All or nothing: a single token that does not open prints no plaintext at all, so a caller
/// never pairs the wrong plaintext with a token. A keyring key opens tokens of every version it
/// has had (each token names the version's id).
pub(super) fn detokenize(
    session: &Session<'_>,
    key: &str,
    tokens: Vec<String>,
) -> Result<Exit, Failure> {
    let out = session.out;
    let reference = SecretRef::parse(key).map_err(invalid)?;
    let keyring = session.keyring()?;
    let tokenizers: Vec<Tokenizer> = match &reference {
        SecretRef::Keyring(name) => keyring
            .versions(name)
            .map_err(invalid)?
            .iter()
            .map(|(info, material)| Tokenizer::new(&info.id, material))
            .collect::<Result<_, _>>()
            .map_err(invalid)?,
        _ => {
            let resolver = SecretResolver::new(out.redactor.clone(), Some(&keyring));
            let resolved = hushflow_engine::plan::resolve_key(&reference, &resolver, &keyring)
                .map_err(invalid)?;
            vec![Tokenizer::new(&resolved.id, &resolved.material).map_err(invalid)?]
        }
    };
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
    let mut keyring = session.keyring()?;
    match cmd {
        KeysCommand::NewMasterKey => {}
        KeysCommand::Create {
            name,
            purpose,
            if_missing,
        } => {
            if if_missing && keyring.contains(&name) {
                out.line(format!("key {name} exists; left as it is"));
                return Ok(Exit::Success);
            }
            let purpose = purpose.map(|p| match p {
                KeyPurpose::Hash => Purpose::Hash,
                KeyPurpose::Tokenize => Purpose::Tokenize,
            });
            let info = keyring.create_for(&name, purpose).map_err(invalid)?;
            audited("keys.create", format!("key {} id {}", info.name, info.id))?;
            out.line(format!("created key {} (id {})", info.name, info.id));
        }
        KeysCommand::Rotate {
            name,
            i_understand_hashes_change,
        } => {
            let info = keyring
                .rotate(&name, i_understand_hashes_change)
                .map_err(invalid)?;
            let note = if i_understand_hashes_change {
                ", hashes change"
            } else {
                ""
            };
            audited(
                "keys.rotate",
                format!(
                    "key {} version {} id {}{note}",
                    info.name, info.version, info.id
                ),
            )?;
            out.line(format!(
                "key {} is now version {} (id {}); earlier versions still detokenize",
                info.name, info.version, info.id
            ));
        }
        KeysCommand::Export { name } => {
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
        KeysCommand::ExportIdentity { out: file } => {
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
