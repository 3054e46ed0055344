//! Users, grants, API tokens, sessions and sign-in attempts in both metadata stores: SQLite in
//! a temporary directory and the machine's PostgreSQL (a fresh database per test).

// A test may unwrap: a panic is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hushflow_scheduler::store::{ApiTokenRow, SessionRow, StoreConfig, UserRow};
use hushflow_scheduler::{Store, StoreError};
use hushflow_test_support::pg::Database;

/// A metadata store for one test; a PostgreSQL database is dropped afterwards.
struct Meta {
    config: StoreConfig,
    _pg: Option<Database>,
    _dir: tempfile::TempDir,
}

impl Meta {
    /// `None` for PostgreSQL when no test server is configured (the test is skipped).
    fn new(backend: &str, tag: &str) -> Option<Meta> {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            "sqlite" => Some(Meta {
                config: StoreConfig::Sqlite(dir.path().join("metadata.db")),
                _pg: None,
                _dir: dir,
            }),
            _ => {
                let db = Database::new(&format!("ident_{tag}"))?;
                let config = StoreConfig::Postgres(hushflow_secrets::SecretValue::new(
                    db.url().into_bytes(),
                ));
                assert!(matches!(
                    config.open(0),
                    Err(StoreError::NotMigrated { .. })
                ));
                config.migrate(0).unwrap();
                Some(Meta {
                    config,
                    _pg: Some(db),
                    _dir: dir,
                })
            }
        }
    }

    fn store(&self) -> Store {
        self.config.open(0).unwrap()
    }
}

fn user(name: &str, role: &str) -> UserRow {
    UserRow {
        name: name.into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        role: role.into(),
        disabled: false,
        created_at: 1_000,
        password_changed_at: 1_000,
        failed_count: 0,
        locked_until: None,
    }
}

fn users_and_grants(backend: &str) {
    let Some(meta) = Meta::new(backend, "users") else {
        return;
    };
    let mut store = meta.store();
    assert!(store.add_user(&user("ada", "admin")).unwrap());
    assert!(
        !store.add_user(&user("ada", "viewer")).unwrap(),
        "names are unique"
    );
    assert!(store.add_user(&user("bob", "viewer")).unwrap());
    let all = store.users().unwrap();
    assert_eq!(
        all.iter()
            .map(|u| (u.name.as_str(), u.role.as_str()))
            .collect::<Vec<_>>(),
        [("ada", "admin"), ("bob", "viewer")]
    );
    assert_eq!(store.user("ada").unwrap().unwrap(), user("ada", "admin"));

    assert!(store.set_user_role("bob", "op").unwrap());
    assert!(!store.set_user_role("nobody", "op").unwrap());
    assert_eq!(store.user("bob").unwrap().unwrap().role, "op");

    // Grants: a limit, a permission everywhere, a permission on one pipeline.
    assert!(
        store
            .add_user_grant("bob", None, Some("contacts"), 5)
            .unwrap()
    );
    assert!(
        store
            .add_user_grant("bob", Some("detokenize"), Some("contacts"), 5)
            .unwrap()
    );
    assert!(
        store
            .add_user_grant("bob", Some("export-keys"), None, 5)
            .unwrap()
    );
    assert!(
        !store
            .add_user_grant("bob", Some("export-keys"), None, 6)
            .unwrap(),
        "once"
    );
    let grants = store.user_grants("bob").unwrap();
    assert_eq!(
        grants
            .iter()
            .map(|g| (g.permission.as_deref(), g.pipeline.as_deref()))
            .collect::<Vec<_>>(),
        [
            (None, Some("contacts")),
            (Some("detokenize"), Some("contacts")),
            (Some("export-keys"), None)
        ]
    );
    assert!(
        store
            .remove_user_grant("bob", Some("export-keys"), None)
            .unwrap()
    );
    assert!(
        !store
            .remove_user_grant("bob", Some("export-keys"), None)
            .unwrap()
    );

    // Lock-out: the third failure in a row locks, and the count starts again.
    assert_eq!(
        store.record_user_failure("bob", 3, 9_000).unwrap(),
        Some((1, None))
    );
    assert_eq!(
        store.record_user_failure("bob", 3, 9_000).unwrap(),
        Some((2, None))
    );
    assert_eq!(
        store.record_user_failure("bob", 3, 9_000).unwrap(),
        Some((0, Some(9_000)))
    );
    assert_eq!(store.record_user_failure("nobody", 3, 9_000).unwrap(), None);
    store.record_user_success("bob").unwrap();
    let bob = store.user("bob").unwrap().unwrap();
    assert_eq!((bob.failed_count, bob.locked_until), (0, None));

    // A new password lifts a lock-out and ends the user's sessions.
    store.record_user_failure("bob", 1, 9_000).unwrap();
    store.create_session(&session("s1", "bob", 10)).unwrap();
    assert!(store.set_user_password("bob", "$argon2id$new", 20).unwrap());
    let bob = store.user("bob").unwrap().unwrap();
    assert_eq!(bob.password_hash, "$argon2id$new");
    assert_eq!((bob.password_changed_at, bob.locked_until), (20, None));
    assert!(store.session("s1").unwrap().is_none());

    // Disabling ends sessions too; removing takes grants and sessions with it.
    store.create_session(&session("s2", "bob", 30)).unwrap();
    assert!(store.set_user_disabled("bob", true).unwrap());
    assert!(store.user("bob").unwrap().unwrap().disabled);
    assert!(store.session("s2").unwrap().is_none());
    store.create_session(&session("s3", "bob", 40)).unwrap();
    assert!(store.remove_user("bob").unwrap());
    assert!(!store.remove_user("bob").unwrap());
    assert!(store.user("bob").unwrap().is_none());
    assert!(store.user_grants("bob").unwrap().is_empty());
    assert!(store.session("s3").unwrap().is_none());
}

