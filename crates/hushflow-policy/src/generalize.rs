//! `generalize`: coarser values that keep what analysis needs. Dates become a year, a month or
//! an age band; postal codes a prefix; numbers a bucket or a named band.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use std::fmt::{self, Write as _};

/// A calendar date, the run's "today" for age bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Day {
    /// The year, as `YYYY` gives it.
    pub year: i32,
    /// The month, 1 to 12.
    pub month: u8,
    /// The day of the month, from 1.
    pub day: u8,
}

impl Day {
    /// Reads `YYYY-MM-DD` at the start of `text` (an RFC 3339 timestamp works too).
    pub fn parse_prefix(text: &str) -> Option<Day> {
        let b = text.trim().as_bytes();
        if b.len() < 10
            || b[4] != b'-'
            || b[7] != b'-'
            || (b.len() > 10 && !matches!(b[10], b'T' | b't' | b' '))
        {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            b[r].iter().try_fold(0u32, |acc, c| {
                c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
            })
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        (1..=days_in_month).contains(&day).then_some(Day {
            year: i32::try_from(year).ok()?,
            month: month as u8,
            day: day as u8,
        })
    }

    /// Whole years from `self` to `on`.
    pub fn age_on(self, on: Day) -> i32 {
        let had_birthday = (on.month, on.day) >= (self.month, self.day);
        on.year - self.year - i32::from(!had_birthday)
    }
}

/// What `bands` are cut on: the value itself, or the age of a date of birth.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum BandOf {
    /// The value is a number.
    #[default]
    Number,
    /// The value is a date of birth; bands apply to the age.
    Age,
}

/// How `generalize` coarsens a value: the `generalize` option of a field rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Generalization {
    /// A date's year: "1984".
    Year,
    /// A date's year and month: "1984-07".
    YearMonth,
    /// Ages in bands of `width` years ("30-39"), counted on `as_of` (default: the run's date).
    AgeBand {
        /// How many years each band spans.
        width: u32,
        /// The date ages are counted on; `None` for the run's date.
        as_of: Option<Day>,
    },
    /// The first `n` characters (postal codes).
    Prefix(usize),
    /// Numbers in buckets of `width`: "1000-1999".
    Bucket(u64),
    /// Numbers (or ages) cut at `edges`, each band named by `labels` (one more label than edges).
    Bands {
        /// Where each band after the first begins, increasing: `[18, 30]` makes "<18", "18-29"
        /// and "30+".
        edges: Vec<i64>,
        /// The bands' names in order, one more than `edges`.
        labels: Vec<String>,
        /// Whether the values are numbers or dates of birth, whose ages are banded.
        of: BandOf,
        /// The date ages are counted on, for `of = "age"`; `None` for the run's date.
        as_of: Option<Day>,
    },
}

// Edges and widths are integers, so equality is exact.
impl Eq for Generalization {}

impl fmt::Display for Generalization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Generalization::Year => f.write_str("the year"),
            Generalization::YearMonth => f.write_str("year-month"),
            Generalization::AgeBand { width, .. } => write!(f, "age bands of {width} years"),
            Generalization::Prefix(n) => write!(f, "the first {n} characters"),
            Generalization::Bucket(w) => write!(f, "buckets of {w}"),
            Generalization::Bands { labels, .. } => write!(f, "bands {}", labels.join(" | ")),
        }
    }
}

/// `generalize = { … }`: one of `prefix`, `age_band`, `bucket`, `bands`, with its options.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GeneralizeTable {
    /// The first N characters (postal codes).
    prefix: Option<usize>,
    /// Ages (from a date of birth) in bands of this many years.
    age_band: Option<u32>,
    /// Numbers in buckets of this width.
    bucket: Option<u64>,
    /// Where each band after the first begins, increasing.
    bands: Option<Vec<i64>>,
    /// The bands' names, one more than `bands`.
    labels: Option<Vec<String>>,
    /// `number` (the default) or `age` (of a date of birth).
    of: Option<BandOf>,
    /// The date ages are counted on (YYYY-MM-DD); the run's date by default.
    as_of: Option<String>,
}

/// The written forms of `generalize`, for the pipeline file's JSON Schema.
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Only its schema is used: `Generalization` has its own deserializer.
pub(crate) enum GeneralizeForm {
    /// `"year"` or `"year-month"`.
    Name(GeneralizeName),
    /// A table naming one way to generalize.
    Table(GeneralizeTable),
}

