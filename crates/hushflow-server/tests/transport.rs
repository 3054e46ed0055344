//! The server as a client meets it before any sign-in: TLS (the right certificate works, a
//! wrong one and plain HTTP to the TLS port are refused), the security headers on every
//! answer, 401 without credentials, and the OpenAPI document listing exactly the API's routes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestServer, answer, client_trusting, self_signed};
use hushflow_server::routes::{Needs, ROUTES, Surface};
use std::collections::BTreeSet;
use std::io::{Read, Write};

#[test]
fn tls_serves_with_its_certificate_and_refuses_a_wrong_one_and_plain_http() {
    let server = TestServer::start(true);
    let ok = answer(server.client().get(server.url("/sign-in")).call());
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.header("strict-transport-security"),
        Some("max-age=63072000; includeSubDomains")
    );
    // The session cookie is Secure (and __Host-) under TLS.
    let cookies = ok.headers_named("set-cookie");
    assert!(cookies.iter().all(|c| c.contains("Secure")), "{cookies:?}");

    // A client that trusts another certificate refuses the server's.
    let (other, _) = self_signed();
    let wrong = client_trusting(Some(&other))
        .get(server.url("/sign-in"))
        .call();
    assert!(wrong.is_err(), "a wrong certificate was accepted");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = client_trusting(None)
        .get(server.url("/sign-in").replacen("https://", "http://", 1))
        .call();
    match plain {
        Err(_) => {}
        Ok(r) => panic!("plain HTTP was answered: {}", r.status()),
    }
    let port = server.running.as_ref().unwrap().addr.port();
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    raw.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    raw.write_all(b"GET /api/v1/pipelines HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = raw.read_to_end(&mut got);
    assert!(
        !String::from_utf8_lossy(&got).contains("HTTP/1.1 2"),
        "{got:?}"
    );
}

#[test]
fn every_answer_carries_the_security_headers_and_plain_http_no_hsts() {
    let server = TestServer::start(false);
    for path in [
        "/sign-in",
        "/api/v1/pipelines",
        "/pipelines",
        "/nowhere",
        "/static/style.css",
    ] {
        let a = answer(server.client().get(server.url(path)).call());
        let csp = a.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(
            a.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(a.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(a.header("strict-transport-security"), None, "{path}");
    }
    let page = answer(server.client().get(server.url("/sign-in")).call());
    assert!(!page.body.contains("<script"), "a page holds a script");
    let cookie = page.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
}

#[test]
fn without_credentials_the_api_answers_401_in_json_and_pages_the_sign_in_form() {
    let server = TestServer::start(false);
    let fill = |path: &str| {
        path.replace("{run}", "1")
            .replace("{task}", "load")
            .replace("{pipeline}", "nightly")
    };
    for route in ROUTES.iter().filter(|r| r.needs != Needs::Nobody) {
        let url = server.url(&fill(route.path));
        let a = match route.method.as_str() {
            "GET" => answer(server.client().get(&url).call()),
            _ => answer(server.client().post(&url).send_empty()),
        };
        assert_eq!(a.status, 401, "{} {}", route.method, route.path);
        match route.surface {
            Surface::Api => assert!(a.json()["error"].is_string(), "{}", a.body),
            Surface::Page => assert!(a.body.contains("action=\"/sign-in\""), "{}", a.body),
        }
    }
    // A bearer token the store does not know is no credential either.
    let a = answer(
        server
            .client()
            .get(server.url("/api/v1/pipelines"))
            .header("Authorization", "Bearer hf_not_a_token")
            .call(),
    );
    assert_eq!(a.status, 401);
    assert!(!a.body.contains("hf_not_a_token"));
}

#[test]
fn the_openapi_document_lists_exactly_the_api_routes() {
    let server = TestServer::start(false);
    let doc = answer(
        server
            .client()
            .get(server.url("/api/v1/openapi.json"))
            .call(),
    )
    .json();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .filter(|r| r.surface == Surface::Api)
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(documented, routed);
    // Every secured operation names the bearer scheme.
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[test]
fn an_unknown_route_is_a_json_404() {
    let server = TestServer::start(false);
    let a = answer(server.client().get(server.url("/api/v1/nothing")).call());
    assert_eq!(a.status, 404);
    assert!(a.json()["error"].is_string());
}
