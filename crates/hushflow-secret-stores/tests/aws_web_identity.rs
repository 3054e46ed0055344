//! AWS web identity (IRSA) against a real moto that checks signatures and IAM policies: the
//! token file and role ARN are exchanged with STS `AssumeRoleWithWebIdentity` for temporary
//! credentials, the signed Secrets Manager requests that follow carry the session token and are
//! accepted under the role's policy, and the credentials are fetched again before they expire.
//!
//! moto does not validate the web identity token itself, and checks the signature of every
//! request once its unchecked window is used up, an unsigned STS call included (AWS does not
//! sign that call: the token is the credential). So the test opens the window for exactly the
//! STS calls (moto's `/moto-api/reset-auth`), and every other request is checked.
#![cfg(feature = "aws")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use hushflow_secret_stores::aws::{AwsClient, SecretsManagerProvider};
use hushflow_secret_stores::{Env, Reason, StoreError};
use hushflow_secrets::{Redactor, SecretError, SecretProvider};
use hushflow_test_support::service::Service;
use serde_json::json;

const CANARY: &str = "canary-irsa-58d1c0";
/// The projected service-account token: moto does not check it, but it must not be printed.
const WEB_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.canary-web-identity-token-6b2f.sig";

/// An IAM Query call in moto's unchecked window (the signature is a formality there).
fn iam(moto: &Service, params: &[(&str, &str)]) {
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

/// Lets the next `n` requests through unchecked (then checks every request again).
fn unchecked(moto: &Service, n: u32) {
    let (status, body) = moto.request("POST", "/moto-api/reset-auth", &[], &n.to_string());
    assert_eq!(status, 200, "{body}");
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

#[test]
fn web_identity_credentials_sign_requests_and_are_refreshed_before_they_expire() {
    // Two unchecked IAM calls make the role; everything after is checked.
    let Some(moto) = Service::moto_checking_signatures("aws_web_identity", 2) else {
        return;
    };
    let trust = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.example"},
            "Action": "sts:AssumeRoleWithWebIdentity"
        }]
    });
    iam(
        &moto,
        &[
            ("Action", "CreateRole"),
            ("RoleName", "hushflow-sync"),
            ("AssumeRolePolicyDocument", &trust.to_string()),
        ],
    );
    let allow = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}]
    });
    iam(
        &moto,
        &[
            ("Action", "PutRolePolicy"),
            ("RoleName", "hushflow-sync"),
            ("PolicyName", "secrets"),
            ("PolicyDocument", &allow.to_string()),
        ],
    );

    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{WEB_TOKEN}\n")).unwrap();
    let env = Env::from_pairs([
        ("AWS_ENDPOINT_URL", moto.url()),
        ("AWS_REGION", "eu-west-1".to_string()),
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            token_file.display().to_string(),
        ),
        (
            "AWS_ROLE_ARN",
            "arn:aws:iam::123456789012:role/hushflow-sync".to_string(),
        ),
        ("AWS_ROLE_SESSION_NAME", "hushflow-test".to_string()),
        // Sessions of 4 seconds: fetched again after 3.
        ("HUSHFLOW_AWS_ROLE_SESSION_SECONDS", "4".to_string()),
    ]);
    let p = SecretsManagerProvider::with_env(env.clone(), Duration::ZERO);
    let redactor = Redactor::new();
    p.web_identity().set_redactor(&redactor);

    // The STS call goes through unchecked; the CreateSecret after it is checked, signed with
    // the temporary key and carrying its session token.
    unchecked(&moto, 1);
    AwsClient::secrets_manager(env.clone())
        .with_web_identity(p.web_identity())
        .call(
            "CreateSecret",
            None,
            &json!({"Name": "prod/crm", "SecretString": json!({"token": CANARY}).to_string()}),
        )
        .unwrap();
    assert_eq!(p.web_identity().fetches(), 1);
    assert_eq!(
        p.resolve("prod/crm#token").unwrap().expose(),
        CANARY.as_bytes()
    );
    assert_eq!(p.web_identity().fetches(), 1, "the credentials are reused");
    // The web identity token was registered with the redactor when it was read.
    assert_eq!(redactor.scrub(&format!("x {WEB_TOKEN} y")), "x *** y");

    // Past the refresh point (a quarter of the session before it ends), the next request
    // fetches new credentials first; they sign a checked request too.
    std::thread::sleep(Duration::from_millis(3200));
    unchecked(&moto, 1);
    assert_eq!(
        p.resolve("prod/crm#token").unwrap().expose(),
        CANARY.as_bytes()
    );
    assert_eq!(p.web_identity().fetches(), 2);
    assert_eq!(
        p.resolve("prod/crm#token").unwrap().expose(),
        CANARY.as_bytes()
    );
    assert_eq!(p.web_identity().fetches(), 2);

    // A missing token file says which variable to fix, without the token.
    let missing = Env::from_pairs([
        ("AWS_ENDPOINT_URL", moto.url()),
        ("AWS_REGION", "eu-west-1".to_string()),
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            dir.path().join("missing").display().to_string(),
        ),
        (
            "AWS_ROLE_ARN",
            "arn:aws:iam::123456789012:role/hushflow-sync".to_string(),
        ),
    ]);
    let e = SecretsManagerProvider::with_env(missing, Duration::ZERO)
        .resolve("prod/crm#token")
        .unwrap_err();
    let se = store_error(&e, &[CANARY, WEB_TOKEN]);
    assert_eq!(se.reason, Reason::NotConfigured, "{e}");
    assert!(e.to_string().contains("AWS_WEB_IDENTITY_TOKEN_FILE"), "{e}");

    // Outside the unchecked window moto refuses the unsigned STS call: the error names STS and
    // the reason, never the web identity token.
    let e = SecretsManagerProvider::with_env(env, Duration::ZERO)
        .resolve("prod/crm#token")
        .unwrap_err();
    let se = store_error(&e, &[CANARY, WEB_TOKEN]);
    assert!(e.to_string().contains("sts:"), "{e}");
    assert_ne!(se.reason, Reason::NotFound, "{e}");
}
