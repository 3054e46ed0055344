//! The log redactor: masks every registered secret, and its common encodings, in text that is
//! about to leave the process (logs, panic messages, error reports).
//!
//! Matching is overlapping Aho-Corasick, merged into ranges, rather than leftmost-longest:
//! leftmost-longest resumes after each match, so with the secret `abab` the text `ababab`
//! would come out as `***ab`, and with secrets `abcd` and `cdef` the text `abcdef` as `***ef`.
//! Merging every overlapping match masks the whole run.

use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

use crate::SecretValue;

/// What replaces a secret.
pub const MASK: &str = "***";

/// Secrets shorter than this are not registered. Masking every `abc` in the logs would wreck
/// them and, by showing where the masks fall, hint at the secret anyway; short secrets are weak
/// regardless and should be replaced with longer ones.
pub const MIN_SECRET_LEN: usize = 4;

/// Shown instead of the text when the matcher could not be built, so that a failure to redact
/// never turns into a leak.
const WITHHELD: &str = "[output withheld: the secret redactor is unavailable]\n";

/// Masks registered secrets. Cheap to clone; clones share the registered secrets, so a
/// redactor handed to the log writer at start-up also masks secrets resolved later.
///
/// The matcher keeps its own copy of the patterns, which is not wiped on drop; the copies the
/// redactor owns are.
#[derive(Clone, Default)]
pub struct Redactor {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    // Set after the first registration so that a process without secrets pays one atomic load.
    armed: AtomicBool,
    // Serializes registrations; the rebuild happens under this lock, not under `matcher`, so a
    // scrub (in the panic hook, say) never waits for a build.
    patterns: Mutex<Vec<Zeroizing<Vec<u8>>>>,
    matcher: RwLock<Matcher>,
}

#[derive(Clone, Default)]
enum Matcher {
    #[default]
    Empty,
    Ready(Arc<AhoCorasick>),
    Broken,
}

impl Redactor {
    /// A redactor with no secrets registered yet; it masks nothing until one is.
    pub fn new() -> Self {
        Redactor::default()
    }

    /// Registers `secret` so that it, its lowercase and uppercase hex, and its base64 and
    /// base64url encodings (padded and unpadded) are masked from now on. Binary key material is
    /// usually printed encoded, so the encodings matter more than the raw bytes for keys.
    ///
    /// The raw value, and its `{:?}`- and JSON-escaped forms, are registered only if it is
    /// UTF-8. Secrets shorter than
    /// [`MIN_SECRET_LEN`] bytes are ignored (see there why).
    ///
    /// Encodings of a secret embedded in larger encoded data (a base64 `user:password` header,
    /// say) are not caught: their characters depend on the neighbouring bytes.
    pub fn register(&self, secret: &SecretValue) {
        let bytes = secret.expose();
        if bytes.len() < MIN_SECRET_LEN {
            return;
        }
        let mut candidates: Vec<Zeroizing<Vec<u8>>> = Vec::with_capacity(9);
        if let Ok(text) = std::str::from_utf8(bytes) {
            candidates.push(Zeroizing::new(bytes.to_vec()));
            // `{:?}` and JSON escape quotes, backslashes and control characters, so a secret
            // containing them, logged with `?field` or by a JSON formatter, would not match
            // the raw form.
            let debug = Zeroizing::new(format!("{text:?}"));
            if let Some(inner) = debug.get(1..debug.len().saturating_sub(1)) {
                candidates.push(Zeroizing::new(inner.as_bytes().to_vec()));
            }
            candidates.push(json_escaped(text));
        }
        let hex_lower = Zeroizing::new(hex::encode(bytes));
        candidates.push(Zeroizing::new(hex_lower.as_bytes().to_vec()));
        candidates.push(Zeroizing::new(hex_lower.to_ascii_uppercase().into_bytes()));
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            candidates.push(Zeroizing::new(engine.encode(bytes).into_bytes()));
        }

