//! Phone numbers: libphonenumber's parse and validity rules (country code, international and
//! trunk prefixes, region by leading digits, number type by pattern) over the metadata the
//! `phonenumber` crate ships (copied into static data, see `phone_meta.rs`), compiled per region
//! into regex-automata regexes the first time a number of that region is seen.
//!
//! Why not `phonenumber::parse` and `phonenumber::is_valid`: they look every pattern up in one
//! process-wide LRU of 100 compiled regexes behind a mutex. Measured here: 4-10 µs per number
//! when warm, and up to 0.4 ms for a +44 number, whose patterns do not fit in the LRU and are
//! compiled again on every call, while every worker thread queues on that mutex. This module
//! gives the same answers (checked against the crate in the tests) in well under a
//! microsecond, lock-free once a region is compiled.

use super::PiiError;
use super::phone_meta::{Desc, REGIONS, Region};
use regex_automata::meta::Regex;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, MatchKind, PatternID, PatternSet};
use std::collections::HashMap;
use std::sync::OnceLock;

/// The longest national significant number libphonenumber accepts.
const MAX_NSN: usize = 17;

/// What a valid number is, as far as the detector cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Line {
    /// `MOBILE` or `FIXED_LINE_OR_MOBILE`.
    Mobile,
    /// Any other valid type: fixed line, toll free, VoIP, …
    Other,
}

/// A valid national number.
#[derive(Debug, Clone, Copy)]
pub(super) struct National {
    pub(super) code: u16,
    pub(super) line: Line,
    pub(super) needs_trunk: bool,
}

/// The metadata of every region, indexed by country calling code, with each region's regexes
/// compiled on first use.
pub(super) struct Phones {
    regions: &'static [Region],
    compiled: Vec<OnceLock<Option<Compiled>>>,
    /// For each calling code 0..1000: the range of `regions` that share it, main region first.
    by_code: Vec<(u16, u16)>,
    /// The configured regions, for numbers without a country code (indexes into `regions`).
    defaults: Vec<usize>,
    /// Country names and ISO codes (lowercase) to the index of their region, for
    /// `region_from`: a record's own country.
    names: HashMap<Box<str>, usize>,
}

