//! `hushflow validate` and `hushflow run`.

use super::{Exit, Failure, Session, failure, invalid};
use hushflow_app::views::RunSummaryView;
use hushflow_crypto::Keyring;
use hushflow_engine::{KeyMaterial, Outcome, Replay, RunContext};
use hushflow_spec::Plan;
use hushflow_spec::plan::Connections;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::Path;
use std::time::Duration;

/// A checked pipeline with its secrets resolved: the shared first half of validate and run.
pub(super) struct Prepared {
    pub plan: Plan,
    pub keys: KeyMaterial,
    pub keyring: Keyring,
    pub connections: Connections,
}

/// How `execute` runs a prepared pipeline.
#[derive(Default)]
pub(super) struct RunOptions<'a> {
    pub workers: Option<usize>,
    pub fresh: bool,
    pub full_refresh: bool,
    /// `--partition i/n`: move only that partition's records.
    pub partition: Option<hushflow_engine::Partition>,
    pub replay: Option<Replay<'a>>,
    /// Receives the run's report for the worker (its counts go to the metadata store, the
    /// rest to the worker's metrics).
    pub counts: Option<&'a std::cell::Cell<Option<super::executor::ChildReport>>>,
    /// Where to write the metrics at the end (`--metrics-file`), for node_exporter.
    pub metrics_file: Option<std::path::PathBuf>,
    /// Print the summary as one JSON object instead of lines.
    pub json: bool,
}

/// Loads and checks a pipeline, then resolves its keys and connections.
pub(super) fn prepare(session: &Session<'_>, pipeline: &Path) -> Result<Prepared, Failure> {
    let plan = hushflow_spec::plan::load(
        pipeline,
        &super::secret_providers(None),
        &session.protected(),
    )
    .map_err(invalid)?;
    prepare_plan(session, plan)
}

/// Resolves a checked plan's keys and connections (a task of a DAG arrives as a plan).
pub(super) fn prepare_plan(session: &Session<'_>, mut plan: Plan) -> Result<Prepared, Failure> {
    let keyring = session.keyring()?;
    let resolver = super::resolver(&session.out.redactor, Some(&keyring));
    let mut keys = plan.resolve_keys(&resolver, &keyring).map_err(invalid)?;
    // The managed suppression list's key (made by `hushflow dsr`), for every run to consult it.
    if keyring.contains(hushflow_state::erased::KEY_NAME) {
        let (info, material) = keyring
            .get(hushflow_state::erased::KEY_NAME)
            .map_err(failure)?;
        keys.insert(
            hushflow_state::erased::key_reference(),
            hushflow_engine::ResolvedKey {
                id: info.id,
                material,
            },
        );
    }
    let (mut connections, warnings) = plan.resolve_connections(&resolver).map_err(invalid)?;
    // A refresh token its issuer rotates during the run is written back into the keyring.
    connections.set_saver(std::sync::Arc::new(
        hushflow_app::secrets::KeyringSaver::new(session.app.clone(), session.actor.clone()),
    ));
    // The resolver borrows the keyring, which moves into the result.
    drop(resolver);
    plan.warnings.extend(warnings);
    Ok(Prepared {
        plan,
        keys,
        keyring,
        connections,
    })
}

/// How far `validate` goes beyond the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Depth {
    /// The file alone: no secret resolved, no connection opened.
    Offline,
    /// Secrets resolved (keys, connection URLs), TLS settings checked; nothing opened.
    Secrets,
    /// Also opens the source and connects to the sink (`hushflow check`).
    Connect,
}

impl Depth {
    pub(super) fn of(offline: bool) -> Depth {
        if offline {
            Depth::Offline
        } else {
            Depth::Secrets
        }
    }
}

/// Checks one sync's plan as deep as asked and prints it.
fn validate_plan(session: &Session<'_>, plan: Plan, depth: Depth) -> Result<(), Failure> {
    let out = session.out;
    let plan = match depth {
        Depth::Offline => plan,
        Depth::Secrets => prepare_plan(session, plan)?.plan,
        Depth::Connect => {
            let prepared = prepare_plan(session, plan)?;
            hushflow_engine::check(&prepared.plan, &prepared.connections)
                .map_err(|e| failure(format!("{}: {e}", prepared.plan.file.display())))?;
            prepared.plan
        }
    };
    for w in &plan.warnings {
        out.note(format!("warning: {w}"));
    }
    out.line(plan.to_string().trim_end());
    if depth == Depth::Connect {
        out.line(format!(
            "checked   the source opens and the sink connects ({} → {})",
            plan.source.kind(),
            plan.sink.kind()
        ));
    }
    Ok(())
}

