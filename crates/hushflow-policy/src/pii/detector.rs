//! The scan: one multi-pattern regex pass for candidates, then validation and boundary checks.

use super::phone::Phones;
use super::validate;
use super::{Finding, PiiError, PiiKind};
use regex_automata::meta::Regex;
use regex_automata::{Anchored, Input};

/// The form a candidate has. Some kinds have two (IPv6 and IPv4, SSNs with dashes or spaces);
/// each form has its own pattern and validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Email,
    Iban,
    SsnDashed,
    Card,
    Ipv6,
    Ipv4,
    Phone,
    SsnSpaced,
}

impl Shape {
    fn kind(self) -> PiiKind {
        match self {
            Shape::Email => PiiKind::Email,
            Shape::Iban => PiiKind::Iban,
            Shape::SsnDashed | Shape::SsnSpaced => PiiKind::UsSsn,
            Shape::Card => PiiKind::CreditCard,
            Shape::Ipv6 | Shape::Ipv4 => PiiKind::IpAddress,
            Shape::Phone => PiiKind::Phone,
        }
    }

    /// Separators at which a candidate of this shape may be cut short when the whole of it does
    /// not validate (a phone number followed by a year, an IBAN followed by a word of four).
    fn cut_at(self) -> &'static [u8] {
        match self {
            Shape::Phone => b" -./",
            Shape::Card => b" -",
            Shape::Iban => b" ",
            _ => b"",
        }
    }
}

/// Letters that may appear in an email address besides ASCII: Latin-1 and Latin Extended-A/B
/// letters (not `×`, `÷` or the guillemets, so `«jane@example.com»` stops at the quotes).
const LATIN: &str = "À-ÖØ-öø-ɏ";

/// Candidate patterns, most specific first: at a position where several match, leftmost-first
/// takes the first. Each is validated before it counts, and on failure the later ones are tried
/// at the same position.
fn patterns() -> [(Shape, String); 8] {
    [
        (
            Shape::Email,
            format!(
                r"[A-Za-z0-9._%+\-{LATIN}]+@[A-Za-z0-9\-{LATIN}]+(?:\.[A-Za-z0-9\-{LATIN}]+)*\.(?:[Xx][Nn]--[A-Za-z0-9\-]+|[A-Za-z]{{2,24}})"
            ),
        ),
        (
            Shape::Iban,
            r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?".into(),
        ),
        (Shape::SsnDashed, r"[0-9]{3}-[0-9]{2}-[0-9]{4}".into()),
        (Shape::Card, r"[0-9](?:[ \-]?[0-9]){12,18}".into()),
        (
            Shape::Ipv6,
            r"(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{0,4})(?:%[0-9A-Za-z]{1,16})?"
                .into(),
        ),
        (Shape::Ipv4, r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}".into()),
        (Shape::Phone, r"[+(]{0,2}[0-9][0-9 ().\-/]{5,24}[0-9]".into()),
        (Shape::SsnSpaced, r"[0-9]{3} [0-9]{2} [0-9]{4}".into()),
    ]
}

/// A phone region a record names (its country field), from [`PiiDetector::phone_region`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhoneRegion(u16);

/// Finds and redacts PII of the kinds it was built for. Build it once per run; it is `Send` and
/// `Sync`, and [`PiiDetector::find`] takes `&self`, so one detector serves every worker.
pub struct PiiDetector {
    /// Every chosen pattern, for the one pass.
    regex: Regex,
    /// Each chosen pattern alone, to retry a position anchored when a candidate fails.
    singles: Vec<Regex>,
    shapes: Vec<Shape>,
    kinds: Vec<PiiKind>,
    phones: Phones,
}

impl std::fmt::Debug for PiiDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiiDetector")
            .field("kinds", &self.kinds)
            .field("phones", &self.phones)
            .finish_non_exhaustive()
    }
}

impl PiiDetector {
    /// A detector for `kinds`. `phone_region` (ISO 3166 alpha-2, such as `"DE"`) is the region
    /// of phone numbers written without a country code; without it only international numbers
    /// (`+49 …`, `0049 …`) and well-formed North American ones (`(415) 555-0132`,
    /// `415-555-0132`) are found.
    pub fn new(kinds: &[PiiKind], phone_region: Option<&str>) -> Result<PiiDetector, PiiError> {
        PiiDetector::with_regions(kinds, phone_region.as_slice())
    }

