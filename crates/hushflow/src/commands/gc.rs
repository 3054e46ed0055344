//! `hushflow gc`: removes staged runs past their retention, and temporary keyring files that
//! killed processes left behind (audited, with counts only).

use super::{Exit, Failure, Session, failure};
use hushflow_crypto::Keyring;
use hushflow_engine::staging;
use std::collections::BTreeMap;

pub(super) fn gc(session: &Session<'_>, unfinished: bool) -> Result<Exit, Failure> {
    let out = session.out;
    // Plain key material, for an unsealed keyring; the next open of the keyring removes them too.
    let leftovers = Keyring::remove_leftovers(session.state.root()).map_err(failure)? as u64;
    if leftovers > 0 {
        out.line(format!(
            "removed {leftovers} temporary keyring file(s) left by killed processes"
        ));
    }
    let (mut removed, mut kept, mut bytes) = (0u64, 0u64, 0u64);
    for run in staging::all_runs(&session.state).map_err(failure)? {
        if !run.expired(unfinished) {
            kept += 1;
            continue;
        }
        let (pipeline, id) = (
            run.manifest().pipeline.clone(),
            run.manifest().run_id.clone(),
        );
        bytes += run.size();
        run.remove().map_err(failure)?;
        removed += 1;
        out.line(format!("removed staged run {id} of {pipeline}"));
    }
    session.audit(
        "gc",
        format!(
            "staged runs{}",
            if unfinished { ", unfinished too" } else { "" }
        ),
        BTreeMap::from([
            ("removed".to_string(), removed),
            ("kept".to_string(), kept),
            ("bytes".to_string(), bytes),
            ("keyring_temporary_files".to_string(), leftovers),
        ]),
        "ok",
    )?;
    out.line(format!(
        "gc: removed {removed} staged runs ({bytes} bytes), kept {kept}"
    ));
    Ok(Exit::Success)
}
