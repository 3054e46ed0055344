//! Helpers for running the real `hushflow` binary against a private temporary workspace.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Workspace {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn state(&self) -> PathBuf {
        self.path("state")
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, content).expect("write");
        p
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hushflow"));
        c.current_dir(self.dir.path())
            .env("HUSHFLOW_STATE_DIR", self.state())
            .env_remove("HUSHFLOW_LOG");
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.command();
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let out: Output = c.output().expect("run hushflow");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and asserts the exit code, showing the output when it differs.
    pub fn ok(&self, args: &[&str], code: i32) -> Run {
        let r = self.run(args);
        assert_eq!(
            r.code, code,
            "hushflow {args:?}\nstdout:\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        );
        r
    }

    /// Every byte under a directory, for canary searches.
    pub fn bytes_under(&self, dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(b) = std::fs::read(&p) {
                    out.push((p, b));
                }
            }
        }
        out
    }
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// A keep/drop/hash pipeline over `data/contacts.csv` into the given sink table.
pub fn pipeline(sink: &str) -> String {
    format!(
        r#"
[pipeline]
name = "test-pipeline"
key = "id"

[source]
type = "csv"
path = "data/contacts.csv"

[policy]
fields.id = "keep"
fields.email = {{ hash = "hmac-sha256", key = "keyring:pepper", normalize = "email" }}
fields.country = "keep"
fields.notes = "drop"

{sink}
"#
    )
}

pub const SQLITE_SINK: &str = r#"[sink]
type = "sqlite"
path = "out/leads.db"
table = "leads"
"#;

pub const CSV_SINK: &str = r#"[sink]
type = "csv"
path = "out/leads.csv"
"#;

/// Runs one of the independent checkers in tests/python with the interpreter scripts/test.sh
/// provides (a venv with `cryptography` and `phonenumbers`); returns its stdout, asserting
/// that it succeeded.
pub fn run_python_check(script: &str, args: &[&std::ffi::OsStr]) -> String {
    let python = std::env::var("HUSHFLOW_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("set HUSHFLOW_TEST_PYTHON to a Python with tests/python/requirements.txt (scripts/test.sh does)")
    });
    let path = format!("{}/../../tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(python)
        .arg(path)
        .args(args)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A PostgreSQL database of its own for one test (skipped, saying why, without a server).
#[allow(unused_imports)] // Not every test file uses a database.
pub use hushflow_test_support::pg::Database;
