//! Vault logins that outlive their tokens, against a real OpenBao: Kubernetes service-account
//! login, and renewal of short-lived renewable tokens.
//!
//! OpenBao's `kubernetes` auth method checks every service-account token with the cluster's
//! TokenReview API, so it cannot run without a cluster. The `jwt` auth method, mounted at path
//! `kubernetes` and given the public key that signs the tokens, validates them offline and
//! answers the same call the provider makes for Kubernetes: `POST auth/kubernetes/login` with
//! `{"role", "jwt"}`, and an `auth` block with the token and its lease. The test signs
//! service-account-shaped JWTs (ES256) itself.
#![cfg(feature = "vault")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hushflow_secret_stores::vault::{VaultAuth, VaultConfig, VaultProvider};
use hushflow_secret_stores::{Env, Reason, StoreError};
use hushflow_secrets::{SecretError, SecretProvider, SecretValue};
use hushflow_test_support::service::{BAO_ROOT_TOKEN, Service};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

const CANARY: &str = "canary-vault-login-3a9f";
const SUBJECT: &str = "system:serviceaccount:crm:hushflow";

fn call(bao: &Service, path: &str, body: Value) -> Value {
    let (status, text) = bao.request(
        "POST",
        &format!("/v1/{path}"),
        &[("X-Vault-Token", BAO_ROOT_TOKEN)],
        &body.to_string(),
    );
    assert!((200..300).contains(&status), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A secret and a policy that may read it.
fn seed(bao: &Service) {
    call(bao, "secret/data/crm", json!({"data": {"token": CANARY}}));
    call(
        bao,
        "sys/policies/acl/crm-read",
        json!({"policy": "path \"secret/data/crm\" { capabilities = [\"read\"] }"}),
    );
}

/// A P-256 key that signs the service-account tokens.
struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Signer {
    fn new() -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        Signer { key, rng }
    }

    /// The public key as a PEM SubjectPublicKeyInfo: the fixed DER prefix of a P-256 key, then
    /// the uncompressed point.
    fn public_pem(&self) -> String {
        let mut der = hex_bytes("3059301306072a8648ce3d020106082a8648ce3d030107034200");
        der.extend_from_slice(self.key.public_key().as_ref());
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n")
    }

    /// A service-account token for `SUBJECT`, valid until `exp` seconds from now (negative:
    /// already expired).
    fn jwt(&self, exp: i64) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let b64 = |v: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
        };
        let head = b64(&json!({"alg": "ES256", "typ": "JWT"}));
        let claims = b64(&json!({
            "iss": "kubernetes/serviceaccount",
            "sub": SUBJECT,
            "aud": ["vault"],
            "iat": now - 10,
            "nbf": now - 10,
            "exp": now + exp,
        }));
        let input = format!("{head}.{claims}");
        let sig = self.key.sign(&self.rng, input.as_bytes()).unwrap();
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig.as_ref());
        format!("{input}.{sig}")
    }
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// Mounts `jwt` at `auth/kubernetes`, trusting `signer`, with role `sync` bound to `SUBJECT`
/// and giving renewable tokens of `ttl` up to `max_ttl`.
fn kubernetes_mount(bao: &Service, signer: &Signer, ttl: &str, max_ttl: &str) {
    call(bao, "sys/auth/kubernetes", json!({"type": "jwt"}));
    call(
        bao,
        "auth/kubernetes/config",
        json!({"jwt_validation_pubkeys": [signer.public_pem()]}),
    );
    call(
        bao,
        "auth/kubernetes/role/sync",
        json!({
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_subject": SUBJECT,
            "bound_audiences": ["vault"],
            "token_policies": ["crm-read"],
            "token_ttl": ttl,
            "token_max_ttl": max_ttl,
        }),
    );
}

fn write_token(dir: &Path, jwt: &str) -> std::path::PathBuf {
    let path = dir.join("token");
    // Kubernetes mounts it 0644; the provider must accept that.
    std::fs::write(&path, format!("{jwt}\n")).unwrap();
    path
}

fn config(bao: &Service, auth: VaultAuth) -> VaultConfig {
    VaultConfig {
        addr: bao.url(),
        namespace: None,
        ca_file: None,
        timeout: Duration::from_secs(10),
        auth,
        kv_version: Some(2),
    }
}

fn store_error<'a>(e: &'a SecretError, secrets: &[&str]) -> &'a StoreError {
    let text = format!("{e} {e:?}");
    for s in secrets {
        assert!(!text.contains(s), "a secret leaked: {text}");
    }
    let SecretError::Provider { source, .. } = e else {
        panic!("not a provider error: {e}");
    };
    source.downcast_ref::<StoreError>().expect("a StoreError")
}

