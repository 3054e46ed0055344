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
//!
//! The head's signed checkpoint (`audit.head`, tagged under the anchor key: see
//! `hushflow_state::audit::anchor`) is shipped too, after the record it vouches for, each time
//! it moves: a JSONL line `{"checkpoint": {seq, hash, key, tag}, "after": {seq, hash}}` (`after`
//! is the last record shipped before it, where shipping resumes), a syslog message with MSGID
//! `checkpoint`. Whoever holds the anchor key can then check the copy alone ([`verify_copy`]):
//! its chain, and that each tag vouches for the record it names, so a copy cut short or
//! rewritten by someone without the key shows.

use crate::alerts::deliver::SyslogAddress;
use crate::monitor::AuditFollower;
use crate::{Error, Result, Session};
use hushflow_state::audit::{AnchorKey, AuditRecord, Checkpoint, HEAD_FILE, head_checkpoint};
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
    /// `syslog:tcp:HOST:PORT`, `syslog:tls:HOST:PORT` or `syslog:unix:PATH`: one RFC 5424
    /// message per record.
    Syslog(SyslogAddress),
}

impl ShipTarget {
    /// Parses `jsonl:PATH`, `syslog:tcp:HOST:PORT`, `syslog:tls:HOST:PORT` (checking the
    /// receiver's certificate against `ca_file`, else the system's roots), `syslog:unix:PATH`.
    pub fn parse_with_ca(text: &str, ca_file: Option<PathBuf>) -> Result<ShipTarget> {
        if let Some(p) = text.strip_prefix("jsonl:").filter(|p| !p.is_empty()) {
            return Ok(ShipTarget::Jsonl(PathBuf::from(p)));
        }
        let syslog = text
            .strip_prefix("syslog:")
            .and_then(|rest| SyslogAddress::parse(rest, ca_file.clone()));
        match syslog {
            Some(address) if ca_file.is_none() || matches!(address, SyslogAddress::Tls { .. }) => {
                return Ok(ShipTarget::Syslog(address));
            }
            Some(_) => {
                return Err(Error::invalid(
                    "a CA file goes with a syslog:tls: target only",
                ));
            }
            None => {}
        }
        Err(Error::invalid(format!(
            "audit shipping target {text}: give jsonl:PATH, syslog:tcp:HOST:PORT, \
             syslog:tls:HOST:PORT or syslog:unix:PATH"
        )))
    }

    /// [`ShipTarget::parse_with_ca`] without a CA file.
    pub fn parse(text: &str) -> Result<ShipTarget> {
        ShipTarget::parse_with_ca(text, None)
    }

    /// The default position file of this target, in the state directory.
    fn default_position(&self, state: &Path) -> PathBuf {
        let name = match self {
            ShipTarget::Jsonl(p) => format!("jsonl-{}", p.display()),
            ShipTarget::Syslog(SyslogAddress::Tcp(a)) => format!("syslog-tcp-{a}"),
            ShipTarget::Syslog(SyslogAddress::Unix(p)) => format!("syslog-unix-{}", p.display()),
            ShipTarget::Syslog(SyslogAddress::Tls { host_port, .. }) => {
                format!("syslog-tls-{host_port}")
            }
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
    /// When another process is shipping to the same target (it holds the position file's
    /// lock), ship nothing and return 0 instead of failing: for the shipping that `[audit]
    /// ship_to` starts in every long-running process and at the end of a run.
    pub skip_if_busy: bool,
}

/// The last record shipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Position {
    seq: u64,
    hash: String,
    /// The last checkpoint shipped (position files; a JSONL copy's checkpoint lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checkpoint: Option<Checkpoint>,
}

/// A checkpoint line of a JSONL copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointLine {
    checkpoint: Checkpoint,
    /// The last record shipped before it.
    after: Point,
}

