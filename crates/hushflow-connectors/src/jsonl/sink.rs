//! Writes batches to a JSON lines file, atomically.

use super::config::JsonlSinkConfig;
use crate::fields::{Output, not_open};
use crate::file::PendingFile;
use hushflow_core::{Batch, CellKind, Error, Schema, Sink};
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

/// Bytes gathered before they are written to the file.
const FLUSH_AT: usize = 64 * 1024;

/// A JSON lines file with one object per row, keys in output order. Text is written as a JSON
/// string, numbers and booleans as they are, nested JSON as its text and null as `null`; a
/// number, boolean or nested JSON cell whose text is not valid as such is written as a string,
/// so that every line is valid JSON.
///
/// Rows go to a private temporary file beside the target, which [`Sink::finish`] renames over
/// the target; a sink dropped before that removes its temporary file.
#[derive(Debug)]
pub struct JsonlSink {
    path: PathBuf,
    fields: Option<Vec<String>>,
    open: Option<OpenJsonl>,
}

#[derive(Debug)]
struct OpenJsonl {
    // Dropped in this order: the file is closed, then removed.
    file: File,
    pending: PendingFile,
    output: Output,
    /// What precedes each field's value: `{"name":` for the first, `,"name":` for the others.
    prefixes: Vec<Vec<u8>>,
    buf: Vec<u8>,
}

impl JsonlSink {
    /// Keeps the configuration; nothing is created before [`Sink::open`].
    pub fn new(config: &JsonlSinkConfig) -> Result<Self, Error> {
        Ok(JsonlSink {
            path: config.path.clone(),
            fields: config.fields.clone(),
            open: None,
        })
    }
}

impl OpenJsonl {
    fn flush(&mut self, path: &std::path::Path) -> Result<(), Error> {
        self.file
            .write_all(&self.buf)
            .map_err(|e| Error::io(path, "writing", e))?;
        self.buf.clear();
        Ok(())
    }
}

impl Sink for JsonlSink {
    fn open(&mut self, schema: &Schema) -> Result<(), Error> {
        if self.open.is_some() {
            return Err(Error::Config(format!(
                "{}: the sink is already open",
                self.path.display()
            )));
        }
        let output = Output::resolve(&self.path, schema, self.fields.as_deref())?;
        let prefixes = output
            .names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut prefix = vec![if i == 0 { b'{' } else { b',' }];
                push_json_string(&mut prefix, name);
                prefix.push(b':');
                prefix
            })
            .collect();
        let (pending, file) = PendingFile::create(&self.path)?;
        self.open = Some(OpenJsonl {
            file,
            pending,
            output,
            prefixes,
            buf: Vec::with_capacity(FLUSH_AT + 4096),
        });
        Ok(())
    }

    fn write_batch(&mut self, batch: &Batch) -> Result<(), Error> {
        let Some(open) = self.open.as_mut() else {
            return Err(not_open(&self.path));
        };
        let columns = open.output.columns(&self.path, batch)?;
        for row in 0..batch.len() {
            if columns.is_empty() {
                open.buf.push(b'{');
            }
            for (prefix, column) in open.prefixes.iter().zip(&columns) {
                open.buf.extend_from_slice(prefix);
                let cell = column.get(row);
                match cell.kind {
                    CellKind::Null => open.buf.extend_from_slice(b"null"),
                    CellKind::Text => push_json_string(&mut open.buf, cell.text),
                    CellKind::Number if is_json_number(cell.text) => {
                        open.buf.extend_from_slice(cell.text.as_bytes());
                    }
                    CellKind::Bool if matches!(cell.text, "true" | "false") => {
                        open.buf.extend_from_slice(cell.text.as_bytes());
                    }
                    CellKind::Json
                        if serde_json::from_str::<serde::de::IgnoredAny>(cell.text).is_ok() =>
                    {
                        open.buf.extend_from_slice(cell.text.as_bytes());
                    }
                    CellKind::Number | CellKind::Bool | CellKind::Json => {
                        push_json_string(&mut open.buf, cell.text);
                    }
                }
            }
            open.buf.extend_from_slice(b"}\n");
            if open.buf.len() >= FLUSH_AT {
                open.flush(&self.path)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        let Some(mut open) = self.open.take() else {
            return Err(not_open(&self.path));
        };
        open.flush(&self.path)?;
        let OpenJsonl { file, pending, .. } = open;
        pending.commit(file)
    }
}

/// Appends `s` as a JSON string literal.
pub(crate) fn push_json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut run_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ],
            _ => continue,
        };
        out.extend_from_slice(&bytes[run_start..i]);
        out.extend_from_slice(escape);
        run_start = i + 1;
    }
    out.extend_from_slice(&bytes[run_start..]);
    out.push(b'"');
}

/// Whether `s` is a number as JSON writes them: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
pub(crate) fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}
