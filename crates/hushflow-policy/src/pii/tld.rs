//! Top-level domains that exist: the root zone as IANA lists it, so that `logo@2x.png`,
//! `name@2x.jpg` and `user@host.local` are not taken for email addresses.
//!
//! The list is static data compiled into the binary (`tlds.rs`, generated from
//! `data/tlds-alpha-by-domain.txt`, IANA's file, by [`generate`]). The test
//! `tlds_match_the_iana_list` keeps the two equal. To refresh the list, run
//! `crates/hushflow-policy/data/refresh-tlds.sh`, which downloads IANA's current file and
//! rewrites `tlds.rs` with `HUSHFLOW_WRITE_TLDS=1 cargo test -p hushflow-policy tlds`.

/// Every top-level domain of the root zone, lowercase ASCII (IDNs as `xn--` A-labels), sorted.
static TLDS: &[&str] = include!("tlds.rs");

/// The longest label DNS allows.
const MAX_LABEL: usize = 63;

/// Whether `label` (any case, without the dot) is a top-level domain of the root zone.
pub(super) fn exists(label: &str) -> bool {
    let bytes = label.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_LABEL {
        return false;
    }
    let mut lower = [0u8; MAX_LABEL];
    for (to, from) in lower.iter_mut().zip(bytes) {
        *to = from.to_ascii_lowercase();
    }
    let lower = &lower[..bytes.len()];
    // The usual ones without a search: every email candidate ends in a TLD to check.
    match lower {
        b"com" | b"org" | b"net" => true,
        [a, b] => two_letter().contains(*a, *b),
        _ => TLDS
            .binary_search_by(|tld| tld.as_bytes().cmp(lower))
            .is_ok(),
    }
}

/// `example` and `test`, the TLDs RFC 2606 reserves for documentation and tests: not in the
/// root zone, but demo data, sample contacts and test fixtures write addresses with them, and a
/// redaction that leaves `jane@acme.example` in place would look like a leak to whoever checks.
/// (`localhost`, `invalid` and `local` stay no email domains.)
pub(super) fn reserved_for_examples(label: &str) -> bool {
    label.eq_ignore_ascii_case("example") || label.eq_ignore_ascii_case("test")
}

/// The two-letter TLDs (countries) as a 26 × 26 bit table, built from `TLDS` once.
struct TwoLetter([u32; 26]);

impl TwoLetter {
    fn contains(&self, a: u8, b: u8) -> bool {
        a.is_ascii_lowercase()
            && b.is_ascii_lowercase()
            && self.0[usize::from(a - b'a')] & (1 << (b - b'a')) != 0
    }
}

fn two_letter() -> &'static TwoLetter {
    static TABLE: std::sync::OnceLock<TwoLetter> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut rows = [0u32; 26];
        for tld in TLDS {
            if let [a, b] = tld.as_bytes()
                && a.is_ascii_lowercase()
                && b.is_ascii_lowercase()
            {
                rows[usize::from(a - b'a')] |= 1 << (b - b'a');
            }
        }
        TwoLetter(rows)
    })
}

/// Writes `tlds.rs` from IANA's `tlds-alpha-by-domain.txt`: `#` lines are comments (the first
/// one, IANA's version line, is kept as the source's date), every other line a TLD.
#[cfg(test)]
pub(super) fn generate(iana: &str) -> String {
    let mut header = String::new();
    let mut tlds: Vec<String> = Vec::new();
    for line in iana.lines() {
        let line = line.trim();
        if let Some(comment) = line.strip_prefix('#') {
            if header.is_empty() {
                header = comment.trim().to_string();
            }
        } else if !line.is_empty() {
            tlds.push(line.to_ascii_lowercase());
        }
    }
    tlds.sort();
    tlds.dedup();
    let mut out = String::from(
        "// Generated from data/tlds-alpha-by-domain.txt by `tld::generate`; do not edit.\n",
    );
    if !header.is_empty() {
        out.push_str(&format!("// {header}\n"));
    }
    out.push_str("&[\n");
    for tld in &tlds {
        out.push_str(&format!("{tld:?},\n"));
    }
    out.push_str("]\n");
    out
}
