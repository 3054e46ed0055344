//! Bad input loses nothing: malformed rows are quarantined with line and reason, counted, and
//! reported; `on_error = "fail"` stops at the first one; messages never carry values.

use crate::common::*;

const HEADER: &str = "id,email,country,notes\n";

fn bad_csv() -> Vec<u8> {
    let mut data = HEADER.as_bytes().to_vec();
    data.extend_from_slice(b"1,a@example.com,DE,fine\n"); // line 2
    data.extend_from_slice(b"2,b@example.com,FR,\"multi\nline note\"\n"); // lines 3-4
    data.extend_from_slice(b"3,short-row-canary@example.com\n"); // line 5: wrong field count
    data.extend_from_slice(b"4,c@example.com,\xff\xfeUK,x\n"); // line 6: invalid UTF-8 in country
    data.extend_from_slice(b",nokey-canary@example.com,US,x\n"); // line 7: missing key
    data.extend_from_slice(b"5,d@example.com,ES,\xffnot-read\n"); // line 8: bad bytes in a dropped field: fine
    data.extend_from_slice(b"6,e@example.com,IT,last\n"); // line 9
    data
}

fn quarantine_lines(ws: &Workspace) -> Vec<serde_json::Value> {
    let dir = ws.state().join("quarantine");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "age"))
        .collect();
    assert_eq!(files.len(), 1, "one quarantine file per run");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        files[0].metadata().unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Encrypted at rest: no record's bytes in the file, and an operator exports it to read it.
    let bytes = std::fs::read(files[0].path()).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    assert!(
        !bytes.windows(7).any(|w| w == b"example"),
        "plaintext at rest"
    );
    let out = ws.path("q-export.jsonl");
    let _ = std::fs::remove_file(&out);
    ws.ok(
        &["quarantine", "export", "-", "--out", out.to_str().unwrap()],
        0,
    );
    // Exporting again over the file fails (an existing file is never replaced), and the audit
    // log says it failed, exporting nothing.
    let again = ws.ok(
        &["quarantine", "export", "-", "--out", out.to_str().unwrap()],
        1,
    );
    assert!(again.stderr.contains("never replaced"), "{}", again.all());
    let audit = ws.ok(&["audit", "list", "--json"], 0).stdout;
    let exports: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["action"] == "quarantine.export")
        .collect();
    assert_eq!(exports.len(), 2, "{audit}");
    assert_eq!(exports[0]["outcome"], "ok");
    assert_eq!(exports[1]["outcome"], "failed", "{audit}");
    assert_eq!(exports[1]["counts"]["records"], 0, "{audit}");
    std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn malformed_rows_are_quarantined_counted_and_reported() {
    let ws = Workspace::new();
    ws.write("data/contacts.csv", bad_csv());
    ws.ok(&["keys", "create", "pepper"], 0);
    ws.write("p.toml", pipeline(CSV_SINK));
    let r = ws.ok(&["run", "p.toml"], 3);
    assert!(
        r.stdout
            .contains("read 7, written 4, filtered 0, quarantined 3"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("quarantine: "), "{}", r.stdout);
    assert!(r.stdout.contains("wrong_field_count 1"), "{}", r.stdout);
    assert!(
        !r.all().contains("canary"),
        "values never reach the output: {}",
        r.all()
    );

    let q = quarantine_lines(&ws);
    let summary: Vec<(u64, &str)> = q
        .iter()
        .map(|l| (l["line"].as_u64().unwrap(), l["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            (5, "wrong_field_count"),
            (6, "invalid_utf8"),
            (7, "missing_key")
        ]
    );
    assert!(q[1]["reason"].as_str().unwrap().contains("`country`"));
    // A row of the wrong width keeps none of its fields (which one is which is unknown, so a
    // field the policy drops cannot be told apart): its line and reason only.
    assert!(!q[0].to_string().contains("short-row-canary"), "{}", q[0]);
    assert!(q[1]["record_base64"].is_string() || q[1]["record"].is_string());

    let out = std::fs::read_to_string(ws.path("out/leads.csv")).unwrap();
    let ids: Vec<&str> = out
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(ids, ["1", "2", "5", "6"]);

    let audit = ws.ok(&["audit", "list", "--json"], 0);
    let records: Vec<serde_json::Value> = audit
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last = records.iter().rfind(|r| r["action"] == "run").unwrap();
    // The first export; `quarantine_lines` tries a second one that fails.
    let export = records
        .iter()
        .find(|r| r["action"] == "quarantine.export")
        .unwrap();
    assert_eq!(
        export["action"], "quarantine.export",
        "the export is audited"
    );
    assert_eq!(export["counts"]["records"], 3);
    assert_eq!(last["outcome"], "partial");
    assert_eq!(last["counts"]["quarantined"], 3);
    assert_eq!(last["counts"]["quarantined.missing_key"], 1);
}

#[test]
fn on_error_fail_stops_at_the_first_bad_row_and_names_it() {
    let ws = Workspace::new();
    ws.write("data/contacts.csv", bad_csv());
    ws.ok(&["keys", "create", "pepper"], 0);
    let text = pipeline(CSV_SINK).replace("key = \"id\"\n", "key = \"id\"\non_error = \"fail\"\n");
    ws.write("p.toml", text);
    let r = ws.ok(&["run", "p.toml"], 1);
    assert!(
        r.stderr
            .contains("contacts.csv:5: expected 4 fields, found 2"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains("canary"), "{}", r.all());
    assert!(
        !ws.path("out/leads.csv").exists(),
        "a failed run leaves no partial output"
    );
    let audit = ws.ok(&["audit", "list", "--json"], 0);
    let last: serde_json::Value =
        serde_json::from_str(audit.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["outcome"], "failure");
}

#[test]
fn broken_json_lines_are_quarantined_without_their_values() {
    let ws = Workspace::new();
    ws.write(
        "data/c.jsonl",
        "{\"id\": \"1\", \"email\": \"a@x.io\"}\n{\"id\": \"2\", \"email\": \"json-canary@x.io\"\n[1,2]\n\n{\"id\": 3}\n",
    );
    ws.write(
        "p.toml",
        r#"
[pipeline]
name = "j"
key = "id"
[source]
type = "jsonl"
path = "data/c.jsonl"
[policy]
fields.id = "keep"
fields.email = "keep"
[sink]
type = "jsonl"
path = "out/o.jsonl"
"#,
    );
    let r = ws.ok(&["run", "p.toml"], 3);
    assert!(
        r.stdout
            .contains("read 4, written 2, filtered 0, quarantined 2"),
        "{}",
        r.stdout
    );
    assert!(!r.all().contains("canary"));
    let q = quarantine_lines(&ws);
    assert_eq!(q[0]["line"], 2);
    assert_eq!(q[0]["code"], "broken_json");
    assert!(!q[0]["reason"].as_str().unwrap().contains("canary"));
    assert_eq!(q[1]["line"], 3);
}

#[test]
fn a_missing_source_column_fails_clearly() {
    let ws = Workspace::new();
    ws.write("data/contacts.csv", "id,country\n1,DE\n");
    ws.ok(&["keys", "create", "pepper"], 0);
    ws.write("p.toml", pipeline(CSV_SINK));
    // The run would stop at once, so validate fails too (exit 2), naming the field.
    let v = ws.ok(&["validate", "p.toml"], 2);
    assert!(
        v.stderr.contains("policy.fields.email")
            && v.stderr.contains("the header of")
            && !v.stdout.contains("valid"),
        "{}",
        v.all()
    );
    let r = ws.ok(&["run", "p.toml"], 2);
    assert!(r.stderr.contains("email"), "{}", r.stderr);
}

/// A key that leaves under another name (`from`) is still checked: a record without one is
/// quarantined, not written with an empty key.
#[test]
fn a_renamed_key_field_is_still_required() {
    let ws = Workspace::new();
    ws.write(
        "data/contacts.csv",
        "customer_id,email\n1,a@example.com\n,renamed-key-canary@example.com\n3,c@example.com\n",
    );
    ws.write(
        "p.toml",
        r#"
[pipeline]
name = "renamed-key"
key = "id"

[source]
type = "csv"
path = "data/contacts.csv"

[policy]
fields.id = { from = "customer_id" }
fields.email = "keep"

[sink]
type = "csv"
path = "out/leads.csv"
"#,
    );
    let r = ws.ok(&["run", "p.toml"], 3);
    assert!(
        r.stdout.contains("written 2, filtered 0, quarantined 1"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("missing_key 1"), "{}", r.stdout);
    assert!(!r.all().contains("canary"), "{}", r.all());
    let q = quarantine_lines(&ws);
    assert_eq!(q[0]["line"], 3);
    assert_eq!(q[0]["code"], "missing_key");
}

/// A CSV file without a header row: its first record would be taken for the field names. They
/// are never printed, by validate or run, and both fail, saying what to do.
#[test]
fn a_csv_without_a_header_row_is_refused_without_showing_its_first_record() {
    const FIRST: [&str; 4] = ["C001", "Jane", "jane.canary@example.com", "901820"];
    let ws = Workspace::new();
    ws.ok(&["keys", "create", "pepper"], 0);
    let no_header = "C001,Jane,jane.canary@example.com,+49 30 901820\n\
                     C002,Bob,bob@example.com,+33 1 44 60 56 93\n";
    let check = |r: &Run| {
        assert!(
            r.stderr.contains("no header row") && r.stderr.contains("Add a header row"),
            "{}",
            r.all()
        );
        for value in FIRST {
            assert!(!r.all().contains(value), "`{value}` was shown: {}", r.all());
        }
    };

    // The policy reads fields the file's header would have.
    ws.write("p.toml", pipeline(CSV_SINK));
    // Validated before the file exists (as when a scheduler registers a DAG): nothing to check.
    ws.ok(&["validate", "--offline", "p.toml"], 0);
    ws.write("data/contacts.csv", no_header);
    check(&ws.ok(&["validate", "p.toml"], 2));
    check(&ws.ok(&["run", "p.toml"], 2));

    // The policy happens to read a name the first record has: still refused, nothing listed as
    // "dropped".
    ws.write(
        "p.toml",
        pipeline(CSV_SINK)
            .replace("key = \"id\"", "key = \"C001\"")
            .replace("fields.id =", "fields.C001 =")
            .replace("fields.email = {", "#")
            .replace("fields.country", "#")
            .replace("fields.notes", "#"),
    );
    let r = ws.ok(&["validate", "p.toml"], 2);
    assert!(!r.stdout.contains("dropped"), "{}", r.all());
    assert!(r.stderr.contains("no header row"), "{}", r.all());
    assert!(
        !r.all().contains("Jane") && !r.all().contains("canary"),
        "{}",
        r.all()
    );
}

/// A quarantine the disk cannot hold (a full disk, or here a file-size limit: writes fail with
/// EFBIG) fails the run naming the quarantine, and leaves no truncated file behind.
#[test]
fn a_quarantine_that_cannot_be_written_fails_the_run_naming_it_and_leaves_no_partial_file() {
    let ws = Workspace::new();
    ws.write(
        "p.toml",
        "[pipeline]\nname = \"full\"\nkey = \"id\"\n[source]\ntype = \"csv\"\npath = \"in.csv\"\n\
         [policy]\nfields.id = \"keep\"\nfields.email = \"keep\"\n\
         [sink]\ntype = \"csv\"\npath = \"out.csv\"\n",
    );
    // Every row lacks its key, so every row is quarantined: far more than the limit below.
    let mut csv = String::from("id,email\n");
    for i in 0..20_000 {
        csv.push_str(&format!(",user{i}@example.com\n"));
    }
    ws.write("in.csv", csv);
    ws.ok(&["validate", "p.toml"], 0);
    let out = std::process::Command::new("sh")
        .arg("-c")
        // Ignore SIGXFSZ so that a write past the limit fails with EFBIG instead of a kill.
        .arg("trap '' XFSZ; ulimit -f 512; exec \"$0\" run p.toml")
        .arg(env!("CARGO_BIN_EXE_hushflow"))
        .current_dir(ws.path("."))
        .env("HUSHFLOW_STATE_DIR", ws.state())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("quarantine"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(ws.state().join("quarantine"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "a truncated quarantine stayed: {left:?}");
}
