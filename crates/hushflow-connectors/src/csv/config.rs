//! The `[source]` and `[sink]` tables of a pipeline file with `type = "csv"`.

use hushflow_core::Error;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Reads a CSV file whose first row names the fields.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvSourceConfig {
    /// The file to read. In a pipeline file, a relative path is relative to that file.
    pub path: PathBuf,
    /// The character between fields: one ASCII character other than `"` or a line break.
    /// Default `,`; use `;` for many European spreadsheet exports and `\t` for TSV.
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// Whether the first row names the fields. Only `true` (the default) is supported: records
    /// are matched to the pipeline's fields by the header's names.
    #[serde(default = "default_true")]
    pub has_header: bool,
}

impl CsvSourceConfig {
    /// A source reading `path` with the defaults: comma-separated, with a header row.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CsvSourceConfig {
            path: path.into(),
            delimiter: default_delimiter(),
            has_header: true,
        }
    }
}

/// Writes a CSV file with a header row of the output fields.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvSinkConfig {
    /// The file to write, replaced when the run succeeds and left untouched when it fails. In a
    /// pipeline file, a relative path is relative to that file; missing directories are created.
    pub path: PathBuf,
    /// The character between fields: one ASCII character other than `"` or a line break.
    /// Default `,`.
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// The fields to write, in this order. Default: every field the policy outputs, in order.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
}

impl CsvSinkConfig {
    /// A sink writing every field to `path`, comma-separated.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CsvSinkConfig {
            path: path.into(),
            delimiter: default_delimiter(),
            fields: None,
        }
    }
}

fn default_delimiter() -> char {
    ','
}

fn default_true() -> bool {
    true
}

/// The delimiter as the byte the csv crate wants, or a configuration error.
pub(crate) fn delimiter_byte(path: &Path, delimiter: char) -> Result<u8, Error> {
    match u8::try_from(delimiter) {
        Ok(b) if b.is_ascii() && !matches!(b, b'"' | b'\n' | b'\r') => Ok(b),
        _ => Err(Error::Config(format!(
            "{}: the delimiter must be one ASCII character other than a quote or a line break",
            path.display()
        ))),
    }
}

impl crate::SourceConfig for CsvSourceConfig {
    fn kind(&self) -> &'static str {
        "csv"
    }

    fn location(&self) -> &Path {
        &self.path
    }

    fn resolve_paths(&mut self, base: &Path) {
        self.path = base.join(&self.path);
    }

    fn file(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn problems(&self) -> Vec<crate::ConfigProblem> {
        match self.has_header {
            true => Vec::new(),
            false => vec![crate::ConfigProblem {
                key: "has_header",
                message: "false is not supported: records are matched to the policy's fields \
                          by the header's names; add a header row to the file"
                    .into(),
            }],
        }
    }

    fn peek_fields(&self) -> Result<Option<Vec<String>>, Error> {
        super::source::read_header(&self.path, self.delimiter)
    }

    fn open(
        &self,
        ctx: &crate::SourceContext<'_>,
    ) -> Result<Box<dyn hushflow_core::Source>, Error> {
        Ok(Box::new(super::CsvSource::open(self, Some(ctx.fields))?))
    }

    fn raw_decoder(&self, fields: &[String]) -> Result<Option<Box<dyn crate::RawDecoder>>, Error> {
        Ok(Some(Box::new(super::CsvSource::open(self, Some(fields))?)))
    }
}

impl crate::SinkConfig for CsvSinkConfig {
    fn kind(&self) -> &'static str {
        "csv"
    }

    fn location(&self) -> &Path {
        &self.path
    }

    fn file(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn relocate(&mut self, to: &Path) {
        self.path = to.to_path_buf();
    }

    fn resolve_paths(&mut self, base: &Path) {
        self.path = base.join(&self.path);
    }

    fn fields(&self) -> Option<&[String]> {
        self.fields.as_deref()
    }

    fn open(&self, _ctx: &crate::SinkContext<'_>) -> Result<Box<dyn hushflow_core::Sink>, Error> {
        Ok(Box::new(super::CsvSink::new(self)?))
    }

    fn rows(
        &self,
        _ctx: &crate::SinkContext<'_>,
    ) -> Result<Option<Box<dyn crate::SinkRows>>, hushflow_core::Error> {
        Ok(Some(Box::new(super::CsvRows::new(self))))
    }
}
