//! The JSON API under `/api/v1`: the app layer's view types as bodies, one handler per route
//! of [`crate::routes::ROUTES`]. The permission a route needs was checked before its handler
//! runs; a handler whose answer spans pipelines keeps only those the caller's grants cover, and
//! one about a run checks the run's pipeline.

use crate::access::Permission;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use hushflow_app::actions::orchestration::{self, PipelineRef};
use hushflow_app::actions::{audit, keys, quarantine};
use hushflow_app::views::{
    AuditRecordView, AuditVerifyView, ClearedView, KeyView, LogView, PipelineView,
    QuarantineFileView, RunView, TaskView, TokenView, TriggeredView, UserView,
};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The most runs one answer lists.
pub const MAX_RUNS: i64 = 1000;

/// `GET /api/v1/runs` and the dashboard's pipeline page: which runs.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Only this pipeline's runs.
    #[param(pattern = "^[A-Za-z0-9_.-]{1,100}$")]
    pub pipeline: Option<String>,
    /// The newest this many (1 to 1000; 50 by default).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// `GET /api/v1/quarantine`: which sync runs.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QuarantineQuery {
    /// Only the sync runs whose id contains this.
    pub sync: Option<String>,
}

/// `POST /api/v1/pipelines/{pipeline}/trigger`: the run's configuration.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerBody {
    /// The run configuration (`{{ conf.KEY }}` in the pipeline's templates); keys naming a
    /// secret are refused.
    #[serde(default)]
    #[schema(schema_with = conf_schema)]
    pub conf: BTreeMap<String, String>,
}

/// What a run configuration's keys and values may hold (`check_conf` of the app layer): text
/// that cannot break out of a TOML string or a SQL literal.
const CONF_PATTERN: &str = "^[A-Za-z0-9_.:+/@ -]+$";

/// The schema of `conf`: string values, keys and values matching [`CONF_PATTERN`].
fn conf_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let text = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(CONF_PATTERN))
            .build()
    };
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(text()))
        .additional_properties(Some(utoipa::openapi::schema::Schema::Object(text())))
        .description(Some(
            "Run configuration: letters, digits, spaces and - _ . : + / @ in keys and values; a \
             key that names a secret (password, token, secret, api_key, credential, \
             private_key) is refused",
        ))
        .build()
}

/// `POST /api/v1/runs/{run}/clear`: which tasks.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClearBody {
    /// The tasks to run again, each with everything downstream; empty: the failed ones.
    #[serde(default)]
    pub tasks: Vec<String>,
}

/// A pipeline named in a path: a registered name only, never a file path; the characters a
/// pipeline's name may have (`hushflow-spec`'s rule).
pub(crate) fn registered(name: &str) -> Result<PipelineRef<'_>, ApiError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    match ok {
        true => Ok(PipelineRef::Registered(name)),
        false => Err(bad_request(
            "a pipeline is named by its registered name: letters, digits, '-', '_' and '.'",
        )),
    }
}

/// The longest pipeline name (`hushflow-spec`'s limit).
const MAX_NAME_CHARS: usize = 100;

fn bad_request(message: &str) -> ApiError {
    ApiError::new(axum::http::StatusCode::BAD_REQUEST, message)
}

/// A path that did not parse (invalid percent-encoding): 400, naming no value.
fn bad_path(_: PathRejection) -> ApiError {
    bad_request(
        "the path is not valid: a run is named by its number, a pipeline and a task by name",
    )
}

/// A query string that did not parse: 400, naming no value.
fn bad_query(_: QueryRejection) -> ApiError {
    bad_request(
        "the query string is not valid: `pipeline=NAME`, `limit=1..1000`, `sync=TEXT`, each once",
    )
}

/// A JSON body, optional: empty (or `null`) is the default; anything else must parse. The
/// error gives the line and column, never the text.
fn json_body<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    match serde_json::from_slice::<Option<T>>(body) {
        Ok(value) => Ok(value.unwrap_or_default()),
        Err(e) => Err(bad_request(&format!(
            "the body is not the JSON this operation takes (line {}, column {}); see /api/v1/openapi.json",
            e.line(),
            e.column()
        ))),
    }
}

