//! Normalizations applied before hashing, so that " Jane@Example.COM" and "jane@example.com"
//! give the same pseudonym. Each writes into a caller's buffer: this runs once per value.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Normalize {
    #[default]
    None,
    /// Trim surrounding whitespace.
    Trim,
    /// Trim and lowercase.
    Lower,
    /// An email address: trimmed and lowercased (no provider-specific dot or plus rules).
    Email,
}

impl fmt::Display for Normalize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Normalize::None => "none",
            Normalize::Trim => "trim",
            Normalize::Lower => "lower",
            Normalize::Email => "email",
        })
    }
}

impl Normalize {
    /// Writes the normalized form of `value` into `out` (cleared first). Returns false when
    /// nothing is left, which the policy treats as an empty value.
    pub fn apply(self, value: &str, out: &mut String) -> bool {
        out.clear();
        match self {
            Normalize::None => out.push_str(value),
            Normalize::Trim => out.push_str(value.trim()),
            Normalize::Lower | Normalize::Email => {
                let trimmed = value.trim();
                if trimmed.is_ascii() {
                    out.push_str(trimmed);
                    out.make_ascii_lowercase();
                } else {
                    out.extend(trimmed.chars().flat_map(char::to_lowercase));
                }
            }
        }
        !out.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(n: Normalize, v: &str) -> String {
        let mut out = String::new();
        n.apply(v, &mut out);
        out
    }

    #[test]
    fn email_is_trimmed_and_lowercased() {
        assert_eq!(
            norm(Normalize::Email, "  Jane.Doe@Example.COM \t"),
            "jane.doe@example.com"
        );
        assert_eq!(norm(Normalize::Email, "ZOË@Exämple.de"), "zoë@exämple.de");
    }

    #[test]
    fn none_and_trim() {
        assert_eq!(norm(Normalize::None, " A "), " A ");
        assert_eq!(norm(Normalize::Trim, " A "), "A");
    }

    #[test]
    fn blank_is_reported_empty() {
        let mut out = String::new();
        assert!(!Normalize::Email.apply("   ", &mut out));
    }
}
