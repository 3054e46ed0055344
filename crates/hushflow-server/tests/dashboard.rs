//! The dashboard through the real server: signing in (a CSRF token tied to a cookie, a new
//! session every time, the cookie's attributes), signing out, an expired session refused,
//! every page rendered for an Admin without a script, and buttons only for roles that may use
//! them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Answer, Credentials, PASSWORD, TestServer, answer, populate};
use hushflow_app::Role;
use hushflow_app::access::{Access, AccessPolicy};
use hushflow_scheduler::{Clock, FakeClock};
use std::sync::Arc;
use std::time::Duration;

/// The value of `name="csrf"` in a page's form.
fn form_csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..].split('"').next().unwrap().to_string()
}

/// `name=value` of the cookie `name` among a response's Set-Cookie headers.
fn set_cookie<'a>(a: &'a Answer, name: &str) -> Option<&'a str> {
    a.headers_named("set-cookie")
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
}

fn cookie_value(set: &str) -> String {
    set.split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string()
}

/// Signs `user` in through the form; the answer to the POST.
fn sign_in(server: &TestServer, user: &str, password: &str, old: Option<&str>) -> Answer {
    let form = answer(server.client().get(server.url("/sign-in")).call());
    assert_eq!(form.status, 200);
    let csrf = form_csrf(&form.body);
    let pre = cookie_value(set_cookie(&form, "hushflow-sign-in").unwrap());
    let mut cookies = format!("hushflow-sign-in={pre}");
    if let Some(old) = old {
        cookies.push_str(&format!("; hushflow={old}"));
    }
    answer(
        server
            .client()
            .post(server.url("/sign-in"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Cookie", &cookies)
            .send(format!(
                "user={user}&password={}&csrf={csrf}",
                password.replace(' ', "+")
            )),
    )
}

fn page(server: &TestServer, path: &str, cookie: &str) -> Answer {
    answer(
        server
            .client()
            .get(server.url(path))
            .header("Cookie", &format!("hushflow={cookie}"))
            .call(),
    )
}

#[test]
fn signing_in_makes_a_new_session_each_time_and_signing_out_ends_it() {
    let server = TestServer::start(false);
    let credentials = populate(&server);
    let admin = credentials.iter().find(|c| c.role == Role::Admin).unwrap();

    let wrong = sign_in(&server, "admin", "not the password at all", None);
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("sign-in refused"), "{}", wrong.body);
    assert!(!wrong.body.contains("not the password"));

    // Signed in with the session from before in the browser: a new one, the old one ended.
    let ok = sign_in(&server, "admin", PASSWORD, Some(&admin.cookie));
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.header("location"), Some("/pipelines"));
    let set = set_cookie(&ok, "hushflow").unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "no TLS here: {set}");
    let new = cookie_value(set);
    assert_ne!(new, admin.cookie);
    assert_eq!(page(&server, "/pipelines", &admin.cookie).status, 401);
    assert_eq!(page(&server, "/pipelines", &new).status, 200);

    // A sign-in form without its cookie's token is refused.
    let forged = answer(
        server
            .client()
            .post(server.url("/sign-in"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(format!(
                "user=admin&password={}&csrf=x",
                PASSWORD.replace(' ', "+")
            )),
    );
    assert_eq!(forged.status, 403);

    // Signing out ends the session.
    let csrf = form_csrf(&page(&server, "/pipelines", &new).body);
    let out = answer(
        server
            .client()
            .post(server.url("/sign-out"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Cookie", &format!("hushflow={new}"))
            .send(format!("csrf={csrf}")),
    );
    assert_eq!(out.status, 303);
    assert_eq!(out.header("location"), Some("/sign-in"));
    assert_eq!(page(&server, "/pipelines", &new).status, 401);
}

#[test]
fn an_idle_or_expired_session_is_refused() {
    let clock = Arc::new(FakeClock::at(1_767_225_600_000));
    let policy = AccessPolicy::default();
    let idle = policy.idle_timeout;
    let server = TestServer::start_with_access(Access::with_clock(policy, clock.clone()));
    // The users are made through an access layer on the same clock as the server's.
    let access = Access::with_clock(AccessPolicy::default(), clock.clone());
    let mut store = server.session.open_store().unwrap();
    access
        .add_user(
            &server.session,
            &mut store,
            &hushflow_app::Actor::os_user(),
            "ada",
            Role::Viewer,
            PASSWORD,
        )
        .unwrap();
    let (_, session) = access
        .sign_in(&server.session, &mut store, "ada", PASSWORD, "127.0.0.1")
        .unwrap();
    let cookie = session.secret.to_string();
    assert_eq!(page(&server, "/pipelines", &cookie).status, 200);
    clock.advance(idle + Duration::from_secs(1));
    assert!(clock.now() > 0);
    let refused = page(&server, "/pipelines", &cookie);
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains("action=\"/sign-in\""));
}

#[test]
fn every_page_renders_for_an_admin_and_buttons_follow_the_role() {
    let server = TestServer::start(false);
    let credentials = populate(&server);
    let by = |role| -> &Credentials { credentials.iter().find(|c| c.role == role).unwrap() };
    let admin = by(Role::Admin);
    for path in [
        "/pipelines",
        "/runs/1",
        "/runs/1/tasks/first/log",
        "/audit",
        "/quarantine",
        "/keys",
        "/users",
    ] {
        let a = page(&server, path, &admin.cookie);
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        assert!(
            a.body.contains("<main>") && !a.body.contains("<script"),
            "{path}"
        );
        assert!(a.body.contains("Sign out"), "{path}");
    }
    let users = page(&server, "/users", &admin.cookie);
    assert!(users.body.contains("viewer-token"));
    assert!(!users.body.contains(&admin.token));
    let audit = page(&server, "/audit", &admin.cookie);
    assert!(audit.body.contains("Verify: intact"), "{}", audit.body);

    let viewer = page(&server, "/pipelines", &by(Role::Viewer).cookie);
    assert!(viewer.body.contains("nightly"));
    assert!(!viewer.body.contains(">Trigger<"), "a Viewer sees Trigger");
    assert!(
        !viewer.body.contains("href=\"/audit\""),
        "a Viewer sees the audit link"
    );
    let user = page(&server, "/pipelines", &by(Role::User).cookie);
    assert!(user.body.contains(">Trigger<") && user.body.contains(">Pause<"));
    assert!(!user.body.contains("href=\"/quarantine\""));
    let run = page(&server, "/runs/1", &by(Role::Viewer).cookie);
    assert!(run.body.contains("first") && run.body.contains("second"));

    // A trigger through the form leads to the new run's page.
    let u = by(Role::User);
    let triggered = answer(
        server
            .client()
            .post(server.url("/pipelines/nightly/trigger"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Cookie", &format!("hushflow={}", u.cookie))
            .send(format!("csrf={}", u.csrf)),
    );
    assert_eq!(triggered.status, 303, "{}", triggered.body);
    assert_eq!(triggered.header("location"), Some("/runs/2"));
}
