//! Decodes chunks of whole CSV records into batches: a fast path that cuts plain records
//! straight out of the chunk, csv-core for the rest, the UTF-8 checks, and the rejected rows
//! (their unread fields emptied) for the quarantine.

use ::csv::{ByteRecord, Terminator, WriterBuilder};
use hushflow_core::{
    Batch, Cell, CellKind, Column, Error, RejectReason, Rejected, Schema, SourceBatch,
};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Decodes chunks of whole records into batches; shared by every worker.
#[derive(Debug)]
pub(super) struct ChunkDecoder {
    pub(super) path: PathBuf,
    pub(super) delimiter: u8,
    /// Fields per record, from the header.
    pub(super) width: usize,
    pub(super) schema: Arc<Schema>,
    /// For each schema field, its position in the record.
    pub(super) take: Vec<usize>,
}

impl ChunkDecoder {
    /// Decodes a chunk. Most records take a fast path (`split_plain`) that cuts fields straight
    /// out of the chunk's bytes without copying them; any record it is not sure of (a CR, a
    /// quote inside an unquoted field, a wrong field count, bytes that are not UTF-8) is read by
    /// csv-core, the csv crate's own parser, so the dialect, the rejections and their reasons
    /// stay exactly csv-core's. The fast path gives the same fields as csv-core wherever it
    /// answers (`the_fast_path_agrees_with_csv_core` in the tests).
    pub(super) fn decode(
        &self,
        bytes: &[u8],
        first_line: u64,
        rows: usize,
    ) -> Result<SourceBatch, Error> {
        self.decode_with(bytes, first_line, rows, true)
    }

    /// `fast: false` reads every record with csv-core: the reference the tests hold the fast
    /// path to.
    fn decode_with(
        &self,
        bytes: &[u8],
        first_line: u64,
        rows: usize,
        fast: bool,
    ) -> Result<SourceBatch, Error> {
        let mut slow = SlowPath {
            parser: csv_core::ReaderBuilder::new()
                .delimiter(self.delimiter)
                .build(),
            text: vec![0u8; 4096],
            ends: vec![0usize; self.width + 1],
        };
        // No column holds more than the chunk's bytes; a share of them is a fair first guess.
        let text_hint = vec![bytes.len() / self.width.max(1); self.take.len()];
        let mut batch = Batch::with_capacity(Arc::clone(&self.schema), rows, &text_hint);
        let mut rejected = Vec::new();
        let mut lines = LineCounter {
            byte: 0,
            line: first_line,
        };
        let mut fields: Vec<PlainField> = Vec::with_capacity(self.width + 1);
        let stops = Stops::new(self.delimiter);
        let mut pos = 0;

        loop {
            let start = pos;
            // csv-core strips a byte order mark from the first record it reads, so the first
            // record of a chunk always goes its way.
            let plain = if start == 0 || !fast {
                Plain::Unsure
            } else {
                split_plain(bytes, start, self.delimiter, &stops, &mut fields)
            };
            match plain {
                Plain::End => break,
                Plain::BlankLine => {
                    pos += 1;
                    continue;
                }
                Plain::Record { next } => {
                    // The record's raw bytes: when they are UTF-8, so is every field (fields
                    // are cut at ASCII bytes), and `get` cannot fail.
                    let raw = std::str::from_utf8(&bytes[start..next]).ok();
                    if let Some(raw) = raw
                        && fields.len() == self.width
                    {
                        let line = lines.line_at(bytes, start as u64);
                        for (column, &i) in batch.columns_mut().iter_mut().zip(&self.take) {
                            let f = fields[i];
                            push_plain(column, raw.get(f.start - start..f.end - start), f.quotes);
                        }
                        batch.push_line(line);
                        pos = next;
                        continue;
                    }
                }
                Plain::Unsure => {}
            }

            let Some(record) = slow.read(bytes, &mut pos) else {
                break;
            };
            let line = lines.line_at(bytes, start as u64);
            let width = record.ends.len();
            if width != self.width {
                // Which field is which is unknown in a row of the wrong width, so no field can be
                // told from one the policy drops: the quarantine keeps the line and the reason
                // only. The row could not be replayed anyway (its width stays wrong).
                rejected.push(Rejected {
                    line,
                    reason: RejectReason::WrongFieldCount {
                        expected: self.width,
                        found: width,
                    },
                    raw: Vec::new(),
                });
                continue;
            }

            // One UTF-8 check of all the record's bytes instead of one per field; a field whose
            // ends are not character boundaries is not UTF-8 on its own. A record that fails is
            // checked field by field, to name the field and to let bad bytes pass in a field the
            // pipeline does not read.
            let whole = std::str::from_utf8(record.text).ok();
            let field = |i: usize| -> Option<&str> {
                match whole {
                    Some(whole) => whole.get(record.range(i)),
                    None => std::str::from_utf8(&record.text[record.range(i)]).ok(),
                }
            };
            if let Some(k) = self.take.iter().position(|&i| field(i).is_none()) {
                rejected.push(Rejected {
                    line,
                    reason: RejectReason::InvalidUtf8 {
                        field: self.schema.fields().get(k).cloned(),
                    },
                    raw: self.raw_record(&self.without_dropped(&record))?,
                });
                continue;
            }
            for (column, &i) in batch.columns_mut().iter_mut().zip(&self.take) {
                push_text(column, field(i).unwrap_or_default());
            }
            batch.push_line(line);
        }
        Ok(SourceBatch { batch, rejected })
    }

