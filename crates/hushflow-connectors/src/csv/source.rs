//! Streams a CSV file into batches, copying only the wanted columns: the source glue. The
//! reader thread reads blocks and cuts them at record boundaries ([`super::cutter`]); the
//! workers decode the chunks into batches ([`super::decode`]).

use super::config::{CsvSourceConfig, delimiter_byte};
use super::cutter::Cutter;
use super::decode::{ChunkDecoder, csv_io_error};
use crate::fields::{check_unique, list, name_looks_like_data};
use ::csv::{ByteRecord, ReaderBuilder};
use hushflow_core::{
    Batch, Error, RejectReason, Rejected, Schema, Source, SourceBatch, SourceChunk,
};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

/// A CSV file read in chunks of whole records. One thread reads and cuts (cheap: a scan for
/// quotes and line breaks); decoding the chunks, the costly part, runs wherever
/// [`SourceChunk::decode`] is called, so the engine's workers parse in parallel. Memory is
/// bounded by the batch size, and columns the pipeline does not want are never copied.
///
/// Line numbers are those of the line where a record starts (the header is line 1), so they stay
/// right when quoted fields span several lines.
#[derive(Debug)]
pub struct CsvSource {
    input: File,
    decoder: Arc<ChunkDecoder>,
    /// Bytes read and not yet handed out; they always begin at a record's start.
    pending: Vec<u8>,
    cutter: Cutter,
    /// The line the first record in `pending` starts on.
    next_line: u64,
    eof: bool,
}

/// How many bytes each read asks for.
const READ_BLOCK: usize = 256 * 1024;

/// The longest record read: past it, the file is taken to be broken (a quote never closed).
const MAX_RECORD_BYTES: usize = 64 << 20;

impl CsvSource {
    /// Opens `config.path` and reads its header. `wanted` lists the fields the pipeline needs, in
    /// the order the batches should have them; `None` takes every column of the header.
    ///
    /// Fails with [`Error::Config`] if a wanted field is not in the header (the message lists the
    /// header's columns), if the delimiter is not one ASCII character, or if the file has no
    /// header row; with [`Error::Io`] if the file cannot be read.
    pub fn open(config: &CsvSourceConfig, wanted: Option<&[String]>) -> Result<Self, Error> {
        let path = config.path.as_path();
        if !config.has_header {
            return Err(Error::Config(format!(
                "{}: CSV sources need a header row (has_header = false is not supported)",
                path.display()
            )));
        }
        let delimiter = delimiter_byte(path, config.delimiter)?;
        let file = File::open(path).map_err(|e| Error::io(path, "opening", e))?;
        let mut reader = ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(true)
            .flexible(true)
            .from_reader(file);
        let header = header_names(
            path,
            reader.byte_headers().map_err(|e| read_error(path, e))?,
        )?;
        if header.is_empty() {
            return Err(Error::Config(format!(
                "{}: is empty; CSV sources need a header row naming the fields",
                path.display()
            )));
        }
        // The records are read raw from here on: where the header ended.
        let after_header = reader.position().clone();
        let mut input = reader.into_inner();
        input
            .seek(SeekFrom::Start(after_header.byte()))
            .map_err(|e| Error::io(path, "reading", e))?;

        let (fields, take) = match wanted {
            None => {
                check_unique(path, &header, "the header")?;
                (header.clone(), (0..header.len()).collect())
            }
            Some(wanted) => {
                check_unique(path, wanted, "the list of fields to read")?;
                let mut take = Vec::with_capacity(wanted.len());
                // Each header name's first position and whether it repeats: one pass, not one
                // per wanted field.
                let mut at: std::collections::HashMap<&str, (usize, bool)> =
                    std::collections::HashMap::with_capacity(header.len());
                for (i, h) in header.iter().enumerate() {
                    at.entry(h.as_str())
                        .and_modify(|(_, twice)| *twice = true)
                        .or_insert((i, false));
                }
                for name in wanted {
                    match at.get(name.as_str()) {
                        Some(&(i, false)) => take.push(i),
                        Some((_, true)) => {
                            return Err(Error::Config(format!(
                                "{}: has more than one column named `{name}`; rename all but one",
                                path.display()
                            )));
                        }
                        None => {
                            return Err(Error::Config(format!(
                                "{}: has no column `{name}`; its columns are: {}",
                                path.display(),
                                list(&header)
                            )));
                        }
                    }
                }
                (wanted.to_vec(), take)
            }
        };

        Ok(CsvSource {
            input,
            decoder: Arc::new(ChunkDecoder {
                path: path.to_path_buf(),
                delimiter,
                width: header.len(),
                schema: Arc::new(Schema::new(fields)),
                take,
            }),
            pending: Vec::new(),
            cutter: Cutter::new(delimiter),
            next_line: after_header.line(),
            eof: false,
        })
    }