        let mut patterns = self
            .shared
            .patterns
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let before = patterns.len();
        for c in candidates {
            if !patterns.iter().any(|p| **p == *c) {
                patterns.push(c);
            }
        }
        if patterns.len() == before {
            return;
        }
        let matcher = match AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(patterns.iter().map(|p| p.as_slice()))
        {
            Ok(ac) => Matcher::Ready(Arc::new(ac)),
            Err(_) => Matcher::Broken,
        };
        *self
            .shared
            .matcher
            .write()
            .unwrap_or_else(PoisonError::into_inner) = matcher;
        self.shared.armed.store(true, Ordering::Release);
    }

    /// True until a secret has been registered.
    pub fn is_empty(&self) -> bool {
        !self.shared.armed.load(Ordering::Acquire)
    }

    /// `text` with every registered secret replaced by [`MASK`]. Borrows when nothing matches.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.scrub_bytes(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            // Patterns registered raw are valid UTF-8 and encodings are ASCII, and a valid UTF-8
            // pattern can only match on character boundaries, so this is UTF-8 again; the lossy
            // branch is there so that being wrong about it cannot panic.
            Cow::Owned(bytes) => Cow::Owned(match String::from_utf8(bytes) {
                Ok(s) => s,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            }),
        }
    }

    /// Like [`Redactor::scrub`], for bytes that need not be UTF-8.
    pub fn scrub_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let (out, _) = self.scrub_split(bytes, false);
        out
    }

    /// Scrubs `bytes`, or with `keep_tail` only a prefix of it that no secret can straddle,
    /// and returns the scrubbed output with the length of the input it covers. A writer that
    /// buffers a long stream emits that prefix and keeps the rest until more data arrives.
    pub(crate) fn scrub_split<'a>(
        &self,
        bytes: &'a [u8],
        keep_tail: bool,
    ) -> (Cow<'a, [u8]>, usize) {
        if self.is_empty() {
            return (Cow::Borrowed(bytes), bytes.len());
        }
        let matcher = self
            .shared
            .matcher
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let ac = match matcher {
            Matcher::Empty => return (Cow::Borrowed(bytes), bytes.len()),
            Matcher::Ready(ac) => ac,
            Matcher::Broken => return (Cow::Owned(WITHHELD.as_bytes().to_vec()), bytes.len()),
        };
        let Some(ranges) = merged_matches(&ac, bytes) else {
            return (Cow::Owned(WITHHELD.as_bytes().to_vec()), bytes.len());
        };

        let mut end = bytes.len();
        if keep_tail {
            // A secret starting before `end` ends inside `bytes`, so it has been seen whole.
            end = end.saturating_sub(ac.max_pattern_len().saturating_sub(1));
            if let Some(r) = ranges.iter().find(|r| r.start < end && end < r.end) {
                end = r.start;
            }
        }
        let covered = ranges.iter().take_while(|r| r.end <= end);
        if ranges.first().is_none_or(|r| r.end > end) {
            return (Cow::Borrowed(&bytes[..end]), end);
        }
        let mut out = Vec::with_capacity(end);
        let mut at = 0;
        for r in covered {
            out.extend_from_slice(&bytes[at..r.start]);
            out.extend_from_slice(MASK.as_bytes());
            at = r.end;
        }
        out.extend_from_slice(&bytes[at..end]);
        (Cow::Owned(out), end)
    }

    /// Replaces the process's panic hook with one that prints the usual panic report (thread,
    /// location, backtrace when `RUST_BACKTRACE` asks for one) scrubbed, to stderr. The message
    /// itself is shown only when `show_messages` is set: Rust's own panic messages quote the data
    /// involved (a string sliced at a bad index, an error unwrapped), which may be a record's
    /// personal data, and no list of secrets can scrub that.
    /// The previous hook is dropped, not chained: it would print the message unscrubbed.
    pub fn install_panic_hook(&self, show_messages: bool) {
        let redactor = self.clone();
        std::panic::set_hook(Box::new(move |info| {
            let message = if show_messages {
                info.payload_as_str().unwrap_or("Box<dyn Any>")
            } else {
                "(message withheld: it may quote record data; set HUSHFLOW_DEBUG_PANICS=1 to see it)"
            };
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("<unnamed>");
            let mut report = match info.location() {
                Some(l) => format!(
                    "\nthread '{name}' panicked at {}:{}:{}:\n{message}\n",
                    l.file(),
                    l.line(),
                    l.column()
                ),
                None => format!("\nthread '{name}' panicked:\n{message}\n"),
            };
            let backtrace = std::backtrace::Backtrace::capture();
            match backtrace.status() {
                std::backtrace::BacktraceStatus::Captured => {
                    report.push_str(&format!("stack backtrace:\n{backtrace}\n"));
                }
                _ => report.push_str(
                    "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
                ),
            }
            let scrubbed = redactor.scrub(&report);
            // Nowhere left to report a failure to write to stderr.
            let _ = std::io::stderr().lock().write_all(scrubbed.as_bytes());
        }));
    }
}

