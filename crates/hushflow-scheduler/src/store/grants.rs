//! Least-privilege grants for a PostgreSQL metadata store (`hushflow db grants`). Three roles
//! besides the owner that migrates:
//!
//! - schedulers (and the commands that register and create runs: `trigger`, `backfill`, `pause`,
//!   `clear`): read and write every table's rows, so they may register (and sign) definitions;
//! - workers: read everything they run from, and change only the state of tasks, tries, runs and
//!   themselves, column by column: never a definition, a run's definition or configuration, nor a
//!   task's kind, timeout or retries;
//! - readers (dashboards): run history without pipeline text or logs;
//! - servers (`hushflow serve`): the schedulers' rights, and alone among the roles the users,
//!   grants, API tokens, sessions and sign-in attempts (password and token digests are
//!   nobody else's business), with DELETE on them for sign-out and removal.
//!
//! Column grants are not inherited by tables made later, so they are printed for the schema this
//! build knows; print and apply them again after each `db migrate`.

/// The roles to grant to, and the schema the tables are in.
#[derive(Debug, Clone)]
pub struct Roles {
    /// The schema the metadata tables are in.
    pub schema: String,
    /// The role of schedulers and of the commands that create or change runs.
    pub scheduler: String,
    /// The role of workers: claims, completions and heartbeats, no definitions.
    pub worker: String,
    /// The role of dashboards: run history without pipeline text or logs.
    pub reader: String,
    /// The role of `hushflow serve`: the scheduler's, plus users, tokens and sessions.
    pub server: String,
}

impl Default for Roles {
    fn default() -> Self {
        Roles {
            schema: "hushflow".into(),
            scheduler: "hushflow_scheduler".into(),
            worker: "hushflow_worker".into(),
            reader: "hushflow_reader".into(),
            server: "hushflow_server".into(),
        }
    }
}

/// The tables of identity and access, which only the server role reads and writes.
pub const ACCESS_TABLES: [&str; 5] = [
    "hf_users",
    "hf_user_grants",
    "hf_api_tokens",
    "hf_sessions",
    "hf_sign_in_attempts",
];

/// Every orchestration table, in the order of the migrations (the identity and access tables
/// are [`ACCESS_TABLES`]).
pub const TABLES: [&str; 10] = [
    "hf_schema_migrations",
    "hf_pipelines",
    "hf_definitions",
    "hf_pools",
    "hf_runs",
    "hf_tasks",
    "hf_tries",
    "hf_workers",
    "hf_dsr_requests",
    "hf_dsr_steps",
];

/// What a worker may change, by table: each column its claims, completions, heartbeats and
/// run decisions write (`store/mod.rs`), and nothing else.
pub const WORKER_UPDATES: [(&str, &[&str]); 4] = [
    (
        "hf_tasks",
        &[
            "state",
            "worker",
            "tries",
            "failures",
            "next_try_at",
            "started_at",
            "ended_at",
            "records_read",
            "records_written",
            "records_quarantined",
            "error",
        ],
    ),
    ("hf_tries", &["state", "ended_at", "error", "log"]),
    ("hf_runs", &["state", "ended_at"]),
    ("hf_workers", &["heartbeat_at", "stopped_at"]),
];

/// Tables a worker adds rows to: its tries and itself.
pub const WORKER_INSERTS: [&str; 2] = ["hf_tries", "hf_workers"];

fn identifier(what: &str, name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} `{name}`: give a plain PostgreSQL name (lower-case letters, digits and _)"
        ))
    }
}

