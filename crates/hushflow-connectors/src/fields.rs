//! Field lists: which fields a source copies and which a sink writes. Field names come from
//! headers and pipeline files, never from records, so messages may quote them.

use hushflow_core::{Batch, Column, Error, Schema};
use std::path::Path;

/// Fails if a name appears twice in `names`; `what` says where the list comes from.
pub(crate) fn check_unique(path: &Path, names: &[String], what: &str) -> Result<(), Error> {
    let mut seen = std::collections::HashSet::with_capacity(names.len());
    for name in names {
        if !seen.insert(name.as_str()) {
            return Err(Error::Config(format!(
                "{}: {what} lists `{name}` twice",
                path.display()
            )));
        }
    }
    Ok(())
}

/// The longest column name that is taken for a name rather than a value.
pub const MAX_NAME_CHARS: usize = 64;

/// Why a column name looks like a record's value rather than a name (an email address, a phone
/// number, a date), or `None` when it looks like a name. A file without a header row has its
/// first record read as names: such names are personal data, so messages never show them, and
/// a CSV header with one is refused.
///
/// Names longer than [`MAX_NAME_CHARS`], with control characters, with `@` or `://`, with
/// digits and no letters (`+49 30 901820`, `1985-04-12`, `2024`), or with at least three digits
/// and more than twice as many digits as letters (`C001`, an IBAN) look like values. Names with no letters and no digits (`#`, an empty name) carry nothing and pass.
pub fn name_looks_like_data(name: &str) -> Option<&'static str> {
    let name = name.trim();
    if name.chars().count() > MAX_NAME_CHARS {
        return Some("is longer than 64 characters");
    }
    if name.chars().any(char::is_control) {
        return Some("has control characters");
    }
    if name.contains('@') {
        return Some("looks like an email address");
    }
    if name.contains("://") {
        return Some("looks like a URL");
    }
    let digits = name.chars().filter(char::is_ascii_digit).count();
    let letters = name.chars().filter(|c| c.is_alphabetic()).count();
    if digits > 0 && letters == 0 {
        return Some("looks like a number, a date or a phone number");
    }
    if digits >= 3 && digits > 2 * letters {
        return Some("is mostly digits, like an id or a phone number");
    }
    None
}

/// Joins names for a message: "`a`, `b`, `c`". Names that look like values
/// ([`name_looks_like_data`]) are counted, not shown.
pub(crate) fn list(names: &[String]) -> String {
    if names.is_empty() {
        return "(none)".to_string();
    }
    let (shown, hidden): (Vec<&String>, Vec<&String>) = names
        .iter()
        .partition(|n| name_looks_like_data(n).is_none());
    let mut text = shown
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if !hidden.is_empty() {
        if !text.is_empty() {
            text.push_str(", ");
        }
        text.push_str(&format!(
            "and {} not shown (they look like values, not names: is a header row missing?)",
            hidden.len()
        ));
    }
    text
}

/// What a sink writes: the output field names and each one's position in the schema.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    /// The schema the sink was opened with; every batch must have it.
    pub schema: Schema,
    pub names: Vec<String>,
    pub positions: Vec<usize>,
}

impl Output {
    /// Resolves a sink's `fields` setting (`None`: every field of the schema, in order).
    pub(crate) fn resolve(
        path: &Path,
        schema: &Schema,
        fields: Option<&[String]>,
    ) -> Result<Self, Error> {
        let names = match fields {
            Some(fields) => fields.to_vec(),
            None => schema.fields().to_vec(),
        };
        check_unique(path, &names, "`fields`")?;
        let mut positions = Vec::with_capacity(names.len());
        let mut index = std::collections::HashMap::with_capacity(schema.len());
        for (i, f) in schema.fields().iter().enumerate() {
            index.entry(f.as_str()).or_insert(i);
        }
        for name in &names {
            match index.get(name.as_str()) {
                Some(&i) => positions.push(i),
                None => {
                    return Err(Error::Config(format!(
                        "{}: `fields` names `{name}`, which the records do not have; they have: {}",
                        path.display(),
                        list(schema.fields())
                    )));
                }
            }
        }
        Ok(Output {
            schema: schema.clone(),
            names,
            positions,
        })
    }

    /// The batch's columns the sink writes, in output order, once the batch is checked to have
    /// the schema the sink was opened with (so positions are valid).
    pub(crate) fn columns<'b>(
        &self,
        path: &Path,
        batch: &'b Batch,
    ) -> Result<Vec<&'b Column>, Error> {
        self.check(path, batch)?;
        Ok(self.positions.iter().map(|&p| batch.column(p)).collect())
    }

    fn check(&self, path: &Path, batch: &Batch) -> Result<(), Error> {
        if **batch.schema() != self.schema {
            return Err(Error::Config(format!(
                "{}: a batch's fields ({}) differ from those the sink was opened with ({})",
                path.display(),
                list(batch.schema().fields()),
                list(self.schema.fields())
            )));
        }
        Ok(())
    }
}

/// The error for a sink used before [`hushflow_core::Sink::open`] or after `finish`.
pub(crate) fn not_open(path: &Path) -> Error {
    Error::Config(format!(
        "{}: the sink is not open (open it with the batch schema before writing, and write nothing after finish)",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_look_like_values_are_told_apart() {
        for name in [
            "id",
            "email",
            "first_name",
            "address_line_2",
            "phone_e164",
            "fy2024",
            "Straße",
            "",
            "#",
            "utm_source",
        ] {
            assert_eq!(name_looks_like_data(name), None, "{name}");
        }
        let long = "x".repeat(65);
        for name in [
            "jane@example.com",
            "C001",
            "+49 30 901820",
            "(555) 010-2000",
            "1985-04-12",
            "2024",
            "42",
            "DE89370400440532013000",
            "https://example.com/jane",
            "a\u{1b}[31m",
            long.as_str(),
        ] {
            assert!(name_looks_like_data(name).is_some(), "{name}");
        }
    }

    #[test]
    fn lists_show_only_names() {
        let names: Vec<String> = ["id", "jane@example.com", "C001", "email"]
            .map(String::from)
            .to_vec();
        let text = list(&names);
        assert_eq!(
            text,
            "`id`, `email`, and 2 not shown (they look like values, not names: is a header row missing?)"
        );
        let text = list(&["jane@example.com".to_string()]);
        assert!(!text.contains("jane"), "{text}");
    }
}
