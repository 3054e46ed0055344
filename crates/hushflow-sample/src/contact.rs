//! One contact at a time, drawn into reusable buffers. All draws happen here, whatever the
//! output format, so row `i` describes the same contact in CSV and in JSON lines; only how the
//! contact is written differs.

use crate::dice::Dice;
use crate::names::{COMPANIES, JOB_TITLES, LOCALES, Locale, MAIL_DOMAINS, NOTE_LINES};
use crate::pii;
use std::fmt::Write;

pub(crate) const ID: usize = 0;
pub(crate) const FIRST_NAME: usize = 1;
pub(crate) const LAST_NAME: usize = 2;
pub(crate) const EMAIL: usize = 3;
pub(crate) const PHONE: usize = 4;
pub(crate) const COMPANY: usize = 5;
pub(crate) const JOB_TITLE: usize = 6;
pub(crate) const STREET: usize = 7;
pub(crate) const CITY: usize = 8;
pub(crate) const POSTAL_CODE: usize = 9;
pub(crate) const COUNTRY: usize = 10;
pub(crate) const BIRTH_DATE: usize = 11;
pub(crate) const MARKETING_OPT_IN: usize = 12;
pub(crate) const CREATED_AT: usize = 13;
pub(crate) const UPDATED_AT: usize = 14;
pub(crate) const NOTES: usize = 15;

/// How a JSON export writes a field that has no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missing {
    Null,
    Omitted,
    EmptyString,
}

/// One contact's fields as text (CSV spelling for `marketing_opt_in`), plus what the JSON
/// writer needs to know.
pub(crate) struct Row {
    pub fields: [String; 16],
    pub opt_in: Option<bool>,
    pub missing: Missing,
    scratch: String,
}

impl Row {
    pub(crate) fn new() -> Self {
        Row {
            fields: std::array::from_fn(|_| String::with_capacity(64)),
            opt_in: None,
            missing: Missing::Null,
            scratch: String::with_capacity(64),
        }
    }
}

/// Total of the locale weights, for a weighted draw.
const LOCALE_WEIGHT: u64 = {
    let mut total = 0;
    let mut i = 0;
    while i < LOCALES.len() {
        total += LOCALES[i].weight;
        i += 1;
    }
    total
};

/// Contacts were created from 2016 on; the export was taken at `CREATED_UNTIL`.
const CREATED_FROM: i64 = days_from_civil(2016, 1, 1) * 86_400;
const CREATED_UNTIL: i64 = days_from_civil(2025, 7, 1) * 86_400;
const BORN_FROM: i64 = days_from_civil(1945, 1, 1);
const BORN_UNTIL: i64 = days_from_civil(2006, 12, 31);

