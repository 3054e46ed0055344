//! Validation of candidates: a pattern says "looks like", these say "is".

use super::PiiKind;
use std::net::{Ipv4Addr, Ipv6Addr};

pub(super) fn check(
    kind: PiiKind,
    candidate: &str,
    region: Option<phonenumber::country::Id>,
) -> bool {
    match kind {
        PiiKind::Email => candidate
            .split_once('@')
            .is_some_and(|(local, _)| !local.starts_with('.') && !local.ends_with('.')),
        PiiKind::CreditCard => luhn_card(candidate),
        PiiKind::Iban => {
            let compact: String = candidate.chars().filter(|c| !c.is_whitespace()).collect();
            compact.parse::<iban::Iban>().is_ok()
        }
        PiiKind::UsSsn => ssn(candidate),
        PiiKind::IpAddress => {
            let addr = candidate.split('%').next().unwrap_or(candidate);
            addr.parse::<Ipv4Addr>().is_ok()
                || (addr.contains("::") || addr.matches(':').count() == 7)
                    && addr.parse::<Ipv6Addr>().is_ok()
        }
        PiiKind::Phone => phone(candidate, region),
    }
}

/// 13 to 19 digits passing the Luhn check, spaces or dashes allowed between groups.
pub(super) fn luhn_card(candidate: &str) -> bool {
    let digits: Vec<u32> = candidate.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) || digits.iter().all(|d| *d == digits[0]) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// `AAA-GG-SSSS` with the SSA's rules: area not 000, 666 or 900-999; group not 00; serial not 0000.
pub(super) fn ssn(candidate: &str) -> bool {
    let parts: Vec<&str> = candidate.split('-').collect();
    let [area, group, serial] = parts.as_slice() else {
        return false;
    };
    let (Ok(a), Ok(g), Ok(s)) = (
        area.parse::<u32>(),
        group.parse::<u32>(),
        serial.parse::<u32>(),
    ) else {
        return false;
    };
    a != 0 && a != 666 && a < 900 && g != 0 && s != 0
}

fn phone(candidate: &str, region: Option<phonenumber::country::Id>) -> bool {
    plausible_phone(candidate, region)
        && crate::normalize::parse_phone(candidate, region)
            .is_some_and(|n| phonenumber::is_valid(&n))
}

/// A cheap shape check before the libphonenumber parse, which costs microseconds: free text is
/// full of dates, prices and order numbers that look like digits and separators.
fn plausible_phone(candidate: &str, region: Option<phonenumber::country::Id>) -> bool {
    use phonenumber::country::Id;
    let digits: Vec<u8> = candidate
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|d| d - b'0')
        .collect();
    if !(7..=15).contains(&digits.len()) || looks_like_date(candidate) {
        return false;
    }
    if candidate.starts_with('+') {
        return true;
    }
    match region {
        // Without a region only numbers with a country code can be told apart from other numbers.
        None => false,
        // North America: ten digits (an optional leading 1), area code and exchange from 2-9.
        Some(Id::US | Id::CA) => {
            let national = match digits.as_slice() {
                [1, rest @ ..] if rest.len() == 10 => rest,
                d if d.len() == 10 => d,
                _ => return false,
            };
            national[0] >= 2 && national[3] >= 2
        }
        Some(_) => (8..=12).contains(&digits.len()),
    }
}

/// `2024-03-15`, `15.03.2024`, `03/15/2024` and the like.
fn looks_like_date(candidate: &str) -> bool {
    let groups: Vec<&str> = candidate.split(['-', '.', '/']).collect();
    if groups.len() != 3
        || !groups
            .iter()
            .all(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    matches!(
        lens.as_slice(),
        [4, 1..=2, 1..=2] | [1..=2, 1..=2, 2] | [1..=2, 1..=2, 4]
    )
}
