//! Streams a JSON lines file into batches, copying only the wanted keys.

use super::config::JsonlSourceConfig;
use super::flat;
use crate::fields::check_unique;
use hushflow_core::{
    Batch, Cell, CellKind, Error, RejectReason, Rejected, Schema, Source, SourceBatch, SourceChunk,
};
use rustc_hash::FxHashMap;
use serde::de::{self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

/// The longest line a JSON lines source accepts, in bytes (without the line break). A longer
/// line is rejected as [`RejectReason::TooLong`] and skipped without being held in memory.
pub const MAX_LINE_BYTES: usize = 8 << 20;

/// A JSON lines file read line by line with one reused buffer. Memory is bounded by the batch
/// size and [`MAX_LINE_BYTES`]; keys the pipeline does not want are skipped, not copied.
///
/// Values become cells by kind: a string is text, a number keeps its JSON text, `true` and
/// `false` are booleans, `null` and absent keys are null, and an object or array is kept as its
/// compact JSON text.
///
/// Lines that are not valid UTF-8, not valid JSON or not an object are rejected with their line
/// number, and so are objects with a wanted key twice and, once [`JsonlSource::with_key`] names
/// it, a record key that is an object or an array (the reason names the field). A rejected
/// line's bytes go into [`Rejected::raw`], except for a line too long to hold, whose `raw` is
/// empty.
#[derive(Debug)]
pub struct JsonlSource {
    path: PathBuf,
    reader: BufReader<File>,
    max_line: usize,
    /// The number of the line last read, 1-based.
    line: u64,
    buf: Vec<u8>,
    schema: Arc<Schema>,
    /// Column of each wanted key; shared with the chunks' decoders.
    index: Arc<FieldIndex>,
    /// The current line's value for each column: where its text is in `text`.
    slots: Vec<Slot>,
    text: String,
    /// Text bytes of each column in the last batch, to size the next one.
    text_hint: Vec<usize>,
    /// Bytes of the last chunk, to size the next one's buffer without regrowing it.
    chunk_hint: usize,
    /// The column of the record key, whose value must be a scalar ([`JsonlSource::with_key`]).
    key: Option<usize>,
    done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Slot {
    pub(super) kind: CellKind,
    pub(super) start: usize,
    pub(super) end: usize,
    /// Whether the line had the key: a second one rejects the record.
    pub(super) seen: bool,
}

pub(super) const ABSENT: Slot = Slot {
    kind: CellKind::Null,
    start: 0,
    end: 0,
    seen: false,
};

/// A record whose object has a wanted key twice: which value is meant is unknown.
pub(super) const TWICE: &str = "appears more than once in the object";
/// A record key that is an object or an array: it identifies no record.
const NOT_SCALAR: &str =
    "is an object or an array; a record key must be a string, a number or a boolean";

/// What reading one line found.
enum Line {
    Eof,
    /// The line is in `buf`, without its line break.
    Read,
    TooLong,
}

impl JsonlSource {
    /// Opens `config.path`. `wanted` lists the fields the pipeline needs, in the order the
    /// batches should have them; a wanted key absent from a line is null.
    ///
    /// With `wanted = None` the schema is the keys of the file's first JSON object (the first
    /// line that parses as one), in the order they appear there; keys that only later objects
    /// have are not read.
    pub fn open(config: &JsonlSourceConfig, wanted: Option<&[String]>) -> Result<Self, Error> {
        Self::open_with_limit(config, wanted, MAX_LINE_BYTES)
    }

    pub(crate) fn open_with_limit(
        config: &JsonlSourceConfig,
        wanted: Option<&[String]>,
        max_line: usize,
    ) -> Result<Self, Error> {
        let path = config.path.as_path();
        let file = File::open(path).map_err(|e| Error::io(path, "opening", e))?;
        let mut source = JsonlSource {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(64 * 1024, file),
            max_line,
            line: 0,
            buf: Vec::new(),
            schema: Arc::new(Schema::new(Vec::new())),
            index: Arc::default(),
            slots: Vec::new(),
            text: String::new(),
            text_hint: Vec::new(),
            chunk_hint: 0,
            key: None,
            done: false,
        };
        let fields = match wanted {
            Some(wanted) => {
                check_unique(path, wanted, "the list of fields to read")?;
                wanted.to_vec()
            }
            None => {
                let keys = source.first_object_keys()?;
                source
                    .reader
                    .seek(SeekFrom::Start(0))
                    .map_err(|e| Error::io(path, "reading", e))?;
                source.line = 0;
                keys
            }
        };
        source.index = Arc::new(
            fields
                .iter()
                .enumerate()
                .map(|(i, name)| (name.clone(), i))
                .collect(),
        );
        source.slots = vec![ABSENT; fields.len()];
        source.text_hint = vec![0; fields.len()];
        source.schema = Arc::new(Schema::new(fields));
        Ok(source)
    }

    /// Rejects records whose value of the field `key` (the pipeline's record key) is an object
    /// or an array. Without it (or when `key` is not read), any value is read as it is.
    pub fn with_key(mut self, key: &str) -> Self {
        self.key = self.index.get(key).copied();
        self
    }

    /// The keys of the first line that is a JSON object, in order, or none if no line is.
    fn first_object_keys(&mut self) -> Result<Vec<String>, Error> {
        loop {
            match self.read_line()? {
                Line::Eof => return Ok(Vec::new()),
                Line::TooLong => continue,
                Line::Read => {}
            }
            let Ok(line) = std::str::from_utf8(&self.buf) else {
                continue;
            };
            if first_byte(line) != Some(b'{') {
                continue;
            }
            let mut keys = Vec::new();
            let mut de = serde_json::Deserializer::from_str(line);
            let parsed = (&mut de)
                .deserialize_map(KeysVisitor(&mut keys))
                .and_then(|()| de.end());
            if parsed.is_ok() {
                return Ok(keys);
            }
        }
    }

    /// Reads the next line into `buf`, holding at most `max_line` bytes of it (plus its line
    /// break, `\n` or `\r\n`, which is dropped).
    fn read_line(&mut self) -> Result<Line, Error> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let line = self.read_line_into(&mut buf);
        self.buf = buf;
        line
    }

    /// Appends the next line to `out` as [`JsonlSource::read_line`] reads it into `buf`: on
    /// `Line::Read` the line is what `out` holds past its length before the call; otherwise
    /// `out` is as it was. Chunks are read this way, straight into their bytes, without a copy
    /// through `buf`.
    fn read_line_into(&mut self, out: &mut Vec<u8>) -> Result<Line, Error> {
        let start = out.len();
        let limit = self.max_line as u64 + 2;
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', out)
            .map_err(|e| Error::io(&self.path, "reading", e))?;
        if n == 0 {
            return Ok(Line::Eof);
        }
        self.line += 1;
        if out.last() == Some(&b'\n') {
            out.pop();
            if out.last() == Some(&b'\r') {
                out.pop();
            }
        } else if n as u64 == limit {
            // No line break within the limit: skip the rest of the line unread.
            out.truncate(start);
            self.reader
                .skip_until(b'\n')
                .map_err(|e| Error::io(&self.path, "reading", e))?;
            return Ok(Line::TooLong);
        }
        if out.len() - start > self.max_line {
            out.truncate(start);
            return Ok(Line::TooLong);
        }
        if self.line == 1 && out[start..].starts_with(b"\xEF\xBB\xBF") {
            out.drain(start..start + 3);
        }
        Ok(Line::Read)
    }
}

impl Source for JsonlSource {
    fn schema(&self) -> Arc<Schema> {
        Arc::clone(&self.schema)
    }

    fn next_batch(&mut self, max_rows: usize) -> Result<Option<SourceBatch>, Error> {
        if self.done {
            return Ok(None);
        }
        let max_rows = max_rows.max(1);
        let mut batch = Batch::with_capacity(Arc::clone(&self.schema), max_rows, &self.text_hint);
        let mut rejected = Vec::new();

        while batch.len() < max_rows {
            match self.read_line()? {
                Line::Eof => {
                    self.done = true;
                    break;
                }
                Line::TooLong => {
                    rejected.push(Rejected {
                        line: self.line,
                        reason: RejectReason::TooLong {
                            limit: self.max_line,
                        },
                        raw: Vec::new(),
                    });
                    continue;
                }
                Line::Read => {}
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let row = Row {
                index: &self.index,
                fields: self.schema.fields(),
                key: self.key,
            };
            // One UTF-8 check per line: it also says whether the raw line may be kept.
            let (utf8, parsed) = match std::str::from_utf8(&self.buf) {
                Ok(line) => (true, parse_row(line, row, &mut self.slots, &mut self.text)),
                Err(_) => (
                    false,
                    parse_non_utf8(&self.buf, row, &mut self.slots, &mut self.text),
                ),
            };
            match parsed {
                Ok(()) => {
                    for (column, slot) in batch.columns_mut().iter_mut().zip(&self.slots) {
                        column.push(Cell {
                            kind: slot.kind,
                            text: self.text.get(slot.start..slot.end).unwrap_or_default(),
                        });
                    }
                    batch.push_line(self.line);
                }
                Err(reason) => rejected.push(Rejected {
                    line: self.line,
                    reason,
                    // A line that is not UTF-8 may hold its bad bytes in a dropped field: none
                    // of it is kept (dropped fields never leave the source).
                    raw: if utf8 { self.buf.clone() } else { Vec::new() },
                }),
            }
        }

        if batch.is_empty() && rejected.is_empty() {
            return Ok(None);
        }
        for (hint, column) in self.text_hint.iter_mut().zip(batch.columns()) {
            *hint = column.text_len();
        }
        Ok(Some(SourceBatch { batch, rejected }))
    }

    /// Reads up to `max_rows` non-blank lines and leaves their parsing, the costly part, to
    /// whichever thread decodes the chunk: the engine's workers parse in parallel while its
    /// reader thread only reads lines. The rows and rejections are those of
    /// [`Source::next_batch`], in the same order (batches may be cut elsewhere: here a line
    /// that will be rejected counts towards `max_rows`).
    fn next_chunk(&mut self, max_rows: usize) -> Result<Option<SourceChunk>, Error> {
        if self.done {
            return Ok(None);
        }
        let max_rows = max_rows.max(1);
        let mut chunk = Lines {
            bytes: Vec::with_capacity(self.chunk_hint),
            lines: Vec::with_capacity(max_rows),
        };
        while chunk.lines.len() < max_rows {
            let start = chunk.bytes.len();
            match self.read_line_into(&mut chunk.bytes)? {
                Line::Eof => {
                    self.done = true;
                    break;
                }
                Line::TooLong => chunk.lines.push((self.line, None)),
                Line::Read => {
                    let line = start..chunk.bytes.len();
                    if chunk.bytes[line.clone()]
                        .iter()
                        .all(u8::is_ascii_whitespace)
                    {
                        chunk.bytes.truncate(start);
                        continue;
                    }
                    chunk.lines.push((self.line, Some(line)));
                }
            }
        }
        if chunk.lines.is_empty() {
            return Ok(None);
        }
        // A little over the last chunk's size: the next one is likely alike.
        self.chunk_hint = chunk.bytes.len() + chunk.bytes.len() / 8;
        let schema = Arc::clone(&self.schema);
        let index = Arc::clone(&self.index);
        let (max_line, key) = (self.max_line, self.key);
        Ok(Some(SourceChunk::Raw(Box::new(move || {
            Ok(chunk.decode(schema, &index, key, max_line))
        }))))
    }
}

/// Lines read and not yet parsed: their bytes end to end, and each one's number and range
/// (`None` for a line too long to hold).
#[derive(Default)]
struct Lines {
    bytes: Vec<u8>,
    lines: Vec<(u64, Option<std::ops::Range<usize>>)>,
}

impl Lines {
    fn decode(
        self,
        schema: Arc<Schema>,
        index: &FieldIndex,
        key: Option<usize>,
        max_line: usize,
    ) -> SourceBatch {
        let width = schema.len();
        let hint = vec![self.bytes.len() / width.max(1); width];
        let mut batch = Batch::with_capacity(Arc::clone(&schema), self.lines.len(), &hint);
        let mut rejected = Vec::new();
        let mut slots = vec![ABSENT; width];
        let mut text = String::new();
        for (line, range) in self.lines {
            let Some(bytes) = range.and_then(|r| self.bytes.get(r)) else {
                rejected.push(Rejected {
                    line,
                    reason: RejectReason::TooLong { limit: max_line },
                    raw: Vec::new(),
                });
                continue;
            };
            let row = Row {
                index,
                fields: schema.fields(),
                key,
            };
            let (utf8, parsed) = match std::str::from_utf8(bytes) {
                Ok(line) => (true, parse_row(line, row, &mut slots, &mut text)),
                Err(_) => (false, parse_non_utf8(bytes, row, &mut slots, &mut text)),
            };
            match parsed {
                Ok(()) => {
                    for (column, slot) in batch.columns_mut().iter_mut().zip(&slots) {
                        column.push(Cell {
                            kind: slot.kind,
                            text: text.get(slot.start..slot.end).unwrap_or_default(),
                        });
                    }
                    batch.push_line(line);
                }
                Err(reason) => rejected.push(Rejected {
                    line,
                    reason,
                    // As in `next_batch`: nothing of a line that is not UTF-8 is kept.
                    raw: if utf8 { bytes.to_vec() } else { Vec::new() },
                }),
            }
        }
        SourceBatch { batch, rejected }
    }
}

/// A line that is not UTF-8. The bad bytes may sit in a field the pipeline drops, which is
/// never read: the line is parsed with them replaced (U+FFFD), and only a wanted value holding a
/// replacement character rejects the record, naming its field.
fn parse_non_utf8(
    bytes: &[u8],
    row: Row<'_>,
    slots: &mut [Slot],
    text: &mut String,
) -> Result<(), RejectReason> {
    let fields = row.fields;
    let lossy = String::from_utf8_lossy(bytes);
    parse_row(&lossy, row, slots, text).map_err(|_| RejectReason::InvalidUtf8 { field: None })?;
    for (slot, name) in slots.iter().zip(fields) {
        if text
            .get(slot.start..slot.end)
            .is_some_and(|t| t.contains('\u{FFFD}'))
        {
            return Err(RejectReason::InvalidUtf8 {
                field: Some(name.clone()),
            });
        }
    }
    Ok(())
}

/// The first byte that is not JSON whitespace.
fn first_byte(line: &str) -> Option<u8> {
    line.bytes()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// A wanted key's column, by name.
pub(super) type FieldIndex = FxHashMap<String, usize>;

/// What a line is parsed against: the wanted keys' columns, their names, the record key's.
#[derive(Clone, Copy)]
pub(super) struct Row<'a> {
    pub(super) index: &'a FieldIndex,
    pub(super) fields: &'a [String],
    pub(super) key: Option<usize>,
}

/// Parses one line into `slots` and `text`. Reasons name a column and a fixed description,
/// never the input.
fn parse_row(
    line: &str,
    row: Row<'_>,
    slots: &mut [Slot],
    text: &mut String,
) -> Result<(), RejectReason> {
    parse_row_with(line, row, slots, text, true)
}

/// [`parse_row`], with the flat-object fast path ([`flat`]) tried first when `fast` is set:
/// the tests parse each line both ways and hold the results equal.
pub(super) fn parse_row_with(
    line: &str,
    row: Row<'_>,
    slots: &mut [Slot],
    text: &mut String,
    fast: bool,
) -> Result<(), RejectReason> {
    slots.fill(ABSENT);
    text.clear();
    if let Some(b) = first_byte(line)
        && b != b'{'
    {
        let column = line.len() - line.trim_start_matches([' ', '\t', '\r', '\n']).len() + 1;
        return Err(RejectReason::BrokenJson {
            column,
            detail: "not a JSON object".into(),
        });
    }
    let mut problem = None;
    if !(fast && flat::parse_flat(line, row, slots, text, &mut problem)) {
        slots.fill(ABSENT);
        text.clear();
        problem = None;
        let mut de = serde_json::Deserializer::from_str(line);
        (&mut de)
            .deserialize_map(RowVisitor {
                row,
                slots,
                text,
                problem: &mut problem,
            })
            .and_then(|()| de.end())
            .map_err(|e| RejectReason::BrokenJson {
                column: e.column(),
                detail: detail_of(&e).into(),
            })?;
    }
    match problem {
        Some((column, detail)) => Err(RejectReason::InvalidField {
            field: row.fields.get(column).cloned().unwrap_or_default(),
            detail: detail.into(),
        }),
        None => Ok(()),
    }
}

/// Our own error for a string escape that does not decode.
const BAD_ESCAPE: &str = "invalid string escape";

/// What serde_json says about a line, as one of a fixed set of texts: serde_json's own messages
/// can quote the input (`invalid type: string "…"`), so only messages known to be fixed are kept.
fn detail_of(e: &serde_json::Error) -> &'static str {
    const FIXED: &[&str] = &[
        "EOF while parsing a list",
        "EOF while parsing an object",
        "EOF while parsing a string",
        "EOF while parsing a value",
        "expected `:`",
        "expected `,` or `]`",
        "expected `,` or `}`",
        "expected ident",
        "expected value",
        "expected `\"`",
        "invalid escape",
        "invalid number",
        "number out of range",
        "invalid unicode code point",
        "control character (\\u0000-\\u001F) found while parsing a string",
        "key must be a string",
        "lone leading surrogate in hex escape",
        "trailing comma",
        "trailing characters",
        "unexpected end of hex escape",
        "recursion limit exceeded",
        BAD_ESCAPE,
    ];
    let message = e.to_string();
    let head = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(head, _)| head);
    if let Some(fixed) = FIXED.iter().find(|f| **f == head) {
        return fixed;
    }
    match e.classify() {
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Eof => "unexpected end of line",
        serde_json::error::Category::Data => "unexpected value",
        serde_json::error::Category::Io => "read error",
    }
}

