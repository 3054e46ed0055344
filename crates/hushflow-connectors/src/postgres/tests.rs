//! Against real servers: the PostgreSQL that `HUSHFLOW_TEST_PG` names (`scripts/test.sh` sets it
//! and starts the server) for reads and loads, each test in a database of its own, and a
//! private cluster started here with a self-signed CA for TLS. Without a configured server these
//! tests are skipped, saying why.

use super::connect::{self, SslMode};
use super::*;
use hushflow_core::{Batch, Cell, Position, Schema, Sink, Source};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use hushflow_test_support::pg::Database;

fn batch(fields: &[&str], rows: &[&[Option<&str>]]) -> Batch {
    let schema = Arc::new(Schema::new(fields.iter().map(|s| s.to_string()).collect()));
    let mut b = Batch::new(schema);
    for (i, r) in rows.iter().enumerate() {
        b.push_row(
            i as u64 + 1,
            r.iter().map(|v| v.map_or(Cell::NULL, Cell::text)),
        );
    }
    b
}

fn sink_config(table: &str, mode: PostgresMode) -> PostgresSinkConfig {
    PostgresSinkConfig {
        url: "env:UNUSED".into(),
        table: table.into(),
        mode,
        fields: None,
        sslmode: Some("disable".into()),
        sslrootcert: None,
        allow_insecure: false,
        retain: None,
        retain_by: None,
    }
}

fn rows(db: &Database, sql: &str) -> Vec<Vec<Option<String>>> {
    db.client()
        .query(sql, &[])
        .unwrap()
        .iter()
        .map(|r| (0..r.len()).map(|i| r.get(i)).collect())
        .collect()
}

#[test]
fn upsert_is_idempotent_keeps_the_last_row_of_a_key_and_commits_positions_with_data() {
    let Some(db) = Database::new("pg_upsert") else {
        return;
    };
    let types = [("year".to_string(), "integer".to_string())].into();
    let mut sink = PostgresSink::new(
        &sink_config("leads", PostgresMode::Upsert),
        &db.url(),
        Path::new(""),
        "id",
        types,
    )
    .unwrap();
    let b = batch(
        &["id", "email", "year"],
        &[
            &[Some("1"), Some("a\tb\\c\nd"), Some("1984")],
            &[Some("2"), None, None],
            &[Some("1"), Some("last wins"), Some("1990")],
        ],
    );
    sink.open(b.schema()).unwrap();
    assert_eq!(sink.committed_position("p").unwrap(), None);
    let at = Position {
        cursor: "2026-01-01 00:00:00+00".into(),
        key: "2".into(),
    };
    sink.write_batch_at(&b, "p", Some(&at)).unwrap();
    sink.write_batch_at(&b, "p", Some(&at)).unwrap();
    sink.finish().unwrap();
    assert_eq!(
        rows(&db, "SELECT id, email, year::text FROM leads ORDER BY id"),
        [
            vec![
                Some("1".into()),
                Some("last wins".into()),
                Some("1990".into())
            ],
            vec![Some("2".into()), None, None],
        ]
    );
    let typ = rows(
        &db,
        "SELECT data_type::text FROM information_schema.columns WHERE table_name = 'leads' AND column_name = 'year'",
    );
    assert_eq!(typ, [vec![Some("bigint".to_string())]]);
    assert_eq!(sink.committed_position("p").unwrap(), Some(at));
    assert_eq!(sink.committed_position("other").unwrap(), None);

    // A new field becomes a new column; rows written before keep NULL in it.
    let mut again = PostgresSink::new(
        &sink_config("leads", PostgresMode::Upsert),
        &db.url(),
        Path::new(""),
        "id",
        Default::default(),
    )
    .unwrap();
    let wider = batch(
        &["id", "email", "country"],
        &[&[Some("3"), Some("c"), Some("DE")]],
    );
    again.open(wider.schema()).unwrap();
    again.write_batch(&wider).unwrap();
    assert_eq!(
        rows(&db, "SELECT id, country FROM leads ORDER BY id"),
        [
            vec![Some("1".into()), None],
            vec![Some("2".into()), None],
            vec![Some("3".into()), Some("DE".into())]
        ]
    );
}

