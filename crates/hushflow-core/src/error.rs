//! Errors. A record-level error names where the problem is (file, line, field) and what kind of
//! problem it is, never the value: values are personal data and error messages end up in logs.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

/// Why a record was rejected. Each variant's text is fixed, so it can be logged, stored in the
/// audit log and counted without risk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    /// A CSV row with a different number of fields than the header.
    WrongFieldCount {
        /// How many fields the header names.
        expected: usize,
        /// How many fields the row has.
        found: usize,
    },
    /// Bytes that are not UTF-8; `field` is the column when known.
    InvalidUtf8 {
        /// The field whose bytes are not UTF-8, when known.
        field: Option<String>,
    },
    /// A JSON line that does not parse, or is not an object; `column` is the byte column.
    BrokenJson {
        /// The byte column (from 1) where the line stops being valid JSON.
        column: usize,
        /// What is wrong, in fixed words that name no value ("not a JSON object").
        detail: Cow<'static, str>,
    },
    /// The pipeline's key field is absent or empty.
    MissingKey {
        /// The pipeline's key field.
        field: String,
    },
    /// A field whose value the policy could not process (wrong type, not normalizable).
    InvalidField {
        /// The field whose value could not be processed.
        field: String,
        /// What was wrong with it, in fixed words that name no value.
        detail: Cow<'static, str>,
    },
    /// A line longer than the source accepts.
    TooLong {
        /// The longest record the source accepts, in bytes.
        limit: usize,
    },
    /// A CSV quoted field that is never closed: the rest of the file, `lines` lines, is this one
    /// record (set aside whole rather than guessed at).
    UnclosedQuote {
        /// How many lines, from this record's first to the end of the file, were set aside.
        lines: u64,
    },
    /// The destination refused the record (a CRM's validation); `detail` is the sink's fixed
    /// wording of the cause, never the value.
    Refused {
        /// The field the destination named as the cause, if it named one.
        field: Option<String>,
        /// The sink's fixed wording of the cause.
        detail: Cow<'static, str>,
    },
    /// A quarantined record whose content was not kept (it was too long, or its bytes held
    /// fields the pipeline drops), met again by a replay: there is nothing to replay.
    NotKept {
        /// The code of the reason it was quarantined for (`too_long`, `invalid_utf8`, …).
        original: String,
    },
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::WrongFieldCount { expected, found } => {
                write!(f, "expected {expected} fields, found {found}")
            }
            RejectReason::InvalidUtf8 { field: Some(field) } => {
                write!(f, "field `{field}` is not valid UTF-8")
            }
            RejectReason::InvalidUtf8 { field: None } => write!(f, "not valid UTF-8"),
            RejectReason::BrokenJson { column, detail } => {
                write!(f, "broken JSON at column {column}: {detail}")
            }
            RejectReason::MissingKey { field } => {
                write!(f, "key field `{field}` is missing or empty")
            }
            RejectReason::InvalidField { field, detail } => write!(f, "field `{field}`: {detail}"),
            RejectReason::TooLong { limit } => write!(f, "record longer than {limit} bytes"),
            RejectReason::Refused {
                field: Some(field),
                detail,
            } => write!(f, "the destination refused field `{field}`: {detail}"),
            RejectReason::Refused {
                field: None,
                detail,
            } => write!(f, "the destination refused the record: {detail}"),
            RejectReason::NotKept { original } => write!(
                f,
                "quarantined as {original} without its content, so it cannot be replayed; fix \
                 the record in the source and run the pipeline again"
            ),
            RejectReason::UnclosedQuote { lines } => write!(
                f,
                "a quoted field opened in this record is never closed; the rest of the file \
                 ({lines} lines) was set aside with it"
            ),
        }
    }
}

impl RejectReason {
    /// A short stable code for counting reasons in summaries and the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            RejectReason::WrongFieldCount { .. } => "wrong_field_count",
            RejectReason::InvalidUtf8 { .. } => "invalid_utf8",
            RejectReason::BrokenJson { .. } => "broken_json",
            RejectReason::MissingKey { .. } => "missing_key",
            RejectReason::InvalidField { .. } => "invalid_field",
            RejectReason::TooLong { .. } => "too_long",
            RejectReason::UnclosedQuote { .. } => "unclosed_quote",
            RejectReason::Refused { .. } => "refused",
            RejectReason::NotKept { .. } => "not_kept",
        }
    }
}

/// A record-level problem with its location, for `on_error = "fail"` and for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// The file (or other source) the record came from.
    pub path: PathBuf,
    /// The record's line in it.
    pub line: u64,
    /// What is wrong with the record.
    pub reason: RejectReason,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.reason)
    }
}

/// Errors that stop a connector. Messages say what to do next where there is something to do,
/// and never include record values.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file (or another I/O resource) failed.
    #[error("{path}: {action} failed: {source}")]
    Io {
        /// The file the operation was on.
        path: PathBuf,
        /// What was being done ("reading", "creating the file").
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A problem with one record that stops the connector.
    #[error("{0}")]
    Record(RecordError),
    /// The destination failed or refused what it was asked (a path that is a directory, a
    /// failed transaction).
    #[error("{path}: {message}")]
    Destination {
        /// Where the destination is: its file, or a database table's name.
        path: PathBuf,
        /// What the destination answered, with no record values.
        message: String,
    },
    /// The connector's configuration is wrong or asks for what it cannot do.
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// An [`Error::Io`] for `action` on `path`.
    pub fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            action,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_error_names_file_line_and_field() {
        let e = RecordError {
            path: "data/contacts.csv".into(),
            line: 17,
            reason: RejectReason::InvalidUtf8 {
                field: Some("notes".into()),
            },
        };
        assert_eq!(
            e.to_string(),
            "data/contacts.csv:17: field `notes` is not valid UTF-8"
        );
    }
}
