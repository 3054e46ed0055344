//! Every policy action from a pipeline file, through the real binary, recomputed row by row by an
//! independent implementation (tests/python/check_policy.py: Python's hmac/hashlib and
//! `phonenumbers`), including which records consent and suppression filter and which are
//! quarantined.

use crate::common::*;

/// 32 bytes, base64: how `env:` keys are given.
const KEY_B64: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

const PIPELINE: &str = r#"
[pipeline]
name = "full-policy"
key = "id"

[source]
type = "csv"
path = "data/contacts.csv"

[policy]
fields.id          = "keep"
fields.email       = { hash = "hmac-sha256", key = "env:HF_PEPPER", normalize = "email" }
fields.email_match = { from = "email", match_hash = "sha256", normalize = "email" }
fields.phone       = { mask = { keep_last = 4 } }
fields.phone_e164  = { from = "phone", hash = "hmac-sha256", key = "env:HF_PEPPER", normalize = "phone", region = "US" }
fields.first_name  = { tokenize = "aes-siv", key = "keyring:names" }
fields.birth_date  = { generalize = "year" }
fields.postal_code = { generalize = { prefix = 3 } }
fields.notes       = { redact = ["email", "phone", "credit_card", "iban", "us_ssn", "ip_address"] }

[policy.consent]
field = "marketing_opt_in"

[policy.suppression]
file = "suppressed.txt"
field = "email"

[sink]
type = "csv"
path = "out/leads.csv"
"#;

