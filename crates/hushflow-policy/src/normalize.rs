//! Normalizations applied before hashing, so that " Jane@Example.COM" and "jane@example.com"
//! give the same pseudonym, and "(415) 555-0132" with region US and "+14155550132" the same
//! phone hash. Each writes into a caller's buffer: this runs once per value.

use phonenumber::country;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How a value is normalized before it is hashed, so that spellings of one value hash alike.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Normalize {
    /// None: the value is hashed as it is.
    #[default]
    None,
    /// Trim surrounding whitespace.
    Trim,
    /// Trim and lowercase.
    Lower,
    /// An email address: trimmed, the address alone of a display-name form
    /// (`"Jane Doe" <jane@example.com>`), lowercased; gmail rules on request.
    Email,
    /// A phone number in E.164 (`+14155550132`), parsed with libphonenumber's metadata; numbers
    /// without a country code need `region`.
    Phone,
}

impl fmt::Display for Normalize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Normalize::None => "none",
            Normalize::Trim => "trim",
            Normalize::Lower => "lower",
            Normalize::Email => "email",
            Normalize::Phone => "phone",
        })
    }
}

/// Whose audience-matching rules `match_hash` follows.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Google Customer Match: emails trimmed and lowercased, dots removed from gmail.com and
    /// googlemail.com local parts; phones in E.164 with the leading `+`.
    #[default]
    Google,
    /// Meta (and X): emails trimmed and lowercased; phones as digits with the country code and
    /// no `+`.
    Meta,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Platform::Google => "Google",
            Platform::Meta => "Meta",
        })
    }
}

/// Checks a region code such as "US" or "DE".
pub(crate) fn parse_region(region: &str) -> Result<country::Id, String> {
    region.parse::<country::Id>().map_err(|_| {
        "`region` must be an ISO 3166 alpha-2 code such as \"US\" or \"DE\"".to_string()
    })
}

impl crate::rule::Normalization {
    pub(crate) fn check(&self) -> Result<(), String> {
        if let Some(region) = &self.region {
            if self.kind != Normalize::Phone {
                return Err("`region` applies to normalize = \"phone\" only".into());
            }
            parse_region(region)?;
        }
        if self.gmail && self.kind != Normalize::Email {
            return Err("`gmail` applies to normalize = \"email\" only".into());
        }
        Ok(())
    }

