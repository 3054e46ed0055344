//! PostgreSQL to PostgreSQL through the real binary, against the machine's server
//! (127.0.0.1:5432, trust auth): incremental syncs move only changed rows; a password never
//! shows; runs killed with SIGKILL at random points and run again leave the destination exactly
//! equal to an uninterrupted run's.

use crate::common::*;
use std::time::{Duration, Instant};

fn contacts(db: &Database, rows: i64) {
    db.client()
        .batch_execute(&format!(
            "CREATE TABLE contacts (id bigint PRIMARY KEY, email text NOT NULL, \
             birth_date date, notes text, updated_at timestamptz NOT NULL);
             INSERT INTO contacts SELECT g, 'User' || g || '@Example.com', \
             date '1950-01-01' + (g % 20000)::int, 'private note ' || g, \
             timestamptz '2026-01-01' + (g / 7) * interval '1 second' \
             FROM generate_series(1, {rows}) g;"
        ))
        .unwrap();
}

fn pipeline(name: &str, table: &str) -> String {
    format!(
        r#"
[pipeline]
name = "{name}"
key = "id"
batch_size = 5000

[source]
type = "postgres"
url = "env:HF_SRC_DB"
table = "contacts"
cursor = "updated_at"

[policy]
fields.id = "keep"
fields.email = {{ hash = "hmac-sha256", key = "keyring:pepper", normalize = "email" }}
fields.birth_date = {{ generalize = "year" }}
fields.updated_at = "keep"

[sink]
type = "postgres"
url = "env:HF_DST_DB"
table = "{table}"
mode = "upsert"
"#
    )
}

fn run(ws: &Workspace, src: &Database, dst: &Database, pipeline: &str, code: i32) -> Run {
    let r = ws.run_with(
        &["run", pipeline],
        &[("HF_SRC_DB", &src.url()), ("HF_DST_DB", &dst.url())],
    );
    assert_eq!(r.code, code, "{}", r.all());
    r
}

#[test]
fn an_incremental_sync_moves_only_the_changed_rows() {
    let (Some(src), Some(dst)) = (Database::new("inc_src"), Database::new("inc_dst")) else {
        return;
    };
    contacts(&src, 5_000);
    let ws = Workspace::new();
    ws.ok(&["keys", "create", "pepper", "--purpose", "hash"], 0);
    ws.write("p.toml", pipeline("inc", "leads"));
    let r = run(&ws, &src, &dst, "p.toml", 0);
    assert!(r.stdout.contains("read 5000, written 5000"), "{}", r.stdout);
    assert_eq!(dst.count("SELECT count(*) FROM leads"), 5_000);
    let r = run(&ws, &src, &dst, "p.toml", 0);
    assert!(
        r.stdout.contains("read 0, written 0"),
        "nothing changed: {}",
        r.stdout
    );

    let before: String = dst
        .client()
        .query_one("SELECT email FROM leads WHERE id = '100'", &[])
        .unwrap()
        .get(0);
    src.client()
        .batch_execute(
            "UPDATE contacts SET email = 'moved' || id || '@example.com', \
             updated_at = timestamptz '2026-06-01' WHERE id % 100 = 0",
        )
        .unwrap();
    let r = run(&ws, &src, &dst, "p.toml", 0);
    assert!(
        r.stdout.contains("read 50, written 50"),
        "1% moves: {}",
        r.stdout
    );
    let after: String = dst
        .client()
        .query_one("SELECT email FROM leads WHERE id = '100'", &[])
        .unwrap()
        .get(0);
    assert_ne!(before, after);
    assert_eq!(after.len(), 64, "a hash, never the address");
    assert_eq!(dst.count("SELECT count(*) FROM leads"), 5_000);

    // --full-refresh reads everything again; the upsert leaves the same table.
    let r = ws.run_with(
        &["run", "p.toml", "--full-refresh"],
        &[("HF_SRC_DB", &src.url()), ("HF_DST_DB", &dst.url())],
    );
    assert!(r.stdout.contains("read 5000, written 5000"), "{}", r.all());
    assert_eq!(dst.count("SELECT count(*) FROM leads"), 5_000);
    assert_eq!(
        dst.count("SELECT count(*) FROM information_schema.columns WHERE table_name = 'leads' AND column_name = 'notes'"),
        0,
        "a dropped field is neither read nor written"
    );
}

