//! Finding the password in a connection URL (`scheme://user:password@host…`), for the two
//! places that must spot one: the resolver, which masks it apart from the URL, and the spec's
//! secret scan, which refuses a URL with a password written into a pipeline file.
//!
//! This is a plain split on purpose rather than the `url` crate's parser: that parser refuses
//! URLs it finds malformed (a port that is not a number, a host with a forbidden character) and
//! re-encodes the user-info it keeps, so a password in such a URL, or as written, would go
//! unmasked and unrefused. A password must be found in whatever text holds one.

/// The password of a `scheme://user:password@host…` value as written (not percent-decoded):
/// the text between the first `:` and the last `@` of the authority (the part after `://`, up
/// to the first `/`, `?` or `#`). `None` when the value has no `://`, no `@` in the authority,
/// or no `:` before it.
pub fn url_password(value: &str) -> Option<&str> {
    let (_, rest) = value.trim().split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    Some(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_password_as_written() {
        assert_eq!(url_password("postgres://app:pw%40x@db/crm"), Some("pw%40x"));
        assert_eq!(
            url_password(" postgres://app:p@ss@db:5432/crm?x=1 "),
            Some("p@ss")
        );
        // A malformed port does not hide the password.
        assert_eq!(url_password("postgres://app:pw@db:port/crm"), Some("pw"));
        assert_eq!(url_password("postgres://app:@db/crm"), Some(""));
        assert_eq!(url_password("postgres://app@db/crm"), None);
        assert_eq!(url_password("https://example.com/a@b:c"), None);
        assert_eq!(url_password("just-a-token"), None);
    }
}
