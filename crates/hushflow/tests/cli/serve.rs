//! `hushflow serve` as a process: plain HTTP refused off loopback (and warned about when
//! allowed), a graceful stop on SIGTERM, and no personal value on any page or API answer after
//! a real run over data full of canaries.

use crate::common::*;
use hushflow_app::access::Access;
use hushflow_app::{Actor, Role};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

const CANARY: &str = "@leak.example";
const NOTE: &str = "private note";

const NIGHTLY: &str = r#"
[pipeline]
name = "nightly"
key = "id"

[[task]]
name = "extract"
source = { type = "csv", path = "data/contacts.csv" }
policy = { fields = { id = "keep", email = { hash = "hmac-sha256", key = "keyring:pepper", normalize = "email" }, notes = "drop" } }
sink = { type = "jsonl", path = "out/leads.jsonl" }
"#;

/// Starts `hushflow serve` with `args`; answers the child and the base URL it printed.
// The child goes back to the caller, who stops it and waits for it (`stop`).
#[allow(clippy::zombie_processes)]
fn serve(ws: &Workspace, args: &[&str]) -> (Child, String, Vec<String>) {
    let mut c = ws.command();
    c.arg("serve")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn hushflow serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = Vec::new();
    let mut reader = BufReader::new(stderr);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).expect("read stderr") == 0 {
            let status = child.wait();
            panic!("serve stopped before listening ({status:?}): {lines:?}");
        }
        lines.push(line.clone());
        if let Some(at) = line.find("dashboard at ") {
            let url = line[at + 13..].split_whitespace().next().expect("url");
            let base = url.trim_end_matches('/').to_string();
            // The rest of stderr is drained so the server never blocks on it.
            std::thread::spawn(move || for _ in reader.lines() {});
            return (child, base, lines);
        }
    }
}

fn stop(child: &mut Child) -> i32 {
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    child.wait().expect("wait").code().unwrap_or(-1)
}

fn get(agent: &ureq::Agent, url: &str, auth: (&str, String)) -> (u16, String) {
    let mut r = agent
        .get(url)
        .header(auth.0, &auth.1)
        .call()
        .expect("request");
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().unwrap_or_default())
}

#[test]
fn plain_http_off_loopback_is_refused_unless_asked_for_and_then_warned_about() {
    let ws = Workspace::new();
    let r = ws.run(&["serve", "--addr", "0.0.0.0:0"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("--insecure-http") && r.stderr.contains("--tls-cert"),
        "{}",
        r.stderr
    );

    let (mut child, base, lines) = serve(&ws, &["--addr", "0.0.0.0:0", "--insecure-http"]);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("warning: serving") && l.contains("plain HTTP")),
        "{lines:?}"
    );
    assert!(base.starts_with("http://0.0.0.0:"), "{base}");
    // SIGTERM stops it gracefully, with success.
    assert_eq!(stop(&mut child), 0);
}

/// A workspace after a real run over canary data, with an Admin user `ada` and token `ci`:
/// (workspace, token, the `Cookie` header of a session of ada's, its secret).
fn after_a_run() -> (Workspace, String, String, String) {
    let ws = Workspace::new();
    let mut data = String::from("id,email,notes\n");
    for i in 1..=40 {
        data.push_str(&format!("{i},canary-{i}{CANARY},{NOTE} {i}\n"));
    }
    // A row with a bad field count: quarantined, canary and all.
    data.push_str(&format!("41,canary-41{CANARY}\n"));
    ws.write("data/contacts.csv", data);
    ws.write("nightly.toml", NIGHTLY);
    ws.ok(&["keys", "create", "pepper", "--purpose", "hash"], 0);
    let r = ws.run(&["trigger", "nightly.toml", "--wait"]);
    assert!(r.code == 0 || r.code == 3, "{}", r.all());

    // An Admin token and session, made through the app layer on the same state directory.
    let state = hushflow_state::StateDir::open(ws.state()).expect("state");
    let session = hushflow_app::Session::new(state, hushflow_secrets::Redactor::new());
    let access = Access::default();
    let mut store = session.open_store().expect("store");
    let admin = Actor::os_user();
    access
        .add_user(
            &session,
            &mut store,
            &admin,
            "ada",
            Role::Admin,
            "a long enough password",
        )
        .expect("user");
    let token = access
        .create_token(&session, &mut store, &admin, "ci", Role::Admin, None)
        .expect("token")
        .token
        .to_string();
    let (_, signed_in) = access
        .sign_in(
            &session,
            &mut store,
            "ada",
            "a long enough password",
            "127.0.0.1",
        )
        .expect("sign in");
    let secret = signed_in.secret.as_str().to_string();
    (ws, token, format!("hushflow={secret}"), secret)
}

