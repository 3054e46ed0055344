//! `hushflow users` and `hushflow tokens` through the real binary, on SQLite in the state
//! directory and on PostgreSQL: a canary password and the tokens appear in no output (with
//! `-vv` too), only once where a token is created, and nowhere in the state directory or the
//! metadata store, which hold only their digests.

use crate::common::*;
use sha2::Digest;
use std::io::Write;
use std::process::Stdio;

const PASSWORD: &str = "canary-pw-Zq81-lighthouse";
const NEW_PASSWORD: &str = "canary-pw-Bt44-harbour-moon";

/// Runs hushflow with `stdin` as its standard input.
fn run_stdin(ws: &Workspace, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Run {
    let mut c = ws.command();
    c.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every run's output, with where a token may show (the stdout of its creation).
struct Transcript {
    ws: Workspace,
    env: Vec<(String, String)>,
    outputs: Vec<String>,
}

impl Transcript {
    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn args<'a>(&self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["-vv"];
        if !self.env.is_empty() {
            all.extend(["--metadata", "env:HF_META_DB"]);
        }
        all.extend(args);
        all
    }

    /// Runs `args` (with `-vv`), expecting `code`; keeps its output.
    fn run(&mut self, args: &[&str], stdin: &str, code: i32) -> Run {
        let r = run_stdin(&self.ws, &self.args(args), &self.env(), stdin);
        assert_eq!(r.code, code, "hushflow {args:?}\n{}", r.all());
        self.outputs.push(r.all());
        r
    }

    /// Runs `tokens create …`: its stdout is kept apart (it holds the token, once).
    fn create_token(&mut self, args: &[&str]) -> Run {
        let r = run_stdin(&self.ws, &self.args(args), &self.env(), "");
        assert_eq!(r.code, 0, "{}", r.all());
        self.outputs.push(r.stderr.clone());
        r
    }
}

fn users_and_tokens(backend: &str) {
    let pg = match backend {
        "postgres" => match Database::new("cli_access") {
            Some(db) => Some(db),
            None => return,
        },
        _ => None,
    };
    let ws = Workspace::new();
    let env = pg
        .as_ref()
        .map(|db| vec![("HF_META_DB".to_string(), db.url())])
        .unwrap_or_default();
    let mut t = Transcript {
        ws,
        env,
        outputs: Vec::new(),
    };
    if pg.is_some() {
        t.run(&["db", "migrate"], "", 0);
    }

    // A password is never taken from the command line, nor from a pipe without asking.
    let r = t.run(
        &[
            "users",
            "add",
            "ada",
            "--role",
            "admin",
            "--password",
            PASSWORD,
        ],
        "",
        2,
    );
    assert!(!r.all().contains(PASSWORD), "{}", r.all());
    let r = t.run(&["users", "add", "ada", "--role", "admin"], PASSWORD, 2);
    assert!(r.stderr.contains("--password-stdin"), "{}", r.stderr);
    let r = t.run(
        &["users", "add", "ada", "--role", "admin", "--password-stdin"],
        "Tiny7\n",
        2,
    );
    assert!(r.stderr.contains("too short"), "{}", r.stderr);

    t.run(
        &["users", "add", "ada", "--role", "admin", "--password-stdin"],
        &format!("{PASSWORD}\n"),
        0,
    );
    t.run(
        &[
            "users",
            "add",
            "vic",
            "--role",
            "viewer",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\r\n"),
        0,
    );
    let r = t.run(
        &[
            "users",
            "add",
            "vic",
            "--role",
            "viewer",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
        2,
    );
    assert!(r.stderr.contains("exists already"), "{}", r.stderr);
    t.run(&["users", "set-role", "vic", "--role", "user"], "", 0);
    t.run(
        &[
            "users",
            "grant",
            "vic",
            "--permission",
            "detokenize",
            "--pipeline",
            "contacts",
        ],
        "",
        0,
    );
    let r = t.run(&["users", "grant", "vic", "--pipeline", "contacts"], "", 0);
    assert!(
        r.stdout
            .contains("grants: only contacts; + detokenize on contacts"),
        "{}",
        r.stdout
    );
    let r = t.run(
        &["users", "grant", "vic", "--permission", "everything"],
        "",
        2,
    );
    assert!(r.stderr.contains("unknown permission"), "{}", r.stderr);
    let r = t.run(&["users", "list"], "", 0);
    assert!(
        r.stdout.contains("vic") && r.stdout.contains("user"),
        "{}",
        r.stdout
    );
    let r = t.run(&["users", "list", "--json"], "", 0);
    let users = json_lines(&r.stdout);
    assert_eq!(users.len(), 2);
    assert_eq!(users[1]["name"], "vic");
    assert_eq!(users[1]["role"], "user");
    assert_eq!(users[1]["grants"].as_array().unwrap().len(), 2);
    assert!(!r.stdout.contains("argon2"), "{}", r.stdout);
    t.run(
        &["users", "reset-password", "vic", "--password-stdin"],
        &format!("{NEW_PASSWORD}\n"),
        0,
    );
    t.run(&["users", "disable", "vic"], "", 0);
    t.run(&["users", "enable", "vic"], "", 0);
    let r = t.run(&["users", "remove", "ada"], "", 2);
    assert!(r.stderr.contains("last enabled Admin"), "{}", r.stderr);

    // Tokens: printed once, on stdout alone.
    let created = t.create_token(&[
        "tokens",
        "create",
        "--name",
        "ci",
        "--role",
        "user",
        "--expires",
        "30d",
    ]);
    let token = created.stdout.trim().to_string();
    assert!(token.starts_with("hf_"), "{}", created.stdout);
    assert!(
        created.stderr.contains("shown this once"),
        "{}",
        created.stderr
    );
    let created = t.create_token(&[
        "tokens",
        "create",
        "--name",
        "deploy",
        "--role",
        "viewer",
        "--expires",
        "never",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(created.stdout.trim()).unwrap();
    let token2 = json["token"].as_str().unwrap().to_string();
    assert_eq!(json["name"], "deploy");
    assert_eq!(json["expires_at"], serde_json::Value::Null);
    let r = t.run(
        &[
            "tokens",
            "create",
            "--name",
            "x",
            "--role",
            "user",
            "--expires",
            "soon",
        ],
        "",
        2,
    );
    assert!(r.stderr.contains("never"), "{}", r.stderr);
    let r = t.run(&["tokens", "list", "--json"], "", 0);
    let tokens = json_lines(&r.stdout);
    assert_eq!(tokens.len(), 2);
    assert!(tokens.iter().all(|t| t["state"] == "active"));
    t.run(&["tokens", "revoke", "ci"], "", 0);
    let r = t.run(&["tokens", "list"], "", 0);
    assert!(r.stdout.contains("revoked"), "{}", r.stdout);
    t.run(&["tokens", "revoke", "ci"], "", 2);
    t.run(&["users", "remove", "vic"], "", 0);

    // No output shows a password or a token; -vv neither.
    let secret_of = |token: &str| token[token.len() - 43..].to_string();
    for out in &t.outputs {
        for canary in [
            PASSWORD,
            NEW_PASSWORD,
            &token,
            &token2,
            &secret_of(&token),
            &secret_of(&token2),
        ] {
            assert!(!out.contains(canary), "{canary} shown in:\n{out}");
        }
    }
    assert!(t.outputs.iter().any(|o| o.contains("DEBUG")), "-vv logs");

    // The state directory and the store hold digests only.
    let mut stored: Vec<(std::path::PathBuf, Vec<u8>)> = t.ws.bytes_under(&t.ws.state());
    if let Some(db) = &pg {
        let mut client = db.client();
        let mut dump = String::new();
        for table in ["hf_users", "hf_api_tokens", "hf_sessions", "hf_user_grants"] {
            for row in client
                .query(&format!("SELECT row_to_json(t)::text FROM {table} t"), &[])
                .unwrap()
            {
                dump.push_str(row.get::<_, &str>(0));
                dump.push('\n');
            }
        }
        assert!(dump.contains("$argon2id$v=19$m=19456,t=2,p=1$"), "{dump}");
        stored.push(("postgres".into(), dump.into_bytes()));
    }
    let all: Vec<u8> = stored.iter().flat_map(|(_, b)| b.clone()).collect();
    for canary in [
        PASSWORD,
        NEW_PASSWORD,
        &secret_of(&token),
        &secret_of(&token2),
    ] {
        for (path, bytes) in &stored {
            assert!(!contains(bytes, canary), "{canary} in {}", path.display());
        }
    }
    let digest = hex::encode(sha2::Sha256::digest(secret_of(&token2).as_bytes()));
    assert!(contains(&all, &digest), "the token's digest is stored");
    if pg.is_none() {
        assert!(contains(&all, "$argon2id$v=19$m=19456,t=2,p=1$"));
    }

    // Every change is in the audit log, by the OS user.
    let r = t.run(&["audit", "list", "--json"], "", 0);
    let actions: Vec<String> = json_lines(&r.stdout)
        .iter()
        .map(|r| r["action"].as_str().unwrap_or("").to_string())
        .collect();
    for action in [
        "users.add",
        "users.set-role",
        "users.grant",
        "users.reset-password",
        "users.disable",
        "users.enable",
        "users.remove",
        "tokens.create",
        "tokens.revoke",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn users_and_tokens_keep_no_secret_on_sqlite() {
    users_and_tokens("sqlite");
}

#[test]
fn users_and_tokens_keep_no_secret_on_postgres() {
    users_and_tokens("postgres");
}
