//! The dashboard: server-rendered pages over the same app-layer actions and checks as the API
//! (`api.rs`'s helpers), signing in and out, and the forms for actions. Buttons appear only for
//! roles that may use them; the server checks every request regardless (`auth.rs`).

use crate::access::{self, Permission};
use crate::api;
use crate::auth::{self, Caller};
use crate::error::ApiError;
use crate::state::AppState;
use axum::Extension;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use hushflow_app::actions::audit;
use hushflow_app::views::AuditVerifyView;
use minijinja::{Value, context};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// The most audit records the page shows (newest first).
const AUDIT_PAGE: usize = 500;
/// Runs per pipeline in the grid of squares.
const GRID_RUNS: i64 = 14;

/// Which links and buttons a caller sees.
#[derive(Serialize)]
struct Allowed {
    pipelines: bool,
    quarantine: bool,
    audit: bool,
    keys: bool,
    users: bool,
    trigger: bool,
    pause: bool,
    clear: bool,
    logs: bool,
}

fn allowed(caller: &Caller) -> Allowed {
    let may = |p| caller.principal.may(p, None);
    Allowed {
        pipelines: may(Permission::ReadPipelines),
        quarantine: may(Permission::ReadQuarantine),
        audit: may(Permission::ReadAudit),
        keys: may(Permission::ReadKeys),
        users: may(Permission::ManageUsers),
        trigger: may(Permission::Trigger),
        pause: may(Permission::Pause),
        clear: may(Permission::Clear),
        logs: may(Permission::ReadLogs),
    }
}

/// Renders `template` with `values`, plus what every page shows of the caller.
fn render(
    state: &AppState,
    status: StatusCode,
    template: &str,
    caller: Option<&Caller>,
    page: &str,
    title: &str,
    values: Value,
) -> Response {
    let base = match caller {
        Some(c) => context! {
            me => context! { name => c.principal.actor.name.clone(), role => crate::access::role_name(&c.principal) },
            csrf => c.csrf.clone().unwrap_or_default(),
            nav => Value::from_serialize(allowed(c)),
            may => Value::from_serialize(allowed(c)),
        },
        None => context! {},
    };
    let html = state.templates.get_template(template).and_then(|t| {
        t.render(minijinja::value::merge_maps([
            context! { title, page },
            base,
            values,
        ]))
    });
    match html {
        Ok(html) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!("template {template}: {e}");
            ApiError::internal("the page could not be rendered").into_response()
        }
    }
}

/// A failed page request, as a page.
fn error_page(state: &AppState, caller: Option<&Caller>, e: ApiError) -> Response {
    let title = match e.status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::BAD_REQUEST => "Bad request",
        _ => "Something went wrong",
    };
    render(
        state,
        e.status,
        "error.html",
        caller,
        "",
        title,
        context! { message => e.message },
    )
}

/// The answer to a page request without a (valid) session: 401 and the sign-in form.
pub fn sign_in_required(state: &AppState) -> Response {
    sign_in_page(state, StatusCode::UNAUTHORIZED, None)
}

/// The answer to a page request the caller's role does not allow: 403.
pub fn forbidden(state: &AppState, caller: &Caller, target: &str) -> Response {
    error_page(state, Some(caller), ApiError::forbidden(target))
}

fn random_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| ApiError::internal("no randomness available"))?;
    Ok(hex::encode(bytes))
}

/// A cookie as the server sets them: `HttpOnly`, `SameSite=Strict`, path `/`, `Secure` under
/// TLS; `max_age` `None` for a session-long cookie, zero to remove one.
fn set_cookie(state: &AppState, name: &str, value: String, max_age: Option<i64>) -> HeaderValue {
    let mut c = Cookie::build((name.to_string(), value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .secure(state.tls);
    if let Some(seconds) = max_age {
        c = c.max_age(cookie::time::Duration::seconds(seconds));
    }
    // A cookie of ours is ASCII, so it is a valid header value; the fallback never applies.
    HeaderValue::from_str(&c.build().to_string()).unwrap_or(HeaderValue::from_static(""))
}

fn sign_in_page(state: &AppState, status: StatusCode, message: Option<&str>) -> Response {
    let csrf = match random_token() {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let mut response = render(
        state,
        status,
        "sign_in.html",
        None,
        "sign-in",
        "Sign in",
        context! { csrf => csrf.clone(), message },
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, auth::sign_in_cookie(state.tls), csrf, Some(600)),
    );
    response
}

/// `GET /`.
pub async fn home() -> Redirect {
    Redirect::to("/pipelines")
}

/// `GET /static/style.css`.
pub async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        crate::templates::STYLE,
    )
        .into_response()
}