#[test]
fn no_page_and_no_api_answer_shows_a_personal_value_after_a_run() {
    let (ws, token, cookie, secret) = after_a_run();
    let (mut child, base, _) = serve(&ws, &["--addr", "127.0.0.1:0"]);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let bearer = || ("Authorization", format!("Bearer {token}"));
    let mut seen = Vec::new();
    for path in [
        "/api/v1/pipelines",
        "/api/v1/runs",
        "/api/v1/runs/1/tasks",
        "/api/v1/runs/1/tasks/extract/log",
        "/api/v1/audit",
        "/api/v1/audit/verify",
        "/api/v1/quarantine",
        "/api/v1/keys",
        "/api/v1/users",
        "/api/v1/tokens",
        "/api/v1/openapi.json",
    ] {
        let (status, body) = get(&agent, &format!("{base}{path}"), bearer());
        assert_eq!(status, 200, "{path}: {body}");
        seen.push((path, body));
    }
    for path in [
        "/pipelines",
        "/runs/1",
        "/runs/1/tasks/extract/log",
        "/audit",
        "/quarantine",
        "/keys",
        "/users",
    ] {
        let (status, body) = get(&agent, &format!("{base}{path}"), ("Cookie", cookie.clone()));
        assert_eq!(status, 200, "{path}: {body}");
        seen.push((path, body));
    }
    assert_eq!(stop(&mut child), 0);

    // The run did happen, and the pages show it: a quarantined record, counts, a log.
    let quarantine = &seen
        .iter()
        .find(|(p, _)| *p == "/api/v1/quarantine")
        .expect("q")
        .1;
    assert!(quarantine.contains("\"records\":1"), "{quarantine}");
    let tasks = &seen
        .iter()
        .find(|(p, _)| *p == "/api/v1/runs/1/tasks")
        .expect("t")
        .1;
    assert!(tasks.contains("\"records_read\":41"), "{tasks}");
    for (path, body) in &seen {
        assert!(!body.contains(CANARY), "{path} shows a canary email");
        assert!(!body.contains("canary-"), "{path} shows a canary");
        assert!(!body.contains(NOTE), "{path} shows a note");
        assert!(!body.contains(&token), "{path} shows the token");
        assert!(!body.contains(&secret), "{path} shows the session");
    }
}

/// The venv's executable `name` (beside HUSHFLOW_TEST_PYTHON), or `None` when it is missing and
/// the services are not required (a plain `cargo test`: skipped, saying why).
fn venv_tool(name: &str) -> Option<std::path::PathBuf> {
    let python = std::env::var_os("HUSHFLOW_TEST_PYTHON").map(std::path::PathBuf::from);
    let tool = python
        .and_then(|p| Some(p.parent()?.join(name)))
        .filter(|t| t.is_file());
    if tool.is_none() {
        assert!(
            std::env::var_os("HUSHFLOW_TEST_REQUIRE_SERVICES").is_none(),
            "{name} is missing from the venv of HUSHFLOW_TEST_PYTHON (scripts/test.sh installs tests/python/requirements.txt)"
        );
        eprintln!("skipped: no {name} beside HUSHFLOW_TEST_PYTHON (scripts/test.sh installs it)");
    }
    tool
}

/// schemathesis fuzzes every API operation from the OpenAPI document with an Admin token, for
/// at most 60 s: no 5xx, no answer outside the document's schemas, auth enforced.
#[test]
fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let Some(schemathesis) = venv_tool("schemathesis") else {
        return;
    };
    let (ws, token, _, _) = after_a_run();
    let (mut child, base, _) = serve(&ws, &["--addr", "127.0.0.1:0"]);
    let out = std::process::Command::new(schemathesis)
        .current_dir(ws.dir.path())
        .env("SCHEMATHESIS_HOOKS", "")
        .args([
            "run",
            &format!("{base}/api/v1/openapi.json"),
            "--url",
            &base,
        ])
        .args(["--checks", "all", "--max-time", "60", "--seed", "1"])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["--report-dir", ws.path("schemathesis").to_str().unwrap()])
        .output()
        .expect("run schemathesis");
    assert_eq!(stop(&mut child), 0);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(!text.contains(&token), "schemathesis printed the token");
}