#[test]
fn positions_live_in_the_schema_of_the_sink_table() {
    let Some(db) = Database::new("pg_cursor_schema") else {
        return;
    };
    db.client().batch_execute("CREATE SCHEMA crm").unwrap();
    let mut sink = PostgresSink::new(
        &sink_config("crm.leads", PostgresMode::Upsert),
        &db.url(),
        Path::new(""),
        "id",
        Default::default(),
    )
    .unwrap();
    let b = batch(&["id", "email"], &[&[Some("1"), Some("a")]]);
    sink.open(b.schema()).unwrap();
    assert_eq!(sink.committed_position("p").unwrap(), None);
    let at = Position {
        cursor: "5".into(),
        key: "1".into(),
    };
    sink.write_batch_at(&b, "p", Some(&at)).unwrap();
    sink.finish().unwrap();
    assert_eq!(sink.committed_position("p").unwrap(), Some(at));
    let tables = rows(
        &db,
        "SELECT table_schema::text FROM information_schema.tables \
         WHERE table_name = 'hushflow_cursors' ORDER BY 1",
    );
    assert_eq!(tables, [vec![Some("crm".to_string())]]);
}

#[test]
fn append_refuses_a_present_key_without_naming_it_and_replace_swaps_whole_tables() {
    let Some(db) = Database::new("pg_modes") else {
        return;
    };
    let b = batch(
        &["id", "email"],
        &[&[Some("7"), Some("canary-7@example.com")]],
    );
    let mut append = PostgresSink::new(
        &sink_config("t", PostgresMode::Append),
        &db.url(),
        Path::new(""),
        "id",
        Default::default(),
    )
    .unwrap();
    append.open(b.schema()).unwrap();
    append.write_batch(&b).unwrap();
    let e = append.write_batch(&b).unwrap_err().to_string();
    assert!(e.contains("already in the table"), "{e}");
    assert!(!e.contains("canary") && !e.contains("(7)"), "{e}");

    let mut replace = PostgresSink::new(
        &sink_config("t", PostgresMode::Replace),
        &db.url(),
        Path::new(""),
        "id",
        Default::default(),
    )
    .unwrap();
    let other = batch(
        &["id", "email"],
        &[&[Some("8"), Some("x")], &[Some("9"), Some("y")]],
    );
    replace.open(other.schema()).unwrap();
    replace.write_batch(&other).unwrap();
    // Until the run finishes, readers see the old table.
    assert_eq!(rows(&db, "SELECT id FROM t"), [vec![Some("7".to_string())]]);
    replace.finish().unwrap();
    assert_eq!(
        rows(&db, "SELECT id FROM t ORDER BY id"),
        [vec![Some("8".into())], vec![Some("9".into())]]
    );
}

fn source_config(cursor: Option<&str>) -> PostgresSourceConfig {
    PostgresSourceConfig {
        url: "env:UNUSED".into(),
        table: Some("contacts".into()),
        query: None,
        cursor: cursor.map(str::to_string),
        sslmode: Some("disable".into()),
        sslrootcert: None,
        allow_insecure: false,
    }
}

fn read_all(source: &mut PostgresSource) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    while let Some(b) = source.next_batch(3).unwrap() {
        assert!(b.batch.len() <= 3, "pages of the batch size");
        for row in 0..b.batch.len() {
            let cell = b.batch.column(1).get(row);
            out.push((
                b.batch.column(0).get(row).text.to_string(),
                (!cell.is_null()).then(|| cell.text.to_string()),
            ));
        }
    }
    out
}