/// `GET /static/favicon.svg`.
pub async fn icon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        crate::templates::ICON,
    )
        .into_response()
}

/// `GET /sign-in`.
pub async fn sign_in_form(State(state): State<AppState>) -> Response {
    sign_in_page(&state, StatusCode::OK, None)
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct SignInForm {
    user: String,
    password: String,
    csrf: String,
}

/// `POST /sign-in`: checks the form's token against its cookie, then the password; a new
/// session (a new secret, whatever cookie came in) on success.
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<SignInForm>,
) -> Response {
    let expected = auth::cookie(&headers, auth::sign_in_cookie(state.tls)).unwrap_or_default();
    if expected.is_empty() || !auth::same_secret(&form.csrf, &expected) {
        return sign_in_page(
            &state,
            StatusCode::FORBIDDEN,
            Some("The form had expired; please sign in again."),
        );
    }
    let old = auth::cookie(&headers, auth::session_cookie(state.tls));
    let address = peer.ip().to_string();
    let SignInForm { user, password, .. } = form;
    let result = state
        .blocking_access(move |a, s| {
            // The session the browser had, if any, ends: a sign-in always starts a new one.
            if let Some(old) = old {
                access::sign_out(a, s, &old)?;
            }
            access::sign_in(a, s, &user, &password, &address)
        })
        .await;
    match result {
        Ok((_, new)) => {
            let mut response = Redirect::to("/pipelines").into_response();
            let h = response.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(
                    &state,
                    auth::session_cookie(state.tls),
                    new.secret.to_string(),
                    None,
                ),
            );
            h.append(
                header::SET_COOKIE,
                set_cookie(
                    &state,
                    auth::sign_in_cookie(state.tls),
                    String::new(),
                    Some(0),
                ),
            );
            response
        }
        Err(e) if e.status.is_client_error() => sign_in_page(&state, e.status, Some(&e.message)),
        Err(e) => error_page(&state, None, e),
    }
}

/// `POST /sign-out`: ends the session here and in the store.
pub async fn sign_out(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Response {
    if let Some(secret) = caller.session_secret.clone()
        && let Err(e) = state
            .blocking_access(move |a, s| access::sign_out(a, s, &secret))
            .await
    {
        return error_page(&state, Some(&caller), e);
    }
    let mut response = Redirect::to("/sign-in").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            &state,
            auth::session_cookie(state.tls),
            String::new(),
            Some(0),
        ),
    );
    response
}

/// One pipeline's row: its view and its newest runs, oldest first.
#[derive(Serialize)]
struct PipelineRow {
    view: hushflow_app::views::PipelineView,
    runs: Vec<hushflow_app::views::RunView>,
}

/// `GET /pipelines`.
pub async fn pipelines(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let result = async {
        let mut rows = Vec::new();
        for view in api::pipeline_views(&state, &caller).await? {
            let mut runs = match caller
                .principal
                .may(Permission::ReadRuns, Some(&view.pipeline))
            {
                true => {
                    api::run_views(&state, &caller, Some(view.pipeline.clone()), GRID_RUNS).await?
                }
                false => Vec::new(),
            };
            runs.reverse();
            rows.push(PipelineRow { view, runs });
        }
        Ok::<_, ApiError>(rows)
    }
    .await;
    match result {
        Ok(rows) => render(
            &state,
            StatusCode::OK,
            "pipelines.html",
            Some(&caller),
            "pipelines",
            "Pipelines",
            context! { pipelines => Value::from_serialize(&rows) },
        ),
        Err(e) => error_page(&state, Some(&caller), e),
    }
}

fn unfinished(state: &str) -> bool {
    matches!(state, "queued" | "running" | "waiting" | "up_for_retry")
}

/// `GET /runs/{run}`.
pub async fn run(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(run): Path<String>,
) -> Response {
    match api::run_tasks(&state, &caller, &run).await {
        Ok((run, tasks)) => {
            let live = unfinished(&run.state);
            let title = format!("Run {}", run.run);
            render(
                &state,
                StatusCode::OK,
                "run.html",
                Some(&caller),
                "pipelines",
                &title,
                context! { run => Value::from_serialize(&run), tasks => Value::from_serialize(&tasks), live },
            )
        }
        Err(e) => error_page(&state, Some(&caller), e),
    }
}

