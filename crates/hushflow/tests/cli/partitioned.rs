//! Partitioned runs (`hushflow run P --partition i/n`) through the real binary: for CSV, JSON
//! lines, SQLite and PostgreSQL sources, the union of four partitions written into one sink
//! equals an unpartitioned run's sink with no key twice; a malformed record is quarantined and
//! counted once; incremental partitions each keep their own position, so two rounds read every
//! new row exactly once; a bad `i/n`, a sink each run rewrites and a changed partition count
//! are refused with a clear error.

use crate::common::*;

const PARTITIONS: u32 = 4;

/// A pipeline over `source` into a SQLite table (`mode`: append shows a key written twice as
/// an error; upsert takes incremental updates).
fn pipeline(name: &str, source: &str, db: &str, mode: &str) -> String {
    format!(
        r#"
[pipeline]
name = "{name}"
key = "id"
batch_size = 300

{source}

[policy]
fields.id = "keep"
fields.email = {{ hash = "hmac-sha256", key = "keyring:pepper", normalize = "email" }}
fields.country = "keep"

[sink]
type = "sqlite"
path = "out/{db}"
table = "leads"
mode = "{mode}"
"#
    )
}

/// `hushflow run … --json`'s summary, asserting the exit code.
fn summary(ws: &Workspace, args: &[&str], env: &[(&str, &str)], code: i32) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    let r = ws.run_with(&all, env);
    assert_eq!(r.code, code, "{}", r.all());
    serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", r.all()))
}

fn count(summary: &serde_json::Value, name: &str) -> u64 {
    summary["counts"][name].as_u64().unwrap()
}