/// `text` as it appears inside a JSON string.
fn json_escaped(text: &str) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() * 2));
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            c if u32::from(c) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", u32::from(c)).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out
}

/// All matches, overlapping ones included, merged into sorted disjoint ranges; adjacent matches
/// merge too, so `secretsecret` becomes one mask. `None` only if the matcher refuses overlapping
/// search, which cannot happen for one built with `MatchKind::Standard`.
fn merged_matches(ac: &AhoCorasick, hay: &[u8]) -> Option<Vec<Range<usize>>> {
    let mut ranges: Vec<Range<usize>> = Vec::new();
    for m in ac.try_find_overlapping_iter(hay).ok()? {
        // Overlapping matches come in order of their end, so a later match can start before
        // an earlier one (a long secret ending after a short one inside it); sort first.
        ranges.push(m.range());
    }
    ranges.sort_unstable_by_key(|r| r.start);
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    Some(merged)
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let patterns = self
            .shared
            .patterns
            .lock()
            .map(|p| p.len())
            .unwrap_or_else(|e| e.into_inner().len());
        f.debug_struct("Redactor")
            .field("patterns", &patterns)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor(secrets: &[&[u8]]) -> Redactor {
        let r = Redactor::new();
        for s in secrets {
            r.register(&SecretValue::new(s.to_vec()));
        }
        r
    }

    #[test]
    fn nothing_registered_borrows() {
        let r = Redactor::new();
        assert!(r.is_empty());
        assert!(matches!(r.scrub("hello"), Cow::Borrowed("hello")));
        assert!(matches!(r.scrub_bytes(b"\xffhello"), Cow::Borrowed(_)));
        let r = redactor(&[b"canary-1234"]);
        assert!(!r.is_empty());
        assert!(matches!(r.scrub("no secrets here"), Cow::Borrowed(_)));
    }

    #[test]
    fn masks_planted_canaries() {
        let canary = "cAnArY-5e1f0d2b";
        let r = redactor(&[canary.as_bytes()]);
        let text = format!("token={canary}; again {canary}!");
        assert_eq!(r.scrub(&text), "token=***; again ***!");
        assert_eq!(r.scrub(canary), "***");
        assert_eq!(
            r.scrub_bytes(format!("\u{ff}x{canary}y").as_bytes())
                .as_ref(),
            "\u{ff}x***y".as_bytes()
        );
    }

    #[test]
    fn masks_encodings() {
        // 32 bytes of key material, as the keyring makes them.
        let key: Vec<u8> = (0u8..32)
            .map(|i| i.wrapping_mul(37).wrapping_add(250))
            .collect();
        let r = redactor(&[&key]);
        let encodings = [
            hex::encode(&key),
            hex::encode_upper(&key),
            STANDARD.encode(&key),
            STANDARD_NO_PAD.encode(&key),
            URL_SAFE.encode(&key),
            URL_SAFE_NO_PAD.encode(&key),
        ];
        for e in &encodings {
            let text = format!("key: {e} end");
            let out = r.scrub(&text);
            assert_eq!(out, "key: *** end", "{e}");
        }
        // A text secret's encodings too.
        let r = redactor(&[b"hunter2hunter2"]);
        let b64 = STANDARD.encode("hunter2hunter2");
        assert_eq!(
            r.scrub(&format!("Authorization: Bearer {b64}")),
            "Authorization: Bearer ***"
        );
        assert_eq!(r.scrub(&hex::encode("hunter2hunter2")), "***");
    }

    #[test]
    fn overlapping_and_adjacent_occurrences() {
        let r = redactor(&[b"abab"]);
        assert_eq!(r.scrub("ababab"), "***");
        assert_eq!(r.scrub("xababababy"), "x***y");
        assert_eq!(r.scrub("ababzabab"), "***z***");
        let r = redactor(&[b"abcd", b"cdef"]);
        assert_eq!(r.scrub("abcdef"), "***");
        assert_eq!(r.scrub("cdefabcd"), "***");
        assert_eq!(r.scrub("abcd-cdef"), "***-***");
        // One secret inside another.
        let r = redactor(&[b"secret-token-long", b"token"]);
        assert_eq!(r.scrub("a secret-token-long b token c"), "a *** b *** c");
    }

    #[test]
    fn short_and_duplicate_secrets() {
        let r = redactor(&[b"abc", b""]);
        assert!(r.is_empty());
        assert_eq!(r.scrub("abc"), "abc");
        let r = redactor(&[b"abcd"]);
        let count = || r.shared.patterns.lock().unwrap().len();
        // raw, hex (no letters, so one case), base64 padded and unpadded (url-safe alike).
        assert_eq!(count(), 4);
        r.register(&SecretValue::new(b"abcd".to_vec()));
        assert_eq!(count(), 4);
        assert!(format!("{r:?}").contains("patterns: 4"));
        assert!(!format!("{r:?}").contains("abcd"));
    }

    #[test]
    fn escaped_forms_are_masked() {
        let secret = "pa\"ss\\w\nord\u{1}";
        let r = redactor(&[secret.as_bytes()]);
        assert_eq!(r.scrub(&format!("debug: {secret:?}")), "debug: \"***\"");
        assert_eq!(
            r.scrub(r#"{"password":"pa\"ss\\w\nord\u0001"}"#),
            r#"{"password":"***"}"#
        );
        assert_eq!(
            json_escaped("a\u{1f}é\u{8}").as_slice(),
            r#"a\u001fé\b"#.as_bytes()
        );
    }

    #[test]
    fn non_utf8_secrets_register_only_encodings() {
        let r = redactor(&[b"\xff\xfe\xfd\xfc"]);
        assert_eq!(r.scrub("fffefdfc"), "***");
        assert_eq!(
            r.scrub_bytes(b"a\xff\xfe\xfd\xfcb").as_ref(),
            b"a\xff\xfe\xfd\xfcb"
        );
    }

    #[test]
    fn unicode_text_survives() {
        let r = redactor(&["sécrèt-ü".as_bytes()]);
        assert_eq!(r.scrub("ééé sécrèt-ü ééé"), "ééé *** ééé");
    }

    #[test]
    fn shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Redactor>();
        let r = Redactor::new();
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let r = r.clone();
                std::thread::spawn(move || {
                    r.register(&SecretValue::new(format!("thread-secret-{i}").into_bytes()));
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        for i in 0..4 {
            assert_eq!(r.scrub(&format!("[thread-secret-{i}]")), "[***]");
        }
    }

    #[test]
    fn clones_share_registrations() {
        let r = Redactor::new();
        let clone = r.clone();
        r.register(&SecretValue::new(b"late-secret".to_vec()));
        assert_eq!(clone.scrub("x late-secret"), "x ***");
    }

    #[test]
    fn split_keeps_a_tail_no_secret_can_straddle() {
        // The longest pattern is the 20-character hex form, so 19 bytes stay behind.
        let r = redactor(&[b"0123456789"]);
        let s = "0123456789";
        let input = format!("{}{s}{}", "a".repeat(30), "a".repeat(5));
        let (out, used) = r.scrub_split(input.as_bytes(), true);
        assert_eq!((out.as_ref(), used), ("a".repeat(26).as_bytes(), 26));
        let input = format!("{}{s}{}", "a".repeat(5), "a".repeat(20));
        let (out, used) = r.scrub_split(input.as_bytes(), true);
        assert_eq!((out.as_ref(), used), (&b"aaaaa***a"[..], 16));
        // A match across the cut moves the cut to its start.
        let input = format!("{}{s}{}", "a".repeat(15), "a".repeat(15));
        let (out, used) = r.scrub_split(input.as_bytes(), true);
        assert_eq!((out.as_ref(), used), ("a".repeat(15).as_bytes(), 15));
        let (out, used) = r.scrub_split(input.as_bytes(), false);
        assert_eq!(used, input.len());
        assert_eq!(
            out.as_ref(),
            format!("{}***{}", "a".repeat(15), "a".repeat(15)).as_bytes()
        );
    }
}
