//! `hushflow quarantine`: list a run's quarantined records by reason, and decrypt them for an
//! authorized operator (audited). The files are age-encrypted to the state identity, so every
//! subcommand needs the keyring (and its master key, when sealed). Listing and exporting are the
//! app layer's actions (`hushflow_app::actions::quarantine`); a replay is a sync run, here.

use super::{Exit, Failure, Session, failure, invalid};
use crate::cli::{
    QuarantineCommand, QuarantineExportArgs, QuarantineListArgs, QuarantineReplayArgs,
    QuarantineRun,
};
use hushflow_app::actions::quarantine as actions;
use hushflow_crypto::StateIdentity;
use hushflow_state::quarantine;
use std::path::PathBuf;

pub(super) fn quarantine(session: &Session<'_>, cmd: QuarantineCommand) -> Result<Exit, Failure> {
    match cmd {
        QuarantineCommand::List(QuarantineListArgs { run, json }) => {
            list(session, run.as_deref(), json)
        }
        QuarantineCommand::Export(QuarantineExportArgs {
            run: QuarantineRun { run },
            out,
        }) => export(session, &run, out),
        QuarantineCommand::Replay(QuarantineReplayArgs {
            run: QuarantineRun { run },
            pipeline,
            out,
        }) => replay(session, &run, pipeline, out),
    }
}

/// The identity that opens the quarantine files, from the keyring (opened now).
fn identity(session: &Session<'_>) -> hushflow_app::Result<StateIdentity> {
    let keyring = session.keyring().map_err(Failure::into_app)?;
    actions::identity(&session.app, &keyring)
}

fn list(session: &Session<'_>, run: Option<&str>, json: bool) -> Result<Exit, Failure> {
    let out = session.out;
    let files = actions::list(&session.app, run, || identity(session))?;
    if files.is_empty() && !json {
        out.line(match run {
            Some(r) => format!("no quarantine file matches `{r}`"),
            None => "no records are quarantined".to_string(),
        });
    }
    for f in files {
        if json {
            out.line(serde_json::to_string(&f).map_err(failure)?);
        } else {
            let reasons: Vec<String> = f.reasons.iter().map(|(k, v)| format!("{k} {v}")).collect();
            out.line(format!(
                "{}  {:<24} {:>7} records  {}",
                f.run,
                f.pipeline,
                f.records,
                reasons.join(", ")
            ));
        }
    }
    Ok(Exit::Success)
}

fn export(session: &Session<'_>, run: &str, out_path: PathBuf) -> Result<Exit, Failure> {
    let out = session.out;
    let e = actions::export(&session.app, &session.actor, run, &out_path, || {
        identity(session)
    })?;
    out.note(format!(
        "warning: {} holds personal data in plain text; delete it when done",
        e.path.display()
    ));
    out.line(format!(
        "exported {} quarantined records of sync {} to {} (mode 0600)",
        e.records,
        e.run,
        e.path.display()
    ));
    Ok(Exit::Success)
}

fn replay(
    session: &Session<'_>,
    run: &str,
    pipeline: PathBuf,
    out_path: Option<PathBuf>,
) -> Result<Exit, Failure> {
    let path = actions::one_file(&session.app, run)?;
    let run = actions::run_id(&path).unwrap_or_default();
    let pipeline = pipeline.as_path();
    let mut prepared = super::run::prepare(session, pipeline)?;
    let plan = &mut prepared.plan;
    let from = actions::pipeline_name(&path).unwrap_or_default();
    if plan.name != from {
        return Err(invalid(format!(
            "sync {run} was a sync of pipeline `{from}`, and {} is pipeline `{}`; pass the \
             pipeline file it came through",
            pipeline.display(),
            plan.name
        )));
    }
    // A file sink is written anew: the replayed records go to a file beside it.
    if !plan.sink.keeps_rows() {
        let target = out_path.unwrap_or_else(|| beside(plan.sink.location(), &run));
        plan.relocate_sink(&target).map_err(invalid)?;
    } else if out_path.is_some() {
        return Err(invalid(
            "--out is for file sinks; this pipeline's sink is a table, which gets the records",
        ));
    }
    // The keyring the pipeline's keys came from opens the quarantine too; its sidecar's tag
    // proves that this state directory wrote the records.
    let identity = actions::identity(&session.app, &prepared.keyring)?;
    let mac = hushflow_state::seal::StateMac::new(&identity);
    let (_, records) = quarantine::read_authenticated(&path, &identity, &mac).map_err(failure)?;
    session.out.line(format!(
        "replaying {} quarantined records of sync {run} through {}",
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
