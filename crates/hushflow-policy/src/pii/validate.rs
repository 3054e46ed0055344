//! Validation of candidates: a pattern says "looks like", these say "is". None allocates except
//! the phone check, which runs only for candidates that pass cheaper checks first.

use super::phone::Phones;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A practical address: the pattern already requires `local@label.tld`; the local part must hold
/// a letter or digit, the lengths must fit RFC 5321, and the top-level domain must exist
/// (`logo@2x.png` and `user@host.local` are no addresses) or be one reserved for examples
/// (`jane@acme.example`).
pub(super) fn email(candidate: &str) -> bool {
    let Some((local, domain)) = candidate.split_once('@') else {
        return false;
    };
    let tld = domain.rsplit('.').next().unwrap_or(domain);
    (1..=64).contains(&local.len())
        && (super::tld::exists(tld) || super::tld::reserved_for_examples(tld))
        && candidate.len() <= 254
        && local.chars().any(char::is_alphanumeric)
        && domain
            .split('.')
            .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'))
}

/// 14 to 19 digits passing the Luhn check, with an issuer prefix and a length that card
/// networks use, in one block or in groups separated by one kind of separator (4-4-4-4,
/// 4-4-4-4-3, 4-6-5, 4-6-4).
pub(super) fn card(candidate: &str) -> bool {
    let mut digits = [0u8; 19];
    let mut count = 0;
    let mut groups = [0u8; 19];
    let mut group_count = 0;
    let mut separator = None;
    for b in candidate.bytes() {
        match b {
            b'0'..=b'9' => {
                if count == digits.len() {
                    return false;
                }
                digits[count] = b - b'0';
                count += 1;
                groups[group_count] += 1;
            }
            b' ' | b'-' => {
                if separator.is_some_and(|s| s != b) || groups[group_count] == 0 {
                    return false;
                }
                separator = Some(b);
                group_count += 1;
            }
            _ => return false,
        }
    }
    let groups = &groups[..=group_count];
    let digits = &digits[..count];
    if !(13..=19).contains(&count) || digits.iter().all(|&d| d == digits[0]) {
        return false;
    }
    let laid_out = groups.len() == 1
        || matches!(groups, [4, 6, 5] | [4, 6, 4])
        || (groups[..groups.len() - 1].iter().all(|&g| g == 4)
            && (1..=4).contains(&groups[groups.len() - 1]));
    laid_out && issuer(digits) && luhn(digits)
}

