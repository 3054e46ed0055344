//! `mask`: show the first/last few characters, hide the rest. Never shows more than
//! `keep_first + keep_last` characters, and a value too short to keep that many is hidden whole.
//!
//! `mask = "phone"` counts digits instead of characters: it hides every digit but the last few
//! and keeps everything else (`+`, spaces, brackets, dashes, a trailing `(office)`), so the
//! layout of the number stays readable and a note after it never uses up the kept count.

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
    keep_last: Option<usize>,
    /// The character hidden ones are replaced with (default `*`).
    #[serde(default = "default_char")]
    char: char,
    /// Mask the local part of an email and keep the domain.
    #[serde(default)]
    email: bool,
    /// Hide the masked run's length: always this many mask characters.
    #[serde(default)]
    fixed: Option<usize>,
    /// Count digits instead of characters and keep separators (`+** *** ***4567`).
    #[serde(default)]
    phone: bool,
}

/// The written forms of `mask`, for the pipeline file's JSON Schema.
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Only its schema is used: `MaskRule` has its own deserializer.
pub(crate) enum MaskForm {
    /// `"email"` or `"phone"`.
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
    /// Every digit hidden but the last four, separators and words kept: `+** *** ***4567`.
    #[serde(rename = "phone")]
    Phone,
}

/// How many digits `mask = "phone"` keeps unless `keep_last` says otherwise: the last four, as
/// receipts and call logs show them.
pub const PHONE_KEEP_LAST: usize = 4;

fn default_char() -> char {
    '*'
}

/// `mask = { keep_first = 1, keep_last = 4, char = "*", fixed = 6 }`, `mask = "email"` or
/// `mask = "phone"` (`{ phone = true, keep_last = 2 }`).
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
    /// Count and hide digits only, keeping every other character where it is:
    /// `+49 (0)40 2195941` → `+** (*)** ***5941`. (Left out of the serialized policy when off,
    /// so the fingerprints of policies written before it existed do not change.)
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub phone: bool,
}