/// Draws contact number `index` (0-based) into `row`.
pub(crate) fn fill(row: &mut Row, index: u64, d: &mut Dice) {
    for field in &mut row.fields {
        field.clear();
    }
    let f = &mut row.fields;
    let loc = pick_locale(d);

    let _ = write!(f[ID], "C{:08}", index + 1);

    let (first, first_ascii) = d.pick(loc.first_names);
    let (last, last_ascii) = d.pick(loc.last_names);
    match d.below(100) {
        0..=2 => {}
        3..=4 => push_upper(&mut f[FIRST_NAME], first),
        5..=7 => {
            f[FIRST_NAME].push_str(first);
            f[FIRST_NAME].push(' ');
        }
        _ => f[FIRST_NAME].push_str(first),
    }
    match d.below(100) {
        0 => {}
        1..=4 => push_upper(&mut f[LAST_NAME], last),
        5..=6 => {
            f[LAST_NAME].push(' ');
            f[LAST_NAME].push_str(last);
        }
        _ => f[LAST_NAME].push_str(last),
    }

    let company = if d.chance(150) {
        None
    } else {
        Some(d.pick(COMPANIES))
    };
    let domain = match company {
        Some((_, domain)) if d.chance(600) => domain,
        _ => d.pick(MAIL_DOMAINS),
    };
    if !d.chance(50) {
        push_email(
            &mut f[EMAIL],
            &mut row.scratch,
            first_ascii,
            last_ascii,
            domain,
            d,
        );
    }

    if !d.chance(60) {
        push_phone(&mut f[PHONE], loc, d);
    }

    if let Some((name, _)) = company {
        match d.below(100) {
            0..=2 => push_lower(&mut f[COMPANY], name),
            3..=4 => {
                f[COMPANY].push_str(name);
                f[COMPANY].push_str("  ");
            }
            _ => f[COMPANY].push_str(name),
        }
    }
    if !d.chance(200) {
        f[JOB_TITLE].push_str(d.pick(JOB_TITLES));
    }

    if !d.chance(80) {
        let street = d.pick(loc.streets);
        d.expand(&mut f[STREET], street);
        if d.chance(15) {
            f[STREET].push_str("\nBuilding B, 2nd floor");
        }
    }
    let city = d.pick_ref(loc.cities);
    if !d.chance(50) {
        if d.chance(30) {
            push_upper(&mut f[CITY], city.name);
        } else {
            f[CITY].push_str(city.name);
        }
        if !city.region.is_empty() && d.chance(150) {
            f[CITY].push_str(", ");
            f[CITY].push_str(city.region);
        }
    }
    if !d.chance(70) {
        let postal = &mut f[POSTAL_CODE];
        d.expand(postal, city.postal);
        match d.below(100) {
            // Spreadsheets drop leading zeros ("02134" becomes "2134").
            0..=3 if postal.starts_with('0') && !postal.contains('-') => {
                postal.remove(0);
            }
            4..=6 if loc.iso == "GB" || loc.iso == "NL" => {
                postal.make_ascii_lowercase();
            }
            7..=8 if postal.contains(' ') => postal.retain(|c| c != ' '),
            _ => {}
        }
    }
    match d.below(1000) {
        0..=29 => {}
        30..=169 => f[COUNTRY].push_str(d.pick(loc.country_names)),
        170..=184 => push_lower(&mut f[COUNTRY], loc.iso),
        _ => f[COUNTRY].push_str(loc.iso),
    }

    if !d.chance(300) {
        let day_number = BORN_FROM + d.below((BORN_UNTIL - BORN_FROM + 1) as u64) as i64;
        let (y, m, day) = civil_from_days(day_number);
        let _ = write!(f[BIRTH_DATE], "{y:04}-{m:02}-{day:02}");
    }

    row.opt_in = if d.chance(100) {
        None
    } else {
        Some(d.chance(350))
    };
    if let Some(yes) = row.opt_in {
        let spelling = match d.below(20) {
            0..=14 => ["false", "true"],
            15..=16 => ["no", "yes"],
            17..=18 => ["0", "1"],
            _ => ["FALSE", "TRUE"],
        };
        f[MARKETING_OPT_IN].push_str(spelling[usize::from(yes)]);
    }

    let created = CREATED_FROM + d.below((CREATED_UNTIL - CREATED_FROM) as u64) as i64;
    // Edited later, within three years and before the export was taken.
    let updated = if d.chance(250) {
        created
    } else {
        created + d.below((3 * 365 * 86_400).min(CREATED_UNTIL - created) as u64) as i64
    };
    let millis = if d.chance(150) {
        let c = d.below(1000);
        let u = if updated == created { c } else { d.below(1000) };
        Some((c, u))
    } else {
        None
    };
    push_timestamp(&mut f[CREATED_AT], created, millis.map(|m| m.0));
    push_timestamp(&mut f[UPDATED_AT], updated, millis.map(|m| m.1));

    push_notes(&mut f[NOTES], &mut row.scratch, loc, d);

    row.missing = match d.below(10) {
        0..=4 => Missing::Null,
        5..=7 => Missing::Omitted,
        _ => Missing::EmptyString,
    };
}

fn pick_locale(d: &mut Dice) -> &'static Locale {
    let mut n = d.below(LOCALE_WEIGHT);
    for loc in LOCALES {
        if n < loc.weight {
            return loc;
        }
        n -= loc.weight;
    }
    &LOCALES[0]
}

fn push_upper(out: &mut String, s: &str) {
    for c in s.chars() {
        out.extend(c.to_uppercase());
    }
}

fn push_lower(out: &mut String, s: &str) {
    for c in s.chars() {
        out.extend(c.to_lowercase());
    }
}