/// `hushflow check`: one line per secret reference of the pipeline file (`references`, where
/// each is and its text), `ok` or the reason it does not resolve (never the value); fails
/// (exit 1) when any does not, after reporting them all.
fn check_secrets(
    session: &Session<'_>,
    pipeline: &Path,
    references: Vec<(String, String)>,
) -> Result<(), Failure> {
    let out = session.out;
    let keyring = session.keyring()?;
    let resolver = super::resolver(&out.redactor, Some(&keyring));
    let base = pipeline.parent().unwrap_or(Path::new(""));
    let checks = hushflow_app::secrets::check_references(references, base, &resolver);
    let failed = checks.iter().filter(|c| !c.ok()).count();
    for c in &checks {
        match &c.error {
            None => out.line(format!("secret    {}  ok  {}", c.at, c.reference)),
            Some(e) => out.line(format!("secret    {}  {}  {e}", c.at, c.status)),
        }
    }
    if failed > 0 {
        return Err(failure(format!(
            "{}: {failed} of {} secret references do not resolve",
            pipeline.display(),
            checks.len()
        )));
    }
    Ok(())
}

pub(super) fn validate(
    session: &Session<'_>,
    pipeline: &Path,
    depth: Depth,
) -> Result<Exit, Failure> {
    let out = session.out;
    let mut dag = hushflow_spec::dag::load(
        pipeline,
        &super::secret_providers(None),
        &session.protected(),
    )
    .map_err(invalid)?;
    // A one-sync file is a DAG of one task; its plan is validated like any task's.
    let plan = match dag.tasks.as_slice() {
        [t] if t.name == hushflow_spec::dag::SYNC_TASK => match dag.tasks.pop().map(|t| t.kind) {
            Some(hushflow_spec::dag::TaskKind::Sync(plan)) => *plan,
            _ => {
                return Err(failure(
                    "a one-sync pipeline did not load as a sync; this is a bug",
                ));
            }
        },
        _ => return validate_dag(session, pipeline, dag, depth),
    };
    if depth == Depth::Connect {
        check_secrets(session, pipeline, plan.secret_references())?;
    }
    validate_plan(session, plan, depth)?;
    out.line(format!("{}: valid", pipeline.display()));
    Ok(Exit::Success)
}

/// A DAG file: the schedule, the graph and every sync task's plan, secrets resolved.
fn validate_dag(
    session: &Session<'_>,
    pipeline: &Path,
    dag: hushflow_spec::dag::Dag,
    depth: Depth,
) -> Result<Exit, Failure> {
    use hushflow_spec::dag::{CATCHUP_COUNT_LIMIT, NextRun, TaskKind};
    use hushflow_spec::schedule::rfc3339;
    let out = session.out;
    out.line(format!(
        "pipeline  {} ({} tasks)",
        dag.name,
        dag.tasks.len()
    ));
    match &dag.schedule {
        Some(s) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let next = match dag.next_run(now) {
                NextRun::Never => "never".to_string(),
                NextRun::At(at) => rfc3339(at),
                NextRun::Now { intervals: 1 } => "at the first tick (an interval has ended)".into(),
                NextRun::Now { intervals } if intervals >= CATCHUP_COUNT_LIMIT => format!(
                    "at the first tick (catching up more than {CATCHUP_COUNT_LIMIT} intervals)"
                ),
                NextRun::Now { intervals } => {
                    format!("at the first tick (catching up {intervals} intervals)")
                }
            };
            out.line(format!(
                "schedule  {} in {} (catchup {}, at most {} active run(s)); next {next}",
                s.expression(),
                s.timezone(),
                if dag.catchup { "on" } else { "off" },
                dag.max_active_runs
            ));
            for warning in dag.schedule_warnings(now) {
                out.line(format!("warning: {warning}"));
            }
        }
        None => out.line("schedule  none (manual runs: `hushflow trigger`)"),
    }
    for (pool, slots) in &dag.pools {
        out.line(format!("pool      {pool}: {slots} slot(s)"));
    }
    if depth == Depth::Connect {
        // Every task's references first, so that one report lists all that fail.
        let mut references = Vec::new();
        if let Some(hook) = &dag.on_failure_webhook {
            references.push(("pipeline.on_failure_webhook".to_string(), hook.clone()));
        }
        for task in &dag.tasks {
            match &task.kind {
                TaskKind::Sync(plan) => references.extend(
                    plan.secret_references()
                        .into_iter()
                        .map(|(at, r)| (format!("tasks.{}.{at}", task.name), r)),
                ),
                TaskKind::Sql {
                    database: hushflow_spec::dag::SqlDatabase::Postgres(r),
                    ..
                } => references.push((format!("tasks.{}.database", task.name), r.clone())),
                _ => {}
            }
        }
        check_secrets(session, pipeline, references)?;
    }
    for task in dag.tasks {
        let deps = if task.depends_on.is_empty() {
            String::new()
        } else {
            format!(
                " after {} ({})",
                task.depends_on.join(", "),
                task.trigger_rule.as_str()
            )
        };
        out.line(format!(
            "\ntask      {} [{}]{deps}; retries {} from {:?}, timeout {}{}",
            task.name,
            task.kind.as_str(),
            task.retry.retries,
            task.retry.delay,
            task.timeout.map_or("none".into(), |t| format!("{t:?}")),
            task.pool
                .as_ref()
                .map_or(String::new(), |p| format!(", pool {p}"))
        ));
        if let TaskKind::Sync(plan) = task.kind {
            validate_plan(session, *plan, depth)?;
        }
    }
    out.line(format!("{}: valid", pipeline.display()));
    Ok(Exit::Success)
}

