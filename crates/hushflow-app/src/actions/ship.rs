//! Audit shipping: every new audit record, in order, to an append-only JSONL file elsewhere or
//! to syslog, resuming after a crash where the last run stopped, so that a rewrite of the local
//! store shows against the shipped copy.
//!
//! Where shipping resumes:
//! - a JSONL destination is its own position: its last complete line names the last record
//!   shipped (a line cut short by a crash is removed first), so a SIGKILL between writing and
//!   saving the position file neither skips nor repeats a record;
//! - syslog cannot be read back: the position file (saved after each batch) is the position.
//!   A crash between sending and saving can send the batch again; every message carries the
//!   record's `seq` and `hash`, by which the receiver drops a repeat.
//!
//! Before shipping on, the record at the resume position is compared with the shipped one: a
//! different hash means the local log was rewritten after it was shipped, and shipping stops
//! saying so.

use crate::alerts::deliver::SyslogAddress;
use crate::monitor::AuditFollower;
use crate::{Error, Result, Session};
use hushflow_state::audit::AuditRecord;
use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Where records are shipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShipTarget {
    /// `jsonl:PATH`: one record per line, appended.
    Jsonl(PathBuf),
    /// `syslog:tcp:HOST:PORT` or `syslog:unix:PATH`: one RFC 5424 message per record.
    Syslog(SyslogAddress),
}

impl ShipTarget {
    /// Parses `jsonl:PATH`, `syslog:tcp:HOST:PORT`, `syslog:unix:PATH`.
    pub fn parse(text: &str) -> Result<ShipTarget> {
        if let Some(p) = text.strip_prefix("jsonl:").filter(|p| !p.is_empty()) {
            return Ok(ShipTarget::Jsonl(PathBuf::from(p)));
        }
        if let Some(rest) = text.strip_prefix("syslog:tcp:").filter(|p| !p.is_empty()) {
            return Ok(ShipTarget::Syslog(SyslogAddress::Tcp(rest.into())));
        }
        if let Some(rest) = text.strip_prefix("syslog:unix:").filter(|p| !p.is_empty()) {
            return Ok(ShipTarget::Syslog(SyslogAddress::Unix(rest.into())));
        }
        Err(Error::invalid(format!(
            "--to {text}: give jsonl:PATH, syslog:tcp:HOST:PORT or syslog:unix:PATH"
        )))
    }

    /// The default position file of this target, in the state directory.
    fn default_position(&self, state: &Path) -> PathBuf {
        let name = match self {
            ShipTarget::Jsonl(p) => format!("jsonl-{}", p.display()),
            ShipTarget::Syslog(SyslogAddress::Tcp(a)) => format!("syslog-tcp-{a}"),
            ShipTarget::Syslog(SyslogAddress::Unix(p)) => format!("syslog-unix-{}", p.display()),
        };
        let name: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        state.join("audit-ship").join(format!("{name}.pos"))
    }
}

/// How [`ship`] runs.
#[derive(Debug, Clone)]
pub struct ShipOptions {
    /// Where the position is kept (default: `<state>/audit-ship/<target>.pos`).
    pub position: Option<PathBuf>,
    /// Keep following new records until stopped; else ship what there is and return.
    pub follow: bool,
    /// Time between looks for new records when following.
    pub interval: Duration,
}

/// The last record shipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Position {
    seq: u64,
    hash: String,
}

/// Ships the records written since the last shipped one to `target` (all of them the first
/// time), then, with `follow`, new ones as they come until `stop` is set. Answers how many
/// records this call shipped.
pub fn ship(
    session: &Session,
    target: &ShipTarget,
    options: &ShipOptions,
    stop: &AtomicBool,
) -> Result<u64> {
    let position_file = options
        .position
        .clone()
        .unwrap_or_else(|| target.default_position(session.state().root()));
    let saved = read_position(&position_file)?;
    let resume = match target {
        // The file itself says what it holds: its last line.
        ShipTarget::Jsonl(path) => jsonl_last(path)?.or(saved),
        ShipTarget::Syslog(_) => saved,
    };
    let resume = resume.unwrap_or_default();
    if resume.seq > 0 {
        check_unchanged(session, &resume)?;
    }
    let mut follower = AuditFollower::after(session.state().clone(), resume.seq);
    let mut shipped = 0;
    loop {
        let records = follower.poll()?;
        if !records.is_empty() {
            send(target, &records)?;
            shipped += records.len() as u64;
            if let Some(last) = records.last() {
                save_position(
                    &position_file,
                    &Position {
                        seq: last.seq,
                        hash: last.hash.clone(),
                    },
                )?;
            }
        }
        if !options.follow || stop.load(Ordering::SeqCst) {
            return Ok(shipped);
        }
        if records.is_empty() {
            std::thread::sleep(options.interval);
        }
    }
}

/// The local record at the resume position must be the one shipped.
fn check_unchanged(session: &Session, shipped: &Position) -> Result<()> {
    let log = session.state().audit_log().map_err(Error::failed)?;
    let local = log
        .list_after(shipped.seq.saturating_sub(1))
        .map_err(Error::failed)?
        .into_iter()
        .next();
    match local {
        Some(r) if r.seq == shipped.seq && r.hash == shipped.hash => Ok(()),
        Some(_) => Err(Error::failed(format!(
            "the local audit record {} differs from the copy shipped earlier: the local log was \
             rewritten after it was shipped. Keep both as evidence; `hushflow audit verify` \
             checks the local chain",
            shipped.seq
        ))),
        None => Err(Error::failed(format!(
            "the local audit log ends before record {}, which was shipped earlier: records \
             were removed. Keep both as evidence",
            shipped.seq
        ))),
    }
}