impl<'de> Deserialize<'de> for MaskRule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Name(String),
            Table(MaskTable),
        }
        const EXPECTED: &str =
            "`mask` takes \"email\", \"phone\" or a table such as { keep_last = 4 }";
        let table =
            match Form::deserialize(deserializer).map_err(|_| de::Error::custom(EXPECTED))? {
                Form::Name(n) if n == "email" => MaskTable {
                    keep_first: 1,
                    keep_last: Some(0),
                    char: '*',
                    email: true,
                    fixed: None,
                    phone: false,
                },
                Form::Name(n) if n == "phone" => MaskTable {
                    keep_first: 0,
                    keep_last: None,
                    char: '*',
                    email: false,
                    fixed: None,
                    phone: true,
                },
                Form::Name(_) => return Err(de::Error::custom(EXPECTED)),
                Form::Table(t) => t,
            };
        let default_last = if table.phone { PHONE_KEEP_LAST } else { 0 };
        Ok(MaskRule {
            keep_first: table.keep_first,
            keep_last: table.keep_last.unwrap_or(default_last),
            char: table.char,
            email: table.email,
            fixed: table.fixed,
            phone: table.phone,
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
        if self.phone && self.email {
            return Err("a mask is for a phone number or an email, not both".into());
        }
        if self.phone && self.fixed.is_some() {
            return Err("`fixed` does not apply to a phone mask, which keeps the layout".into());
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
        let unit = if self.phone {
            s.push_str(" (phone: digits only, separators kept)");
            " digits"
        } else {
            ""
        };
        if self.keep_first > 0 {
            s.push_str(&format!(", first {}{unit} kept", self.keep_first));
        }
        if self.keep_last > 0 {
            s.push_str(&format!(", last {}{unit} kept", self.keep_last));
        }
        s
    }

    /// Appends the masked form of `value` to `out`.
    pub fn apply(&self, value: &str, out: &mut String) {
        if self.phone {
            self.mask_digits(value, out);
            return;
        }
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

    /// The phone mask: digits are counted and hidden, every other character is kept. A value
    /// with no more digits than `keep_first + keep_last` has every digit hidden.
    fn mask_digits(&self, value: &str, out: &mut String) {
        let digits = value.bytes().filter(u8::is_ascii_digit).count();
        let (first, last) = if digits > self.keep_first + self.keep_last {
            (self.keep_first, self.keep_last)
        } else {
            (0, 0)
        };
        let shown_from = digits - last;
        let mut seen = 0;
        for c in value.chars() {
            if c.is_ascii_digit() {
                out.push(if seen < first || seen >= shown_from {
                    c
                } else {
                    self.char
                });
                seen += 1;
            } else {
                out.push(c);
            }
        }
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

    #[test]
    fn phone_mask_counts_digits_and_keeps_the_layout() {
        let phone = rule("mask = \"phone\"");
        assert_eq!(phone.keep_last, PHONE_KEEP_LAST);
        assert_eq!(apply(&phone, "+49 (0)40 2195941"), "+** (*)** ***5941");
        assert_eq!(
            apply(&phone, "+91 98389 84695 (office)"),
            "+** ***** *4695 (office)"
        );
        assert_eq!(apply(&phone, "+45 43 62 70 11"), "+** ** ** 70 11");
        assert_eq!(apply(&phone, "(415) 555-0132"), "(***) ***-0132");
        // No more digits than kept: every digit hidden.
        assert_eq!(apply(&phone, "ext. 0132"), "ext. ****");
        assert_eq!(apply(&phone, "unknown"), "unknown");
        let two = rule("mask = { phone = true, keep_last = 2, char = \"#\" }");
        assert_eq!(apply(&two, "+33 1 44 60 56 93"), "+## # ## ## ## 93");
        let country = rule("mask = { phone = true, keep_first = 2 }");
        assert_eq!(country.keep_last, PHONE_KEEP_LAST);
        assert_eq!(apply(&country, "+49 151 12345678"), "+49 *** ****5678");
        assert!(country.describe().contains("last 4 digits kept"));
        // The characters mask counts them: the note after the number uses them up.
        assert_eq!(
            apply(
                &rule("mask = { keep_last = 4 }"),
                "+91 98389 84695 (office)"
            ),
            "********************ice)"
        );
    }

    #[test]
    fn phone_mask_refuses_options_that_do_not_fit() {
        assert!(rule("mask = \"phone\"").check().is_ok());
        assert!(rule("mask = { phone = true, fixed = 4 }").check().is_err());
        assert!(
            rule("mask = { phone = true, email = true }")
                .check()
                .is_err()
        );
    }

    proptest! {
        #[test]
        fn phone_mask_never_shows_more_digits_than_configured(
            v in "[0-9 +()./a-z-]{0,40}",
            last in 0usize..6,
        ) {
            let r = MaskRule { keep_first: 0, keep_last: last, char: '*', email: false, fixed: None, phone: true };
            let out = apply(&r, &v);
            let shown = out.bytes().filter(u8::is_ascii_digit).count();
            prop_assert!(shown <= last, "showed {shown} of {v:?}");
            let kept: String = v.chars().filter(|c| !c.is_ascii_digit()).collect();
            let out_kept: String = out.chars().filter(|c| !c.is_ascii_digit() && *c != '*').collect();
            prop_assert_eq!(kept, out_kept);
            prop_assert_eq!(out.chars().count(), v.chars().count());
        }

        #[test]
        fn never_shows_more_than_configured(v in "\\PC{0,40}", first in 0usize..6, last in 0usize..6) {
            let r = MaskRule { keep_first: first, keep_last: last, char: '*', email: false, fixed: None, phone: false };
            let out = apply(&r, &v);
            let shown = out.chars().filter(|c| *c != '*').count();
            prop_assert!(shown <= first + last, "showed {shown} of {v:?}");
            prop_assert_eq!(out.chars().count(), v.chars().count());
        }
    }
}
