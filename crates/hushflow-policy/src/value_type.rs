//! Declared value types (`type = "timestamp"` on a field rule): a kept value is checked and
//! written in one canonical form, so that a database sink can store it in a typed column. A
//! value that does not parse as its type is refused (the record is quarantined, naming the
//! field and the type, never the value).

use hushflow_core::{CellKind, Column};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The type a field's values leave as, and the column type a database sink gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    /// Text as it is (a number or a boolean written as its text).
    Text,
    /// A whole number that fits 64 bits: `-12`, `+7`, `42`.
    Integer,
    /// `true` or `false`, from any accepted spelling ([`parse_bool`]).
    Boolean,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// An instant: RFC 3339 with an offset or `Z`, written in UTC (`2026-01-02T03:04:05Z`).
    Timestamp,
}

impl ValueType {
    /// The word used in pipeline files and handed to sinks: `text`, `integer`, `boolean`,
    /// `date`, `timestamp`.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::Text => "text",
            ValueType::Integer => "integer",
            ValueType::Boolean => "boolean",
            ValueType::Date => "date",
            ValueType::Timestamp => "timestamp",
        }
    }

    /// The fixed words a refused value is quarantined with (they name no value).
    pub fn refusal(self) -> &'static str {
        match self {
            ValueType::Text => "not text",
            ValueType::Integer => "not an integer (a whole number that fits 64 bits)",
            ValueType::Boolean => {
                "not a boolean (true/false, yes/no, 1/0, y/n or on/off, in any case)"
            }
            ValueType::Date => "not a date (YYYY-MM-DD)",
            ValueType::Timestamp => "not a timestamp (RFC 3339 with an offset or Z)",
        }
    }

    /// Writes `text` (of kind `kind`) in this type's canonical form to `out`: a null or an
    /// empty value is null (for text, an empty value stays empty text). On error nothing is
    /// pushed.
    pub(crate) fn convert(
        self,
        kind: CellKind,
        text: &str,
        out: &mut Column,
    ) -> Result<(), &'static str> {
        if kind == CellKind::Null {
            out.push_null();
            return Ok(());
        }
        if self == ValueType::Text {
            out.push_with(CellKind::Text, |s| s.push_str(text));
            return Ok(());
        }
        let value = text.trim();
        if value.is_empty() {
            out.push_null();
            return Ok(());
        }
        match self {
            ValueType::Text => {}
            ValueType::Integer => {
                let n: i64 = value.parse().map_err(|_| self.refusal())?;
                out.push_with(CellKind::Number, |s| {
                    use fmt::Write as _;
                    let _ = write!(s, "{n}");
                });
            }
            ValueType::Boolean => {
                let b = parse_bool(value).ok_or(self.refusal())?;
                out.push_with(CellKind::Bool, |s| {
                    s.push_str(if b { "true" } else { "false" })
                });
            }
            ValueType::Date => {
                let day = (value.len() == 10)
                    .then(|| crate::generalize::Day::parse_prefix(value))
                    .flatten()
                    .ok_or(self.refusal())?;
                out.push_with(CellKind::Text, |s| {
                    use fmt::Write as _;
                    let _ = write!(s, "{:04}-{:02}-{:02}", day.year, day.month, day.day);
                });
            }
            ValueType::Timestamp => {
                let at: jiff::Timestamp = value.parse().map_err(|_| self.refusal())?;
                out.push_with(CellKind::Text, |s| {
                    use fmt::Write as _;
                    let _ = write!(s, "{at}");
                });
            }
        }
        Ok(())
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A yes/no value: `true`/`false`, `yes`/`no`, `1`/`0`, `y`/`n`, `on`/`off`, in any case,
/// around spaces; `None` for anything else.
pub fn parse_bool(value: &str) -> Option<bool> {
    const YES: [&str; 5] = ["true", "yes", "1", "y", "on"];
    const NO: [&str; 5] = ["false", "no", "0", "n", "off"];
    let v = value.trim();
    if YES.iter().any(|y| v.eq_ignore_ascii_case(y)) {
        Some(true)
    } else if NO.iter().any(|n| v.eq_ignore_ascii_case(n)) {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(t: ValueType, kind: CellKind, text: &str) -> Result<(CellKind, String), &'static str> {
        let mut c = Column::with_capacity(1, 16);
        t.convert(kind, text, &mut c)?;
        let cell = c.get(0);
        Ok((cell.kind, cell.text.to_string()))
    }

    #[test]
    fn values_take_their_canonical_form_or_are_refused() {
        use CellKind as K;
        use ValueType::*;
        assert_eq!(one(Integer, K::Text, " +42 "), Ok((K::Number, "42".into())));
        assert_eq!(one(Integer, K::Number, "-7"), Ok((K::Number, "-7".into())));
        assert!(one(Integer, K::Text, "4.5").is_err());
        assert!(one(Integer, K::Text, "99999999999999999999").is_err());
        for (text, want) in [
            ("TRUE", "true"),
            ("yes", "true"),
            ("1", "true"),
            ("Y", "true"),
            ("On", "true"),
            ("false", "false"),
            ("NO", "false"),
            ("0", "false"),
            ("n", "false"),
            ("off", "false"),
        ] {
            assert_eq!(
                one(Boolean, K::Text, text),
                Ok((K::Bool, want.into())),
                "{text}"
            );
        }
        assert_eq!(one(Boolean, K::Bool, "true"), Ok((K::Bool, "true".into())));
        for bad in ["maybe", "2", "si", "tru"] {
            assert_eq!(one(Boolean, K::Text, bad), Err(Boolean.refusal()), "{bad}");
        }
        assert_eq!(
            one(Date, K::Text, "2024-02-29"),
            Ok((K::Text, "2024-02-29".into()))
        );
        assert!(one(Date, K::Text, "2023-02-29").is_err());
        assert!(one(Date, K::Text, "2024-02-29T00:00:00Z").is_err());
        assert!(one(Date, K::Text, "29/02/2024").is_err());
        assert_eq!(
            one(Timestamp, K::Text, "2026-01-02T04:04:05+01:00"),
            Ok((K::Text, "2026-01-02T03:04:05Z".into()))
        );
        assert_eq!(
            one(Timestamp, K::Text, "2026-01-02T03:04:05.250Z"),
            Ok((K::Text, "2026-01-02T03:04:05.25Z".into()))
        );
        assert!(
            one(Timestamp, K::Text, "2026-01-02T03:04:05").is_err(),
            "no offset"
        );
        assert!(one(Timestamp, K::Text, "yesterday").is_err());
        // Empty is null for typed values, and stays text for text.
        assert_eq!(one(Integer, K::Text, "  "), Ok((K::Null, String::new())));
        assert_eq!(one(Text, K::Number, "12"), Ok((K::Text, "12".into())));
        assert_eq!(one(Text, K::Text, ""), Ok((K::Text, String::new())));
        // Refusals are fixed words.
        for t in [Integer, Boolean, Date, Timestamp] {
            assert!(!t.refusal().contains("maybe"));
        }
    }
}