impl std::fmt::Debug for Phones {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phones")
            .field(
                "regions",
                &self
                    .defaults
                    .iter()
                    .map(|&i| self.regions[i].id)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The regexes of one region. Descriptor patterns match whole national significant numbers.
struct Compiled {
    code: u16,
    general: Regex,
    /// Every number type's pattern, matched in one pass (`MatchKind::All`).
    type_patterns: Regex,
    /// Per pattern of `type_patterns`, in libphonenumber's `getNumberType` order: the type's
    /// possible lengths and what it is.
    types: Vec<(Box<[u16]>, Kind)>,
    /// The union of the types' possible lengths and local-only lengths (libphonenumber computes
    /// these for the general descriptor when it builds its metadata; the crate leaves them out).
    possible: Vec<u16>,
    local: Vec<u16>,
    leading: Option<Regex>,
    /// National formats: the last leading-digits pattern, the number pattern, and whether the
    /// number is written with the trunk prefix (`$NP` in the formatting rule, not optional).
    formats: Vec<(Option<Regex>, Regex, bool)>,
    national_prefix: Option<Regex>,
    transform: Option<String>,
    idd: Option<Regex>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Special,
    FixedLine,
    Mobile,
}

/// The metadata's patterns are written over several lines (libphonenumber compiles them with
/// whitespace ignored); `whole` anchors at both ends (Java's `matches`), otherwise at the start
/// (`lookingAt`).
fn source(pattern: &str, whole: bool) -> String {
    let pattern: String = pattern.chars().filter(|c| !c.is_whitespace()).collect();
    if whole {
        format!("^(?:{pattern})$")
    } else {
        format!("^(?:{pattern})")
    }
}

/// The regex engines a region's patterns get. They match one short candidate at a time, and a
/// run compiles the patterns of every region its numbers come from, so building them counts:
/// without the fully compiled DFA (the lazy DFA remains) the benchmark's full policy takes
/// 0.277 s instead of 0.290 s on 200,000 rows, most of it in building.
fn config() -> regex_automata::meta::Config {
    Regex::config().dfa(false)
}

fn compile(pattern: &str, whole: bool) -> Option<Regex> {
    Regex::builder()
        .configure(config())
        .syntax(syntax::Config::new().unicode(false))
        .build(&source(pattern, whole))
        .ok()
}

impl Compiled {
    fn new(meta: &Region) -> Option<Compiled> {
        // What each of `meta.types` is, in the same (`getNumberType`) order.
        const KINDS: [Kind; 10] = [
            Kind::Special,
            Kind::Special,
            Kind::Special,
            Kind::Special,
            Kind::Special,
            Kind::Special,
            Kind::Special,
            Kind::Special,
            Kind::FixedLine,
            Kind::Mobile,
        ];
        let mut types = Vec::new();
        let mut sources = Vec::new();
        let mut possible = Vec::new();
        let mut local = Vec::new();
        for (desc, kind) in meta.types.iter().zip(KINDS) {
            let Some(desc) = desc else { continue };
            possible.extend_from_slice(desc.possible_length);
            local.extend_from_slice(desc.possible_local_length);
            sources.push(source(desc.national_number, true));
            types.push((desc.possible_length.into(), kind));
        }
        let type_patterns = Regex::builder()
            .configure(config().match_kind(MatchKind::All))
            .syntax(syntax::Config::new().unicode(false))
            .build_many(&sources)
            .ok()?;
        if let Some(Desc {
            possible_length, ..
        }) = &meta.no_international
        {
            possible.extend_from_slice(possible_length);
        }
        for lengths in [&mut possible, &mut local] {
            lengths.sort_unstable();
            lengths.dedup();
        }
        // As libphonenumber's metadata builder: a length possible nationally for some type is
        // not local-only for the region.
        local.retain(|l| !possible.contains(l));
        // Without a pattern of its own, the national prefix for parsing is the prefix itself.
        let national_prefix = match (meta.national_prefix_for_parsing, meta.national_prefix) {
            (Some(re), _) => Some(compile(re, false)?),
            (None, Some(prefix)) if prefix.bytes().all(|b| b.is_ascii_digit()) => {
                Some(compile(prefix, false)?)
            }
            _ => None,
        };
        let mut formats = Vec::new();
        for f in meta.formats {
            let leading = match f.last_leading_digits {
                Some(re) => Some(compile(re, false)?),
                None => None,
            };
            let trunk = f
                .national_prefix_rule
                .is_some_and(|rule| rule.contains("$NP"))
                && !f.national_prefix_optional;
            formats.push((leading, compile(f.pattern, true)?, trunk));
        }
        Some(Compiled {
            code: meta.country_code,
            formats,
            general: compile(meta.general.national_number, true)?,
            type_patterns,
            types,
            possible,
            local,
            leading: match meta.leading_digits {
                Some(re) => Some(compile(re, false)?),
                None => None,
            },
            national_prefix,
            transform: meta.national_prefix_transform_rule.map(str::to_owned),
            idd: match meta.international_prefix {
                Some(re) => Some(compile(re, false)?),
                None => None,
            },
        })
    }

    fn general(&self, nsn: &str) -> bool {
        self.general.is_match(nsn)
    }

    /// libphonenumber's `getNumberTypeHelper`, reduced to what the detector needs.
    fn line(&self, nsn: &str) -> Option<Line> {
        if !self.general(nsn) {
            return None;
        }
        let len = nsn.len() as u16;
        let mut matched = PatternSet::new(self.types.len());
        let input = Input::new(nsn).anchored(Anchored::Yes);
        self.type_patterns
            .which_overlapping_matches(&input, &mut matched);
        let mut fixed_line = false;
        for (index, (lengths, kind)) in self.types.iter().enumerate() {
            let hit = (lengths.is_empty() || lengths.contains(&len))
                && PatternID::new(index).is_ok_and(|id| matched.contains(id));
            match kind {
                Kind::Special if hit => return Some(Line::Other),
                Kind::FixedLine => fixed_line = hit,
                Kind::Mobile if hit => return Some(Line::Mobile),
                _ => {}
            }
        }
        fixed_line.then_some(Line::Other)
    }

    /// Whether the number is written with the trunk prefix in national format: the formatting
    /// rule of the first format that fits it (libphonenumber's `chooseFormattingPatternForNumber`)
    /// has `$NP` and does not make it optional. `0151 …` in Germany; `138 …` in China, `98765 …`
    /// in India and `(11) 91234-5678` in Brazil go without.
    fn needs_trunk(&self, nsn: &str) -> bool {
        self.formats
            .iter()
            .find(|(leading, pattern, _)| {
                leading.as_ref().is_none_or(|l| l.is_match(nsn)) && pattern.is_match(nsn)
            })
            .is_some_and(|f| f.2)
    }

    /// libphonenumber's `testNumberLength` is neither `TOO_SHORT`, `IS_POSSIBLE_LOCAL_ONLY` nor
    /// `INVALID_LENGTH`: a number left after stripping a trunk prefix is long enough to keep.
    fn long_enough(&self, len: usize) -> bool {
        let len = len as u16;
        let (Some(&min), Some(&max)) = (self.possible.first(), self.possible.last()) else {
            return false;
        };
        !self.local.contains(&len) && len >= min && (len > max || self.possible.contains(&len))
    }

    fn too_long(&self, len: usize) -> bool {
        self.possible.last().is_some_and(|&max| len as u16 > max)
    }

    /// libphonenumber's `maybeStripNationalPrefixAndCarrierCode`: the number without its trunk
    /// prefix (and carrier code), or `None` when there is none to strip.
    fn strip_national_prefix(&self, number: &str, out: &mut String) -> bool {
        let Some(re) = &self.national_prefix else {
            return false;
        };
        let viable = || self.general(number);
        if re.captures_len() == 1 {
            // No groups, so no carrier code and no transform: a plain prefix (the DFA's speed).
            let Some(m) = re.find(Input::new(number).anchored(Anchored::Yes)) else {
                return false;
            };
            out.clear();
            out.push_str(&number[m.end()..]);
            return !viable() || self.general(out);
        }
        let mut caps = re.create_captures();
        re.search_captures(&Input::new(number).anchored(Anchored::Yes), &mut caps);
        let Some(whole) = caps.get_match() else {
            return false;
        };
        let viable = viable();
        let last = caps.get_group(caps.group_len().saturating_sub(1));
        out.clear();
        match (&self.transform, last) {
            (Some(rule), Some(_)) if !rule.is_empty() => {
                java_replacement(rule, number, &caps, out);
                out.push_str(&number[whole.end()..]);
            }
            _ => out.push_str(&number[whole.end()..]),
        }
        // A number that fitted the region before stripping must still fit after it.
        !viable || self.general(out)
    }
}

/// Writes a calling code (1 to 999) in decimal into `out`; returns how many digits it has.
pub(super) fn write_code(code: u16, out: &mut [u8; 3]) -> usize {
    let len = match code {
        0..=9 => 1,
        10..=99 => 2,
        _ => 3,
    };
    let mut rest = code.min(999);
    for slot in out[..len].iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    len
}

/// Appends a Java `Matcher.replaceFirst` replacement: `$n` is group n (as many digits as name a
/// group), `\x` is `x`.
fn java_replacement(
    rule: &str,
    haystack: &str,
    caps: &regex_automata::util::captures::Captures,
    out: &mut String,
) {
    let groups = caps.group_len().saturating_sub(1);
    let mut chars = rule.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '$' => {
                let mut group = 0usize;
                let mut any = false;
                while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                    let next = group * 10 + d as usize;
                    if any && next > groups {
                        break;
                    }
                    group = next;
                    any = true;
                    chars.next();
                }
                if let Some(span) = caps.get_group(group) {
                    out.push_str(&haystack[span.range()]);
                }
            }
            c => out.push(c),
        }
    }
}