/// The named generalizations.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)] // Only its schema is used.
pub(crate) enum GeneralizeName {
    /// A date's year.
    #[serde(rename = "year")]
    Year,
    /// A date's year and month.
    #[serde(rename = "year-month")]
    YearMonth,
}

const USAGE: &str = "`generalize` takes \"year\", \"year-month\", or a table with one of prefix, age_band, bucket, bands";

impl<'de> Deserialize<'de> for Generalization {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Name(String),
            Table(GeneralizeTable),
        }
        let table = match Form::deserialize(deserializer).map_err(|_| de::Error::custom(USAGE))? {
            Form::Name(n) if n == "year" => return Ok(Generalization::Year),
            Form::Name(n) if n == "year-month" => return Ok(Generalization::YearMonth),
            Form::Name(_) => return Err(de::Error::custom(USAGE)),
            Form::Table(t) => t,
        };
        let as_of = match &table.as_of {
            Some(s) => Some(
                Day::parse_prefix(s)
                    .ok_or_else(|| de::Error::custom("`as_of` must be a date, YYYY-MM-DD"))?,
            ),
            None => None,
        };
        let chosen = [
            table.prefix.is_some(),
            table.age_band.is_some(),
            table.bucket.is_some(),
            table.bands.is_some(),
        ];
        if chosen.iter().filter(|c| **c).count() != 1 {
            return Err(de::Error::custom(USAGE));
        }
        let extra = |what: &str, present: bool| {
            if present {
                Err(de::Error::custom(format!("`{what}` does not apply here")))
            } else {
                Ok(())
            }
        };
        if let Some(n) = table.prefix {
            extra("labels", table.labels.is_some())?;
            extra("as_of", as_of.is_some())?;
            return Ok(Generalization::Prefix(n));
        }
        if let Some(width) = table.age_band {
            extra("labels", table.labels.is_some())?;
            return Ok(Generalization::AgeBand { width, as_of });
        }
        if let Some(width) = table.bucket {
            extra("labels", table.labels.is_some())?;
            extra("as_of", as_of.is_some())?;
            return Ok(Generalization::Bucket(width));
        }
        let edges = table.bands.unwrap_or_default();
        let labels = match table.labels {
            Some(l) => l,
            None => default_labels(&edges),
        };
        Ok(Generalization::Bands {
            edges,
            labels,
            of: table.of.unwrap_or_default(),
            as_of,
        })
    }
}

fn default_labels(edges: &[i64]) -> Vec<String> {
    let mut labels = Vec::with_capacity(edges.len() + 1);
    if let Some(first) = edges.first() {
        labels.push(format!("<{first}"));
    }
    for pair in edges.windows(2) {
        labels.push(format!("{}-{}", pair[0], pair[1] - 1));
    }
    if let Some(last) = edges.last() {
        labels.push(format!("{last}+"));
    }
    labels
}

/// The longest `prefix`, in characters.
pub const MAX_PREFIX: usize = 64;
/// The widest `age_band`, in years.
pub const MAX_AGE_BAND: u32 = 150;
/// The widest `bucket`: 10^15, past which a bucket hides next to nothing of a 64-bit number.
pub const MAX_BUCKET: u64 = 1_000_000_000_000_000;
/// The most `bands` edges.
pub const MAX_BAND_EDGES: usize = 100;
/// The longest band label, in characters: every value of the field becomes one.
pub const MAX_LABEL_CHARS: usize = 64;

