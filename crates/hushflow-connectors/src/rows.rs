//! Rows a sink already wrote, looked up by value: what data subject requests act on (find a
//! person's rows by the pseudonyms the pipeline wrote for them, delete them, export them).
//! A sink config hands out a [`SinkRows`] through [`SinkConfig::rows`](crate::SinkConfig::rows);
//! a sink without one (a service whose delete API is not wired yet) is reported, not skipped.

use hushflow_core::Error;

/// One output field's value to match: a row matches when any of the pairs it is given does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowMatch {
    /// The output field (the column).
    pub field: String,
    /// The value written there, compared as text.
    pub value: String,
}

/// A row found: where it is (a file's line, for sinks that cannot delete) and its fields as
/// text (`None` for null), for an access export. Personal data: never logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundRow {
    /// The line of a file sink (1 is the first line of the file); `None` for a table.
    pub line: Option<u64>,
    /// The row's columns and values as text.
    pub fields: Vec<(String, Option<String>)>,
}

/// Rows of one sink, by value.
pub trait SinkRows {
    /// The rows matching any of `matches`. Matches on a column the destination does not have
    /// match nothing; a destination that does not exist yet holds no rows.
    fn find(&mut self, matches: &[RowMatch]) -> Result<Vec<FoundRow>, Error>;

    /// [`SinkRows::find`], reading `fields` of each row (the fields the pipeline writes): a
    /// service that returns only the fields asked for (a CRM) needs their names for an access
    /// export; a table returns every column anyway.
    fn find_with(
        &mut self,
        matches: &[RowMatch],
        fields: &[String],
    ) -> Result<Vec<FoundRow>, Error> {
        let _ = fields;
        self.find(matches)
    }

    /// Whether [`SinkRows::delete`] can remove rows (a table); a file sink is rewritten by
    /// every run and its rows are listed for manual action instead.
    fn can_delete(&self) -> bool {
        false
    }

    /// Deletes, in one transaction, the rows whose `field` (a timestamp or date) is before
    /// `cutoff` (RFC 3339, UTC); returns how many. Rows without a value are kept.
    fn delete_before(&mut self, _field: &str, _cutoff: &str) -> Result<u64, Error> {
        Err(Error::Config("this sink cannot delete rows by age".into()))
    }

    /// Deletes the rows matching any of `matches` in one transaction; returns how many.
    fn delete(&mut self, _matches: &[RowMatch]) -> Result<u64, Error> {
        Err(Error::Config(
            "this sink cannot delete rows; remove them by hand".into(),
        ))
    }
}

/// A service that finds a person's records by the values written for them and deletes records
/// by id (a CRM): [`ById`] makes its [`SinkRows`], so each such connector writes only these two.
#[cfg(feature = "http")]
pub(crate) trait RecordsById {
    /// The id and fields (among `wanted`, the fields the pipeline writes) of each record
    /// matching any of `matches`, each once.
    fn lookup(
        &self,
        matches: &[RowMatch],
        wanted: &[String],
    ) -> Result<Vec<(String, FoundRow)>, Error>;

    /// Deletes the record `id`.
    fn delete_id(&self, id: &str) -> Result<(), Error>;
}

/// The [`SinkRows`] of a [`RecordsById`] service: found records are exported, and deleted one
/// by one by id (only those found).
#[cfg(feature = "http")]
pub(crate) struct ById<R>(pub(crate) R);

#[cfg(feature = "http")]
impl<R: RecordsById> SinkRows for ById<R> {
    fn find(&mut self, matches: &[RowMatch]) -> Result<Vec<FoundRow>, Error> {
        self.find_with(matches, &[])
    }

    fn find_with(
        &mut self,
        matches: &[RowMatch],
        fields: &[String],
    ) -> Result<Vec<FoundRow>, Error> {
        Ok(self
            .0
            .lookup(matches, fields)?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    fn can_delete(&self) -> bool {
        true
    }

    fn delete(&mut self, matches: &[RowMatch]) -> Result<u64, Error> {
        let found = self.0.lookup(matches, &[])?;
        for (id, _) in &found {
            self.0.delete_id(id)?;
        }
        Ok(found.len() as u64)
    }
}

/// A JSON field value as a found row holds it: `None` for null, strings as they are, anything
/// else as its JSON text.
#[cfg(feature = "http")]
pub(crate) fn json_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The matches on columns in `columns` (compared as SQL does: without ASCII case), so a
/// statement never names a column the table lacks.
pub(crate) fn on_columns<'m>(matches: &'m [RowMatch], columns: &[String]) -> Vec<&'m RowMatch> {
    matches
        .iter()
        .filter(|m| columns.iter().any(|c| c.eq_ignore_ascii_case(&m.field)))
        .collect()
}

/// `retain` and `retain_by` come together.
pub(crate) fn retention_problems(
    retain: &Option<String>,
    retain_by: &Option<String>,
) -> Vec<crate::ConfigProblem> {
    match (retain, retain_by) {
        (Some(_), None) => vec![crate::ConfigProblem {
            key: "retain",
            message: "needs `retain_by`, the timestamp field rows are aged by".into(),
        }],
        (None, Some(_)) => vec![crate::ConfigProblem {
            key: "retain_by",
            message: "needs `retain`, how long rows are kept (such as \"400d\")".into(),
        }],
        _ => Vec::new(),
    }
}