impl Phones {
    pub(super) fn new(configured: &[&str]) -> Result<Phones, PiiError> {
        // REGIONS is sorted by calling code, main region first.
        let regions = REGIONS;
        let mut by_code = vec![(0u16, 0u16); 1000];
        for (index, region) in regions.iter().enumerate() {
            if let Some(slot) = by_code.get_mut(usize::from(region.country_code)) {
                if slot.1 == 0 {
                    slot.0 = index as u16;
                }
                slot.1 = index as u16 + 1;
            }
        }
        let position = |id: &str| {
            let id = id.trim().to_ascii_uppercase();
            regions.iter().position(|m| m.id == id && id != "001")
        };
        let mut defaults = Vec::with_capacity(configured.len());
        for r in configured {
            let found = position(r).ok_or(PiiError::Region)?;
            if !defaults.contains(&found) {
                defaults.push(found);
            }
        }
        let mut names = HashMap::new();
        for (index, region) in regions.iter().enumerate() {
            if region.id != "001" {
                names
                    .entry(region.id.to_ascii_lowercase().into())
                    .or_insert(index);
            }
        }
        for &(id, alpha3, country_names) in super::countries::COUNTRIES {
            if let Some(index) = position(id) {
                for &name in std::iter::once(&alpha3).chain(country_names) {
                    names.insert(name.into(), index);
                }
            }
        }
        let compiled = regions.iter().map(|_| OnceLock::new()).collect();
        Ok(Phones {
            regions,
            compiled,
            by_code,
            defaults,
            names,
        })
    }

    fn compiled(&self, index: usize) -> Option<&Compiled> {
        self.compiled[index]
            .get_or_init(|| Compiled::new(&self.regions[index]))
            .as_ref()
    }

    fn regions_for(&self, code: usize) -> std::ops::Range<usize> {
        let (start, end) = self.by_code.get(code).copied().unwrap_or_default();
        start as usize..end as usize
    }

    /// The configured regions, in the order they were given.
    pub(super) fn defaults(&self) -> &[usize] {
        &self.defaults
    }

    /// A region's calling code and trunk prefix.
    pub(super) fn region_info(&self, index: usize) -> (u16, Option<&'static str>) {
        let meta = &self.regions[index];
        (meta.country_code, meta.national_prefix)
    }

