//! The fast path for the common line: one flat JSON object (every value a string, a number,
//! `true`, `false` or `null`) whose keys hold no escapes.
//!
//! serde_json validates and walks every line through its generic `Deserializer` machinery,
//! which cost more than the rest of a policy run together on contact exports. A flat object can
//! be checked and cut in one pass over its bytes. This scanner only ever *accepts*: the moment a
//! line holds anything it does not fully check (a nested value, a `\u` escape, a key with an
//! escape, a control character, a malformed token), it gives up and the line goes through
//! serde_json, which then parses it or names its error exactly as before. So a line is either
//! valid JSON read here with the same cells serde_json's path gives, or handled by serde_json
//! (`tests.rs` holds the two paths equal on generated lines, valid and broken).

use super::source::{Row, Slot, TWICE};
use hushflow_core::CellKind;

/// Parses `line` into `slots` and `text` (both reset by the caller) if it is a flat object; a
/// wanted key seen twice goes into `problem` as in the serde path. Returns `false`, with `slots`
/// and `text` in any state, when the line needs serde_json.
pub(super) fn parse_flat(
    line: &str,
    row: Row<'_>,
    slots: &mut [Slot],
    text: &mut String,
    problem: &mut Option<(usize, &'static str)>,
) -> bool {
    let b = line.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return false;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return skip_ws(b, i + 1) == b.len();
    }
    loop {
        // The key: a string without escapes.
        if b.get(i) != Some(&b'"') {
            return false;
        }
        let Some((key_end, false)) = string_end(b, i + 1) else {
            return false;
        };
        let column = line
            .get(i + 1..key_end)
            .and_then(|key| row.index.get(key).copied());
        i = skip_ws(b, key_end + 1);
        if b.get(i) != Some(&b':') {
            return false;
        }
        i = skip_ws(b, i + 1);

        // The value.
        let start = text.len();
        let (kind, end) = match b.get(i) {
            Some(b'"') => {
                let Some((close, escaped)) = string_end(b, i + 1) else {
                    return false;
                };
                if column.is_some() {
                    let Some(raw) = line.get(i..=close) else {
                        return false;
                    };
                    if escaped {
                        // Only the escapes `string_end` checked: serde_json decodes them.
                        match serde_json::from_str::<String>(raw) {
                            Ok(decoded) => text.push_str(&decoded),
                            Err(_) => return false,
                        }
                    } else {
                        text.push_str(&raw[1..raw.len() - 1]);
                    }
                }
                (CellKind::Text, close + 1)
            }
            Some(b't') if b[i..].starts_with(b"true") => (CellKind::Bool, i + 4),
            Some(b'f') if b[i..].starts_with(b"false") => (CellKind::Bool, i + 5),
            Some(b'n') if b[i..].starts_with(b"null") => (CellKind::Null, i + 4),
            Some(b'-' | b'0'..=b'9') => match number_end(b, i) {
                Some(end) => (CellKind::Number, end),
                None => return false,
            },
            _ => return false,
        };
        if let Some(column) = column {
            if matches!(kind, CellKind::Bool | CellKind::Number) {
                text.push_str(&line[i..end]);
            }
            if let Some(slot) = slots.get_mut(column) {
                if slot.seen {
                    problem.get_or_insert((column, TWICE));
                }
                *slot = Slot {
                    kind,
                    start,
                    end: text.len(),
                    seen: true,
                };
            }
        }

        i = skip_ws(b, end);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return skip_ws(b, i + 1) == b.len(),
            _ => return false,
        }
    }
}

/// The index of the first byte at or after `i` that is not JSON whitespace.
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\r' | b'\n') = b.get(i) {
        i += 1;
    }
    i
}

/// Where the string whose contents start at `i` closes (the index of its closing quote), and
/// whether it holds escapes. `None` for what this scanner leaves to serde_json: a control
/// character, a `\u` escape, an escape JSON does not have, or no closing quote.
fn string_end(b: &[u8], mut i: usize) -> Option<(usize, bool)> {
    let mut escaped = false;
    loop {
        match *b.get(i)? {
            b'"' => return Some((i, escaped)),
            b'\\' => {
                match *b.get(i + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    _ => return None,
                }
                escaped = true;
                i += 2;
            }
            0x00..=0x1f => return None,
            _ => i += 1,
        }
    }
}

/// The end of the JSON number starting at `i`:
/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`. What follows it is checked by the caller.
fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |b: &[u8], mut i: usize| {
        let from = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > from).then_some(i)
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    i = match b.get(i)? {
        b'0' => i + 1,
        b'1'..=b'9' => digits(b, i)?,
        _ => return None,
    };
    if b.get(i) == Some(&b'.') {
        i = digits(b, i + 1)?;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        i = digits(b, i)?;
    }
    Some(i)
}
