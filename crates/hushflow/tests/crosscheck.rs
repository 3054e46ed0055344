//! The keyed hashes hushflow writes are recomputed by an independent implementation: Python's
//! `cryptography` package, reading the key from the keyring file and the values from the input.
//! scripts/test.sh provides the interpreter (a venv) in HUSHFLOW_TEST_PYTHON.

mod common;
use common::*;

#[test]
fn hmac_pseudonyms_match_python_cryptography() {
    let python = std::env::var("HUSHFLOW_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("set HUSHFLOW_TEST_PYTHON to a Python with `cryptography` (scripts/test.sh does)")
    });
    let ws = Workspace::new();
    ws.ok(
        &[
            "sample",
            "contacts",
            "--rows",
            "2000",
            "--seed",
            "11",
            "--out",
            "data/contacts.csv",
        ],
        0,
    );
    ws.ok(&["keys", "create", "pepper"], 0);
    ws.write(
        "p.toml",
        pipeline(CSV_SINK).replace(
            "fields.country = \"keep\"",
            "fields.country = \"keep\"\nfields.company = { hash = \"hmac-sha256\", key = \"keyring:pepper\", normalize = \"lower\", encoding = \"base64url\" }",
        ),
    );
    ws.ok(&["run", "p.toml"], 0);

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/python/check_hmac.py"
    );
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(ws.path("data/contacts.csv"))
        .arg(ws.path("out/leads.csv"))
        .arg(ws.state().join("keyring.json"))
        .arg("pepper")
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("checked 2000 rows"), "{stdout}");
}
