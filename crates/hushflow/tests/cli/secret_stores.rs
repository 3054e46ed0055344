//! The hashing key from a real Vault (OpenBao) and a real AWS Secrets Manager (moto): the
//! pipeline names `vault:` and `aws-sm:` references, `validate` and `run -vv` resolve them,
//! and neither the key (as stored and decoded), nor the Vault token, nor the AWS secret access
//! key appears in stdout, stderr, the results or the state directory. A reference to a missing
//! secret fails validation, naming the reference and the reason.

use hushflow_test_support::service::{BAO_ROOT_TOKEN, Service};

use crate::common::*;

/// The key as the store holds it (base64) and as it is used (the decoded bytes).
const SECRET: &str = "Y2FuYXJ5LXN0b3JlLTNlOGQwZjdhOTFiNDRjNmUtc2VjcmV0LWtleQ==";
const SECRET_BYTES: &str = "canary-store-3e8d0f7a91b44c6e-secret-key";
/// A Vault token and an AWS secret key that must not be printed either.
const VAULT_TOKEN: &str = "canaryvaulttoken4c2e9d71";
const AWS_SECRET_KEY: &str = "canaryAwsSecretKey0b6f3d5e8a1c";

fn workspace(reference: &str) -> Workspace {
    let ws = Workspace::new();
    let mut data = String::from("id,email,country,notes\n");
    for i in 1..=20 {
        data.push_str(&format!("{i},user{i}@example.com,DE,note {i}\n"));
    }
    ws.write("data/contacts.csv", data);
    ws.write(
        "p.toml",
        pipeline(CSV_SINK).replace("keyring:pepper", reference),
    );
    ws
}

/// Validates and runs with `-vv` and trace logging, then checks every output and file for the
/// canaries; returns the hashed results.
fn run_and_check(ws: &Workspace, env: &[(&str, &str)]) -> String {
    let mut env = env.to_vec();
    env.push(("HUSHFLOW_LOG", "trace"));
    let mut outputs = Vec::new();
    for args in [&["validate", "p.toml"][..], &["-vv", "run", "p.toml"]] {
        let r = ws.run_with(args, &env);
        assert_eq!(r.code, 0, "{args:?}: {}", r.all());
        outputs.push(r.all());
    }
    let canaries = [SECRET, SECRET_BYTES, VAULT_TOKEN, AWS_SECRET_KEY];
    for out in &outputs {
        for c in canaries {
            assert!(!out.contains(c), "{c} in output:\n{out}");
        }
    }
    let results = std::fs::read_to_string(ws.path("out/leads.csv")).unwrap();
    for (path, bytes) in ws.bytes_under(&ws.state()) {
        for c in canaries {
            assert!(!contains(&bytes, c), "{c} in {}", path.display());
        }
    }
    for c in canaries {
        assert!(!results.contains(c));
    }
    results
}