    /// Compiles the normalization; `platform` is set for `match_hash`.
    pub(crate) fn compile(&self, platform: Option<Platform>) -> Result<Normalizer, String> {
        self.check()?;
        let region = self.region.as_deref().map(parse_region).transpose()?;
        let gmail = match (platform, self.gmail) {
            (_, true) => Gmail::DotsAndPlus,
            (Some(Platform::Google), false) => Gmail::Dots,
            _ => Gmail::Off,
        };
        Ok(Normalizer {
            kind: self.kind,
            region,
            gmail,
            // Only phones differ by platform; other kinds compare equal across platforms.
            phone_plus: self.kind != Normalize::Phone || platform != Some(Platform::Meta),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gmail {
    Off,
    Dots,
    DotsAndPlus,
}

/// A compiled normalization. Two that are equal give the same form of every value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalizer {
    kind: Normalize,
    region: Option<country::Id>,
    gmail: Gmail,
    phone_plus: bool,
}

/// Why a value could not be normalized; fixed texts, never the value.
pub type NormalizeError = &'static str;

impl Normalizer {
    /// What kind of value this normalization reads (an email, a phone number).
    pub fn kind(&self) -> Normalize {
        self.kind
    }

    /// `kind` without options (for emails: no gmail rules).
    pub fn new(kind: Normalize) -> Normalizer {
        Normalizer {
            kind,
            region: None,
            gmail: Gmail::Off,
            phone_plus: true,
        }
    }

    /// Writes the normalized form of `value` into `out` (cleared first). `Ok(false)` when
    /// nothing is left (the value becomes null); `Err` when the value cannot be normalized.
    pub fn apply(&self, value: &str, out: &mut String) -> Result<bool, NormalizeError> {
        out.clear();
        match self.kind {
            Normalize::None => out.push_str(value),
            Normalize::Trim => out.push_str(value.trim()),
            Normalize::Lower => lower_into(value.trim(), out),
            Normalize::Email => email_into(value, self.gmail, out),
            Normalize::Phone => {
                let value = value.trim();
                if value.is_empty() {
                    return Ok(false);
                }
                let number = parse_phone(value, self.region).ok_or("not a phone number")?;
                if !phonenumber::is_valid(&number) {
                    return Err("not a valid phone number");
                }
                use std::fmt::Write as _;
                let code = number.country().code();
                let national = number.national().value();
                let zeros = number.national().zeros() as usize;
                let plus = if self.phone_plus { "+" } else { "" };
                let _ = write!(out, "{plus}{code}{}{national}", "0".repeat(zeros));
            }
        }
        Ok(!out.is_empty())
    }
}

/// Parses a phone number; `region` applies to numbers written without a country code.
///
/// A number starting with `+` names its own country, so it is parsed without the default
/// region: the `phonenumber` crate (0.3.10) otherwise strips the default region's trunk prefix
/// from it (with region US, `+33144605693` became `+3344605693`), which libphonenumber does not.
pub fn parse_phone(value: &str, region: Option<country::Id>) -> Option<phonenumber::PhoneNumber> {
    size_phone_regex_cache();
    let region = if value.trim_start().starts_with('+') {
        None
    } else {
        region
    };
    phonenumber::parse(region, value).ok()
}

/// Compiled metadata patterns the phone library may keep. It keeps 100, fewer than the
/// patterns that validating numbers of a dozen countries touches, so it recompiled regexes on
/// nearly every call (three quarters of the run's instructions in a profile of notes redaction).
const PHONE_REGEX_CACHE: usize = 1024;

/// Gives the phone library's shared regex cache room for its metadata's patterns, once.
fn size_phone_regex_cache() {
    static SIZED: std::sync::Once = std::sync::Once::new();
    SIZED.call_once(|| {
        if let Ok(mut cache) = phonenumber::metadata::DATABASE.cache().lock() {
            *cache = regex_cache::RegexCache::new(PHONE_REGEX_CACHE);
        }
    });
}

fn lower_into(value: &str, out: &mut String) {
    if value.is_ascii() {
        out.push_str(value);
        out.make_ascii_lowercase();
    } else {
        out.extend(value.chars().flat_map(char::to_lowercase));
    }
}

/// The one email normalization, shared by `hash`, `match_hash` and the suppression list:
/// trimmed; the address alone of a display-name form (`"Jane Doe" <jane@example.com>`);
/// lowercased; then, on request, Gmail's rules. Writes into `out`, which must be empty.
fn email_into(value: &str, gmail: Gmail, out: &mut String) {
    lower_into(addr_spec(value), out);
    if gmail != Gmail::Off {
        apply_gmail_rules(out, gmail == Gmail::DotsAndPlus);
    }
}

/// The address of `value`, trimmed: what the last `<…>` holds when the value ends with `>`
/// (a display-name form such as `Jane Doe <jane@example.com>`, or `<jane@example.com>`),
/// otherwise the whole value.
fn addr_spec(value: &str) -> &str {
    let value = value.trim();
    match value.strip_suffix('>') {
        Some(inner) => match inner.rfind('<') {
            Some(open) => inner[open + 1..].trim(),
            None => value,
        },
        None => value,
    }
}

/// Gmail ignores dots in the local part, and `strip_plus` (the `gmail` option) also removes
/// what follows a `+` and names googlemail.com gmail.com: all of these name one inbox. Edits
/// `email` (lowercase) in place.
fn apply_gmail_rules(email: &mut String, strip_plus: bool) {
    let Some(at) = email.rfind('@') else { return };
    let googlemail = match &email[at + 1..] {
        "gmail.com" => false,
        "googlemail.com" => true,
        _ => return,
    };
    let local_end = if strip_plus {
        email[..at].find('+').unwrap_or(at)
    } else {
        at
    };
    let mut offset = 0;
    email.retain(|c| {
        let keep = if offset < local_end {
            c != '.'
        } else {
            offset >= at
        };
        offset += c.len_utf8();
        keep
    });
    if strip_plus && googlemail {
        email.truncate(email.len() - "googlemail.com".len());
        email.push_str("gmail.com");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::Normalization;

    fn norm(
        kind: Normalize,
        region: Option<&str>,
        gmail: bool,
        platform: Option<Platform>,
        v: &str,
    ) -> Result<String, NormalizeError> {
        let n = Normalization {
            kind,
            region: region.map(String::from),
            gmail,
        }
        .compile(platform)
        .unwrap();
        let mut out = String::new();
        n.apply(v, &mut out).map(|_| out)
    }

    #[test]
    fn email_is_trimmed_and_lowercased() {
        assert_eq!(
            norm(
                Normalize::Email,
                None,
                false,
                None,
                "  Jane.Doe@Example.COM \t"
            )
            .unwrap(),
            "jane.doe@example.com"
        );
        assert_eq!(
            norm(Normalize::Email, None, false, None, "ZOË@Exämple.de").unwrap(),
            "zoë@exämple.de"
        );
    }

    #[test]
    fn gmail_rules_only_for_gmail_and_only_on_request() {
        let v = "Jane.Doe+news@GMail.com";
        assert_eq!(
            norm(Normalize::Email, None, false, None, v).unwrap(),
            "jane.doe+news@gmail.com"
        );
        assert_eq!(
            norm(Normalize::Email, None, true, None, v).unwrap(),
            "janedoe@gmail.com"
        );
        assert_eq!(
            norm(Normalize::Email, None, true, None, "a.b+c@example.com").unwrap(),
            "a.b+c@example.com"
        );
        // Google's matching rules remove the dots but keep the plus part.
        assert_eq!(
            norm(Normalize::Email, None, false, Some(Platform::Google), v).unwrap(),
            "janedoe+news@gmail.com"
        );
        assert_eq!(
            norm(Normalize::Email, None, false, Some(Platform::Meta), v).unwrap(),
            "jane.doe+news@gmail.com"
        );
    }

    #[test]
    fn email_takes_the_address_of_a_display_name_form() {
        let email = |gmail, v| norm(Normalize::Email, None, gmail, None, v).unwrap();
        assert_eq!(
            email(false, "\"Michal W\" <michal@wonka.example>"),
            "michal@wonka.example"
        );
        assert_eq!(
            email(false, " Michal W < Michal@Wonka.EXAMPLE >\t"),
            "michal@wonka.example"
        );
        assert_eq!(email(false, "<jane@example.com>"), "jane@example.com");
        // A quoted name may hold angle brackets; the address is the last pair's content.
        assert_eq!(
            email(false, "\"a <b@c.d>\" <jane@example.com>"),
            "jane@example.com"
        );
        assert_eq!(
            email(true, "\"M\" <Michal.7+promo@GMail.com>"),
            "michal7@gmail.com"
        );
        // Nothing between the brackets: no address, so null rather than the name.
        assert_eq!(email(false, "\"Nobody\" <>"), "");
        // Without a closing bracket it is no display-name form.
        assert_eq!(email(false, "a <b@c.d"), "a <b@c.d");
        // Google's platform rules read the address too.
        assert_eq!(
            norm(
                Normalize::Email,
                None,
                false,
                Some(Platform::Google),
                "\"J D\" <J.D@gmail.com>"
            )
            .unwrap(),
            "jd@gmail.com"
        );
    }

    #[test]
    fn gmail_rules_make_googlemail_gmail() {
        let email = |gmail, platform, v| norm(Normalize::Email, None, gmail, platform, v).unwrap();
        assert_eq!(
            email(true, None, "Jane.Doe+x@GoogleMail.com"),
            "janedoe@gmail.com"
        );
        // Google's matching rules name both domains as they are.
        assert_eq!(
            email(false, Some(Platform::Google), "jane.doe@googlemail.com"),
            "janedoe@googlemail.com"
        );
        assert_eq!(
            email(true, None, "jane.doe@notgmail.com"),
            "jane.doe@notgmail.com"
        );
    }

    #[test]
    fn phones_become_e164() {
        assert_eq!(
            norm(Normalize::Phone, Some("US"), false, None, "(415) 555-0132").unwrap(),
            "+14155550132"
        );
        assert_eq!(
            norm(Normalize::Phone, Some("DE"), false, None, "030 1234567").unwrap(),
            "+49301234567"
        );
        assert_eq!(
            norm(
                Normalize::Phone,
                Some("US"),
                false,
                None,
                "+44 20 7946 0958"
            )
            .unwrap(),
            "+442079460958"
        );
        assert_eq!(
            norm(Normalize::Phone, Some("IT"), false, None, "06 1234 5678").unwrap(),
            "+390612345678"
        );
        // International numbers ignore the default region (libphonenumber's rule): the crate
        // would otherwise strip US's trunk prefix "1" from these.
        assert_eq!(
            norm(Normalize::Phone, Some("US"), false, None, "+33144605693").unwrap(),
            "+33144605693"
        );
        assert_eq!(
            norm(
                Normalize::Phone,
                Some("US"),
                false,
                None,
                "+33 (0)6 71 80 29 67"
            )
            .unwrap(),
            "+33671802967"
        );
        assert_eq!(
            norm(
                Normalize::Phone,
                Some("US"),
                false,
                Some(Platform::Meta),
                "(415) 555-0132"
            )
            .unwrap(),
            "14155550132"
        );
        assert!(norm(Normalize::Phone, Some("US"), false, None, "order 12").is_err());
        assert_eq!(
            norm(Normalize::Phone, Some("US"), false, None, "   ").unwrap(),
            ""
        );
    }

    #[test]
    fn options_are_checked() {
        let n = Normalization {
            kind: Normalize::Email,
            region: Some("US".into()),
            gmail: false,
        };
        assert!(n.check().is_err());
        let n = Normalization {
            kind: Normalize::Phone,
            region: Some("XX-canary".into()),
            gmail: false,
        };
        assert!(!n.check().unwrap_err().contains("canary"));
    }
}
