//! The run's quarantine: records that could not be processed, kept with their line and reason so
//! that nothing is lost. They are personal data, so the file is age-encrypted to the state
//! directory's identity (`<pipeline>-<run>.jsonl.age`, 0600 in the private state directory);
//! it is created only when a first record needs it. Decrypted, it is JSON lines:
//! `{"line", "code", "reason", "record"}` (or `"record_base64"` for bytes that are not UTF-8).

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

#[derive(Serialize)]
struct QuarantineLine<'a> {
    line: u64,
    code: &'static str,
    reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record_base64: Option<String>,
}

/// One quarantined record, read back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuarantinedRecord {
    pub line: u64,
    pub code: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_base64: Option<String>,
}

impl QuarantinedRecord {
    /// The record's bytes as they were read.
    pub fn raw(&self) -> Vec<u8> {
        match (&self.record, &self.record_base64) {
            (Some(text), _) => text.as_bytes().to_vec(),
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

pub struct Quarantine {
    path: PathBuf,
    recipient: StateRecipient,
    file: Option<EncryptedWriter<BufWriter<File>>>,
    count: u64,
    reasons: BTreeMap<&'static str, u64>,
}

impl Quarantine {
    /// A quarantine that will write `path`, encrypted to `recipient`, if a record comes.
    pub fn new(path: PathBuf, recipient: StateRecipient) -> Self {
        Quarantine {
            path,
            recipient,
            file: None,
            count: 0,
            reasons: BTreeMap::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Counts by reason code, for the summary and the audit log.
    pub fn reasons(&self) -> &BTreeMap<&'static str, u64> {
        &self.reasons
    }

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
            Ok(text) => (Some(text), None),
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
        serde_json::to_writer(&mut *file, &entry)?;
        file.write_all(b"\n")?;
        self.count += 1;
        *self.reasons.entry(reason.code()).or_default() += 1;
        Ok(())
    }

    /// Writes age's last chunk and syncs the file (without it, the file does not decrypt), then
    /// the plain sidecar `<file>.meta.json`: the pipeline file and counts, no record data.
    pub fn finish(&mut self, pipeline_file: &Path) -> io::Result<()> {
        if let Some(writer) = self.file.take() {
            let mut inner = writer.finish()?;
            inner.flush()?;
            inner.get_ref().sync_all()?;
            let meta = Meta {
                pipeline_file: pipeline_file.to_path_buf(),
                records: self.count,
                reasons: self
                    .reasons
                    .iter()
                    .map(|(k, v)| (k.to_string(), *v))
                    .collect(),
            };
            let mut f = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(meta_path(&self.path))?;
            serde_json::to_writer_pretty(&mut f, &meta)?;
            f.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// What is recorded in plain beside a quarantine file: no record data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// The pipeline file the records came through (absolute), for `quarantine replay`.
    pub pipeline_file: PathBuf,
    pub records: u64,
    pub reasons: BTreeMap<String, u64>,
}

fn meta_path(quarantine: &Path) -> PathBuf {
    let mut name = quarantine.as_os_str().to_owned();
    name.push(".meta.json");
    PathBuf::from(name)
}

/// The sidecar of a quarantine file, if it has one (files from before it was written do not).
pub fn read_meta(quarantine: &Path) -> Option<Meta> {
    let bytes = std::fs::read(meta_path(quarantine)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Why a quarantine file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("{path}: {source}")]
    Decrypt { path: PathBuf, source: AtRestError },
    #[error("{path}: record {number} is not a quarantine record (the file is damaged)")]
    Malformed { path: PathBuf, number: usize },
}

/// Decrypts and reads a quarantine file.
pub fn read(path: &Path, identity: &StateIdentity) -> Result<Vec<QuarantinedRecord>, ReadError> {
    let file = File::open(path).map_err(|source| ReadError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let plain = identity
        .decrypt_all(BufReader::new(file))
        .map_err(|source| ReadError::Decrypt {
            path: path.to_path_buf(),
            source,
        })?;
    let mut records = Vec::new();
    for (i, line) in plain.expose().lines().enumerate() {
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

    #[test]
    fn writes_lazily_with_private_mode_and_keeps_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("run.jsonl.age");
        let identity = StateIdentity::generate();
        let mut q = Quarantine::new(path.clone(), identity.recipient());
        q.finish(Path::new("/p.toml")).unwrap();
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
        q.finish(Path::new("/p.toml")).unwrap();
        assert_eq!(q.count(), 2);
        let meta = read_meta(&path).unwrap();
        assert_eq!(meta.pipeline_file, Path::new("/p.toml"));
        assert_eq!(meta.records, 2);
        assert_eq!(meta.reasons["invalid_utf8"], 1);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.starts_with(b"age-encryption.org/v1"));
        assert!(!bytes.windows(3).any(|w| w == b"a,b"));
        let records = read(&path, &identity).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].line, 7);
        assert_eq!(records[0].record.as_deref(), Some("a,b"));
        assert_eq!(records[0].code, "wrong_field_count");
        assert_eq!(records[1].record_base64.as_deref(), Some("//4="));
        assert_eq!(records[1].raw(), b"\xff\xfe");
        let other = StateIdentity::generate();
        assert!(matches!(
            read(&path, &other),
            Err(ReadError::Decrypt { .. })
        ));
    }
}