/// The dashboard in Debian's chromium through Playwright (tests/python/browser_serve.py): an
/// Admin signs in, triggers a run that a real scheduler executes, sees it succeed, opens its
/// log, visits every page and signs out; a Viewer sees no Trigger button and gets 403 posting
/// anyway. Screenshots of every page, desktop and phone width, in target/tmp/serve-screenshots.
#[test]
fn the_dashboard_works_in_a_real_browser() {
    let Some(python) = venv_tool("python") else {
        return;
    };
    let has_playwright = std::process::Command::new(&python)
        .args(["-c", "import playwright"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_playwright || !std::path::Path::new("/usr/bin/chromium").is_file() {
        assert!(
            std::env::var_os("HUSHFLOW_TEST_REQUIRE_SERVICES").is_none(),
            "playwright or /usr/bin/chromium is missing (scripts/test.sh installs both)"
        );
        eprintln!("skipped: playwright or /usr/bin/chromium is missing");
        return;
    }
    let (ws, _, _, _) = after_a_run();
    std::fs::create_dir_all(ws.path("pipelines")).expect("mkdir");
    std::fs::copy(ws.path("nightly.toml"), ws.path("pipelines/nightly.toml")).expect("copy");
    // The sync's paths are relative to the file: the scheduler's copy reads the same data.
    std::fs::create_dir_all(ws.path("pipelines/data")).expect("mkdir");
    std::fs::copy(
        ws.path("data/contacts.csv"),
        ws.path("pipelines/data/contacts.csv"),
    )
    .expect("copy");
    {
        let state = hushflow_state::StateDir::open(ws.state()).expect("state");
        let session = hushflow_app::Session::new(state, hushflow_secrets::Redactor::new());
        let mut store = session.open_store().expect("store");
        Access::default()
            .add_user(
                &session,
                &mut store,
                &Actor::os_user(),
                "viewer",
                Role::Viewer,
                "a long enough password",
            )
            .expect("viewer");
    }
    let mut scheduler = ws.command();
    scheduler
        .args([
            "scheduler",
            "--pipelines",
            "pipelines",
            "--parallelism",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut scheduler = scheduler.spawn().expect("scheduler");
    let (mut server, base, _) = serve(&ws, &["--addr", "127.0.0.1:0"]);
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-screenshots");
    let script = format!(
        "{}/../../tests/python/browser_serve.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = std::process::Command::new(&python)
        .arg(script)
        .args([&base, "ada", "viewer", "a long enough password"])
        .arg(&shots)
        .output()
        .expect("run playwright");
    assert_eq!(stop(&mut server), 0);
    stop(&mut scheduler);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("ok"), "{text}");
    assert!(shots.join("run-phone.png").is_file());
}

/// `serve --metrics-addr`: request latency by route pattern (never the path as typed, which
/// holds names anyone can type), refused sign-ins and permission denials, on a listener of its
/// own; no token, session or canary in what it serves.
#[test]
fn serve_metrics_count_requests_by_route_sign_in_failures_and_denials() {
    let (ws, token, _cookie, secret) = after_a_run();
    let viewer = {
        let state = hushflow_state::StateDir::open(ws.state()).expect("state");
        let session = hushflow_app::Session::new(state, hushflow_secrets::Redactor::new());
        let mut store = session.open_store().expect("store");
        Access::default()
            .create_token(
                &session,
                &mut store,
                &Actor::os_user(),
                "viewer",
                Role::Viewer,
                None,
            )
            .expect("token")
            .token
            .to_string()
    };
    let (mut child, base, lines) = serve(
        &ws,
        &["--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"],
    );
    let metrics_url = lines
        .iter()
        .find_map(|l| l.split("metrics: serving ").nth(1))
        .map(|u| u.trim().to_string())
        .unwrap_or_else(|| panic!("no metrics address in {lines:?}"));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let bearer = |t: &str| ("Authorization", format!("Bearer {t}"));
    assert_eq!(
        get(&agent, &format!("{base}/api/v1/runs"), bearer(&token)).0,
        200
    );
    assert_eq!(
        get(
            &agent,
            &format!("{base}/api/v1/runs/x{CANARY}/tasks"),
            bearer(&token)
        )
        .0 / 100,
        4
    );
    assert_eq!(
        get(&agent, &format!("{base}/api/v1/users"), bearer(&viewer)).0,
        403
    );
    // A refused sign-in, through the form with its CSRF cookie.
    let mut form = agent.get(&format!("{base}/sign-in")).call().expect("form");
    let set_cookie = form
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("sign-in cookie")
        .to_string();
    let _ = form.body_mut().read_to_string();
    let pair = set_cookie
        .split(';')
        .next()
        .expect("cookie pair")
        .to_string();
    let csrf = pair.split_once('=').expect("name=value").1.to_string();
    let refused = agent
        .post(&format!("{base}/sign-in"))
        .header("Cookie", &pair)
        .send_form([
            ("user", "ada"),
            ("password", "wrong password!"),
            ("csrf", &csrf),
        ])
        .expect("sign in");
    assert_eq!(refused.status().as_u16(), 401);

    let text = agent
        .get(&metrics_url)
        .call()
        .expect("scrape")
        .body_mut()
        .read_to_string()
        .expect("text");
    stop(&mut child);
    let count = |needle: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(needle))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(
        text.lines().any(
            |l| l.starts_with("hushflow_http_request_duration_seconds_count")
                && l.contains("route=\"/api/v1/runs\"")
                && l.contains("status=\"200\"")
        ),
        "{text}"
    );
    assert!(
        text.contains("route=\"/api/v1/runs/{run}/tasks\""),
        "the pattern, not the path: {text}"
    );
    assert_eq!(
        count("hushflow_sign_in_failures_total{reason=\"refused\"}"),
        1.0,
        "{text}"
    );
    assert_eq!(count("hushflow_permission_denials_total"), 1.0, "{text}");
    for secretish in [
        token.as_str(),
        viewer.as_str(),
        secret.as_str(),
        CANARY,
        "canary-",
    ] {
        assert!(!text.contains(secretish), "{secretish} in the metrics");
    }
}
