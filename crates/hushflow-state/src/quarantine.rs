//! The run's quarantine: records that could not be processed, kept with their line and reason so
//! that nothing is lost. They are personal data, so the file is age-encrypted to the state
//! directory's identity (`<pipeline>-<run>.jsonl.age`, 0600 in the private state directory);
//! it is created only when a first record needs it. Decrypted, it is JSON lines:
//! `{"line", "code", "reason", "record"}` (or `"record_base64"` for bytes that are not UTF-8).
//! `record` is a JSON object for a row a later stage refused ([`holds_row`]: the fields the
//! source read), and a string for the source's own bytes (a CSV line, a broken JSON line).
//! Files written before rows were objects hold the row as a string of JSON; both read back.
//!
//! Beside it, the sidecar `<file>.meta.json` (0600, no record data) says which pipeline and run
//! the records came from, under which policy, how many there are by reason, and the SHA-256 of
//! the decrypted content; its `tag` ([`crate::seal`]) authenticates all of it. A replay reads a
//! quarantine only through [`read_authenticated`], so a file someone made with `age -r` (the
//! recipient is public) or a sidecar someone edited is refused.

use crate::atomic_file::AtomicFile;
use crate::seal::{self, StateMac};
use hushflow_core::RejectReason;
use hushflow_crypto::{AtRestError, EncryptedWriter, StateIdentity, StateRecipient};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The file name suffix of quarantine files.
pub const SUFFIX: &str = ".jsonl.age";

/// The sidecar's format: 2 added the origin, the content digest and the tag (format 1, with
/// no `format` member, named a pipeline file and was not authenticated).
const META_FORMAT: u32 = 2;
const META_DOMAIN: &str = "hushflow quarantine sidecar v2";

/// Where a quarantine's records come from: recorded (authenticated) in its sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The pipeline whose run set the records aside.
    pub pipeline: String,
    /// The run that set the records aside.
    pub run_id: String,
    /// The policy fingerprint of the run that set the records aside.
    pub policy_fingerprint: String,
}

/// Whether records quarantined for the reason `code` hold the row as the source read it (a
/// JSON object of its fields, which a replay reads by name) rather than the source's bytes.
pub fn holds_row(code: &str) -> bool {
    matches!(code, "missing_key" | "invalid_field" | "refused")
}

#[derive(Serialize)]
struct QuarantineLine {
    line: u64,
    code: &'static str,
    reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record_base64: Option<String>,
}

/// One quarantined record, read back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuarantinedRecord {
    /// The record's line (or record number) in its source.
    pub line: u64,
    /// The reject reason's code, such as `wrong_field_count`.
    pub code: String,
    /// The reject reason in words, naming no value.
    pub reason: String,
    /// The record when it is UTF-8: a JSON object of the fields the source read for a row a
    /// later stage refused ([`holds_row`]), else a string of the source's bytes (a row written
    /// by an older hushflow is a string holding its JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<serde_json::Value>,
    /// The record's bytes in base64, when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_base64: Option<String>,
}

impl QuarantinedRecord {
    /// The record's bytes as they were read (a row: its JSON object's text).
    pub fn raw(&self) -> Vec<u8> {
        match (&self.record, &self.record_base64) {
            (Some(serde_json::Value::String(text)), _) => text.as_bytes().to_vec(),
            (Some(row), _) => serde_json::to_vec(row).unwrap_or_default(),
            (None, Some(b64)) => {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap_or_default()
            }
            (None, None) => Vec::new(),
        }
    }
}

/// A run's quarantine, written as records come: each record is encrypted and written at once
/// (age buffers one 64 KiB chunk), so memory does not grow with the number of records.
pub struct Quarantine {
    path: PathBuf,
    recipient: StateRecipient,
    mac: StateMac,
    origin: Origin,
    file: Option<EncryptedWriter<BufWriter<File>>>,
    /// The SHA-256 of the plaintext written so far, for the sidecar.
    digest: sha2::Sha256,
    line: Vec<u8>,
    count: u64,
    reasons: BTreeMap<&'static str, u64>,
}