    /// The record with every field the pipeline does not read emptied, for the quarantine:
    /// dropped fields never leave the source, and the row keeps its width, so a replay decodes
    /// it with the file's header.
    fn without_dropped(&self, record: &RecordView<'_>) -> ByteRecord {
        let mut read = vec![false; record.ends.len()];
        for &i in &self.take {
            if let Some(r) = read.get_mut(i) {
                *r = true;
            }
        }
        let mut kept = ByteRecord::new();
        for (i, read) in read.iter().enumerate() {
            match read {
                true => kept.push_field(record.text.get(record.range(i)).unwrap_or_default()),
                false => kept.push_field(b""),
            }
        }
        kept
    }

    /// A record written back as one CSV line (without its line break), for the quarantine.
    fn raw_record(&self, record: &ByteRecord) -> Result<Vec<u8>, Error> {
        let mut writer = WriterBuilder::new()
            .delimiter(self.delimiter)
            .flexible(true)
            .terminator(Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        let encode_error = |e: io::Error| Error::io(&self.path, "copying a rejected record", e);
        writer
            .write_byte_record(record)
            .map_err(|e| encode_error(csv_io_error(e)))?;
        let mut raw = writer
            .into_inner()
            .map_err(|e| encode_error(e.into_error()))?;
        if raw.last() == Some(&b'\n') {
            raw.pop();
        }
        Ok(raw)
    }
}

/// csv-core, driven straight over a chunk's bytes (`csv::Reader` would copy them through its
/// 8 KiB buffer first), with room for one record's unescaped fields.
struct SlowPath {
    parser: csv_core::Reader,
    text: Vec<u8>,
    ends: Vec<usize>,
}

impl SlowPath {
    /// Reads the record at `*pos` and moves `pos` past it; `None` at the end of the chunk.
    fn read<'a>(&'a mut self, bytes: &[u8], pos: &mut usize) -> Option<RecordView<'a>> {
        use csv_core::ReadRecordResult;
        let (mut text_len, mut fields) = (0, 0);
        // An empty input (the chunk's end) tells csv-core that no more bytes will come: it then
        // ends the last record, or says `End`.
        loop {
            let (result, read, wrote, ended) = self.parser.read_record(
                bytes.get(*pos..).unwrap_or_default(),
                &mut self.text[text_len..],
                &mut self.ends[fields..],
            );
            *pos += read;
            text_len += wrote;
            fields += ended;
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => self.text.resize(self.text.len() * 2, 0),
                ReadRecordResult::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                ReadRecordResult::Record => break,
                ReadRecordResult::End => return None,
            }
        }
        Some(RecordView {
            text: &self.text[..text_len],
            ends: &self.ends[..fields],
        })
    }
}

/// A field found by [`split_plain`]: its bytes in the chunk (inside the quotes, for a quoted
/// field), and whether it holds doubled quotes to undo.
#[derive(Debug, Clone, Copy)]
struct PlainField {
    start: usize,
    end: usize,
    quotes: bool,
}

/// What [`split_plain`] made of the bytes at a record's start.
#[derive(Debug, PartialEq, Eq)]
enum Plain {
    /// A record, its fields in the list; the next record starts at `next`.
    Record {
        next: usize,
    },
    /// An empty line, which csv-core skips: one LF.
    BlankLine,
    End,
    /// Something for csv-core to read.
    Unsure,
}

/// Finds the bytes that end an unquoted field (the delimiter, LF) or make the record one for
/// csv-core (a quote, CR), eight bytes at a time: SWAR, a word's bytes compared at once with
/// plain integer arithmetic (no unsafe, no target features).
struct Stops {
    /// Each of the four bytes repeated in every byte of a word.
    words: [u64; 4],
    table: [bool; 256],
}

