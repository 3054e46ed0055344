//! The HubSpot connector through the binary: a pipeline file with `type = "hubspot"` at each
//! end, against the fake HubSpot (`hushflow_test_support::hubspot`) behind Prism validating the
//! traffic (`tests/openapi/hubspot.yaml`). The token is a canary: it must appear in no output,
//! even at `-vv` with trace logging, and in no file of the state directory or the results.

use crate::common::*;
use hushflow_test_support::hubspot::{FakeHubSpot, now_ms};
use hushflow_test_support::prism::workspace_root;
use hushflow_test_support::service::Service;

const CANARY: &str = "pat-na1-canary-0c9d-e2e-hubspot-token";

fn servers(test: &str) -> (FakeHubSpot, Option<Service>, String) {
    let fake = FakeHubSpot::start(CANARY);
    let spec = workspace_root().join("tests/openapi/hubspot.yaml");
    let prism = Service::prism(test, &spec, &fake.url);
    let base = prism.as_ref().map_or_else(|| fake.url.clone(), |p| p.url());
    (fake, prism, base)
}

fn no_canary(ws: &Workspace, outputs: &[String]) {
    for out in outputs {
        assert!(!out.contains(CANARY), "token in output:\n{out}");
    }
    for (path, bytes) in ws.bytes_under(ws.path("").as_path()) {
        assert!(!contains(&bytes, CANARY), "token in {}", path.display());
    }
}

#[test]
fn contacts_sync_out_of_hubspot_incrementally_and_into_it_with_refusals_quarantined() {
    let (fake, prism, base) = servers("cli_hubspot");
    let old = now_ms() - 60_000;
    let ids: Vec<u64> = {
        let mut s = fake.state();
        (0..300)
            .map(|i| {
                let email = format!("person{i}@example.com");
                s.insert(&[("email", &email), ("firstname", "Ada")], old)
            })
            .collect()
    };
    let ws = Workspace::new();
    ws.write(
        "in.toml",
        format!(
            r#"
[pipeline]
name = "hubspot-in"
key = "email"

[source]
type = "hubspot"
token = "env:HUBSPOT_TOKEN"
base_url = "{base}"
incremental = true
settle_secs = 0

[policy]
fields.id = "keep"
fields.email = "keep"
fields.firstname = "keep"

[sink]
type = "jsonl"
path = "out/contacts.jsonl"
"#
        ),
    );
    let env = [("HUBSPOT_TOKEN", CANARY), ("HUSHFLOW_LOG", "trace")];
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

    // Two contacts change: the next run reads those two only.
    std::thread::sleep(std::time::Duration::from_millis(5));
    {
        let mut s = fake.state();
        s.touch(ids[10], now_ms());
        s.touch(ids[250], now_ms());
    }
    std::thread::sleep(std::time::Duration::from_millis(5));
    let r = ws.run_with(&["-vv", "run", "in.toml"], &env);
    assert_eq!(r.code, 0, "{}", r.all());
    outputs.push(r.all());
    let lines = std::fs::read_to_string(ws.path("out/contacts.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 2, "{lines}");
    assert!(lines.contains("person10@example.com") && lines.contains("person250@"));
    assert!(fake.state().searches.len() == 1);

    // Into HubSpot: one address HubSpot refuses is quarantined, the rest upserted.
    let mut csv = String::from("email,firstname,notes\n");
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
name = "hubspot-out"
key = "email"

[source]
type = "csv"
path = "data/new.csv"

[policy]
fields.email = "keep"
fields.firstname = "keep"
fields.notes = "drop"

[sink]
type = "hubspot"
token = "env:HUBSPOT_TOKEN"
base_url = "{base}"
id_property = "email"
"#
        ),
    );
    let r = ws.run_with(&["-vv", "run", "out.toml"], &env);
    assert_eq!(r.code, 3, "partial: one record quarantined\n{}", r.all());
    assert!(r.all().contains("refused"), "{}", r.all());
    assert!(!r.all().contains("not-an-address"), "{}", r.all());
    outputs.push(r.all());
    {
        let s = fake.state();
        assert_eq!(s.contacts.len(), 450);
        assert!(s.find("email", "new149@example.org").is_some());
        // The dropped field never left.
        assert!(
            s.contacts
                .values()
                .all(|c| !c.properties.contains_key("notes"))
        );
    }
    no_canary(&ws, &outputs);
    if let Some(p) = &prism {
        let log = p.log();
        assert!(!log.contains(CANARY));
        assert!(!log.contains("VIOLATIONS"), "{log}");
    }
}