/// The statements, as SQL to run as the schema's owner (after `hushflow db migrate`).
pub fn grants(roles: &Roles) -> Result<String, String> {
    identifier("--schema", &roles.schema)?;
    identifier("--scheduler-role", &roles.scheduler)?;
    identifier("--worker-role", &roles.worker)?;
    identifier("--reader-role", &roles.reader)?;
    identifier("--server-role", &roles.server)?;
    let Roles {
        schema,
        scheduler,
        worker,
        reader,
        server,
    } = roles;
    let table = |t: &str| format!("{schema}.{t}");
    let all = TABLES.map(table).join(", ");
    let rows = TABLES[1..]
        .iter()
        .map(|t| table(t))
        .collect::<Vec<_>>()
        .join(", ");
    let mut sql = format!(
        "-- hushflow metadata store, schema version {version}: least-privilege grants.\n\
         -- Run as the owner of schema {schema}, after each `hushflow db migrate`. Create the roles\n\
         -- first (CREATE ROLE {worker} LOGIN PASSWORD '…'; and so on), and if an older setup\n\
         -- granted workers default privileges, take them back:\n\
         --   ALTER DEFAULT PRIVILEGES FOR ROLE <owner> IN SCHEMA {schema}\n\
         --       REVOKE ALL ON TABLES FROM {worker};\n\
         BEGIN;\n\
         GRANT USAGE ON SCHEMA {schema} TO {scheduler}, {worker}, {reader}, {server};\n\
         REVOKE ALL ON {all}, {access} FROM {scheduler}, {worker}, {reader}, {server};\n\n\
         -- Schedulers, trigger, backfill, pause, clear: register and sign definitions, create\n\
         -- and move runs. No DELETE: run `db prune` as the owner.\n\
         GRANT SELECT ON {all} TO {scheduler};\n\
         GRANT INSERT, UPDATE ON {rows} TO {scheduler};\n\
         GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {scheduler};\n\n\
         -- Workers: read what they run, change only task, try, run and worker state. They\n\
         -- cannot write a definition (nor repoint a run to another one), so a leaked worker\n\
         -- credential cannot change what other workers execute.\n\
         GRANT SELECT ON {all} TO {worker};\n",
        version = super::migrations::latest(),
        access = ACCESS_TABLES.map(table).join(", "),
    );
    for t in WORKER_INSERTS {
        sql.push_str(&format!("GRANT INSERT ON {} TO {worker};\n", table(t)));
    }
    for (t, columns) in WORKER_UPDATES {
        sql.push_str(&format!(
            "GRANT UPDATE ({}) ON {} TO {worker};\n",
            columns.join(", "),
            table(t)
        ));
    }
    sql.push_str(&format!(
        "\n-- Dashboards and on-call: run history, but no pipeline text and no logs.\n\
         GRANT SELECT ON {}, {}, {}, {}, {} TO {reader};\n\
         GRANT SELECT (task, attempt, worker, state, started_at, ended_at) ON {} TO {reader};\n\
         GRANT SELECT (id, run, pipeline, task, kind, state, tries, failures, started_at, ended_at,\n\
         \x20             records_read, records_written, records_quarantined) ON {} TO {reader};\n\
         \n-- hushflow serve: what schedulers may, and users, grants, tokens and sessions.\n\
         GRANT SELECT ON {all} TO {server};\n\
         GRANT INSERT, UPDATE ON {rows} TO {server};\n\
         GRANT SELECT, INSERT, UPDATE, DELETE ON {access} TO {server};\n\
         GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {server};\n\
         COMMIT;\n",
        table("hf_schema_migrations"),
        table("hf_pipelines"),
        table("hf_runs"),
        table("hf_pools"),
        table("hf_workers"),
        table("hf_tries"),
        table("hf_tasks"),
        access = ACCESS_TABLES.map(table).join(", "),
    ));
    Ok(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_get_no_write_on_definitions_and_names_are_checked() {
        let sql = grants(&Roles::default()).unwrap();
        assert!(
            sql.contains("GRANT INSERT, UPDATE ON hushflow.hf_pipelines, hushflow.hf_definitions")
        );
        let worker_lines: Vec<&str> = sql
            .lines()
            .filter(|l| l.starts_with("GRANT") && l.ends_with("TO hushflow_worker;"))
            .collect();
        assert!(
            worker_lines
                .iter()
                .filter(|l| l.contains("hf_definitions"))
                .all(|l| l.starts_with("GRANT SELECT ON")),
            "{worker_lines:#?}"
        );
        assert!(
            !sql.contains("fingerprint) ON"),
            "workers cannot repoint a run"
        );
        // Password and token digests: the server's alone.
        for line in sql.lines().filter(|l| l.starts_with("GRANT")) {
            if ACCESS_TABLES.iter().any(|t| line.contains(t)) {
                assert!(line.ends_with("TO hushflow_server;"), "{line}");
            }
        }
        assert!(sql.contains(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON hushflow.hf_users, hushflow.hf_user_grants"
        ));
        let bad = Roles {
            worker: "x; DROP TABLE y".into(),
            ..Default::default()
        };
        assert!(grants(&bad).unwrap_err().contains("--worker-role"));
    }
}