impl Stops {
    fn new(delimiter: u8) -> Self {
        let bytes = [delimiter, b'"', b'\n', b'\r'];
        let mut table = [false; 256];
        for b in bytes {
            table[usize::from(b)] = true;
        }
        Stops {
            words: bytes.map(|b| u64::from_le_bytes([b; 8])),
            table,
        }
    }

    /// The first stop at or after `from`, or `bytes.len()`.
    fn find(&self, bytes: &[u8], from: usize) -> usize {
        const LOW: u64 = u64::from_le_bytes([0x01; 8]);
        const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
        let mut i = from;
        while let Some(word) = bytes.get(i..).and_then(|rest| rest.first_chunk::<8>()) {
            let word = u64::from_le_bytes(*word);
            let mut found = 0;
            for stop in self.words {
                // The high bit of each zero byte of `x` (a byte equal to the stop), exact for
                // the lowest one, which is all that is read.
                let x = word ^ stop;
                found |= x.wrapping_sub(LOW) & !x & HIGH;
            }
            if found != 0 {
                return i + (found.trailing_zeros() / 8) as usize;
            }
            i += 8;
        }
        let rest = bytes.get(i..).unwrap_or_default();
        i + rest
            .iter()
            .position(|&b| self.table[usize::from(b)])
            .unwrap_or(rest.len())
    }
}

/// Splits the record at `start` the way csv-core would, for records made only of unquoted
/// fields without quotes or CRs and of quoted fields closed right before a delimiter, an LF or
/// the end of the chunk. Anything else is `Unsure`. The point is speed: a word-wise scan for
/// unquoted fields, memchr inside quoted ones, and no copy of the fields.
fn split_plain(
    bytes: &[u8],
    start: usize,
    delimiter: u8,
    stops: &Stops,
    fields: &mut Vec<PlainField>,
) -> Plain {
    fields.clear();
    match bytes.get(start) {
        None => return Plain::End,
        Some(b'\n') => return Plain::BlankLine,
        Some(b'\r') => return Plain::Unsure,
        Some(_) => {}
    }
    let mut i = start;
    loop {
        let field_end;
        if bytes.get(i) == Some(&b'"') {
            let content = i + 1;
            let mut j = content;
            let mut quotes = false;
            loop {
                let Some(q) = bytes.get(j..).and_then(|r| memchr::memchr(b'"', r)) else {
                    return Plain::Unsure;
                };
                let q = j + q;
                if bytes.get(q + 1) == Some(&b'"') {
                    quotes = true;
                    j = q + 2;
                } else {
                    fields.push(PlainField {
                        start: content,
                        end: q,
                        quotes,
                    });
                    field_end = q + 1;
                    break;
                }
            }
        } else {
            let j = stops.find(bytes, i);
            fields.push(PlainField {
                start: i,
                end: j,
                quotes: false,
            });
            field_end = j;
        }
        match bytes.get(field_end) {
            None => return Plain::Record { next: field_end },
            Some(b'\n') => {
                return Plain::Record {
                    next: field_end + 1,
                };
            }
            Some(&b) if b == delimiter => i = field_end + 1,
            Some(_) => return Plain::Unsure,
        }
    }
}

/// Pushes a field from [`split_plain`]: empty is a missing value, `""` inside a quoted field
/// is one quote.
fn push_plain(column: &mut Column, text: Option<&str>, quotes: bool) {
    let text = text.unwrap_or_default();
    if text.is_empty() {
        column.push_null();
    } else if !quotes {
        column.push(Cell::text(text));
    } else {
        column.push_with(CellKind::Text, |out| {
            let mut rest = text;
            while let Some(at) = rest.find("\"\"") {
                out.push_str(&rest[..=at]);
                rest = &rest[at + 2..];
            }
            out.push_str(rest);
        });
    }
}

/// One record as csv-core left it: the fields' unescaped bytes end to end, and each one's end.
struct RecordView<'a> {
    text: &'a [u8],
    ends: &'a [usize],
}

impl RecordView<'_> {
    /// Field `i`'s bytes in `text`; `i` is below the field count.
    fn range(&self, i: usize) -> std::ops::Range<usize> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        start..self.ends[i]
    }
}

/// The line a record starts on, from LFs counted in the chunk up to it. (csv's own line numbers
/// run one short after a CRLF and after some quoted line breaks.)
struct LineCounter {
    byte: usize,
    line: u64,
}

