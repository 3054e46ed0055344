//! The SOQL the source sends, built from checked parts only: field and object names must be
//! identifiers, times are written by [`literal`] from numbers, and an `Id` is checked to be
//! 15 or 18 letters and digits before it is quoted. No text from a record or a saved position
//! reaches a query any other way, so nothing can change its meaning.
//!
//! Times are whole seconds since the epoch (Salesforce keeps `SystemModstamp` to the second),
//! written and read as ISO 8601 UTC.

/// Whether `name` is an API name: a letter, then letters, digits and underscores (custom
/// objects and fields end in `__c`), at most 80 characters.
pub(super) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 80
}

/// Whether `id` is a Salesforce record id (15 or 18 letters and digits).
pub(super) fn is_record_id(id: &str) -> bool {
    (id.len() == 15 || id.len() == 18) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `value` as a SOQL string literal: quoted, with `\`, `'`, `"` and line breaks escaped as the
/// SOQL reference lists, so no value can end the literal early.
pub(super) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A window of `SystemModstamp` to read: after `from` (or from the start), up to and including
/// `until`, and past `(stamp, id)` when a run stopped inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Window {
    pub from: Option<u64>,
    pub until: u64,
    pub past: Option<(u64, String)>,
}

/// `SELECT fields FROM object [WHERE window ORDER BY SystemModstamp, Id]`. `fields` and
/// `object` must have passed [`is_identifier`], and `past`'s id [`is_record_id`]: checked here
/// again, as an error rather than a query that says something else.
pub(super) fn select(
    fields: &[String],
    object: &str,
    window: Option<&Window>,
) -> Result<String, String> {
    if let Some(bad) = fields.iter().find(|f| !is_identifier(f)) {
        let _ = bad;
        return Err(
            "a field name is not a Salesforce API name (letters, digits, underscores)".into(),
        );
    }
    if !is_identifier(object) {
        return Err("the object is not a Salesforce API name".into());
    }
    let mut q = format!("SELECT {} FROM {object}", fields.join(", "));
    if let Some(w) = window {
        let mut conditions = Vec::new();
        match &w.past {
            Some((stamp, id)) => {
                if !is_record_id(id) {
                    return Err("the saved position's record id is not a Salesforce id".into());
                }
                let at = literal(*stamp);
                conditions.push(format!(
                    "(SystemModstamp > {at} OR (SystemModstamp = {at} AND Id > '{id}'))"
                ));
            }
            None => {
                if let Some(from) = w.from {
                    conditions.push(format!("SystemModstamp > {}", literal(from)));
                }
            }
        }
        conditions.push(format!("SystemModstamp <= {}", literal(w.until)));
        q.push_str(" WHERE ");
        q.push_str(&conditions.join(" AND "));
        q.push_str(" ORDER BY SystemModstamp, Id");
    }
    Ok(q)
}

/// Seconds since the epoch as a SOQL dateTime literal (`2024-05-01T09:30:00Z`).
pub(super) fn literal(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Reads a dateTime as Salesforce writes it (`2024-05-01T09:30:00.000+0000`) or as
/// [`literal`] does, into seconds since the epoch (fractions dropped, offsets applied).
pub(super) fn parse_time(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "+0000" | "+00:00" | "-0000" | "-00:00" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            let digits: String = rest[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let hh: i64 = digits[..2].parse().ok()?;
            let mm: i64 = digits[2..].parse().ok()?;
            sign * (hh * 3600 + mm * 60)
        }
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset;
    u64::try_from(secs).ok()
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The day count since 1970-01-01 of a civil date (the inverse of [`civil_from_days`]).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A value cannot end the literal early: every quote and backslash inside is escaped, so
    /// the only unescaped quotes are the two around it.
    #[test]
    fn a_quoted_value_stays_one_literal() {
        assert_eq!(quote("a@b.org"), "'a@b.org'");
        assert_eq!(quote("x' OR Name != '"), "'x\\' OR Name != \\''");
        assert_eq!(quote("back\\slash\n"), "'back\\\\slash\\n'");
        assert_eq!(quote("\"q\""), "'\\\"q\\\"'");
    }

    proptest! {
        #[test]
        fn quoting_escapes_every_quote(value in ".{0,40}") {
            let q = quote(&value);
            let inner = &q[1..q.len() - 1];
            let mut escaped = false;
            for c in inner.chars() {
                if escaped {
                    escaped = false;
                    continue;
                }
                prop_assert!(c != '\'' && c != '\n', "{q}");
                escaped = c == '\\';
            }
            prop_assert!(!escaped, "{q}");
        }
    }

    #[test]
    fn names_and_ids_are_checked() {
        for ok in ["Contact", "Email", "Thing__c", "A1"] {
            assert!(is_identifier(ok), "{ok}");
        }
        for bad in [
            "",
            "1a",
            "Email,Phone",
            "Name FROM User",
            "x'",
            "_a",
            "Owner.Name",
        ] {
            assert!(!is_identifier(bad), "{bad}");
        }
        assert!(is_record_id("0035g00000ABCDE"));
        assert!(is_record_id("0035g00000ABCDEAAA"));
        assert!(!is_record_id("0035g00000ABCD' OR Id != '"));
    }

    #[test]
    fn the_window_query_is_built_from_checked_parts() {
        let fields = vec!["Id".to_string(), "SystemModstamp".into(), "Email".into()];
        let w = Window {
            from: Some(1_700_000_000),
            until: 1_700_000_600,
            past: None,
        };
        assert_eq!(
            select(&fields, "Contact", Some(&w)).unwrap(),
            "SELECT Id, SystemModstamp, Email FROM Contact WHERE SystemModstamp > \
             2023-11-14T22:13:20Z AND SystemModstamp <= 2023-11-14T22:23:20Z ORDER BY \
             SystemModstamp, Id"
        );
        let past = Window {
            past: Some((1_700_000_100, "0035g00000ABCDEAAA".into())),
            ..w.clone()
        };
        assert!(
            select(&fields, "Contact", Some(&past))
                .unwrap()
                .contains("(SystemModstamp > 2023-11-14T22:15:00Z OR (SystemModstamp = 2023-11-14T22:15:00Z AND Id > '0035g00000ABCDEAAA'))")
        );
        let sneaky = Window {
            past: Some((1, "x' OR Name != 'y".into())),
            ..w
        };
        assert!(select(&fields, "Contact", Some(&sneaky)).is_err());
        let bad = vec!["Email FROM User --".to_string()];
        let e = select(&bad, "Contact", None).unwrap_err();
        assert!(!e.contains("User"), "{e}");
        assert_eq!(
            select(&fields[..1], "Lead", None).unwrap(),
            "SELECT Id FROM Lead"
        );
    }

    #[test]
    fn salesforce_times_are_read_with_their_offsets() {
        assert_eq!(
            parse_time("2023-11-14T22:13:20.000+0000"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(
            parse_time("2023-11-14T23:13:20.000+0100"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_time("2023-11-14T21:13:20-01:00"), Some(1_700_000_000));
        for bad in [
            "",
            "2023-11-14",
            "2023-13-14T22:13:20Z",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20.Z",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn literals_read_back(secs in 0u64..8_000_000_000) {
            prop_assert_eq!(parse_time(&literal(secs)), Some(secs));
        }
    }
}
