//! The matrix, the document that prints it, and how grants and limits combine.

use super::*;
use crate::Actor;

#[test]
fn the_matrix_is_airflow_like_and_each_role_holds_the_lower_roles_permissions() {
    let table = matrix_markdown();
    println!("{table}");
    for p in Permission::ALL {
        for pair in Role::ALL.windows(2) {
            assert!(
                !pair[0].permits(p) || pair[1].permits(p),
                "{} holds {p} but {} does not",
                pair[0],
                pair[1]
            );
        }
    }
    use Permission::*;
    let only = |role: Role, ps: &[Permission]| {
        for p in ps {
            assert_eq!(Role::lowest_with(*p), Some(role), "{p}");
        }
    };
    only(Role::Viewer, &[ReadPipelines, ReadRuns, ReadLogs]);
    only(Role::User, &[Trigger, Pause, Clear, Backfill]);
    only(
        Role::Op,
        &[ReadQuarantine, Replay, ManagePools, ReadConnections],
    );
    only(
        Role::Admin,
        &[ManageUsers, ManageTokens, ReadKeys, ReadAudit],
    );
    for p in [Detokenize, ExportKeys, ExportQuarantine] {
        assert!(
            Role::ALL.iter().all(|r| !r.permits(p)),
            "{p} is held by no role"
        );
    }
}

#[test]
fn docs_access_md_holds_the_matrix_of_the_code() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/access.md"))
        .unwrap();
    assert!(
        doc.contains(&matrix_markdown()),
        "docs/access.md does not hold the permission matrix of the code; replace its table with:\n\n{}",
        matrix_markdown()
    );
}

#[test]
fn names_round_trip_through_text_and_serde() {
    for role in Role::ALL {
        assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        assert_eq!(
            serde_json::to_string(&role).unwrap(),
            format!("\"{}\"", role.as_str())
        );
    }
    assert_eq!("Admin".parse::<Role>(), Ok(Role::Admin));
    assert!("root".parse::<Role>().is_err());
    for p in Permission::ALL {
        assert_eq!(p.as_str().parse::<Permission>(), Ok(p));
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            format!("\"{}\"", p.as_str())
        );
    }
    assert_eq!(
        "export_keys".parse::<Permission>(),
        Ok(Permission::ExportKeys)
    );
    assert!("everything".parse::<Permission>().is_err());
    assert!(Role::Viewer < Role::User && Role::User < Role::Op && Role::Op < Role::Admin);
}

#[test]
fn limits_and_grants_combine() {
    let viewer = Principal::new(Actor::api_user("vic"), Role::Viewer);
    assert!(viewer.may(Permission::ReadRuns, Some("contacts")));
    assert!(viewer.may(Permission::ReadRuns, None));
    assert!(!viewer.may(Permission::Trigger, Some("contacts")));
    assert!(!viewer.may(Permission::ReadAudit, None));

    // An Op limited to one pipeline, who may also detokenize on it and export keys anywhere.
    let op = Principal::with_grants(
        Actor::api_user("olga"),
        Role::Op,
        vec![
            Grant::limit_to("contacts"),
            Grant::permission(Permission::Detokenize, Some("contacts".into())),
            Grant::permission(Permission::ExportKeys, None),
        ],
    );
    assert_eq!(op.pipelines, Some(vec!["contacts".to_string()]));
    assert_eq!(op.extra.len(), 2);
    assert!(op.may(Permission::Trigger, Some("contacts")));
    assert!(!op.may(Permission::Trigger, Some("leads")));
    // A listing (no pipeline) is allowed; the caller filters its items.
    assert!(op.may(Permission::ReadRuns, None));
    assert!(op.sees("contacts") && !op.sees("leads"));
    // Limits do not apply to what belongs to no pipeline.
    assert!(op.may(Permission::ManagePools, Some("leads")));
    assert!(op.may(Permission::Detokenize, Some("contacts")));
    assert!(!op.may(Permission::Detokenize, Some("leads")));
    assert!(op.may(Permission::ExportKeys, None));
    assert!(!op.may(Permission::ExportQuarantine, Some("contacts")));
    assert!(!op.may(Permission::ManageUsers, None));

    let admin = Principal::new(Actor::api_token("ci"), Role::Admin);
    assert!(
        Permission::ALL
            .iter()
            .all(|p| { admin.may(*p, Some("x")) == Role::lowest_with(*p).is_some() })
    );
}