/// Collects the keys of an object in order, once each.
struct KeysVisitor<'k>(&'k mut Vec<String>);

impl<'de> Visitor<'de> for KeysVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            map.next_value::<IgnoredAny>()?;
            if !self.0.contains(&key) {
                self.0.push(key);
            }
        }
        Ok(())
    }
}

/// Copies a line's wanted values into the slots, skipping the others. The first wanted key
/// seen twice, or a record key that is not a scalar, is kept in `problem` (column, reason).
struct RowVisitor<'a> {
    row: Row<'a>,
    slots: &'a mut [Slot],
    text: &'a mut String,
    problem: &'a mut Option<(usize, &'static str)>,
}

impl<'de> Visitor<'de> for RowVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(column) = map.next_key_seed(KeySeed(self.row.index))? {
            let Some(column) = column else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let raw: &'de RawValue = map.next_value()?;
            let raw = raw.get();
            let start = self.text.len();
            let kind = match raw.as_bytes().first() {
                Some(b'"') => {
                    push_string(raw, self.text).map_err(|_| de::Error::custom(BAD_ESCAPE))?;
                    CellKind::Text
                }
                Some(b't' | b'f') => {
                    self.text.push_str(raw);
                    CellKind::Bool
                }
                Some(b'n') | None => CellKind::Null,
                Some(b'{' | b'[') => {
                    push_compact(raw, self.text);
                    CellKind::Json
                }
                Some(_) => {
                    self.text.push_str(raw);
                    CellKind::Number
                }
            };
            if let Some(slot) = self.slots.get_mut(column) {
                if slot.seen {
                    self.problem.get_or_insert((column, TWICE));
                }
                if kind == CellKind::Json && self.row.key == Some(column) {
                    self.problem.get_or_insert((column, NOT_SCALAR));
                }
                *slot = Slot {
                    kind,
                    start,
                    end: self.text.len(),
                    seen: true,
                };
            }
        }
        Ok(())
    }
}

/// Looks a key up among the wanted fields without allocating.
struct KeySeed<'a>(&'a FieldIndex);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.get(key).copied())
    }
}

/// Appends the text of a JSON string literal (`raw` includes its quotes), decoding escapes.
fn push_string(raw: &str, text: &mut String) -> Result<(), serde_json::Error> {
    match raw.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) if !inner.contains('\\') => text.push_str(inner),
        _ => text.push_str(&serde_json::from_str::<String>(raw)?),
    }
    Ok(())
}

/// Appends `raw`, valid JSON, without the whitespace between tokens.
fn push_compact(raw: &str, text: &mut String) {
    let mut in_string = false;
    let mut escaped = false;
    let mut run_start = 0;
    for (i, b) in raw.bytes().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
            text.push_str(&raw[run_start..i]);
            run_start = i + 1;
        }
    }
    text.push_str(&raw[run_start..]);
}
