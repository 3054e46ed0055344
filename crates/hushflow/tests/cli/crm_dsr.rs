//! Data subject requests reaching into the CRMs hushflow writes to: a pipeline into HubSpot and
//! one into Salesforce, each against its stateful fake behind Prism (validating every request
//! and answer against `tests/openapi/`). `dsr access` exports the person's CRM records,
//! `dsr erase` deletes exactly them (HubSpot's GDPR delete, Salesforce's record delete) and
//! leaves everyone else; the next sync keeps them out; no output names them. The pipelines key
//! on the email address, kept as it is, so the person is named by `--subject`.

use crate::common::*;
use hushflow_test_support::hubspot::FakeHubSpot;
use hushflow_test_support::prism::workspace_root;
use hushflow_test_support::salesforce::FakeSalesforce;
use hushflow_test_support::service::Service;

const EMAIL: &str = "crm.canary+dsr@example.org";
const HUBSPOT_TOKEN: &str = "pat-na1-canary-dsr-crm-token";
const SF_REFRESH: &str = "5Aep861-canary-dsr-crm-refresh";
const SF_SECRET: &str = "canary-dsr-crm-consumer-secret";

#[test]
fn dsr_finds_exports_and_erases_a_person_in_hubspot_and_salesforce() {
    let hubspot = FakeHubSpot::start(HUBSPOT_TOKEN);
    let hubspot_prism = Service::prism(
        "cli_crm_dsr_hubspot",
        &workspace_root().join("tests/openapi/hubspot.yaml"),
        &hubspot.url,
    );
    let hubspot_url = hubspot_prism
        .as_ref()
        .map_or_else(|| hubspot.url.clone(), |p| p.url());
    let salesforce = FakeSalesforce::start("3MVG9-dsr", SF_SECRET, SF_REFRESH);
    let salesforce_prism = Service::prism(
        "cli_crm_dsr_salesforce",
        &workspace_root().join("tests/openapi/salesforce.yaml"),
        &salesforce.url,
    );
    let salesforce_url = salesforce_prism
        .as_ref()
        .map_or_else(|| salesforce.url.clone(), |p| p.url());
    salesforce.state().instance_url = salesforce_url.clone();

    let ws = Workspace::new();
    let people = |email: &str, first: &str| {
        format!("{email},{first}\nada@example.com,Ada\n{EMAIL},Canary\ngrace@example.com,Grace\n")
    };
    ws.write("data/hubspot.csv", people("email", "firstname"));
    ws.write("data/salesforce.csv", people("Email", "FirstName"));
    ws.write(
        "pipelines/hubspot.toml",
        format!(
            r#"
[pipeline]
name = "to-hubspot"
key = "email"
[source]
type = "csv"
path = "../data/hubspot.csv"
[policy]
fields.email = "keep"
fields.firstname = "keep"
[sink]
type = "hubspot"
token = "env:HUBSPOT_TOKEN"
base_url = "{hubspot_url}"
id_property = "email"
"#
        ),
    );
    ws.write(
        "pipelines/salesforce.toml",
        format!(
            r#"
[pipeline]
name = "to-salesforce"
key = "Email"
[source]
type = "csv"
path = "../data/salesforce.csv"
[policy]
fields.Email = "keep"
fields.FirstName = "keep"
[sink]
type = "salesforce"
refresh_token = "env:SF_REFRESH"
client_id = "3MVG9-dsr"
client_secret = "env:SF_SECRET"
login_url = "{salesforce_url}"
poll_interval_ms = 20
"#
        ),
    );
    let env = [
        ("HUBSPOT_TOKEN", HUBSPOT_TOKEN),
        ("SF_REFRESH", SF_REFRESH),
        ("SF_SECRET", SF_SECRET),
    ];
    let mut outputs = Vec::new();
    for p in ["pipelines/hubspot.toml", "pipelines/salesforce.toml"] {
        let r = ws.run_with(&["run", p], &env);
        assert_eq!(r.code, 0, "{p}: {}", r.all());
        outputs.push(r.all());
    }
    assert_eq!(hubspot.state().contacts.len(), 3);
    assert_eq!(salesforce.state().records.len(), 3);

    // Access: the person's CRM records, in an export only the requester's key opens.
    let identity = ws.path("requester.key");
    let keygen = std::process::Command::new("age-keygen")
        .arg("-o")
        .arg(&identity)
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let recipient = String::from_utf8_lossy(&keygen.stderr)
        .trim()
        .trim_start_matches("Public key: ")
        .to_string();
    let r = ws.run_with(
        &[
            "dsr",
            "access",
            "--subject",
            EMAIL,
            "--pipelines",
            "pipelines",
            "--recipient",
            &recipient,
            "-o",
            "export.age",
            "--json",
        ],
        &env,
    );
    outputs.push(r.all());
    let opened = std::process::Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&identity)
        .arg(ws.path("export.age"))
        .output()
        .unwrap();
    assert!(opened.status.success());
    let export = String::from_utf8_lossy(&opened.stdout).into_owned();
    assert!(
        export.contains(EMAIL) && export.contains("Canary"),
        "{export}"
    );
    assert!(!export.contains("ada@example.com"), "{export}");
    let view: serde_json::Value = match serde_json::from_str(r.stdout.trim()) {
        Ok(v) => v,
        Err(_) => panic!("dsr access: {}", r.all()),
    };
    for system in view["systems"].as_array().unwrap() {
        if system["system"].as_str().unwrap().starts_with("pipeline") {
            assert_eq!(system["state"], "done", "{view}");
            assert_eq!(system["count"], 1, "{view}");
        }
    }

    let r = ws.run_with(
        &[
            "-vv",
            "dsr",
            "erase",
            "--subject",
            EMAIL,
            "--pipelines",
            "pipelines",
            "--json",
        ],
        &env,
    );
    outputs.push(r.all());
    assert_eq!(r.code, 0, "{}", r.all());
    let view: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(view["state"], "done", "{view}");
    let systems: Vec<&serde_json::Value> = view["systems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["system"].as_str().unwrap().starts_with("pipeline"))
        .collect();
    assert_eq!(systems.len(), 2, "{view}");
    for system in systems {
        assert_eq!(system["state"], "done", "{view}");
        assert_eq!(system["count"], 1, "{view}");
    }
    // Exactly the person is gone from each CRM.
    {
        let h = hubspot.state();
        let left: Vec<&str> = h
            .contacts
            .values()
            .filter_map(|c| c.properties.get("email").map(String::as_str))
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(!left.contains(&EMAIL));
        assert_eq!(h.counts.get("gdpr-delete"), Some(&1));
    }
    {
        let s = salesforce.state();
        assert_eq!(s.records.len(), 2);
        assert!(
            s.records
                .values()
                .all(|r| r.fields.get("Email").and_then(|v| v.as_str()) != Some(EMAIL))
        );
        assert_eq!(s.count("delete"), 1);
    }
    // The next syncs keep them out: the erased person is suppressed.
    for p in ["pipelines/hubspot.toml", "pipelines/salesforce.toml"] {
        let r = ws.run_with(&["run", p], &env);
        assert_eq!(r.code, 0, "{p}: {}", r.all());
        outputs.push(r.all());
    }
    assert_eq!(hubspot.state().contacts.len(), 2);
    assert_eq!(salesforce.state().records.len(), 2);

    for out in &outputs {
        for canary in [EMAIL, HUBSPOT_TOKEN, SF_REFRESH, SF_SECRET] {
            assert!(!out.contains(canary), "{canary} in output:\n{out}");
        }
    }
    for (path, bytes) in ws.bytes_under(ws.state().as_path()) {
        for canary in [EMAIL, HUBSPOT_TOKEN, SF_REFRESH, SF_SECRET] {
            assert!(!contains(&bytes, canary), "{canary} in {}", path.display());
        }
    }
    for prism in [&hubspot_prism, &salesforce_prism].into_iter().flatten() {
        assert!(!prism.log().contains("VIOLATIONS"), "{}", prism.log());
    }
}