/// Identity and access over a real store: SQLite in a temporary state directory, or the
/// machine's PostgreSQL (a fresh database), on a fake clock.
mod flows {
    use super::super::*;
    use crate::{Actor, Session};
    use hushflow_scheduler::FakeClock;
    use hushflow_scheduler::store::{Store, StoreConfig};
    use hushflow_secrets::Redactor;
    use hushflow_state::StateDir;
    use hushflow_test_support::pg::Database;
    use std::sync::Arc;
    use std::time::Duration;

    const PASSWORD: &str = "canary-Passw0rd-7Xq2-zebra";
    const T0: i64 = 1_800_000_000_000;

    struct World {
        session: Session,
        store: Store,
        clock: Arc<FakeClock>,
        access: Access,
        _pg: Option<Database>,
        _dir: tempfile::TempDir,
    }

    fn world(backend: &str, tag: &str, policy: AccessPolicy) -> Option<World> {
        let dir = tempfile::tempdir().unwrap();
        let session = Session::new(
            StateDir::open(dir.path().join("state")).unwrap(),
            Redactor::new(),
        );
        let (store, pg) = match backend {
            "sqlite" => (session.open_store().unwrap(), None),
            _ => {
                let db = Database::new(&format!("access_{tag}"))?;
                let config = StoreConfig::Postgres(hushflow_secrets::SecretValue::new(
                    db.url().into_bytes(),
                ));
                (config.migrate(0).unwrap().0, Some(db))
            }
        };
        let clock = Arc::new(FakeClock::at(T0));
        let access = Access::with_clock(policy, clock.clone());
        Some(World {
            session,
            store,
            clock,
            access,
            _pg: pg,
            _dir: dir,
        })
    }

    fn cheap() -> AccessPolicy {
        AccessPolicy {
            password: PasswordParams::TEST_ONLY,
            max_failures_per_user: 3,
            max_failures_per_address: 8,
            ..AccessPolicy::default()
        }
    }

    fn admin() -> Actor {
        Actor::os_user()
    }

    impl World {
        fn audit(&self) -> Vec<hushflow_state::audit::AuditRecord> {
            self.session.state().audit_log().unwrap().list().unwrap()
        }

        /// Everything the audit log and the store's tables hold, as text.
        fn everything(&mut self) -> String {
            let mut text = format!("{:?}", self.audit());
            text.push_str(&format!("{:?}", self.store.users().unwrap()));
            text.push_str(&format!("{:?}", self.store.api_tokens().unwrap()));
            text
        }
    }