#[test]
fn reads_only_wanted_columns_in_pages_and_continues_after_a_position() {
    let Some(db) = Database::new("pg_source") else {
        return;
    };
    db.client()
        .batch_execute(
            "CREATE TABLE contacts (id int PRIMARY KEY, email text, secret text, \
             updated_at timestamptz NOT NULL);
             INSERT INTO contacts SELECT g, 'u' || g || '@example.com', 'never-read', \
             timestamptz '2026-01-01' + (g / 3) * interval '1 hour' FROM generate_series(1, 10) g;
             UPDATE contacts SET email = NULL WHERE id = 4;",
        )
        .unwrap();
    let wanted = ["id".to_string(), "email".to_string()];
    let mut all = PostgresSource::open(
        &source_config(None),
        &db.url(),
        Path::new(""),
        &wanted,
        "id",
        None,
    )
    .unwrap();
    assert_eq!(all.schema().fields(), wanted);
    let got = read_all(&mut all);
    assert_eq!(got.len(), 10);
    assert!(
        got.iter().any(|(id, e)| id == "4" && e.is_none()),
        "NULL stays NULL"
    );
    assert_eq!(all.position(), None);

    let mut first = PostgresSource::open(
        &source_config(Some("updated_at")),
        &db.url(),
        Path::new(""),
        &wanted,
        "id",
        None,
    )
    .unwrap();
    let mut seen = Vec::new();
    // Stop after the first page: rows 1, 2 (hour 0) and 3 (hour 1); 3 ties with 4 and 5.
    let page = first.next_batch(3).unwrap().unwrap();
    for row in 0..page.batch.len() {
        seen.push(page.batch.column(0).get(row).text.to_string());
    }
    assert_eq!(seen, ["1", "2", "3"]);
    let at = first.position().unwrap();
    assert_eq!(at.key, "3");
    drop(first);
    let mut rest = PostgresSource::open(
        &source_config(Some("updated_at")),
        &db.url(),
        Path::new(""),
        &wanted,
        "id",
        Some(&at),
    )
    .unwrap();
    let ids: Vec<String> = read_all(&mut rest).into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        ids,
        ["4", "5", "6", "7", "8", "9", "10"],
        "ties on the cursor broken by the key"
    );

    // A value the database refuses is not quoted back (SQLSTATE class 22 keeps only its code).
    let bad = Position {
        cursor: "canary-not-a-time".into(),
        key: "1".into(),
    };
    let e = PostgresSource::open(
        &source_config(Some("updated_at")),
        &db.url(),
        Path::new(""),
        &wanted,
        "id",
        Some(&bad),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("SQLSTATE 22"), "{e}");
    assert!(!e.contains("canary"), "{e}");

    let e = PostgresSource::open(
        &source_config(None),
        &db.url(),
        Path::new(""),
        &["id".into(), "phone".into()],
        "id",
        None,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        e.contains("no column `phone`") && e.contains("email"),
        "{e}"
    );
}

#[test]
fn insecure_modes_to_remote_hosts_are_refused_and_remote_defaults_to_verify_full() {
    let tls = Tls::default();
    let remote =
        connect::target("postgres://u:pw@db.example.com/crm", &tls, Path::new("")).unwrap();
    assert_eq!(remote.mode, SslMode::VerifyFull);
    let local = connect::target("postgres://u@127.0.0.1/crm", &tls, Path::new("")).unwrap();
    assert_eq!(local.mode, SslMode::Prefer);
    for mode in ["disable", "allow", "prefer"] {
        let url = format!("postgres://u:hunter2-canary@db.example.com/crm?sslmode={mode}");
        let e = connect::target(&url, &tls, Path::new(""))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("allow_insecure"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let allowed = Tls {
            allow_insecure: true,
            ..Tls::default()
        };
        let t = connect::target(&url, &allowed, Path::new("")).unwrap();
        assert!(!connect::warnings(&t, &allowed).is_empty());
    }
    // The URL's TLS values are percent-decoded, as libpq's are.
    let encoded = connect::target(
        "postgres://u:pw@db.example.com/crm?sslmode=verify%2Dca&application_name=x",
        &tls,
        Path::new(""),
    )
    .unwrap();
    assert_eq!(encoded.mode, SslMode::VerifyCa);
    let e = connect::target("mysql://x", &tls, Path::new(""))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("postgres://"), "{e}");
}