fn check_pipeline(caller: &Caller, permission: Permission, pipeline: &str) -> Result<(), ApiError> {
    match caller.principal.may(permission, Some(pipeline)) {
        true => Ok(()),
        // Not told apart from a missing pipeline: a grant limited to some pipelines does not
        // reveal the others' names.
        false => Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "no such run or pipeline among those your role may see",
        )),
    }
}

/// The registered pipelines the caller may see.
pub(crate) async fn pipeline_views(
    state: &AppState,
    caller: &Caller,
) -> Result<Vec<PipelineView>, ApiError> {
    let mut all = state.blocking(|s| Ok(orchestration::pipelines(s)?)).await?;
    all.retain(|p| {
        caller
            .principal
            .may(Permission::ReadPipelines, Some(&p.pipeline))
    });
    Ok(all)
}

#[utoipa::path(get, path = "/api/v1/pipelines", tag = "pipelines",
    responses((status = 200, body = Vec<PipelineView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
/// The registered pipelines: paused or not, schedule, next run, the newest run's state.
pub async fn pipelines(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<PipelineView>>, ApiError> {
    Ok(Json(pipeline_views(&state, &caller).await?))
}

/// The newest runs, of one pipeline or all the caller may see.
pub(crate) async fn run_views(
    state: &AppState,
    caller: &Caller,
    pipeline: Option<String>,
    limit: i64,
) -> Result<Vec<RunView>, ApiError> {
    if !(1..=MAX_RUNS).contains(&limit) {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            format!("limit must be from 1 to {MAX_RUNS}"),
        ));
    }
    if let Some(p) = &pipeline {
        registered(p)?;
        check_pipeline(caller, Permission::ReadRuns, p)?;
    }
    let mut runs = state
        .blocking(move |s| Ok(orchestration::runs(s, pipeline.as_deref(), limit)?))
        .await?;
    runs.retain(|r| {
        caller
            .principal
            .may(Permission::ReadRuns, Some(&r.pipeline))
    });
    Ok(runs)
}

#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", params(RunsQuery),
    responses((status = 200, body = Vec<RunView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
/// Run history, newest first: states, intervals, durations, task counts.
pub async fn runs(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Result<Query<RunsQuery>, QueryRejection>,
) -> Result<Json<Vec<RunView>>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    Ok(Json(
        run_views(&state, &caller, q.pipeline, q.limit.unwrap_or(50)).await?,
    ))
}

/// A run's number from a path: digits only (a run id could name another pipeline's run).
pub(crate) fn run_number(run: &str) -> Result<i64, ApiError> {
    run.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "a run is named by its number (`run` in the runs list)",
        )
    })
}

/// A run and its tasks, when the caller may see the run's pipeline.
pub(crate) async fn run_tasks(
    state: &AppState,
    caller: &Caller,
    run: &str,
) -> Result<(RunView, Vec<TaskView>), ApiError> {
    let run = run_number(run)?.to_string();
    let found = state
        .blocking(move |s| Ok(orchestration::tasks(s, &run, None)?))
        .await?;
    check_pipeline(caller, Permission::ReadRuns, &found.run.pipeline)?;
    Ok((found.run, found.tasks))
}

