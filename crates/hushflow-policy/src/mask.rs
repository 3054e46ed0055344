//! `mask`: show the first/last few characters, hide the rest. Never shows more than
//! `keep_first + keep_last` characters, and a value too short to keep that many is hidden whole.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

/// `mask = { … }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MaskTable {
    /// How many characters to show at the start.
    #[serde(default)]
    keep_first: usize,
    /// How many characters to show at the end.
    #[serde(default)]
    keep_last: usize,
    /// The character hidden ones are replaced with (default `*`).
    #[serde(default = "default_char")]
    char: char,
    /// Mask the local part of an email and keep the domain.
    #[serde(default)]
    email: bool,
    /// Hide the masked run's length: always this many mask characters.
    #[serde(default)]
    fixed: Option<usize>,
}

/// The written forms of `mask`, for the pipeline file's JSON Schema.
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Only its schema is used: `MaskRule` has its own deserializer.
pub(crate) enum MaskForm {
    /// `"email"`: the local part masked, the domain kept.
    Name(MaskName),
    /// A table of options.
    Table(MaskTable),
}

/// The named masks.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)] // Only its schema is used.
pub(crate) enum MaskName {
    /// `j***@example.com`.
    #[serde(rename = "email")]
    Email,
}

fn default_char() -> char {
    '*'
}

/// `mask = { keep_first = 1, keep_last = 4, char = "*", fixed = 6 }` or `mask = "email"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaskRule {
    /// How many characters to show at the start.
    pub keep_first: usize,
    /// How many characters to show at the end.
    pub keep_last: usize,
    /// The character hidden ones are replaced with.
    pub char: char,
    /// Mask the local part of an email and keep the domain: `j***@example.com`.
    pub email: bool,
    /// Hide the masked run's length: always this many mask characters.
    pub fixed: Option<usize>,
}

impl<'de> Deserialize<'de> for MaskRule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Name(String),
            Table(MaskTable),
        }
        let table = match Form::deserialize(deserializer).map_err(|_| {
            de::Error::custom("`mask` takes \"email\" or a table such as { keep_last = 4 }")
        })? {
            Form::Name(n) if n == "email" => MaskTable {
                keep_first: 1,
                keep_last: 0,
                char: '*',
                email: true,
                fixed: None,
            },
            Form::Name(_) => {
                return Err(de::Error::custom(
                    "`mask` takes \"email\" or a table such as { keep_last = 4 }",
                ));
            }
            Form::Table(t) => t,
        };
        Ok(MaskRule {
            keep_first: table.keep_first,
            keep_last: table.keep_last,
            char: table.char,
            email: table.email,
            fixed: table.fixed,
        })
    }
}

/// The most characters `keep_first`, `keep_last` or `fixed` may name: a mask hides an
/// identifier, and `fixed` mask characters are written for every value.
pub const MAX_MASK_CHARS: usize = 64;

impl MaskRule {
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.char.is_alphanumeric() {
            return Err("the mask `char` must not be a letter or digit".into());
        }
        if self.fixed == Some(0) {
            return Err("`fixed` must be at least 1".into());
        }
        for (option, n) in [
            ("keep_first", Some(self.keep_first)),
            ("keep_last", Some(self.keep_last)),
            ("fixed", self.fixed),
        ] {
            if n.is_some_and(|n| n > MAX_MASK_CHARS) {
                return Err(format!("`{option}` must be at most {MAX_MASK_CHARS}"));
            }
        }
        Ok(())
    }

    pub(crate) fn describe(&self) -> String {
        let mut s = String::from("masked");
        if self.email {
            s.push_str(" (email: domain kept)");
        }
        if self.keep_first > 0 {
            s.push_str(&format!(", first {} kept", self.keep_first));
        }
        if self.keep_last > 0 {
            s.push_str(&format!(", last {} kept", self.keep_last));
        }
        s
    }

    /// Appends the masked form of `value` to `out`.
    pub fn apply(&self, value: &str, out: &mut String) {
        if self.email
            && let Some(at) = value.rfind('@')
        {
            self.mask_part(&value[..at], out);
            out.push_str(&value[at..]);
            return;
        }
        self.mask_part(value, out);
    }

    fn mask_part(&self, value: &str, out: &mut String) {
        let chars = value.chars().count();
        let (first, last) = if chars > self.keep_first + self.keep_last {
            (self.keep_first, self.keep_last)
        } else {
            (0, 0)
        };
        let hidden = chars - first - last;
        out.extend(value.chars().take(first));
        let run = self.fixed.unwrap_or(hidden);
        out.extend(std::iter::repeat_n(self.char, run));
        out.extend(value.chars().skip(first + hidden));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rule(s: &str) -> MaskRule {
        #[derive(Deserialize)]
        struct W {
            mask: MaskRule,
        }
        toml::from_str::<W>(s).unwrap().mask
    }

    fn apply(r: &MaskRule, v: &str) -> String {
        let mut out = String::new();
        r.apply(v, &mut out);
        out
    }

    #[test]
    fn keeps_what_is_configured() {
        assert_eq!(
            apply(&rule("mask = { keep_last = 4 }"), "+1 415 555 0132"),
            "***********0132"
        );
        assert_eq!(
            apply(
                &rule("mask = { keep_first = 2, keep_last = 2, char = \"#\" }"),
                "abcdefg"
            ),
            "ab###fg"
        );
        assert_eq!(
            apply(&rule("mask = \"email\""), "jane@example.com"),
            "j***@example.com"
        );
        assert_eq!(
            apply(
                &rule("mask = { email = true, fixed = 3 }"),
                "jonathan@example.com"
            ),
            "***@example.com"
        );
        assert_eq!(
            apply(
                &rule("mask = { keep_last = 4, fixed = 4 }"),
                "4111111111111111"
            ),
            "****1111"
        );
        // Too short to keep four characters: hidden whole.
        assert_eq!(apply(&rule("mask = { keep_last = 4 }"), "0132"), "****");
        assert_eq!(apply(&rule("mask = { keep_first = 1 }"), "Zoë"), "Z**");
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(rule("mask = { char = \"x\" }").check().is_err());
        assert!(toml::from_str::<toml::Table>("mask = \"bogus\"").is_ok());
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct W {
            mask: MaskRule,
        }
        assert!(toml::from_str::<W>("mask = \"bogus\"").is_err());
    }

    proptest! {
        #[test]
        fn never_shows_more_than_configured(v in "\\PC{0,40}", first in 0usize..6, last in 0usize..6) {
            let r = MaskRule { keep_first: first, keep_last: last, char: '*', email: false, fixed: None };
            let out = apply(&r, &v);
            let shown = out.chars().filter(|c| *c != '*').count();
            prop_assert!(shown <= first + last, "showed {shown} of {v:?}");
            prop_assert_eq!(out.chars().count(), v.chars().count());
        }
    }
}
