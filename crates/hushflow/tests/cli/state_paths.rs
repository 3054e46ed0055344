//! No pipeline path reaches into the state directory: the audit log, the keyring and the
//! quarantine are written through hushflow-state only. Sources, sinks, a `sql` task's database
//! and a replay's `--out` are refused there, however the path gets there (`..`, a symlink), and
//! before anything in it is read.

use crate::common::*;

/// A one-sync pipeline from `source` (a `[source]` table) to `sink` (a `[sink]` table).
fn sync(source: &str, sink: &str) -> String {
    format!(
        r#"
[pipeline]
name = "state-paths"
key = "id"

{source}

[policy]
fields.id = "keep"

{sink}
"#
    )
}

const CSV_SOURCE: &str = "[source]\ntype = \"csv\"\npath = \"data/contacts.csv\"\n";

fn sink(kind: &str, path: &str) -> String {
    match kind {
        "sqlite" => format!("[sink]\ntype = \"sqlite\"\npath = \"{path}\"\ntable = \"t\"\n"),
        _ => format!("[sink]\ntype = \"{kind}\"\npath = \"{path}\"\n"),
    }
}

/// Validate and run both refuse `text` (exit 2), naming the state directory.
fn refused(ws: &Workspace, text: &str) {
    ws.write("p.toml", text);
    for command in ["validate", "run"] {
        let r = ws.ok(&[command, "p.toml"], 2);
        assert!(
            r.stderr.contains("state directory"),
            "{command}: {}\n{text}",
            r.all()
        );
        assert!(
            !r.all().contains("canary"),
            "{command} read the file: {}",
            r.all()
        );
    }
}

#[test]
fn sinks_and_sources_in_the_state_directory_are_refused() {
    let ws = Workspace::new();
    ws.write("data/contacts.csv", "id,email\n1,a@example.com\n");
    ws.ok(&["keys", "create", "pepper"], 0);
    // The audit log exists, with its head anchor.
    ws.ok(&["keys", "list"], 0);
    assert!(ws.state().join("audit.db").exists());
    let head_before = std::fs::read(ws.state().join("audit.head")).unwrap();

    for (kind, target) in [
        ("csv", "state/audit.head"),
        ("jsonl", "state/audit.head"),
        ("sqlite", "state/audit.db"),
        ("csv", "state/new-dir/out.csv"),
        ("jsonl", "out/../state/audit.head"),
    ] {
        refused(&ws, &sync(CSV_SOURCE, &sink(kind, target)));
    }

    // Through a symlink, to the file or to a directory on the way.
    std::fs::create_dir_all(ws.path("out")).unwrap();
    std::os::unix::fs::symlink(ws.state().join("audit.head"), ws.path("out/head.jsonl")).unwrap();
    std::os::unix::fs::symlink(ws.state(), ws.path("out/st")).unwrap();
    refused(&ws, &sync(CSV_SOURCE, &sink("jsonl", "out/head.jsonl")));
    refused(&ws, &sync(CSV_SOURCE, &sink("sqlite", "out/st/audit.db")));
    // A dangling symlink whose target would be created inside.
    std::os::unix::fs::symlink(ws.state().join("planted.db"), ws.path("out/planted.db")).unwrap();
    refused(&ws, &sync(CSV_SOURCE, &sink("sqlite", "out/planted.db")));

    // A source there is refused before its header is read: its column names never show.
    ws.write("state/contacts.csv", "id,canary_column\n1,x\n");
    refused(
        &ws,
        &sync(
            "[source]\ntype = \"csv\"\npath = \"state/contacts.csv\"\n",
            &sink("csv", "out/leads.csv"),
        ),
    );
    refused(
        &ws,
        &sync(
            "[source]\ntype = \"sqlite\"\npath = \"out/st/audit.db\"\ntable = \"records\"\n",
            &sink("csv", "out/leads.csv"),
        ),
    );
    refused(
        &ws,
        &sync(
            "[source]\ntype = \"jsonl\"\npath = \"state/quarantine/x.jsonl\"\n",
            &sink("csv", "out/leads.csv"),
        ),
    );

    // A sql task's database, in a DAG file.
    ws.write(
        "dag.toml",
        r#"
[pipeline]
name = "rewrite-audit"

[[task]]
name = "rewrite"
type = "sql"
database = "state/audit.db"
sql = "DELETE FROM records"
"#,
    );
    for command in [
        vec!["validate", "dag.toml"],
        vec!["trigger", "dag.toml", "--wait"],
    ] {
        let r = ws.ok(&command, 2);
        assert!(r.stderr.contains("state directory"), "{}", r.all());
    }

    // Nothing was written there, and the log is intact.
    assert_eq!(
        std::fs::read(ws.state().join("audit.head")).unwrap(),
        head_before
    );
    assert!(!ws.state().join("new-dir").exists());
    assert!(!ws.state().join("planted.db").exists());
    ws.ok(&["audit", "verify"], 0);
}

#[test]
fn a_replay_does_not_write_into_the_state_directory() {
    let ws = Workspace::new();
    ws.write(
        "data/contacts.csv",
        "id,email\n1,a@example.com\n,b@example.com\n",
    );
    ws.write("p.toml", sync(CSV_SOURCE, CSV_SINK));
    ws.ok(&["run", "p.toml"], 3);
    let list = ws.ok(&["quarantine", "list", "--json"], 0);
    let entry: serde_json::Value = serde_json::from_str(list.stdout.trim()).unwrap();
    let run = entry["run"].as_str().unwrap().to_string();
    for out in ["state/replayed.csv", "state/audit.head"] {
        let r = ws.ok(
            &[
                "quarantine",
                "replay",
                &run,
                "--pipeline",
                "p.toml",
                "--out",
                out,
            ],
            2,
        );
        assert!(r.stderr.contains("state directory"), "{}", r.all());
    }
    assert!(!ws.state().join("replayed.csv").exists());
    ws.ok(&["audit", "verify"], 0);
    // Outside it, the replay writes where it is told.
    ws.ok(
        &[
            "quarantine",
            "replay",
            &run,
            "--pipeline",
            "p.toml",
            "--out",
            "out/replayed.csv",
        ],
        3,
    );
    assert!(ws.path("out/replayed.csv").exists());
}