/// A PostgreSQL cluster of this test's own, with TLS on, stopped when dropped.
struct PrivateCluster {
    dir: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
}

fn as_postgres(bin: &Path, tool: &str) -> Command {
    // initdb and postgres refuse to run as root: run them as the `postgres` user then.
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn pg_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries in /usr/lib/postgresql (scripts/test.sh installs them)")
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().expect("initdb")
}

impl PrivateCluster {
    fn start(cert_pem: &str, key_pem: &str) -> PrivateCluster {
        let bin = pg_bin();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let chown = |p: &Path| {
            if is_root() {
                let ok = Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(p)
                    .status();
                assert!(ok.unwrap().success());
            }
        };
        chown(dir.path());
        let out = as_postgres(&bin, "initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(data.join("server.crt"), cert_pem).unwrap();
        std::fs::write(data.join("server.key"), key_pem).unwrap();
        std::fs::set_permissions(
            data.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        chown(&data);
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let opts = format!(
            "-c port={port} -c listen_addresses=127.0.0.1 -c ssl=on -c unix_socket_directories={} -c fsync=off",
            dir.path().display()
        );
        let out = as_postgres(&bin, "pg_ctl")
            .args(["-w", "-t", "60", "-D"])
            .arg(&data)
            .args(["-l"])
            .arg(dir.path().join("log"))
            .args(["-o", &opts, "start"])
            .output()
            .unwrap();
        let log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
        assert!(
            out.status.success(),
            "{}{log}",
            String::from_utf8_lossy(&out.stderr)
        );
        PrivateCluster { dir, port, bin }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin, "pg_ctl")
            .args(["-m", "immediate", "-D"])
            .arg(self.dir.path().join("data"))
            .arg("stop")
            .output();
    }
}

fn ca(name: &str) -> (rcgen::CertificateParams, rcgen::KeyPair, String) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (params, key, cert.pem())
}

#[test]
fn tls_verify_full_succeeds_and_a_wrong_ca_or_host_name_fails() {
    // The same switch as the database tests: this one needs the server binaries.
    if hushflow_test_support::pg::server("tls_verify_full").is_none() {
        return;
    }
    let (ca_params, ca_key, ca_pem) = ca("hushflow test CA");
    let (_, _, other_ca_pem) = ca("some other CA");
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let server_key = rcgen::KeyPair::generate().unwrap();
    let mut server = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    server
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let server_cert = server.signed_by(&server_key, &issuer).unwrap();
    let cluster = PrivateCluster::start(&server_cert.pem(), &server_key.serialize_pem());

    let files = tempfile::tempdir().unwrap();
    let (good, bad) = (files.path().join("ca.pem"), files.path().join("other.pem"));
    std::fs::write(&good, ca_pem).unwrap();
    std::fs::write(&bad, other_ca_pem).unwrap();
    let tls = |mode: &str, roots: &Path| Tls {
        sslmode: Some(mode.into()),
        sslrootcert: Some(roots.to_path_buf()),
        allow_insecure: false,
    };
    let url = |host: &str| format!("postgres://postgres@{host}:{}/postgres", cluster.port);
    let encrypted = |host: &str, t: &Tls| -> Result<bool, String> {
        let target = connect::target(&url(host), t, Path::new("")).map_err(|e| e.to_string())?;
        let mut client = connect::connect(&target).map_err(|e| e.to_string())?;
        Ok(client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0))
    };

    assert_eq!(encrypted("localhost", &tls("verify-full", &good)), Ok(true));
    let wrong_ca = encrypted("localhost", &tls("verify-full", &bad)).unwrap_err();
    assert!(wrong_ca.contains("certificate"), "{wrong_ca}");
    // The certificate names localhost, not 127.0.0.1.
    let wrong_name = encrypted("127.0.0.1", &tls("verify-full", &good)).unwrap_err();
    assert!(wrong_name.contains("certificate"), "{wrong_name}");
    assert_ne!(
        wrong_ca, wrong_name,
        "the two failures say different things"
    );
    // verify-ca checks the chain only; require (with roots, as libpq) likewise.
    assert_eq!(encrypted("127.0.0.1", &tls("verify-ca", &good)), Ok(true));
    assert!(encrypted("127.0.0.1", &tls("verify-ca", &bad)).is_err());
    assert_eq!(encrypted("127.0.0.1", &tls("require", &good)), Ok(true));
    // Loopback default (prefer) still encrypts when the server offers TLS.
    let target = connect::target(&url("127.0.0.1"), &Tls::default(), Path::new("")).unwrap();
    let mut client = connect::connect(&target).unwrap();
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(ssl);
}

