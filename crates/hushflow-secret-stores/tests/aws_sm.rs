//! `aws-sm:` against a real moto server that checks SigV4 signatures and IAM policies: the
//! secret resolves whole and by JSON key, with credentials from the environment and from a
//! profile of the shared credentials file; a wrong secret key, an unknown access key, a denied
//! secret and a missing one give clear errors that hold neither the canary nor the key.
#![cfg(feature = "aws")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use hushflow_secret_stores::aws::{AwsClient, SecretsManagerProvider};
use hushflow_secret_stores::{Env, Reason, StoreError};
use hushflow_secrets::{SecretError, SecretProvider};
use hushflow_test_support::service::Service;
use serde_json::json;

const CANARY: &str = "canary-aws-9b7c41";

/// An IAM Query call (form-encoded, XML answer). Used for the server's first, unchecked
/// requests, so the signature is a formality here (moto routes by its credential scope).
fn iam(moto: &Service, params: &[(&str, &str)]) -> String {
    let body: String = params
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .chain(["Version=2010-05-08".to_string()])
        .collect::<Vec<_>>()
        .join("&");
    let url = format!("{}/", moto.url());
    let identity = Credentials::new("AKIDSETUP", "setup", None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("iam")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let content_type = "application/x-www-form-urlencoded";
    let headers = [("content-type", content_type)];
    let signable = SignableRequest::new(
        "POST",
        url.as_str(),
        headers.iter().copied(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.post(&url).header("content-type", content_type);
    for (k, v) in instructions.headers() {
        req = req.header(k, v);
    }
    let mut response = req.send(body.as_bytes()).unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    assert_eq!(status, 200, "IAM setup call refused: {text}");
    text
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The text of `<tag>…</tag>` in `xml`.
fn xml_tag<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml.find(&open).unwrap() + open.len();
    let end = xml[start..].find(&format!("</{tag}>")).unwrap() + start;
    &xml[start..end]
}

/// An access key: its id and its secret.
type AccessKey = (String, String);

/// An IAM user with an inline policy, and its access key.
fn user(moto: &Service, name: &str, policy: serde_json::Value) -> AccessKey {
    iam(moto, &[("Action", "CreateUser"), ("UserName", name)]);
    iam(
        moto,
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", name),
            ("PolicyName", "policy"),
            ("PolicyDocument", &policy.to_string()),
        ],
    );
    let key = iam(moto, &[("Action", "CreateAccessKey"), ("UserName", name)]);
    (
        xml_tag(&key, "AccessKeyId").to_string(),
        xml_tag(&key, "SecretAccessKey").to_string(),
    )
}

/// A moto that checks signatures and policies, with a user allowed everything and one that may
/// not read secret values (moto checks policies by action, not by resource).
fn moto_with_users(test: &str) -> Option<(Service, AccessKey, AccessKey)> {
    // Three unchecked IAM calls per user; everything after is checked.
    let moto = Service::moto_checking_signatures(test, 6)?;
    let all = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
    });
    let no_values = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
        ]
    });
    let admin = user(&moto, "hushflow", all);
    let reader = user(&moto, "no-values", no_values);
    Some((moto, admin, reader))
}

fn env(moto: &Service, id: &str, secret: &str) -> Env {
    Env::from_pairs([
        ("AWS_ENDPOINT_URL", moto.url()),
        ("AWS_REGION", "eu-west-1".to_string()),
        ("AWS_ACCESS_KEY_ID", id.to_string()),
        ("AWS_SECRET_ACCESS_KEY", secret.to_string()),
    ])
}

fn provider(env: Env) -> SecretsManagerProvider {
    // No cache: each resolution below is a signed request of its own.
    SecretsManagerProvider::with_env(env, Duration::ZERO)
}

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

fn resolve(p: &SecretsManagerProvider, name: &str) -> Result<String, SecretError> {
    p.resolve(name)
        .map(|v| String::from_utf8(v.expose().to_vec()).unwrap())
}

