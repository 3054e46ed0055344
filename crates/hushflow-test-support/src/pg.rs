//! A fresh PostgreSQL database for one test, on the server `HUSHFLOW_TEST_PG` names
//! (`postgres://postgres@127.0.0.1:5432`, trust auth; `scripts/test.sh` sets it and starts the
//! server). Without it a plain `cargo test` skips the database tests and says why on stderr;
//! with `HUSHFLOW_TEST_REQUIRE_PG=1` (CI) a missing server fails them instead.

// Tests fail by panicking, with the reason: that is what a fixture is for.
#![allow(clippy::expect_used, clippy::unwrap_used)]

/// The variable naming the test server: a `postgres://` URL without a database.
pub const SERVER_ENV: &str = "HUSHFLOW_TEST_PG";

/// Set to `1` where the database tests must run (CI): a missing server is then a failure.
pub const REQUIRE_ENV: &str = "HUSHFLOW_TEST_REQUIRE_PG";

/// The test server's URL, or `None` (with the reason on stderr) when none is configured and
/// none is required.
pub fn server(test: &str) -> Option<String> {
    match std::env::var(SERVER_ENV) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().trim_end_matches('/').to_string()),
        _ if required() => panic!(
            "{test}: {REQUIRE_ENV}=1 but {SERVER_ENV} is not set; set it to the server's URL \
             (postgres://postgres@127.0.0.1:5432) or run scripts/test.sh, which starts one"
        ),
        _ => {
            eprintln!(
                "skipped {test}: no PostgreSQL server configured; set {SERVER_ENV}=\
                 postgres://postgres@127.0.0.1:5432 (trust auth) to run it"
            );
            None
        }
    }
}

/// Whether the database tests must run here (CI).
pub fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// A database of its own for one test, dropped (with its connections) at the end. Tags must
/// differ between all tests that may run at once: nextest runs every test binary's tests
/// together.
pub struct Database {
    /// The database's name: `hf_<tag>_<pid>`.
    pub name: String,
    server: String,
}

impl Database {
    /// Creates the database, or returns `None` when no server is configured (see [`server`]).
    pub fn new(tag: &str) -> Option<Database> {
        let server = server(tag)?;
        let name = format!("hf_{tag}_{}", std::process::id());
        admin(
            &server,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
        admin(&server, &format!("CREATE DATABASE {name}"));
        Some(Database { name, server })
    }

    /// The database's URL.
    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    /// The server's URL, without a database.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// A new connection to the database.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url(), postgres::NoTls)
            .expect("connect to the test database")
    }

    /// The first column of the first row of `sql`, as a count.
    pub fn count(&self, sql: &str) -> i64 {
        self.client().query_one(sql, &[]).expect(sql).get(0)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        admin(
            &self.server,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// Runs `sql` on the server's `postgres` database (creating and dropping databases).
pub fn admin(server: &str, sql: &str) {
    postgres::Client::connect(&format!("{server}/postgres"), postgres::NoTls)
        .unwrap_or_else(|e| panic!("PostgreSQL at {server} ({SERVER_ENV}): {e}"))
        .batch_execute(sql)
        .expect(sql);
}