/// PostgreSQL text cannot hold a NUL byte. A record with one is refused on its own, named by
/// its row and field (never its value), and the rest of its batch is written, in every mode,
/// through `write_batch` and through the encoder the engine runs on its workers alike.
#[test]
fn a_nul_byte_refuses_its_record_naming_the_field() {
    use hushflow_core::{RejectReason, SinkRejection};
    let Some(db) = Database::new("pg_nul") else {
        return;
    };
    let refused = |row: usize, field: &str| SinkRejection {
        row,
        reason: RejectReason::Refused {
            field: Some(field.into()),
            detail: "contains a NUL byte, which PostgreSQL text cannot hold".into(),
        },
    };
    for (table, mode) in [
        ("nul_append", PostgresMode::Append),
        ("nul_upsert", PostgresMode::Upsert),
        ("nul_replace", PostgresMode::Replace),
    ] {
        let mut sink = PostgresSink::new(
            &sink_config(table, mode),
            &db.url(),
            Path::new(""),
            "id",
            Default::default(),
        )
        .unwrap();
        let first = batch(
            &["id", "email"],
            &[
                &[Some("1"), Some("a@example.com")],
                &[Some("2"), Some("canary\0@example.com")],
                &[Some("3"), None],
            ],
        );
        sink.open(first.schema()).unwrap();
        assert!(sink.rejects_records());
        sink.write_batch(&first).unwrap();
        assert_eq!(sink.take_rejections(), [refused(1, "email")], "{table}");
        assert_eq!(sink.take_rejections(), [], "taken once");

        // Encoded on a worker: a NUL in the key, and one in two fields of a record.
        let second = batch(
            &["id", "email"],
            &[
                &[Some("4\0"), Some("d@example.com")],
                &[Some("5"), Some("e@example.com")],
                &[Some("6\0"), Some("\0")],
            ],
        );
        let mut bytes = Vec::new();
        sink.encoder().unwrap().encode(&second, &mut bytes).unwrap();
        sink.write_encoded(&bytes).unwrap();
        assert_eq!(
            sink.take_rejections(),
            [refused(0, "id"), refused(2, "id")],
            "{table}"
        );
        // A batch with nothing refused.
        let third = batch(&["id", "email"], &[&[Some("7"), Some("g")]]);
        sink.write_batch(&third).unwrap();
        assert_eq!(sink.take_rejections(), []);
        sink.finish().unwrap();
        assert_eq!(
            rows(&db, &format!("SELECT id FROM {table} ORDER BY id")),
            [
                vec![Some("1".into())],
                vec![Some("3".into())],
                vec![Some("5".into())],
                vec![Some("7".into())]
            ],
            "{table}"
        );
    }
}