/// `GET /runs/{run}/tasks/{task}/log`.
pub async fn log(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((run, task)): Path<(String, String)>,
) -> Response {
    match api::log_view(&state, &caller, &run, task).await {
        Ok(log) => {
            let live = unfinished(&log.state);
            let title = format!("{} log", log.task);
            render(
                &state,
                StatusCode::OK,
                "log.html",
                Some(&caller),
                "pipelines",
                &title,
                context! { log => Value::from_serialize(&log), live },
            )
        }
        Err(e) => error_page(&state, Some(&caller), e),
    }
}

/// `GET /audit`: the newest records and the chain's check.
pub async fn audit_page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let one_at_a_time = state.verifying.lock().await;
    let result = state
        .blocking(|s| {
            let verify = AuditVerifyView::from(&audit::verify(s)?);
            let mut records = audit::list(s)?;
            records.reverse();
            let truncated = records.len() > AUDIT_PAGE;
            records.truncate(AUDIT_PAGE);
            Ok((verify, records, truncated))
        })
        .await;
    drop(one_at_a_time);
    match result {
        Ok((verify, records, truncated)) => render(
            &state,
            StatusCode::OK,
            "audit.html",
            Some(&caller),
            "audit",
            "Audit log",
            context! {
                verify => Value::from_serialize(&verify),
                records => Value::from_serialize(&records),
                truncated,
            },
        ),
        Err(e) => error_page(&state, Some(&caller), e),
    }
}

/// `GET /quarantine`.
pub async fn quarantine(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Response {
    match api::quarantine_views(&state, &caller, None).await {
        Ok(files) => render(
            &state,
            StatusCode::OK,
            "quarantine.html",
            Some(&caller),
            "quarantine",
            "Quarantine",
            context! { files => Value::from_serialize(&files) },
        ),
        Err(e) => error_page(&state, Some(&caller), e),
    }
}

/// `GET /keys`.
pub async fn keys(State(state): State<AppState>, Extension(caller): Extension<Caller>) -> Response {
    let actor = caller.principal.actor.clone();
    match state
        .blocking(move |s| Ok(hushflow_app::actions::keys::list(s, &actor)?))
        .await
    {
        Ok(keys) => render(
            &state,
            StatusCode::OK,
            "keys.html",
            Some(&caller),
            "keys",
            "Keys",
            context! { keys => Value::from_serialize(&keys) },
        ),
        Err(e) => error_page(&state, Some(&caller), e),
    }
}

/// `GET /users`.
pub async fn users(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Response {
    match state
        .blocking_access(|a, s| Ok((access::users(a, s)?, access::tokens(a, s)?)))
        .await
    {
        Ok((users, tokens)) => render(
            &state,
            StatusCode::OK,
            "users.html",
            Some(&caller),
            "users",
            "Users",
            context! { users => Value::from_serialize(&users), tokens => Value::from_serialize(&tokens) },
        ),
        Err(e) => error_page(&state, Some(&caller), e),
    }
}

/// `POST /pipelines/{pipeline}/trigger`: to the new run's page.
pub async fn trigger(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(pipeline): Path<String>,
) -> Response {
    match api::do_trigger(&state, &caller, pipeline, Default::default()).await {
        Ok(t) => Redirect::to(&format!("/runs/{}", t.run)).into_response(),
        Err(e) => error_page(&state, Some(&caller), e),
    }
}

async fn set_paused(state: AppState, caller: Caller, pipeline: String, paused: bool) -> Response {
    match api::do_pause(&state, &caller, pipeline, paused).await {
        Ok(_) => Redirect::to("/pipelines").into_response(),
        Err(e) => error_page(&state, Some(&caller), e),
    }
}

/// `POST /pipelines/{pipeline}/pause`.
pub async fn pause(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(pipeline): Path<String>,
) -> Response {
    set_paused(state, caller, pipeline, true).await
}

/// `POST /pipelines/{pipeline}/unpause`.
pub async fn unpause(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(pipeline): Path<String>,
) -> Response {
    set_paused(state, caller, pipeline, false).await
}

/// `POST /runs/{run}/clear`: the failed tasks, back to the run's page.
pub async fn clear(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(run): Path<String>,
) -> Response {
    match api::do_clear(&state, &caller, &run, Vec::new()).await {
        Ok(c) => Redirect::to(&format!("/runs/{}", c.run)).into_response(),
        Err(e) => error_page(&state, Some(&caller), e),
    }
}
