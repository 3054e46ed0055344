//! `hushflow quarantine`: list a run's quarantined records by reason, and decrypt them for an
//! authorized operator (audited). The files are age-encrypted to the state identity, so every
//! subcommand needs the keyring (and its master key, when sealed).

use super::{Exit, Failure, Session, create_private, failure, invalid};
use crate::cli::QuarantineCommand;
use hushflow_crypto::StateIdentity;
use hushflow_state::quarantine::{self, QuarantinedRecord};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

pub(super) fn quarantine(session: &Session<'_>, cmd: QuarantineCommand) -> Result<Exit, Failure> {
    match cmd {
        QuarantineCommand::List { run, json } => list(session, run.as_deref(), json),
        QuarantineCommand::Export { run, out } => export(session, &run, out),
        QuarantineCommand::Replay { run, pipeline, out } => replay(session, &run, pipeline, out),
    }
}

/// The quarantine files whose name contains `run` (all of them without it), oldest first.
pub(super) fn files(session: &Session<'_>, run: Option<&str>) -> Result<Vec<PathBuf>, Failure> {
    let dir = session.state.quarantine_dir().map_err(failure)?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| failure(format!("{}: {e}", dir.display())))?
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
pub(super) fn one_file(session: &Session<'_>, run: &str) -> Result<PathBuf, Failure> {
    let mut matches = files(session, Some(run))?;
    match matches.len() {
        1 => Ok(matches.remove(0)),
        0 => Err(invalid(format!(
            "no quarantine file matches `{run}`; `hushflow quarantine list` shows the runs that \
             quarantined records"
        ))),
        n => Err(invalid(format!(
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
fn run_id(path: &std::path::Path) -> Option<String> {
    let name = path
        .file_name()?
        .to_str()?
        .strip_suffix(quarantine::SUFFIX)?;
    name.rsplit_once('-').map(|(_, id)| id.to_owned())
}

fn pipeline_name(path: &std::path::Path) -> Option<String> {
    let name = path
        .file_name()?
        .to_str()?
        .strip_suffix(quarantine::SUFFIX)?;
    name.rsplit_once('-').map(|(p, _)| p.to_owned())
}

/// The identity that opens this state directory's quarantine files.
fn identity_of(
    session: &Session<'_>,
    keyring: &hushflow_crypto::Keyring,
) -> Result<StateIdentity, Failure> {
    keyring.existing_identity().cloned().ok_or_else(|| {
        failure(format!(
            "the keyring in {} has no state identity, so it cannot open quarantine files: was \
             the keyring replaced?",
            session.state.root().display(),
        ))
    })
}

/// Decrypts one quarantine file.
fn read(
    path: &std::path::Path,
    identity: &StateIdentity,
) -> Result<Vec<QuarantinedRecord>, Failure> {
    quarantine::read(path, identity).map_err(failure)
}

fn list(session: &Session<'_>, run: Option<&str>, json: bool) -> Result<Exit, Failure> {
    let out = session.out;
    let files = files(session, run)?;
    // Opened once for every file (and only when there is one to read).
    let identity = match files.is_empty() {
        true => None,
        false => Some(identity_of(session, &session.keyring()?)?),
    };
    if files.is_empty() && !json {
        out.line(match run {
            Some(r) => format!("no quarantine file matches `{r}`"),
            None => "no records are quarantined".to_string(),
        });
    }
    for path in files {
        let Some(identity) = &identity else { break };
        let records = read(&path, identity)?;
        let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
        for r in &records {
            *reasons.entry(r.code.as_str()).or_default() += 1;
        }
        let run = run_id(&path).unwrap_or_default();
        let pipeline = pipeline_name(&path).unwrap_or_default();
        if json {
            let line = serde_json::json!({
                "run": run,
                "pipeline": pipeline,
                "records": records.len(),
                "reasons": reasons,
                "file": path,
            });
            out.line(line.to_string());
        } else {
            let reasons: Vec<String> = reasons.iter().map(|(k, v)| format!("{k} {v}")).collect();
            out.line(format!(
                "{run}  {pipeline:<24} {:>7} records  {}",
                records.len(),
                reasons.join(", ")
            ));
        }
    }
    Ok(Exit::Success)
}

fn export(session: &Session<'_>, run: &str, out_path: PathBuf) -> Result<Exit, Failure> {
    let out = session.out;
    let path = one_file(session, run)?;
    let records = read(&path, &identity_of(session, &session.keyring()?)?)?;
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
    let written = create_private(&out_path).and_then(|mut file| {
        write(&mut file).map_err(|e| failure(format!("{}: {e}", out_path.display())))
    });
    // Every attempt is audited with what really happened. A file written but not audited is
    // removed again: nothing leaves the quarantine without its audit record.
    let audited = session.audit(
        "quarantine.export",
        format!("run {run} to {}", out_path.display()),
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
            let _ = std::fs::remove_file(&out_path);
        }
        return Err(e);
    }
    written?;
    out.note(format!(
        "warning: {} holds personal data in plain text; delete it when done",
        out_path.display()
    ));
    out.line(format!(
        "exported {} quarantined records of run {run} to {} (mode 0600)",
        records.len(),
        out_path.display()
    ));
    Ok(Exit::Success)
}

fn replay(
    session: &Session<'_>,
    run: &str,
    pipeline: PathBuf,
    out_path: Option<PathBuf>,
) -> Result<Exit, Failure> {
    let path = one_file(session, run)?;
    let run = run_id(&path).unwrap_or_default();
    let pipeline = pipeline.as_path();
    let mut prepared = super::run::prepare(session, pipeline)?;
    let plan = &mut prepared.plan;
    let from = pipeline_name(&path).unwrap_or_default();
    if plan.name != from {
        return Err(invalid(format!(
            "run {run} was a run of pipeline `{from}`, and {} is pipeline `{}`; pass the \
             pipeline file it came through",
            pipeline.display(),
            plan.name
        )));
    }
    // A file sink is written anew: the replayed records go to a file beside it.
    if !plan.sink.keeps_rows() {
        let target = out_path.unwrap_or_else(|| beside(plan.sink.location(), &run));
        plan.sink.relocate(&target);
    } else if out_path.is_some() {
        return Err(invalid(
            "--out is for file sinks; this pipeline's sink is a table, which gets the records",
        ));
    }
    // The keyring the pipeline's keys came from opens the quarantine too; its sidecar's tag
    // proves that this state directory wrote the records.
    let identity = identity_of(session, &prepared.keyring)?;
    let mac = hushflow_state::seal::StateMac::new(&identity);
    let (_, records) = quarantine::read_authenticated(&path, &identity, &mac).map_err(failure)?;
    session.out.line(format!(
        "replaying {} quarantined records of run {run} through {}",
        records.len(),
        pipeline.display()
    ));
    let replay = hushflow_engine::Replay {
        run_id: &run,
        records: &records,
    };
    let options = super::run::RunOptions {
        replay: Some(replay),
        ..Default::default()
    };
    super::run::execute(session, prepared, options)
}

/// `out/leads.csv` → `out/leads.replay-RUN.csv`.
fn beside(sink: &std::path::Path, run: &str) -> PathBuf {
    let stem = sink
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match sink.extension() {
        Some(ext) => format!("{stem}.replay-{run}.{}", ext.to_string_lossy()),
        None => format!("{stem}.replay-{run}"),
    };
    sink.with_file_name(name)
}