/// A record's number and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Point {
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
    // One shipper per target at a time: two would both append what is new.
    let Some(_lock) = lock_target(&position_file, options.skip_if_busy)? else {
        return Ok(0);
    };
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
    let head = session.state().root().join(HEAD_FILE);
    let mut follower = AuditFollower::after(session.state().clone(), resume.seq);
    let mut at = resume;
    let mut shipped = 0;
    loop {
        let records = follower.poll()?;
        if let Some(last) = records.last() {
            send(target, &records)?;
            shipped += records.len() as u64;
            at.seq = last.seq;
            at.hash = last.hash.clone();
            save_position(&position_file, &at)?;
        }
        // The head's checkpoint, once it vouches for a record shipped and has moved since the
        // last one shipped.
        let checkpoint = head_checkpoint(&head).map_err(Error::failed)?;
        if let Some(checkpoint) = checkpoint.filter(|c| {
            c.seq > 0
                && c.seq <= at.seq
                && at.checkpoint.as_ref().is_none_or(|last| last.seq < c.seq)
        }) {
            send_checkpoint(target, &checkpoint, &at)?;
            at.checkpoint = Some(checkpoint);
            save_position(&position_file, &at)?;
        }
        if !options.follow || stop.load(Ordering::SeqCst) {
            return Ok(shipped);
        }
        if records.is_empty() {
            std::thread::sleep(options.interval);
        }
    }
}

/// What [`verify_copy`] found in a JSONL copy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CopyReport {
    /// Records in the copy.
    pub records: u64,
    /// The first and last record numbers (0 when there are none).
    pub first: u64,
    /// The last record number.
    pub last: u64,
    /// The first problem of the chain: a record whose hash is not its fields', that does not
    /// link to the one before, or whose number skips or repeats; `None` when it holds.
    pub broken: Option<String>,
    /// Checkpoint lines whose tag verifies under the key and which name a record of the copy
    /// with that hash.
    pub vouched: u64,
    /// Checkpoint lines tagged under another key (by their key id): not checked.
    pub other_key: u64,
    /// Checkpoint lines whose tag does not verify, or that name a record the copy does not hold
    /// with that hash: the copy, or the checkpoint, was forged or rewritten.
    pub forged: Vec<u64>,
    /// The last record a verified checkpoint vouches for (it and every one before it).
    pub vouched_to: u64,
}

impl CopyReport {
    /// Whether the copy holds: an intact chain and no forged checkpoint.
    pub fn holds(&self) -> bool {
        self.broken.is_none() && self.forged.is_empty()
    }
}

