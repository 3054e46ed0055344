//! The secret wrapper. Its memory is wiped on drop and it cannot be printed by accident: `{}`
//! and `{:?}` both give `***`, so a secret inside a struct that derives `Debug` stays hidden.

use std::fmt;

use zeroize::Zeroizing;

use crate::SecretError;

/// A secret value: bytes, because keys are binary; text secrets are UTF-8 bytes.
///
/// Not `Clone`: every copy is one more place the secret lives. Borrow it instead.
pub struct SecretValue(Zeroizing<Vec<u8>>);

impl SecretValue {
    /// Takes ownership of `bytes`, so they are wiped when the value is dropped. Bytes that were
    /// copied before (by reallocation while they were read, say) are out of reach.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretValue(Zeroizing::new(bytes))
    }

    /// The secret itself. The name is meant to stand out in review.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret as text, for tokens and passwords.
    pub fn expose_str(&self) -> Result<&str, SecretError> {
        std::str::from_utf8(&self.0).map_err(|_| SecretError::NotUtf8)
    }

    /// The secret's length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret has no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for SecretValue {
    fn from(bytes: Vec<u8>) -> Self {
        SecretValue::new(bytes)
    }
}

impl From<String> for SecretValue {
    fn from(text: String) -> Self {
        SecretValue::new(text.into_bytes())
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "canary-7f3a9c2e";

    #[test]
    fn debug_and_display_hide_the_value() {
        let v = SecretValue::from(CANARY.to_string());
        assert_eq!(format!("{v}"), "***");
        assert_eq!(format!("{v:?}"), "***");
        assert_eq!(format!("{v:#?}"), "***");
        let wrapped = Some(v);
        let text = format!("{wrapped:?}");
        assert!(!text.contains(CANARY), "{text}");
        assert_eq!(text, "Some(***)");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Config {
            token: SecretValue,
        }
        let c = Config {
            token: SecretValue::from(CANARY.to_string()),
        };
        assert!(!format!("{c:?}").contains(CANARY));
        assert!(!format!("{c:#?}").contains(CANARY));
    }

    #[test]
    fn expose() {
        let v = SecretValue::new(CANARY.as_bytes().to_vec());
        assert_eq!(v.expose(), CANARY.as_bytes());
        assert_eq!(v.expose_str().unwrap(), CANARY);
        assert_eq!(v.len(), CANARY.len());
        let binary = SecretValue::new(vec![0xff, 0xfe, 0x00]);
        let e = binary.expose_str().unwrap_err();
        assert!(matches!(e, SecretError::NotUtf8));
    }
}