    fn users(backend: &str) {
        let Some(mut w) = world(backend, "users", cheap()) else {
            return;
        };
        let (s, st, a) = (&w.session, &mut w.store, &w.access);
        let e = a
            .add_user(s, st, &admin(), "ada@example.com", Role::Admin, PASSWORD)
            .unwrap_err();
        assert!(e.to_string().contains("not an e-mail address"), "{e}");
        let e = a
            .add_user(s, st, &admin(), "ada", Role::Admin, "short")
            .unwrap_err();
        assert!(e.to_string().contains("too short") && !e.to_string().contains("short\""));
        let ada = a
            .add_user(s, st, &admin(), "ada", Role::Admin, PASSWORD)
            .unwrap();
        assert_eq!(
            (ada.name.as_str(), ada.role, ada.locked),
            ("ada", Role::Admin, false)
        );
        assert!(matches!(
            a.add_user(s, st, &admin(), "ada", Role::Viewer, PASSWORD),
            Err(AccessError::Exists(_))
        ));
        a.add_user(s, st, &admin(), "vic", Role::Viewer, PASSWORD)
            .unwrap();

        // The last enabled Admin stays.
        assert!(matches!(
            a.set_role(s, st, &admin(), "ada", Role::Op),
            Err(AccessError::Invalid(_))
        ));
        assert!(a.remove_user(s, st, &admin(), "ada").is_err());
        assert!(a.set_disabled(s, st, &admin(), "ada", true).is_err());
        let vic = a.set_role(s, st, &admin(), "vic", Role::User).unwrap();
        assert_eq!(vic.role, Role::User);

        let grant = Grant::permission(Permission::Detokenize, Some("contacts".into()));
        let vic = a.grant(s, st, &admin(), "vic", &grant).unwrap();
        assert_eq!(vic.grants, vec![grant.clone()]);
        let e = a
            .grant(
                s,
                st,
                &admin(),
                "vic",
                &Grant::permission(Permission::ExportKeys, Some("contacts".into())),
            )
            .unwrap_err();
        assert!(e.to_string().contains("belongs to no pipeline"), "{e}");
        a.grant(s, st, &admin(), "vic", &Grant::limit_to("contacts"))
            .unwrap();
        let principal = a.principal_of_user(st, "vic").unwrap().unwrap();
        assert!(principal.may(Permission::Trigger, Some("contacts")));
        assert!(!principal.may(Permission::Trigger, Some("leads")));
        assert!(principal.may(Permission::Detokenize, Some("contacts")));
        let vic = a.revoke_grant(s, st, &admin(), "vic", &grant).unwrap();
        assert_eq!(vic.grants, vec![Grant::limit_to("contacts")]);
        assert!(matches!(
            a.revoke_grant(s, st, &admin(), "vic", &grant),
            Err(AccessError::NotFound(_))
        ));

        let names: Vec<String> = a
            .list_users(st)
            .unwrap()
            .into_iter()
            .map(|u| u.name)
            .collect();
        assert_eq!(names, ["ada", "vic"]);
        a.reset_password(s, st, &admin(), "vic", "another-long-passphrase")
            .unwrap();
        a.remove_user(s, st, &admin(), "vic").unwrap();
        assert!(matches!(
            a.remove_user(s, st, &admin(), "vic"),
            Err(AccessError::NotFound(_))
        ));

        let actions: Vec<String> = w.audit().iter().map(|r| r.action.clone()).collect();
        assert_eq!(
            actions,
            [
                "users.add",
                "users.add",
                "users.set-role",
                "users.grant",
                "users.grant",
                "users.revoke-grant",
                "users.reset-password",
                "users.remove"
            ]
        );
        let everything = w.everything();
        assert!(!everything.contains(PASSWORD), "{everything}");
        assert!(!everything.contains("another-long-passphrase"));
        assert!(
            w.store
                .user("ada")
                .unwrap()
                .unwrap()
                .password_hash
                .starts_with("$argon2id$")
        );
    }

    #[test]
    fn users_on_sqlite() {
        users("sqlite");
    }

    #[test]
    fn users_on_postgres() {
        users("postgres");
    }

    fn tokens(backend: &str) {
        let Some(mut w) = world(backend, "tokens", cheap()) else {
            return;
        };
        let (s, st, a) = (&w.session, &mut w.store, &w.access);
        let new = a
            .create_token(
                s,
                st,
                &admin(),
                "ci",
                Role::User,
                Some(Duration::from_secs(3600)),
            )
            .unwrap();
        assert!(
            new.token.starts_with(TOKEN_PREFIX),
            "a token is recognisable"
        );
        assert!(!format!("{new:?}").contains(new.token.as_str()));
        assert_eq!(new.view.state, "active");
        assert!(matches!(
            a.create_token(s, st, &admin(), "ci", Role::User, None),
            Err(AccessError::Exists(_))
        ));
        let principal = a.authenticate_token(st, &new.token).unwrap();
        assert_eq!(principal.actor, Actor::api_token("ci"));
        assert_eq!(principal.role, Role::User);
        assert!(st.api_tokens().unwrap()[0].last_used_at.is_some());

        // Wrong secrets, one character off or malformed: refused alike.
        let mut wrong = new.token.to_string();
        let last = wrong.pop().unwrap();
        wrong.push(if last == 'A' { 'B' } else { 'A' });
        for bad in [
            wrong.as_str(),
            "hf_",
            "Bearer x",
            "",
            &new.token[..new.token.len() - 1],
        ] {
            assert_eq!(
                a.authenticate_token(st, bad),
                Err(AccessError::TokenRefused)
            );
        }

        // Expiry.
        w.clock.advance(Duration::from_secs(3601));
        let (s, st, a) = (&w.session, &mut w.store, &w.access);
        assert_eq!(
            a.authenticate_token(st, &new.token),
            Err(AccessError::TokenRefused)
        );
        assert_eq!(a.list_tokens(st).unwrap()[0].state, "expired");

        // Revocation, by name; the name is free again.
        let forever = a
            .create_token(s, st, &admin(), "deploy", Role::Viewer, None)
            .unwrap();
        assert!(a.authenticate_token(st, &forever.token).is_ok());
        let revoked = a.revoke_token(s, st, &admin(), "deploy").unwrap();
        assert_eq!(revoked.state, "revoked");
        assert_eq!(
            a.authenticate_token(st, &forever.token),
            Err(AccessError::TokenRefused)
        );
        assert!(matches!(
            a.revoke_token(s, st, &admin(), "deploy"),
            Err(AccessError::NotFound(_))
        ));
        assert!(a.revoke_token(s, st, &admin(), &revoked.id).is_err());
        a.create_token(s, st, &admin(), "deploy", Role::Viewer, None)
            .unwrap();
        assert_eq!(a.list_tokens(st).unwrap().len(), 3);

        let everything = w.everything();
        for token in [&new.token, &forever.token] {
            let secret = &token[token.len() - 43..];
            assert!(!everything.contains(secret), "{everything}");
        }
        let actions: Vec<String> = w.audit().iter().map(|r| r.action.clone()).collect();
        assert_eq!(
            actions,
            [
                "tokens.create",
                "tokens.create",
                "tokens.revoke",
                "tokens.create"
            ]
        );
    }

