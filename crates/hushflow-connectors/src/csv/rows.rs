//! A CSV sink's rows by value ([`SinkRows`]): found with their line in the file, for manual
//! action. The file is rewritten by every run, so rows are not deleted here.

use super::config::CsvSinkConfig;
use crate::rows::{FoundRow, RowMatch, SinkRows};
use hushflow_core::Error;
use std::path::PathBuf;

/// The rows of a CSV sink's file.
pub struct CsvRows {
    path: PathBuf,
    delimiter: u8,
}

impl CsvRows {
    /// The file `config` writes.
    pub fn new(config: &CsvSinkConfig) -> CsvRows {
        CsvRows {
            path: config.path.clone(),
            delimiter: u8::try_from(config.delimiter).unwrap_or(b','),
        }
    }

    fn error(&self, e: impl std::fmt::Display) -> Error {
        Error::Destination {
            path: self.path.clone(),
            message: format!("reading the file failed: {e}"),
        }
    }
}

impl SinkRows for CsvRows {
    fn find(&mut self, matches: &[RowMatch]) -> Result<Vec<FoundRow>, Error> {
        if !self.path.exists() {
            return Ok(Vec::new());
        }
        let mut reader = ::csv::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .flexible(true)
            .from_path(&self.path)
            .map_err(|e| self.error(e))?;
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| self.error(e))?
            .iter()
            .map(str::to_string)
            .collect();
        let wanted: Vec<(usize, &str)> = matches
            .iter()
            .filter_map(|m| Some((header.iter().position(|h| *h == m.field)?, m.value.as_str())))
            .collect();
        let mut found = Vec::new();
        if wanted.is_empty() {
            return Ok(found);
        }
        let mut record = ::csv::StringRecord::new();
        while reader.read_record(&mut record).map_err(|e| self.error(e))? {
            if wanted.iter().any(|(i, v)| record.get(*i) == Some(*v)) {
                let line = record.position().map(|p| p.line());
                let fields = header
                    .iter()
                    .zip(record.iter())
                    .map(|(h, v)| (h.clone(), (!v.is_empty()).then(|| v.to_string())))
                    .collect();
                found.push(FoundRow { line, fields });
            }
        }
        Ok(found)
    }
}