    /// The region a country field names: an ISO 3166 alpha-2 or alpha-3 code, or the country's
    /// name in English, German, French or Spanish (any case, surrounding spaces ignored). `lower`
    /// is scratch space.
    pub(super) fn region_named(&self, country: &str, lower: &mut String) -> Option<usize> {
        let country = country.trim();
        if country.is_empty() || country.len() > 64 {
            return None;
        }
        lower.clear();
        if country.is_ascii() {
            lower.push_str(country);
            lower.make_ascii_lowercase();
        } else {
            lower.extend(country.chars().flat_map(char::to_lowercase));
        }
        self.names.get(lower.as_str()).copied()
    }

    /// A number written with its country code; `digits` follow the `+` or the `00`.
    pub(super) fn international(&self, digits: &str) -> Option<(u16, Line)> {
        if digits.starts_with('0') {
            return None;
        }
        let (code, national) = (1..=3.min(digits.len())).find_map(|len| {
            let code: usize = digits[..len].parse().ok()?;
            (!self.regions_for(code).is_empty()).then(|| (code, &digits[len..]))
        })?;
        let main = self.regions_for(code).start;
        let mut nsn = national;
        let mut stripped = String::new();
        if let Some(c) = self.compiled(main)
            && c.strip_national_prefix(national, &mut stripped)
            && c.long_enough(stripped.len())
        {
            nsn = &stripped;
        }
        Some((code as u16, self.valid(code, nsn)?))
    }

    /// A number written without a country code, in `region` (or the first configured one).
    pub(super) fn national(&self, digits: &str, region: Option<usize>) -> Option<(u16, Line)> {
        self.national_number(digits, region, false)
            .map(|n| (n.code, n.line))
    }

    /// Like [`Phones::national`], and (if `trunk` is asked for) whether such a number is written
    /// with the trunk prefix.
    pub(super) fn national_number(
        &self,
        digits: &str,
        region: Option<usize>,
        trunk: bool,
    ) -> Option<National> {
        let index = region.or_else(|| self.defaults.first().copied())?;
        let c = self.compiled(index)?;
        if let Some(idd) = &c.idd
            && let Some(m) = idd.find(Input::new(digits).anchored(Anchored::Yes))
            && m.end() < digits.len()
            && !digits[m.end()..].starts_with('0')
        {
            let (code, line) = self.international(&digits[m.end()..])?;
            return Some(National {
                code,
                line,
                needs_trunk: false,
            });
        }
        let mut number = digits;
        let mut without_code = String::new();
        // The country code written without a `+` (`1 415 555 0132`).
        // (Formatted on the stack: this runs for every national candidate in every region.)
        let mut code_digits = [0u8; 3];
        let code_len = write_code(c.code, &mut code_digits);
        let code = std::str::from_utf8(&code_digits[..code_len]).unwrap_or_default();
        if let Some(rest) = digits.strip_prefix(code) {
            let mut stripped = String::new();
            let potential = if c.strip_national_prefix(rest, &mut stripped) {
                stripped.as_str()
            } else {
                rest
            };
            if (!c.general(digits) && c.general(potential)) || c.too_long(digits.len()) {
                without_code.push_str(potential);
                number = &without_code;
            }
        }
        let mut stripped = String::new();
        if c.strip_national_prefix(number, &mut stripped) && c.long_enough(stripped.len()) {
            number = &stripped;
        }
        let line = self.valid(usize::from(c.code), number)?;
        Some(National {
            code: c.code,
            line,
            needs_trunk: trunk && c.needs_trunk(number),
        })
    }

    /// The North American region (for well-formed NANP numbers when no region is configured).
    pub(super) fn north_america(&self) -> Option<usize> {
        self.regions_for(1).next()
    }

    /// libphonenumber's `isValidNumber`: the region that owns the number among those sharing
    /// its calling code, then a number type of that region that matches.
    fn valid(&self, code: usize, nsn: &str) -> Option<Line> {
        if !(2..=MAX_NSN).contains(&nsn.len()) {
            return None;
        }
        let regions = self.regions_for(code);
        if regions.len() == 1 {
            return self.compiled(regions.start)?.line(nsn);
        }
        for index in regions {
            let Some(c) = self.compiled(index) else {
                continue;
            };
            match &c.leading {
                Some(leading) => {
                    if leading.is_match(nsn) {
                        return c.line(nsn);
                    }
                }
                None => {
                    if let Some(line) = c.line(nsn) {
                        return Some(line);
                    }
                }
            }
        }
        None
    }

    #[cfg(test)]
    pub(super) fn all_regions(&self) -> impl Iterator<Item = (usize, &'static Region)> + '_ {
        self.regions.iter().enumerate()
    }

    #[cfg(test)]
    pub(super) fn compiles(&self, index: usize) -> bool {
        self.compiled(index).is_some()
    }
}