/// A unique constraint besides the key refuses a row in upsert mode too: the message says
/// which mode and which constraint, and no value.
#[test]
fn a_unique_violation_names_the_mode_it_happened_in() {
    let Some(db) = Database::new("pg_unique") else {
        return;
    };
    db.client()
        .batch_execute("CREATE TABLE u (id text PRIMARY KEY, email text UNIQUE)")
        .unwrap();
    let b = batch(
        &["id", "email"],
        &[
            &[Some("1"), Some("same-canary@example.com")],
            &[Some("2"), Some("same-canary@example.com")],
        ],
    );
    for (mode, words) in [
        (PostgresMode::Upsert, "upsert mode"),
        (PostgresMode::Append, "append mode"),
    ] {
        let mut sink = PostgresSink::new(
            &sink_config("u", mode),
            &db.url(),
            Path::new(""),
            "id",
            Default::default(),
        )
        .unwrap();
        sink.open(b.schema()).unwrap();
        let e = sink.write_batch(&b).unwrap_err().to_string();
        assert!(e.contains(words) && e.contains("u_email_key"), "{e}");
        assert!(!e.contains("canary"), "{e}");
        if mode == PostgresMode::Upsert {
            assert!(!e.contains("append"), "{e}");
        }
    }
}

/// Typed fields get typed columns in a new table and land typed; an existing column of
/// another type is refused at open, naming the table, the column, the expected and the found
/// types, before any row moves.
#[test]
fn typed_fields_get_typed_columns_and_a_mismatch_is_refused_at_open() {
    let Some(db) = Database::new("pg_typed") else {
        return;
    };
    let types: HashMap<String, String> = [
        ("opt_in", "boolean"),
        ("visits", "integer"),
        ("signed_up", "timestamp"),
        ("born", "date"),
    ]
    .iter()
    .map(|(f, t)| (f.to_string(), t.to_string()))
    .collect();
    let b = batch(
        &["id", "opt_in", "visits", "signed_up", "born"],
        &[
            &[
                Some("1"),
                Some("true"),
                Some("3"),
                Some("2026-01-02T03:04:05Z"),
                Some("1984-07-09"),
            ],
            &[Some("2"), Some("false"), None, None, None],
        ],
    );
    let mut sink = PostgresSink::new(
        &sink_config("leads", PostgresMode::Upsert),
        &db.url(),
        Path::new(""),
        "id",
        types.clone(),
    )
    .unwrap();
    sink.open(b.schema()).unwrap();
    sink.write_batch(&b).unwrap();
    sink.finish().unwrap();
    assert_eq!(
        rows(
            &db,
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_name = 'leads' ORDER BY ordinal_position"
        ),
        [
            ["id", "text"],
            ["opt_in", "boolean"],
            ["visits", "bigint"],
            ["signed_up", "timestamp with time zone"],
            ["born", "date"],
        ]
        .map(|r| r.map(|v| Some(v.to_string())).to_vec())
    );
    assert_eq!(
        rows(
            &db,
            "SELECT (opt_in AND visits = 3 AND born = DATE '1984-07-09' \
             AND signed_up = TIMESTAMPTZ '2026-01-02 04:04:05+01')::text FROM leads WHERE id = '1'"
        ),
        [vec![Some("true".to_string())]]
    );

    db.client()
        .batch_execute("CREATE TABLE by_hand (id text PRIMARY KEY, opt_in text, visits integer)")
        .unwrap();
    let mut sink = PostgresSink::new(
        &sink_config("by_hand", PostgresMode::Upsert),
        &db.url(),
        Path::new(""),
        "id",
        types,
    )
    .unwrap();
    let narrow = batch(
        &["id", "opt_in", "visits"],
        &[&[Some("1"), Some("true"), Some("3")]],
    );
    let Err(hushflow_core::Error::Destination { message, .. }) = sink.open(narrow.schema()) else {
        panic!("a column of another type must be refused");
    };
    assert!(message.contains("table `by_hand`"), "{message}");
    assert!(
        message.contains("column `opt_in` has type text"),
        "{message}"
    );
    assert!(message.contains("expected boolean"), "{message}");
}
