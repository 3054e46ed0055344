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
    TLDS.binary_search_by(|tld| tld.as_bytes().cmp(lower))
        .is_ok()
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