/// Issuer prefixes and the lengths their cards have: Visa 4 (16, 19), Mastercard 51-55 and
/// 2221-2720 (16), Amex 34/37 (15), Diners 36 (14-19) and 30/38/39 (14-19), JCB 35 (16-19),
/// Discover and UnionPay 60/62/64/65 (16-19), Maestro 50, 56-69 (16-19), Mir 2200-2204
/// (16-19). Thirteen-digit Visa numbers are no longer issued, and a 13-digit number starting
/// with 4 is more often an EAN than a card.
fn issuer(d: &[u8]) -> bool {
    let len = d.len();
    let two = d[0] * 10 + d[1];
    let four = u16::from(two) * 100 + u16::from(d[2] * 10 + d[3]);
    match two {
        40..=49 => len == 16 || len == 19,
        51..=55 => len == 16,
        22..=27 if (2221..=2720).contains(&four) => len == 16,
        22 if (2200..=2204).contains(&four) => len >= 16,
        34 | 37 => len == 15,
        30 | 36 | 38 | 39 => len >= 14,
        35 | 50 | 56..=69 => len >= 16,
        _ => false,
    }
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                if d > 4 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// ISO 13616: the country's length and format, and the mod-97 check digits. Written in one
/// block or in groups of four separated by single spaces.
pub(super) fn iban(candidate: &str) -> bool {
    if candidate.parse::<iban::Iban>().is_ok() {
        return true;
    }
    // Spaces somewhere other than every fourth character: check the compact form.
    let mut buf = [0u8; 34];
    let mut len = 0;
    for b in candidate.bytes().filter(|&b| b != b' ') {
        if len == buf.len() {
            return false;
        }
        buf[len] = b;
        len += 1;
    }
    std::str::from_utf8(&buf[..len]).is_ok_and(|s| s.parse::<iban::Iban>().is_ok())
}

/// `AAA-GG-SSSS` (or with single spaces) under the SSA's rules: area not 000, 666 or 900-999;
/// group not 00; serial not 0000.
pub(super) fn ssn(candidate: &str) -> bool {
    let b = candidate.as_bytes();
    if b.len() != 11 {
        return false;
    }
    let number = |range: std::ops::Range<usize>| {
        b[range].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let (Some(area), Some(group), Some(serial)) = (number(0..3), number(4..6), number(7..11))
    else {
        return false;
    };
    b[3] == b[6] && area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// A dotted quad, each octet 0-255 without leading zeros (`std::net`'s parse).
pub(super) fn ipv4(candidate: &str) -> bool {
    candidate.parse::<Ipv4Addr>().is_ok()
}

/// An IPv6 address (`std::net`'s parse), with an optional zone (`%eth0`). `::1`, `::` and short
/// forms such as `12:30::` (under five hex digits) are not taken for an address of someone.
pub(super) fn ipv6(candidate: &str) -> bool {
    let address = candidate.split('%').next().unwrap_or(candidate);
    let Ok(parsed) = address.parse::<Ipv6Addr>() else {
        return false;
    };
    let embeds_v4 = address.contains('.');
    let hex_digits = address.bytes().filter(u8::is_ascii_hexdigit).count();
    !parsed.is_unspecified() && (embeds_v4 || hex_digits >= 5)
}

/// A phone number, checked with libphonenumber's rules and metadata (see `phone.rs`):
/// - international (`+49 …`, `(+49) …`, `+44 (0)20 …`, `0049 …`): a valid number of the
///   country it names;
/// - national in one of `regions` (the record's own, or the configured list), not shaped like
///   a date: a valid number that starts with the region's trunk prefix (`030 …` in Germany),
///   or one that libphonenumber's national format writes without it (`138 1234 5678` in China,
///   `98765 43210` in India, any number in Italy or Spain), so order numbers and amounts,
///   which rarely pass both, stay;
/// - North American in the usual shapes (`(415) 555-0132`, `415-555-0132`, `1 415 555 0132`)
///   whatever the regions: a bare run of ten digits is as likely an id as a phone number.
pub(super) fn phone(candidate: &str, phones: &Phones, regions: &[usize]) -> bool {
    let mut buf = [0u8; 24];
    let mut count = 0;
    for b in candidate.bytes().filter(u8::is_ascii_digit) {
        if count == buf.len() {
            return false;
        }
        buf[count] = b;
        count += 1;
    }
    let Ok(digits) = std::str::from_utf8(&buf[..count]) else {
        return false;
    };
    let body = candidate.trim_start_matches('(');
    if body.starts_with('+') {
        return (7..=15).contains(&count) && phones.international(digits).is_some();
    }
    if body.starts_with("00") {
        // `0049 30 1234567`; a bare run of digits starting with 00 is more likely an id.
        return (9..=17).contains(&count)
            && candidate.len() > count
            && phones.international(&digits[2..]).is_some();
    }
    if !(7..=15).contains(&count) {
        return false;
    }
    if date_shaped(candidate) || zip_plus_four(candidate) || reference_with_year(candidate) {
        return false;
    }
    let nanp = nanp_shape(candidate);
    for &region in regions {
        let (code, trunk) = phones.region_info(region);
        if code == 1 {
            if nanp && phones.national(digits, Some(region)).is_some() {
                return true;
            }
            continue;
        }
        // Written with the trunk prefix, or a number that is written without it (a mobile
        // number in China, most numbers in Italy or Spain, which have no trunk prefix).
        let leading = trunk.is_none_or(|p| digits.starts_with(p));
        if let Some(n) = phones.national_number(digits, Some(region), !leading)
            && n.code == code
            && (leading || !n.needs_trunk)
        {
            return true;
        }
    }
    nanp && phones
        .national(digits, phones.north_america())
        .is_some_and(|(code, _)| code == 1)
}

/// A date in digits: `15.03.2024`, `03/15/2024`, `2024-03-15`, `7/4/26`. German numbers are so
/// varied that `07.03.2021` is also a valid phone number, but nobody writes one like that.
pub(super) fn date_shaped(candidate: &str) -> bool {
    // `(02/15/2025)`: the phone pattern takes an opening bracket with it.
    let candidate = candidate.trim_start_matches('(').trim_end_matches(')');
    let mut parts = [0u32; 3];
    let mut lens = [0usize; 3];
    let mut n = 0;
    let mut sep = None;
    for b in candidate.bytes() {
        match b {
            b'0'..=b'9' => {
                parts[n] = parts[n]
                    .saturating_mul(10)
                    .saturating_add(u32::from(b - b'0'));
                lens[n] += 1;
            }
            b'.' | b'/' | b'-' if sep.is_none_or(|s| s == b) && n < 2 && lens[n] > 0 => {
                sep = Some(b);
                n += 1;
            }
            _ => return false,
        }
    }
    if n != 2 {
        return false;
    }
    let day_month =
        |a: u32, b: u32| (1..=31).contains(&a) && (1..=31).contains(&b) && a.min(b) <= 12;
    match lens {
        [4, 1..=2, 1..=2] => (1900..=2099).contains(&parts[0]) && day_month(parts[1], parts[2]),
        [1..=2, 1..=2, 2 | 4] => day_month(parts[0], parts[1]),
        _ => false,
    }
}

/// A file or case reference with its year, `91029/2025`: digits, one slash, a year. A phone
/// number written with a slash puts the area code before it, which starts with the trunk
/// prefix (`030/1234567`), so a first group starting with 0 is left to the phone rules.
fn reference_with_year(candidate: &str) -> bool {
    let Some((number, year)) = candidate.split_once('/') else {
        return false;
    };
    !number.is_empty()
        && !number.starts_with('0')
        && number.bytes().all(|b| b.is_ascii_digit())
        && year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && (1950..=2049).contains(&year.parse::<u16>().unwrap_or(0))
}

/// A US ZIP+4 code, `94107-1234`: nine digits that are also a valid number in Spain (or any
/// plan without a trunk prefix), but nobody groups a phone number 5-4 with a dash.
fn zip_plus_four(candidate: &str) -> bool {
    let b = candidate.as_bytes();
    b.len() == 10
        && b[5] == b'-'
        && b[..5].iter().all(u8::is_ascii_digit)
        && b[6..].iter().all(u8::is_ascii_digit)
}

/// `[1 ](415) 555-0132`, `415-555-0132`, `415.555.0132`, `415 555 0132`: ten digits in groups
/// 3-3-4 (optionally after `1` and a separator), one separator between groups.
fn nanp_shape(candidate: &str) -> bool {
    let mut b = candidate.as_bytes();
    let sep = |c: u8| matches!(c, b' ' | b'-' | b'.');
    if b.len() > 2 && b[0] == b'1' && sep(b[1]) {
        b = &b[2..];
    }
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let rest = if b.first() == Some(&b'(') {
        if b.len() < 5 || !digits(&b[1..4]) || b[4] != b')' {
            return false;
        }
        let r = &b[5..];
        r.strip_prefix(b" ").unwrap_or(r)
    } else {
        if b.len() < 4 || !digits(&b[..3]) || !sep(b[3]) {
            return false;
        }
        &b[4..]
    };
    rest.len() == 8 && digits(&rest[..3]) && sep(rest[3]) && digits(&rest[4..])
}
