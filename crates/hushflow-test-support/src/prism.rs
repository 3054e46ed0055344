//! Stoplight Prism (`@stoplight/prism-cli`, npm) as a validating proxy in front of a fake
//! server: `prism proxy --errors SPEC UPSTREAM` checks each request a connector sends and each
//! answer the fake gives against an OpenAPI subset, and turns a violation into an error answer
//! the test sees (422 for a request, 500 for a response).
//!
//! Prism is installed by `scripts/test.sh` into `.tools/prism` (git-ignored); `HUSHFLOW_TEST_PRISM`
//! names another binary. Without it a plain `cargo test` runs the tests straight against the
//! fake and says so on stderr; with `HUSHFLOW_TEST_REQUIRE_SERVICES=1` a missing Prism fails.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use crate::service::{Service, required};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The variable naming the `prism` binary, when not in `.tools/prism`.
pub const PRISM_ENV: &str = "HUSHFLOW_TEST_PRISM";

/// The workspace's root (this crate is `crates/hushflow-test-support`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the workspace root")
        .to_path_buf()
}

fn binary(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os(PRISM_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".tools/prism/node_modules/.bin/prism"));
    if path.is_file() {
        return Some(path);
    }
    if required() {
        panic!(
            "{test}: HUSHFLOW_TEST_REQUIRE_SERVICES=1 but Prism is not installed at {}; run \
             scripts/test.sh (it installs @stoplight/prism-cli into .tools/prism) or set {PRISM_ENV}",
            path.display()
        );
    }
    eprintln!(
        "{test}: Prism not found at {} (scripts/test.sh installs it); running against the fake \
         directly, without checking the traffic against the OpenAPI subset",
        path.display()
    );
    None
}

impl Service {
    /// Prism proxying to `upstream` and validating against `spec`, or `None` when Prism is
    /// not installed and not required.
    pub fn prism(test: &str, spec: &Path, upstream: &str) -> Option<Service> {
        let prism = binary(test)?;
        let spec = spec.to_path_buf();
        let upstream = upstream.to_string();
        // Any HTTP answer means it is listening (an unknown path is a 404 or 422).
        Some(crate::service::start(
            test,
            "prism",
            "/__ready",
            |_| true,
            move |port, home| {
                let mut c = Command::new(&prism);
                c.args([
                    "proxy",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "--errors",
                ])
                .arg(&spec)
                .arg(&upstream)
                .env("HOME", home)
                .env("NO_COLOR", "1");
                c
            },
        ))
    }
}
