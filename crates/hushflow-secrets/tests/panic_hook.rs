//! The panic hook replaces the process-wide hook, so it is tested in a child process: this
//! test binary runs itself with an environment variable that makes one test install the hook
//! and panic with canaries in the message: a registered secret and a value that is no secret
//! (personal data, which no list of secrets can scrub).

// A test may unwrap: a panic is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use hushflow_secrets::{Redactor, SecretValue};

const CHILD: &str = "HUSHFLOW_SECRETS_PANIC_CHILD";
const CANARY: &str = "canary-panic-8c41f0aa";
const PERSONAL: &str = "personal-canary@example.com";

#[test]
fn child_panics_with_a_registered_secret() {
    // In the normal run this is a no-op; only the child process, spawned below, panics.
    let Some(mode) = std::env::var_os(CHILD) else {
        return;
    };
    let redactor = Redactor::new();
    redactor.register(&SecretValue::new(CANARY.as_bytes().to_vec()));
    redactor.install_panic_hook(mode == "shown");
    let hex = hex::encode(CANARY);
    panic!("could not connect with token {CANARY} (hex {hex}) for {PERSONAL}");
}

fn child(mode: &str) -> (String, String) {
    let exe = std::env::current_exe().expect("the test binary knows its own path");
    let out = Command::new(exe)
        .args([
            "--exact",
            "child_panics_with_a_registered_secret",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, mode)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the test binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !out.status.success(),
        "the child should have panicked\n{stdout}\n{stderr}"
    );
    assert!(stderr.contains("panicked at"), "stderr: {stderr}");
    assert!(stderr.contains("panic_hook.rs"), "stderr: {stderr}");
    for stream in [&stderr, &stdout] {
        assert!(!stream.contains(CANARY), "leaked: {stream}");
        assert!(!stream.contains(&hex::encode(CANARY)), "leaked: {stream}");
    }
    (stdout, stderr)
}

#[test]
fn panic_hook_withholds_the_message_by_default() {
    let (stdout, stderr) = child("withheld");
    assert!(stderr.contains("message withheld"), "stderr: {stderr}");
    for stream in [&stderr, &stdout] {
        assert!(!stream.contains(PERSONAL), "leaked: {stream}");
    }
}

/// Asked to show messages (for debugging), it still scrubs the registered secrets.
#[test]
fn panic_hook_scrubs_the_message_it_shows() {
    let (_, stderr) = child("shown");
    assert!(
        stderr.contains("could not connect with token *** (hex ***)"),
        "stderr: {stderr}"
    );
}
