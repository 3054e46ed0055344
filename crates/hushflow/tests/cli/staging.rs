//! Staged runs through the real binary: segments open with the `age` CLI and files the `age` CLI
//! encrypts to the state recipient are read; flipped bytes, cut files, swapped segments and the
//! wrong key stop the run before the sink sees a row; a run killed with SIGKILL and started again
//! loads every record exactly once; no personal value is left in plain text under the state
//! directory.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const CANARY: &str = "staged-canary-7f3a@example.com";

fn staged_pipeline(retention: u32, sink: &str) -> String {
    format!(
        r#"
[pipeline]
name = "staged"
key = "id"
batch_size = 1000
staging = true
retention = {retention}

[source]
type = "csv"
path = "data/contacts.csv"

[policy]
fields.id = "keep"
fields.email = "keep"
fields.country = "keep"

{sink}
"#
    )
}

const UPSERT_SINK: &str = r#"[sink]
type = "sqlite"
path = "out/leads.db"
table = "leads"
mode = "upsert"
"#;

/// `rows` contacts; row 2 carries the canary email; one malformed row (line 11) is quarantined.
fn contacts(ws: &Workspace, rows: usize) {
    let mut data = String::from("id,email,country,notes\n");
    for i in 1..=rows {
        let email = if i == 2 {
            CANARY.to_string()
        } else {
            format!("user{i}@example.org")
        };
        data.push_str(&format!("{i},{email},DE,note {i}\n"));
        if i == 9 {
            data.push_str("bad-row-without-fields\n");
        }
    }
    ws.write("data/contacts.csv", data);
    std::fs::create_dir_all(ws.path("out")).unwrap();
}

fn age_cli() -> &'static str {
    assert!(
        Command::new("age").arg("--version").output().is_ok(),
        "the `age` CLI is needed (Debian package `age`; scripts/test.sh installs it)"
    );
    "age"
}

/// The unfinished staged run's directory (there must be exactly one).
fn staged_dir(ws: &Workspace) -> PathBuf {
    let root = ws.state().join("staging/staged");
    let dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut s: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "age"))
        .collect();
    s.sort();
    s
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