    #[test]
    fn tokens_on_sqlite() {
        tokens("sqlite");
    }

    #[test]
    fn tokens_on_postgres() {
        tokens("postgres");
    }

    fn sign_in_and_sessions(backend: &str) {
        let Some(mut w) = world(backend, "signin", cheap()) else {
            return;
        };
        let (s, st, a) = (&w.session, &mut w.store, &w.access);
        a.add_user(s, st, &admin(), "ada", Role::Op, PASSWORD)
            .unwrap();
        a.add_user(s, st, &admin(), "root", Role::Admin, PASSWORD)
            .unwrap();

        let (principal, new) = a.sign_in(s, st, "ada", PASSWORD, "192.0.2.1").unwrap();
        assert_eq!(principal.actor, Actor::api_user("ada"));
        assert_eq!(principal.role, Role::Op);
        assert!(!format!("{new:?}").contains(new.secret.as_str()));
        assert!(check_csrf(&new.secret, &new.csrf));
        assert!(!check_csrf(&new.secret, "forged"));
        assert_eq!(a.session(st, &new.secret).unwrap(), principal);
        assert_eq!(new.expires_at, T0 + 12 * 3600 * 1000);

        // The role counts as stored now.
        a.set_role(s, st, &admin(), "ada", Role::Viewer).unwrap();
        assert_eq!(a.session(st, &new.secret).unwrap().role, Role::Viewer);

        // Rotation: the old secret is worth nothing, the new one keeps the absolute timeout.
        let rotated = a.rotate(st, &new.secret).unwrap();
        assert_eq!(a.session(st, &new.secret), Err(AccessError::SessionEnded));
        assert!(a.session(st, &rotated.secret).is_ok());
        assert_eq!(rotated.expires_at, new.expires_at);

        // Idle timeout: used within 30 minutes it lives on; idle for longer it ends.
        w.clock.advance(Duration::from_secs(29 * 60));
        assert!(w.access.session(&mut w.store, &rotated.secret).is_ok());
        w.clock.advance(Duration::from_secs(29 * 60));
        assert!(w.access.session(&mut w.store, &rotated.secret).is_ok());
        w.clock.advance(Duration::from_secs(31 * 60));
        assert_eq!(
            w.access.session(&mut w.store, &rotated.secret),
            Err(AccessError::SessionEnded)
        );

        // Absolute timeout: used every 20 minutes, it still ends 12 hours after sign-in.
        let (s, st, a) = (&w.session, &mut w.store, &w.access);
        let (_, long) = a.sign_in(s, st, "ada", PASSWORD, "192.0.2.1").unwrap();
        for _ in 0..(12 * 3) {
            w.clock.advance(Duration::from_secs(20 * 60));
            let alive = w.access.session(&mut w.store, &long.secret).is_ok();
            if !alive {
                assert!(w.clock.now() >= long.expires_at);
                break;
            }
        }
        assert_eq!(
            w.access.session(&mut w.store, &long.secret),
            Err(AccessError::SessionEnded)
        );

        // Sign-out, and a removed or disabled user's session ends.
        let (s, st, a) = (&w.session, &mut w.store, &w.access);
        let (_, short) = a.sign_in(s, st, "ada", PASSWORD, "192.0.2.1").unwrap();
        a.sign_out(s, st, &short.secret).unwrap();
        assert_eq!(a.session(st, &short.secret), Err(AccessError::SessionEnded));
        a.sign_out(s, st, &short.secret).unwrap();
        let (_, other) = a.sign_in(s, st, "ada", PASSWORD, "192.0.2.1").unwrap();
        a.set_disabled(s, st, &admin(), "ada", true).unwrap();
        assert_eq!(a.session(st, &other.secret), Err(AccessError::SessionEnded));
        assert_eq!(
            a.sign_in(s, st, "ada", PASSWORD, "192.0.2.1").unwrap_err(),
            AccessError::SignInRefused
        );
        a.set_disabled(s, st, &admin(), "ada", false).unwrap();
        for secret in ["", "x", "not-a-session-secret-at-all-of-43-chars-long"] {
            assert_eq!(a.session(st, secret), Err(AccessError::SessionEnded));
        }

        let everything = w.everything();
        assert!(!everything.contains(PASSWORD));
        for secret in [&new.secret, &rotated.secret, &long.secret, &short.secret] {
            assert!(!everything.contains(secret.as_str()));
        }
        let audit = w.audit();
        let sign_ins: Vec<_> = audit.iter().filter(|r| r.action == "sign-in").collect();
        assert!(sign_ins.iter().all(|r| r.actor == "api-user:ada"));
        assert!(
            sign_ins
                .iter()
                .all(|r| r.detail.as_deref().unwrap_or("").contains("192.0.2.1"))
        );
        assert!(audit.iter().any(|r| r.action == "sign-out"));
    }

