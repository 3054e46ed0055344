//! `conn:NAME` against a real OpenBao and a real moto: the environment wins over Vault, Vault
//! over AWS Secrets Manager, AWS is asked when the others do not have it, a connection that is
//! nowhere names every place looked, and a sealed Vault stops the lookup with "sealed" instead of
//! falling through to AWS.
#![cfg(all(feature = "vault", feature = "aws"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hushflow_secret_stores::aws::AwsClient;
use hushflow_secret_stores::{Env, Reason, StoreError, Stores};
use hushflow_secrets::{Redactor, SecretError, SecretProviders, SecretResolver};
use hushflow_test_support::service::{BAO_ROOT_TOKEN, Service};
use serde_json::json;

const CANARY: &str = "canary-conn-7e21";

fn bao_write(bao: &Service, path: &str, body: serde_json::Value) {
    let (status, text) = bao.request(
        "POST",
        &format!("/v1/{path}"),
        &[("X-Vault-Token", BAO_ROOT_TOKEN)],
        &body.to_string(),
    );
    assert!((200..300).contains(&status), "{path}: {status} {text}");
}

fn resolve(stores: &Stores, reference: &str) -> Result<String, SecretError> {
    let mut providers = SecretProviders::new(None);
    stores.register(&mut providers);
    let resolver = SecretResolver::with_providers(Redactor::new(), providers);
    let r = resolver.parse(reference)?;
    resolver
        .resolve(&r)
        .map(|v| v.expose_str().unwrap().to_string())
}

fn reason(e: &SecretError) -> Reason {
    let text = format!("{e} {e:?}");
    assert!(!text.contains(CANARY), "a secret leaked: {text}");
    let SecretError::Provider { source, .. } = e else {
        panic!("not a provider error: {e}");
    };
    source
        .downcast_ref::<StoreError>()
        .expect("a StoreError")
        .reason
}

#[test]
fn connections_are_looked_up_in_order() {
    let Some(bao) = Service::bao("conn_order") else {
        return;
    };
    let Some(moto) = Service::moto("conn_order") else {
        return;
    };
    // `crm`: in all three; `warehouse`: in Vault and AWS; `billing`: in AWS only (a JSON
    // secret as Airflow stores them); `ledger`: in AWS as a bare URL.
    for (name, uri) in [("crm", "vault-crm"), ("warehouse", "vault-warehouse")] {
        bao_write(
            &bao,
            &format!("secret/data/connections/{name}"),
            json!({"data": {"conn_uri": format!("postgres://u:{CANARY}@{uri}/db")}}),
        );
    }
    let aws_env = [
        ("AWS_ENDPOINT_URL", moto.url()),
        ("AWS_REGION", "eu-west-1".to_string()),
        ("AWS_ACCESS_KEY_ID", "AKIDCONNTEST".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "conn-test-secret".to_string()),
    ];
    let sm = AwsClient::secrets_manager(Env::from_pairs(aws_env.clone()));
    for (name, value) in [
        (
            "crm",
            json!({"conn_uri": "postgres://aws-crm/db"}).to_string(),
        ),
        (
            "warehouse",
            json!({"conn_uri": "postgres://aws-warehouse/db"}).to_string(),
        ),
        (
            "billing",
            json!({"conn_uri": format!("postgres://u:{CANARY}@aws-billing/db")}).to_string(),
        ),
        ("ledger", format!("postgres://u:{CANARY}@aws-ledger/db")),
    ] {
        sm.call(
            "CreateSecret",
            None,
            &json!({"Name": format!("hushflow/connections/{name}"), "SecretString": value}),
        )
        .unwrap();
    }

    let mut settings: Vec<(&str, String)> = aws_env.to_vec();
    settings.extend([
        ("VAULT_ADDR", bao.url()),
        ("VAULT_TOKEN", BAO_ROOT_TOKEN.to_string()),
        ("HUSHFLOW_CONN_CRM", "postgres://env-crm/db".to_string()),
    ]);
    let stores = Stores::with_env(Env::from_pairs(settings.clone()));

    assert_eq!(
        resolve(&stores, "conn:crm").unwrap(),
        "postgres://env-crm/db"
    );
    assert!(
        resolve(&stores, "conn:warehouse")
            .unwrap()
            .ends_with("@vault-warehouse/db")
    );
    assert!(
        resolve(&stores, "conn:billing")
            .unwrap()
            .ends_with("@aws-billing/db")
    );
    assert!(
        resolve(&stores, "conn:ledger")
            .unwrap()
            .ends_with("@aws-ledger/db")
    );

    let e = resolve(&stores, "conn:nowhere").unwrap_err();
    assert_eq!(reason(&e), Reason::NotFound, "{e}");
    let text = e.to_string();
    for place in [
        "conn:nowhere: not found: looked in the environment (HUSHFLOW_CONN_NOWHERE)",
        "Vault (secret/connections/nowhere#conn_uri)",
        "AWS Secrets Manager (hushflow/connections/nowhere)",
    ] {
        assert!(text.contains(place), "{text}");
    }

    // Without VAULT_ADDR, Vault is not consulted (and says so when nothing is found).
    let without_vault: Vec<(&str, String)> = settings
        .iter()
        .filter(|(k, _)| *k != "VAULT_ADDR")
        .cloned()
        .collect();
    let stores_no_vault = Stores::with_env(Env::from_pairs(without_vault));
    assert_eq!(
        resolve(&stores_no_vault, "conn:warehouse").unwrap(),
        "postgres://aws-warehouse/db"
    );
    let e = resolve(&stores_no_vault, "conn:nowhere").unwrap_err();
    assert!(
        e.to_string()
            .contains("not consulted: Vault (VAULT_ADDR is not set)"),
        "{e}"
    );

    // A sealed Vault stops the lookup: `billing` is in AWS, but a sealed Vault might hold a
    // newer copy, so the answer is "sealed", not AWS's value. A fresh provider: no cache.
    bao_write(&bao, "sys/seal", json!({}));
    let stores = Stores::with_env(Env::from_pairs(settings));
    let e = resolve(&stores, "conn:billing").unwrap_err();
    assert_eq!(reason(&e), Reason::Sealed, "{e}");
    assert!(
        e.to_string()
            .starts_with("conn:billing: sealed: looking in Vault"),
        "{e}"
    );
    // The environment is still asked first.
    assert_eq!(
        resolve(&stores, "conn:crm").unwrap(),
        "postgres://env-crm/db"
    );
}