impl Generalization {
    pub(crate) fn check(&self) -> Result<(), String> {
        match self {
            Generalization::Prefix(0) => Err("`prefix` must be at least 1".into()),
            Generalization::Prefix(n) if *n > MAX_PREFIX => {
                Err(format!("`prefix` must be at most {MAX_PREFIX}"))
            }
            Generalization::AgeBand { width: 0, .. } | Generalization::Bucket(0) => {
                Err("a band or bucket width must be at least 1".into())
            }
            Generalization::AgeBand { width, .. } if *width > MAX_AGE_BAND => {
                Err(format!("`age_band` must be at most {MAX_AGE_BAND} years"))
            }
            Generalization::Bucket(width) if *width > MAX_BUCKET => {
                Err(format!("`bucket` must be at most {MAX_BUCKET}"))
            }
            Generalization::Bands { edges, labels, .. } => {
                if edges.is_empty() || edges.windows(2).any(|w| w[0] >= w[1]) {
                    return Err("`bands` must be increasing numbers, e.g. [18, 30, 50]".into());
                }
                if edges.len() > MAX_BAND_EDGES {
                    return Err(format!(
                        "`bands` takes at most {MAX_BAND_EDGES} edges, not {}",
                        edges.len()
                    ));
                }
                if labels.len() != edges.len() + 1 {
                    return Err(format!(
                        "`labels` needs {} names for {} band edges",
                        edges.len() + 1,
                        edges.len()
                    ));
                }
                if labels.iter().any(|l| l.chars().count() > MAX_LABEL_CHARS) {
                    return Err(format!(
                        "`labels` must be at most {MAX_LABEL_CHARS} characters each"
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Appends the generalized value to `out`; `Err` names what the value should have been.
    pub fn apply(&self, value: &str, today: Day, out: &mut String) -> Result<(), &'static str> {
        match self {
            Generalization::Year => {
                let d = Day::parse_prefix(value).ok_or("not a date (YYYY-MM-DD)")?;
                let _ = write!(out, "{:04}", d.year);
            }
            Generalization::YearMonth => {
                let d = Day::parse_prefix(value).ok_or("not a date (YYYY-MM-DD)")?;
                let _ = write!(out, "{:04}-{:02}", d.year, d.month);
            }
            Generalization::AgeBand { width, as_of } => {
                let age = age(value, as_of.unwrap_or(today))?;
                let w = *width as i64;
                let lo = age.div_euclid(w) * w;
                let _ = write!(out, "{lo}-{}", lo + w - 1);
            }
            Generalization::Prefix(n) => out.extend(value.trim().chars().take(*n)),
            Generalization::Bucket(width) => {
                let x = number(value)?;
                let w = i64::try_from(*width).map_err(|_| OUT_OF_RANGE)?;
                // Near i64's ends the bucket's ends do not fit: refused, never wrapped.
                let lo = x.div_euclid(w).checked_mul(w).ok_or(OUT_OF_RANGE)?;
                let hi = lo.checked_add(w - 1).ok_or(OUT_OF_RANGE)?;
                let _ = write!(out, "{lo}-{hi}");
            }
            Generalization::Bands {
                edges,
                labels,
                of,
                as_of,
            } => {
                let x = match of {
                    BandOf::Number => number(value)?,
                    BandOf::Age => age(value, as_of.unwrap_or(today))?,
                };
                let band = edges.partition_point(|edge| *edge <= x);
                out.push_str(labels.get(band).map_or("", String::as_str));
            }
        }
        Ok(())
    }
}

const OUT_OF_RANGE: &str = "a number too large to bucket";

fn age(value: &str, on: Day) -> Result<i64, &'static str> {
    let born = Day::parse_prefix(value).ok_or("not a date (YYYY-MM-DD)")?;
    let age = born.age_on(on);
    if age < 0 {
        Err("a birth date after the reference date")
    } else {
        Ok(i64::from(age))
    }
}

/// Integers, or decimals floored, so that 1999.99 falls in the 1000-1999 bucket.
fn number(value: &str) -> Result<i64, &'static str> {
    let v = value.trim();
    if let Ok(i) = v.parse::<i64>() {
        return Ok(i);
    }
    match v.parse::<f64>() {
        Ok(f) if f.is_finite() && f.abs() < 9.0e15 => Ok(f.floor() as i64),
        _ => Err("not a number"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn g(s: &str) -> Generalization {
        #[derive(Deserialize)]
        struct W {
            generalize: Generalization,
        }
        let g = toml::from_str::<W>(s).unwrap().generalize;
        g.check().unwrap();
        g
    }

    const TODAY: Day = Day {
        year: 2026,
        month: 11,
        day: 22,
    };

    fn apply(g: &Generalization, v: &str) -> Result<String, &'static str> {
        let mut out = String::new();
        g.apply(v, TODAY, &mut out).map(|_| out)
    }

    #[test]
    fn dates() {
        assert_eq!(
            apply(&g("generalize = \"year\""), "1984-07-09").unwrap(),
            "1984"
        );
        assert_eq!(
            apply(&g("generalize = \"year-month\""), "2024-02-29T10:00:00Z").unwrap(),
            "2024-02"
        );
        assert!(apply(&g("generalize = \"year\""), "2023-02-29").is_err());
        assert!(apply(&g("generalize = \"year\""), "09.07.1984").is_err());
        assert_eq!(
            apply(&g("generalize = { age_band = 10 }"), "1984-11-23").unwrap(),
            "40-49"
        );
        assert_eq!(
            apply(&g("generalize = { age_band = 10 }"), "1984-11-22").unwrap(),
            "40-49"
        );
        assert_eq!(
            apply(
                &g("generalize = { age_band = 10, as_of = \"2020-01-01\" }"),
                "1984-11-22"
            )
            .unwrap(),
            "30-39"
        );
    }

    #[test]
    fn prefixes_buckets_and_bands() {
        assert_eq!(
            apply(&g("generalize = { prefix = 3 }"), " 94107").unwrap(),
            "941"
        );
        assert_eq!(
            apply(&g("generalize = { bucket = 1000 }"), "1999.5").unwrap(),
            "1000-1999"
        );
        assert_eq!(
            apply(&g("generalize = { bucket = 10 }"), "-3").unwrap(),
            "-10--1"
        );
        let bands = g("generalize = { bands = [18, 30, 50] }");
        assert_eq!(apply(&bands, "17").unwrap(), "<18");
        assert_eq!(apply(&bands, "18").unwrap(), "18-29");
        assert_eq!(apply(&bands, "77").unwrap(), "50+");
        let named = g(
            "generalize = { bands = [18, 65], labels = [\"minor\", \"adult\", \"senior\"], of = \"age\" }",
        );
        assert_eq!(apply(&named, "2010-01-01").unwrap(), "minor");
        assert_eq!(apply(&named, "1950-01-01").unwrap(), "senior");
        assert!(apply(&bands, "n/a").is_err());
    }

    /// A bucket's upper end past i64 is refused for that value, never wrapped or panicked on.
    #[test]
    fn buckets_at_the_edge_of_the_integers() {
        let b = g("generalize = { bucket = 1000 }");
        assert!(apply(&b, &i64::MAX.to_string()).is_err());
        assert!(apply(&b, &i64::MIN.to_string()).is_err());
        assert_eq!(
            apply(&b, "-9223372036854775000").unwrap(),
            "-9223372036854775000--9223372036854774001"
        );
        assert_eq!(
            apply(&b, "9223372036854774999").unwrap(),
            "9223372036854774000-9223372036854774999"
        );
    }

    #[test]
    fn bad_specs_are_refused() {
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct W {
            generalize: Generalization,
        }
        for bad in [
            "generalize = \"decade\"",
            "generalize = { prefix = 3, bucket = 2 }",
            "generalize = { prefix = 3, labels = [\"a\"] }",
        ] {
            assert!(toml::from_str::<W>(bad).is_err(), "{bad}");
        }
        let w = toml::from_str::<W>("generalize = { bands = [30, 18] }").unwrap();
        assert!(w.generalize.check().is_err());
        let w = toml::from_str::<W>("generalize = { bands = [18], labels = [\"a\"] }").unwrap();
        assert!(w.generalize.check().is_err());
    }

    proptest! {
        #[test]
        fn prefix_never_returns_more_than_n(v in "\\PC{0,20}", n in 1usize..8) {
            let out = apply(&Generalization::Prefix(n), &v).unwrap();
            prop_assert!(out.chars().count() <= n);
            prop_assert!(v.trim().starts_with(&out));
        }

        #[test]
        fn year_reveals_only_the_year(y in 1900i32..2100, m in 1u8..13, d in 1u8..29) {
            let v = format!("{y:04}-{m:02}-{d:02}");
            prop_assert_eq!(apply(&Generalization::Year, &v).unwrap(), format!("{y:04}"));
        }

        #[test]
        fn buckets_contain_their_value(x in -1_000_000i64..1_000_000, w in 1u64..5000) {
            let out = apply(&Generalization::Bucket(w), &x.to_string()).unwrap();
            let (lo, hi) = out.split_at(out[1..].find('-').unwrap() + 1);
            let (lo, hi): (i64, i64) = (lo.parse().unwrap(), hi[1..].parse().unwrap());
            prop_assert!(lo <= x && x <= hi && hi - lo + 1 == w as i64);
        }
    }
}