impl LineCounter {
    /// `start` is where csv says the record starts; that may be on the line break ending the
    /// record before (CRLF), which is no part of this record.
    fn line_at(&mut self, bytes: &[u8], start: u64) -> u64 {
        let mut start = usize::try_from(start).map_or(bytes.len(), |s| s.min(bytes.len()));
        while matches!(bytes.get(start), Some(b'\n' | b'\r')) {
            start += 1;
        }
        if let Some(between) = bytes.get(self.byte..start) {
            self.line += memchr::memchr_iter(b'\n', between).count() as u64;
            self.byte = start;
        }
        self.line
    }
}

/// An empty CSV field is a missing value.
fn push_text(column: &mut Column, text: &str) {
    if text.is_empty() {
        column.push_null();
    } else {
        column.push(Cell::text(text));
    }
}

/// The I/O error inside a csv error. The csv crate's other errors (UTF-8, field counts) cannot
/// arise from byte records read flexibly; they are reported without their text, which may
/// quote data.
pub(super) fn csv_io_error(e: ::csv::Error) -> io::Error {
    match e.into_kind() {
        ::csv::ErrorKind::Io(e) => e,
        _ => io::Error::new(io::ErrorKind::InvalidData, "malformed CSV"),
    }
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;
    use proptest::prelude::*;

    fn decoder(width: usize, take: Vec<usize>) -> ChunkDecoder {
        ChunkDecoder {
            path: PathBuf::from("test.csv"),
            delimiter: b',',
            width,
            schema: Arc::new(Schema::new(
                (0..take.len()).map(|i| format!("f{i}")).collect(),
            )),
            take,
        }
    }

    fn agree(bytes: &[u8], d: &ChunkDecoder) {
        let fast = d.decode_with(bytes, 2, 64, true).unwrap();
        let slow = d.decode_with(bytes, 2, 64, false).unwrap();
        assert_eq!(
            fast.batch,
            slow.batch,
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
        assert_eq!(
            fast.rejected,
            slow.rejected,
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }

    #[test]
    fn stops_are_found_at_every_offset() {
        let stops = Stops::new(b';');
        for len in 0..40 {
            for at in 0..len {
                for stop in [b';', b'"', b'\n', b'\r'] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = stop;
                    // A byte just below or above a stop is not one.
                    if at + 1 < len {
                        bytes[at + 1] = stop.wrapping_add(1);
                    }
                    assert_eq!(stops.find(&bytes, 0), at, "{bytes:?}");
                    assert_eq!(stops.find(&bytes, at.min(3)), at.max(at.min(3)));
                }
            }
            assert_eq!(stops.find(&vec![0x80; len], 0), len);
            assert_eq!(stops.find(&vec![b';' - 1; len], 0), len);
        }
    }

    #[test]
    fn the_fast_path_agrees_with_csv_core_on_tricky_records() {
        let d = decoder(3, vec![2, 0]);
        for text in [
            "a,b,c\nd,e,f\n",
            "x,y,z\n\"a,1\",\"b\"\"q\"\"\",\"\"\n\"\"\"\",,\n",
            "x,y,z\na,b\"c,d\n\"a\"b,c,d\n\"a\" ,b,c\n",
            "x,y,z\r\na,b,c\r\nd,e,f\n\n\na,b,c",
            "x,y,z\na,b,c\rd,e,f\r\n\"multi\nline\r\n\",b,c\n",
            "x,y,z\na,b\nc,d,e,f\n\na,b,\n",
            "x,y,z\n\u{feff}a,b,c\n\"unclosed,b,c\n",
            "x,y,z\nh\u{e9},\u{4f0a},c\n",
        ] {
            agree(text.as_bytes(), &d);
        }
        // Bytes that are not UTF-8, in a wanted field and in one that is not read.
        agree(b"x,y,z\na,\xff,c\n\xff,b,c\na,b,\"\xc3\"\n", &d);
    }

    proptest! {
        #[test]
        fn the_fast_path_agrees_with_csv_core(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("a"), Just("bc"), Just("\u{e9}"), Just(","), Just(","), Just("\""),
                    Just("\"\""), Just("\n"), Just("\r"), Just(" "), Just("\u{feff}"),
                ],
                0..60,
            ),
            invalid in proptest::option::of(0usize..60),
        ) {
            let mut bytes = b"h1,h2,h3\n".to_vec();
            for (i, p) in parts.iter().enumerate() {
                if invalid == Some(i) {
                    bytes.push(0xff);
                }
                bytes.extend_from_slice(p.as_bytes());
            }
            agree(&bytes, &decoder(3, vec![0, 2]));
            agree(&bytes, &decoder(2, vec![1, 0]));
        }
    }
}