fn suppression_list(ws: &Workspace) -> String {
    let mut reader = csv::Reader::from_path(ws.path("data/contacts.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (email, consent) = (col("email"), col("marketing_opt_in"));
    let consenting: Vec<String> = reader
        .records()
        .map(|r| r.unwrap())
        .filter(|r| ["true", "yes", "1", "y"].contains(&r[consent].trim().to_lowercase().as_str()))
        .map(|r| r[email].trim().to_lowercase())
        .filter(|e| !e.is_empty())
        .take(3)
        .collect();
    assert_eq!(consenting.len(), 3);
    // A hashed line is the HMAC of the normalized address, as the pseudonym is.
    let hashed = mac_hex(addr_spec(&consenting[2]));
    format!(
        "# suppressed contacts\n{}\n  {}  \n\n{hashed}\n",
        consenting[0].to_uppercase(),
        consenting[1]
    )
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// HMAC-SHA256 hex under the key of `KEY_B64`.
fn mac_hex(value: &str) -> String {
    let key = hushflow_secrets::SecretValue::new(b"0123456789abcdef0123456789abcdef".to_vec());
    hex_encode(&hushflow_crypto::HmacSha256::new(&key).mac(value.as_bytes()))
}

/// The address of a display-name form (`"Jane Doe" <jane@example.com>`).
fn addr_spec(value: &str) -> &str {
    let value = value.trim();
    match value
        .strip_suffix('>')
        .and_then(|v| v.rfind('<').map(|i| &v[i + 1..]))
    {
        Some(address) => address.trim(),
        None => value,
    }
}

/// The finding's cases through the binary: under gmail rules the HMAC of `michal7@gmail.com`
/// stops `michal.7+promo@gmail.com` (whose pseudonym it is), and a plain address stops its
/// display-name form.
#[test]
fn a_listed_pseudonym_never_leaves() {
    let ws = Workspace::new();
    ws.write(
        "data/contacts.csv",
        "id,email\n\
         1,michal.7+promo@gmail.com\n\
         2,\"\"\"Michal W\"\" <michal@wonka.example>\"\n\
         3,Michal.7@GoogleMail.com\n\
         4,michal8@gmail.com\n\
         5,\"\"\"Other\"\" <other@wonka.example>\"\n",
    );
    ws.write(
        "suppressed.txt",
        format!("{}\nmichal@wonka.example\n", mac_hex("michal7@gmail.com")),
    );
    ws.write(
        "p.toml",
        r#"
[pipeline]
name = "listed"
key = "id"

[source]
type = "csv"
path = "data/contacts.csv"

[policy]
fields.id    = "keep"
fields.email = { hash = "hmac-sha256", key = "env:HF_PEPPER", normalize = "email", gmail = true }

[policy.suppression]
file = "suppressed.txt"
field = "email"

[sink]
type = "csv"
path = "out/leads.csv"
"#,
    );
    let r = ws.run_with(&["run", "p.toml"], &[("HF_PEPPER", KEY_B64)]);
    assert_eq!(r.code, 0, "{}", r.all());
    let mut output = csv::Reader::from_path(ws.path("out/leads.csv")).unwrap();
    let rows: Vec<(String, String)> = output
        .records()
        .map(|r| r.unwrap())
        .map(|r| (r[0].to_string(), r[1].to_string()))
        .collect();
    assert_eq!(
        rows,
        [
            ("4".to_string(), mac_hex("michal8@gmail.com")),
            ("5".to_string(), mac_hex("other@wonka.example")),
        ]
    );
}

/// Sizes are bounded when the policy is validated, not found out by the run's allocator.
#[test]
fn an_unbounded_mask_is_refused_by_validate() {
    let ws = Workspace::new();
    ws.write("data/contacts.csv", "id,phone\n1,4155550132\n");
    ws.write(
        "p.toml",
        r#"
[pipeline]
name = "masked"
key = "id"

[source]
type = "csv"
path = "data/contacts.csv"

[policy]
fields.id    = "keep"
fields.phone = { mask = { fixed = 4000000000 } }

[sink]
type = "csv"
path = "out/leads.csv"
"#,
    );
    let v = ws.run(&["validate", "p.toml"]);
    assert_eq!(v.code, 2, "{}", v.all());
    assert!(
        v.all().contains("phone") && v.all().contains("`fixed` must be at most 64"),
        "{}",
        v.all()
    );
    let r = ws.run(&["run", "p.toml"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(!ws.path("out/leads.csv").exists());
}

fn summary_counts(stdout: &str) -> Vec<u64> {
    // "full-policy partial: read N, written N, filtered N, quarantined N in …"
    let line = stdout
        .lines()
        .find(|l| l.starts_with("full-policy"))
        .unwrap();
    line.split(|c: char| !c.is_ascii_digit() && c != '.')
        .filter(|s| !s.is_empty() && !s.contains('.'))
        .take(4)
        .map(|s| s.parse().unwrap())
        .collect()
}

#[test]
fn every_action_matches_an_independent_implementation() {
    let ws = Workspace::new();
    ws.ok(
        &[
            "sample",
            "contacts",
            "--rows",
            "3000",
            "--seed",
            "5",
            "--out",
            "data/contacts.csv",
        ],
        0,
    );
    ws.ok(&["keys", "create", "names"], 0);
    ws.write("suppressed.txt", suppression_list(&ws));
    ws.write("p.toml", PIPELINE);
    let env = [("HF_PEPPER", KEY_B64)];

    let v = ws.run_with(&["validate", "p.toml"], &env);
    assert_eq!(v.code, 0, "{}", v.all());
    assert!(
        v.stdout
            .contains("warning: `email_match` is an unkeyed SHA-256"),
        "{}",
        v.stdout
    );
    assert!(v.stdout.contains("filter    consent"), "{}", v.stdout);

    let r = ws.run_with(&["run", "p.toml"], &env);
    assert!(r.code == 0 || r.code == 3, "{}", r.all());
    let c = summary_counts(&r.stdout);
    let (read, written, filtered, quarantined) = (c[0], c[1], c[2], c[3]);
    assert_eq!(read, 3000);
    assert_eq!(read, written + filtered + quarantined, "{}", r.stdout);
    assert!(
        filtered > 3,
        "consent filters some sample records: {}",
        r.stdout
    );

    let audit = ws.ok(&["audit", "list", "--json"], 0);
    let last: serde_json::Value =
        serde_json::from_str(audit.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["counts"]["suppressed"], 3, "{last}");
    assert_eq!(
        last["counts"]["filtered_no_consent"].as_u64().unwrap() + 3,
        filtered,
        "{last}"
    );

    // The quarantine is age-encrypted; an operator exports it to check it.
    ws.ok(
        &[
            "quarantine",
            "export",
            "full-policy",
            "--out",
            "quarantine.jsonl",
        ],
        0,
    );
    let stdout = run_python_check(
        "check_policy.py",
        &[
            ws.path("data/contacts.csv").as_os_str(),
            ws.path("out/leads.csv").as_os_str(),
            ws.path("quarantine.jsonl").as_os_str(),
            ws.path("suppressed.txt").as_os_str(),
            KEY_B64.as_ref(),
        ],
    );
    assert!(
        stdout.contains(&format!("checked {written} rows")),
        "{stdout}"
    );
    assert!(stdout.contains("suppressed 3"), "{stdout}");

    // Tokens are well-formed and deterministic; redacted notes keep no email address.
    let mut output = csv::Reader::from_path(ws.path("out/leads.csv")).unwrap();
    let headers = output.headers().unwrap().clone();
    let tok = headers.iter().position(|h| h == "first_name").unwrap();
    let notes = headers.iter().position(|h| h == "notes").unwrap();
    for row in output.records().map(|r| r.unwrap()) {
        assert!(
            row[tok].is_empty() || row[tok].starts_with("tok1."),
            "{}",
            &row[tok]
        );
        assert!(
            !row[notes].split_whitespace().any(looks_like_email),
            "an email survived redaction in a note"
        );
    }
}

fn looks_like_email(word: &str) -> bool {
    let word = word.trim_matches(|c: char| !c.is_alphanumeric());
    match word.split_once('@') {
        Some((local, domain)) => !local.is_empty() && domain.contains('.'),
        None => false,
    }
}
