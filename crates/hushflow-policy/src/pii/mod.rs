//! PII in free text: find emails, phone numbers, card numbers, IBANs, US SSNs and IP addresses,
//! and replace each with a label such as `[EMAIL]`.
//!
//! One pass of a multi-pattern regex finds candidates (leftmost-first, most specific kind
//! first). Each candidate is then validated: Luhn and an issuer prefix for cards, ISO 13616
//! mod-97 for IBANs, the SSA's number rules for SSNs, a libphonenumber parse for phones, a real
//! parse for IP addresses. When a candidate fails, the less specific kinds are tried at the same
//! place, then the scan moves on, so order numbers, dates and invoice ids stay as they are.
//!
//! A finding never starts or ends inside a longer word or number: `ORD-2024-000123`,
//! `2024-03-15`, `v1.2.3.4` and `#4155550132` hold no finding. `bench/pii/README.md` has the
//! precision and recall on a labelled corpus, against Microsoft Presidio's recognizers.
//!
//! An email's top-level domain must exist (IANA's root zone list, `tld.rs`): `logo@2x.png` and
//! `user@host.local` are not addresses.
//!
//! Everything here is pure: no I/O, no global state of ours (the phone metadata is static data
//! copied from the `phonenumber` crate's database, see `phone_meta.rs`, and the TLDs are static
//! data generated from IANA's list), and nothing allocates for a text without a candidate.

mod countries;
mod detector;
mod phone;
mod phone_meta;
mod tld;
mod validate;

pub use detector::{PhoneRegion, PiiDetector};

use serde::{Deserialize, Serialize};

/// A kind of personal data the detector finds. Serialized as in a pipeline file:
/// `"email"`, `"phone"`, `"credit_card"`, `"iban"`, `"us_ssn"`, `"ip_address"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    /// An e-mail address.
    Email,
    /// A phone number that libphonenumber's rules accept.
    Phone,
    /// A payment card number: a known issuer prefix and a valid Luhn check digit.
    CreditCard,
    /// An IBAN with valid check digits.
    Iban,
    /// A US social security number the SSA's numbering rules allow.
    UsSsn,
    /// An IPv4 or IPv6 address.
    IpAddress,
}

impl PiiKind {
    /// Every kind, in the order a detector lists the kinds it finds.
    pub const ALL: [PiiKind; 6] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::CreditCard,
        PiiKind::Iban,
        PiiKind::UsSsn,
        PiiKind::IpAddress,
    ];

    /// The text a finding of this kind is replaced with.
    pub fn label(self) -> &'static str {
        match self {
            PiiKind::Email => "[EMAIL]",
            PiiKind::Phone => "[PHONE]",
            PiiKind::CreditCard => "[CREDIT_CARD]",
            PiiKind::Iban => "[IBAN]",
            PiiKind::UsSsn => "[US_SSN]",
            PiiKind::IpAddress => "[IP_ADDRESS]",
        }
    }

    /// The name used in pipeline files and reports: `email`, `credit_card`, …
    pub fn name(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Phone => "phone",
            PiiKind::CreditCard => "credit_card",
            PiiKind::Iban => "iban",
            PiiKind::UsSsn => "us_ssn",
            PiiKind::IpAddress => "ip_address",
        }
    }
}

impl std::fmt::Display for PiiKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One finding: the byte range `start..end` of the text holds personal data of `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What kind of personal data it is.
    pub kind: PiiKind,
    /// Where it begins: the byte offset of its first byte.
    pub start: usize,
    /// Where it ends: the byte offset just past its last byte.
    pub end: usize,
}

/// Why a detector could not be built. Never holds any text that was scanned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PiiError {
    /// The detector's patterns could not be compiled; a bug, not a configuration error.
    #[error("the PII patterns failed to build; this is a bug in hushflow")]
    Build,
    /// The `region` is not a country with phone numbers.
    #[error("`region` must be an ISO 3166 alpha-2 code that has phone numbers, such as \"US\"")]
    Region,
}

#[cfg(test)]
mod tests;