    /// A detector for `kinds` whose national phone numbers may be of any of `phone_regions`
    /// (ISO 3166 alpha-2 codes): a number valid in one of them is a phone number.
    pub fn with_regions(
        kinds: &[PiiKind],
        phone_regions: &[&str],
    ) -> Result<PiiDetector, PiiError> {
        let phones = Phones::new(phone_regions)?;
        let mut shapes = Vec::new();
        let mut sources = Vec::new();
        for (shape, source) in patterns() {
            if kinds.contains(&shape.kind()) {
                shapes.push(shape);
                sources.push(source);
            }
        }
        let regex = Regex::new_many(&sources).map_err(|_| PiiError::Build)?;
        let singles = sources
            .iter()
            .map(|s| Regex::new(s).map_err(|_| PiiError::Build))
            .collect::<Result<_, _>>()?;
        Ok(PiiDetector {
            regex,
            singles,
            shapes,
            kinds: PiiKind::ALL
                .into_iter()
                .filter(|k| kinds.contains(k))
                .collect(),
            phones,
        })
    }

    /// The kinds this detector finds, in [`PiiKind::ALL`] order.
    pub fn kinds(&self) -> &[PiiKind] {
        &self.kinds
    }

    /// The phone region a record's country field names (an ISO 3166 alpha-2 or alpha-3 code,
    /// or the country's name in English, German, French or Spanish), for
    /// [`PiiDetector::find_in`]; `None` for a blank or unknown country. `scratch` is reused
    /// across calls.
    pub fn phone_region(&self, country: &str, scratch: &mut String) -> Option<PhoneRegion> {
        self.phones
            .region_named(country, scratch)
            .map(|index| PhoneRegion(index as u16))
    }

    /// Whether `text` may hold a finding at all (a cheap scan for digits, `@` and `::`); when
    /// it is false, [`PiiDetector::find`] finds nothing.
    pub fn may_find(&self, text: &str) -> bool {
        may_hold_pii(text.as_bytes())
    }

    /// Replaces `out` with the validated findings in `text`: sorted, not overlapping.
    pub fn find(&self, text: &str, out: &mut Vec<Finding>) {
        self.find_in(text, None, out);
    }

    /// As [`PiiDetector::find`], with national phone numbers read as numbers of `region` (a
    /// record's own country) instead of the configured regions, when it is given.
    pub fn find_in(&self, text: &str, region: Option<PhoneRegion>, out: &mut Vec<Finding>) {
        out.clear();
        let own;
        let regions = match region {
            Some(PhoneRegion(index)) => {
                own = [usize::from(index)];
                &own[..]
            }
            None => self.phones.defaults(),
        };
        if !may_hold_pii(text.as_bytes()) {
            return;
        }
        let mut at = 0;
        // The end of the last finding: text before it is a label once redacted, so it counts
        // as a boundary (this keeps redaction idempotent).
        let mut floor = 0;
        while at < text.len() {
            let Some(m) = self.regex.find(Input::new(text).range(at..)) else {
                break;
            };
            match self.confirm(
                text,
                m.start(),
                m.end(),
                m.pattern().as_usize(),
                floor,
                regions,
            ) {
                Ok(found) => {
                    out.push(found);
                    at = found.end;
                    floor = found.end;
                }
                Err(next) => at = next,
            }
        }
    }

    /// Writes `text` with every finding replaced by its label into `out` (cleared first) and
    /// returns how many findings there were. `findings` is scratch space, reused across calls;
    /// it holds the findings afterwards.
    pub fn redact_into(&self, text: &str, findings: &mut Vec<Finding>, out: &mut String) -> usize {
        self.redact_in(text, None, findings, out)
    }

    /// As [`PiiDetector::redact_into`], with the phone region of [`PiiDetector::find_in`].
    pub fn redact_in(
        &self,
        text: &str,
        region: Option<PhoneRegion>,
        findings: &mut Vec<Finding>,
        out: &mut String,
    ) -> usize {
        out.clear();
        self.find_in(text, region, findings);
        let mut last = 0;
        for f in findings.iter() {
            out.push_str(&text[last..f.start]);
            out.push_str(f.kind.label());
            last = f.end;
        }
        out.push_str(&text[last..]);
        findings.len()
    }

    /// The first shape, from `first` on in priority order, whose candidate at `start` validates;
    /// otherwise where the scan goes on.
    fn confirm(
        &self,
        text: &str,
        start: usize,
        end: usize,
        first: usize,
        floor: usize,
        regions: &[usize],
    ) -> Result<Finding, usize> {
        for index in first..self.shapes.len() {
            let shape = self.shapes[index];
            let end = if index == first {
                end
            } else {
                let input = Input::new(text).range(start..).anchored(Anchored::Yes);
                match self.singles[index].find(input) {
                    Some(m) => m.end(),
                    None => continue,
                }
            };
            if let Some(found) = self.accept(text, start, end, shape, floor, regions) {
                return Ok(found);
            }
            // Shaped like an IBAN but failing its checksum: some other account or reference
            // number, whose digits must not then pass as a card or a phone number.
            if shape == Shape::Iban {
                return Err(end);
            }
        }
        Err(skip_word(text, start))
    }