/// Appends an address built from the contact's name, then, now and then, dirties it the way
/// exports do: capitals, surrounding blanks, a display name.
fn push_email(
    out: &mut String,
    scratch: &mut String,
    first: &str,
    last: &str,
    domain: &str,
    d: &mut Dice,
) {
    scratch.clear();
    let initial = &first[..first.chars().next().map_or(0, char::len_utf8)];
    let _ = match d.below(7) {
        0 | 1 => write!(scratch, "{first}.{last}"),
        2 => write!(scratch, "{initial}{last}"),
        3 => write!(scratch, "{first}_{last}"),
        4 => write!(scratch, "{first}{last}{}", d.below(100)),
        5 => write!(scratch, "{last}.{first}"),
        _ => write!(scratch, "{first}{}", d.between(1950, 2005)),
    };
    scratch.push('@');
    scratch.push_str(domain);

    match d.below(1000) {
        // Capitalised words: "Jane.Doe@Example.com".
        0..=39 => {
            let mut up = true;
            for c in scratch.chars() {
                out.push(if up { c.to_ascii_uppercase() } else { c });
                up = matches!(c, '.' | '_' | '@');
            }
        }
        40..=59 => scratch
            .chars()
            .for_each(|c| out.push(c.to_ascii_uppercase())),
        60..=74 => {
            let at = scratch.find('@').unwrap_or(0);
            out.push_str(&scratch[..at]);
            scratch[at..]
                .chars()
                .for_each(|c| out.push(c.to_ascii_uppercase()));
        }
        75..=99 => {
            out.push(' ');
            out.push_str(scratch);
        }
        100..=119 => {
            out.push_str(scratch);
            out.push_str("  ");
        }
        120..=124 => {
            out.push('\t');
            out.push_str(scratch);
            out.push(' ');
        }
        125..=139 => {
            let _ = write!(out, "\"{} {}\" <{scratch}>", capital(first), capital(last));
        }
        140..=144 => {
            out.push_str(scratch);
            out.push_str("; ");
            out.push_str(last);
            out.push('@');
            out.push_str(d.pick(MAIL_DOMAINS));
        }
        _ => out.push_str(scratch),
    }
}

/// The ASCII name with its first letter capitalised, for display names.
fn capital(s: &str) -> impl std::fmt::Display + '_ {
    struct Capital<'a>(&'a str);
    impl std::fmt::Display for Capital<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let mut chars = self.0.chars();
            if let Some(c) = chars.next() {
                write!(f, "{}", c.to_ascii_uppercase())?;
            }
            f.write_str(chars.as_str())
        }
    }
    Capital(s)
}

/// What people type into a phone field when they have no number.
const PHONE_JUNK: &[&str] = &["n/a", "-", "unknown", "0000000000", "see notes", "+"];

/// Appends a phone number of the locale in one of the ways people write it, or now and then
/// something that is not a number at all.
pub(crate) fn push_phone(out: &mut String, loc: &Locale, d: &mut Dice) {
    if d.chance(8) {
        out.push_str(d.pick(PHONE_JUNK));
        return;
    }
    let kind = d.pick_ref(loc.phones);
    let prefix = d.pick(kind.prefixes).as_bytes();
    let mut digits = [0u8; 16];
    digits[..prefix.len()].copy_from_slice(prefix);
    let len = prefix.len() + kind.rest;
    for slot in &mut digits[prefix.len()..len] {
        *slot = b'0' + d.digit();
    }
    let mut next = 0;
    for c in d.pick(kind.templates).chars() {
        match c {
            '#' => {
                if let Some(&digit) = digits[..len].get(next) {
                    out.push(char::from(digit));
                }
                next += 1;
            }
            '%' => out.push(char::from(b'0' + d.digit())),
            other => out.push(other),
        }
    }
    if d.chance(10) {
        out.push_str(" (office)");
    }
}

fn push_timestamp(out: &mut String, secs: i64, millis: Option<u64>) {
    let (y, m, day) = civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}",
        t / 3600,
        t / 60 % 60,
        t % 60
    );
    if let Some(ms) = millis {
        let _ = write!(out, ".{ms:03}");
    }
    out.push('Z');
}

