//! `hushflow run --task NAME` and `--data-interval-start/--data-interval-end`: one task of a
//! pipeline file, run once in this process with the run values of an outside orchestrator
//! (Airflow's data interval, logical date and run id) filling its `{{ … }}` templates. No
//! metadata store is involved: the orchestrator keeps the runs, tries and dependencies.

use super::executor::TaskOrder;
use super::run::RunOptions;
use super::task_exec::{TryAt, execute_task, template_vars};
use super::{Exit, Failure, Session, invalid};
use crate::cli::ExternalRun;
use hushflow_spec::dag;
use hushflow_spec::schedule::parse_instant;
use std::collections::BTreeMap;
use std::path::Path;

/// Whether `hushflow run` was given anything that makes it an externally driven run.
pub(super) fn wanted(external: &ExternalRun) -> bool {
    external.task.is_some() || external.data_interval_start.is_some()
}

/// An RFC 3339 time given for `flag`, in milliseconds since the epoch.
fn instant(flag: &str, text: &str) -> Result<i64, Failure> {
    parse_instant(text, None).map_err(|_| {
        invalid(format!(
            "{flag}: not an RFC 3339 time (such as 2026-12-01T00:00:00+00:00; in Airflow, \
             `{{{{ data_interval_start.isoformat() }}}}`)"
        ))
    })
}

/// A run id fills `{{ run_id }}` in TOML strings and SQL literals: what Airflow's default
/// `allowed_run_id_pattern` (`^[A-Za-z0-9_.~:+-]+$`) lets through passes, and `/` and `@` as in
/// `--conf` values; a quote or a backslash cannot.
fn check_run_id(id: &str) -> Result<(), Failure> {
    let safe = !id.is_empty()
        && id.len() <= 250
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.~:+/@".contains(c));
    if safe {
        Ok(())
    } else {
        Err(invalid(
            "--run-id may hold only 1 to 250 letters, digits and - _ . ~ : + / @",
        ))
    }
}

/// Runs the task `external` names (or a one-sync file's sync) of `pipeline`, its templates
/// filled from the interval given.
pub(super) fn run(
    session: &Session<'_>,
    pipeline: &Path,
    external: &ExternalRun,
    options: RunOptions<'_>,
) -> Result<Exit, Failure> {
    let text = hushflow_spec::pipeline::read(pipeline).map_err(invalid)?;
    let mut run_id = String::from("external");
    let text = match (&external.data_interval_start, &external.data_interval_end) {
        (Some(start), Some(end)) => {
            let interval_start = instant("--data-interval-start", start)?;
            let interval_end = instant("--data-interval-end", end)?;
            if interval_end < interval_start {
                return Err(invalid(
                    "--data-interval-end is before --data-interval-start",
                ));
            }
            let logical_date = match &external.logical_date {
                Some(t) => instant("--logical-date", t)?,
                None => interval_start,
            };
            run_id = match &external.run_id {
                Some(id) => id.clone(),
                None => format!(
                    "external__{}",
                    hushflow_spec::schedule::rfc3339(logical_date)
                ),
            };
            check_run_id(&run_id)?;
            for (k, v) in &external.conf {
                hushflow_app::actions::orchestration::check_conf(k, v)?;
            }
            let order = TaskOrder {
                file: pipeline.to_path_buf(),
                text: String::new(),
                pipeline: String::new(),
                task: String::new(),
                run_id: run_id.clone(),
                logical_date,
                interval_start,
                interval_end,
                conf: external.conf.iter().cloned().collect::<BTreeMap<_, _>>(),
                attempt: 1,
                timeout_ms: None,
            };
            dag::render(&text, &template_vars(&order))
                .map_err(|e| invalid(format!("{}: {e}", pipeline.display())))?
        }
        _ if text.contains("{{") => {
            // Checked first, so that a template name that no run provides is named.
            dag::parse(
                pipeline,
                text,
                &super::secret_providers(None),
                &session.protected(),
            )
            .map_err(invalid)?;
            return Err(invalid(format!(
                "{}: uses {{{{ … }}}} templates; give the run's --data-interval-start and \
                 --data-interval-end (and --logical-date, --run-id) to fill them",
                pipeline.display()
            )));
        }
        _ => text,
    };
    let d = dag::parse(
        pipeline,
        text,
        &super::secret_providers(None),
        &session.protected(),
    )
    .map_err(invalid)?;
    let names = || {
        d.tasks
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let index = match &external.task {
        Some(name) => d
            .tasks
            .iter()
            .position(|t| &t.name == name)
            .ok_or_else(|| {
                invalid(format!(
                    "{}: the pipeline {} has no task `{name}` (its tasks: {})",
                    pipeline.display(),
                    d.name,
                    names()
                ))
            })?,
        None => match d.tasks.as_slice() {
            [t] if t.name == dag::SYNC_TASK => 0,
            _ => {
                return Err(invalid(format!(
                    "{}: a DAG of tasks; name the one to run with --task (one of: {})",
                    pipeline.display(),
                    names()
                )));
            }
        },
    };
    let task = d
        .tasks
        .get(index)
        .map(|t| t.name.clone())
        .unwrap_or_default();
    let timeout_ms = d
        .tasks
        .get(index)
        .and_then(|t| t.timeout)
        .map(|t| t.as_millis() as i64);
    let at = TryAt {
        pipeline: &d.name,
        task: &task,
        run_id: &run_id,
        attempt: 1,
        timeout_ms,
        file: pipeline,
    };
    let json = options.json;
    let is_sync = matches!(
        d.tasks.get(index).map(|t| &t.kind),
        Some(dag::TaskKind::Sync(_))
    );
    let (result, counts) = execute_task(session, d.tasks, index, &at, options);
    // A sync prints its own summary; the other kinds say what they changed, counts only.
    if json
        && !is_sync
        && let Ok(exit) = &result
    {
        let summary = serde_json::json!({
            "version": hushflow_app::views::VIEW_VERSION,
            "pipeline": at.pipeline,
            "task": at.task,
            "outcome": if *exit == Exit::Success { "success" } else { "partial" },
            "counts": { "written": counts.and_then(|c| c.written).unwrap_or(0) },
        });
        session.out.line(summary.to_string());
    }
    result
}