#[test]
fn a_file_sink_gets_each_runs_changes_and_the_state_directory_keeps_the_position() {
    let Some(src) = Database::new("file_src") else {
        return;
    };
    contacts(&src, 1_000);
    let ws = Workspace::new();
    ws.ok(&["keys", "create", "pepper", "--purpose", "hash"], 0);
    let text = pipeline("tofile", "unused").replace(
        "[sink]\ntype = \"postgres\"\nurl = \"env:HF_DST_DB\"\ntable = \"unused\"\nmode = \"upsert\"",
        "[sink]\ntype = \"csv\"\npath = \"out/delta.csv\"",
    );
    assert!(text.contains("delta.csv"));
    ws.write("p.toml", text);
    let env = [("HF_SRC_DB", src.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = ws.run_with(&["run", "p.toml"], &env);
    assert!(r.stdout.contains("read 1000, written 1000"), "{}", r.all());
    let position = std::fs::read_to_string(ws.state().join("cursors/tofile.json")).unwrap();
    assert!(position.contains("\"key\":\"1000\""), "{position}");
    src.client()
        .batch_execute(
            "UPDATE contacts SET updated_at = timestamptz '2027-01-01' WHERE id IN (5, 6)",
        )
        .unwrap();
    let r = ws.run_with(&["run", "p.toml"], &env);
    assert!(r.stdout.contains("read 2, written 2"), "{}", r.all());
    let delta = std::fs::read_to_string(ws.path("out/delta.csv")).unwrap();
    let ids: Vec<&str> = delta
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(ids, ["5", "6"], "the file holds this run's changes");
}

#[test]
fn a_password_never_shows_and_a_literal_url_is_refused() {
    let ws = Workspace::new();
    ws.ok(&["keys", "create", "pepper"], 0);
    ws.write("p.toml", pipeline("canary", "leads"));
    let canary = "pw-canary-3b9d7f";
    let bad = format!(
        "postgres://postgres:{canary}@127.0.0.1:5432/hf_no_such_db_{}",
        std::process::id()
    );
    let r = ws.run_with(
        &["run", "p.toml"],
        &[
            ("HF_SRC_DB", bad.as_str()),
            ("HF_DST_DB", bad.as_str()),
            ("HUSHFLOW_LOG", "trace"),
        ],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("hf_no_such_db") || r.stderr.contains("does not exist"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains(canary), "{}", r.all());
    for (_, bytes) in ws.bytes_under(&ws.state()) {
        assert!(!contains(&bytes, canary));
    }

    let literal = pipeline("canary", "leads").replace(
        "url = \"env:HF_SRC_DB\"",
        &format!("url = \"postgres://postgres:{canary}@db.example.com/crm\""),
    );
    ws.write("q.toml", literal);
    let r = ws.ok(&["validate", "q.toml"], 2);
    assert!(!r.all().contains(canary), "{}", r.all());
}

#[test]
fn killed_at_random_points_then_run_to_completion_the_destination_is_exact() {
    let rows = 1_000_000;
    let (Some(src), Some(dst)) = (Database::new("crash_src"), Database::new("crash_dst")) else {
        return;
    };
    contacts(&src, rows);
    let ws = Workspace::new();
    ws.ok(&["keys", "create", "pepper", "--purpose", "hash"], 0);
    ws.write("p.toml", pipeline("crash", "leads"));
    ws.write("reference.toml", pipeline("reference", "expected"));
    run(&ws, &src, &dst, "reference.toml", 0);
    assert_eq!(dst.count("SELECT count(*) FROM expected"), rows);

    // A small LCG: random kill times, the same on every run of the test.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut kills = 0;
    for _ in 0..10 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let after = Duration::from_millis(150 + (seed >> 33) % 1500);
        let mut child = ws
            .command()
            .args(["run", "p.toml"])
            .env("HF_SRC_DB", src.url())
            .env("HF_DST_DB", dst.url())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while started.elapsed() < after {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        let _ = child.wait();
    }
    assert!(kills >= 5, "most runs were killed mid-way ({kills})");
    run(&ws, &src, &dst, "p.toml", 0);
    assert_eq!(dst.count("SELECT count(*) FROM leads"), rows);
    let differ = dst.count(
        "SELECT count(*) FROM ((SELECT * FROM leads EXCEPT SELECT * FROM expected) \
         UNION ALL (SELECT * FROM expected EXCEPT SELECT * FROM leads)) d",
    );
    assert_eq!(differ, 0, "the destination equals an uninterrupted run's");
}

/// An incremental PostgreSQL sync: a contact whose consent is withdrawn after it was synced
/// comes back with its next change and its row is deleted in that batch's transaction, with
/// the cursor; a table whose key column is `bigint` (created by its owner, not by hushflow)
/// matches the withdrawn keys by its own type.
#[test]
fn withdrawn_consent_deletes_the_synced_row_on_the_next_incremental_run() {
    let (Some(src), Some(dst)) = (Database::new("wd_src"), Database::new("wd_dst")) else {
        return;
    };
    src.client()
        .batch_execute(
            "CREATE TABLE contacts (id bigint PRIMARY KEY, email text NOT NULL, \
             opt_in boolean NOT NULL, updated_at timestamptz NOT NULL);
             INSERT INTO contacts SELECT g, 'user' || g || '@example.com', true, \
             timestamptz '2026-01-01' + g * interval '1 second' FROM generate_series(1, 2000) g;",
        )
        .unwrap();
    dst.client()
        .batch_execute(
            "CREATE TABLE leads (id bigint PRIMARY KEY, email text, updated_at text, opt_in text)",
        )
        .unwrap();
    let ws = Workspace::new();
    ws.ok(&["keys", "create", "pepper", "--purpose", "hash"], 0);
    let text = pipeline("wd", "leads").replace(
        "fields.updated_at = \"keep\"\n",
        "fields.updated_at = \"keep\"\n\n[policy.consent]\nfield = \"opt_in\"\n",
    );
    let text = text.replace("fields.birth_date = { generalize = \"year\" }\n", "");
    ws.write("p.toml", text);
    let r = run(&ws, &src, &dst, "p.toml", 0);
    assert!(r.stdout.contains("written 2000"), "{}", r.stdout);
    assert_eq!(dst.count("SELECT count(*) FROM leads"), 2000);

    src.client()
        .batch_execute(
            "UPDATE contacts SET opt_in = false, updated_at = timestamptz '2026-06-01' \
             WHERE id IN (7, 1500)",
        )
        .unwrap();
    let r = run(&ws, &src, &dst, "p.toml", 0);
    assert!(
        r.stdout.contains("read 2, written 0, filtered 2"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("withdrawn: 2 record(s)"), "{}", r.stdout);
    assert_eq!(dst.count("SELECT count(*) FROM leads"), 1998);
    assert_eq!(
        dst.count("SELECT count(*) FROM leads WHERE id IN (7, 1500)"),
        0
    );
    // The cursor moved with the deletes: nothing is read again.
    let r = run(&ws, &src, &dst, "p.toml", 0);
    assert!(r.stdout.contains("read 0, written 0"), "{}", r.stdout);
}

/// A NUL byte, which PostgreSQL text cannot hold, sets its record aside with its line and
/// field (it failed the whole run naming neither); `on_error = "fail"` stops on it, naming both.
#[test]
fn a_nul_byte_sets_its_record_aside_with_line_and_field() {
    let Some(dst) = Database::new("nul_dst") else {
        return;
    };
    let ws = Workspace::new();
    ws.write(
        "data/contacts.csv",
        b"id,email\n1,a@example.com\n2,nul-canary\x00@example.com\n3,c@example.com\n",
    );
    let text = r#"
[pipeline]
name = "nul"
key = "id"

[source]
type = "csv"
path = "data/contacts.csv"

[policy]
fields.id = "keep"
fields.email = "keep"

[sink]
type = "postgres"
url = "env:HF_DST_DB"
table = "leads"
mode = "upsert"
"#;
    ws.write("p.toml", text);
    let env = [("HF_DST_DB", dst.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = ws.run_with(&["run", "p.toml"], &env);
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(
        r.stdout
            .contains("read 3, written 2, filtered 0, quarantined 1")
            && r.stdout.contains("refused 1"),
        "{}",
        r.all()
    );
    assert_eq!(dst.count("SELECT count(*) FROM leads"), 2);

    ws.write(
        "p.toml",
        text.replace("key = \"id\"", "key = \"id\"\non_error = \"fail\""),
    );
    let r = ws.run_with(&["run", "p.toml"], &env);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("data/contacts.csv:3:")
            && r.stderr.contains("`email`")
            && r.stderr.contains("NUL"),
        "{}",
        r.all()
    );
    assert!(!r.all().contains("canary"), "{}", r.all());
}