fn send(target: &ShipTarget, records: &[AuditRecord]) -> Result<()> {
    match target {
        ShipTarget::Jsonl(path) => {
            let mut text = String::new();
            for r in records {
                text.push_str(&serde_json::to_string(r).map_err(Error::failed)?);
                text.push('\n');
            }
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| Error::failed(format!("{}: {e}", path.display())))?;
            file.write_all(text.as_bytes())
                .and_then(|()| file.sync_data())
                .map_err(|e| Error::failed(format!("{}: {e}", path.display())))
        }
        ShipTarget::Syslog(address) => {
            for r in records {
                let message = rfc5424(r).map_err(Error::failed)?;
                crate::alerts::deliver::syslog_send(address, &message).map_err(Error::failed)?;
            }
            Ok(())
        }
    }
}

/// A record as an RFC 5424 message: facility 13 (log audit), severity 6 (informational), the
/// action as MSGID, `seq` and `hash` as structured data (for a receiver to drop repeats), the
/// record's JSON as MSG.
fn rfc5424(r: &AuditRecord) -> std::result::Result<String, serde_json::Error> {
    let msgid: String = r
        .action
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(32)
        .collect();
    Ok(format!(
        "<110>1 {} - hushflow {} {} [hushflow-audit@32473 seq=\"{}\" hash=\"{}\"] {}",
        r.time,
        std::process::id(),
        if msgid.is_empty() { "-".into() } else { msgid },
        r.seq,
        r.hash,
        serde_json::to_string(r)?
    ))
}

/// The last complete line of a JSONL copy; a partial last line (a crash mid-write) is cut off,
/// so that the record is shipped again whole.
fn jsonl_last(path: &Path) -> Result<Option<Position>> {
    let io = |e: std::io::Error| Error::failed(format!("{}: {e}", path.display()));
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let len = file.metadata().map_err(io)?.len();
    // A record is far below 1 MiB: the last two lines are in the last MiB.
    let start = len.saturating_sub(1 << 20);
    file.seek(SeekFrom::Start(start)).map_err(io)?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).map_err(io)?;
    let too_long = || {
        Error::failed(format!(
            "{}: its last line is over 1 MiB, so it is not a shipped audit record; ship to a \
             new file",
            path.display()
        ))
    };
    let complete_end = match tail.iter().rposition(|b| *b == b'\n') {
        Some(i) => start + i as u64 + 1,
        None if start == 0 => 0,
        None => return Err(too_long()),
    };
    if complete_end < len {
        file.set_len(complete_end).map_err(io)?;
        file.sync_data().map_err(io)?;
    }
    if complete_end == 0 {
        return Ok(None);
    }
    let body = &tail[..(complete_end - start - 1) as usize];
    let line_start = body.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    if line_start == 0 && start > 0 {
        return Err(too_long());
    }
    parse_position(&body[line_start..], path).map(Some)
}

fn parse_position(line: &[u8], path: &Path) -> Result<Position> {
    serde_json::from_slice::<Position>(line).map_err(|e| {
        Error::failed(format!(
            "{}: its last line is not a shipped audit record ({e}); ship to a new file, or \
             repair this one",
            path.display()
        ))
    })
}

fn read_position(path: &Path) -> Result<Option<Position>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::failed(format!(
                "position file {}: {e}; remove it to ship from the destination's own position",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::failed(format!("{}: {e}", path.display()))),
    }
}

fn save_position(path: &Path, position: &Position) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::failed(format!("{}: {e}", dir.display())))?;
    }
    let bytes = serde_json::to_vec(position).map_err(Error::failed)?;
    hushflow_state::atomic_file::write(path, &bytes)
        .map_err(|e| Error::failed(format!("position file {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_line_cut_short_by_a_crash_is_removed_and_the_one_before_names_the_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy.jsonl");
        let full = "{\"seq\":1,\"hash\":\"aa\",\"actor\":\"x\"}\n{\"seq\":2,\"hash\":\"bb\"}\n";
        std::fs::write(&path, format!("{full}{{\"seq\":3,\"ha")).unwrap();
        let last = jsonl_last(&path).unwrap().unwrap();
        assert_eq!(
            last,
            Position {
                seq: 2,
                hash: "bb".into()
            }
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), full);
        // A file of one partial line is an empty copy.
        std::fs::write(&path, "{\"seq\":1").unwrap();
        assert_eq!(jsonl_last(&path).unwrap(), None);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        assert_eq!(jsonl_last(&dir.path().join("none.jsonl")).unwrap(), None);
        std::fs::write(&path, "not json\n").unwrap();
        assert!(
            jsonl_last(&path)
                .unwrap_err()
                .message
                .contains("not a shipped audit record")
        );
    }

    #[test]
    fn targets_parse() {
        assert_eq!(
            ShipTarget::parse("jsonl:/x/a.jsonl").unwrap(),
            ShipTarget::Jsonl("/x/a.jsonl".into())
        );
        assert_eq!(
            ShipTarget::parse("syslog:tcp:127.0.0.1:514").unwrap(),
            ShipTarget::Syslog(SyslogAddress::Tcp("127.0.0.1:514".into()))
        );
        assert!(ShipTarget::parse("s3:bucket").is_err());
        assert!(ShipTarget::parse("jsonl:").is_err());
    }
}
