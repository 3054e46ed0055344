//! `hushflow detokenize` reverses `tokenize` for a holder of the key, audited; `keys export`
//! prints a key for another system, audited.

use crate::common::*;
use std::io::Write;
use std::process::Stdio;

const PIPELINE: &str = r#"
[pipeline]
name = "tokens"
key = "id"
[source]
type = "csv"
path = "data/c.csv"
[policy]
fields.id = "keep"
fields.first_name = { tokenize = "aes-siv", key = "keyring:names" }
[sink]
type = "csv"
path = "out/o.csv"
"#;

fn tokens(ws: &Workspace) -> Vec<String> {
    let mut r = csv::Reader::from_path(ws.path("out/o.csv")).unwrap();
    r.records().map(|row| row.unwrap()[1].to_string()).collect()
}

fn last_audit(ws: &Workspace) -> serde_json::Value {
    let a = ws.ok(&["audit", "list", "--json"], 0);
    serde_json::from_str(a.stdout.lines().last().unwrap()).unwrap()
}

#[test]
fn detokenize_reverses_tokens_from_args_and_stdin_and_is_audited() {
    let ws = Workspace::new();
    ws.write("data/c.csv", "id,first_name\n1,Zoë\n2,Łukasz\n3,Zoë\n");
    ws.ok(&["keys", "create", "names"], 0);
    ws.write("p.toml", PIPELINE);
    ws.ok(&["run", "p.toml"], 0);
    let t = tokens(&ws);
    assert_eq!(t[0], t[2], "deterministic");
    // Neither the token nor its decoded body holds the plaintext. (A two-letter check such as
    // "Zo" failed now and then: base64url of ciphertext holds any pair of letters.)
    assert!(t[0].starts_with("tok1.") && !t[0].contains("Zoë"));
    use base64::Engine as _;
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t[0].rsplit('.').next().unwrap())
        .unwrap();
    assert!(
        !body.windows(4).any(|w| w == "Zoë".as_bytes()),
        "the body is not the plaintext"
    );

    let r = ws.ok(&["detokenize", "--key", "keyring:names", &t[0], &t[1]], 0);
    assert_eq!(r.stdout, "Zoë\nŁukasz\n");
    let audit = last_audit(&ws);
    assert_eq!(audit["action"], "detokenize");
    assert_eq!(audit["counts"]["tokens"], 2);
    assert_eq!(audit["detail"], "key keyring:names");

    let mut child = ws
        .command()
        .args(["detokenize", "--key", "keyring:names"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    write!(child.stdin.take().unwrap(), "{}\n\n{}\n", t[1], t[2]).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Łukasz\nZoë\n");
}

#[test]
fn a_token_of_another_key_fails_all_or_nothing_without_echoing_it() {
    let ws = Workspace::new();
    ws.write("data/c.csv", "id,first_name\n1,Zoë\n");
    ws.ok(&["keys", "create", "names"], 0);
    ws.ok(&["keys", "create", "other"], 0);
    ws.write("p.toml", PIPELINE);
    ws.ok(&["run", "p.toml"], 0);
    let t = tokens(&ws);
    let r = ws.ok(&["detokenize", "--key", "keyring:other", &t[0]], 1);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(r.stderr.contains("token 1"), "{}", r.stderr);
    assert!(!r.stderr.contains(&t[0]), "{}", r.stderr);
    assert_eq!(last_audit(&ws)["outcome"], "failure");
}

#[test]
fn keys_export_prints_the_key_for_other_systems_and_is_audited() {
    let ws = Workspace::new();
    ws.ok(&["keys", "create", "pepper"], 0);
    let r = ws.ok(&["keys", "export", "pepper"], 0);
    use base64::Engine as _;
    let material = base64::engine::general_purpose::STANDARD
        .decode(r.stdout.trim())
        .unwrap();
    assert_eq!(material.len(), 32);
    assert!(r.stderr.contains("warning"), "{}", r.stderr);
    assert_eq!(last_audit(&ws)["action"], "keys.export");
    // The exported key works as an env: key and gives the same pseudonyms as the keyring key.
    ws.write("data/c.csv", "id,email\n1,Jane@Example.com\n");
    let pipeline = |key: &str| {
        format!(
            "[pipeline]\nname = \"x\"\nkey = \"id\"\n[source]\ntype = \"csv\"\npath = \"data/c.csv\"\n[policy]\nfields.id = \"keep\"\nfields.email = {{ hash = \"hmac-sha256\", key = \"{key}\", normalize = \"email\" }}\n[sink]\ntype = \"csv\"\npath = \"out/{}.csv\"\n",
            key.replace(':', "_")
        )
    };
    ws.write("a.toml", pipeline("keyring:pepper"));
    ws.write("b.toml", pipeline("env:EXPORTED"));
    ws.ok(&["run", "a.toml"], 0);
    let b = ws.run_with(&["run", "b.toml"], &[("EXPORTED", r.stdout.trim())]);
    assert_eq!(b.code, 0, "{}", b.all());
    assert_eq!(
        std::fs::read_to_string(ws.path("out/keyring_pepper.csv")).unwrap(),
        std::fs::read_to_string(ws.path("out/env_EXPORTED.csv")).unwrap()
    );
}
