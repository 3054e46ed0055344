//! Apache Airflow 3.3.2 with the `hushflow-airflow` provider, for the tests that run exported
//! DAGs on it: the venv `scripts/test.sh` makes in `.tools/airflow-venv` (git-ignored), or the
//! one `HUSHFLOW_TEST_AIRFLOW_VENV` names; and its execution API server, which
//! `airflow dags test --use-executor` needs to write task log files.
//!
//! Without the venv a plain `cargo test` skips these tests and says why; with
//! `HUSHFLOW_TEST_REQUIRE_SERVICES=1` a missing venv fails them.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use crate::prism::workspace_root;
use crate::service::{Service, required, start};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The variable naming another Airflow venv than `.tools/airflow-venv`.
pub const VENV_ENV: &str = "HUSHFLOW_TEST_AIRFLOW_VENV";

/// The Airflow venv (its `bin/airflow` installed), or `None` (with the reason on stderr) when
/// it is missing and not required.
pub fn venv(test: &str) -> Option<PathBuf> {
    let venv = std::env::var_os(VENV_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".tools/airflow-venv"));
    if venv.join("bin/airflow").is_file() {
        return Some(venv);
    }
    if required() {
        panic!(
            "{test}: HUSHFLOW_TEST_REQUIRE_SERVICES=1 but Airflow is not installed in {}; run \
             scripts/test.sh (it installs apache-airflow==3.3.2 and integrations/airflow there) \
             or set {VENV_ENV}",
            venv.display()
        );
    }
    eprintln!(
        "skipped {test}: no Airflow venv at {} (scripts/test.sh makes it)",
        venv.display()
    );
    None
}

impl Service {
    /// `airflow api-server --apps execution` on a free port, with the environment `env` (the
    /// test's AIRFLOW_HOME and settings), ready when `/execution/health` answers 200. Its URL
    /// for `AIRFLOW__CORE__EXECUTION_API_SERVER_URL` is [`Service::url`] + `/execution/`.
    pub fn airflow_execution_api(test: &str, venv: &Path, env: &[(String, String)]) -> Service {
        let airflow = venv.join("bin/airflow");
        start(
            test,
            "airflow-api",
            "/execution/health",
            |s| s == 200,
            |port, _| {
                let mut c = Command::new(&airflow);
                c.args([
                    "api-server",
                    "--apps",
                    "execution",
                    "-H",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                ]);
                for (k, v) in env {
                    c.env(k, v);
                }
                c
            },
        )
    }
}