#[test]
fn an_oauth_app_signs_in_with_secrets_by_reference_and_none_of_them_is_printed() {
    let (fake, prism, base) = servers("cli_hubspot_oauth");
    let (secret, refresh) = ("canary-client-secret-e2e-51f0", "canary-refresh-e2e-77aa");
    {
        let mut s = fake.state();
        s.oauth = Some(("hushflow-e2e".into(), secret.into(), refresh.into()));
        for i in 0..120 {
            let email = format!("o{i}@example.com");
            s.insert(&[("email", &email)], 1_700_000_000_000);
        }
    }
    let ws = Workspace::new();
    let text = format!(
        r#"
[pipeline]
name = "hubspot-oauth"
key = "email"

[source]
type = "hubspot"
refresh_token = "env:HS_REFRESH"
client_id = "hushflow-e2e"
client_secret = "env:HS_SECRET"
base_url = "{base}"

[policy]
fields.email = "keep"

[sink]
type = "jsonl"
path = "out/o.jsonl"
"#
    );
    ws.write("p.toml", &text);
    let env = [
        ("HS_REFRESH", refresh),
        ("HS_SECRET", secret),
        ("HUSHFLOW_LOG", "trace"),
    ];
    let r = ws.run_with(&["-vv", "run", "p.toml"], &env);
    assert_eq!(r.code, 0, "{}", r.all());
    let out = std::fs::read_to_string(ws.path("out/o.jsonl")).unwrap();
    assert_eq!(out.lines().count(), 120);
    let issued = fake.state().issued_tokens();
    assert_eq!(issued.len(), 1);
    let mut outputs = vec![r.all()];

    // A secret written into the file instead of a reference is refused, at its key.
    ws.write(
        "bad.toml",
        text.replace("env:HS_SECRET", "literal-client-secret"),
    );
    let r = ws.run_with(&["validate", "bad.toml"], &env);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.all().contains("source.client_secret"), "{}", r.all());
    outputs.push(r.all());

    for out in &outputs {
        for s in [secret, refresh, issued[0].as_str()] {
            assert!(!out.contains(s), "a secret in output:\n{out}");
        }
    }
    for (path, bytes) in ws.bytes_under(ws.path("").as_path()) {
        for s in [secret, refresh, issued[0].as_str()] {
            assert!(!contains(&bytes, s), "a secret in {}", path.display());
        }
    }
    if let Some(p) = &prism {
        assert!(!p.log().contains("VIOLATIONS"), "{}", p.log());
    }
}

/// The HubSpot sink cannot delete or null contacts yet: a pipeline with a consent filter into it
/// is refused unless it says `on_withdrawal = "keep"`, so nobody believes withdrawn people are
/// removed from HubSpot when they are not.
#[test]
fn a_consent_filter_into_hubspot_is_refused_until_withdrawals_are_kept_knowingly() {
    let ws = Workspace::new();
    ws.write("data/new.csv", "email,opt_in\na@example.org,yes\n");
    let pipeline = |extra: &str| {
        format!(
            r#"
[pipeline]
name = "hubspot-consent"
key = "email"
{extra}

[source]
type = "csv"
path = "data/new.csv"

[policy]
fields.email = "keep"
fields.opt_in = "keep"
consent.field = "opt_in"

[sink]
type = "hubspot"
token = "env:HUBSPOT_TOKEN"
base_url = "http://127.0.0.1:9"
id_property = "email"
"#
        )
    };
    let env = [("HUBSPOT_TOKEN", CANARY)];
    for extra in [
        "",
        r#"on_withdrawal = "delete""#,
        r#"on_withdrawal = "tombstone""#,
    ] {
        ws.write("p.toml", pipeline(extra));
        let r = ws.run_with(&["validate", "p.toml"], &env);
        assert_ne!(r.code, 0, "{extra}: {}", r.all());
        assert!(
            r.all().contains("on_withdrawal") && r.all().contains("cannot yet delete"),
            "{extra}: {}",
            r.all()
        );
    }
    ws.write("p.toml", pipeline(r#"on_withdrawal = "keep""#));
    let r = ws.run_with(&["validate", "p.toml"], &env);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.all().contains("keep the rows already written"),
        "{}",
        r.all()
    );
}
