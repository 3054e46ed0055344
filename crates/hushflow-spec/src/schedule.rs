//! Schedules: a cron expression or preset read in a time zone, and the data intervals it cuts
//! time into. The run for the interval `[a, b)` is due at `b`, as in Airflow: a nightly sync at
//! 02:00 processes the day that just ended.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

/// Milliseconds since the Unix epoch, UTC: how the metadata store keeps every instant.
pub type Millis = i64;

/// One data interval: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval {
    /// The interval's first instant.
    pub start: Millis,
    /// The first instant after the interval, when its run is due.
    pub end: Millis,
}

/// A parsed schedule: a cron expression or preset and the time zone it is read in.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
    expression: String,
}

impl Schedule {
    /// Parses `expression` (five fields, or `@hourly`, `@daily`, `@weekly`, `@monthly`,
    /// `@yearly`) in the IANA time zone `timezone` (UTC when `None`).
    pub fn parse(expression: &str, timezone: Option<&str>) -> Result<Schedule, String> {
        let tz = match timezone {
            None => Tz::UTC,
            Some(name) => name.parse::<Tz>().map_err(|_| {
                "is not an IANA time zone name (such as `Europe/Berlin` or `UTC`)".to_string()
            })?,
        };
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .build()
            .parse(expression.trim())
            .map_err(|e| {
                format!(
                    "is not a cron schedule ({e}); write five fields such as \"0 2 * * *\" or a \
                     preset: @hourly, @daily, @weekly, @monthly, @yearly"
                )
            })?;
        Ok(Schedule {
            cron,
            tz,
            expression: expression.trim().to_string(),
        })
    }

    /// The expression as written (trimmed).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The IANA name of the time zone the schedule is read in.
    pub fn timezone(&self) -> &str {
        self.tz.name()
    }

    fn local(&self, at: Millis) -> Option<DateTime<Tz>> {
        Utc.timestamp_millis_opt(at)
            .single()
            .map(|t| t.with_timezone(&self.tz))
    }

    /// The first schedule point at or after `at` (`inclusive`) or strictly after it.
    pub fn next(&self, at: Millis, inclusive: bool) -> Option<Millis> {
        let local = self.local(at)?;
        self.cron
            .find_next_occurrence(&local, inclusive)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    /// The last schedule point at or before `at`.
    pub fn prev(&self, at: Millis) -> Option<Millis> {
        let local = self.local(at)?;
        self.cron
            .find_previous_occurrence(&local, true)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    /// The intervals due at `now` that begin at or after `from`, oldest first: all of them
    /// (`catchup`) or only the latest. At most `limit`, so a schedule that is years behind
    /// catches up a bounded slice per tick.
    pub fn due(&self, from: Millis, now: Millis, catchup: bool, limit: usize) -> Vec<Interval> {
        let mut out = Vec::new();
        if !catchup {
            let Some(end) = self.prev(now) else {
                return out;
            };
            let Some(start) = self.prev(end - 1) else {
                return out;
            };
            if start >= from {
                out.push(Interval { start, end });
            }
            return out;
        }
        let Some(mut start) = self.next(from, true) else {
            return out;
        };
        while out.len() < limit {
            match self.next(start, false) {
                Some(end) if end <= now => {
                    out.push(Interval { start, end });
                    start = end;
                }
                _ => break,
            }
        }
        out
    }

    /// The interval that ends at the next schedule point after `at`, for manual runs: the one
    /// `at` falls in.
    pub fn interval_containing(&self, at: Millis) -> Option<Interval> {
        let start = self.prev(at)?;
        let end = self.next(start, false)?;
        Some(Interval { start, end })
    }
}

/// Renders an instant in RFC 3339 (UTC), as templates and listings show it.
pub fn rfc3339(at: Millis) -> String {
    Utc.timestamp_millis_opt(at).single().map_or_else(
        || at.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// RFC 3339 with milliseconds, for ids that must differ between runs created in one second.
pub fn rfc3339_millis(at: Millis) -> String {
    Utc.timestamp_millis_opt(at).single().map_or_else(
        || at.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS]` (in `tz`, UTC when `None`) or RFC 3339.
pub fn parse_instant(text: &str, timezone: Option<&str>) -> Result<Millis, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    let tz: Tz = match timezone {
        None => Tz::UTC,
        Some(name) => name
            .parse()
            .map_err(|_| "is not an IANA time zone name".to_string())?,
    };
    let naive = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .or_else(|| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").ok())
        .or_else(|| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M").ok())
        .ok_or_else(|| {
            "is not a date (YYYY-MM-DD), a local time (YYYY-MM-DDTHH:MM) or RFC 3339".to_string()
        })?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.timestamp_millis())
        .ok_or_else(|| "falls in a daylight-saving gap of the time zone".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Millis {
        parse_instant(s, None).unwrap()
    }

    #[test]
    fn hourly_catchup_cuts_a_day_into_24_intervals() {
        let s = Schedule::parse("@hourly", None).unwrap();
        let due = s.due(at("2026-11-30"), at("2026-12-01"), true, 1000);
        assert_eq!(due.len(), 24);
        assert_eq!(
            due[0],
            Interval {
                start: at("2026-11-30"),
                end: at("2026-11-30T01:00")
            }
        );
        assert_eq!(due[23].end, at("2026-12-01"));
        assert!(due.windows(2).all(|w| w[0].end == w[1].start));
        // Without catchup, only the latest.
        let latest = s.due(at("2026-11-30"), at("2026-12-01T00:30"), false, 1000);
        assert_eq!(
            latest,
            [Interval {
                start: at("2026-11-30T23:00"),
                end: at("2026-12-01")
            }]
        );
    }

    #[test]
    fn daily_in_a_time_zone_follows_dst() {
        // 02:00 Berlin is 01:00 UTC in winter and 00:00 UTC in summer. On 2026-03-29 the clocks
        // jump from 02:00 to 03:00, so that day's run fires when the gap ends (01:00 UTC) and the
        // next interval is 23 hours long.
        let s = Schedule::parse("0 2 * * *", Some("Europe/Berlin")).unwrap();
        let due = s.due(at("2026-03-27"), at("2026-03-31"), true, 10);
        let ends: Vec<String> = due.iter().map(|i| rfc3339(i.end)).collect();
        assert_eq!(
            ends,
            [
                "2026-03-28T01:00:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-30T00:00:00Z",
                "2026-03-31T00:00:00Z"
            ]
        );
        assert_eq!(due[2].end - due[2].start, 23 * 3_600_000);
        assert_eq!(
            parse_instant("2026-07-01", Some("Europe/Berlin")).unwrap(),
            at("2026-06-30T22:00")
        );
    }

    #[test]
    fn bad_schedules_and_zones_say_what_to_write() {
        assert!(
            Schedule::parse("every day", None)
                .unwrap_err()
                .contains("five fields")
        );
        assert!(
            Schedule::parse("0 2 * * *", Some("Mars/Olympus"))
                .unwrap_err()
                .contains("IANA")
        );
        // Seconds are not cron's: six fields are refused rather than misread.
        assert!(Schedule::parse("0 0 2 * * *", None).is_err());
    }
}
