//! `sql` tasks: a pipeline's statements on SQLite or PostgreSQL, in one transaction, audited
//! like a sync (they change a database like one does). Errors keep the database's message but
//! never a value from the data: PostgreSQL's quoted parts are kept only when the task's own SQL
//! holds them.

use crate::{Actor, Error, Result, Session};
use hushflow_secrets::KeyProvider;
use hushflow_spec::dag::SqlDatabase;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Which try of which task a `sql` task's audit record is about.
#[derive(Debug, Clone, Copy)]
pub struct TaskTry<'a> {
    /// The pipeline's name.
    pub pipeline: &'a str,
    /// The task's name in the pipeline file.
    pub task: &'a str,
    /// The run's id.
    pub run_id: &'a str,
    /// The try's number, 1 for the first.
    pub attempt: i64,
}

/// How long a `sql` task's statements may run, and when to stop them. A worker that stops a try
/// (its timeout, or the task was handed to another worker) sets `stop` (the CLI's task process
/// on SIGTERM): the statement running on PostgreSQL is then cancelled on the server, so its
/// transaction rolls back and its locks go before the try is marked ended. The timeout is a
/// backstop on the server for when the process is killed without a chance to cancel.
#[derive(Debug, Default, Clone, Copy)]
pub struct SqlLimits<'a> {
    /// The try's timeout: a PostgreSQL statement still running a second after it is stopped
    /// by the server (`statement_timeout`).
    pub timeout: Option<Duration>,
    /// Set when the try is stopped (timed out or cancelled): the running statement is then
    /// cancelled from a second connection.
    pub stop: Option<&'a AtomicBool>,
}

/// Runs a `sql` task's statements (see [`run_sql`]) and records the try in the audit log as
/// `sql`, with the rows changed on success and `failure` otherwise; a failed audit fails the
/// task.
#[allow(clippy::too_many_arguments)]
pub fn execute<K: KeyProvider>(
    session: &Session,
    actor: &Actor,
    at: TaskTry<'_>,
    database: &SqlDatabase,
    sql: &str,
    file: &Path,
    keys: impl FnOnce() -> Result<K>,
    limits: SqlLimits<'_>,
) -> Result<u64> {
    let result = run_sql(session, database, sql, file, keys, limits);
    let detail = format!("task {} of run {}, try {}", at.task, at.run_id, at.attempt);
    let (counts, outcome) = match &result {
        Ok(rows) => (
            BTreeMap::from([("rows_changed".to_string(), *rows)]),
            "success",
        ),
        Err(_) => (BTreeMap::new(), "failure"),
    };
    session.audit_task(actor, "sql", at.pipeline, detail, counts, outcome)?;
    result
}

/// Runs a `sql` task's statements in one transaction; returns the rows they changed in all.
/// A PostgreSQL URL is resolved from its reference and registered with the session's redactor,
/// `keys` opening the keyring for `keyring:` references (called for PostgreSQL only); relative
/// certificate paths are taken from `file`'s directory. See [`SqlLimits`] for how a running
/// statement is stopped.
pub fn run_sql<K: KeyProvider>(
    session: &Session,
    database: &SqlDatabase,
    sql: &str,
    file: &Path,
    keys: impl FnOnce() -> Result<K>,
    limits: SqlLimits<'_>,
) -> Result<u64> {
    match database {
        SqlDatabase::Sqlite(path) => {
            let mut conn = rusqlite::Connection::open(path)
                .map_err(|e| Error::failed(format!("{}: {e}", path.display())))?;
            // Tasks of one run (or of two runs) may write the same file at once: wait for the
            // other writer instead of failing with "database is locked", and take the write
            // lock up front, since a deferred transaction that reads first cannot wait for it.
            conn.busy_timeout(std::time::Duration::from_secs(60))
                .map_err(Error::failed)?;
            let before = conn.total_changes();
            let failed =
                |e: rusqlite::Error| Error::failed(format!("sql on {}: {e}", path.display()));
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(failed)?;
            tx.execute_batch(sql).map_err(failed)?;
            tx.commit().map_err(failed)?;
            Ok(conn.total_changes().saturating_sub(before))
        }
        SqlDatabase::Postgres(reference) => {
            use hushflow_connectors::postgres::{Tls, connect};
            let keys = keys()?;
            let resolver = crate::secrets::resolver(session.redactor(), Some(&keys));
            let reference = resolver.parse(reference).map_err(Error::invalid)?;
            let url = resolver.resolve(&reference).map_err(Error::invalid)?;
            let url = url.expose_str().map_err(Error::invalid)?;
            let base = file.parent().unwrap_or(Path::new("."));
            let target = connect::target(url, &Tls::default(), base).map_err(Error::invalid)?;
            let mut client = connect::connect(&target).map_err(Error::failed)?;
            backstops(&mut client, limits.timeout);
            let pid: i32 = client
                .query_one("SELECT pg_backend_pid()", &[])
                .and_then(|row| row.try_get(0))
                .map_err(|e| Error::failed(pg_message(&e, sql)))?;
            let done = AtomicBool::new(false);
            std::thread::scope(|scope| {
                if let Some(stop) = limits.stop {
                    scope.spawn(|| cancel_when(stop, &done, &target, pid));
                }
                let result = (|| {
                    let mut tx = client
                        .transaction()
                        .map_err(|e| Error::failed(pg_message(&e, sql)))?;
                    // The simple protocol reports each statement's row count (its
                    // CommandComplete).
                    let messages = tx
                        .simple_query(sql)
                        .map_err(|e| Error::failed(format!("sql: {}", pg_message(&e, sql))))?;
                    let changed = messages
                        .iter()
                        .map(|m| match m {
                            postgres::SimpleQueryMessage::CommandComplete(n) => *n,
                            _ => 0,
                        })
                        .sum();
                    tx.commit()
                        .map_err(|e| Error::failed(pg_message(&e, sql)))?;
                    Ok(changed)
                })();
                done.store(true, Ordering::SeqCst);
                result
            })
        }
    }
}

