//! The part of libphonenumber's metadata that `phone.rs` reads, as static data compiled into the
//! binary (`phone_regions.rs`, generated from the `phonenumber` crate's database).
//!
//! Why not read `phonenumber::metadata::DATABASE`: loading it parses every one of its ~15,000
//! patterns with regex-syntax to check them (the crate's `regex-cache`), about 600 million
//! instructions: 45 ms of start-up in every run that redacts phones, and ~38 MB resident, for
//! patterns the detector compiles itself, and only for the regions it meets. The test
//! `phone_regions_match_the_phonenumber_crate` checks the file against the crate's database;
//! after upgrading `phonenumber`, rewrite it with
//! `HUSHFLOW_WRITE_PHONE_REGIONS=1 cargo test -p hushflow-policy phone_regions`.

/// A number type's pattern and lengths (libphonenumber's `PhoneNumberDesc`).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Desc {
    /// Matches a whole national significant number.
    pub(super) national_number: &'static str,
    pub(super) possible_length: &'static [u16],
    pub(super) possible_local_length: &'static [u16],
}

/// A national format (libphonenumber's `NumberFormat`), the fields the detector reads. (Every
/// pattern here is stored without the whitespace the metadata spreads it over several lines
/// with; libphonenumber compiles them with whitespace ignored.)
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Format {
    pub(super) pattern: &'static str,
    /// The last of the format's leading-digits patterns.
    pub(super) last_leading_digits: Option<&'static str>,
    /// `nationalPrefixFormattingRule`.
    pub(super) national_prefix_rule: Option<&'static str>,
    pub(super) national_prefix_optional: bool,
}

/// One region's metadata (libphonenumber's `PhoneMetadata`).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Region {
    pub(super) id: &'static str,
    pub(super) country_code: u16,
    pub(super) general: Desc,
    /// In libphonenumber's `getNumberType` order: premium rate, toll free, shared cost, VoIP,
    /// personal number, pager, UAN, voicemail, fixed line, mobile.
    pub(super) types: [Option<Desc>; 10],
    pub(super) no_international: Option<Desc>,
    pub(super) international_prefix: Option<&'static str>,
    pub(super) national_prefix: Option<&'static str>,
    pub(super) national_prefix_for_parsing: Option<&'static str>,
    pub(super) national_prefix_transform_rule: Option<&'static str>,
    pub(super) leading_digits: Option<&'static str>,
    pub(super) formats: &'static [Format],
}

/// The regions by calling code, the main region of a code first (the crate's `by_code` order).
pub(super) static REGIONS: &[Region] = include!("phone_regions.rs");

/// Writes `phone_regions.rs` from the `phonenumber` crate's database.
#[cfg(test)]
pub(super) fn generate() -> String {
    use phonenumber::metadata::{DATABASE, Descriptor};
    use std::fmt::Write as _;
    fn text(s: &str) -> String {
        format!("{s:?}")
    }
    fn opt(s: Option<&str>) -> String {
        s.map_or("None".into(), |s| format!("Some({s:?})"))
    }
    fn pattern(s: &str) -> String {
        text(&s.chars().filter(|c| !c.is_whitespace()).collect::<String>())
    }
    fn opt_pattern(s: Option<&str>) -> String {
        s.map_or("None".into(), |s| format!("Some({})", pattern(s)))
    }
    fn desc(d: &Descriptor) -> String {
        format!(
            "Desc {{ national_number: {}, possible_length: &{:?}, possible_local_length: &{:?} }}",
            pattern(d.national_number().as_str()),
            d.possible_length(),
            d.possible_local_length()
        )
    }
    fn opt_desc(d: Option<&Descriptor>) -> String {
        d.map_or("None".into(), |d| format!("Some({})", desc(d)))
    }
    let mut out = String::from(
        "// Generated from the phonenumber crate's metadata by `phone_meta::generate`; do not edit.\n&[\n",
    );
    for code in 0..1000u16 {
        let Some(metas) = DATABASE.by_code(&code) else {
            continue;
        };
        for m in metas {
            let d = m.descriptors();
            let types = [
                d.premium_rate(),
                d.toll_free(),
                d.shared_cost(),
                d.voip(),
                d.personal_number(),
                d.pager(),
                d.uan(),
                d.voicemail(),
                d.fixed_line(),
                d.mobile(),
            ];
            let _ = writeln!(
                out,
                "Region {{ id: {}, country_code: {},",
                text(m.id()),
                m.country_code()
            );
            let _ = writeln!(out, "general: {},", desc(d.general()));
            out.push_str("types: [\n");
            for t in types {
                let _ = writeln!(out, "{},", opt_desc(t));
            }
            out.push_str("],\n");
            let _ = writeln!(out, "no_international: {},", opt_desc(d.no_international()));
            let _ = writeln!(
                out,
                "international_prefix: {}, national_prefix: {}, national_prefix_for_parsing: {}, national_prefix_transform_rule: {}, leading_digits: {},",
                opt_pattern(m.international_prefix().map(|r| r.as_str())),
                opt(m.national_prefix()),
                opt_pattern(m.national_prefix_for_parsing().map(|r| r.as_str())),
                opt(m.national_prefix_transform_rule()),
                opt_pattern(m.leading_digits().map(|r| r.as_str())),
            );
            out.push_str("formats: &[\n");
            for f in m.formats() {
                let _ = writeln!(
                    out,
                    "Format {{ pattern: {}, last_leading_digits: {}, national_prefix_rule: {}, national_prefix_optional: {} }},",
                    pattern(f.pattern().as_str()),
                    opt_pattern(f.leading_digits().last().map(|r| r.as_str())),
                    opt(f.national_prefix()),
                    f.is_national_prefix_optional()
                );
            }
            out.push_str("] },\n");
        }
    }
    out.push_str("]\n");
    out
}
