//! Tokens decrypt with an independent implementation: Python's `cryptography` (AESSIV, HKDF).
//! scripts/test.sh provides the interpreter (a venv) in HUSHFLOW_TEST_PYTHON.

// A test may unwrap: a panic is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use hushflow_crypto::{Tokenizer, fingerprint_key_id};
use hushflow_secrets::SecretValue;
use std::io::Write;

#[test]
fn python_cryptography_decrypts_our_tokens() {
    let python = std::env::var("HUSHFLOW_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("set HUSHFLOW_TEST_PYTHON to a Python with `cryptography` (scripts/test.sh does)")
    });
    let material: Vec<u8> = (0u8..32)
        .map(|b| b.wrapping_mul(37).wrapping_add(11))
        .collect();
    let key = SecretValue::new(material.clone());
    let t = Tokenizer::new(&fingerprint_key_id(&key), &key).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("pairs.jsonl");
    let mut file = std::fs::File::create(&pairs).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let samples: Vec<Vec<u8>> = [
        "Jane",
        "",
        "Łukasz",
        "王",
        "Ørsted, Zoë",
        "x".repeat(300).as_str(),
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .chain((0u8..50).map(|n| (0..n).map(|i| i.wrapping_mul(n)).collect()))
    .collect();
    for plain in &samples {
        let line =
            serde_json::json!({ "token": t.tokenize(plain), "plaintext_b64": b64.encode(plain) });
        writeln!(file, "{line}").unwrap();
    }
    drop(file);

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/python/check_tokens.py"
    );
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(b64.encode(&material))
        .arg(&pairs)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("checked {} tokens", samples.len())),
        "{stdout}"
    );
}

/// Per-subject tokens (crypto-shredding): handles, wrapped keys and tokens recomputed by
/// tests/python/check_subject_tokens.py.
#[test]
fn python_cryptography_recomputes_per_subject_tokens() {
    let python = std::env::var("HUSHFLOW_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("set HUSHFLOW_TEST_PYTHON to a Python with `cryptography` (scripts/test.sh does)")
    });
    let material: Vec<u8> = (0u8..32)
        .map(|b| b.wrapping_mul(91).wrapping_add(3))
        .collect();
    let root_id = "0a1b2c3d4e5f6071";
    let root = hushflow_crypto::SubjectRoot::new(root_id, &SecretValue::new(material.clone()));
    let b64 = base64::engine::general_purpose::STANDARD;
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("cases.jsonl");
    let mut file = std::fs::File::create(&cases).unwrap();
    let mut n = 0;
    for subject in ["1", "42", "cust-0007", "Ünïcode-id", ""] {
        let handle = root.handle(subject.as_bytes());
        let (key, wrapped) = root.new_key(&handle).unwrap();
        let t = root.tokenizer(&handle, &key).unwrap();
        for plain in ["Ada", "Łukasz", ""] {
            let line = serde_json::json!({
                "subject": subject,
                "wrapped_b64": b64.encode(&wrapped),
                "token": t.tokenize(plain.as_bytes()),
                "plaintext_b64": b64.encode(plain),
            });
            writeln!(file, "{line}").unwrap();
            n += 1;
        }
    }
    drop(file);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/python/check_subject_tokens.py"
    );
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(b64.encode(&material))
        .arg(root_id)
        .arg(&cases)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("checked {n} subject tokens of 5 subjects")),
        "{stdout}"
    );
}
