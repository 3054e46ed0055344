//! PII in free text: find emails, phone numbers, card numbers, IBANs, US SSNs and IP addresses,
//! and replace each with a label such as `[EMAIL]`.
//!
//! One pass of a multi-pattern regex finds candidates (leftmost-first, most specific kind
//! first); each candidate is then validated (Luhn, ISO 13616 mod-97, SSN number rules, a
//! libphonenumber parse, a real IP parse), so order numbers, dates and invoice ids are left
//! alone. When a candidate fails, the other kinds are tried at the same place before the scan
//! moves on.

mod validate;

use regex_automata::meta::Regex;
use regex_automata::{Anchored, Input, PatternID};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Email,
    Phone,
    CreditCard,
    Iban,
    UsSsn,
    IpAddress,
}

impl PiiKind {
    pub const ALL: [PiiKind; 6] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::CreditCard,
        PiiKind::Iban,
        PiiKind::UsSsn,
        PiiKind::IpAddress,
    ];

    pub fn label(self) -> &'static str {
        match self {
            PiiKind::Email => "[EMAIL]",
            PiiKind::Phone => "[PHONE]",
            PiiKind::CreditCard => "[CREDIT_CARD]",
            PiiKind::Iban => "[IBAN]",
            PiiKind::UsSsn => "[US_SSN]",
            PiiKind::IpAddress => "[IP_ADDRESS]",
        }
    }
}

/// One finding: a byte range of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    pub kind: PiiKind,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum PiiError {
    #[error("the PII patterns failed to build; this is a bug in hushflow")]
    Build,
    #[error("`region` must be an ISO 3166 alpha-2 code such as \"US\"")]
    Region,
}

/// Candidate patterns, most specific first (leftmost-first picks the first that matches at a
/// position). Each is validated before it counts.
const PATTERNS: [(PiiKind, &str); 7] = [
    (
        PiiKind::Email,
        r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}",
    ),
    (
        PiiKind::Iban,
        r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?",
    ),
    (PiiKind::UsSsn, r"[0-9]{3}-[0-9]{2}-[0-9]{4}"),
    (PiiKind::CreditCard, r"[0-9](?:[ \-]?[0-9]){12,18}"),
    (
        PiiKind::IpAddress,
        r"(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%[0-9A-Za-z]+)?",
    ),
    (PiiKind::IpAddress, r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}"),
    (PiiKind::Phone, r"\+?\(?[0-9][0-9 ().\-/]{5,20}[0-9]"),
];

/// A compiled detector for some kinds; shareable across threads.
pub struct PiiDetector {
    regex: Regex,
    patterns: Vec<PiiKind>,
    region: Option<phonenumber::country::Id>,
}

impl std::fmt::Debug for PiiDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiiDetector")
            .field("kinds", &self.patterns)
            .finish_non_exhaustive()
    }
}

impl PiiDetector {
    pub fn new(kinds: &[PiiKind], region: Option<&str>) -> Result<PiiDetector, PiiError> {
        let chosen: Vec<(PiiKind, &str)> = PATTERNS
            .iter()
            .copied()
            .filter(|(k, _)| kinds.contains(k))
            .collect();
        let regex = Regex::new_many(&chosen.iter().map(|(_, p)| *p).collect::<Vec<_>>())
            .map_err(|_| PiiError::Build)?;
        let region = region
            .map(|r| {
                r.parse::<phonenumber::country::Id>()
                    .map_err(|_| PiiError::Region)
            })
            .transpose()?;
        Ok(PiiDetector {
            regex,
            patterns: chosen.into_iter().map(|(k, _)| k).collect(),
            region,
        })
    }

    /// Validated, sorted, non-overlapping findings.
    pub fn find(&self, text: &str, out: &mut Vec<Finding>) {
        out.clear();
        let mut at = 0;
        while at < text.len() {
            let Some(m) = self.regex.find(Input::new(text).range(at..)) else {
                break;
            };
            match self.confirm(text, m.start(), m.pattern()) {
                Some(f) => {
                    out.push(f);
                    at = f.end;
                }
                // A string shaped like an IBAN that fails its checksum is some other account
                // or reference number: its digits must not then pass as a card or a phone.
                None if self.patterns[m.pattern().as_usize()] == PiiKind::Iban => at = m.end(),
                None => at = next_char(text, m.start()),
            }
        }
    }

    /// The first kind (from `first` on, in priority order) whose candidate at `start` validates.
    fn confirm(&self, text: &str, start: usize, first: PatternID) -> Option<Finding> {
        for index in first.as_usize()..self.patterns.len() {
            let input = Input::new(text)
                .range(start..)
                .anchored(Anchored::Pattern(PatternID::new(index).ok()?));
            let Some(m) = self.regex.find(input) else {
                continue;
            };
            let kind = self.patterns[index];
            let (s, e) = trim_span(text, m.start(), m.end(), kind);
            if s < e
                && on_boundary(text, s, e, kind)
                && validate::check(kind, &text[s..e], self.region)
            {
                return Some(Finding {
                    kind,
                    start: s,
                    end: e,
                });
            }
        }
        None
    }

    /// Writes `text` with every finding replaced by its label into `out` (cleared first);
    /// returns how many findings there were. `findings` is reusable scratch space.
    pub fn redact_into(&self, text: &str, findings: &mut Vec<Finding>, out: &mut String) -> usize {
        out.clear();
        self.find(text, findings);
        let mut last = 0;
        for f in findings.iter() {
            out.push_str(&text[last..f.start]);
            out.push_str(f.kind.label());
            last = f.end;
        }
        out.push_str(&text[last..]);
        findings.len()
    }
}

fn next_char(text: &str, at: usize) -> usize {
    text[at..]
        .chars()
        .next()
        .map_or(text.len(), |c| at + c.len_utf8())
}

/// Phone and card candidates may swallow trailing separators or an opening parenthesis that
/// has no closing one; trim those so the label replaces the number only.
fn trim_span(text: &str, start: usize, mut end: usize, kind: PiiKind) -> (usize, usize) {
    if matches!(kind, PiiKind::Phone | PiiKind::CreditCard) {
        while end > start && !text.as_bytes()[end - 1].is_ascii_digit() {
            end -= 1;
        }
    }
    (start, end)
}

/// A finding must not start or end inside a longer word or number (`ORD-2024-000123`).
fn on_boundary(text: &str, start: usize, end: usize, kind: PiiKind) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    let joins = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    match kind {
        PiiKind::Email => !joins(before) && !joins(after),
        // A number glued to letters or digits, or continuing with "-digits" / ".digits", is part
        // of something else (an order number, a version, a date).
        _ => {
            let continues = |rest: &str| {
                let mut chars = rest.chars();
                matches!(chars.next(), Some('-' | '.' | '/' | ':'))
                    && chars.next().is_some_and(|c| c.is_ascii_digit())
            };
            let precedes = |head: &str| {
                let mut chars = head.chars().rev();
                matches!(chars.next(), Some('-' | '.' | '/' | ':'))
                    && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            };
            !joins(before) && !joins(after) && !continues(&text[end..]) && !precedes(&text[..start])
        }
    }
}

#[cfg(test)]
mod tests;
