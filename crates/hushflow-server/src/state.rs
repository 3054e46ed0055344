//! What every handler is given: the app layer's session, whether TLS is on, and the templates.
//! Built once at start and shared; nothing global.

use crate::error::ApiError;
use hushflow_app::Session;
use hushflow_app::access::Access;
use std::sync::Arc;

/// The server's shared state.
#[derive(Clone)]
pub struct AppState {
    /// The app layer's session: state directory, master key reference, redactor, metadata store.
    pub session: Arc<Session>,
    /// Identity and access: users, tokens, sessions, under their policy (timeouts, lock-out).
    pub access: Arc<Access>,
    /// Whether the server speaks TLS (cookies are then `Secure`, answers carry HSTS).
    pub tls: bool,
    pub(crate) templates: Arc<minijinja::Environment<'static>>,
    /// One audit verification at a time: each walks the whole chain under the audit store's
    /// lock, and many at once wait past its busy timeout (seen under load: 500s).
    pub(crate) verifying: Arc<tokio::sync::Mutex<()>>,
}

impl AppState {
    /// The state for `session` under the default access policy; `tls` says whether the
    /// server speaks TLS.
    pub fn new(session: Session, tls: bool) -> AppState {
        AppState::with_access(session, Access::default(), tls)
    }

    /// The state for `session` under `access` (its policy and clock).
    pub fn with_access(session: Session, access: Access, tls: bool) -> AppState {
        AppState {
            session: Arc::new(session),
            access: Arc::new(access),
            tls,
            templates: Arc::new(crate::templates::environment()),
            verifying: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Runs `f` on the blocking pool (the app layer's actions block on files and the metadata
    /// store) with the session; its error comes back as an answer, scrubbed of any secret the
    /// session resolved.
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Session) -> Result<T, ApiError> + Send + 'static,
    {
        self.blocking_access(move |_, s| f(s)).await
    }

    /// [`AppState::blocking`] with the access layer too.
    pub(crate) async fn blocking_access<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Access, &Session) -> Result<T, ApiError> + Send + 'static,
    {
        let session = Arc::clone(&self.session);
        let access = Arc::clone(&self.access);
        let redactor = session.redactor().clone();
        match tokio::task::spawn_blocking(move || f(&access, &session)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(mut e)) => {
                e.message = redactor.scrub(&e.message).into_owned();
                Err(e)
            }
            Err(_) => Err(ApiError::internal(
                "the request's work stopped unexpectedly; see the server's log",
            )),
        }
    }
}