impl Quarantine {
    /// A quarantine that will write `path`, encrypted to `recipient`, if a record comes; its
    /// sidecar names `origin` and is tagged with `mac`.
    pub fn new(path: PathBuf, recipient: StateRecipient, mac: StateMac, origin: Origin) -> Self {
        Quarantine {
            path,
            recipient,
            mac,
            origin,
            file: None,
            digest: sha2::Digest::new(),
            line: Vec::new(),
            count: 0,
            reasons: BTreeMap::new(),
        }
    }

    /// The quarantine file's path (which exists only once a record was added).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many records were added so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Counts by reason code, for the summary and the audit log.
    pub fn reasons(&self) -> &BTreeMap<&'static str, u64> {
        &self.reasons
    }

    /// Adds the record read at `line`, set aside for `reason`, as its raw bytes; the first record
    /// creates the file.
    pub fn add(&mut self, line: u64, reason: &RejectReason, raw: &[u8]) -> io::Result<()> {
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                let f = OpenOptions::new()
                    .create_new(true)
                    .write(true)
                    .mode(0o600)
                    .open(&self.path)?;
                let writer = self
                    .recipient
                    .encrypt(BufWriter::new(f))
                    .map_err(io::Error::other)?;
                self.file.insert(writer)
            }
        };
        let (record, record_base64) = match std::str::from_utf8(raw) {
            // A row is written as the object it is, so that an export reads as JSON, not as
            // JSON quoted inside a string.
            Ok(text) if holds_row(reason.code()) => {
                let record = match serde_json::from_str::<serde_json::Value>(text) {
                    Ok(row @ serde_json::Value::Object(_)) => row,
                    _ => serde_json::Value::String(text.to_string()),
                };
                (Some(record), None)
            }
            Ok(text) => (Some(serde_json::Value::String(text.to_string())), None),
            Err(_) => {
                use base64::Engine as _;
                (
                    None,
                    Some(base64::engine::general_purpose::STANDARD.encode(raw)),
                )
            }
        };
        let entry = QuarantineLine {
            line,
            code: reason.code(),
            reason: reason.to_string(),
            record,
            record_base64,
        };
        self.line.clear();
        serde_json::to_writer(&mut self.line, &entry)?;
        self.line.push(b'\n');
        sha2::Digest::update(&mut self.digest, &self.line);
        file.write_all(&self.line)?;
        self.count += 1;
        *self.reasons.entry(reason.code()).or_default() += 1;
        Ok(())
    }

    /// Removes what was written of the quarantine (after a write failed: a truncated file
    /// cannot be opened), and its sidecar if there is one.
    pub fn discard(&mut self) {
        self.file = None;
        for path in [self.path.clone(), meta_path(&self.path)] {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Writes age's last chunk and syncs the file (without it, the file does not decrypt), then
    /// the tagged sidecar `<file>.meta.json`: origin, counts and content digest, no record data.
    pub fn finish(&mut self) -> io::Result<()> {
        if let Some(writer) = self.file.take() {
            let mut inner = writer.finish()?;
            inner.flush()?;
            inner.get_ref().sync_all()?;
            let digest = std::mem::replace(&mut self.digest, sha2::Digest::new());
            let meta = Meta {
                format: META_FORMAT,
                origin: self.origin.clone(),
                records: self.count,
                reasons: self
                    .reasons
                    .iter()
                    .map(|(k, v)| (k.to_string(), *v))
                    .collect(),
                content_sha256: hex::encode(sha2::Digest::finalize(digest)),
            };
            let value = serde_json::to_value(&meta)?;
            let (_, mut value, canonical) = seal::canonical_without_tag(value);
            let tag = self.mac.tag(META_DOMAIN, &[&canonical]);
            if let Some(members) = value.as_object_mut() {
                members.insert("tag".into(), tag.into());
            }
            // Replaced at once, so that a sidecar is never read half written.
            let mut f = AtomicFile::create(&meta_path(&self.path))?;
            serde_json::to_writer_pretty(&mut f, &value)?;
            f.write_all(b"\n")?;
            f.commit()?;
        }
        Ok(())
    }
}

/// What is recorded in plain beside a quarantine file: no record data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// The sidecar's format (1 when the member is absent).
    #[serde(default)]
    pub format: u32,
    /// The pipeline and run the records came from, and their policy.
    #[serde(flatten)]
    pub origin: Origin,
    /// How many records the file holds.
    pub records: u64,
    /// How many records by reason code.
    pub reasons: BTreeMap<String, u64>,
    /// The SHA-256 of the decrypted file, in hex.
    pub content_sha256: String,
}