#[test]
fn a_key_from_vault_resolves_and_is_never_printed() {
    let Some(bao) = Service::bao("cli_vault") else {
        return;
    };
    let root = [("X-Vault-Token", BAO_ROOT_TOKEN)];
    let (status, body) = bao.request(
        "POST",
        "/v1/secret/data/crm",
        &root,
        &format!(r#"{{"data":{{"pepper":"{SECRET}"}}}}"#),
    );
    assert_eq!(status, 200, "{body}");
    // A token with a distinctive id, so that a printed token would be found.
    let (status, body) = bao.request(
        "POST",
        "/v1/auth/token/create",
        &root,
        &format!(r#"{{"id":"{VAULT_TOKEN}","policies":["root"]}}"#),
    );
    assert_eq!(status, 200, "{body}");

    let ws = workspace("vault:secret/data/crm#pepper");
    let addr = bao.url();
    let env = [("VAULT_ADDR", addr.as_str()), ("VAULT_TOKEN", VAULT_TOKEN)];
    let from_vault = run_and_check(&ws, &env);

    // The same key from the environment hashes the same.
    let plain = workspace("env:HF_TEST_PEPPER");
    let r = plain.run_with(&["run", "p.toml"], &[("HF_TEST_PEPPER", SECRET)]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        from_vault,
        std::fs::read_to_string(plain.path("out/leads.csv")).unwrap()
    );

    // A missing field and a missing secret: refused at validation, named, not printed.
    for (reference, reason) in [
        ("vault:secret/data/crm#nope", "not found"),
        ("vault:secret/data/none#pepper", "not found"),
    ] {
        let ws = workspace(reference);
        let r = ws.run_with(&["validate", "p.toml"], &env);
        assert_eq!(r.code, 2, "{}", r.all());
        assert!(
            r.stderr.contains(&format!("{reference}: {reason}")),
            "{}",
            r.stderr
        );
        assert!(!r.all().contains(VAULT_TOKEN) && !r.all().contains(SECRET));
    }

    // Without VAULT_ADDR the error says what to set.
    let r = ws.run_with(&["validate", "p.toml"], &[("VAULT_TOKEN", VAULT_TOKEN)]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("VAULT_ADDR is not set"), "{}", r.stderr);
}

#[test]
fn a_key_from_aws_secrets_manager_resolves_and_is_never_printed() {
    let Some(moto) = Service::moto("cli_aws_sm") else {
        return;
    };
    // This moto does not check signatures: any credential scope routes the setup call.
    let (status, body) = moto.request(
        "POST",
        "/",
        &[
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", "secretsmanager.CreateSecret"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDSETUP/20260101/eu-west-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
            ),
        ],
        &format!(r#"{{"Name":"prod/crm","SecretString":"{{\"pepper\":\"{SECRET}\"}}"}}"#),
    );
    assert_eq!(status, 200, "{body}");

    let ws = workspace("aws-sm:prod/crm#pepper");
    let url = moto.url();
    let env = [
        ("AWS_ENDPOINT_URL", url.as_str()),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", AWS_SECRET_KEY),
    ];
    run_and_check(&ws, &env);

    let ws = workspace("aws-sm:prod/none#pepper");
    let r = ws.run_with(&["validate", "p.toml"], &env);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("aws-sm:prod/none#pepper: not found"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains(AWS_SECRET_KEY));
}

#[test]
fn a_keyring_under_a_transit_wrapped_master_key_opens_and_survives_rotation() {
    let Some(bao) = Service::bao("cli_transit") else {
        return;
    };
    let root = [("X-Vault-Token", BAO_ROOT_TOKEN)];
    for (path, body) in [
        (
            "/v1/sys/mounts/transit",
            r#"{"type":"transit"}"#.to_string(),
        ),
        ("/v1/transit/keys/hushflow", "{}".to_string()),
        ("/v1/transit/keys/other", "{}".to_string()),
        (
            "/v1/auth/token/create",
            format!(r#"{{"id":"{VAULT_TOKEN}","policies":["root"]}}"#),
        ),
    ] {
        let (status, answer) = bao.request("POST", path, &root, &body);
        assert!((200..300).contains(&status), "{path}: {answer}");
    }
    let ws = workspace("keyring:pepper");
    let addr = bao.url();
    let env = [
        ("HUSHFLOW_MASTER_KEY", "vault-transit:hushflow"),
        ("VAULT_ADDR", addr.as_str()),
        ("VAULT_TOKEN", VAULT_TOKEN),
    ];
    let run = |args: &[&str], env: &[(&str, &str)], code: i32| {
        let r = ws.run_with(args, env);
        assert_eq!(r.code, code, "{args:?}: {}", r.all());
        assert!(!r.all().contains(VAULT_TOKEN), "{}", r.all());
        r
    };
    run(&["keys", "create", "pepper"], &env, 0);
    let wrapped = std::fs::read_to_string(ws.state().join("master-key.wrapped")).unwrap();
    assert!(wrapped.contains("vault-transit:hushflow") && wrapped.contains("vault:v1:"));
    let r = run(&["-vv", "run", "p.toml"], &env, 0);
    assert!(!r.all().contains("not sealed"), "{}", r.all());
    let before = std::fs::read_to_string(ws.path("out/leads.csv")).unwrap();

    // Another wrapping key does not open it, and says why.
    let other = [env[0], env[1], env[2]].map(|(k, v)| {
        if k == "HUSHFLOW_MASTER_KEY" {
            (k, "vault-transit:other")
        } else {
            (k, v)
        }
    });
    let r = run(&["keys", "list"], &other, 1);
    assert!(
        r.stderr
            .contains("is wrapped by vault-transit:hushflow, and the master key names another"),
        "{}",
        r.stderr
    );

    // Rotate the wrapping key, rewrap, retire the old version: the keyring and its hashes are
    // the same.
    let (status, answer) = bao.request("POST", "/v1/transit/keys/hushflow/rotate", &root, "{}");
    assert!((200..300).contains(&status), "{answer}");
    run(&["keys", "rewrap-master-key"], &env, 0);
    let rewrapped = std::fs::read_to_string(ws.state().join("master-key.wrapped")).unwrap();
    assert!(rewrapped.contains("vault:v2:"), "{rewrapped}");
    let (status, answer) = bao.request(
        "POST",
        "/v1/transit/keys/hushflow/config",
        &root,
        r#"{"min_decryption_version":2}"#,
    );
    assert!((200..300).contains(&status), "{answer}");
    run(&["run", "p.toml"], &env, 0);
    assert_eq!(
        std::fs::read_to_string(ws.path("out/leads.csv")).unwrap(),
        before
    );
    let audit = run(&["audit", "list"], &env, 0);
    assert!(
        audit.stdout.contains("keys.rewrap-master-key"),
        "{}",
        audit.stdout
    );
}

/// `hushflow check` reports every secret reference of the pipeline: `ok`, or the reason it
/// does not resolve (permission denied, not found, sealed), exits 1 when any fails, and prints
/// no value, token or key at `-vv` with trace logging, whether the references resolve or not.
#[test]
fn check_reports_each_reference_without_its_value() {
    let Some(bao) = Service::bao("cli_check") else {
        return;
    };
    let root = [("X-Vault-Token", BAO_ROOT_TOKEN)];
    for (path, body) in [
        (
            "/v1/secret/data/crm",
            format!(r#"{{"data":{{"pepper":"{SECRET}"}}}}"#),
        ),
        (
            "/v1/secret/data/hr",
            format!(r#"{{"data":{{"pepper":"{SECRET}"}}}}"#),
        ),
        (
            "/v1/sys/policies/acl/crm-only",
            // It may read the connections path too, so `conn:` gets a "not found" there.
            r#"{"policy":"path \"secret/data/crm\" { capabilities = [\"read\"] }\npath \"secret/data/connections/*\" { capabilities = [\"read\"] }"}"#.to_string(),
        ),
        (
            "/v1/auth/token/create",
            format!(r#"{{"id":"{VAULT_TOKEN}","policies":["crm-only"]}}"#),
        ),
    ] {
        let (status, answer) = bao.request("POST", path, &root, &body);
        assert!((200..300).contains(&status), "{path}: {answer}");
    }
    let addr = bao.url();
    let env = [
        ("VAULT_ADDR", addr.as_str()),
        ("VAULT_TOKEN", VAULT_TOKEN),
        ("HUSHFLOW_CONN_PEPPER", SECRET),
        ("HUSHFLOW_LOG", "trace"),
    ];
    let canaries = [SECRET, SECRET_BYTES, VAULT_TOKEN];
    let no_canary = |out: &str| {
        for c in canaries {
            assert!(!out.contains(c), "{c} in output:\n{out}");
        }
    };
    let ws = workspace("vault:secret/data/crm#pepper");
    std::fs::create_dir_all(ws.path("out")).unwrap();
    let with_keys = |country: &str, notes: &str| {
        pipeline(CSV_SINK)
            .replace("keyring:pepper", "vault:secret/data/crm#pepper")
            .replace(
                "fields.country = \"keep\"",
                &format!("fields.country = {{ hash = \"hmac-sha256\", key = \"{country}\" }}"),
            )
            .replace(
                "fields.notes = \"drop\"",
                &format!("fields.notes = {{ hash = \"hmac-sha256\", key = \"{notes}\" }}"),
            )
    };

    // Every reference resolves: each is reported ok, and the check goes on to the connections.
    ws.write(
        "p.toml",
        with_keys("conn:pepper", "vault:secret/crm#pepper"),
    );
    let r = ws.run_with(&["-vv", "check", "p.toml"], &env);
    assert_eq!(r.code, 0, "{}", r.all());
    no_canary(&r.all());
    for line in [
        "secret    policy.fields.email.key  ok  vault:secret/data/crm#pepper",
        "secret    policy.fields.country.key  ok  conn:pepper",
        "secret    policy.fields.notes.key  ok  vault:secret/crm#pepper",
        "checked",
    ] {
        assert!(r.stdout.contains(line), "{line}:\n{}", r.stdout);
    }

    // A denied path and a missing connection: each named with its reason, all reported.
    ws.write(
        "p.toml",
        with_keys("vault:secret/data/hr#pepper", "conn:nowhere"),
    );
    let r = ws.run_with(&["-vv", "check", "p.toml"], &env);
    assert_eq!(r.code, 1, "{}", r.all());
    no_canary(&r.all());
    for line in [
        "secret    policy.fields.email.key  ok  vault:secret/data/crm#pepper",
        "secret    policy.fields.country.key  permission denied  vault:secret/data/hr#pepper: permission denied",
        "secret    policy.fields.notes.key  not found  conn:nowhere: not found: looked in the environment (HUSHFLOW_CONN_NOWHERE)",
    ] {
        assert!(r.stdout.contains(line), "{line}:\n{}", r.stdout);
    }
    assert!(
        r.stderr.contains("2 of 3 secret references do not resolve"),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("checked"), "{}", r.stdout);

    // A sealed Vault: its references say "sealed"; the environment's still resolve.
    let (status, answer) = bao.request("POST", "/v1/sys/seal", &root, "");
    assert_eq!(status, 204, "{answer}");
    ws.write(
        "p.toml",
        with_keys("conn:pepper", "vault:secret/crm#pepper"),
    );
    let r = ws.run_with(&["-vv", "check", "p.toml"], &env);
    assert_eq!(r.code, 1, "{}", r.all());
    no_canary(&r.all());
    for line in [
        "secret    policy.fields.email.key  sealed  vault:secret/data/crm#pepper: sealed",
        "secret    policy.fields.country.key  ok  conn:pepper",
    ] {
        assert!(r.stdout.contains(line), "{line}:\n{}", r.stdout);
    }
}

/// `hushflow check` on a DAG file reports the references of every task (sync keys and
/// connections, a sql task's database) and the failure webhook, before any task is checked
/// further, and fails naming each that does not resolve.
#[test]
fn check_reports_every_task_of_a_dag() {
    let ws = Workspace::new();
    ws.write("data/contacts.csv", "id,email\n1,a@example.com\n");
    ws.write(
        "dag.toml",
        r#"
[pipeline]
name = "nightly"
key = "id"
on_failure_webhook = "conn:hook"

[[task]]
name = "extract"
source = { type = "csv", path = "data/contacts.csv" }
policy = { fields = { id = "keep", email = { hash = "hmac-sha256", key = "env:HF_CHECK_PEPPER" } } }
sink = { type = "jsonl", path = "out/leads.jsonl" }

[[task]]
name = "count"
type = "sql"
depends_on = ["extract"]
database = "conn:warehouse"
sql = "SELECT 1"
"#,
    );
    let env = [
        ("HF_CHECK_PEPPER", SECRET),
        (
            "HUSHFLOW_CONN_HOOK",
            "https://hooks.example/T0/canary-hook-5e1",
        ),
        ("HUSHFLOW_LOG", "trace"),
    ];
    let r = ws.run_with(&["-vv", "check", "dag.toml"], &env);
    assert_eq!(r.code, 1, "{}", r.all());
    for line in [
        "secret    pipeline.on_failure_webhook  ok  conn:hook",
        "secret    tasks.extract.policy.fields.email.key  ok  env:HF_CHECK_PEPPER",
        "secret    tasks.count.database  not found  conn:warehouse: not found: looked in the environment (HUSHFLOW_CONN_WAREHOUSE)",
    ] {
        assert!(r.stdout.contains(line), "{line}:\n{}", r.stdout);
    }
    assert!(
        r.stderr.contains("1 of 3 secret references do not resolve"),
        "{}",
        r.stderr
    );
    for c in [SECRET, SECRET_BYTES, "canary-hook-5e1"] {
        assert!(!r.all().contains(c), "{c} in output:\n{}", r.all());
    }
}
