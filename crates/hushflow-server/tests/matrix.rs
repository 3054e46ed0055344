//! The permission matrix through the real server: every route of the route table, for an
//! anonymous caller and for each role (an API token for the API, a signed-in session for the
//! pages), is allowed or refused (401 without credentials, 403 for a role below the route's)
//! exactly as ONE table below says; every 403 is in the audit log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Credentials, TestServer, answer, populate};
use hushflow_app::Role;
use hushflow_server::routes::{ROUTES, Surface};

/// Who may call each route: `None` anyone, else the lowest role allowed. The one table.
const EXPECTED: &[(&str, &str, Option<Role>)] = &[
    ("GET", "/api/v1/openapi.json", None),
    ("GET", "/api/v1/pipelines", Some(Role::Viewer)),
    ("GET", "/api/v1/runs", Some(Role::Viewer)),
    ("GET", "/api/v1/runs/{run}/tasks", Some(Role::Viewer)),
    (
        "GET",
        "/api/v1/runs/{run}/tasks/{task}/log",
        Some(Role::Viewer),
    ),
    ("GET", "/api/v1/audit", Some(Role::Admin)),
    ("GET", "/api/v1/audit/verify", Some(Role::Admin)),
    ("GET", "/api/v1/quarantine", Some(Role::Op)),
    ("GET", "/api/v1/keys", Some(Role::Admin)),
    ("GET", "/api/v1/users", Some(Role::Admin)),
    ("GET", "/api/v1/tokens", Some(Role::Admin)),
    (
        "POST",
        "/api/v1/pipelines/{pipeline}/trigger",
        Some(Role::User),
    ),
    (
        "POST",
        "/api/v1/pipelines/{pipeline}/pause",
        Some(Role::User),
    ),
    (
        "POST",
        "/api/v1/pipelines/{pipeline}/unpause",
        Some(Role::User),
    ),
    ("POST", "/api/v1/runs/{run}/clear", Some(Role::User)),
    ("GET", "/", None),
    ("GET", "/static/style.css", None),
    ("GET", "/static/favicon.svg", None),
    ("GET", "/sign-in", None),
    ("POST", "/sign-in", None),
    ("POST", "/sign-out", Some(Role::Viewer)),
    ("GET", "/pipelines", Some(Role::Viewer)),
    ("GET", "/runs/{run}", Some(Role::Viewer)),
    ("GET", "/runs/{run}/tasks/{task}/log", Some(Role::Viewer)),
    ("GET", "/audit", Some(Role::Admin)),
    ("GET", "/quarantine", Some(Role::Op)),
    ("GET", "/keys", Some(Role::Admin)),
    ("GET", "/users", Some(Role::Admin)),
    ("POST", "/pipelines/{pipeline}/trigger", Some(Role::User)),
    ("POST", "/pipelines/{pipeline}/pause", Some(Role::User)),
    ("POST", "/pipelines/{pipeline}/unpause", Some(Role::User)),
    ("POST", "/runs/{run}/clear", Some(Role::User)),
];

fn fill(path: &str) -> String {
    path.replace("{run}", "1")
        .replace("{task}", "first")
        .replace("{pipeline}", "nightly")
}

fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    surface: Surface,
    who: Option<&Credentials>,
) -> common::Answer {
    let url = server.url(&fill(path));
    let client = server.client();
    match (method, surface) {
        ("GET", Surface::Api) => {
            let mut r = client.get(&url);
            if let Some(c) = who {
                r = r.header("Authorization", &format!("Bearer {}", c.token));
            }
            answer(r.call())
        }
        ("POST", Surface::Api) => {
            let mut r = client.post(&url);
            if let Some(c) = who {
                r = r.header("Authorization", &format!("Bearer {}", c.token));
            }
            answer(r.send_empty())
        }
        ("GET", Surface::Page) => {
            let mut r = client.get(&url);
            if let Some(c) = who {
                r = r.header("Cookie", &format!("hushflow={}", c.cookie));
            }
            answer(r.call())
        }
        _ => {
            let mut r = client
                .post(&url)
                .header("Content-Type", "application/x-www-form-urlencoded");
            if let Some(c) = who {
                r = r.header("Cookie", &format!("hushflow={}", c.cookie));
            }
            let csrf = who.map(|c| c.csrf.clone()).unwrap_or_default();
            answer(r.send(format!("csrf={csrf}")))
        }
    }
}

fn denials(server: &TestServer) -> usize {
    hushflow_app::actions::audit::list(&server.session)
        .unwrap()
        .iter()
        .filter(|r| r.action == "access.denied")
        .count()
}

#[test]
fn every_route_for_every_role_is_allowed_or_refused_as_the_table_says() {
    let server = TestServer::start(false);
    let credentials = populate(&server);
    // The table covers the route table exactly.
    let mut table: Vec<(String, String)> = EXPECTED
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let mut routes: Vec<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    table.sort();
    routes.sort();
    assert_eq!(table, routes);

    let mut checked = 0;
    for route in ROUTES {
        let method = route.method.as_str();
        // Signing in and out changes the session under the other checks: they have tests of
        // their own (dashboard.rs); here, who may reach them.
        if route.path == "/sign-in" && method == "POST" || route.path == "/sign-out" {
            continue;
        }
        let lowest = EXPECTED
            .iter()
            .find(|(m, p, _)| *m == method && *p == route.path)
            .unwrap()
            .2;
        let anonymous = call(&server, method, route.path, route.surface, None);
        match lowest {
            None => assert!(
                anonymous.status < 400,
                "{method} {}: {}",
                route.path,
                anonymous.status
            ),
            Some(_) => assert_eq!(anonymous.status, 401, "{method} {} anonymous", route.path),
        }
        for c in &credentials {
            let before = denials(&server);
            let a = call(&server, method, route.path, route.surface, Some(c));
            let allowed = lowest.is_none_or(|l| c.role >= l);
            if allowed {
                assert!(
                    a.status < 400,
                    "{method} {} as {:?}: {} {}",
                    route.path,
                    c.role,
                    a.status,
                    a.body
                );
            } else {
                assert_eq!(
                    a.status, 403,
                    "{method} {} as {:?}: {}",
                    route.path, c.role, a.body
                );
                assert_eq!(
                    denials(&server),
                    before + 1,
                    "{method} {} not audited",
                    route.path
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 4 * 25, "{checked}");
    // The denials name the actor and the address, never a credential.
    let audit =
        serde_json::to_string(&hushflow_app::actions::audit::list(&server.session).unwrap())
            .unwrap();
    assert!(audit.contains("api-token:viewer-token") && audit.contains("127.0.0.1"));
    for c in &credentials {
        assert!(!audit.contains(&c.token) && !audit.contains(&c.cookie));
    }
}

#[test]
fn a_form_without_its_csrf_token_is_refused() {
    let server = TestServer::start(false);
    let credentials = populate(&server);
    let admin = credentials.iter().find(|c| c.role == Role::Admin).unwrap();
    let url = server.url("/pipelines/nightly/pause");
    for body in [
        "",
        "csrf=",
        "csrf=0000",
        &format!("csrf={}", credentials[0].csrf),
    ] {
        let a = answer(
            server
                .client()
                .post(&url)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .header("Cookie", &format!("hushflow={}", admin.cookie))
                .send(body.to_string()),
        );
        assert_eq!(a.status, 403, "{body}: {}", a.body);
    }
    let paused = hushflow_app::actions::orchestration::pipelines(&server.session).unwrap();
    assert!(!paused[0].paused);
}
