//! Retention: a sink that says `retain = "400d"` with `retain_by = "updated_at"` keeps rows
//! for that long; `enforce` deletes, for every pipeline of a directory, the rows whose field is
//! older, and audits each sink with its count.

use crate::views::{RetentionView, VIEW_VERSION};
use crate::{Actor, Error, Result, Session};
use hushflow_connectors::SinkContext;
use hushflow_scheduler::{Clock, SystemClock};
use hushflow_secrets::KeyProvider;
use std::collections::BTreeMap;
use std::path::Path;

/// Deletes the rows past their retention in every sink of the pipelines in `dir` that has one.
pub fn enforce(session: &Session, actor: &Actor, dir: &Path) -> Result<Vec<RetentionView>> {
    enforce_plans(session, actor, super::dsr::plans(session, dir)?)
}

/// [`enforce`] over given sync plans (a DAG's `retention` task: its file's sync tasks).
pub fn enforce_plans(
    session: &Session,
    actor: &Actor,
    plans: Vec<hushflow_spec::Plan>,
) -> Result<Vec<RetentionView>> {
    let keyring = session.keyring()?;
    let mut views = Vec::new();
    for plan in plans {
        let Some((retain, by)) = plan.sink.retention() else {
            continue;
        };
        let age = hushflow_spec::duration::parse(retain, hushflow_spec::duration::Unit::Days)
            .map_err(|e| Error::invalid(format!("pipeline {}: sink.retain {e}", plan.name)))?;
        let cutoff = SystemClock.now() - i64::try_from(age.as_millis()).unwrap_or(i64::MAX / 2);
        let cutoff = hushflow_spec::schedule::rfc3339(cutoff);
        let resolver =
            crate::secrets::resolver(session.redactor(), Some(&keyring as &dyn KeyProvider));
        let (connections, _) = plan
            .resolve_connections(&resolver)
            .map_err(|e| Error::invalid(format!("pipeline {}: {e}", plan.name)))?;
        let ctx = SinkContext {
            base: plan.file.parent().unwrap_or(Path::new("")),
            key: &plan.key,
            column_types: plan.column_types(),
            connections: &connections,
        };
        let failed =
            |e: hushflow_core::Error| Error::failed(format!("pipeline {}: {e}", plan.name));
        let sink = format!("{} {}", plan.sink.kind(), plan.sink.location().display());
        let Some(mut rows) = plan.sink.rows(&ctx).map_err(failed)? else {
            return Err(Error::invalid(format!(
                "pipeline {}: the {} sink cannot delete rows by age",
                plan.name,
                plan.sink.kind()
            )));
        };
        let deleted = rows.delete_before(by, &cutoff).map_err(failed)?;
        session.audit_task(
            actor,
            "retention.enforce",
            &plan.name,
            format!("{sink}: rows with {by} before {cutoff} (retain {retain}) deleted"),
            BTreeMap::from([("rows_deleted".to_string(), deleted)]),
            "success",
        )?;
        views.push(RetentionView {
            version: VIEW_VERSION,
            pipeline: plan.name.clone(),
            sink,
            retain_by: by.to_string(),
            retain: retain.to_string(),
            cutoff,
            rows_deleted: deleted,
        });
    }
    Ok(views)
}
