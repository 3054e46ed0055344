//! `hushflow serve`: the dashboard and JSON API (`hushflow-server`) over this command's app
//! session (state directory, master key, metadata store), until SIGINT or SIGTERM.

use super::{Exit, Failure, Session, failure, invalid};
use crate::cli::ServeArgs;
use hushflow_server::{AppState, ServeError, ServeOptions, TlsFiles};

pub(super) fn serve(session: &Session<'_>, args: &ServeArgs) -> Result<Exit, Failure> {
    let mut options = ServeOptions::new(args.addr);
    options.insecure_http = args.insecure_http;
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        options.tls = Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    // Said on every start, before anything is served.
    for warning in options.check().map_err(from_serve)? {
        session.out.note(warning);
    }
    // Prometheus metrics on their own listener (`--metrics-addr`): request latency by route,
    // refused sign-ins and permission denials, and the audit stream's counters.
    super::scheduler::serve_metrics(session, &args.metrics)?;
    let tls = options.tls_on();
    let app = clone_app(session);
    let out = session.out;
    hushflow_server::serve(AppState::new(app, tls), &options, |addr| {
        let scheme = if tls { "https" } else { "http" };
        out.note(format!(
            "serving the dashboard at {scheme}://{addr}/ and the API at {scheme}://{addr}/api/v1 \
             (stop with Ctrl-C or SIGTERM)"
        ));
    })
    .map_err(from_serve)?;
    out.note("stopped");
    Ok(Exit::Success)
}

/// The app session the server runs in: this command's state directory, master key, metadata
/// store, definition keys and redactor.
fn clone_app(session: &Session<'_>) -> hushflow_app::Session {
    session.app.clone()
}

fn from_serve(e: ServeError) -> Failure {
    match e {
        ServeError::Invalid(m) => invalid(m),
        ServeError::Failed(m) => failure(m),
    }
}
