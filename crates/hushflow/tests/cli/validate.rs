//! `hushflow validate` refuses bad pipelines with file, line and key, before touching data.

use crate::common::*;

fn invalid(ws: &Workspace, text: &str) -> String {
    ws.write("p.toml", text);
    let r = ws.ok(&["validate", "p.toml"], 2);
    assert!(
        !r.all().contains("canary"),
        "a value was echoed: {}",
        r.all()
    );
    r.stderr
}

fn setup() -> Workspace {
    let ws = Workspace::new();
    ws.write("data/contacts.csv", "id,email,country,notes\n");
    ws.ok(&["keys", "create", "pepper"], 0);
    ws
}

#[test]
fn unknown_key() {
    let ws = setup();
    let e = invalid(&ws, &pipeline(&format!("{CSV_SINK}colour = \"blue\"\n")));
    assert!(e.contains("p.toml:19:1: `sink.colour`"), "{e}");
}

#[test]
fn literal_secret() {
    let ws = setup();
    let e = invalid(
        &ws,
        &pipeline(&format!("{CSV_SINK}api_key = \"sk-canary-123\"\n")),
    );
    assert!(
        e.contains("p.toml:19:11:") && e.contains("`sink.api_key`") && e.contains("env:NAME"),
        "{e}"
    );
    let e = invalid(
        &ws,
        &pipeline(CSV_SINK).replace("keyring:pepper", "literal-canary-pepper"),
    );
    assert!(
        e.contains("p.toml:12:") && e.contains("policy.fields.email.key"),
        "{e}"
    );
    let e = invalid(
        &ws,
        &pipeline(CSV_SINK).replace("out/leads.csv", "https://u:canary@h/x"),
    );
    assert!(e.contains("sink.path") && e.contains("password"), "{e}");
}

#[test]
fn missing_key_reference() {
    let ws = setup();
    let e = invalid(
        &ws,
        &pipeline(CSV_SINK).replace("keyring:pepper", "keyring:nope"),
    );
    assert!(e.contains("p.toml:12:") && e.contains("nope"), "{e}");
    let e = invalid(
        &ws,
        &pipeline(CSV_SINK).replace("keyring:pepper", "env:HUSHFLOW_TEST_UNSET_VAR"),
    );
    assert!(e.contains("HUSHFLOW_TEST_UNSET_VAR"), "{e}");
}

#[test]
fn sink_field_the_policy_drops() {
    let ws = setup();
    let sink = format!("{CSV_SINK}fields = [\"id\", \"notes\"]\n");
    let e = invalid(&ws, &pipeline(&sink));
    assert!(
        e.contains("sink.fields") && e.contains("`notes`") && e.contains("drops"),
        "{e}"
    );
    let sink = format!("{CSV_SINK}fields = [\"id\", \"phone\"]\n");
    let e = invalid(&ws, &pipeline(&sink));
    assert!(e.contains("`phone`"), "{e}");
}

#[test]
fn key_field_must_leave_the_source() {
    let ws = setup();
    let e = invalid(
        &ws,
        &pipeline(CSV_SINK).replace("fields.id = \"keep\"", "fields.id = \"drop\""),
    );
    assert!(e.contains("pipeline.key"), "{e}");
}

#[test]
fn secret_file_readable_by_others_is_refused() {
    let ws = setup();
    let secret = ws.write(
        "pepper.txt",
        "Y2FuYXJ5LWZpbGUtc2VjcmV0LTAxMjM0NTY3ODktYWJjZGVm\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = invalid(
        &ws,
        &pipeline(CSV_SINK).replace("keyring:pepper", "file:pepper.txt"),
    );
    assert!(e.contains("chmod 600"), "{e}");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    ws.write(
        "p.toml",
        pipeline(CSV_SINK).replace("keyring:pepper", "file:pepper.txt"),
    );
    let r = ws.ok(&["validate", "p.toml"], 0);
    assert!(
        !r.all().contains("canary") && !r.all().contains("Y2FuYXJ5"),
        "{}",
        r.all()
    );
}

/// Pipeline names become file names (quarantine files, cursors): a name too long for one is
/// refused at validation, naming the limit, instead of failing the run.
#[test]
fn an_overlong_pipeline_name_is_refused_naming_the_limit() {
    let ws = setup();
    let e = invalid(
        &ws,
        &pipeline(CSV_SINK).replace("test-pipeline", &"p".repeat(101)),
    );
    assert!(
        e.contains("pipeline.name") && e.contains("at most 100 characters"),
        "{e}"
    );
    let dag = format!(
        "[pipeline]\nname = \"d\"\n\n[[task]]\nname = \"{}\"\ntype = \"empty\"\n",
        "t".repeat(101)
    );
    let e = invalid(&ws, &dag);
    assert!(e.contains("at most 100 characters"), "{e}");

    // At the limit, a run that quarantines a record works.
    ws.write(
        "data/contacts.csv",
        "id,email,country,notes\n1,a@example.com,DE,x\n,b@example.com,FR,x\n",
    );
    ws.write(
        "p.toml",
        pipeline(CSV_SINK).replace("test-pipeline", &"p".repeat(100)),
    );
    ws.ok(&["validate", "p.toml"], 0);
    let r = ws.ok(&["run", "p.toml"], 3);
    assert!(r.stdout.contains("quarantined 1"), "{}", r.all());
}