#[test]
fn users_and_grants_on_sqlite() {
    users_and_grants("sqlite");
}

#[test]
fn users_and_grants_on_postgres() {
    users_and_grants("postgres");
}

fn token(id: &str, name: &str) -> ApiTokenRow {
    ApiTokenRow {
        id: id.into(),
        name: name.into(),
        role: "viewer".into(),
        secret_hash: format!("{id:0>64}"),
        created_at: 100,
        created_by: "ada".into(),
        expires_at: Some(10_000),
        last_used_at: None,
        revoked_at: None,
    }
}

fn api_tokens(backend: &str) {
    let Some(meta) = Meta::new(backend, "tokens") else {
        return;
    };
    let mut store = meta.store();
    assert!(store.add_api_token(&token("a1", "ci")).unwrap());
    assert!(
        !store.add_api_token(&token("a2", "ci")).unwrap(),
        "a live name is unique"
    );
    assert_eq!(store.api_token("a1").unwrap().unwrap(), token("a1", "ci"));
    assert_eq!(store.api_token_named("ci").unwrap().unwrap().id, "a1");

    // Uses are recorded at most once per interval.
    store.touch_api_token("a1", 200, 200 - 60_000).unwrap();
    store.touch_api_token("a1", 300, 300 - 60_000).unwrap();
    assert_eq!(
        store.api_token("a1").unwrap().unwrap().last_used_at,
        Some(200)
    );
    store
        .touch_api_token("a1", 70_000, 70_000 - 60_000)
        .unwrap();
    assert_eq!(
        store.api_token("a1").unwrap().unwrap().last_used_at,
        Some(70_000)
    );

    // Revoking keeps the row and frees the name.
    assert!(store.revoke_api_token("a1", 500).unwrap());
    assert!(!store.revoke_api_token("a1", 600).unwrap());
    assert_eq!(
        store.api_token("a1").unwrap().unwrap().revoked_at,
        Some(500)
    );
    assert!(store.api_token_named("ci").unwrap().is_none());
    assert!(store.add_api_token(&token("a2", "ci")).unwrap());
    assert_eq!(store.api_tokens().unwrap().len(), 2);
}

#[test]
fn api_tokens_on_sqlite() {
    api_tokens("sqlite");
}

#[test]
fn api_tokens_on_postgres() {
    api_tokens("postgres");
}

fn session(id: &str, user: &str, at: i64) -> SessionRow {
    SessionRow {
        id: id.into(),
        user: user.into(),
        created_at: at,
        last_seen_at: at,
        expires_at: at + 1_000_000,
    }
}

fn sessions_and_attempts(backend: &str) {
    let Some(meta) = Meta::new(backend, "sessions") else {
        return;
    };
    let mut store = meta.store();
    store.create_session(&session("s1", "ada", 1_000)).unwrap();
    store.create_session(&session("s2", "ada", 1_000)).unwrap();
    store.create_session(&session("s3", "bob", 1_000)).unwrap();
    store.touch_session("s1", 1_010, 1_000).unwrap();
    assert_eq!(store.session("s1").unwrap().unwrap().last_seen_at, 1_010);
    store.touch_session("s1", 1_020, 1_000).unwrap();
    assert_eq!(
        store.session("s1").unwrap().unwrap().last_seen_at,
        1_010,
        "not yet"
    );
    assert!(store.end_session("s1").unwrap());
    assert!(!store.end_session("s1").unwrap());
    assert_eq!(store.end_user_sessions("ada").unwrap(), 1);
    // Idle since before 2_000: pruned.
    assert_eq!(store.prune_sessions(1_500, 2_000).unwrap(), 1);
    assert!(store.session("s3").unwrap().is_none());

    store
        .record_sign_in_attempt(Some("ada"), "addr1", 100, false)
        .unwrap();
    store
        .record_sign_in_attempt(None, "addr1", 200, false)
        .unwrap();
    store
        .record_sign_in_attempt(Some("ada"), "addr1", 300, true)
        .unwrap();
    store
        .record_sign_in_attempt(None, "addr2", 300, false)
        .unwrap();
    assert_eq!(
        store.failed_sign_ins_from("addr1", 0).unwrap(),
        (2, Some(100))
    );
    assert_eq!(
        store.failed_sign_ins_from("addr1", 150).unwrap(),
        (1, Some(200))
    );
    assert_eq!(store.failed_sign_ins_from("addr3", 0).unwrap(), (0, None));
    assert_eq!(store.prune_sign_in_attempts(250).unwrap(), 2);
    assert_eq!(store.failed_sign_ins_from("addr1", 0).unwrap(), (0, None));
}

#[test]
fn sessions_and_attempts_on_sqlite() {
    sessions_and_attempts("sqlite");
}

#[test]
fn sessions_and_attempts_on_postgres() {
    sessions_and_attempts("postgres");
}
