//! The secret scan of a pipeline file: before anything else reads the file, every string is
//! checked for a literal secret (a credential-named key or a policy `key` holding something that
//! is not a secret reference, or a URL with a password in it). The errors name the key and
//! its place, never the value.

use crate::pipeline::{SpecError, SpecSource};
use hushflow_secrets::SecretProviders;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Refuses a literal secret anywhere in the parsed document: a secret setting must hold a
/// reference of a scheme registered in `secrets`.
pub(crate) fn scan(
    source: &SpecSource<'_>,
    secrets: &SecretProviders<'_>,
    doc: &DeTable<'_>,
) -> Result<(), SpecError> {
    let mut path = Vec::new();
    scan_table(source, secrets, doc, &mut path)
}

/// Key names whose values are credentials: these must be secret references. Matched by word
/// (`db_password`, `auth-token`, `apiKey`), so `tokenize` or `keyring` are not credentials.
fn is_secret_key(key: &str) -> bool {
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    for c in key.chars() {
        if c == '_' || c == '-' || c == '.' || (c.is_uppercase() && !word.is_empty()) {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            if c == '_' || c == '-' || c == '.' {
                continue;
            }
        }
        word.extend(c.to_lowercase());
    }
    words.push(word);
    const WORDS: [&str; 10] = [
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "token",
        "tokens",
        "apikey",
        "credential",
        "credentials",
    ];
    let pair = |a: &str, b: &str| words.windows(2).any(|w| w[0] == a && w[1] == b);
    words.iter().any(|w| WORDS.contains(&w.as_str()))
        || pair("api", "key")
        || pair("private", "key")
        || pair("access", "key")
}

/// `policy.fields.NAME = "keep"` (or `drop`, `null`): an action on a field, not a value, whatever
/// the field's name.
fn is_policy_action(path: &[String], value: &str) -> bool {
    let n = path.len();
    n >= 3
        && path[n - 3] == "policy"
        && path[n - 2] == "fields"
        && matches!(value, "keep" | "drop" | "null")
}

/// A URL with a password in its user-info part: `scheme://user:password@host`.
fn is_credential_url(value: &str) -> bool {
    hushflow_secrets::url_password(value).is_some()
}

fn scan_table<'a>(
    source: &SpecSource<'_>,
    secrets: &SecretProviders<'_>,
    table: &'a DeTable<'a>,
    path: &mut Vec<String>,
) -> Result<(), SpecError> {
    for (key, value) in table.iter() {
        path.push(key.get_ref().to_string());
        scan_value(source, secrets, key.get_ref(), value, path)?;
        path.pop();
    }
    Ok(())
}

fn scan_value<'a>(
    source: &SpecSource<'_>,
    secrets: &SecretProviders<'_>,
    key: &str,
    value: &'a Spanned<DeValue<'a>>,
    path: &mut Vec<String>,
) -> Result<(), SpecError> {
    match value.get_ref() {
        DeValue::String(s) => {
            // A policy rule's `key` is key material for hashing, so it is a secret too.
            let is_policy_key = key == "key" && path.iter().any(|p| p == "policy");
            let literal = !secrets.is_reference(s);
            if literal && ((is_secret_key(key) && !is_policy_action(path, s)) || is_policy_key) {
                return Err(source.error_at(
                    value.span(),
                    Some(path.join(".")),
                    "holds a literal secret; store it outside the pipeline and write a reference: \
                     env:NAME, file:PATH or keyring:NAME",
                ));
            }
            if literal && is_credential_url(s) {
                return Err(source.error_at(
                    value.span(),
                    Some(path.join(".")),
                    "is a URL with a password in it; put the whole URL in a secret and write \
                     env:NAME, file:PATH or keyring:NAME instead",
                ));
            }
        }
        DeValue::Table(t) => scan_table(source, secrets, t, path)?,
        DeValue::Array(items) => {
            for item in items.iter() {
                scan_value(source, secrets, key, item, path)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::parse;
    use crate::pipeline::tests::{GOOD, parse_str};
    use std::path::Path;

    #[test]
    fn a_reference_must_be_of_a_registered_scheme() {
        let text = GOOD.replace("keyring:pepper", "vault:kv/pepper");
        let e = parse_str(&text).unwrap_err();
        assert!(e.message.contains("holds a literal secret"), "{e}");
        assert_eq!(e.key.as_deref(), Some("policy.fields.email.key"));
        let spec = parse(Path::new("p.toml"), &text, &crate::with_vault()).unwrap();
        assert!(spec.policy.is_some());
        // A malformed name of a registered scheme is refused there too.
        let e = parse_str(&GOOD.replace("keyring:pepper", "keyring:Pepper")).unwrap_err();
        assert!(e.message.contains("holds a literal secret"), "{e}");
    }

    #[test]
    fn literal_password_is_refused_without_echo() {
        let text = GOOD.replace(
            "table = \"leads\"",
            "table = \"leads\"\npassword = \"hunter2-canary\"",
        );
        let e = parse_str(&text).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("sink.password"));
        assert_eq!((e.line, e.column), (18, 12));
        assert!(!e.to_string().contains("canary"), "{e}");
        // A reference is fine as far as the scan goes (the connector then refuses the key).
        let text = GOOD.replace(
            "table = \"leads\"",
            "table = \"leads\"\napi_token = \"env:TOKEN\"",
        );
        let e = parse_str(&text).unwrap_err();
        assert!(e.message.contains("api_token"), "{e}");
    }

    #[test]
    fn literal_policy_key_and_credential_url_are_refused() {
        let text = GOOD.replace("keyring:pepper", "pepper-canary");
        let e = parse_str(&text).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("policy.fields.email.key"));
        assert_eq!(e.line, 12);
        assert!(!e.to_string().contains("canary"));

        let text = GOOD.replace(
            "path = \"out.db\"",
            "path = \"postgres://u:pw-canary@db/x\"",
        );
        let e = parse_str(&text).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("sink.path"));
        assert!(!e.to_string().contains("canary"));
        assert!(!is_credential_url("https://example.com/a@b"));
        assert!(!is_credential_url("postgres://user@host/db"));
    }

    #[test]
    fn policy_actions_on_secret_looking_fields_are_not_secrets() {
        for action in ["keep", "drop", "null"] {
            let text = GOOD.replace(
                "fields.id = \"keep\"",
                &format!("fields.id = \"keep\"\nfields.api_token = \"{action}\""),
            );
            assert!(parse_str(&text).is_ok(), "{action}");
        }
        let text = GOOD.replace(
            "fields.id = \"keep\"",
            "fields.id = \"keep\"\nfields.api_token = \"tok-canary\"",
        );
        let e = parse_str(&text).unwrap_err();
        assert!(e.message.contains("holds a literal secret"), "{e}");
        let text = GOOD.replace("type = \"csv\"", "type = \"csv\"\npassword = \"keep\"");
        assert!(parse_str(&text).is_err());
    }

    #[test]
    fn secret_key_names_are_matched_by_word() {
        for key in [
            "password",
            "db_password",
            "auth-token",
            "apiKey",
            "api_key",
            "client_secret",
            "aws_access_key_id",
            "privateKey",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in [
            "tokenize",
            "key",
            "keyring",
            "table",
            "path",
            "passthrough",
            "secretary_name",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
    }
}