fn table_rows(ws: &Workspace) -> Vec<(i64, String)> {
    let db = rusqlite::Connection::open(ws.path("out/leads.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT CAST(id AS INTEGER), email FROM leads ORDER BY CAST(id AS INTEGER)")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn expected_rows(rows: usize) -> Vec<(i64, String)> {
    (1..=rows as i64)
        .map(|i| {
            let email = if i == 2 {
                CANARY.to_string()
            } else {
                format!("user{i}@example.org")
            };
            (i, email)
        })
        .collect()
}

/// A run whose extraction completes and whose load fails (the sink's directory is a file, so
/// the database cannot be created; validation, which refuses a sink path that is a directory,
/// has no objection), so that an unfinished, fully staged run is left to resume.
fn stage_without_loading(ws: &Workspace, rows: usize) -> PathBuf {
    contacts(ws, rows);
    ws.write("out/not-a-dir", "");
    ws.write(
        "p.toml",
        staged_pipeline(
            0,
            &UPSERT_SINK.replace("out/leads.db", "out/not-a-dir/leads.db"),
        ),
    );
    ws.ok(&["run", "p.toml"], 1);
    let dir = staged_dir(ws);
    assert_eq!(manifest(&dir)["extracted"], true);
    assert_eq!(manifest(&dir)["committed_at"], serde_json::Value::Null);
    ws.write("p.toml", staged_pipeline(0, UPSERT_SINK));
    dir
}

#[test]
fn segments_open_with_the_age_cli_and_age_cli_files_are_read() {
    let age = age_cli();
    let ws = Workspace::new();
    let dir = stage_without_loading(&ws, 2500);
    let segs = segments(&dir);
    assert_eq!(segs.len(), 3, "2500 rows and a bad one in batches of 1000");
    ws.ok(&["keys", "export-identity", "--out", "identity.txt"], 0);

    // hushflow → age: the first segment holds the canary row.
    let out = Command::new(age)
        .args(["-d", "-i"])
        .arg(ws.path("identity.txt"))
        .arg(&segs[0])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.starts_with(b"HFSEG1\n"));
    assert!(contains(&out.stdout, CANARY));

    // age → hushflow: every segment re-encrypted by the age CLI to the state recipient, then
    // the run resumes from them.
    let recipient = manifest(&dir)["recipient"].as_str().unwrap().to_string();
    assert!(recipient.starts_with("age1"));
    for seg in &segs {
        let plain = Command::new(age)
            .args(["-d", "-i"])
            .arg(ws.path("identity.txt"))
            .arg(seg)
            .output()
            .unwrap();
        assert!(plain.status.success());
        let plain_path = ws.path("plain.bin");
        std::fs::write(&plain_path, &plain.stdout).unwrap();
        let enc = Command::new(age)
            .args(["-e", "-r", &recipient, "-o"])
            .arg(seg)
            .arg(&plain_path)
            .output()
            .unwrap();
        assert!(
            enc.status.success(),
            "{}",
            String::from_utf8_lossy(&enc.stderr)
        );
        std::fs::remove_file(&plain_path).unwrap();
    }
    let r = ws.ok(&["run", "p.toml"], 3);
    assert!(r.stdout.contains("resumed run"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("read 2501, written 2500, filtered 0, quarantined 1"),
        "{}",
        r.stdout
    );
    assert_eq!(table_rows(&ws), expected_rows(2500));
    assert!(!dir.exists(), "staged files are removed after the commit");
}

#[test]
fn damaged_swapped_and_foreign_segments_stop_the_run_before_any_row_is_loaded() {
    type Damage = fn(&[PathBuf]);
    let cases: [(&str, Damage, &str); 4] = [
        (
            "flipped byte",
            |segs| {
                let mut b = std::fs::read(&segs[1]).unwrap();
                let at = b.len() - 40;
                b[at] ^= 0x20;
                std::fs::write(&segs[1], b).unwrap();
            },
            "damaged or was tampered with",
        ),
        (
            "truncated",
            |segs| {
                let b = std::fs::read(&segs[2]).unwrap();
                std::fs::write(&segs[2], &b[..b.len() / 2]).unwrap();
            },
            "damaged or was tampered with",
        ),
        (
            "swapped",
            |segs| {
                let tmp = segs[0].with_extension("swap");
                std::fs::rename(&segs[0], &tmp).unwrap();
                std::fs::rename(&segs[1], &segs[0]).unwrap();
                std::fs::rename(&tmp, &segs[1]).unwrap();
            },
            "renamed or swapped",
        ),
        (
            "another key",
            |segs| {
                let out = Command::new("age-keygen").output().unwrap();
                let text = String::from_utf8(out.stdout).unwrap();
                let other = text
                    .lines()
                    .find_map(|l| l.strip_prefix("# public key: "))
                    .unwrap()
                    .to_string();
                let enc = Command::new("age")
                    .args(["-e", "-r", &other, "-o"])
                    .arg(&segs[0])
                    .arg(&segs[1])
                    .output()
                    .unwrap();
                assert!(enc.status.success());
            },
            "encrypted to another one",
        ),
    ];
    age_cli();
    for (name, damage, expected) in cases {
        let ws = Workspace::new();
        let dir = stage_without_loading(&ws, 2500);
        damage(&segments(&dir));
        let r = ws.ok(&["run", "p.toml"], 1);
        assert!(r.all().contains(expected), "{name}: {}", r.all());
        assert!(!r.all().contains(CANARY), "{name}");
        // Checked before loading: the sink has not one row.
        let db = rusqlite::Connection::open(ws.path("out/leads.db")).unwrap();
        let loaded: i64 = db
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'leads'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(loaded, 0, "{name}: no table was even created");
        // --fresh reads the source again and succeeds.
        let r = ws.ok(&["run", "p.toml", "--fresh"], 3);
        assert!(!r.stdout.contains("resumed"), "{name}");
        assert_eq!(table_rows(&ws), expected_rows(2500), "{name}");
    }
}

#[test]
fn a_run_killed_with_sigkill_resumes_and_loads_every_record_exactly_once() {
    let rows = 60_000;
    for kill_when in ["extracting", "loading"] {
        let ws = Workspace::new();
        contacts(&ws, rows);
        ws.write("p.toml", staged_pipeline(0, UPSERT_SINK));
        let mut child = ws
            .command()
            .args(["run", "p.toml", "--workers", "2"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let staging = ws.state().join("staging/staged");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut killed = false;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            let ready = std::fs::read_dir(&staging)
                .ok()
                .and_then(|mut d| d.next())
                .and_then(|e| e.ok())
                .and_then(|e| std::fs::read(e.path().join("manifest.json")).ok())
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|m| match kill_when {
                    "extracting" => m["segments"].as_u64() >= Some(5) && m["extracted"] == false,
                    _ => m["loaded"].as_u64() >= Some(5),
                });
            if ready {
                // `Child::kill` is SIGKILL on Unix: no handler runs, nothing is flushed.
                child.kill().unwrap();
                killed = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let _ = child.wait();
        assert!(
            killed,
            "{kill_when}: the run ended before it could be killed"
        );
        let r = ws.ok(&["run", "p.toml"], 3);
        assert_eq!(
            r.stdout.contains("resumed run"),
            kill_when == "loading",
            "{kill_when}: {}",
            r.stdout
        );
        assert_eq!(table_rows(&ws), expected_rows(rows), "{kill_when}");
        // The quarantined row is there once, in a readable file.
        ws.ok(&["quarantine", "export", "staged", "--out", "q.jsonl"], 0);
        let q = std::fs::read_to_string(ws.path("q.jsonl")).unwrap();
        assert_eq!(q.lines().count(), 1, "{kill_when}: {q}");
        assert!(q.contains("\"line\":11"), "{kill_when}: {q}");
    }
}

#[test]
fn nothing_under_the_state_directory_is_plain_personal_data_and_gc_honours_retention() {
    let ws = Workspace::new();
    contacts(&ws, 3000);
    ws.write("p.toml", staged_pipeline(3, UPSERT_SINK));
    ws.ok(&["run", "p.toml"], 3);
    let dir = staged_dir(&ws);
    assert!(manifest(&dir)["committed_at"].is_string());
    let files = ws.bytes_under(&ws.state());
    assert!(
        files
            .iter()
            .any(|(p, _)| p.to_string_lossy().ends_with(".age"))
    );
    for (path, bytes) in &files {
        for canary in [CANARY, "user1234@example.org", "note 7"] {
            assert!(!contains(bytes, canary), "{canary} in {}", path.display());
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
    }
    // Within retention: kept; --unfinished does not touch committed runs either.
    let r = ws.ok(&["gc", "--unfinished"], 0);
    assert!(r.stdout.contains("removed 0 staged runs"), "{}", r.stdout);
    assert!(dir.exists());
    // Three days later (the commit time moved back): removed, and audited.
    let mut m = manifest(&dir);
    m["committed_at"] = "2026-01-01T00:00:00Z".into();
    std::fs::write(dir.join("manifest.json"), m.to_string()).unwrap();
    let r = ws.ok(&["gc"], 0);
    assert!(r.stdout.contains("removed 1 staged runs"), "{}", r.stdout);
    assert!(!dir.exists());
    let audit = ws.ok(&["audit", "list", "--json"], 0);
    let last: serde_json::Value =
        serde_json::from_str(audit.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["action"], "gc");
    assert_eq!(last["counts"]["removed"], 1);
}
