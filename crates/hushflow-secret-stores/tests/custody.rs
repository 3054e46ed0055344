//! Key custody against real servers: a data key wrapped by OpenBao Transit and by KMS (moto)
//! opens again, is refused under another wrapping key, and survives rotation of the wrapping
//! key (rewrapped without the data key changing).
#![cfg(all(feature = "vault", feature = "aws"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hushflow_secret_stores::custody::{self, Custodian};
use hushflow_secret_stores::{Env, Reason, Stores};
use hushflow_test_support::service::{BAO_ROOT_TOKEN, Service};

fn transit(name: &str) -> Custodian {
    Custodian::parse(&format!("vault-transit:{name}"))
        .unwrap()
        .unwrap()
}

#[test]
fn a_transit_wrapped_key_opens_refuses_another_key_and_survives_rotation() {
    let Some(bao) = Service::bao("custody_transit") else {
        return;
    };
    let root = [("X-Vault-Token", BAO_ROOT_TOKEN)];
    for (path, body) in [
        ("/v1/sys/mounts/transit", r#"{"type":"transit"}"#),
        ("/v1/transit/keys/hushflow", "{}"),
        ("/v1/transit/keys/other", "{}"),
    ] {
        let (status, answer) = bao.request("POST", path, &root, body);
        assert!((200..300).contains(&status), "{path}: {answer}");
    }
    let stores = Stores::with_env(Env::from_pairs([
        ("VAULT_ADDR", bao.url()),
        ("VAULT_TOKEN", BAO_ROOT_TOKEN.to_string()),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("master-key.wrapped");

    let key = custody::open_or_create(&transit("hushflow"), &stores, &file).unwrap();
    assert_eq!(key.len(), custody::DATA_KEY_LEN);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("vault:v1:"), "{text}");
    assert!(!text.contains(&hex(key.expose())));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Opens again to the same key.
    let again = custody::open_or_create(&transit("hushflow"), &stores, &file).unwrap();
    assert_eq!(again.expose(), key.expose());

    // Another custodian is refused by name; the ciphertext under another Transit key is
    // refused by Vault.
    let e = custody::open_or_create(&transit("other"), &stores, &file).unwrap_err();
    assert_eq!(e.reason, Reason::PermissionDenied, "{e}");
    assert!(
        e.to_string().contains("wrapped by vault-transit:hushflow"),
        "{e}"
    );
    let wrapped = serde_json::from_str::<serde_json::Value>(&text).unwrap()["wrapped"]
        .as_str()
        .unwrap()
        .to_string();
    let e = transit("other").unwrap(&stores, &wrapped).unwrap_err();
    assert!(!e.to_string().contains(&wrapped), "{e}");

    // Rotation: the old ciphertext still opens; rewrapping moves it to v2 and keeps the key.
    let (status, answer) = bao.request("POST", "/v1/transit/keys/hushflow/rotate", &root, "{}");
    assert!((200..300).contains(&status), "{answer}");
    custody::rewrap_file(&transit("hushflow"), &stores, &file).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("vault:v2:"), "{text}");
    // Only v2 may decrypt from now on: the rewrapped file does not need v1.
    let (status, answer) = bao.request(
        "POST",
        "/v1/transit/keys/hushflow/config",
        &root,
        r#"{"min_decryption_version":2}"#,
    );
    assert!((200..300).contains(&status), "{answer}");
    let after = custody::open_or_create(&transit("hushflow"), &stores, &file).unwrap();
    assert_eq!(after.expose(), key.expose());
    assert!(
        transit("hushflow").unwrap(&stores, &wrapped).is_err(),
        "v1 is retired"
    );

    // A sealed Vault: the error names the custodian and says "sealed".
    let (status, answer) = bao.request("POST", "/v1/sys/seal", &root, "");
    assert!((200..300).contains(&status), "{answer}");
    let e = custody::open_or_create(
        &transit("hushflow"),
        &Stores::with_env(Env::from_pairs([
            ("VAULT_ADDR", bao.url()),
            ("VAULT_TOKEN", BAO_ROOT_TOKEN.to_string()),
        ])),
        &file,
    )
    .unwrap_err();
    assert_eq!(e.reason, Reason::Sealed, "{e}");
    assert!(
        e.to_string()
            .starts_with("sealed: vault-transit:hushflow: "),
        "{e}"
    );
}

#[test]
fn a_kms_wrapped_key_opens_refuses_another_key_and_survives_rotation() {
    let Some(moto) = Service::moto("custody_kms") else {
        return;
    };
    let stores = Stores::with_env(Env::from_pairs([
        ("AWS_ENDPOINT_URL", moto.url()),
        ("AWS_REGION", "eu-west-1".to_string()),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "secret-key-example".to_string()),
    ]));
    let kms = hushflow_secret_stores::aws::AwsClient::kms(stores.env().clone());
    let create = |alias: &str| {
        let answer = kms
            .call(
                "CreateKey",
                None,
                &serde_json::json!({"Description": alias}),
            )
            .unwrap();
        let id = answer["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
        kms.call(
            "CreateAlias",
            None,
            &serde_json::json!({"AliasName": format!("alias/{alias}"), "TargetKeyId": id}),
        )
        .unwrap();
        id
    };
    let id = create("hushflow");
    create("other");
    let custodian = Custodian::parse(&format!("aws-kms:{id}")).unwrap().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("master-key.wrapped");

    let key = custody::open_or_create(&custodian, &stores, &file).unwrap();
    assert_eq!(key.len(), custody::DATA_KEY_LEN);
    let again = custody::open_or_create(&custodian, &stores, &file).unwrap();
    assert_eq!(again.expose(), key.expose());

    // The ciphertext names its key: decrypting it as another key is refused.
    let text = std::fs::read_to_string(&file).unwrap();
    let wrapped = serde_json::from_str::<serde_json::Value>(&text).unwrap()["wrapped"]
        .as_str()
        .unwrap()
        .to_string();
    let other = Custodian::parse("aws-kms:alias/other").unwrap().unwrap();
    let e = other.unwrap(&stores, &wrapped).unwrap_err();
    assert!(
        matches!(e.reason, Reason::PermissionDenied | Reason::NotFound),
        "{e}"
    );

    // Rotation (on demand) and ReEncrypt: the data key stays the same.
    kms.call("RotateKeyOnDemand", None, &serde_json::json!({"KeyId": id}))
        .unwrap();
    custody::rewrap_file(&custodian, &stores, &file).unwrap();
    assert_ne!(std::fs::read_to_string(&file).unwrap(), text);
    let after = custody::open_or_create(&custodian, &stores, &file).unwrap();
    assert_eq!(after.expose(), key.expose());
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
