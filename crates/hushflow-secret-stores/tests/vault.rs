//! `vault:` against a real OpenBao dev server (the Vault API): KV v2 and v1, token and AppRole
//! auth, a denied path, a revoked token, a sealed Vault, re-login when a token's lease ends.
//! Every error is checked for the canary secret and the tokens.
#![cfg(feature = "vault")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use hushflow_secret_stores::vault::{VaultAuth, VaultConfig, VaultProvider};
use hushflow_secret_stores::{Reason, StoreError};
use hushflow_secrets::{
    Redactor, SecretError, SecretProvider, SecretProviders, SecretRef, SecretResolver, SecretValue,
};
use hushflow_test_support::service::{BAO_ROOT_TOKEN, Service};
use serde_json::{Value, json};

const CANARY: &str = "canary-vault-5d1e8b";

/// A root-token client for setting the server up.
struct Admin {
    agent: ureq::Agent,
    url: String,
}

impl Admin {
    fn new(bao: &Service) -> Admin {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Admin {
            agent,
            url: bao.url(),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(BAO_ROOT_TOKEN, method, path, body)
    }

    fn call_as(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}/v1/{path}", self.url);
        let mut response = match method {
            "GET" => self.agent.get(&url).header("X-Vault-Token", token).call(),
            _ => self
                .agent
                .post(&url)
                .header("X-Vault-Token", token)
                .send(body.unwrap_or(json!({})).to_string()),
        }
        .unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, json) = self.call(method, path, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {json}"
        );
        json
    }
}

fn config(bao: &Service, auth: VaultAuth) -> VaultConfig {
    VaultConfig {
        addr: bao.url(),
        namespace: None,
        ca_file: None,
        timeout: Duration::from_secs(10),
        auth,
        kv_version: None,
    }
}

fn root(bao: &Service) -> VaultProvider {
    VaultProvider::with_config(config(
        bao,
        VaultAuth::Token(SecretValue::new(BAO_ROOT_TOKEN.as_bytes().to_vec())),
    ))
}

/// The store error behind a resolution error, after checking that no secret is in its text.
fn store_error<'a>(e: &'a SecretError, secrets: &[&str]) -> &'a StoreError {
    let text = e.to_string();
    let debug = format!("{e:?}");
    for s in secrets {
        assert!(
            !text.contains(s) && !debug.contains(s),
            "a secret leaked: {text} / {debug}"
        );
    }
    let SecretError::Provider { source, .. } = e else {
        panic!("not a provider error: {e}");
    };
    source.downcast_ref::<StoreError>().expect("a StoreError")
}

fn resolve(p: &VaultProvider, name: &str) -> Result<String, SecretError> {
    p.resolve(name)
        .map(|v| String::from_utf8(v.expose().to_vec()).unwrap())
}

#[test]
fn kv_v2_and_v1_resolve_by_path_and_field() {
    let Some(bao) = Service::bao("vault_kv") else {
        return;
    };
    let admin = Admin::new(&bao);
    admin.ok(
        "POST",
        "secret/data/crm",
        Some(json!({"data": {"token": CANARY, "port": 5432}})),
    );
    admin.ok(
        "POST",
        "sys/mounts/kv1",
        Some(json!({"type": "kv", "options": {"version": "1"}})),
    );
    admin.ok(
        "POST",
        "kv1/app",
        Some(json!({"password": format!("{CANARY}-v1")})),
    );

    let p = root(&bao);
    assert_eq!(resolve(&p, "secret/data/crm#token").unwrap(), CANARY);
    // The CLI's short form: the mount says it is KV v2, so `data/` is added.
    assert_eq!(resolve(&p, "secret/crm#token").unwrap(), CANARY);
    assert_eq!(resolve(&p, "secret/crm#port").unwrap(), "5432");
    assert_eq!(
        resolve(&p, "kv1/app#password").unwrap(),
        format!("{CANARY}-v1")
    );

    let e = resolve(&p, "secret/crm#missing").unwrap_err();
    let se = store_error(&e, &[CANARY, BAO_ROOT_TOKEN]);
    assert_eq!(se.reason, Reason::NotFound);
    assert!(
        e.to_string()
            .starts_with("vault:secret/crm#missing: not found"),
        "{e}"
    );
    assert!(e.to_string().contains("no field missing"), "{e}");

    let e = resolve(&p, "secret/nothing-here#token").unwrap_err();
    assert_eq!(store_error(&e, &[CANARY]).reason, Reason::NotFound, "{e}");
    let e = resolve(&p, "kv1/nothing#password").unwrap_err();
    assert_eq!(store_error(&e, &[CANARY]).reason, Reason::NotFound, "{e}");

    // The version can be given instead of looked up.
    let mut c = config(
        &bao,
        VaultAuth::Token(SecretValue::new(BAO_ROOT_TOKEN.into())),
    );
    c.kv_version = Some(2);
    assert_eq!(
        resolve(&VaultProvider::with_config(c), "secret/crm#token").unwrap(),
        CANARY
    );

    // Through a registry and resolver: the value is registered with the redactor.
    let mut providers = SecretProviders::new(None);
    providers.register(p.clone());
    let redactor = Redactor::new();
    let resolver = SecretResolver::with_providers(redactor.clone(), providers);
    let r = resolver.parse("vault:secret/data/crm#token").unwrap();
    assert_eq!(resolver.resolve(&r).unwrap().expose(), CANARY.as_bytes());
    let line = format!("connected with {CANARY}");
    assert!(!redactor.scrub(&line).contains(CANARY));
}