pub(super) fn run(
    session: &Session<'_>,
    pipeline: &Path,
    options: RunOptions<'_>,
) -> Result<Exit, Failure> {
    let plan = hushflow_spec::plan::load(
        pipeline,
        &super::secret_providers(None),
        &session.protected(),
    )
    .map_err(invalid)?;
    if plan.has_templates() {
        return Err(invalid(format!(
            "{}: uses {{{{ … }}}} templates, which a run of the scheduler fills in (run it with \
             `hushflow trigger {} --wait`), or --data-interval-start and --data-interval-end",
            pipeline.display(),
            pipeline.display()
        )));
    }
    execute(session, prepare_plan(session, plan)?, options)
}

/// Runs a checked plan (or replays a quarantine through it) and prints the summary.
pub(super) fn execute(
    session: &Session<'_>,
    prepared: Prepared,
    options: RunOptions<'_>,
) -> Result<Exit, Failure> {
    let Prepared {
        mut plan,
        keys,
        mut keyring,
        connections,
    } = prepared;
    let out = session.out;
    if options.metrics_file.is_some() {
        hushflow_metrics::exporter::install().map_err(failure)?;
    }
    // Quarantined and staged records are encrypted to the state directory's identity, made on
    // first use.
    let identity = keyring.state_identity().map_err(failure)?.clone();
    if let Some(n) = options.workers {
        plan.workers = n;
    }
    for w in &plan.warnings {
        out.note(format!("warning: {w}"));
    }
    let bar = progress_bar();
    let progress = |read: u64| bar.set_position(read);
    let ctx = RunContext {
        state: &session.state,
        identity: &identity,
        fresh: options.fresh,
        replay: options.replay,
        connections: &connections,
        full_refresh: options.full_refresh,
        partition: options.partition,
        actor: session.actor.audit_name(),
        progress: &progress,
    };
    let report = hushflow_engine::run(&plan, &keys, &ctx).map_err(failure)?;
    bar.finish_and_clear();
    let facts = super::executor::ChildReport::of_sync(&report);
    // A one-off run is its own task; under a worker, the worker records it (the child has no
    // recorder, so this is then a no-op).
    facts.record_metrics(&plan.name, "run");
    if let Some(path) = &options.metrics_file {
        hushflow_metrics::exporter::write_textfile(path).map_err(|e| {
            failure(format!(
                "--metrics-file {}: {e}; the run itself is done (see the audit log)",
                path.display()
            ))
        })?;
    }
    if let Some(cell) = options.counts {
        cell.set(Some(facts));
    }

    if options.json {
        // The summary as one object: counts, never values; the error text names files, lines
        // and fields only.
        let summary = RunSummaryView::new(&plan.name, &report);
        out.line(serde_json::to_string(&summary).map_err(failure)?);
        return match (&report.error, report.outcome) {
            (Some(e), _) => Err(failure(format!("sync {} failed: {e}", report.run_id))),
            (None, Outcome::Partial) => Ok(Exit::Partial),
            (None, _) => Ok(Exit::Success),
        };
    }
    if report.resumed {
        out.line(format!(
            "resumed sync {} from its staged data; the source was not read again",
            report.run_id
        ));
    }
    let c = &report.counts;
    if let Some(p) = report.partition {
        out.line(format!(
            "partition {p}: {} record(s) of other partitions left out",
            c.other_partitions
        ));
    }
    out.line(format!(
        "{} {}: read {}, written {}, filtered {}, quarantined {} in {:.2}s ({:.0} records/s)",
        plan.name,
        report.outcome.as_str(),
        c.read,
        c.written,
        c.filtered,
        c.quarantined,
        report.elapsed.as_secs_f64(),
        report.records_per_second(),
    ));
    if c.withdrawn > 0 {
        out.line(format!(
            "withdrawn: {} record(s) filtered by consent or suppression had their rows {} in \
             the sink",
            c.withdrawn,
            match plan.on_withdrawal {
                hushflow_engine::Withdrawal::Tombstone => "tombstoned",
                _ => "deleted",
            }
        ));
    }
    if let Some(q) = &report.quarantine {
        let reasons: Vec<String> = report
            .reasons
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        out.line(format!(
            "quarantine: {} ({})",
            q.display(),
            reasons.join(", ")
        ));
    }
    match (&report.error, report.outcome) {
        (Some(e), _) => Err(failure(format!("sync {} failed: {e}", report.run_id))),
        (None, Outcome::Partial) => {
            out.line(format!("results: {}", report.sink.display()));
            Ok(Exit::Partial)
        }
        (None, _) => {
            out.line(format!("results: {}", report.sink.display()));
            Ok(Exit::Success)
        }
    }
}

/// A counter on a terminal, nothing in a pipe or a log file.
fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(8));
    bar.set_style(
        ProgressStyle::with_template("{spinner} {human_pos} records read ({per_sec}) {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(125));
    bar
}
