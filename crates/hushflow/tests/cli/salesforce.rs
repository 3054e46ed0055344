//! The Salesforce connector through the binary: a pipeline file with `type = "salesforce"` at
//! each end, against the fake Salesforce (`hushflow_test_support::salesforce`) behind Prism
//! validating the traffic (`tests/openapi/salesforce.yaml`). The refresh token and client
//! secret are canaries, and so is every access token the fake issues: none may appear in any
//! output, even at `-vv` with trace logging, or in any file of the workspace.

use crate::common::*;
use hushflow_test_support::prism::workspace_root;
use hushflow_test_support::salesforce::{FakeSalesforce, now_secs};

const REFRESH: &str = "5Aep861-canary-e2e-salesforce-refresh-3c1b";
const SECRET: &str = "canary-e2e-salesforce-consumer-secret-9f0d";

#[test]
fn records_sync_out_of_salesforce_incrementally_and_into_it_with_refusals_quarantined() {
    let fake = FakeSalesforce::start("3MVG9-e2e", SECRET, REFRESH);
    let spec = workspace_root().join("tests/openapi/salesforce.yaml");
    let prism = hushflow_test_support::service::Service::prism("cli_salesforce", &spec, &fake.url);
    let base = prism.as_ref().map_or_else(|| fake.url.clone(), |p| p.url());
    fake.state().instance_url = base.clone();
    let old = now_secs() - 600;
    let ids: Vec<String> = {
        let mut s = fake.state();
        (0..300)
            .map(|i| {
                let email = format!("person{i}@example.com");
                s.insert(&[("Email", &email), ("FirstName", "Ada")], old)
            })
            .collect()
    };
    let ws = Workspace::new();
    let auth = format!(
        r#"refresh_token = "env:SF_REFRESH"
client_id = "3MVG9-e2e"
client_secret = "env:SF_SECRET"
login_url = "{base}"
api_reserve = 0"#
    );
    ws.write(
        "in.toml",
        format!(
            r#"
[pipeline]
name = "salesforce-in"
key = "Email"

[source]
type = "salesforce"
{auth}
incremental = true
settle_secs = 0

[policy]
fields.Id = "keep"
fields.Email = "keep"
fields.FirstName = "keep"

[sink]
type = "jsonl"
path = "out/contacts.jsonl"
"#
        ),
    );
    let env = [
        ("SF_REFRESH", REFRESH),
        ("SF_SECRET", SECRET),
        ("HUSHFLOW_LOG", "trace"),
    ];
    let mut outputs = Vec::new();
    let r = ws.run_with(&["validate", "in.toml"], &env);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.all().contains("plain http"), "{}", r.all());
    outputs.push(r.all());
    let r = ws.run_with(&["-vv", "run", "in.toml"], &env);
    assert_eq!(r.code, 0, "{}", r.all());
    outputs.push(r.all());
    let lines = std::fs::read_to_string(ws.path("out/contacts.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 300);
    assert!(lines.contains("person7@example.com"));

    // Two records change after the run: the next run reads those two only.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    {
        let mut s = fake.state();
        s.touch(&ids[10], now_secs());
        s.touch(&ids[250], now_secs());
    }
    let r = ws.run_with(&["-vv", "run", "in.toml"], &env);
    assert_eq!(r.code, 0, "{}", r.all());
    outputs.push(r.all());
    let lines = std::fs::read_to_string(ws.path("out/contacts.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 2, "{lines}");
    assert!(lines.contains("person10@example.com") && lines.contains("person250@"));

    // Into Salesforce with a Bulk API job: one address it refuses is quarantined.
    let mut csv = String::from("Email,FirstName,Notes\n");
    for i in 0..150 {
        csv.push_str(&format!("new{i}@example.org,Grace,private note {i}\n"));
    }
    csv.push_str("not-an-address,Linus,private\n");
    ws.write("data/new.csv", csv);
    ws.write(
        "out.toml",
        format!(
            r#"
[pipeline]
name = "salesforce-out"
key = "Email"

[source]
type = "csv"
path = "data/new.csv"

[policy]
fields.Email = "keep"
fields.FirstName = "keep"
fields.Notes = "drop"

[sink]
type = "salesforce"
{auth}
poll_interval_ms = 20
"#
        ),
    );
    let r = ws.run_with(&["-vv", "run", "out.toml"], &env);
    assert_eq!(r.code, 3, "partial: one record quarantined\n{}", r.all());
    assert!(r.all().contains("refused"), "{}", r.all());
    assert!(!r.all().contains("not-an-address"), "{}", r.all());
    outputs.push(r.all());
    let issued = {
        let s = fake.state();
        assert_eq!(s.records.len(), 450);
        // The dropped field never left.
        assert!(s.records.values().all(|r| !r.fields.contains_key("Notes")));
        s.issued_tokens()
    };
    assert!(!issued.is_empty());
    let canaries: Vec<&str> = [REFRESH, SECRET]
        .into_iter()
        .chain(issued.iter().map(String::as_str))
        .collect();
    for out in &outputs {
        for c in &canaries {
            assert!(!out.contains(c), "a secret in output:\n{out}");
        }
    }
    for (path, bytes) in ws.bytes_under(ws.path("").as_path()) {
        for c in &canaries {
            assert!(!contains(&bytes, c), "a secret in {}", path.display());
        }
    }
    if let Some(p) = &prism {
        let log = p.log();
        for c in &canaries {
            assert!(!log.contains(c), "a secret in Prism's log");
        }
        assert!(!log.contains("VIOLATIONS"), "{log}");
    }
}

/// Salesforce's "refresh token rotation": each refresh answers with a new refresh token and
/// revokes the one sent. A token imported into the keyring (`keys import`, from stdin) is
/// replaced there during the run, with an audit record, so the next run signs in; one given by
/// `env:` cannot be, and the run says so, naming the reference and never a token.
#[test]
fn a_refresh_token_the_issuer_rotates_is_saved_in_the_keyring_for_the_next_run() {
    let fake = FakeSalesforce::start("3MVG9-rot", SECRET, REFRESH);
    fake.state().rotate_refresh = true;
    let base = fake.url.clone();
    {
        let mut s = fake.state();
        for i in 0..5 {
            let email = format!("rot{i}@example.com");
            s.insert(&[("Email", &email)], now_secs() - 600);
        }
    }
    let ws = Workspace::new();
    let pipeline = |refresh: &str| {
        format!(
            r#"
[pipeline]
name = "salesforce-rotation"
key = "Email"

[source]
type = "salesforce"
refresh_token = "{refresh}"
client_id = "3MVG9-rot"
client_secret = "env:SF_SECRET"
login_url = "{base}"
api_reserve = 0

[policy]
fields.Email = "keep"

[sink]
type = "jsonl"
path = "out/contacts.jsonl"
"#
        )
    };
    ws.write("keyring.toml", pipeline("keyring:sf-refresh"));
    let mut import = ws.command();
    import
        .args(["keys", "import", "sf-refresh"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = import.spawn().unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{REFRESH}").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let mut outputs = vec![format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )];
    assert!(out.status.success(), "{}", outputs[0]);
    assert!(outputs[0].contains("keyring:sf-refresh"), "{}", outputs[0]);
    let env = [("SF_SECRET", SECRET), ("HUSHFLOW_LOG", "trace")];
    for round in 0..3 {
        let r = ws.run_with(&["-vv", "run", "keyring.toml"], &env);
        assert_eq!(r.code, 0, "round {round}: {}", r.all());
        assert!(
            r.all().contains("saved to keyring:sf-refresh"),
            "{}",
            r.all()
        );
        outputs.push(r.all());
    }
    // Three runs, three rotations: the keyring holds the last one only, as version 4.
    let r = ws.ok(&["keys", "list"], 0);
    let line = r.stdout.lines().find(|l| l.contains("sf-refresh")).unwrap();
    assert!(line.contains("v4") && line.contains("credential"), "{line}");
    assert_eq!(r.stdout.matches("sf-refresh").count(), 1, "{}", r.stdout);
    let r = ws.ok(&["audit", "verify"], 0);
    outputs.push(r.all());
    let log = ws.ok(&["audit", "list", "--json"], 0).stdout;
    assert_eq!(log.matches("rotated by its issuer").count(), 3, "{log}");
    outputs.push(log);
    // A credential is not a key: a policy naming it as one is refused.
    ws.write("data/in.csv", "email\nada@example.com\n");
    ws.write(
        "hash.toml",
        r#"
[pipeline]
name = "credential-as-key"
key = "email"
[source]
type = "csv"
path = "data/in.csv"
[policy]
fields.email = { hash = "hmac-sha256", key = "keyring:sf-refresh" }
[sink]
type = "jsonl"
path = "out/hashed.jsonl"
"#,
    );
    let r = ws.run(&["run", "hash.toml"]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(r.all().contains("is a credential"), "{}", r.all());
    outputs.push(r.all());

    // From env: the rotation cannot be saved: a warning naming the reference.
    let current = fake.state().oauth.2.clone();
    ws.write("env.toml", pipeline("env:SF_REFRESH"));
    let r = ws.run_with(
        &["run", "env.toml"],
        &[("SF_SECRET", SECRET), ("SF_REFRESH", current.as_str())],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.all().contains("env:SF_REFRESH could not be updated"),
        "{}",
        r.all()
    );
    outputs.push(r.all());

    let rotated = fake.state().oauth.2.clone();
    let issued = fake.state().issued_tokens();
    let canaries: Vec<&str> = [REFRESH, SECRET, current.as_str(), rotated.as_str()]
        .into_iter()
        .chain(issued.iter().map(String::as_str))
        .collect();
    for out in &outputs {
        for c in &canaries {
            assert!(!out.contains(c), "a secret in output:\n{out}");
        }
    }
    for (path, bytes) in ws.bytes_under(ws.path("").as_path()) {
        for c in &canaries {
            assert!(!contains(&bytes, c), "a secret in {}", path.display());
        }
    }
}
