//! The quarantine: each run's set-aside records, age-encrypted to the state directory's
//! identity. Listing counts them by reason; exporting decrypts one run's records to a file
//! readable by its owner only, and is audited (nothing leaves the quarantine without its audit
//! record). Replaying them through a pipeline is a sync run, the front end's.

use crate::views::{QuarantineFileView, VIEW_VERSION};
use crate::{Actor, Error, Result, Session};
use hushflow_crypto::{Keyring, StateIdentity};
use hushflow_state::quarantine::{self, QuarantinedRecord};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The quarantine files whose name contains `run` (all of them without it), oldest first.
pub fn files(session: &Session, run: Option<&str>) -> Result<Vec<PathBuf>> {
    let dir = session.state().quarantine_dir().map_err(Error::failed)?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::failed(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.ends_with(quarantine::SUFFIX) && run.is_none_or(|r| n.contains(r))
            })
        })
        .collect();
    // Run ids are timestamps, so names sort by time within a pipeline; sort by run id overall.
    found.sort_by_key(|p| run_id(p).unwrap_or_default());
    Ok(found)
}

/// The one file `run` names; zero or several matches are an error that lists what there is.
pub fn one_file(session: &Session, run: &str) -> Result<PathBuf> {
    let mut matches = files(session, Some(run))?;
    match matches.len() {
        1 => Ok(matches.remove(0)),
        0 => Err(Error::not_found(format!(
            "no quarantine file matches `{run}`; `hushflow quarantine list` shows the runs that \
             quarantined records"
        ))),
        n => Err(Error::invalid(format!(
            "`{run}` matches {n} quarantine files ({}); give the whole run id",
            matches
                .iter()
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// `<pipeline>-<run id>.jsonl.age` → the run id (the part after the last `-`).
pub fn run_id(path: &Path) -> Option<String> {
    let name = path
        .file_name()?
        .to_str()?
        .strip_suffix(quarantine::SUFFIX)?;
    name.rsplit_once('-').map(|(_, id)| id.to_owned())
}

/// `<pipeline>-<run id>.jsonl.age` → the pipeline's name.
pub fn pipeline_name(path: &Path) -> Option<String> {
    let name = path
        .file_name()?
        .to_str()?
        .strip_suffix(quarantine::SUFFIX)?;
    name.rsplit_once('-').map(|(p, _)| p.to_owned())
}

/// The identity in `keyring` that opens this state directory's quarantine files.
pub fn identity(session: &Session, keyring: &Keyring) -> Result<StateIdentity> {
    keyring.existing_identity().cloned().ok_or_else(|| {
        Error::failed(format!(
            "the keyring in {} has no state identity, so it cannot open quarantine files: was \
             the keyring replaced?",
            session.state().root().display(),
        ))
    })
}

/// Decrypts one quarantine file.
pub fn read(path: &Path, identity: &StateIdentity) -> Result<Vec<QuarantinedRecord>> {
    quarantine::read(path, identity).map_err(Error::failed)
}

/// Each quarantine file (of the runs whose id contains `run`, or all): its records counted by
/// reason. `identity` is asked for once, and only when there is a file to read.
pub fn list(
    session: &Session,
    run: Option<&str>,
    identity: impl FnOnce() -> Result<StateIdentity>,
) -> Result<Vec<QuarantineFileView>> {
    let files = files(session, run)?;
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let identity = identity()?;
    let mut views = Vec::new();
    for path in files {
        let records = read(&path, &identity)?;
        let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
        for r in &records {
            *reasons.entry(r.code.clone()).or_default() += 1;
        }
        views.push(QuarantineFileView {
            version: VIEW_VERSION,
            run: run_id(&path).unwrap_or_default(),
            sync_id: run_id(&path).unwrap_or_default(),
            pipeline: pipeline_name(&path).unwrap_or_default(),
            records: records.len() as u64,
            reasons,
            file: path.display().to_string(),
        });
    }
    Ok(views)
}

/// [`list`] with the identity from the session's keyring: the quarantine counts per sync run
/// for a front end that holds no keyring of its own (the HTTP API and dashboard).
pub fn counts(session: &Session, run: Option<&str>) -> Result<Vec<QuarantineFileView>> {
    list(session, run, || identity(session, &session.keyring()?))
}

/// What [`export`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// The sync run's id.
    pub run: String,
    /// How many records the file holds.
    pub records: u64,
    /// The new file (mode 0600), personal data in plain text.
    pub path: PathBuf,
}

/// Decrypts the quarantined records of the one run `run` names into a new file `out` (JSON
/// lines, mode 0600; an existing file is never replaced). Every attempt is audited as
/// `quarantine.export` with what really happened; a file written but not audited is removed
/// again.
pub fn export(
    session: &Session,
    actor: &Actor,
    run: &str,
    out: &Path,
    identity: impl FnOnce() -> Result<StateIdentity>,
) -> Result<Exported> {
    let path = one_file(session, run)?;
    let records = read(&path, &identity()?)?;
    let run = run_id(&path).unwrap_or_default();
    let write = |f: &mut std::fs::File| -> std::io::Result<()> {
        let mut w = std::io::BufWriter::new(f);
        for r in &records {
            serde_json::to_writer(&mut w, r)?;
            w.write_all(b"\n")?;
        }
        w.flush()?;
        w.get_ref().sync_all()
    };
    let written = crate::files::create_private(out).and_then(|mut file| {
        write(&mut file).map_err(|e| Error::failed(format!("{}: {e}", out.display())))
    });
    let audited = session.audit(
        actor,
        "quarantine.export",
        format!("run {run} to {}", out.display()),
        BTreeMap::from([(
            "records".to_string(),
            if written.is_ok() {
                records.len() as u64
            } else {
                0
            },
        )]),
        if written.is_ok() { "ok" } else { "failed" },
    );
    if let Err(e) = audited {
        if written.is_ok() {
            let _ = std::fs::remove_file(out);
        }
        return Err(e);
    }
    written?;
    Ok(Exported {
        run,
        records: records.len() as u64,
        path: out.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use hushflow_core::RejectReason;
    use hushflow_state::quarantine::Quarantine;

    fn session(dir: &tempfile::TempDir) -> Session {
        let state = hushflow_state::StateDir::open(dir.path().join("state")).unwrap();
        Session::new(state, hushflow_secrets::Redactor::new())
    }

    /// A quarantine file of run `run` of pipeline `leads` with two short rows and one bad one.
    fn quarantined(session: &Session, identity: &StateIdentity, run: &str) {
        let dir = session.state().quarantine_dir().unwrap();
        let path = dir.join(format!("leads-{run}{}", quarantine::SUFFIX));
        let origin = hushflow_state::quarantine::Origin {
            pipeline: "leads".into(),
            run_id: run.into(),
            policy_fingerprint: "0".repeat(64),
        };
        let mac = hushflow_state::seal::StateMac::new(identity);
        let mut q = Quarantine::new(path, identity.recipient(), mac, origin);
        let short = RejectReason::WrongFieldCount {
            expected: 3,
            found: 2,
        };
        q.add(2, &short, b"1,a@example.com").unwrap();
        q.add(5, &short, b"4,d@example.com").unwrap();
        let missing = RejectReason::MissingKey { field: "id".into() };
        // A row the key check refused: the engine writes it as a JSON object of its fields.
        q.add(7, &missing, br#"{"email":"g@example.com","id":null}"#)
            .unwrap();
        q.finish().unwrap();
    }

    #[test]
    fn listing_counts_by_reason_and_asks_for_the_identity_only_with_files() {
        let dir = tempfile::tempdir().unwrap();
        let s = session(&dir);
        let none = list(&s, None, || -> Result<StateIdentity> {
            panic!("no file, no identity")
        });
        assert!(none.unwrap().is_empty());

        let identity = StateIdentity::generate();
        quarantined(&s, &identity, "20260101T000000.000000Z");
        quarantined(&s, &identity, "20260102T000000.000000Z");
        let all = list(&s, None, || Ok(identity.clone())).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].run, "20260101T000000.000000Z");
        assert_eq!(all[0].pipeline, "leads");
        assert_eq!(all[0].records, 3);
        assert_eq!(all[0].version, VIEW_VERSION);
        assert_eq!(
            all[0].reasons,
            BTreeMap::from([
                ("missing_key".to_string(), 1),
                ("wrong_field_count".to_string(), 2)
            ])
        );
        let one = list(&s, Some("0102"), || Ok(identity.clone())).unwrap();
        assert_eq!(one.len(), 1);
        let e = one_file(&s, "2026").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
        assert_eq!(one_file(&s, "1999").unwrap_err().kind, ErrorKind::NotFound);
    }

    #[test]
    fn an_export_is_private_audited_with_its_actor_and_never_replaces_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = session(&dir);
        let identity = StateIdentity::generate();
        quarantined(&s, &identity, "20260101T000000.000000Z");
        let out = dir.path().join("export.jsonl");
        let ada = crate::Actor::api_user("ada");
        let e = export(&s, &ada, "20260101", &out, || Ok(identity.clone())).unwrap();
        assert_eq!((e.run.as_str(), e.records), ("20260101T000000.000000Z", 3));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.contains("a@example.com"));
        // A refused row is exported as the object it is, not as JSON quoted in a string.
        let rows: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows[0]["record"], "1,a@example.com");
        assert_eq!(
            rows[2]["record"],
            serde_json::json!({"email": "g@example.com", "id": null})
        );

        // A second export to the same file fails, and is audited as failed.
        let again = export(&s, &ada, "20260101", &out, || Ok(identity.clone()));
        assert_eq!(again.unwrap_err().kind, ErrorKind::Failed);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), text);
        let audit = s.state().audit_log().unwrap().list().unwrap();
        let seen: Vec<(&str, &str, &str, u64)> = audit
            .iter()
            .map(|r| {
                (
                    r.actor.as_str(),
                    r.action.as_str(),
                    r.outcome.as_str(),
                    r.counts["records"],
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("api-user:ada", "quarantine.export", "ok", 3),
                ("api-user:ada", "quarantine.export", "failed", 0),
            ]
        );
        assert!(!audit[0].detail.as_deref().unwrap().contains("example.com"));
    }
}