    /// The next run of at most `max_rows` whole records, and the line it starts on.
    fn next_raw(&mut self, max_rows: usize) -> Result<Option<RawChunk>, Error> {
        let max_rows = max_rows.max(1);
        loop {
            if self.cutter.scan(&self.pending, max_rows) {
                let (end, lines) = self.cutter.take_cut();
                // The next chunk's buffer, sized like this one so that reading into it does not
                // reallocate (and copy) as it grows.
                let mut rest = Vec::with_capacity(end + 2 * READ_BLOCK);
                rest.extend_from_slice(&self.pending[end..]);
                self.pending.truncate(end);
                let bytes = std::mem::replace(&mut self.pending, rest);
                return Ok(Some(self.chunk(bytes, lines, None)));
            }
            if self.eof {
                if self.pending.is_empty() {
                    return Ok(None);
                }
                self.cutter.at_end(&self.pending);
                let mut bytes = std::mem::take(&mut self.pending);
                // A quote still open at the end: the record it is in runs to the end of the
                // file. It is set aside whole, with the records before it decoded as usual.
                let unclosed = self.cutter.quoted.then(|| {
                    let (end, lines) = self.cutter.take_cut();
                    let tail = bytes.split_off(end);
                    (tail, lines)
                });
                self.cutter = Cutter::new(self.decoder.delimiter);
                let lines = unclosed.as_ref().map_or(0, |(_, lines)| *lines);
                return Ok(Some(self.chunk(
                    bytes,
                    lines,
                    unclosed.map(|(tail, _)| tail),
                )));
            }
            let in_record = self.pending.len() - self.cutter.cut;
            if in_record > MAX_RECORD_BYTES {
                let line = self.next_line + self.cutter.cut_lines;
                return Err(Error::io(
                    &self.decoder.path,
                    "reading",
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "line {line}: a record longer than {} MiB; is a quoted field never closed?",
                            MAX_RECORD_BYTES >> 20
                        ),
                    ),
                ));
            }
            // `read_to_end` reads into the spare capacity as it is, without zeroing it first.
            let read = (&mut self.input)
                .take(READ_BLOCK as u64)
                .read_to_end(&mut self.pending)
                .map_err(|e| Error::io(&self.decoder.path, "reading", e))?;
            self.eof = read == 0;
        }
    }

    /// Hands out `bytes`, which hold `lines` LFs (before `unclosed`, if any).
    fn chunk(&mut self, bytes: Vec<u8>, lines: u64, unclosed: Option<Vec<u8>>) -> RawChunk {
        let first_line = self.next_line;
        self.next_line += lines;
        let unclosed = unclosed.map(|raw| Rejected {
            line: self.next_line,
            reason: RejectReason::UnclosedQuote {
                lines: memchr::memchr_iter(b'\n', &raw).count() as u64 + 1,
            },
            raw,
        });
        RawChunk {
            bytes,
            first_line,
            unclosed,
        }
    }
}

/// Whole records, undecoded.
struct RawChunk {
    bytes: Vec<u8>,
    /// The line the first record starts on.
    first_line: u64,
    /// The last record, when a quote in it is never closed.
    unclosed: Option<Rejected>,
}

impl CsvSource {
    /// Decodes records read earlier and set aside (a quarantine being replayed) with this file's
    /// header and delimiter: each `(line, raw)` is one record's bytes as read, and keeps its
    /// line. Records that still do not decode come back rejected, as they would from the file.
    pub fn decode_records(&self, records: &[(u64, &[u8])]) -> Result<SourceBatch, Error> {
        let mut batch = Batch::new(Arc::clone(&self.decoder.schema));
        let mut rejected = Vec::new();
        let mut bytes = Vec::new();
        for &(line, raw) in records {
            // A row quarantined without its fields (of the wrong width) cannot be replayed: it
            // is rejected again by its line, not read as the blank line it would decode to.
            if raw.is_empty() {
                rejected.push(Rejected {
                    line,
                    reason: RejectReason::WrongFieldCount {
                        expected: self.decoder.width,
                        found: 0,
                    },
                    raw: Vec::new(),
                });
                continue;
            }
            bytes.clear();
            bytes.extend_from_slice(raw);
            bytes.push(b'\n');
            let one = self.decoder.decode(&bytes, line, 1)?;
            rejected.extend(one.rejected);
            for row in 0..one.batch.len() {
                batch.push_row(line, one.batch.columns().iter().map(|c| c.get(row)));
            }
        }
        Ok(SourceBatch { batch, rejected })
    }
}

