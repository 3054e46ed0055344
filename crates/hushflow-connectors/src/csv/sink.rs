//! Writes batches to a CSV file, atomically.

use super::config::{CsvSinkConfig, delimiter_byte};
use crate::fields::{Output, not_open};
use crate::file::PendingFile;
use hushflow_core::{Batch, Encode, Error, Schema, Sink};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A CSV file with a header row of the output fields. Rows go to a private temporary file beside
/// the target, which [`Sink::finish`] renames over the target; a sink dropped before that
/// removes its temporary file and leaves the target as it was.
#[derive(Debug)]
pub struct CsvSink {
    path: PathBuf,
    delimiter: u8,
    fields: Option<Vec<String>>,
    open: Option<OpenCsv>,
}

#[derive(Debug)]
struct OpenCsv {
    // Dropped in this order: the file is closed, then removed.
    file: File,
    pending: PendingFile,
    encoder: Arc<CsvEncoder>,
    /// Reused for `write_batch`.
    buffer: Vec<u8>,
}

/// Encodes rows as the csv crate's writer does with its defaults (which this sink used before it
/// encoded rows itself, and which the tests compare it with): a field is quoted when it holds
/// the delimiter, a quote, CR or LF, a quote inside is doubled, a record that would be empty is
/// written `""`, and each record ends with LF. Shared with the engine's workers (`Sink::encoder`).
#[derive(Debug)]
pub(crate) struct CsvEncoder {
    path: PathBuf,
    delimiter: u8,
    output: Output,
    /// For each byte value, whether a field holding it is quoted.
    quoted: [bool; 256],
}

impl CsvEncoder {
    fn new(path: &Path, delimiter: u8, output: Output) -> Self {
        let mut quoted = [false; 256];
        for b in [delimiter, b'"', b'\r', b'\n'] {
            quoted[usize::from(b)] = true;
        }
        CsvEncoder {
            path: path.to_path_buf(),
            delimiter,
            output,
            quoted,
        }
    }

    fn field(&self, field: &[u8], out: &mut Vec<u8>) {
        if !field.iter().any(|&b| self.quoted[usize::from(b)]) {
            out.extend_from_slice(field);
            return;
        }
        out.push(b'"');
        for (i, piece) in field.split(|&b| b == b'"').enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\"\"");
            }
            out.extend_from_slice(piece);
        }
        out.push(b'"');
    }

    /// One record of `fields`, its line break included.
    fn record<'f>(&self, fields: impl IntoIterator<Item = &'f [u8]>, out: &mut Vec<u8>) {
        let start = out.len();
        for (i, field) in fields.into_iter().enumerate() {
            if i > 0 {
                out.push(self.delimiter);
            }
            self.field(field, out);
        }
        // A record of one empty field (or of none) would be an empty line, which readers skip.
        if out.len() == start {
            out.extend_from_slice(b"\"\"");
        }
        out.push(b'\n');
    }
}

impl Encode for CsvEncoder {
    fn encode(&self, batch: &Batch, out: &mut Vec<u8>) -> Result<(), Error> {
        let columns = self.output.columns(&self.path, batch)?;
        for row in 0..batch.len() {
            // A null is an empty field.
            self.record(columns.iter().map(|c| c.get(row).text.as_bytes()), out);
        }
        Ok(())
    }
}

impl CsvSink {
    /// Checks the configuration; nothing is created before [`Sink::open`].
    pub fn new(config: &CsvSinkConfig) -> Result<Self, Error> {
        Ok(CsvSink {
            delimiter: delimiter_byte(&config.path, config.delimiter)?,
            path: config.path.clone(),
            fields: config.fields.clone(),
            open: None,
        })
    }

    fn write_error(&self, e: io::Error) -> Error {
        Error::io(&self.path, "writing", e)
    }
}