/// Limits the server enforces itself, for when this process dies without cancelling (killed
/// after its grace, or with its worker): the server checks every second that the client is
/// still there (PostgreSQL 14 and later; older servers do not know the setting), and ends a
/// statement that outlives the try's timeout by a second.
fn backstops(client: &mut postgres::Client, timeout: Option<Duration>) {
    let _ = client.batch_execute("SET client_connection_check_interval = 1000");
    if let Some(timeout) = timeout {
        let ms = timeout
            .as_millis()
            .saturating_add(1000)
            .min(i32::MAX as u128);
        let _ = client.batch_execute(&format!("SET statement_timeout = {ms}"));
    }
}

/// Once `stop` is set, cancels what backend `pid` runs, from a second connection, until the
/// task's statements have returned (`done`): a cancel that reaches the backend between two
/// statements would otherwise be lost.
fn cancel_when(
    stop: &AtomicBool,
    done: &AtomicBool,
    target: &hushflow_connectors::postgres::connect::Target,
    pid: i32,
) {
    let mut canceller: Option<postgres::Client> = None;
    while !done.load(Ordering::SeqCst) {
        if stop.load(Ordering::SeqCst) {
            if canceller.is_none() {
                canceller = hushflow_connectors::postgres::connect::connect(target).ok();
            }
            if let Some(c) = canceller.as_mut()
                && c.execute("SELECT pg_cancel_backend($1)", &[&pid]).is_err()
            {
                canceller = None;
            }
            std::thread::sleep(Duration::from_millis(200));
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The server's message and SQLSTATE. Messages quote both names (`relation "x"`) and values
/// (`invalid input syntax for type integer: "…"`), so a quoted part is kept only when the
/// task's own SQL holds it: a name from the pipeline file, not a value from the data.
fn pg_message(e: &postgres::Error, sql: &str) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", scrub_quoted(db.message(), sql), db.code().code()),
        None => "the connection failed".to_string(),
    }
}

fn scrub_quoted(message: &str, sql: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut parts = message.split('"');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    let rest: Vec<&str> = parts.collect();
    for (i, part) in rest.iter().enumerate() {
        // Odd positions are inside quotes (an unpaired quote leaves the tail outside).
        if i % 2 == 0 && i + 1 < rest.len() {
            out.push('"');
            out.push_str(if !part.is_empty() && sql.contains(part) {
                part
            } else {
                "…"
            });
            out.push('"');
        } else if i % 2 == 1 {
            out.push_str(part);
        } else {
            out.push('"');
            out.push_str(part);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hushflow_secrets::{SecretError, SecretValue};

    /// A SQLite task opens no keyring.
    struct NoKeys;

    impl KeyProvider for NoKeys {
        fn key_material(&self, _: &str) -> Result<SecretValue, SecretError> {
            unreachable!("a SQLite task resolves no key")
        }
    }

    fn no_keys() -> Result<NoKeys> {
        Ok(NoKeys)
    }

    #[test]
    fn quoted_values_not_in_the_sql_are_dropped() {
        let sql = "INSERT INTO leads SELECT * FROM staging";
        assert_eq!(
            scrub_quoted(
                "invalid input syntax for type integer: \"alice@example.com\"",
                sql
            ),
            "invalid input syntax for type integer: \"…\""
        );
        assert_eq!(
            scrub_quoted("relation \"staging\" does not exist", sql),
            "relation \"staging\" does not exist"
        );
        assert_eq!(scrub_quoted("not yet", sql), "not yet");
        assert_eq!(scrub_quoted("a \"b", sql), "a \"b");
    }

    #[test]
    fn a_sqlite_task_commits_counts_and_audits_its_actor() {
        let dir = tempfile::tempdir().unwrap();
        let state = hushflow_state::StateDir::open(dir.path().join("state")).unwrap();
        let session = Session::new(state, hushflow_secrets::Redactor::new());
        let db = dir.path().join("t.db");
        let database = SqlDatabase::Sqlite(db.clone());
        let at = TaskTry {
            pipeline: "nightly",
            task: "load",
            run_id: "manual__x",
            attempt: 1,
        };
        let actor = Actor::airflow_task("dags.nightly");
        let sql = "CREATE TABLE t (a int); INSERT INTO t VALUES (1), (2);";
        let limits = SqlLimits::default();
        let rows = execute(&session, &actor, at, &database, sql, &db, no_keys, limits).unwrap();
        assert_eq!(rows, 2);
        // One transaction: the failing statement takes the one before it back with it.
        let bad = "INSERT INTO t VALUES (3); INSERT INTO nope VALUES (1);";
        let e = execute(&session, &actor, at, &database, bad, &db, no_keys, limits).unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Failed);
        assert!(e.message.contains("no such table: nope"), "{e}");
        let conn = rusqlite::Connection::open(&db).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);

        let records = session.state().audit_log().unwrap().list().unwrap();
        let seen: Vec<(&str, &str, &str)> = records
            .iter()
            .map(|r| (r.actor.as_str(), r.action.as_str(), r.outcome.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("airflow-task:dags.nightly", "sql", "success"),
                ("airflow-task:dags.nightly", "sql", "failure"),
            ]
        );
        assert_eq!(records[0].counts["rows_changed"], 2);
        assert_eq!(
            records[0].detail.as_deref(),
            Some("task load of run manual__x, try 1")
        );
    }
}