/// Appends free text: often nothing, often a remark, and in some rows personal data that has no
/// business being in a notes field.
fn push_notes(out: &mut String, scratch: &mut String, loc: &Locale, d: &mut Dice) {
    fn separate(out: &mut String, d: &mut Dice) {
        if !out.is_empty() {
            out.push_str(if d.chance(120) { "\n" } else { " " });
        }
    }
    if d.chance(450) {
        out.push_str(d.pick(NOTE_LINES));
    }
    if d.chance(70) {
        separate(out, d);
        let (first, last) = (d.pick(loc.first_names).1, d.pick(loc.last_names).1);
        let _ = write!(
            out,
            "{}{first}.{last}@{}",
            d.pick(&["Private email: ", "alt. mail ", "cc ", "Assistant: "]),
            d.pick(MAIL_DOMAINS)
        );
    }
    if d.chance(70) {
        separate(out, d);
        out.push_str(d.pick(&["Mobile: ", "call ", "Tel. ", "Direct line "]));
        push_phone(out, d.pick_ref(LOCALES), d);
    }
    if d.chance(60) {
        separate(out, d);
        out.push_str(d.pick(&["Card on file: ", "paid with ", "CC# ", "Kreditkarte "]));
        pii::push_card(out, d);
        if d.chance(500) {
            let _ = write!(out, " exp {:02}/{}", d.between(1, 12), d.between(26, 31));
        }
    }
    if d.chance(60) {
        separate(out, d);
        out.push_str(d.pick(&["IBAN ", "Bank: IBAN ", "Refund to ", "Konto: "]));
        pii::push_iban(out, d);
    }
    if d.chance(55) {
        separate(out, d);
        out.push_str(d.pick(&["SSN ", "SSN: ", "social security no. ", "ssn="]));
        pii::push_ssn(out, d);
    }
    if d.chance(60) {
        separate(out, d);
        out.push_str(d.pick(&["Signed up from ", "last login IP ", "IP: "]));
        pii::push_ipv4(out, d);
    }
    if d.chance(50) {
        separate(out, d);
        out.push_str(d.pick(&["login from ", "IPv6 ", "seen at "]));
        pii::push_ipv6(out, d);
    }
    if !out.is_empty() && d.chance(25) {
        scratch.clear();
        scratch.push_str(out);
        out.clear();
        let _ = write!(out, "\"{scratch}\" – quoted from ticket");
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
const fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        for day in BORN_FROM..CREATED_UNTIL / 86_400 {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, i64::from(m), i64::from(d)), day);
        }
    }

    #[test]
    fn word_lists_are_usable() {
        assert!(!COMPANIES.is_empty() && !JOB_TITLES.is_empty() && !NOTE_LINES.is_empty());
        for loc in LOCALES {
            assert!(loc.weight > 0, "{}", loc.iso);
            for list in [loc.first_names, loc.last_names] {
                assert!(!list.is_empty(), "{}", loc.iso);
                for (_, ascii) in list {
                    assert!(
                        !ascii.is_empty() && ascii.bytes().all(|b| b.is_ascii_lowercase()),
                        "{}: {ascii}",
                        loc.iso
                    );
                }
            }
            assert!(!loc.cities.is_empty() && !loc.streets.is_empty());
            assert!(!loc.country_names.is_empty() && !loc.phones.is_empty());
        }
    }

    #[test]
    fn phone_templates_use_every_digit() {
        for loc in LOCALES {
            for kind in loc.phones {
                assert!(!kind.prefixes.is_empty() && !kind.templates.is_empty());
                for prefix in kind.prefixes {
                    let len = prefix.len() + kind.rest;
                    assert!(len <= 16);
                    for template in kind.templates {
                        let slots = template.chars().filter(|c| *c == '#').count();
                        assert_eq!(slots, len, "{} {prefix} {template}", loc.iso);
                    }
                }
            }
        }
    }

    #[test]
    fn phones_look_like_phones() {
        let mut d = Dice::new(5);
        let mut s = String::new();
        for loc in LOCALES {
            for _ in 0..500 {
                s.clear();
                push_phone(&mut s, loc, &mut d);
                let digits = s.chars().filter(char::is_ascii_digit).count();
                assert!(
                    PHONE_JUNK.contains(&s.as_str()) || digits >= 8,
                    "{}: {s}",
                    loc.iso
                );
            }
        }
    }
}
