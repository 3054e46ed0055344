//! Generators for the personal data that hides in free-text notes: payment card numbers that
//! pass the Luhn check, IBANs with a correct mod-97 checksum, US social security numbers in the
//! issuable ranges, and IPv4/IPv6 addresses. The validators are here too, for the tests and for
//! anyone who wants to check a sample.

use crate::dice::Dice;
use std::fmt::Write;

/// Whether a string of digits (separators ' ' and '-' allowed) passes the Luhn check.
#[cfg(test)]
pub(crate) fn luhn_valid(number: &str) -> bool {
    let mut sum = 0u32;
    let mut count = 0usize;
    for c in number.bytes().rev() {
        match c {
            b'0'..=b'9' => {
                let mut d = u32::from(c - b'0');
                if count % 2 == 1 {
                    d *= 2;
                    if d > 9 {
                        d -= 9;
                    }
                }
                sum += d;
                count += 1;
            }
            b' ' | b'-' => {}
            _ => return false,
        }
    }
    count >= 2 && sum.is_multiple_of(10)
}

/// The digit that, appended to `payload` (digit values 0-9), makes it pass the Luhn check.
fn luhn_check_digit(payload: &[u8]) -> u8 {
    let sum: u32 = payload
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// Appends a Luhn-valid card number: mostly 16-digit Visa (4…) and Mastercard (51-55, 2221-2720),
/// sometimes 15-digit Amex (34/37), written plain, in groups with spaces, or with dashes.
pub(crate) fn push_card(out: &mut String, d: &mut Dice) {
    let mut digits = [0u8; 16];
    let (len, prefix_len) = match d.below(20) {
        0..=11 => {
            digits[0] = 4;
            (16, 1)
        }
        12..=14 => {
            digits[0] = 5;
            digits[1] = d.between(1, 5) as u8;
            (16, 2)
        }
        15..=16 => {
            let p = d.between(2221, 2720) as u16;
            digits[0] = (p / 1000) as u8;
            digits[1] = (p / 100 % 10) as u8;
            digits[2] = (p / 10 % 10) as u8;
            digits[3] = (p % 10) as u8;
            (16, 4)
        }
        _ => {
            digits[0] = 3;
            digits[1] = if d.chance(500) { 4 } else { 7 };
            (15, 2)
        }
    };
    for slot in &mut digits[prefix_len..len - 1] {
        *slot = d.digit();
    }
    digits[len - 1] = luhn_check_digit(&digits[..len - 1]);
    let groups: &[usize] = if len == 15 { &[4, 6, 5] } else { &[4, 4, 4, 4] };
    let sep = match d.below(10) {
        0..=3 => None,
        4..=7 => Some(' '),
        _ => Some('-'),
    };
    let mut at = 0;
    for (g, &size) in groups.iter().enumerate() {
        if g > 0
            && let Some(sep) = sep
        {
            out.push(sep);
        }
        for &digit in &digits[at..at + size] {
            out.push(char::from(b'0' + digit));
        }
        at += size;
    }
}

/// Whether an IBAN (spaces allowed, any case) has a valid mod-97 checksum.
#[cfg(test)]
pub(crate) fn iban_valid(iban: &str) -> bool {
    let compact: Vec<u8> = iban
        .bytes()
        .filter(|b| *b != b' ')
        .map(|b| b.to_ascii_uppercase())
        .collect();
    if compact.len() < 5 || compact.len() > 34 || !compact.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    if !compact[..2].iter().all(u8::is_ascii_uppercase)
        || !compact[2..4].iter().all(u8::is_ascii_digit)
    {
        return false;
    }
    let rearranged = compact[4..].iter().chain(&compact[..4]).copied();
    mod97(rearranged) == 1
}

/// The remainder mod 97 of the number an IBAN's characters spell (letters count 10-35).
fn mod97(chars: impl Iterator<Item = u8>) -> u32 {
    chars.fold(0u32, |r, c| {
        if c.is_ascii_digit() {
            (r * 10 + u32::from(c - b'0')) % 97
        } else {
            (r * 100 + u32::from(c - b'A') + 10) % 97
        }
    })
}

/// Appends an IBAN from Germany, the United Kingdom, France or the Netherlands with correct
/// check digits (and, for France, a correct RIB key), in print groups of four or compact.
pub(crate) fn push_iban(out: &mut String, d: &mut Dice) {
    const GB_BANKS: &[&str] = &["NWBK", "BARC", "LOYD", "MIDL", "HBUK"];
    const NL_BANKS: &[&str] = &["ABNA", "INGB", "RABO", "TRIO", "SNSB"];
    let mut bban = String::with_capacity(30);
    let country = match d.below(4) {
        0 => {
            d.expand(&mut bban, "^#######");
            d.expand(&mut bban, "##########");
            "DE"
        }
        1 => {
            bban.push_str(d.pick(GB_BANKS));
            d.expand(&mut bban, "######");
            d.expand(&mut bban, "########");
            "GB"
        }
        2 => {
            let bank = d.between(10_000, 99_999);
            let branch = d.below(100_000);
            let account = d.below(100_000_000_000);
            let key = 97 - (89 * bank + 15 * branch + 3 * account) % 97;
            let _ = write!(bban, "{bank:05}{branch:05}{account:011}{key:02}");
            "FR"
        }
        _ => {
            bban.push_str(d.pick(NL_BANKS));
            d.expand(&mut bban, "##########");
            "NL"
        }
    };
    let check = 98 - mod97(bban.bytes().chain(country.bytes()).chain(*b"00"));
    let mut iban = String::with_capacity(34);
    let _ = write!(iban, "{country}{check:02}{bban}");
    if d.chance(550) {
        for (i, c) in iban.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                out.push(' ');
            }
            out.push(c);
        }
    } else {
        out.push_str(&iban);
    }
}

