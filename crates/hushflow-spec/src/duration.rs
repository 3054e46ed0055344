//! Durations, the one way they are written everywhere: in pipeline files (`retention`,
//! `retry_delay`, `max_retry_delay`, `timeout`) and on the command line (`--timeout`,
//! `--older-than`, `--tick`, …).
//!
//! A duration is a bare number of the setting's default unit (`retention = 7` is seven days,
//! `retry_delay = 30` thirty seconds) or a number with a unit: `7d`, `12h`, `30m`, `45s` (also
//! `250ms`, combinations such as `1h 30m`, and ISO 8601 such as `PT30S`). A day is 24 hours.
//! In a pipeline file the bare number may be a TOML integer or a string (`7` or `"7"`).
//!
//! [`parse`] is the parser; the serde types [`Seconds`] and [`Days`] read a setting with it,
//! and the CLI's value parsers call it too, so that the two never disagree.

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::time::Duration;

/// The unit of a bare number: each setting says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Seconds: retry delays, timeouts, the CLI's timing options.
    Seconds,
    /// Days of 24 hours: `retention`, `db prune --older-than`.
    Days,
}

impl Unit {
    fn seconds(self) -> u64 {
        match self {
            Unit::Seconds => 1,
            Unit::Days => 86_400,
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Unit::Seconds => "seconds",
            Unit::Days => "days",
        }
    }
}

/// Why a text is not a duration. Its message names the accepted forms, never the text (the
/// caller says which setting it was).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Neither a bare number nor a number with a unit.
    #[error(
        "is not a duration: write a number of {} (such as 7) or one with a unit: 7d, 12h, 30m or 45s",
        .bare.plural()
    )]
    Malformed {
        /// The unit a bare number would have had.
        bare: Unit,
    },
    /// A negative duration.
    #[error("must not be negative")]
    Negative,
    /// More than a `std::time::Duration` holds.
    #[error("is too long")]
    TooLong,
}

/// Parses a duration: a bare number of `bare` units, or a number with a unit (`7d`, `12h`,
/// `30m`, `45s`, `250ms`, `1h 30m`, ISO 8601 `PT30S`); a day is 24 hours. Surrounding spaces
/// are ignored.
pub fn parse(text: &str, bare: Unit) -> Result<Duration, DurationError> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let n: u64 = text.parse().map_err(|_| DurationError::TooLong)?;
        return n
            .checked_mul(bare.seconds())
            .map(Duration::from_secs)
            .ok_or(DurationError::TooLong);
    }
    let malformed = DurationError::Malformed { bare };
    let signed: jiff::SignedDuration = match text.parse() {
        Ok(d) => d,
        Err(_) => {
            let span: jiff::Span = text.parse().map_err(|_| malformed.clone())?;
            span.to_duration(jiff::SpanRelativeTo::days_are_24_hours())
                .map_err(|_| malformed)?
        }
    };
    if signed.is_negative() {
        return Err(DurationError::Negative);
    }
    Duration::try_from(signed).map_err(|_| DurationError::TooLong)
}

/// A duration setting whose bare number counts seconds (`retry_delay = 30`, `timeout = "15m"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub Duration);

/// A duration setting whose bare number counts days (`retention = 7`, `retention = "12h"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Days(pub Duration);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Seconds, D::Error> {
        deserializer
            .deserialize_any(DurationVisitor(Unit::Seconds))
            .map(Seconds)
    }
}

impl<'de> Deserialize<'de> for Days {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Days, D::Error> {
        deserializer
            .deserialize_any(DurationVisitor(Unit::Days))
            .map(Days)
    }
}

/// The schema of a duration setting: a bare number of `unit`, or a string such as `"12h"`.
fn duration_schema(name: &'static str, unit: &str) -> schemars::Schema {
    schemars::json_schema!({
        "title": name,
        "description": format!(
            "A duration: a bare number of {unit}, or a string such as \"45s\", \"30m\", \"12h\", \"7d\", \"1h 30m\" or \"PT30S\"."
        ),
        "anyOf": [
            { "type": "integer", "minimum": 0 },
            { "type": "string", "minLength": 1 }
        ]
    })
}

impl schemars::JsonSchema for Seconds {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DurationSeconds".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        duration_schema("DurationSeconds", "seconds")
    }
}

impl schemars::JsonSchema for Days {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DurationDays".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        duration_schema("DurationDays", "days")
    }
}

