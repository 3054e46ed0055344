//! The keyed hashes hushflow writes are recomputed by an independent implementation: Python's
//! `cryptography` package, reading the key from the keyring file and the values from the input.
//! scripts/test.sh provides the interpreter (a venv) in HUSHFLOW_TEST_PYTHON.

use crate::common::*;

#[test]
fn hmac_pseudonyms_match_python_cryptography() {
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

    let stdout = run_python_check(
        "check_hmac.py",
        &[
            ws.path("data/contacts.csv").as_os_str(),
            ws.path("out/leads.csv").as_os_str(),
            ws.state().join("keyring.json").as_os_str(),
            "pepper".as_ref(),
        ],
    );
    assert!(stdout.contains("checked 2000 rows"), "{stdout}");
}