/// Appends a US social security number `ddd-dd-dddd` in the issuable ranges: area 001-899
/// except 666, group 01-99, serial 0001-9999.
pub(crate) fn push_ssn(out: &mut String, d: &mut Dice) {
    let mut area = d.between(1, 898);
    if area >= 666 {
        area += 1;
    }
    let group = d.between(1, 99);
    let serial = d.between(1, 9999);
    let _ = write!(out, "{area:03}-{group:02}-{serial:04}");
}

/// Appends an IPv4 address: documentation ranges, private ranges or public-looking ones.
pub(crate) fn push_ipv4(out: &mut String, d: &mut Dice) {
    let host = d.between(1, 254);
    let _ = match d.below(6) {
        0 => write!(out, "192.0.2.{host}"),
        1 => write!(out, "198.51.100.{host}"),
        2 => write!(out, "203.0.113.{host}"),
        3 => write!(out, "10.{}.{}.{host}", d.below(256), d.below(256)),
        4 => write!(out, "192.168.{}.{host}", d.below(256)),
        _ => {
            let mut first = d.between(11, 222);
            if first == 127 {
                first = 128;
            }
            write!(out, "{first}.{}.{}.{host}", d.below(256), d.below(256))
        }
    };
}

/// Appends an IPv6 address, compressed (`2001:db8::…`, `fe80::…`) or written out in full.
pub(crate) fn push_ipv6(out: &mut String, d: &mut Dice) {
    let _ = match d.below(3) {
        0 => write!(
            out,
            "2001:db8:{:x}::{:x}",
            d.below(0x1_0000),
            d.between(1, 0xffff)
        ),
        1 => write!(
            out,
            "fe80::{:x}:{:x}ff:fe{:02x}:{:x}",
            d.below(0x1_0000),
            d.below(0x100),
            d.below(0x100),
            d.between(1, 0xffff)
        ),
        _ => {
            let _ = write!(out, "2001:db8");
            for _ in 0..6 {
                let _ = write!(out, ":{:x}", d.below(0x1_0000));
            }
            Ok(())
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn luhn_check_known_numbers() {
        assert!(luhn_valid("4111 1111 1111 1111"));
        assert!(luhn_valid("5500-0000-0000-0004"));
        assert!(luhn_valid("378282246310005"));
        assert!(!luhn_valid("4111 1111 1111 1112"));
        assert!(!luhn_valid("4111a111"));
        assert_eq!(luhn_check_digit(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1]), 3);
    }

    #[test]
    fn generated_cards_pass_luhn() {
        let mut d = Dice::new(42);
        let mut s = String::new();
        for _ in 0..20_000 {
            s.clear();
            push_card(&mut s, &mut d);
            assert!(luhn_valid(&s), "{s}");
            let digits: String = s.chars().filter(char::is_ascii_digit).collect();
            assert!(matches!(digits.len(), 15 | 16), "{s}");
            assert!(matches!(digits.as_bytes()[0], b'2'..=b'5'), "{s}");
        }
    }

    #[test]
    fn iban_check_known_numbers() {
        assert!(iban_valid("DE89 3704 0044 0532 0130 00"));
        assert!(iban_valid("GB29NWBK60161331926819"));
        assert!(iban_valid("FR14 2004 1010 0505 0001 3M02 606"));
        assert!(iban_valid("nl91abna0417164300"));
        assert!(!iban_valid("DE89 3704 0044 0532 0130 01"));
        assert!(!iban_valid("GB29-NWBK-6016"));
    }

    #[test]
    fn generated_ibans_pass_mod97() {
        let mut d = Dice::new(42);
        let mut s = String::new();
        let mut countries = std::collections::BTreeSet::new();
        for _ in 0..20_000 {
            s.clear();
            push_iban(&mut s, &mut d);
            assert!(iban_valid(&s), "{s}");
            let len = s.bytes().filter(|b| *b != b' ').count();
            let expected = match &s[..2] {
                "DE" | "GB" => 22,
                "FR" => 27,
                "NL" => 18,
                other => panic!("unexpected country {other}"),
            };
            assert_eq!(len, expected, "{s}");
            countries.insert(s[..2].to_string());
        }
        assert_eq!(countries.len(), 4);
    }

    #[test]
    fn french_ibans_carry_a_valid_rib_key() {
        let mut d = Dice::new(3);
        let mut s = String::new();
        let mut seen = 0;
        while seen < 500 {
            s.clear();
            push_iban(&mut s, &mut d);
            let compact: String = s.chars().filter(|c| *c != ' ').collect();
            if !compact.starts_with("FR") {
                continue;
            }
            seen += 1;
            let n = |r: std::ops::Range<usize>| compact[r].parse::<u64>().unwrap();
            let (bank, branch, account, key) = (n(4..9), n(9..14), n(14..25), n(25..27));
            assert_eq!((89 * bank + 15 * branch + 3 * account + key) % 97, 0, "{s}");
        }
    }

    #[test]
    fn generated_ssns_avoid_unissued_areas() {
        let mut d = Dice::new(42);
        let mut s = String::new();
        for _ in 0..20_000 {
            s.clear();
            push_ssn(&mut s, &mut d);
            let b = s.as_bytes();
            assert_eq!(b.len(), 11, "{s}");
            assert_eq!((b[3], b[6]), (b'-', b'-'), "{s}");
            let area: u32 = s[..3].parse().unwrap();
            let group: u32 = s[4..6].parse().unwrap();
            let serial: u32 = s[7..].parse().unwrap();
            assert!(area != 0 && area != 666 && area < 900, "{s}");
            assert!(group != 0 && serial != 0, "{s}");
        }
    }

    #[test]
    fn generated_ip_addresses_parse() {
        let mut d = Dice::new(42);
        let mut s = String::new();
        for _ in 0..5_000 {
            s.clear();
            push_ipv4(&mut s, &mut d);
            assert!(s.parse::<Ipv4Addr>().is_ok(), "{s}");
            s.clear();
            push_ipv6(&mut s, &mut d);
            assert!(s.parse::<Ipv6Addr>().is_ok(), "{s}");
        }
    }
}