    #[test]
    fn sign_in_and_sessions_on_sqlite() {
        sign_in_and_sessions("sqlite");
    }

    #[test]
    fn sign_in_and_sessions_on_postgres() {
        sign_in_and_sessions("postgres");
    }

    fn lock_out_and_rate_limit(backend: &str) {
        let Some(mut w) = world(backend, "lockout", cheap()) else {
            return;
        };
        let (s, st, a) = (&w.session, &mut w.store, &w.access);
        a.add_user(s, st, &admin(), "ada", Role::Admin, PASSWORD)
            .unwrap();

        // An unknown user and a wrong password get the same answer.
        let unknown = a
            .sign_in(s, st, "nobody", PASSWORD, "198.51.100.7")
            .unwrap_err();
        let wrong = a
            .sign_in(s, st, "ada", "wrong-password-1", "198.51.100.7")
            .unwrap_err();
        assert_eq!(unknown, wrong);
        assert_eq!(unknown.to_string(), AccessError::SignInRefused.to_string());
        // The third failure in a row locks the user: the right password is refused too.
        a.sign_in(s, st, "ada", "wrong-password-2", "198.51.100.7")
            .unwrap_err();
        a.sign_in(s, st, "ada", "wrong-password-3", "198.51.100.7")
            .unwrap_err();
        assert!(a.user(st, "ada").unwrap().locked);
        assert_eq!(
            a.sign_in(s, st, "ada", PASSWORD, "203.0.113.9")
                .unwrap_err(),
            AccessError::SignInRefused
        );
        // The lock-out ends after 15 minutes.
        w.clock.advance(Duration::from_secs(15 * 60 + 1));
        let (s, st, a) = (&w.session, &mut w.store, &w.access);
        assert!(a.sign_in(s, st, "ada", PASSWORD, "203.0.113.9").is_ok());
        assert!(!a.user(st, "ada").unwrap().locked);

        // An address that fails 8 times in 15 minutes is refused, even with the right
        // password; another address is not.
        for i in 0..8 {
            let e = a
                .sign_in(s, st, &format!("guess{i}"), "x", "198.51.100.8")
                .unwrap_err();
            assert_eq!(e, AccessError::SignInRefused);
        }
        let limited = a
            .sign_in(s, st, "ada", PASSWORD, "198.51.100.8")
            .unwrap_err();
        assert!(
            matches!(limited, AccessError::RateLimited { retry_after_secs } if retry_after_secs > 0 && retry_after_secs <= 900),
            "{limited:?}"
        );
        assert!(a.sign_in(s, st, "ada", PASSWORD, "203.0.113.9").is_ok());
        w.clock.advance(Duration::from_secs(15 * 60 + 1));
        assert!(
            w.access
                .sign_in(&w.session, &mut w.store, "ada", PASSWORD, "198.51.100.8")
                .is_ok()
        );

        // Every failure is audited with its address and reason; no password, no unknown name.
        let audit = w.audit();
        let refused: Vec<_> = audit.iter().filter(|r| r.outcome == "refused").collect();
        assert_eq!(refused.len(), 1 + 3 + 1 + 8 + 1, "{refused:#?}");
        let details: Vec<&str> = refused.iter().filter_map(|r| r.detail.as_deref()).collect();
        assert!(details[0].contains("198.51.100.7") && details[0].contains("unknown user"));
        assert_eq!(refused[0].actor, "api-user:-");
        assert!(details[1].contains("wrong password"));
        assert!(details[3].contains("locked out until"), "{details:?}");
        assert!(details[4].contains("locked out"));
        assert!(details[13].contains("rate limited"));
        let everything = w.everything();
        assert!(!everything.contains("nobody") && !everything.contains("guess1"));
        assert!(!everything.contains("wrong-password"));
        assert!(!everything.contains(PASSWORD));
    }

