//! A JSON lines sink's rows by value ([`SinkRows`]): found with their line in the file, for
//! manual action. The file is rewritten by every run, so rows are not deleted here.

use super::config::JsonlSinkConfig;
use crate::rows::{FoundRow, RowMatch, SinkRows};
use hushflow_core::Error;
use std::io::BufRead;
use std::path::PathBuf;

/// The rows of a JSON lines sink's file.
pub struct JsonlRows {
    path: PathBuf,
}

impl JsonlRows {
    /// The file `config` writes.
    pub fn new(config: &JsonlSinkConfig) -> JsonlRows {
        JsonlRows {
            path: config.path.clone(),
        }
    }
}

/// A JSON value as the text a table would hold (strings unquoted).
fn as_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

impl SinkRows for JsonlRows {
    fn find(&mut self, matches: &[RowMatch]) -> Result<Vec<FoundRow>, Error> {
        if !self.path.exists() {
            return Ok(Vec::new());
        }
        let error = |e: &dyn std::fmt::Display| Error::Destination {
            path: self.path.clone(),
            message: format!("reading the file failed: {e}"),
        };
        let file = std::fs::File::open(&self.path).map_err(|e| error(&e))?;
        let mut found = Vec::new();
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| error(&e))?;
            // A line that is not an object was not written by hushflow: it holds no row.
            let Ok(serde_json::Value::Object(object)) = serde_json::from_str(&line) else {
                continue;
            };
            let hit = matches.iter().any(|m| {
                object.get(&m.field).and_then(as_text).as_deref() == Some(m.value.as_str())
            });
            if hit {
                let fields = object
                    .iter()
                    .map(|(k, v)| (k.clone(), as_text(v)))
                    .collect();
                found.push(FoundRow {
                    line: Some(n as u64 + 1),
                    fields,
                });
            }
        }
        Ok(found)
    }
}
