//! No personal data and no secret in any output: plant a secret (the hashing key, from an
//! environment variable) and a personal value (in a field the policy drops), run with full
//! logging, and search stdout, stderr, the state directory (audit store, quarantine, keyring) and
//! the results for both.

use crate::common::*;

/// The key as the environment holds it (base64) and as it is used (the decoded bytes).
const SECRET: &str = "Y2FuYXJ5LXNlY3JldC03ZjNhOWMxZTViMmQ0ODYwYWExMS14eXo=";
const SECRET_BYTES: &str = "canary-secret-7f3a9c1e5b2d4860aa11-xyz";
const PERSONAL: &str = "canary-personal-Jane-Roe-+4915112345678";

#[test]
fn canaries_never_appear_in_any_output() {
    let ws = Workspace::new();
    let mut data = String::from("id,email,country,notes\n");
    for i in 1..=50 {
        data.push_str(&format!(
            "{i},user{i}@example.com,DE,\"{PERSONAL} row {i}\"\n"
        ));
    }
    // A malformed row too, so the quarantine exists; it does not carry the canaries.
    data.push_str("51,only-two-fields\n");
    ws.write("data/contacts.csv", data);
    let text = pipeline(CSV_SINK).replace("keyring:pepper", "env:HUSHFLOW_TEST_PEPPER");
    ws.write("p.toml", &text);
    let env = [("HUSHFLOW_TEST_PEPPER", SECRET), ("HUSHFLOW_LOG", "trace")];

    let mut outputs = Vec::new();
    for args in [
        &["validate", "p.toml"][..],
        &["-vv", "run", "p.toml"],
        &["audit", "list"],
        &["audit", "list", "--json"],
    ] {
        let r = ws.run_with(args, &env);
        assert!(r.code == 0 || r.code == 3, "{args:?}: {}", r.all());
        outputs.push(r.all());
    }
    // A run that fails (the sink's directory is a file) still prints nothing it should not.
    ws.write("blocked", "x");
    let failing = text.replace("out/leads.csv", "blocked/leads.csv");
    ws.write("f.toml", failing);
    let r = ws.run_with(&["-vv", "run", "f.toml"], &env);
    assert_eq!(r.code, 1, "{}", r.all());
    outputs.push(r.all());

    for out in &outputs {
        assert!(!out.contains(SECRET), "secret in output:\n{out}");
        assert!(
            !out.contains(SECRET_BYTES),
            "decoded secret in output:\n{out}"
        );
        assert!(!out.contains(PERSONAL), "personal value in output:\n{out}");
        assert!(!out.contains("canary"), "canary in output:\n{out}");
    }
    let results = std::fs::read(ws.path("out/leads.csv")).unwrap();
    assert!(
        !contains(&results, PERSONAL)
            && !contains(&results, SECRET)
            && !contains(&results, SECRET_BYTES)
    );
    let state = ws.bytes_under(&ws.state());
    assert!(
        state
            .iter()
            .any(|(p, _)| p.to_string_lossy().contains("quarantine")),
        "the quarantine was written"
    );
    for (path, bytes) in state {
        assert!(!contains(&bytes, SECRET), "secret in {}", path.display());
        assert!(
            !contains(&bytes, SECRET_BYTES),
            "decoded secret in {}",
            path.display()
        );
        assert!(
            !contains(&bytes, PERSONAL),
            "personal value in {}",
            path.display()
        );
    }
}

#[test]
fn a_refused_key_is_not_printed() {
    // Panic scrubbing is tested in hushflow-secrets (a child process panics with a registered
    // value); here the refusal of a resolved-but-unusable key must not print the key.
    let ws = Workspace::new();
    ws.write(
        "data/contacts.csv",
        "id,email,country,notes\n1,a@b.c,DE,x\n",
    );
    let text = pipeline(CSV_SINK).replace("keyring:pepper", "env:HUSHFLOW_TEST_PEPPER");
    ws.write("p.toml", text);
    for bad in ["canary-not-base64!", "Y2FuYXJ5LXNob3J0"] {
        let r = ws.run_with(&["run", "p.toml"], &[("HUSHFLOW_TEST_PEPPER", bad)]);
        assert_eq!(r.code, 2, "{}", r.all());
        assert!(
            r.stderr
                .contains("base64 key material of at least 32 bytes"),
            "{}",
            r.stderr
        );
        assert!(!r.all().contains(bad), "{}", r.all());
    }
}