/// Every row of a SQLite table, in key order, as text.
fn sqlite_rows(path: &std::path::Path, table: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(&format!("SELECT * FROM {table} ORDER BY id"))
        .unwrap();
    let columns = stmt.column_count();
    stmt.query_map([], |row| {
        let cells: Vec<String> = (0..columns)
            .map(|i| format!("{:?}", row.get::<_, rusqlite::types::Value>(i).unwrap()))
            .collect();
        Ok(cells.join("|"))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Runs the pipeline unpartitioned (`native`) and as four partitions (`parts`), each into its own
/// sink, and checks what the union must be: the same rows, each once, and counts that add up to
/// the unpartitioned run's, a malformed record's included once.
fn union_equals_native(ws: &Workspace, source: &str, code: i32) -> serde_json::Value {
    ws.write(
        "native.toml",
        pipeline("native", source, "native.db", "append"),
    );
    ws.write(
        "parts.toml",
        pipeline("parts", source, "parts.db", "append"),
    );
    let native = summary(ws, &["run", "native.toml"], &[], code);
    let mut sums = std::collections::BTreeMap::<&str, u64>::new();
    for i in 0..PARTITIONS {
        let part = format!("{i}/{PARTITIONS}");
        // Exit 3 (records quarantined) only for the partition that owns them.
        let expected = if i == 0 { code } else { 0 };
        let s = summary(
            ws,
            &["run", "parts.toml", "--partition", &part],
            &[],
            expected,
        );
        assert_eq!(s["partition"]["index"], i);
        assert_eq!(s["partition"]["count"], PARTITIONS);
        for name in ["read", "written", "quarantined", "filtered"] {
            *sums.entry(name).or_default() += count(&s, name);
        }
        assert_eq!(
            count(&s, "read") + count(&s, "other_partitions"),
            count(&native, "read"),
            "each partition reads everything and keeps its share"
        );
    }
    for (name, sum) in &sums {
        assert_eq!(*sum, count(&native, name), "{name} adds up");
    }
    let native_rows = sqlite_rows(&ws.path("out/native.db"), "leads");
    let part_rows = sqlite_rows(&ws.path("out/parts.db"), "leads");
    assert!(!native_rows.is_empty());
    assert_eq!(part_rows, native_rows, "the union equals the whole");
    native
}

/// CSV rows with ids 1..=n, plus a row with a missing field (the source cannot decode it) and
/// one with an empty key.
fn csv_contacts(n: u32) -> String {
    let mut text = String::from("id,email,country\n");
    for id in 1..=n {
        text.push_str(&format!("{id},User{id}@Example.com,DE\n"));
    }
    text.push_str("9999,missing-a-field\n");
    text.push_str(",nokey@example.com,FR\n");
    text
}

#[test]
fn csv_partitions_add_up_to_the_whole_and_a_malformed_record_counts_once() {
    let ws = Workspace::new();
    ws.ok(&["keys", "create", "pepper", "--purpose", "hash"], 0);
    ws.write("data/contacts.csv", csv_contacts(2_000));
    let native = union_equals_native(
        &ws,
        "[source]\ntype = \"csv\"\npath = \"data/contacts.csv\"",
        3,
    );
    assert_eq!(count(&native, "quarantined"), 2);
    assert_eq!(count(&native, "written"), 2_000);
    // The audit records name the partition.
    let audit = ws.ok(&["audit", "list", "--json"], 0).stdout;
    for i in 0..PARTITIONS {
        assert!(
            audit.contains(&format!("(partition {i}/{PARTITIONS})")),
            "{audit}"
        );
    }
}

#[test]
fn jsonl_partitions_add_up_to_the_whole_and_a_malformed_record_counts_once() {
    let ws = Workspace::new();
    ws.ok(&["keys", "create", "pepper", "--purpose", "hash"], 0);
    let mut text = String::new();
    for id in 1..=2_000 {
        // Numbers and strings as keys: each is hashed as the text the source gives.
        if id % 2 == 0 {
            text.push_str(&format!(
                "{{\"id\": {id}, \"email\": \"User{id}@Example.com\", \"country\": \"DE\"}}\n"
            ));
        } else {
            text.push_str(&format!(
                "{{\"id\": \"{id}\", \"email\": \"User{id}@Example.com\", \"country\": \"DE\"}}\n"
            ));
        }
    }
    text.push_str("{\"id\": 9999, \"email\": \n");
    ws.write("data/contacts.jsonl", text);
    let native = union_equals_native(
        &ws,
        "[source]\ntype = \"jsonl\"\npath = \"data/contacts.jsonl\"",
        3,
    );
    assert_eq!(count(&native, "quarantined"), 1);
    assert_eq!(count(&native, "written"), 2_000);
}

#[test]
fn bad_partitions_and_sinks_each_run_rewrites_are_refused() {
    let ws = Workspace::new();
    ws.ok(&["keys", "create", "pepper", "--purpose", "hash"], 0);
    ws.write("data/contacts.csv", csv_contacts(10));
    ws.write(
        "p.toml",
        pipeline(
            "p",
            "[source]\ntype = \"csv\"\npath = \"data/contacts.csv\"",
            "p.db",
            "upsert",
        ),
    );
    for bad in ["4/4", "0/0", "1", "-1/4", "a/b", "1/4097"] {
        let r = ws.run(&["run", "p.toml", &format!("--partition={bad}")]);
        assert_eq!(r.code, 2, "{bad}: {}", r.all());
        assert!(r.stderr.contains("INDEX/COUNT"), "{bad}: {}", r.stderr);
    }
    ws.write(
        "replace.toml",
        pipeline(
            "replace",
            "[source]\ntype = \"csv\"\npath = \"data/contacts.csv\"",
            "r.db",
            "replace",
        ),
    );
    let r = ws.run(&["run", "replace.toml", "--partition", "0/2"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("`replace` mode"), "{}", r.stderr);
    ws.write("csv.toml", crate::common::pipeline(CSV_SINK));
    let r = ws.run(&["run", "csv.toml", "--partition", "0/2"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("rewritten by each run"), "{}", r.stderr);
}

const SQLITE_SOURCE: &str = r#"[source]
type = "sqlite"
path = "crm.sqlite"
table = "contacts"
cursor = "updated_at""#;

/// Runs all partitions of `pipeline` once; the sum of what they read.
fn round(ws: &Workspace, pipeline: &str, env: &[(&str, &str)], count_of: u32) -> u64 {
    (0..count_of)
        .map(|i| {
            let part = format!("{i}/{count_of}");
            let s = summary(ws, &["run", pipeline, "--partition", &part], env, 0);
            count(&s, "read")
        })
        .sum()
}

#[test]
fn incremental_sqlite_partitions_read_every_new_row_once() {
    let ws = Workspace::new();
    ws.ok(&["keys", "create", "pepper", "--purpose", "hash"], 0);
    let conn = rusqlite::Connection::open(ws.path("crm.sqlite")).unwrap();
    conn.execute_batch(
        "CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT, country TEXT, updated_at TEXT NOT NULL);
         WITH RECURSIVE n(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < 3000)
         INSERT INTO contacts SELECT g, 'User' || g || '@Example.com', 'DE', '2026-01-01T00:00:' || printf('%02d', g % 60) FROM n;",
    )
    .unwrap();
    ws.write(
        "native.toml",
        pipeline("native", SQLITE_SOURCE, "native.db", "upsert"),
    );
    ws.write(
        "parts.toml",
        pipeline("parts", SQLITE_SOURCE, "parts.db", "upsert"),
    );
    let native = summary(&ws, &["run", "native.toml"], &[], 0);
    assert_eq!(count(&native, "read"), 3_000);
    assert_eq!(round(&ws, "parts.toml", &[], PARTITIONS), 3_000);
    assert_eq!(round(&ws, "parts.toml", &[], PARTITIONS), 0, "nothing new");
    // New rows and changed ones, after every saved position.
    conn.execute_batch(
        "UPDATE contacts SET email = 'new' || id || '@example.com', updated_at = '2026-02-01T00:00:00' WHERE id % 100 = 0;
         WITH RECURSIVE n(g) AS (SELECT 3001 UNION ALL SELECT g + 1 FROM n WHERE g < 3200)
         INSERT INTO contacts SELECT g, 'User' || g || '@Example.com', 'FR', '2026-02-02T00:00:00' FROM n;",
    )
    .unwrap();
    assert_eq!(
        count(&summary(&ws, &["run", "native.toml"], &[], 0), "read"),
        230
    );
    assert_eq!(round(&ws, "parts.toml", &[], PARTITIONS), 230, "each once");
    assert_eq!(
        sqlite_rows(&ws.path("out/parts.db"), "leads"),
        sqlite_rows(&ws.path("out/native.db"), "leads")
    );
    // Each partition's position is its own row of the sink's bookkeeping.
    let out = rusqlite::Connection::open(ws.path("out/parts.db")).unwrap();
    let keys: Vec<String> = out
        .prepare("SELECT pipeline FROM hushflow_cursors ORDER BY pipeline")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        keys,
        (0..PARTITIONS)
            .map(|i| format!("parts#partition-{i}-of-{PARTITIONS}"))
            .collect::<Vec<_>>()
    );

    // Another partition count, or no partitions, would continue from positions that are not
    // theirs: refused, naming the count the positions were saved under.
    for other in [vec!["--partition", "0/2"], vec![]] {
        let mut args = vec!["run", "parts.toml"];
        args.extend(other);
        let r = ws.run(&args);
        assert_eq!(r.code, 1, "{}", r.all());
        assert!(
            r.stderr.contains("partitioned runs of 4 partitions")
                && r.stderr.contains("--full-refresh"),
            "{}",
            r.stderr
        );
    }
    // A full refresh under the new count reads everything again and forgets the old positions;
    // the new partitions then continue incrementally.
    let full: u64 = (0..2)
        .map(|i| {
            let part = format!("{i}/2");
            let s = summary(
                &ws,
                &["run", "parts.toml", "--partition", &part, "--full-refresh"],
                &[],
                0,
            );
            count(&s, "read")
        })
        .sum();
    assert_eq!(full, 3_200);
    assert_eq!(round(&ws, "parts.toml", &[], 2), 0);
    let r = ws.run(&["run", "parts.toml", "--partition", "0/4"]);
    assert!(
        r.stderr.contains("partitioned runs of 2 partitions"),
        "{}",
        r.all()
    );
    assert_eq!(
        sqlite_rows(&ws.path("out/parts.db"), "leads"),
        sqlite_rows(&ws.path("out/native.db"), "leads")
    );
}

#[test]
fn incremental_postgres_partitions_equal_a_native_run() {
    let (Some(src), Some(dst)) = (Database::new("part_src"), Database::new("part_dst")) else {
        return;
    };
    src.client()
        .batch_execute(
            "CREATE TABLE contacts (id bigint PRIMARY KEY, email text NOT NULL, country text, \
             updated_at timestamptz NOT NULL);
             INSERT INTO contacts SELECT g, 'User' || g || '@Example.com', 'DE', \
             timestamptz '2026-01-01' + (g / 7) * interval '1 second' \
             FROM generate_series(1, 4000) g;",
        )
        .unwrap();
    let ws = Workspace::new();
    ws.ok(&["keys", "create", "pepper", "--purpose", "hash"], 0);
    let pg = |name: &str, table: &str| {
        format!(
            r#"
[pipeline]
name = "{name}"
key = "id"
batch_size = 500

[source]
type = "postgres"
url = "env:HF_SRC_DB"
table = "contacts"
cursor = "updated_at"

[policy]
fields.id = "keep"
fields.email = {{ hash = "hmac-sha256", key = "keyring:pepper", normalize = "email" }}
fields.country = "keep"
fields.updated_at = "keep"

[sink]
type = "postgres"
url = "env:HF_DST_DB"
table = "{table}"
mode = "upsert"
"#
        )
    };
    ws.write("native.toml", pg("native", "native"));
    ws.write("parts.toml", pg("parts", "parts"));
    let env = [("HF_SRC_DB", src.url()), ("HF_DST_DB", dst.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let rows = |table: &str| -> Vec<String> {
        dst.client()
            .query(
                &format!("SELECT row_to_json(t)::text FROM {table} t ORDER BY id"),
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    assert_eq!(
        count(&summary(&ws, &["run", "native.toml"], &env, 0), "read"),
        4_000
    );
    assert_eq!(round(&ws, "parts.toml", &env, PARTITIONS), 4_000);
    assert_eq!(rows("parts"), rows("native"));
    src.client()
        .batch_execute(
            "UPDATE contacts SET email = 'moved' || id || '@example.com', \
             updated_at = timestamptz '2026-06-01' WHERE id % 100 = 0;
             INSERT INTO contacts SELECT g, 'User' || g || '@Example.com', 'FR', \
             timestamptz '2026-06-02' FROM generate_series(4001, 4100) g;",
        )
        .unwrap();
    assert_eq!(
        count(&summary(&ws, &["run", "native.toml"], &env, 0), "read"),
        140
    );
    assert_eq!(round(&ws, "parts.toml", &env, PARTITIONS), 140, "each once");
    assert_eq!(round(&ws, "parts.toml", &env, PARTITIONS), 0, "nothing new");
    assert_eq!(rows("parts"), rows("native"));
    assert_eq!(
        dst.count("SELECT count(*) FROM hushflow_cursors WHERE pipeline LIKE 'parts#partition-%'"),
        i64::from(PARTITIONS)
    );
}