impl Sink for CsvSink {
    fn open(&mut self, schema: &Schema) -> Result<(), Error> {
        if self.open.is_some() {
            return Err(Error::Config(format!(
                "{}: the sink is already open",
                self.path.display()
            )));
        }
        let output = Output::resolve(&self.path, schema, self.fields.as_deref())?;
        let (pending, mut file) = PendingFile::create(&self.path)?;
        let encoder = CsvEncoder::new(&self.path, self.delimiter, output);
        let mut header = Vec::new();
        encoder.record(
            encoder.output.names.iter().map(|n| n.as_bytes()),
            &mut header,
        );
        file.write_all(&header).map_err(|e| self.write_error(e))?;
        self.open = Some(OpenCsv {
            file,
            pending,
            encoder: Arc::new(encoder),
            buffer: Vec::new(),
        });
        Ok(())
    }

    fn write_batch(&mut self, batch: &Batch) -> Result<(), Error> {
        let Some(open) = self.open.as_mut() else {
            return Err(not_open(&self.path));
        };
        open.buffer.clear();
        open.encoder.encode(batch, &mut open.buffer)?;
        let written = open.file.write_all(&open.buffer);
        written.map_err(|e| self.write_error(e))
    }

    fn encoder(&self) -> Option<Arc<dyn Encode>> {
        let open = self.open.as_ref()?;
        Some(Arc::clone(&open.encoder) as Arc<dyn Encode>)
    }

    fn write_encoded(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let Some(open) = self.open.as_mut() else {
            return Err(not_open(&self.path));
        };
        let written = open.file.write_all(bytes);
        written.map_err(|e| self.write_error(e))
    }

    fn finish(&mut self) -> Result<(), Error> {
        let Some(open) = self.open.take() else {
            return Err(not_open(&self.path));
        };
        let OpenCsv { file, pending, .. } = open;
        pending.commit(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the csv crate's writer, with the defaults this sink used to run it with, makes of a
    /// record.
    fn csv_crate(delimiter: u8, fields: &[Vec<u8>]) -> Vec<u8> {
        let mut w = ::csv::WriterBuilder::new()
            .delimiter(delimiter)
            .from_writer(Vec::new());
        w.write_record(fields).unwrap();
        w.into_inner().unwrap()
    }

    fn ours(delimiter: u8, fields: &[Vec<u8>]) -> Vec<u8> {
        let schema = Schema::new((0..fields.len()).map(|i| format!("f{i}")).collect());
        let output = Output::resolve(Path::new("t.csv"), &schema, None).unwrap();
        let mut out = Vec::new();
        CsvEncoder::new(Path::new("t.csv"), delimiter, output)
            .record(fields.iter().map(Vec::as_slice), &mut out);
        out
    }

    #[test]
    fn encodes_as_the_csv_crate_does() {
        for fields in [
            vec![],
            vec![""],
            vec!["", ""],
            vec!["plain", "a,b", "say \"hi\"", "two\nlines", "cr\r", "\"", ""],
            vec!["tab\there", " spaced ", "#hash", "é"],
        ] {
            let fields: Vec<Vec<u8>> = fields.iter().map(|f| f.as_bytes().to_vec()).collect();
            for delimiter in [b',', b'\t', b';'] {
                assert_eq!(ours(delimiter, &fields), csv_crate(delimiter, &fields));
            }
        }
    }

    proptest! {
        #[test]
        fn encodes_any_record_as_the_csv_crate_does(
            fields in proptest::collection::vec(
                proptest::collection::vec(
                    prop_oneof![Just(b'a'), Just(b','), Just(b'"'), Just(b'\n'), Just(b'\r'), Just(b'\t'), Just(b' ')],
                    0..6,
                ),
                0..5,
            ),
        ) {
            prop_assert_eq!(ours(b',', &fields), csv_crate(b',', &fields));
            prop_assert_eq!(ours(b'\t', &fields), csv_crate(b'\t', &fields));
        }
    }
}