#[utoipa::path(get, path = "/api/v1/runs/{run}/tasks", tag = "runs",
    params(("run" = i64, Path, minimum = 1, description = "The run's number")),
    responses((status = 200, body = Vec<TaskView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
/// The tasks of a run, in dependency order: states, tries, durations, record counts.
pub async fn tasks(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    run: Result<Path<String>, PathRejection>,
) -> Result<Json<Vec<TaskView>>, ApiError> {
    let Path(run) = run.map_err(bad_path)?;
    Ok(Json(run_tasks(&state, &caller, &run).await?.1))
}

/// A task's tries and their redacted logs, when the caller may see the run's pipeline.
pub(crate) async fn log_view(
    state: &AppState,
    caller: &Caller,
    run: &str,
    task: String,
) -> Result<LogView, ApiError> {
    let run = run_number(run)?.to_string();
    let log = state
        .blocking(move |s| {
            let mut log = orchestration::logs(s, &run, &task, None)?;
            // Logs were scrubbed by the worker that wrote them; scrubbed again with what this
            // process knows, in case.
            for t in &mut log.tries {
                if let Some(text) = &t.log {
                    t.log = Some(s.redactor().scrub(text).into_owned());
                }
            }
            Ok(log)
        })
        .await?;
    check_pipeline(caller, Permission::ReadLogs, &log.pipeline)?;
    Ok(log)
}

#[utoipa::path(get, path = "/api/v1/runs/{run}/tasks/{task}/log", tag = "runs",
    params(("run" = i64, Path, minimum = 1, description = "The run's number"), ("task" = String, Path, pattern = "^[A-Za-z0-9_-]{1,100}$", description = "The task's name")),
    responses((status = 200, body = LogView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
/// A task's tries and their logs, redacted.
pub async fn log(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<LogView>, ApiError> {
    let Path((run, task)) = path.map_err(bad_path)?;
    Ok(Json(log_view(&state, &caller, &run, task).await?))
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    responses((status = 200, body = Vec<AuditRecordView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
/// Every record of the audit log, in the order written.
pub async fn audit_list(
    State(state): State<AppState>,
) -> Result<Json<Vec<AuditRecordView>>, ApiError> {
    Ok(Json(state.blocking(|s| Ok(audit::list(s)?)).await?))
}

#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = AuditVerifyView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
/// The check of the audit log's hash chain and head anchor.
pub async fn audit_verify(
    State(state): State<AppState>,
) -> Result<Json<AuditVerifyView>, ApiError> {
    let _one_at_a_time = state.verifying.lock().await;
    Ok(Json(
        state
            .blocking(|s| Ok(AuditVerifyView::from(&audit::verify(s)?)))
            .await?,
    ))
}

/// The quarantine counts per sync run, of the pipelines the caller may see.
pub(crate) async fn quarantine_views(
    state: &AppState,
    caller: &Caller,
    sync: Option<String>,
) -> Result<Vec<QuarantineFileView>, ApiError> {
    let mut files = state
        .blocking(move |s| Ok(quarantine::counts(s, sync.as_deref())?))
        .await?;
    files.retain(|f| {
        caller
            .principal
            .may(Permission::ReadQuarantine, Some(&f.pipeline))
    });
    Ok(files)
}

#[utoipa::path(get, path = "/api/v1/quarantine", tag = "quarantine", params(QuarantineQuery),
    responses((status = 200, body = Vec<QuarantineFileView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
/// Quarantined records per sync run, counted by reason; never the records.
pub async fn quarantine_list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Result<Query<QuarantineQuery>, QueryRejection>,
) -> Result<Json<Vec<QuarantineFileView>>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    Ok(Json(quarantine_views(&state, &caller, q.sync).await?))
}

#[utoipa::path(get, path = "/api/v1/keys", tag = "keys",
    responses((status = 200, body = Vec<KeyView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
/// The keyring's key versions: names, purposes, versions; never material (audited).
pub async fn keys_list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    let actor = caller.principal.actor.clone();
    Ok(Json(
        state.blocking(move |s| Ok(keys::list(s, &actor)?)).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/pipelines/{pipeline}/trigger", tag = "pipelines",
    params(("pipeline" = String, Path, pattern = "^[A-Za-z0-9_.-]{1,100}$", description = "The registered pipeline's name")),
    request_body(content = Option<TriggerBody>, content_type = "application/json"),
    responses((status = 200, body = TriggeredView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
/// Creates a manual run of a registered pipeline (audited as `trigger`).
pub async fn trigger(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    pipeline: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Json<TriggeredView>, ApiError> {
    let Path(pipeline) = pipeline.map_err(bad_path)?;
    let conf = json_body::<TriggerBody>(&body)?.conf;
    Ok(Json(do_trigger(&state, &caller, pipeline, conf).await?))
}

pub(crate) async fn do_trigger(
    state: &AppState,
    caller: &Caller,
    pipeline: String,
    conf: BTreeMap<String, String>,
) -> Result<TriggeredView, ApiError> {
    registered(&pipeline)?;
    let actor = caller.principal.actor.clone();
    state
        .blocking(move |s| {
            let t = orchestration::trigger_pipeline(s, &actor, registered(&pipeline)?, &conf)?;
            Ok(TriggeredView::new(&t))
        })
        .await
}

pub(crate) async fn do_pause(
    state: &AppState,
    caller: &Caller,
    pipeline: String,
    paused: bool,
) -> Result<PipelineView, ApiError> {
    registered(&pipeline)?;
    let actor = caller.principal.actor.clone();
    state
        .blocking(move |s| {
            let name =
                orchestration::set_paused_pipeline(s, &actor, registered(&pipeline)?, paused)?;
            orchestration::pipelines(s)?
                .into_iter()
                .find(|p| p.pipeline == name)
                .ok_or_else(|| ApiError::internal("the pipeline was changed and is gone"))
        })
        .await
}

#[utoipa::path(post, path = "/api/v1/pipelines/{pipeline}/pause", tag = "pipelines",
    params(("pipeline" = String, Path, pattern = "^[A-Za-z0-9_.-]{1,100}$", description = "The registered pipeline's name")),
    responses((status = 200, body = PipelineView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
/// Pauses a pipeline: no new runs start (audited as `pause`).
pub async fn pause(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    pipeline: Result<Path<String>, PathRejection>,
) -> Result<Json<PipelineView>, ApiError> {
    let Path(pipeline) = pipeline.map_err(bad_path)?;
    Ok(Json(do_pause(&state, &caller, pipeline, true).await?))
}

#[utoipa::path(post, path = "/api/v1/pipelines/{pipeline}/unpause", tag = "pipelines",
    params(("pipeline" = String, Path, pattern = "^[A-Za-z0-9_.-]{1,100}$", description = "The registered pipeline's name")),
    responses((status = 200, body = PipelineView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
/// Resumes a paused pipeline (audited as `unpause`).
pub async fn unpause(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    pipeline: Result<Path<String>, PathRejection>,
) -> Result<Json<PipelineView>, ApiError> {
    let Path(pipeline) = pipeline.map_err(bad_path)?;
    Ok(Json(do_pause(&state, &caller, pipeline, false).await?))
}

pub(crate) async fn do_clear(
    state: &AppState,
    caller: &Caller,
    run: &str,
    tasks: Vec<String>,
) -> Result<ClearedView, ApiError> {
    // The run's pipeline decides, so it is looked up first.
    let (view, _) = run_tasks(state, caller, run).await?;
    check_pipeline(caller, Permission::Clear, &view.pipeline)?;
    let actor = caller.principal.actor.clone();
    let run = view.run.to_string();
    state
        .blocking(move |s| {
            let c = orchestration::clear(s, &actor, &run, &tasks, None)?;
            Ok(ClearedView::from(&c))
        })
        .await
}

#[utoipa::path(post, path = "/api/v1/runs/{run}/clear", tag = "runs",
    params(("run" = i64, Path, minimum = 1, description = "The run's number")),
    request_body(content = Option<ClearBody>, content_type = "application/json"),
    responses((status = 200, body = ClearedView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
/// Runs a finished run's tasks again: the failed ones, or those named (audited as `clear`).
pub async fn clear(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    run: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Json<ClearedView>, ApiError> {
    let Path(run) = run.map_err(bad_path)?;
    let tasks = json_body::<ClearBody>(&body)?.tasks;
    Ok(Json(do_clear(&state, &caller, &run, tasks).await?))
}

#[utoipa::path(get, path = "/api/v1/users", tag = "access",
    responses((status = 200, body = Vec<UserView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
/// The users: names, roles, grants, lock-out; never a password hash.
pub async fn users(State(state): State<AppState>) -> Result<Json<Vec<UserView>>, ApiError> {
    Ok(Json(state.blocking_access(crate::access::users).await?))
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "access",
    responses((status = 200, body = Vec<TokenView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
/// The API tokens: names, roles, expiry, last use, revocation; never the token.
pub async fn tokens(State(state): State<AppState>) -> Result<Json<Vec<TokenView>>, ApiError> {
    Ok(Json(state.blocking_access(crate::access::tokens).await?))
}