    /// Whether `text[start..end]` (or, for shapes that may be cut, its longest prefix ending
    /// before a separator) is a finding of `shape`.
    fn accept(
        &self,
        text: &str,
        mut start: usize,
        end: usize,
        shape: Shape,
        floor: usize,
        regions: &[usize],
    ) -> Option<Finding> {
        let bytes = text.as_bytes();
        if shape == Shape::Email {
            // The local part may have picked up leading punctuation (`..jane@`, `-jane@`).
            while start < end && matches!(bytes[start], b'.' | b'%' | b'+' | b'-') {
                start += 1;
            }
        }
        let kind = shape.kind();
        let mut end = end;
        loop {
            if start < end
                && on_boundary(text, start, end, kind, floor)
                && self.valid(shape, &text[start..end], regions)
            {
                return Some(Finding { kind, start, end });
            }
            // The next shorter candidate ends at an alphanumeric followed by a separator.
            let cut = shape.cut_at();
            if cut.is_empty() {
                return None;
            }
            let mut e = end - 1;
            loop {
                if e <= start + 1 {
                    return None;
                }
                if cut.contains(&bytes[e]) && bytes[e - 1].is_ascii_alphanumeric() {
                    break;
                }
                e -= 1;
            }
            end = e;
        }
    }

    fn valid(&self, shape: Shape, candidate: &str, regions: &[usize]) -> bool {
        match shape {
            Shape::Email => validate::email(candidate),
            Shape::Iban => validate::iban(candidate),
            Shape::SsnDashed | Shape::SsnSpaced => validate::ssn(candidate),
            Shape::Card => validate::card(candidate),
            Shape::Ipv6 => validate::ipv6(candidate),
            Shape::Ipv4 => validate::ipv4(candidate),
            Shape::Phone => validate::phone(candidate, &self.phones, regions),
        }
    }
}

/// Whether the regex can match at all: every pattern needs a digit or an `@`, except IPv6
/// written in hex letters only (`cafe::beef`), which needs two colons. This scan runs at several
/// GB/s; the regex over prose runs at about 0.5 GB/s.
fn may_hold_pii(text: &[u8]) -> bool {
    let mut colons = 0;
    for &b in text {
        match b {
            b'0'..=b'9' | b'@' => return true,
            b':' => {
                colons += 1;
                if colons == 2 {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// Characters that join a candidate to its neighbours into one longer word or number. Letters
/// of scripts written without spaces (CJK, kana, Hangul and on) do not: `电话13812345678`.
fn joins(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || c == '_'
        || (('\u{C0}'..'\u{2E80}').contains(&c) && c.is_alphanumeric())
}

/// A finding must not start or end inside a longer word or number: `ORD-2024-000123`,
/// `1.2.3.4.5`, `2024/0042`, `#4155550132` and `+12` followed by a number hold none.
fn on_boundary(text: &str, start: usize, end: usize, kind: PiiKind, floor: usize) -> bool {
    // Text before `floor` is the previous finding, which becomes a label.
    let mut before = text[floor.min(start)..start].chars().rev();
    let (b1, b2) = (before.next(), before.next());
    let mut after = text[end..].chars();
    let (a1, a2) = (after.next(), after.next());
    if b1.is_some_and(joins) || a1.is_some_and(joins) {
        return false;
    }
    if kind == PiiKind::Email {
        return !matches!(a1, Some('@'));
    }
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
    // The tail of a longer number in groups (`9400 8694 6407 0231 7759 48`, a tracking number):
    // a phone or card number does not follow a digit and a space unless it starts with `+`/`(`.
    let opens = text[start..].starts_with(['+', '(']);
    let glued_before = match b1 {
        Some('+' | '@') => true,
        Some(' ') => matches!(kind, PiiKind::Phone | PiiKind::CreditCard) && !opens && digit(b2),
        Some('#' | '№') => kind == PiiKind::Phone,
        Some('-' | '/') => alnum(b2),
        Some('.' | ',' | ':') => digit(b2),
        _ => false,
    };
    let glued_after = match a1 {
        Some('@') => true,
        // An address with a port or a prefix length is still an address.
        Some(':' | '/') if kind == PiiKind::IpAddress => false,
        Some('-' | '/') => alnum(a2),
        Some('.' | ',' | ':') => digit(a2),
        _ => false,
    };
    !glued_before && !glued_after
}

/// Where to look next after a failed candidate at `at`: past the word it starts (no finding can
/// start inside it), or past its first character.
fn skip_word(text: &str, at: usize) -> usize {
    let bytes = text.as_bytes();
    if bytes[at].is_ascii_alphanumeric() {
        let run = bytes[at..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        at + run
    } else {
        text[at..]
            .chars()
            .next()
            .map_or(text.len(), |c| at + c.len_utf8())
    }
}