    #[test]
    fn lock_out_and_rate_limit_on_sqlite() {
        lock_out_and_rate_limit("sqlite");
    }

    #[test]
    fn lock_out_and_rate_limit_on_postgres() {
        lock_out_and_rate_limit("postgres");
    }

    #[test]
    fn denials_are_audited() {
        let mut w = world("sqlite", "denials", cheap()).unwrap();
        let viewer = Principal::new(Actor::api_user("vic"), Role::Viewer);
        let e = w
            .access
            .record_denial(
                &w.session,
                &viewer,
                Permission::Trigger,
                Some("contacts"),
                "192.0.2.5",
            )
            .unwrap();
        assert_eq!(
            e,
            AccessError::Denied {
                permission: Permission::Trigger
            }
        );
        assert!(e.to_string().contains("`trigger`"));
        w.access
            .record_denial(
                &w.session,
                &viewer,
                Permission::ReadAudit,
                None,
                "192.0.2.5",
            )
            .unwrap();
        let audit = w.audit();
        assert_eq!(audit.len(), 2);
        assert_eq!(audit[0].action, "access.denied");
        assert_eq!(audit[0].outcome, "denied");
        assert_eq!(audit[0].actor, "api-user:vic");
        assert_eq!(audit[0].pipeline.as_deref(), Some("contacts"));
        assert!(audit[0].detail.as_deref().unwrap().contains("192.0.2.5"));
        assert_eq!(audit[1].pipeline, None);
        let _ = w.everything();
    }

    /// The default cost is OWASP's, and a hash made cheaper is made again at sign-in.
    #[test]
    fn passwords_are_argon2id_with_owasp_parameters() {
        assert_eq!(AccessPolicy::default().password, PasswordParams::OWASP);
        let hash = hash_password(PASSWORD, PasswordParams::OWASP).unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password(PASSWORD, &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password(PASSWORD, "not a hash"));

        let mut w = world("sqlite", "rehash", cheap()).unwrap();
        w.access
            .add_user(
                &w.session,
                &mut w.store,
                &admin(),
                "ada",
                Role::Admin,
                PASSWORD,
            )
            .unwrap();
        assert!(
            w.store
                .user("ada")
                .unwrap()
                .unwrap()
                .password_hash
                .contains("m=8,")
        );
        let owasp = Access::with_clock(AccessPolicy::default(), w.clock.clone());
        let (_, session) = owasp
            .sign_in(&w.session, &mut w.store, "ada", PASSWORD, "192.0.2.1")
            .unwrap();
        let stored = w.store.user("ada").unwrap().unwrap().password_hash;
        assert!(stored.contains("m=19456,t=2,p=1"), "{stored}");
        assert!(owasp.session(&mut w.store, &session.secret).is_ok());
    }
}
