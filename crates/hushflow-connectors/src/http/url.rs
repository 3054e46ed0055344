//! Which base URLs a REST connector may talk to: `https://` anywhere, `http://` only to a
//! loopback address (a local fake server in tests, a proxy on the same machine).

use std::net::IpAddr;

/// Checks a base URL; `what` names the setting for messages (`base_url`). The error never
/// quotes the URL (it could hold credentials in its user-info part).
pub fn check_url(what: &str, url: &str) -> Result<(), String> {
    let lower = url.trim().to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("https://") {
        if host_of(rest).is_empty() {
            return Err(format!("{what} has no host"));
        }
        if rest.contains('@') {
            return Err(format!(
                "{what} must not hold credentials (give them by secret reference)"
            ));
        }
        return Ok(());
    }
    if let Some(rest) = lower.strip_prefix("http://") {
        if rest
            .split(['/', '?', '#'])
            .next()
            .unwrap_or("")
            .contains('@')
        {
            return Err(format!(
                "{what} must not hold credentials (give them by secret reference)"
            ));
        }
        if is_loopback(host_of(rest)) {
            return Ok(());
        }
        return Err(format!(
            "{what} is plain http to a host that is not loopback; use https://"
        ));
    }
    Err(format!(
        "{what} must start with https:// (or http:// to a loopback address)"
    ))
}

/// Whether `url` is plain HTTP to a loopback address (validate warns about it: fine for a
/// local fake, not for production).
pub fn is_loopback_url(url: &str) -> bool {
    url.trim().to_ascii_lowercase().starts_with("http://")
}

/// The host of `rest` (what follows `scheme://`), without port or brackets.
fn host_of(rest: &str) -> &str {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    authority.split(':').next().unwrap_or("")
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in [
            "https://api.hubapi.com",
            "http://127.0.0.1:8200",
            "http://localhost:1/x",
            "http://[::1]:8200",
        ] {
            assert!(check_url("base_url", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://api.hubapi.com",
            "http://10.0.0.1",
            "http://localhost.example.com",
            "http://127.0.0.1@evil.example",
            "https://user:pw@api.hubapi.com",
            "api.hubapi.com",
            "https://",
        ] {
            let e = check_url("base_url", bad).unwrap_err();
            assert!(e.starts_with("base_url"), "{bad}: {e}");
            assert!(!e.contains("pw"), "{e}");
        }
    }
}
