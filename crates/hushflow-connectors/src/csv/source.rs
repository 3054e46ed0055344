//! Streams a CSV file into batches, copying only the wanted columns.

use super::config::{CsvSourceConfig, delimiter_byte};
use crate::fields::{check_unique, list};
use ::csv::{ByteRecord, Reader, ReaderBuilder, Terminator, WriterBuilder};
use hushflow_core::{Batch, Cell, Error, RejectReason, Rejected, Schema, Source, SourceBatch};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A CSV file read record by record. Memory is bounded by the batch size: one record buffer is
/// reused for the whole file, and columns the pipeline does not want are never copied.
///
/// Line numbers are those of the line where a record starts (the header is line 1), so they stay
/// right when quoted fields span several lines.
#[derive(Debug)]
pub struct CsvSource {
    path: PathBuf,
    reader: Reader<File>,
    delimiter: u8,
    /// Fields per record, from the header.
    width: usize,
    schema: Arc<Schema>,
    /// For each schema field, its position in the record.
    take: Vec<usize>,
    record: ByteRecord,
    /// Text bytes of each column in the last batch, to size the next one.
    text_hint: Vec<usize>,
    /// A reused vector for one row's fields (see [`recycle`]).
    spare: Vec<&'static str>,
    done: bool,
}

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
            .buffer_capacity(64 * 1024)
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

        let (fields, take) = match wanted {
            None => {
                check_unique(path, &header, "the header")?;
                (header.clone(), (0..header.len()).collect())
            }
            Some(wanted) => {
                check_unique(path, wanted, "the list of fields to read")?;
                let mut take = Vec::with_capacity(wanted.len());
                for name in wanted {
                    let mut at = header.iter().enumerate().filter(|(_, h)| *h == name);
                    match (at.next(), at.next()) {
                        (Some((i, _)), None) => take.push(i),
                        (Some(_), Some(_)) => {
                            return Err(Error::Config(format!(
                                "{}: has more than one column named `{name}`; rename all but one",
                                path.display()
                            )));
                        }
                        (None, _) => {
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
            path: path.to_path_buf(),
            reader,
            delimiter,
            width: header.len(),
            text_hint: vec![0; fields.len()],
            schema: Arc::new(Schema::new(fields)),
            take,
            record: ByteRecord::new(),
            spare: Vec::new(),
            done: false,
        })
    }

    /// The record in `self.record` written back as one CSV line (without its line break), for
    /// the quarantine.
    fn raw_record(&self) -> Result<Vec<u8>, Error> {
        let mut writer = WriterBuilder::new()
            .delimiter(self.delimiter)
            .flexible(true)
            .terminator(Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        let encode_error = |e: io::Error| Error::io(&self.path, "copying a rejected record", e);
        writer
            .write_byte_record(&self.record)
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

impl Source for CsvSource {
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
            let more = self
                .reader
                .read_byte_record(&mut self.record)
                .map_err(|e| read_error(&self.path, e))?;
            if !more {
                self.done = true;
                break;
            }
            let line = self.record.position().map_or(0, |p| p.line());
            if self.record.len() != self.width {
                rejected.push(Rejected {
                    line,
                    reason: RejectReason::WrongFieldCount {
                        expected: self.width,
                        found: self.record.len(),
                    },
                    raw: self.raw_record()?,
                });
                continue;
            }

            // Check every copied field before copying any, so that a rejected record leaves
            // the columns as they were.
            let mut cells = recycle(std::mem::take(&mut self.spare));
            let mut bad = None;
            for (k, &i) in self.take.iter().enumerate() {
                match std::str::from_utf8(&self.record[i]) {
                    Ok(text) => cells.push(text),
                    Err(_) => {
                        bad = Some(k);
                        break;
                    }
                }
            }
            if bad.is_none() {
                for (column, text) in batch.columns_mut().iter_mut().zip(&cells) {
                    if text.is_empty() {
                        column.push_null();
                    } else {
                        column.push(Cell::text(text));
                    }
                }
                batch.push_line(line);
            }
            self.spare = recycle(cells);

            if let Some(k) = bad {
                rejected.push(Rejected {
                    line,
                    reason: RejectReason::InvalidUtf8 {
                        field: self.schema.fields().get(k).cloned(),
                    },
                    raw: self.raw_record()?,
                });
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
}

/// The header's names, with a UTF-8 byte order mark (as Excel writes) removed from the first.
fn header_names(path: &Path, header: &ByteRecord) -> Result<Vec<String>, Error> {
    header
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
        .collect()
}

/// Empties a vector of borrowed strings and hands back its allocation with a new lifetime, so
/// that one allocation serves every record although each record's borrows are short-lived.
/// (The standard library collects a mapped `Vec` iterator in place when the layouts match.)
fn recycle<'b>(mut cells: Vec<&str>) -> Vec<&'b str> {
    cells.clear();
    cells.into_iter().map(|_| "").collect()
}

/// The I/O error inside a csv error. The csv crate's other errors (UTF-8, field counts) cannot
/// arise from byte records read flexibly; they are reported without their text, which may
/// quote data.
fn csv_io_error(e: ::csv::Error) -> io::Error {
    match e.into_kind() {
        ::csv::ErrorKind::Io(e) => e,
        _ => io::Error::new(io::ErrorKind::InvalidData, "malformed CSV"),
    }
}

fn read_error(path: &Path, e: ::csv::Error) -> Error {
    Error::io(path, "reading", csv_io_error(e))
}