/// Checks a JSONL copy made by [`ship`] on its own, with the anchor key: the hash chain of its
/// records (recomputed from their fields), and each checkpoint's tag and the record it names.
/// Records after the last verified checkpoint are not vouched for by a tag (they were shipped
/// before the head was tagged again), which the report says.
pub fn verify_copy(path: &Path, key: &AnchorKey) -> Result<CopyReport> {
    use std::io::BufRead as _;
    let io = |e: std::io::Error| Error::failed(format!("{}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(io)?;
    let mut report = CopyReport::default();
    let mut hashes: std::collections::HashMap<u64, String> = std::collections::HashMap::new();
    let mut previous: Option<(u64, String)> = None;
    for (n, line) in std::io::BufReader::new(file).split(b'\n').enumerate() {
        let line = line.map_err(io)?;
        if line.is_empty() {
            continue;
        }
        if line.starts_with(b"{\"checkpoint\"") {
            let parsed: CheckpointLine = serde_json::from_slice(&line).map_err(|e| {
                Error::failed(format!(
                    "{} line {}: not a checkpoint line ({e})",
                    path.display(),
                    n + 1
                ))
            })?;
            let c = parsed.checkpoint;
            if c.key != key.id() {
                report.other_key += 1;
            } else if key.verifies(&c) && hashes.get(&c.seq) == Some(&c.hash) {
                report.vouched += 1;
                report.vouched_to = report.vouched_to.max(c.seq);
            } else {
                report.forged.push(c.seq);
            }
            continue;
        }
        let record: AuditRecord = serde_json::from_slice(&line).map_err(|e| {
            Error::failed(format!(
                "{} line {}: not a shipped audit record ({e})",
                path.display(),
                n + 1
            ))
        })?;
        report.records += 1;
        if report.first == 0 {
            report.first = record.seq;
        }
        report.last = record.seq;
        if report.broken.is_none() {
            let problem = if record.compute_hash() != record.hash {
                Some("its hash is not that of its fields (it was changed)")
            } else {
                match &previous {
                    Some((seq, _)) if record.seq != seq + 1 => Some(
                        "its number does not follow the one before (records removed or inserted)",
                    ),
                    Some((_, hash)) if &record.prev_hash != hash => {
                        Some("it does not link to the record before it")
                    }
                    None if record.seq == 1
                        && record.prev_hash != hushflow_state::audit::GENESIS_HASH =>
                    {
                        Some("the first record does not start the chain")
                    }
                    _ => None,
                }
            };
            if let Some(problem) = problem {
                report.broken = Some(format!("record {}: {problem}", record.seq));
            }
        }
        previous = Some((record.seq, record.hash.clone()));
        hashes.insert(record.seq, record.hash);
    }
    Ok(report)
}

/// Takes the lock beside the position file (`<position>.lock`); `None` when another process
/// holds it and `skip` says to give way.
fn lock_target(position_file: &Path, skip: bool) -> Result<Option<std::fs::File>> {
    let path = position_file.with_extension("lock");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::failed(format!("{}: {e}", dir.display())))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::failed(format!("{}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) if skip => Ok(None),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::failed(format!(
            "another process is shipping to this target now (it holds {}); stop it first, or \
             leave the shipping to it",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(Error::failed(format!("{}: {e}", path.display())))
        }
    }
}

/// Ships in the background, following new records, until `stop` is set: what `[audit]
/// ship_to` starts in a scheduler or worker. A failure (the destination unreachable, the local
/// log rewritten) is logged and tried again after a pause; a run is never held up by it.
pub fn spawn_shipping(
    session: Session,
    target: ShipTarget,
    interval: Duration,
    stop: std::sync::Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("audit-ship".into())
        .spawn(move || {
            let options = ShipOptions {
                position: None,
                follow: true,
                interval,
                skip_if_busy: true,
            };
            while !stop.load(Ordering::SeqCst) {
                match ship(&session, &target, &options, &stop) {
                    Ok(_) => {}
                    Err(e) => tracing::warn!("audit shipping: {e}; trying again in 30 s"),
                }
                // Back here after a failure, or when another process holds the target: wait
                // (watching `stop`) before trying again.
                for _ in 0..300 {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        })
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
            append(path, &text)
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

fn send_checkpoint(target: &ShipTarget, checkpoint: &Checkpoint, at: &Position) -> Result<()> {
    let line = CheckpointLine {
        checkpoint: checkpoint.clone(),
        after: Point {
            seq: at.seq,
            hash: at.hash.clone(),
        },
    };
    let json = serde_json::to_string(&line).map_err(Error::failed)?;
    match target {
        ShipTarget::Jsonl(path) => append(path, &format!("{json}\n")),
        ShipTarget::Syslog(address) => {
            let message = format!(
                "<110>1 {} - hushflow {} checkpoint [hushflow-checkpoint@32473 seq=\"{}\" \
                 hash=\"{}\" key=\"{}\" tag=\"{}\"] {json}",
                jiff::Timestamp::now(),
                std::process::id(),
                checkpoint.seq,
                checkpoint.hash,
                checkpoint.key,
                checkpoint.tag,
            );
            crate::alerts::deliver::syslog_send(address, &message).map_err(Error::failed)
        }
    }
}

fn append(path: &Path, text: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::failed(format!("{}: {e}", path.display())))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(|e| Error::failed(format!("{}: {e}", path.display())))
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
    let mut position = parse_position(&body[line_start..], path)?;
    if position.checkpoint.is_none() {
        // The last checkpoint shipped, when it is in the tail (else one may be shipped twice,
        // which is harmless).
        position.checkpoint = body
            .split(|b| *b == b'\n')
            .rev()
            .filter(|line| line.starts_with(b"{\"checkpoint\""))
            .find_map(|line| serde_json::from_slice::<CheckpointLine>(line).ok())
            .map(|line| line.checkpoint);
    }
    Ok(Some(position))
}

fn parse_position(line: &[u8], path: &Path) -> Result<Position> {
    if let Ok(line) = serde_json::from_slice::<CheckpointLine>(line) {
        return Ok(Position {
            seq: line.after.seq,
            hash: line.after.hash,
            checkpoint: Some(line.checkpoint),
        });
    }
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
                hash: "bb".into(),
                checkpoint: None,
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
