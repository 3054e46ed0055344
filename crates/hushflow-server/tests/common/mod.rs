//! A real server on loopback for the tests: the crate's own `start` on a tokio runtime, over a
//! fresh state directory, with a blocking HTTP client (ureq, rustls) that keeps every status.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use hushflow_server::{AppState, Running, ServeOptions, TlsFiles};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub struct TestServer {
    pub runtime: tokio::runtime::Runtime,
    pub running: Option<Running>,
    pub base: String,
    pub dir: tempfile::TempDir,
    pub session: hushflow_app::Session,
    pub cert_pem: Option<String>,
}

/// A self-signed certificate for `localhost` and 127.0.0.1: (certificate PEM, key PEM).
pub fn self_signed() -> (String, String) {
    let c =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    (c.cert.pem(), c.signing_key.serialize_pem())
}

impl TestServer {
    /// A server over a new state directory; with TLS when `tls`.
    pub fn start(tls: bool) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let state = hushflow_state::StateDir::open(dir.path().join("state")).unwrap();
        let session = hushflow_app::Session::new(state, hushflow_secrets::Redactor::new());
        TestServer::start_with(dir, session, tls, None)
    }

    /// A plain-HTTP server whose access layer is `access` (a policy, a fake clock).
    pub fn start_with_access(access: hushflow_app::access::Access) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let state = hushflow_state::StateDir::open(dir.path().join("state")).unwrap();
        let session = hushflow_app::Session::new(state, hushflow_secrets::Redactor::new());
        TestServer::start_with(dir, session, false, Some(access))
    }

    pub fn start_with(
        dir: tempfile::TempDir,
        session: hushflow_app::Session,
        tls: bool,
        access: Option<hushflow_app::access::Access>,
    ) -> TestServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut options = ServeOptions::new("127.0.0.1:0".parse().unwrap());
        let mut cert_pem = None;
        if tls {
            let (cert, key) = self_signed();
            let files = TlsFiles {
                cert: dir.path().join("cert.pem"),
                key: dir.path().join("key.pem"),
            };
            std::fs::write(&files.cert, &cert).unwrap();
            std::fs::write(&files.key, &key).unwrap();
            options.tls = Some(files);
            cert_pem = Some(cert);
        }
        let state = match access {
            Some(access) => AppState::with_access(session.clone(), access, tls),
            None => AppState::new(session.clone(), tls),
        };
        let running = runtime
            .block_on(hushflow_server::start(state, &options))
            .unwrap();
        let scheme = if tls { "https" } else { "http" };
        let base = format!("{scheme}://127.0.0.1:{}", running.addr.port());
        TestServer {
            runtime,
            running: Some(running),
            base,
            dir,
            session,
            cert_pem,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.session.state().root().to_path_buf()
    }

    /// A client that trusts this server's certificate (if any), follows no redirect and
    /// answers every status.
    pub fn client(&self) -> ureq::Agent {
        client_trusting(self.cert_pem.as_deref())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop(Duration::from_secs(1));
            let _ = self.runtime.block_on(running.stopped());
        }
    }
}

/// A client trusting `cert_pem` alone (or the platform's roots when `None`).
pub fn client_trusting(cert_pem: Option<&str>) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)));
    if let Some(pem) = cert_pem {
        let cert = ureq::tls::Certificate::from_pem(pem.as_bytes()).unwrap();
        config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![cert])))
                .build(),
        );
    }
    config.build().into()
}

/// A response's status, headers and body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

pub fn answer(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut r = r.unwrap();
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = r.body_mut().read_to_string().unwrap_or_default();
    Answer {
        status,
        headers,
        body,
    }
}

/// A pipeline of two `empty` tasks, registered and run once by hand through the app layer.
pub const DAG: &str = r#"[pipeline]
name = "nightly"
schedule = "@daily"

[[task]]
name = "first"
type = "empty"

[[task]]
name = "second"
type = "empty"
depends_on = ["first"]
"#;

pub const PASSWORD: &str = "correct horse battery staple";

/// A principal of each role: an API token and a signed-in session (secret, CSRF token).
pub struct Credentials {
    pub role: hushflow_app::Role,
    pub token: String,
    pub cookie: String,
    pub csrf: String,
}

/// Registers `nightly` (with one manual run), and makes a user and a token of every role.
pub fn populate(server: &TestServer) -> Vec<Credentials> {
    use hushflow_app::access::Access;
    use hushflow_app::{Actor, Role};
    let session = &server.session;
    let file = server.dir.path().join("nightly.toml");
    std::fs::write(&file, DAG).unwrap();
    hushflow_app::actions::orchestration::trigger(
        session,
        &Actor::os_user(),
        &file.display().to_string(),
        &Default::default(),
    )
    .unwrap();
    let access = Access::default();
    let mut store = session.open_store().unwrap();
    let mut all = Vec::new();
    for role in Role::ALL {
        let name = role.as_str();
        access
            .add_user(session, &mut store, &Actor::os_user(), name, role, PASSWORD)
            .unwrap();
        let token = access
            .create_token(
                session,
                &mut store,
                &Actor::os_user(),
                &format!("{name}-token"),
                role,
                None,
            )
            .unwrap();
        let (_, new) = access
            .sign_in(session, &mut store, name, PASSWORD, "127.0.0.1")
            .unwrap();
        all.push(Credentials {
            role,
            token: token.token.to_string(),
            cookie: new.secret.to_string(),
            csrf: new.csrf.clone(),
        });
    }
    all
}
