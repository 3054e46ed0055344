//! Failure webhooks: when a task fails for good, its pipeline's `on_failure_webhook` gets a POST
//! with a [`TaskFailedEvent`] (names, ids, states and the error, which never holds a record
//! value). The URL is a secret: resolved from its reference for each call, and never quoted in
//! an error.

use crate::views::TaskFailedEvent;
use crate::{Error, Result};
use hushflow_scheduler::FailedTask;
use hushflow_secrets::{KeyProvider, Redactor};
use hushflow_spec::dag;
use std::time::Duration;

/// Tells the failed task's pipeline webhook, if it has one. `keys` opens the keyring for a
/// `keyring:` reference; it is called only when there is a webhook to resolve.
pub fn notify<K: KeyProvider>(
    task: &FailedTask,
    redactor: &Redactor,
    keys: impl FnOnce() -> Option<K>,
) -> Result<()> {
    let Ok(d) = dag::parse(
        &task.file,
        task.text.clone(),
        &crate::secrets::providers(None),
        // Only the webhook is read: no path of the file is used.
        &hushflow_spec::Protected::nothing(),
    ) else {
        return Ok(());
    };
    let Some(reference) = d.on_failure_webhook else {
        return Ok(());
    };
    let keyring = keys();
    let resolver =
        crate::secrets::resolver(redactor, keyring.as_ref().map(|k| k as &dyn KeyProvider));
    let reference = resolver.parse(&reference).map_err(Error::invalid)?;
    let url = resolver.resolve(&reference).map_err(Error::invalid)?;
    let url = url.expose_str().map_err(Error::invalid)?.trim().to_string();
    check_webhook_url(&url)?;
    post(&url, &TaskFailedEvent::new(task))
}

/// POSTs `event` as JSON (also the alert deliveries' webhook). Errors never quote the URL.
pub(crate) fn post<T: serde::Serialize>(url: &str, event: &T) -> Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    agent
        .post(url)
        .send_json(event)
        .map(|_| ())
        .map_err(|e| match e {
            ureq::Error::StatusCode(c) => Error::failed(format!("the webhook answered HTTP {c}")),
            // Connection errors may quote the URL, which holds a credential.
            _ => Error::failed("the webhook could not be reached"),
        })
}

/// Webhooks leave the machine over TLS; plain http only to this machine.
pub fn check_webhook_url(url: &str) -> Result<()> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Ok(());
    }
    if let Some(rest) = lower.strip_prefix("http://") {
        let host = rest.split(['/', ':', '?']).next().unwrap_or("");
        if matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            return Ok(());
        }
    }
    Err(Error::invalid(
        "the webhook URL must be https:// (plain http:// only to localhost)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_are_https_or_local() {
        for ok in [
            "https://hooks.example.com/x",
            "HTTPS://hooks.example.com",
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
        ] {
            assert!(check_webhook_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://hooks.example.com/x",
            "http://localhost.example.com/",
            "ftp://localhost/",
            "hooks.example.com",
        ] {
            assert!(check_webhook_url(bad).is_err(), "{bad}");
        }
    }
}