impl Source for CsvSource {
    fn schema(&self) -> Arc<Schema> {
        Arc::clone(&self.decoder.schema)
    }

    fn next_batch(&mut self, max_rows: usize) -> Result<Option<SourceBatch>, Error> {
        loop {
            match self.next_chunk(max_rows)? {
                None => return Ok(None),
                Some(chunk) => {
                    let batch = chunk.decode()?;
                    // A chunk of empty lines only decodes to nothing: read on.
                    if !batch.batch.is_empty() || !batch.rejected.is_empty() {
                        return Ok(Some(batch));
                    }
                }
            }
        }
    }

    fn next_chunk(&mut self, max_rows: usize) -> Result<Option<SourceChunk>, Error> {
        let Some(raw) = self.next_raw(max_rows)? else {
            return Ok(None);
        };
        let decoder = Arc::clone(&self.decoder);
        Ok(Some(SourceChunk::Raw(Box::new(move || {
            let mut batch = decoder.decode(&raw.bytes, raw.first_line, max_rows)?;
            batch.rejected.extend(raw.unclosed);
            Ok(batch)
        }))))
    }
}

/// The header's names, with a UTF-8 byte order mark (as Excel writes) removed from the first.
/// The header's field names (a byte-order mark dropped), checked to be names: a header with a
/// name that looks like a value ([`name_looks_like_data`]) is most likely a file without a
/// header row, whose first record would be read as names. That is an error which shows none
/// of the names, so that the record never reaches a terminal, a log or the metadata store.
fn header_names(path: &Path, header: &ByteRecord) -> Result<Vec<String>, Error> {
    let names = header
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let name = match (i, name.strip_prefix(b"\xEF\xBB\xBF")) {
                (0, Some(rest)) => rest,
                _ => name,
            };
            match std::str::from_utf8(name) {
                Ok(name) => Ok(name.to_string()),
                Err(_) => Err(Error::Config(format!(
                    "{}: line 1: the name of column {} is not valid UTF-8; save the file as UTF-8",
                    path.display(),
                    i + 1
                ))),
            }
        })
        .collect::<Result<Vec<String>, Error>>()?;
    let mut odd = names
        .iter()
        .enumerate()
        .filter_map(|(i, name)| name_looks_like_data(name).map(|why| (i + 1, why)));
    if let Some((column, why)) = odd.next() {
        let more = match odd.count() {
            0 => String::new(),
            n => format!(" (and {n} more column(s) like it)"),
        };
        return Err(Error::Config(format!(
            "{}: seems to have no header row: the name of column {column} {why}{more}, so line 1 \
             looks like a record. Add a header row naming the fields as the pipeline's policy \
             does (CSV sources need one; has_header = false is not supported). The names are \
             not shown: they may be personal data",
            path.display()
        )));
    }
    Ok(names)
}

fn read_error(path: &Path, e: ::csv::Error) -> Error {
    Error::io(path, "reading", csv_io_error(e))
}

impl crate::RawDecoder for CsvSource {
    fn decode(&self, records: &[(u64, &[u8])]) -> Result<SourceBatch, Error> {
        self.decode_records(records)
    }
}

/// The header's field names, read without reading a record, for validation: checked as when
/// the source opens ([`header_names`]). `Ok(None)` when the file cannot be read (it may not
/// exist yet) or the delimiter is not one ASCII character; the run reports those.
pub(crate) fn read_header(path: &Path, delimiter: char) -> Result<Option<Vec<String>>, Error> {
    let Ok(delimiter) = delimiter_byte(path, delimiter) else {
        return Ok(None);
    };
    let Ok(file) = File::open(path) else {
        return Ok(None);
    };
    let mut reader = ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(true)
        .from_reader(file);
    let Ok(header) = reader.byte_headers() else {
        return Ok(None);
    };
    header_names(path, header).map(Some)
}
