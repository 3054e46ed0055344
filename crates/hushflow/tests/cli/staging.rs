//! Staged runs through the real binary: segments open with the `age` CLI and files the `age` CLI
//! encrypts to the state recipient are read; flipped bytes, cut files, swapped segments and the
//! wrong key stop the run before the sink sees a row; a run killed with SIGKILL and started again
//! loads every record exactly once; a resumed load goes by what the sink holds, not by what the
//! state directory says; segments and manifests nobody but hushflow could have written are
//! refused; two processes never work on one staged run; no personal value is left in plain
//! text under the state directory.

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
        .filter(|p| p.is_dir())
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
    table_rows_in(ws, "out/leads.db")
}

fn table_rows_in(ws: &Workspace, db: &str) -> Vec<(i64, String)> {
    let db = rusqlite::Connection::open(ws.path(db)).unwrap();
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
    assert!(r.stdout.contains("resumed sync"), "{}", r.stdout);
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
                .and_then(|mut d| d.find_map(|e| e.ok().filter(|e| e.path().is_dir())))
                .and_then(|e| std::fs::read(e.path().join("manifest.json")).ok())
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|m| match kill_when {
                    "extracting" => m["segments"].as_u64() >= Some(5) && m["extracted"] == false,
                    _ => m["extracted"] == true && loaded_rows(&ws) >= 5_000,
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
            r.stdout.contains("resumed sync"),
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

/// Rows in the sink table so far (read while a run writes it: the database is in WAL mode).
fn loaded_rows(ws: &Workspace) -> i64 {
    rusqlite::Connection::open_with_flags(
        ws.path("out/leads.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .and_then(|db| db.query_row("SELECT count(*) FROM leads", [], |r| r.get(0)))
    .unwrap_or(0)
}

/// A staged run whose load fails part-way: the table's trigger refuses the record with id
/// `fail_at`, so the segments before it are committed and the rest are not.
fn fail_mid_load(ws: &Workspace, rows: usize, fail_at: usize) -> PathBuf {
    contacts(ws, rows);
    ws.write("p.toml", staged_pipeline(0, UPSERT_SINK));
    let db = rusqlite::Connection::open(ws.path("out/leads.db")).unwrap();
    db.execute_batch(&format!(
        "CREATE TABLE leads (id TEXT PRIMARY KEY NOT NULL, email, country);
         CREATE TRIGGER refuse BEFORE INSERT ON leads WHEN NEW.id = '{fail_at}'
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
    ))
    .unwrap();
    drop(db);
    let r = ws.ok(&["run", "p.toml"], 1);
    assert!(r.all().contains("refused by the test"), "{}", r.all());
    let committed = table_rows(ws).len();
    assert!(
        committed > 0 && committed < fail_at,
        "{committed} rows committed before the failure"
    );
    staged_dir(ws)
}

/// The finding: a staged load failed after 10 of 31 segments, the sink lost them (the database
/// removed, or the pipeline pointed at another one), and the resumed run skipped them anyway,
/// reporting success. The sink's own committed position decides now.
#[test]
fn a_resumed_load_goes_by_what_the_sink_holds() {
    let rows = 30_000;
    for case in ["database removed", "another database", "same database"] {
        let ws = Workspace::new();
        let dir = fail_mid_load(&ws, rows, 10_500);
        let db = match case {
            "database removed" => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(ws.path(&format!("out/leads.db{suffix}")));
                }
                "out/leads.db"
            }
            "another database" => {
                let sink = UPSERT_SINK.replace("out/leads.db", "out/other.db");
                ws.write("p.toml", staged_pipeline(0, &sink));
                "out/other.db"
            }
            _ => {
                // The committed segments stay committed: a change made to one of their rows
                // since is not overwritten, since the resumed load does not write them again.
                let db = rusqlite::Connection::open(ws.path("out/leads.db")).unwrap();
                db.execute_batch(
                    "DROP TRIGGER refuse; UPDATE leads SET email = 'kept@example.org' WHERE id = '1'",
                )
                .unwrap();
                "out/leads.db"
            }
        };
        let r = ws.ok(&["run", "p.toml"], 3);
        assert!(r.stdout.contains("resumed sync"), "{case}: {}", r.stdout);
        assert!(
            r.stdout.contains("read 30001, written 30000"),
            "{case}: {}",
            r.stdout
        );
        let mut expected = expected_rows(rows);
        if case == "same database" {
            expected[0].1 = "kept@example.org".into();
        }
        let rows_now = table_rows_in(&ws, db);
        assert_eq!(rows_now.len(), expected.len(), "{case}: rows in the sink");
        assert!(rows_now == expected, "{case}: the rows differ");
        assert!(
            !dir.exists(),
            "{case}: committed, the staged files are removed"
        );
    }
}

/// The same, with the resumed load pointed at PostgreSQL: it holds nothing of the staged run,
/// so every segment is loaded.
#[test]
fn a_resumed_load_into_another_kind_of_sink_loads_every_segment() {
    let Some(pg) = Database::new("staged_resume") else {
        return;
    };
    let ws = Workspace::new();
    fail_mid_load(&ws, 30_000, 10_500);
    let sink = r#"[sink]
type = "postgres"
url = "env:HF_STAGED_DB"
table = "leads"
mode = "upsert"
"#;
    ws.write("p.toml", staged_pipeline(0, sink));
    let r = ws.run_with(&["run", "p.toml"], &[("HF_STAGED_DB", &pg.url())]);
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(r.stdout.contains("resumed sync"), "{}", r.stdout);
    assert_eq!(pg.count("SELECT count(*) FROM leads"), 30_000);
    assert_eq!(
        pg.count("SELECT count(DISTINCT id) FROM leads WHERE email LIKE 'user%@example.org'"),
        29_999
    );
}

/// Re-encrypts `seg` with the `age` CLI to the state recipient after `edit` changed its
/// plaintext: what anyone who can write the state directory can do.
fn forge_segment(ws: &Workspace, dir: &Path, seg: &Path, edit: impl Fn(&mut Vec<u8>)) {
    let plain = Command::new("age")
        .args(["-d", "-i"])
        .arg(ws.path("identity.txt"))
        .arg(seg)
        .output()
        .unwrap();
    assert!(plain.status.success());
    let mut bytes = plain.stdout;
    edit(&mut bytes);
    let plain_path = ws.path("plain.bin");
    std::fs::write(&plain_path, &bytes).unwrap();
    let recipient = manifest(dir)["recipient"].as_str().unwrap().to_string();
    let enc = Command::new("age")
        .args(["-e", "-r", &recipient, "-o"])
        .arg(seg)
        .arg(&plain_path)
        .output()
        .unwrap();
    assert!(enc.status.success());
    std::fs::remove_file(&plain_path).unwrap();
}

fn replace(bytes: &mut [u8], from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let at = bytes
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .unwrap();
    bytes[at..at + from.len()].copy_from_slice(to.as_bytes());
}

/// The findings: a segment made with `age -r` (the recipient is public) was loaded, and a
/// manifest edited to count fewer segments (or to claim some loaded) made a run report success
/// with rows missing. Both stop the run now, naming the file, before the sink sees a row.
#[test]
fn forged_segments_and_edited_manifests_stop_the_run() {
    age_cli();
    type Forgery = fn(&Workspace, &Path);
    let cases: [(&str, Forgery, &str); 3] = [
        (
            "a segment with other content",
            |ws, dir| {
                let seg = dir.join("000001.age");
                forge_segment(ws, dir, &seg, |b| {
                    replace(b, "user1@example.org", "evil1@example.org")
                });
            },
            "000001.age: the staged segment does not authenticate",
        ),
        (
            "fewer segments counted",
            |_, dir| {
                let mut m = manifest(dir);
                m["segments"] = 2.into();
                m["records"] = 2000.into();
                if let Some(tags) = m["segment_tags"].as_array_mut() {
                    tags.pop();
                }
                std::fs::write(dir.join("manifest.json"), m.to_string()).unwrap();
            },
            "manifest.json: the staging manifest does not authenticate",
        ),
        (
            "segments claimed loaded",
            |_, dir| {
                let mut m = manifest(dir);
                m["loaded"] = 2.into();
                std::fs::write(dir.join("manifest.json"), m.to_string()).unwrap();
            },
            "manifest.json: the staging manifest does not authenticate",
        ),
    ];
    for (name, forge, expected) in cases {
        let ws = Workspace::new();
        let dir = stage_without_loading(&ws, 2500);
        ws.ok(&["keys", "export-identity", "--out", "identity.txt"], 0);
        forge(&ws, &dir);
        let r = ws.ok(&["run", "p.toml"], 1);
        assert!(r.all().contains(expected), "{name}: {}", r.all());
        for value in [CANARY, "evil1@example.org", "user1@example.org"] {
            assert!(!r.all().contains(value), "{name}: {}", r.all());
        }
        let db = rusqlite::Connection::open(ws.path("out/leads.db")).unwrap();
        let tables: i64 = db
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'leads'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0, "{name}: not a row loaded");
        let audit = ws.ok(&["audit", "list", "--json"], 0);
        let last: serde_json::Value =
            serde_json::from_str(audit.stdout.lines().last().unwrap()).unwrap();
        assert_eq!(last["outcome"], "failure", "{name}");
        // --fresh reads the source again.
        ws.ok(&["run", "p.toml", "--fresh"], 3);
        assert_eq!(table_rows(&ws), expected_rows(2500), "{name}");
    }
}

/// The finding: nothing kept two processes from resuming one staged run at once. The second
/// one says so and leaves the staged run alone; `gc --unfinished` leaves it alone too.
#[test]
fn a_staged_run_in_use_by_another_process_is_left_alone() {
    let ws = Workspace::new();
    let dir = stage_without_loading(&ws, 2500);
    let lock = std::fs::File::open(ws.state().join("staging/staged/.lock")).unwrap();
    lock.try_lock().unwrap();
    let r = ws.ok(&["run", "p.toml"], 1);
    assert!(
        r.all()
            .contains("another hushflow process is running or resuming a staged run"),
        "{}",
        r.all()
    );
    assert!(!ws.path("out/leads.db").exists(), "nothing was loaded");
    let r = ws.ok(&["gc", "--unfinished"], 0);
    assert!(r.stdout.contains("removed 0 staged runs"), "{}", r.stdout);
    assert!(dir.join("manifest.json").exists());
    drop(lock);
    let r = ws.ok(&["run", "p.toml"], 3);
    assert!(r.stdout.contains("resumed sync"), "{}", r.stdout);
    assert_eq!(table_rows(&ws), expected_rows(2500));
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
