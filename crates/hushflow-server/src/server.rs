//! Building the router from the route table's handlers and serving it: plain HTTP or TLS,
//! stopping gracefully on SIGINT or SIGTERM (requests in flight get the grace period).

use crate::options::ServeOptions;
use crate::state::AppState;
use crate::{ServeError, api, auth, dashboard, headers, openapi};
use axum::Router;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum_server::Handle;
use std::net::SocketAddr;

/// The router: every route of [`crate::routes::ROUTES`], each behind the authorization check,
/// every answer with the security headers.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi::openapi_json))
        .route("/api/v1/pipelines", get(api::pipelines))
        .route("/api/v1/runs", get(api::runs))
        .route("/api/v1/runs/{run}/tasks", get(api::tasks))
        .route("/api/v1/runs/{run}/tasks/{task}/log", get(api::log))
        .route("/api/v1/audit", get(api::audit_list))
        .route("/api/v1/audit/verify", get(api::audit_verify))
        .route("/api/v1/quarantine", get(api::quarantine_list))
        .route("/api/v1/keys", get(api::keys_list))
        .route("/api/v1/users", get(api::users))
        .route("/api/v1/tokens", get(api::tokens))
        .route("/api/v1/pipelines/{pipeline}/trigger", post(api::trigger))
        .route("/api/v1/pipelines/{pipeline}/pause", post(api::pause))
        .route("/api/v1/pipelines/{pipeline}/unpause", post(api::unpause))
        .route("/api/v1/runs/{run}/clear", post(api::clear))
        .route("/", get(dashboard::home))
        .route("/static/style.css", get(dashboard::style))
        .route("/static/favicon.svg", get(dashboard::icon))
        .route(
            "/sign-in",
            get(dashboard::sign_in_form).post(dashboard::sign_in),
        )
        .route("/sign-out", post(dashboard::sign_out))
        .route("/pipelines", get(dashboard::pipelines))
        .route("/runs/{run}", get(dashboard::run))
        .route("/runs/{run}/tasks/{task}/log", get(dashboard::log))
        .route("/audit", get(dashboard::audit_page))
        .route("/quarantine", get(dashboard::quarantine))
        .route("/keys", get(dashboard::keys))
        .route("/users", get(dashboard::users))
        .route("/pipelines/{pipeline}/trigger", post(dashboard::trigger))
        .route("/pipelines/{pipeline}/pause", post(dashboard::pause))
        .route("/pipelines/{pipeline}/unpause", post(dashboard::unpause))
        .route("/runs/{run}/clear", post(dashboard::clear))
        .fallback(not_found)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authorize,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            headers::secure,
        ))
        .layer(middleware::from_fn(timed))
        .with_state(state)
}

/// Records each request's latency by route pattern, method and status (`hushflow-metrics`);
/// free when no recorder is installed (`serve` without `--metrics-addr`).
async fn timed(
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().as_str().to_string();
    let response = next.run(request).await;
    hushflow_metrics::http_request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

async fn not_found() -> impl IntoResponse {
    crate::error::ApiError::new(StatusCode::NOT_FOUND, "no such page or API route")
}

/// A server started by [`start`]: where it listens, and the handle that stops it.
pub struct Running {
    /// The address bound (the port chosen when the options asked for port 0).
    pub addr: SocketAddr,
    handle: Handle<SocketAddr>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl Running {
    /// Asks the server to stop: no new connections, requests in flight get `grace`.
    pub fn stop(&self, grace: std::time::Duration) {
        self.handle.graceful_shutdown(Some(grace));
    }

    /// Waits until the server has stopped.
    pub async fn stopped(self) -> Result<(), ServeError> {
        self.task
            .await
            .map_err(|e| ServeError::Failed(format!("the server task ended: {e}")))?
    }
}

/// Starts serving `state` as `options` say, on the current tokio runtime; answers once the
/// socket is bound.
pub async fn start(state: AppState, options: &ServeOptions) -> Result<Running, ServeError> {
    options.check()?;
    let handle = Handle::new();
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let listener = std::net::TcpListener::bind(options.addr)
        .map_err(|e| ServeError::Failed(format!("cannot listen on {}: {e}", options.addr)))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| ServeError::Failed(e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServeError::Failed(e.to_string()))?;
    let task = match &options.tls {
        Some(files) => {
            let config = crate::tls::server_config(files)?;
            let rustls =
                axum_server::tls_rustls::RustlsConfig::from_config(std::sync::Arc::new(config));
            let server = axum_server::from_tcp_rustls(listener, rustls)
                .map_err(|e| ServeError::Failed(format!("cannot listen on {addr}: {e}")))?
                .handle(handle.clone());
            tokio::spawn(async move {
                server
                    .serve(app)
                    .await
                    .map_err(|e| ServeError::Failed(format!("serving: {e}")))
            })
        }
        None => {
            let server = axum_server::from_tcp(listener)
                .map_err(|e| ServeError::Failed(format!("cannot listen on {addr}: {e}")))?
                .handle(handle.clone());
            tokio::spawn(async move {
                server
                    .serve(app)
                    .await
                    .map_err(|e| ServeError::Failed(format!("serving: {e}")))
            })
        }
    };
    Ok(Running { addr, handle, task })
}

/// Serves until SIGINT or SIGTERM, then stops gracefully: `hushflow serve`. Builds its own
/// runtime; `on_start` is told the bound address once listening.
pub fn serve(
    state: AppState,
    options: &ServeOptions,
    on_start: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hushflow-serve")
        .build()
        .map_err(|e| ServeError::Failed(format!("starting the runtime: {e}")))?;
    runtime.block_on(async {
        // The handlers are in place before the socket is bound: a signal that comes as soon as
        // the address is announced still stops the server gracefully.
        let mut stop = StopSignals::install()?;
        let mut running = start(state, options).await?;
        on_start(running.addr);
        let grace = options.grace;
        tokio::select! {
            _ = stop.recv() => {
                tracing::info!("stopping: requests in flight get {grace:?}");
                running.stop(grace);
                running.stopped().await
            }
            ended = &mut running.task => ended
                .map_err(|e| ServeError::Failed(format!("the server task ended: {e}")))?,
        }
    })
}

/// SIGINT and SIGTERM, caught from the moment they are installed.
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> Result<StopSignals, ServeError> {
        use tokio::signal::unix::{SignalKind, signal};
        let handler = |kind, name: &str| {
            signal(kind).map_err(|e| ServeError::Failed(format!("{name} handler: {e}")))
        };
        Ok(StopSignals {
            interrupt: handler(SignalKind::interrupt(), "SIGINT")?,
            terminate: handler(SignalKind::terminate(), "SIGTERM")?,
        })
    }

    /// Resolves on the first SIGINT or SIGTERM.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