#[test]
fn signed_requests_resolve_whole_secrets_and_json_keys() {
    let Some((moto, (id, secret), denied)) = moto_with_users("aws_sm_resolve") else {
        return;
    };
    let env = env(&moto, &id, &secret);
    let sm = AwsClient::secrets_manager(env.clone());
    // Created with a signed, checked request: the signer is right or this fails.
    sm.call(
        "CreateSecret",
        None,
        &json!({"Name": "prod/crm", "SecretString": json!({"token": CANARY, "port": 5432}).to_string()}),
    )
    .unwrap();
    sm.call(
        "CreateSecret",
        None,
        &json!({"Name": "prod/plain", "SecretString": CANARY}),
    )
    .unwrap();

    let p = provider(env.clone());
    assert_eq!(resolve(&p, "prod/crm#token").unwrap(), CANARY);
    assert_eq!(resolve(&p, "prod/crm#port").unwrap(), "5432");
    assert_eq!(resolve(&p, "prod/plain").unwrap(), CANARY);

    let e = resolve(&p, "prod/crm#missing").unwrap_err();
    assert_eq!(
        store_error(&e, &[CANARY, &secret]).reason,
        Reason::NotFound,
        "{e}"
    );
    let e = resolve(&p, "prod/plain#token").unwrap_err();
    assert_eq!(
        store_error(&e, &[CANARY, &secret]).reason,
        Reason::NotFound,
        "{e}"
    );
    let e = resolve(&p, "prod/nothing").unwrap_err();
    assert_eq!(
        store_error(&e, &[CANARY, &secret]).reason,
        Reason::NotFound,
        "{e}"
    );
    assert!(
        e.to_string().starts_with("aws-sm:prod/nothing: not found"),
        "{e}"
    );

    // A user whose policy denies reading secret values.
    let e = resolve(
        &provider(self::env(&moto, &denied.0, &denied.1)),
        "prod/plain",
    )
    .unwrap_err();
    assert_eq!(
        store_error(&e, &[CANARY, &secret, &denied.1]).reason,
        Reason::PermissionDenied,
        "{e}"
    );
    assert!(e.to_string().contains("AccessDenied"), "{e}");

    // A wrong secret key: the signature is refused.
    let wrong = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzzzzzzzzzz";
    let e = resolve(&provider(self::env(&moto, &id, wrong)), "prod/crm#token").unwrap_err();
    assert_eq!(
        store_error(&e, &[CANARY, &secret, wrong]).reason,
        Reason::ExpiredToken,
        "{e}"
    );
    assert!(e.to_string().contains("signature was refused"), "{e}");

    // An access key the server does not know.
    let e = resolve(
        &provider(self::env(&moto, "AKIAUNKNOWN000000000", &secret)),
        "prod/crm#token",
    )
    .unwrap_err();
    assert_eq!(
        store_error(&e, &[CANARY, &secret]).reason,
        Reason::ExpiredToken,
        "{e}"
    );

    // Credentials from a profile of the shared credentials file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    std::fs::write(
        &file,
        format!("[default]\naws_access_key_id = AKIAWRONG\naws_secret_access_key = x\n\n[ci]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"),
    )
    .unwrap();
    let from_file = Env::from_pairs([
        ("AWS_ENDPOINT_URL", moto.url()),
        ("AWS_DEFAULT_REGION", "eu-west-1".to_string()),
        ("AWS_SHARED_CREDENTIALS_FILE", file.display().to_string()),
        ("AWS_PROFILE", "ci".to_string()),
    ]);
    assert_eq!(
        resolve(&provider(from_file), "prod/crm#token").unwrap(),
        CANARY
    );
}

#[test]
fn missing_settings_say_what_to_set() {
    let p = provider(Env::from_pairs([
        ("AWS_ACCESS_KEY_ID", "AKID"),
        ("AWS_SECRET_ACCESS_KEY", "x"),
    ]));
    let e = resolve(&p, "prod/crm#token").unwrap_err();
    assert_eq!(store_error(&e, &[]).reason, Reason::NotConfigured, "{e}");
    assert!(e.to_string().contains("set AWS_REGION"), "{e}");

    let p = provider(Env::from_pairs([
        ("AWS_REGION", "eu-west-1"),
        ("HOME", "/nonexistent"),
    ]));
    let e = resolve(&p, "prod/crm#token").unwrap_err();
    assert_eq!(store_error(&e, &[]).reason, Reason::NotConfigured, "{e}");
    assert!(e.to_string().contains("no AWS credentials"), "{e}");

    let p = provider(Env::from_pairs([
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "AKID"),
        ("AWS_SECRET_ACCESS_KEY", "x"),
        ("AWS_ENDPOINT_URL", "http://aws.example"),
    ]));
    let e = resolve(&p, "prod/crm#token").unwrap_err();
    assert_eq!(store_error(&e, &[]).reason, Reason::Insecure, "{e}");
}