fn meta_path(quarantine: &Path) -> PathBuf {
    let mut name = quarantine.as_os_str().to_owned();
    name.push(".meta.json");
    PathBuf::from(name)
}

/// The sidecar of a quarantine file, if it has one (files from before it was written do not),
/// *not authenticated*: for showing counts only. A replay uses [`read_authenticated`].
pub fn read_meta(quarantine: &Path) -> Option<Meta> {
    let bytes = std::fs::read(meta_path(quarantine)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Reads and checks a quarantine's sidecar: its tag, and that it belongs to this file.
fn authenticated_meta(quarantine: &Path, mac: &StateMac) -> Result<Meta, ReadError> {
    let path = meta_path(quarantine);
    let bytes = std::fs::read(&path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => ReadError::Unauthenticated {
            path: path.clone(),
            why: "it is missing (a quarantine written before sidecars were authenticated, or \
                  the sidecar was removed)",
        },
        _ => ReadError::Open {
            path: path.clone(),
            source,
        },
    })?;
    let forged = |why| ReadError::Unauthenticated {
        path: path.clone(),
        why,
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| forged("it is not JSON"))?;
    let (tag, value, canonical) = seal::canonical_without_tag(value);
    let valid = tag.is_some_and(|tag| mac.verify(META_DOMAIN, &[&canonical], &tag));
    if !valid {
        return Err(forged(
            "its tag does not match its content (it was edited, made by someone else, or \
             written by an older hushflow)",
        ));
    }
    let meta: Meta =
        serde_json::from_value(value).map_err(|_| forged("its fields are not a sidecar's"))?;
    let expected = format!("{}-{}{SUFFIX}", meta.origin.pipeline, meta.origin.run_id);
    if meta.format != META_FORMAT
        || quarantine.file_name().and_then(|n| n.to_str()) != Some(expected.as_str())
    {
        return Err(forged("it belongs to another quarantine file"));
    }
    Ok(meta)
}

/// Decrypts a quarantine file after checking its sidecar ([`Meta`]) with `mac`: the sidecar's
/// tag, that it names this file, and that the decrypted content is what the run wrote (its
/// digest and its number of records). A file made by someone else, edited, swapped for another
/// or cut is refused before any record is returned.
pub fn read_authenticated(
    path: &Path,
    identity: &StateIdentity,
    mac: &StateMac,
) -> Result<(Meta, Vec<QuarantinedRecord>), ReadError> {
    let meta = authenticated_meta(path, mac)?;
    let plain = decrypt(path, identity)?;
    if hex::encode(seal::sha256(plain.expose())) != meta.content_sha256 {
        return Err(ReadError::Unauthenticated {
            path: path.to_path_buf(),
            why: "its content is not what the run quarantined (the file was replaced or \
                  re-encrypted with other content)",
        });
    }
    let records = parse(path, plain.expose())?;
    if records.len() as u64 != meta.records {
        return Err(ReadError::Unauthenticated {
            path: path.to_path_buf(),
            why: "it does not hold the number of records its sidecar counts",
        });
    }
    Ok((meta, records))
}

/// Why a quarantine file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened.
    #[error("{path}: {source}")]
    Open {
        /// The quarantine file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file could not be decrypted with the state identity.
    #[error("{path}: {source}")]
    Decrypt {
        /// The quarantine file.
        path: PathBuf,
        /// Why decryption failed.
        source: AtRestError,
    },
    /// A decrypted line is not a quarantine record.
    #[error("{path}: record {number} is not a quarantine record (the file is damaged)")]
    Malformed {
        /// The quarantine file.
        path: PathBuf,
        /// The record's number in the file, from 1.
        number: usize,
    },
    /// The file or its sidecar does not carry a valid tag, or they disagree.
    #[error("{path}: does not authenticate: {why}; the quarantine is not used")]
    Unauthenticated {
        /// The quarantine file.
        path: PathBuf,
        /// What does not hold, in fixed words.
        why: &'static str,
    },
}

/// Decrypts and reads a quarantine file, without checking its sidecar (for `list` and
/// `export`; a replay uses [`read_authenticated`]).
pub fn read(path: &Path, identity: &StateIdentity) -> Result<Vec<QuarantinedRecord>, ReadError> {
    let plain = decrypt(path, identity)?;
    parse(path, plain.expose())
}

fn decrypt(
    path: &Path,
    identity: &StateIdentity,
) -> Result<hushflow_secrets::SecretValue, ReadError> {
    let file = File::open(path).map_err(|source| ReadError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    identity
        .decrypt_all(BufReader::new(file))
        .map_err(|source| ReadError::Decrypt {
            path: path.to_path_buf(),
            source,
        })
}

fn parse(path: &Path, plain: &[u8]) -> Result<Vec<QuarantinedRecord>, ReadError> {
    let mut records = Vec::new();
    for (i, line) in plain.lines().enumerate() {
        let line = line.map_err(|_| ReadError::Malformed {
            path: path.to_path_buf(),
            number: i + 1,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        // The serde error would quote the record: it is replaced by the record's number.
        let record = serde_json::from_str(&line).map_err(|_| ReadError::Malformed {
            path: path.to_path_buf(),
            number: i + 1,
        })?;
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn origin() -> Origin {
        Origin {
            pipeline: "leads".into(),
            run_id: "20260101T000000.000000Z".into(),
            policy_fingerprint: "ab".repeat(32),
        }
    }

    fn quarantine(dir: &Path, identity: &StateIdentity) -> Quarantine {
        Quarantine::new(
            dir.join("leads-20260101T000000.000000Z.jsonl.age"),
            identity.recipient(),
            StateMac::new(identity),
            origin(),
        )
    }

    #[test]
    fn writes_lazily_with_private_mode_and_keeps_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let identity = StateIdentity::generate();
        let mut q = quarantine(tmp.path(), &identity);
        let path = q.path().to_path_buf();
        q.finish().unwrap();
        assert!(!path.exists(), "no file when nothing was quarantined");
        assert!(read_meta(&path).is_none());

        q.add(
            7,
            &RejectReason::WrongFieldCount {
                expected: 3,
                found: 2,
            },
            b"a,b",
        )
        .unwrap();
        q.add(9, &RejectReason::InvalidUtf8 { field: None }, b"\xff\xfe")
            .unwrap();
        q.finish().unwrap();
        assert_eq!(q.count(), 2);
        let meta = read_meta(&path).unwrap();
        assert_eq!(meta.origin, origin());
        assert_eq!(meta.records, 2);
        assert_eq!(meta.reasons["invalid_utf8"], 1);
        for p in [path.clone(), meta_path(&path)] {
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.starts_with(b"age-encryption.org/v1"));
        assert!(!bytes.windows(3).any(|w| w == b"a,b"));
        let records = read(&path, &identity).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].line, 7);
        assert_eq!(records[0].record, Some("a,b".into()));
        assert_eq!(records[0].code, "wrong_field_count");
        assert_eq!(records[1].record_base64.as_deref(), Some("//4="));
        assert_eq!(records[1].raw(), b"\xff\xfe");
        let (meta, again) =
            read_authenticated(&path, &identity, &StateMac::new(&identity)).unwrap();
        assert_eq!(meta.origin, origin());
        assert_eq!(again.len(), 2);
        let other = StateIdentity::generate();
        assert!(matches!(
            read(&path, &other),
            Err(ReadError::Decrypt { .. })
        ));
    }

    /// A row a later stage refused is written as a JSON object, not as JSON quoted in a
    /// string; the source's own bytes stay a string; both give back the bytes to replay.
    #[test]
    fn rows_are_objects_and_raw_records_strings() {
        let tmp = tempfile::tempdir().unwrap();
        let identity = StateIdentity::generate();
        let mut q = quarantine(tmp.path(), &identity);
        let row = br#"{"id":"7","visits":3}"#;
        let field = RejectReason::InvalidField {
            field: "visits".into(),
            detail: "not an integer".into(),
        };
        q.add(2, &field, row).unwrap();
        let csv = RejectReason::WrongFieldCount {
            expected: 2,
            found: 1,
        };
        q.add(3, &csv, b"{\"id\":\"8\"}").unwrap();
        q.finish().unwrap();
        let plain = identity
            .decrypt_all(BufReader::new(File::open(q.path()).unwrap()))
            .unwrap();
        let lines: Vec<serde_json::Value> = plain
            .expose()
            .lines()
            .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
            .collect();
        assert_eq!(
            lines[0]["record"],
            serde_json::json!({"id": "7", "visits": 3})
        );
        assert_eq!(lines[1]["record"], serde_json::json!("{\"id\":\"8\"}"));
        let records = read(q.path(), &identity).unwrap();
        assert_eq!(records[0].raw(), row);
        assert_eq!(records[1].raw(), b"{\"id\":\"8\"}");
    }

    /// A file made with the public recipient, an edited or foreign sidecar, a sidecar moved to
    /// another file: all refused by the authenticated read, naming the file and no record.
    #[test]
    fn forged_edited_and_moved_quarantines_do_not_authenticate() {
        let tmp = tempfile::tempdir().unwrap();
        let identity = StateIdentity::generate();
        let mac = StateMac::new(&identity);
        let mut q = quarantine(tmp.path(), &identity);
        let path = q.path().to_path_buf();
        q.add(
            3,
            &RejectReason::MissingKey { field: "id".into() },
            b"{\"id\":null}",
        )
        .unwrap();
        q.finish().unwrap();
        let (file, sidecar) = (
            std::fs::read(&path).unwrap(),
            std::fs::read(meta_path(&path)).unwrap(),
        );
        let refused = |why: &str| {
            let e = read_authenticated(&path, &identity, &mac).unwrap_err();
            assert!(matches!(e, ReadError::Unauthenticated { .. }), "{why}: {e}");
            let text = e.to_string();
            assert!(text.contains("does not authenticate"), "{why}: {text}");
            assert!(!text.contains("\"id\""), "{why}: {text}");
            std::fs::write(&path, &file).unwrap();
            std::fs::write(meta_path(&path), &sidecar).unwrap();
        };

        // Other records, encrypted to the (public) recipient.
        let mut forged = identity.recipient().encrypt(Vec::new()).unwrap();
        forged
            .write_all(
                b"{\"line\":3,\"code\":\"missing_key\",\"reason\":\"x\",\"record\":\"{}\"}\n",
            )
            .unwrap();
        std::fs::write(&path, forged.finish().unwrap()).unwrap();
        refused("forged content");

        let mut meta: serde_json::Value = serde_json::from_slice(&sidecar).unwrap();
        meta["records"] = 5.into();
        std::fs::write(meta_path(&path), meta.to_string()).unwrap();
        refused("edited count");

        let mut meta: serde_json::Value = serde_json::from_slice(&sidecar).unwrap();
        meta["pipeline_file"] = "/tmp/evil.toml".into();
        std::fs::write(meta_path(&path), meta.to_string()).unwrap();
        refused("an added member");

        std::fs::remove_file(meta_path(&path)).unwrap();
        refused("no sidecar");

        // Tagged by another state directory.
        let other = StateIdentity::generate();
        let mut q = quarantine(&tmp.path().join("x"), &other);
        std::fs::create_dir(tmp.path().join("x")).unwrap();
        q.add(3, &RejectReason::MissingKey { field: "id".into() }, b"{}")
            .unwrap();
        q.finish().unwrap();
        std::fs::copy(meta_path(q.path()), meta_path(&path)).unwrap();
        refused("another identity's sidecar");

        // The same file and sidecar under another run's name.
        let moved = tmp.path().join("leads-20260202T000000.000000Z.jsonl.age");
        std::fs::copy(&path, &moved).unwrap();
        std::fs::copy(meta_path(&path), meta_path(&moved)).unwrap();
        assert!(matches!(
            read_authenticated(&moved, &identity, &mac),
            Err(ReadError::Unauthenticated { .. })
        ));
        assert!(read_authenticated(&path, &identity, &mac).is_ok());
    }
}
