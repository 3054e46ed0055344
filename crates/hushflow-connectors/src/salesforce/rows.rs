//! A person's records in Salesforce, for data subject requests: found with a SOQL query on the
//! field the pipeline wrote a value of theirs to (`WHERE field = 'value'`, the value escaped as
//! a SOQL string literal), exported with the fields the matches name, and deleted one by one
//! (`DELETE …/sobjects/OBJECT/ID`). Salesforce keeps deleted records in its Recycle Bin for 15
//! days before it purges them; empty it (or ask Salesforce for a hard delete) when an erasure
//! must be immediate. Only records found are deleted.

use super::client::Salesforce;
use super::soql;
use crate::rows::{RecordsById, json_text};
use crate::{FoundRow, RowMatch};
use hushflow_core::Error;
use serde_json::Value;

/// The most records one lookup reads (one person, a handful of records at most).
const MAX_FOUND: usize = 1000;

/// The rows of a Salesforce sink.
pub(super) struct SalesforceRows {
    api: Salesforce,
    object: String,
}

impl SalesforceRows {
    pub(super) fn new(api: Salesforce, object: &str) -> SalesforceRows {
        SalesforceRows {
            api,
            object: object.to_string(),
        }
    }
}

impl RecordsById for SalesforceRows {
    /// The ids and fields of the records matching any of `matches`, each once. A match on a
    /// name that is not a Salesforce field name matches nothing.
    fn lookup(
        &self,
        matches: &[RowMatch],
        wanted: &[String],
    ) -> Result<Vec<(String, FoundRow)>, Error> {
        let usable: Vec<&RowMatch> = matches
            .iter()
            .filter(|m| soql::is_identifier(&m.field))
            .collect();
        if usable.is_empty() {
            return Ok(Vec::new());
        }
        let mut fields = vec!["Id".to_string()];
        let names = usable
            .iter()
            .map(|m| &m.field)
            .chain(wanted.iter().filter(|w| soql::is_identifier(w)));
        for name in names {
            if !fields.iter().any(|f| f.eq_ignore_ascii_case(name)) {
                fields.push(name.clone());
            }
        }
        let base = soql::select(&fields, &self.object, None)
            .map_err(|e| Error::Config(format!("Salesforce: {e}")))?;
        let conditions: Vec<String> = usable
            .iter()
            .map(|m| format!("{} = {}", m.field, soql::quote(&m.value)))
            .collect();
        let query = format!("{base} WHERE {}", conditions.join(" OR "));
        let mut found: Vec<(String, FoundRow)> = Vec::new();
        let mut page = self.api.query(&query)?;
        loop {
            for record in &page.records {
                let Some(id) = record.get("Id").and_then(Value::as_str) else {
                    continue;
                };
                if found.iter().any(|(seen, _)| seen == id) {
                    continue;
                }
                let fields = record
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| k.as_str() != "attributes")
                    .map(|(k, v)| (k.clone(), json_text(v)))
                    .collect();
                found.push((id.to_string(), FoundRow { line: None, fields }));
            }
            if found.len() >= MAX_FOUND {
                return Err(Error::Config(format!(
                    "Salesforce: more than {MAX_FOUND} records match one person's values; that \
                     is not one person: check the pipeline's key"
                )));
            }
            match (&page.next_records_url, page.done) {
                (Some(next), false) => page = self.api.query_more(next)?,
                _ => break,
            }
        }
        Ok(found)
    }

    fn delete_id(&self, id: &str) -> Result<(), Error> {
        self.api.delete_record(&self.object, id)
    }
}
