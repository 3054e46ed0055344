//! The run's quarantine: records that could not be processed, kept with their line and reason so
//! that nothing is lost. It holds personal data: the file is 0600 inside the private state
//! directory (the encryption-at-rest work will encrypt it), and it is created only when a first
//! record needs it.

use hushflow_core::RejectReason;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

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

pub struct Quarantine {
    path: PathBuf,
    file: Option<BufWriter<File>>,
    count: u64,
    reasons: BTreeMap<&'static str, u64>,
}

impl Quarantine {
    pub fn new(path: PathBuf) -> Self {
        Quarantine {
            path,
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
                self.file.insert(BufWriter::new(f))
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

    pub fn finish(&mut self) -> io::Result<()> {
        if let Some(mut f) = self.file.take() {
            f.flush()?;
            f.get_ref().sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_lazily_with_private_mode_and_keeps_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("run.jsonl");
        let mut q = Quarantine::new(path.clone());
        q.finish().unwrap();
        assert!(!path.exists(), "no file when nothing was quarantined");

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
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["line"], 7);
        assert_eq!(lines[0]["record"], "a,b");
        assert_eq!(lines[0]["code"], "wrong_field_count");
        assert_eq!(lines[1]["record_base64"], "//4=");
    }
}
