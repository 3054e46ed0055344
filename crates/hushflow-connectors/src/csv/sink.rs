//! Writes batches to a CSV file, atomically.

use super::config::{CsvSinkConfig, delimiter_byte};
use crate::fields::{Output, not_open};
use crate::file::PendingFile;
use ::csv::{Writer, WriterBuilder};
use hushflow_core::{Batch, Error, Schema, Sink};
use std::fs::File;
use std::io;
use std::path::PathBuf;

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
    // Dropped in this order: the writer flushes into the temporary file, which is then removed.
    writer: Writer<File>,
    pending: PendingFile,
    output: Output,
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

    fn write_error(&self, e: ::csv::Error) -> Error {
        let e = match e.into_kind() {
            ::csv::ErrorKind::Io(e) => e,
            _ => io::Error::other("the CSV writer refused a record"),
        };
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
        let (pending, file) = PendingFile::create(&self.path)?;
        let mut writer = WriterBuilder::new()
            .delimiter(self.delimiter)
            .from_writer(file);
        writer
            .write_record(&output.names)
            .map_err(|e| self.write_error(e))?;
        self.open = Some(OpenCsv {
            writer,
            pending,
            output,
        });
        Ok(())
    }

    fn write_batch(&mut self, batch: &Batch) -> Result<(), Error> {
        let Some(open) = self.open.as_mut() else {
            return Err(not_open(&self.path));
        };
        let columns = open.output.columns(&self.path, batch)?;
        let mut failed = None;
        for row in 0..batch.len() {
            let cells = columns.iter().map(|c| {
                let cell = c.get(row);
                if cell.is_null() {
                    &b""[..]
                } else {
                    cell.text.as_bytes()
                }
            });
            if let Err(e) = open.writer.write_record(cells) {
                failed = Some(e);
                break;
            }
        }
        match failed {
            Some(e) => Err(self.write_error(e)),
            None => Ok(()),
        }
    }

    fn finish(&mut self) -> Result<(), Error> {
        let Some(open) = self.open.take() else {
            return Err(not_open(&self.path));
        };
        let OpenCsv {
            writer, pending, ..
        } = open;
        let file = writer
            .into_inner()
            .map_err(|e| Error::io(&self.path, "writing", e.into_error()))?;
        pending.commit(file)
    }
}