/// Reads an integer or a string through [`parse`].
struct DurationVisitor(Unit);

impl DurationVisitor {
    fn number<E: de::Error>(&self, n: u64) -> Result<Duration, E> {
        n.checked_mul(self.0.seconds())
            .map(Duration::from_secs)
            .ok_or_else(|| E::custom(DurationError::TooLong))
    }
}

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a duration: a number of {} or a string such as \"7d\", \"12h\", \"30m\" or \"45s\"",
            self.0.plural()
        )
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Duration, E> {
        self.number(n)
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Duration, E> {
        match u64::try_from(n) {
            Ok(n) => self.number(n),
            Err(_) => Err(E::custom(DurationError::Negative)),
        }
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        parse(text, self.0).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;

    #[test]
    fn every_form_in_both_default_units() {
        for (text, days_unit, seconds_unit) in [
            ("7", 7 * DAY, 7),
            (" 7 ", 7 * DAY, 7),
            ("0", 0, 0),
            ("7d", 7 * DAY, 7 * DAY),
            ("12h", 12 * 3600, 12 * 3600),
            ("30m", 1800, 1800),
            ("45s", 45, 45),
            ("1h 30m", 5400, 5400),
            ("90d", 90 * DAY, 90 * DAY),
            ("PT30S", 30, 30),
        ] {
            assert_eq!(
                parse(text, Unit::Days),
                Ok(Duration::from_secs(days_unit)),
                "{text}"
            );
            assert_eq!(
                parse(text, Unit::Seconds),
                Ok(Duration::from_secs(seconds_unit)),
                "{text}"
            );
        }
        assert_eq!(
            parse("250ms", Unit::Seconds),
            Ok(Duration::from_millis(250))
        );
    }

    #[test]
    fn bad_input_is_a_clear_error_that_does_not_quote_it() {
        for text in ["", "soon", "7x", "d", "1.5.2", "seven days"] {
            let e = parse(text, Unit::Days).unwrap_err();
            assert_eq!(e, DurationError::Malformed { bare: Unit::Days }, "{text:?}");
            assert_eq!(
                e.to_string(),
                "is not a duration: write a number of days (such as 7) or one with a unit: \
                 7d, 12h, 30m or 45s"
            );
        }
        assert!(
            parse("soon", Unit::Seconds)
                .unwrap_err()
                .to_string()
                .contains("a number of seconds")
        );
        assert_eq!(parse("-5s", Unit::Seconds), Err(DurationError::Negative));
        assert_eq!(
            parse("99999999999999999999", Unit::Seconds),
            Err(DurationError::TooLong)
        );
        assert_eq!(
            parse(&u64::MAX.to_string(), Unit::Days),
            Err(DurationError::TooLong)
        );
    }

    #[derive(Debug, Deserialize)]
    struct Settings {
        retention: Option<Days>,
        delay: Option<Seconds>,
    }

    fn settings(text: &str) -> Result<Settings, String> {
        toml::from_str(text).map_err(|e| e.message().to_string())
    }

    #[test]
    fn serde_reads_integers_and_strings_with_the_same_parser() {
        let s = settings("retention = 7\ndelay = 30").unwrap();
        assert_eq!(s.retention, Some(Days(Duration::from_secs(7 * DAY))));
        assert_eq!(s.delay, Some(Seconds(Duration::from_secs(30))));
        let s = settings("retention = \"12h\"\ndelay = \"7\"").unwrap();
        assert_eq!(s.retention, Some(Days(Duration::from_secs(12 * 3600))));
        assert_eq!(s.delay, Some(Seconds(Duration::from_secs(7))));
        let s = settings("retention = \"7d\"\ndelay = \"45s\"").unwrap();
        assert_eq!(s.retention, Some(Days(Duration::from_secs(7 * DAY))));
        assert_eq!(s.delay, Some(Seconds(Duration::from_secs(45))));
    }

    #[test]
    fn serde_errors_say_what_a_duration_is() {
        let e = settings("retention = \"a week\"").unwrap_err();
        assert!(
            e.contains("is not a duration: write a number of days"),
            "{e}"
        );
        let e = settings("delay = -3").unwrap_err();
        assert!(e.contains("must not be negative"), "{e}");
        let e = settings("delay = 1.5").unwrap_err();
        assert!(e.contains("a number of seconds or a string such as"), "{e}");
        let e = settings("retention = true").unwrap_err();
        assert!(e.contains("a duration"), "{e}");
    }
}