/// Resolves the canary every 300 ms for `span` (no cache), asserting each time.
fn keep_resolving(p: &VaultProvider, span: Duration) {
    let start = std::time::Instant::now();
    while start.elapsed() < span {
        let v = p.resolve("secret/crm#token").unwrap();
        assert_eq!(v.expose(), CANARY.as_bytes());
        p.clear_cache();
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn kubernetes_login_renews_its_token_past_the_ttl() {
    let Some(bao) = Service::bao("vault_kubernetes") else {
        return;
    };
    seed(&bao);
    let signer = Signer::new();
    // Tokens of 2 seconds, renewable for a minute: the run below outlives several TTLs.
    kubernetes_mount(&bao, &signer, "2s", "60s");
    let dir = tempfile::tempdir().unwrap();
    let jwt = signer.jwt(3600);
    let token_file = write_token(dir.path(), &jwt);

    // Configured from the environment, as in a pod.
    let p = VaultProvider::with_env(Env::from_pairs([
        ("VAULT_ADDR", bao.url()),
        ("HUSHFLOW_VAULT_KUBERNETES_ROLE", "sync".to_string()),
        (
            "HUSHFLOW_VAULT_KUBERNETES_TOKEN_FILE",
            token_file.display().to_string(),
        ),
    ]));
    keep_resolving(&p, Duration::from_secs(6));
    assert_eq!(p.logins(), 1, "renewed, not logged in again");
    assert!(p.renewals() >= 2, "renewals: {}", p.renewals());

    // A token that can no longer be renewed far enough (its maximum TTL is 3 seconds): the
    // provider logs in again, reading the token file anew, and keeps resolving.
    call(
        &bao,
        "auth/kubernetes/role/short",
        json!({
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_subject": SUBJECT,
            "bound_audiences": ["vault"],
            "token_policies": ["crm-read"],
            "token_ttl": "2s",
            "token_max_ttl": "3s",
        }),
    );
    let auth = VaultAuth::Kubernetes {
        mount: "kubernetes".into(),
        role: "short".into(),
        token_file: token_file.clone(),
    };
    let p = VaultProvider::with_config(config(&bao, auth));
    keep_resolving(&p, Duration::from_secs(7));
    assert!(p.logins() >= 2, "logins: {}", p.logins());

    // An expired service-account token is refused as a credential, and not quoted.
    let expired = signer.jwt(-60);
    let token_file = write_token(dir.path(), &expired);
    let auth = VaultAuth::Kubernetes {
        mount: "kubernetes".into(),
        role: "sync".into(),
        token_file,
    };
    let e = VaultProvider::with_config(config(&bao, auth))
        .resolve("secret/crm#token")
        .unwrap_err();
    let se = store_error(&e, &[CANARY, &expired, &jwt]);
    assert_eq!(se.reason, Reason::ExpiredToken, "{e}");
    assert!(
        e.to_string()
            .contains("Kubernetes login at auth/kubernetes as role sync was refused"),
        "{e}"
    );

    // A missing token file says which file and what to set.
    let auth = VaultAuth::Kubernetes {
        mount: "kubernetes".into(),
        role: "sync".into(),
        token_file: dir.path().join("missing"),
    };
    let e = VaultProvider::with_config(config(&bao, auth))
        .resolve("secret/crm#token")
        .unwrap_err();
    assert_eq!(store_error(&e, &[]).reason, Reason::NotConfigured, "{e}");
    assert!(
        e.to_string()
            .contains("HUSHFLOW_VAULT_KUBERNETES_TOKEN_FILE"),
        "{e}"
    );
}

#[test]
fn a_given_renewable_token_is_renewed_past_its_ttl() {
    let Some(bao) = Service::bao("vault_renew") else {
        return;
    };
    seed(&bao);
    let created = call(
        &bao,
        "auth/token/create",
        json!({"policies": ["crm-read"], "ttl": "2s", "explicit_max_ttl": "60s", "renewable": true}),
    );
    let token = created["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    let p = VaultProvider::with_config(config(
        &bao,
        VaultAuth::Token(SecretValue::new(token.clone().into_bytes())),
    ));
    keep_resolving(&p, Duration::from_secs(6));
    assert_eq!(p.logins(), 1);
    assert!(p.renewals() >= 2, "renewals: {}", p.renewals());

    // A token that is not renewed dies at its TTL: the error says so, without the token.
    let created = call(
        &bao,
        "auth/token/create",
        json!({"policies": ["crm-read"], "ttl": "2s", "renewable": false}),
    );
    let short = created["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    let p = VaultProvider::with_config(config(
        &bao,
        VaultAuth::Token(SecretValue::new(short.clone().into_bytes())),
    ));
    assert_eq!(
        p.resolve("secret/crm#token").unwrap().expose(),
        CANARY.as_bytes()
    );
    std::thread::sleep(Duration::from_millis(2500));
    p.clear_cache();
    let e = p.resolve("secret/crm#token").unwrap_err();
    assert_eq!(
        store_error(&e, &[CANARY, &short]).reason,
        Reason::ExpiredToken,
        "{e}"
    );
    assert_eq!(p.renewals(), 0);
}