#[test]
fn resolved_fields_are_cached_until_cleared() {
    let Some(bao) = Service::bao("vault_cache") else {
        return;
    };
    let admin = Admin::new(&bao);
    admin.ok(
        "POST",
        "secret/data/rotating",
        Some(json!({"data": {"a": "first-1234", "b": "b-1234"}})),
    );
    let p = root(&bao);
    assert_eq!(resolve(&p, "secret/rotating#a").unwrap(), "first-1234");
    admin.ok(
        "POST",
        "secret/data/rotating",
        Some(json!({"data": {"a": "second-1234"}})),
    );
    // Served from the cache (one request for every field of one secret).
    assert_eq!(resolve(&p, "secret/rotating#a").unwrap(), "first-1234");
    assert_eq!(resolve(&p, "secret/rotating#b").unwrap(), "b-1234");
    p.clear_cache();
    assert_eq!(resolve(&p, "secret/rotating#a").unwrap(), "second-1234");
}

#[test]
fn a_denied_path_and_a_revoked_token_say_so() {
    let Some(bao) = Service::bao("vault_denied") else {
        return;
    };
    let admin = Admin::new(&bao);
    admin.ok(
        "POST",
        "secret/data/crm",
        Some(json!({"data": {"token": CANARY}})),
    );
    admin.ok(
        "POST",
        "secret/data/other",
        Some(json!({"data": {"token": CANARY}})),
    );
    admin.ok(
        "POST",
        "sys/policies/acl/crm-only",
        Some(json!({"policy": "path \"secret/data/crm\" { capabilities = [\"read\"] }"})),
    );
    let created = admin.ok(
        "POST",
        "auth/token/create",
        Some(json!({"policies": ["crm-only"], "ttl": "1h"})),
    );
    let token = created["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();

    let p = VaultProvider::with_config(config(
        &bao,
        VaultAuth::Token(SecretValue::new(token.clone().into_bytes())),
    ));
    assert_eq!(resolve(&p, "secret/data/crm#token").unwrap(), CANARY);
    let e = resolve(&p, "secret/data/other#token").unwrap_err();
    assert_eq!(
        store_error(&e, &[CANARY, &token]).reason,
        Reason::PermissionDenied,
        "{e}"
    );
    assert!(e.to_string().contains("permission denied"), "{e}");

    admin.ok("POST", "auth/token/revoke", Some(json!({"token": token})));
    p.clear_cache();
    let e = resolve(&p, "secret/data/crm#token").unwrap_err();
    assert_eq!(
        store_error(&e, &[CANARY, &token]).reason,
        Reason::ExpiredToken,
        "{e}"
    );
    assert!(e.to_string().contains("expired, revoked or invalid"), "{e}");
}

/// Writes `value` to a 0600 file and returns a `file:` reference to it.
fn secret_file(dir: &std::path::Path, name: &str, value: &str) -> SecretRef {
    let path = dir.join(name);
    std::fs::write(&path, value).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    SecretRef::file(path)
}

#[test]
fn approle_logs_in_and_logs_in_again_when_the_token_expires() {
    let Some(bao) = Service::bao("vault_approle") else {
        return;
    };
    let admin = Admin::new(&bao);
    admin.ok(
        "POST",
        "secret/data/crm",
        Some(json!({"data": {"token": CANARY}})),
    );
    admin.ok(
        "POST",
        "sys/policies/acl/crm-read",
        Some(
            json!({"policy": "path \"secret/data/crm\" { capabilities = [\"read\"] }\n\
                              path \"sys/internal/ui/mounts/*\" { capabilities = [\"read\"] }"}),
        ),
    );
    admin.ok("POST", "sys/auth/approle", Some(json!({"type": "approle"})));
    // Tokens that live 2 seconds: the run below outlives several of them.
    admin.ok(
        "POST",
        "auth/approle/role/sync",
        Some(json!({"token_policies": ["crm-read"], "token_ttl": "2s", "token_max_ttl": "2s"})),
    );
    let role_id = admin.ok("GET", "auth/approle/role/sync/role-id", None)["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret_id = admin.ok("POST", "auth/approle/role/sync/secret-id", None)["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_string();

    let dir = tempfile::tempdir().unwrap();
    let auth = VaultAuth::AppRole {
        mount: "approle".into(),
        role_id: secret_file(dir.path(), "role_id", &role_id),
        secret_id: secret_file(dir.path(), "secret_id", &secret_id),
    };
    let p = VaultProvider::with_config(config(&bao, auth));
    let redactor = Redactor::new();
    p.set_redactor(&redactor);
    for _ in 0..3 {
        assert_eq!(resolve(&p, "secret/crm#token").unwrap(), CANARY);
        p.clear_cache();
        std::thread::sleep(Duration::from_millis(2500));
    }
    // Each token died at its maximum TTL (renewal cannot extend it), so each use logged in.
    assert!(p.logins() >= 3, "logins: {}", p.logins());
    // The secret_id was registered with the redactor when it was resolved for the login.
    assert!(
        !redactor
            .scrub(&format!("x {secret_id} y"))
            .contains(&secret_id)
    );

    // A login token revoked mid-run (not expired by the clock): the 403 makes the provider log
    // in again once, and the resolution succeeds.
    admin.ok(
        "POST",
        "auth/approle/role/long",
        Some(json!({"token_policies": ["crm-read"], "token_ttl": "1h"})),
    );
    let long_role = admin.ok("GET", "auth/approle/role/long/role-id", None)["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    let long_secret =
        admin.ok("POST", "auth/approle/role/long/secret-id", None)["data"]["secret_id"]
            .as_str()
            .unwrap()
            .to_string();
    let auth = VaultAuth::AppRole {
        mount: "approle".into(),
        role_id: secret_file(dir.path(), "long_role_id", &long_role),
        secret_id: secret_file(dir.path(), "long_secret_id", &long_secret),
    };
    let p = VaultProvider::with_config(config(&bao, auth));
    assert_eq!(resolve(&p, "secret/crm#token").unwrap(), CANARY);
    admin.ok("POST", "sys/leases/revoke-prefix/auth/approle/login", None);
    p.clear_cache();
    assert_eq!(resolve(&p, "secret/crm#token").unwrap(), CANARY);

    // A wrong secret_id is refused as a credential, not quoted.
    let auth = VaultAuth::AppRole {
        mount: "approle".into(),
        role_id: secret_file(dir.path(), "role_id2", &role_id),
        secret_id: secret_file(
            dir.path(),
            "secret_id2",
            "00000000-0000-0000-0000-000000000000",
        ),
    };
    let e = resolve(
        &VaultProvider::with_config(config(&bao, auth)),
        "secret/crm#token",
    )
    .unwrap_err();
    let se = store_error(&e, &[CANARY, &secret_id, "00000000-0000"]);
    assert_eq!(se.reason, Reason::ExpiredToken, "{e}");
    assert!(
        e.to_string()
            .contains("AppRole login at auth/approle was refused"),
        "{e}"
    );
}

#[test]
fn a_sealed_vault_says_so() {
    let Some(bao) = Service::bao("vault_sealed") else {
        return;
    };
    let admin = Admin::new(&bao);
    admin.ok(
        "POST",
        "secret/data/crm",
        Some(json!({"data": {"token": CANARY}})),
    );
    admin.ok("POST", "sys/seal", None);
    let e = resolve(&root(&bao), "secret/data/crm#token").unwrap_err();
    assert_eq!(store_error(&e, &[CANARY]).reason, Reason::Sealed, "{e}");
    assert!(e.to_string().contains("sealed"), "{e}");
}

#[test]
fn an_unreachable_vault_and_missing_settings_say_so() {
    // A port nothing listens on (bound, then freed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = config_at(&format!("http://127.0.0.1:{port}"));
    c.timeout = Duration::from_secs(2);
    let e = resolve(&VaultProvider::with_config(c), "secret/crm#token").unwrap_err();
    assert_eq!(
        store_error(&e, &[BAO_ROOT_TOKEN]).reason,
        Reason::Unreachable,
        "{e}"
    );

    let e = resolve(
        &VaultProvider::with_config(config_at("http://vault.example:8200")),
        "secret/crm#token",
    )
    .unwrap_err();
    assert_eq!(store_error(&e, &[]).reason, Reason::Insecure, "{e}");

    let p = VaultProvider::with_env(hushflow_secret_stores::Env::from_pairs([(
        "VAULT_TOKEN",
        "x",
    )]));
    let e = resolve(&p, "secret/crm#token").unwrap_err();
    assert_eq!(store_error(&e, &[]).reason, Reason::NotConfigured, "{e}");
    assert!(e.to_string().contains("VAULT_ADDR is not set"), "{e}");
}

fn config_at(addr: &str) -> VaultConfig {
    VaultConfig {
        addr: addr.to_string(),
        namespace: None,
        ca_file: None,
        timeout: Duration::from_secs(10),
        auth: VaultAuth::Token(SecretValue::new(BAO_ROOT_TOKEN.as_bytes().to_vec())),
        kv_version: None,
    }
}

#[test]
fn a_namespace_is_sent_with_logins_and_reads() {
    let Some(bao) = Service::bao("vault_namespace") else {
        return;
    };
    let admin = Admin::new(&bao);
    admin.ok("POST", "sys/namespaces/team", Some(json!({})));
    // Setup inside the namespace: a KV v2 mount, a secret, an AppRole that may read it.
    let in_team = |method: &str, path: &str, body: Option<Value>| {
        let url = format!("{}/v1/{path}", bao.url());
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = match method {
            "GET" => agent
                .get(&url)
                .header("X-Vault-Token", BAO_ROOT_TOKEN)
                .header("X-Vault-Namespace", "team")
                .call(),
            _ => agent
                .post(&url)
                .header("X-Vault-Token", BAO_ROOT_TOKEN)
                .header("X-Vault-Namespace", "team")
                .send(body.unwrap_or(json!({})).to_string()),
        }
        .unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        assert!((200..300).contains(&status), "{path}: {status} {text}");
        serde_json::from_str::<Value>(&text).unwrap_or(Value::Null)
    };
    in_team(
        "POST",
        "sys/mounts/secret",
        Some(json!({"type": "kv", "options": {"version": "2"}})),
    );
    in_team(
        "POST",
        "secret/data/crm",
        Some(json!({"data": {"token": CANARY}})),
    );
    in_team(
        "POST",
        "sys/policies/acl/crm-read",
        Some(json!({"policy": "path \"secret/data/crm\" { capabilities = [\"read\"] }"})),
    );
    in_team("POST", "sys/auth/approle", Some(json!({"type": "approle"})));
    in_team(
        "POST",
        "auth/approle/role/sync",
        Some(json!({"token_policies": ["crm-read"], "token_ttl": "1h"})),
    );
    let role_id = in_team("GET", "auth/approle/role/sync/role-id", None)["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret_id = in_team("POST", "auth/approle/role/sync/secret-id", None)["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_string();

    let dir = tempfile::tempdir().unwrap();
    let approle = || VaultAuth::AppRole {
        mount: "approle".into(),
        role_id: secret_file(dir.path(), "role_id", &role_id),
        secret_id: secret_file(dir.path(), "secret_id", &secret_id),
    };
    let mut in_namespace = config(&bao, approle());
    in_namespace.namespace = Some("team".into());
    let p = VaultProvider::with_config(in_namespace);
    assert_eq!(resolve(&p, "secret/crm#token").unwrap(), CANARY);

    // Without the namespace the AppRole does not exist: the login is refused.
    let e = resolve(
        &VaultProvider::with_config(config(&bao, approle())),
        "secret/crm#token",
    )
    .unwrap_err();
    assert_eq!(
        store_error(&e, &[CANARY, &secret_id]).reason,
        Reason::ExpiredToken,
        "{e}"
    );
    // And the root token outside the namespace finds no such secret.
    let e = resolve(&root(&bao), "secret/crm#token").unwrap_err();
    assert_eq!(store_error(&e, &[CANARY]).reason, Reason::NotFound, "{e}");
}
