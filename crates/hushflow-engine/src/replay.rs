//! Quarantined records fed through a (fixed) pipeline again: `hushflow quarantine replay`.
//!
//! A quarantine holds two forms of record. Those the source could not read (`wrong_field_count`,
//! `invalid_utf8`, `broken_json`, `too_long`, `unclosed_quote`) are the source's bytes as read,
//! decoded again here with the source's format (a CSV record with the file's header, a JSON
//! line). Those a later stage refused (`missing_key`, `invalid_field`) are the row as the source
//! read it, a JSON object of its fields. Each keeps its original line, so a record that fails
//! again is quarantined again under the line it came from.

use hushflow_core::{
    Batch, Cell, CellKind, Error, RejectReason, Rejected, Schema, Source, SourceBatch,
};
use hushflow_spec::plan::Plan;
use hushflow_state::quarantine::QuarantinedRecord;
use std::sync::Arc;

/// Whether a quarantined record holds the row as read (a JSON object of its fields) rather than
/// the source's raw bytes.
fn is_row(record: &QuarantinedRecord) -> bool {
    hushflow_state::quarantine::holds_row(&record.code)
}

/// The replayed records as one source, yielding them in batches in their original order.
pub struct ReplaySource {
    schema: Arc<Schema>,
    /// The decoded records, handed out once.
    pending: Option<SourceBatch>,
}

impl ReplaySource {
    /// Decodes `records` for `plan`'s source. A CSV source's file must still be there: its header
    /// names the fields of the raw records.
    pub fn new(plan: &Plan, records: &[QuarantinedRecord]) -> Result<ReplaySource, Error> {
        let wanted = plan.source_fields_needed();
        let schema = Arc::new(Schema::new(wanted.clone()));
        // Raw records of a source with its own format (a CSV row needs the file's header).
        let decoder = match records.iter().any(|r| !is_row(r)) {
            true => plan.source.raw_decoder(&wanted)?,
            false => None,
        };
        let mut batch = Batch::new(schema.clone());
        let mut rejected = Vec::new();
        for record in records {
            let raw = record.raw();
            // Too long, or holding dropped fields: set aside without its content.
            if raw.is_empty() {
                rejected.push(Rejected {
                    line: record.line,
                    reason: RejectReason::NotKept {
                        original: record.code.clone(),
                    },
                    raw,
                });
                continue;
            }
            match &decoder {
                Some(decoder) if !is_row(record) => {
                    let one = decoder.decode(&[(record.line, &raw)])?;
                    rejected.extend(one.rejected);
                    for row in 0..one.batch.len() {
                        batch.push_row(record.line, one.batch.columns().iter().map(|c| c.get(row)));
                    }
                }
                _ => match json_row(&raw, &wanted) {
                    Ok(cells) => batch.push_row(record.line, cells.iter().map(borrowed)),
                    Err(reason) => rejected.push(Rejected {
                        line: record.line,
                        reason,
                        raw,
                    }),
                },
            }
        }
        Ok(ReplaySource {
            schema,
            pending: Some(SourceBatch { batch, rejected }),
        })
    }
}

impl Source for ReplaySource {
    fn schema(&self) -> Arc<Schema> {
        self.schema.clone()
    }

    /// Quarantines are small (records are set aside one by one): one batch holds them all.
    fn next_batch(&mut self, _max_rows: usize) -> Result<Option<SourceBatch>, Error> {
        Ok(self.pending.take())
    }
}

/// One cell's kind and text, owned.
struct OwnedCell(CellKind, String);

fn borrowed(c: &OwnedCell) -> Cell<'_> {
    Cell {
        kind: c.0,
        text: &c.1,
    }
}

/// A JSON object's `wanted` fields as cells, typed as the JSON lines source types them; a
/// missing field is null.
fn json_row(raw: &[u8], wanted: &[String]) -> Result<Vec<OwnedCell>, RejectReason> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(raw).map_err(|e| RejectReason::BrokenJson {
            column: e.column(),
            detail: "not a JSON object".into(),
        })?;
    Ok(wanted
        .iter()
        .map(|name| match object.get(name) {
            None | Some(serde_json::Value::Null) => OwnedCell(CellKind::Null, String::new()),
            Some(serde_json::Value::String(s)) => OwnedCell(CellKind::Text, s.clone()),
            Some(serde_json::Value::Bool(b)) => OwnedCell(CellKind::Bool, b.to_string()),
            Some(serde_json::Value::Number(n)) => OwnedCell(CellKind::Number, n.to_string()),
            Some(v) => OwnedCell(CellKind::Json, v.to_string()),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hushflow_spec::paths::Protected;

    fn plan(dir: &std::path::Path) -> Plan {
        std::fs::write(dir.join("c.jsonl"), "").unwrap();
        let file = dir.join("p.toml");
        std::fs::write(
            &file,
            r#"
[pipeline]
name = "leads"
key = "id"

[source]
type = "jsonl"
path = "c.jsonl"

[policy]
fields.id = "keep"
fields.visits = "keep"

[sink]
type = "jsonl"
path = "out.jsonl"
"#,
        )
        .unwrap();
        hushflow_spec::plan::load(
            &file,
            &hushflow_secrets::SecretProviders::default(),
            &Protected::nothing(),
        )
        .unwrap()
    }

    fn record(line: u64, record: serde_json::Value) -> QuarantinedRecord {
        QuarantinedRecord {
            line,
            code: "invalid_field".into(),
            reason: "x".into(),
            record: Some(record),
            record_base64: None,
        }
    }

    /// A row written as a JSON object (now) and as a string of JSON (older quarantines) replay
    /// alike.
    #[test]
    fn rows_replay_from_objects_and_from_strings_of_json() {
        let dir = tempfile::tempdir().unwrap();
        let plan = plan(dir.path());
        let row = serde_json::json!({"id": "7", "visits": 3, "dropped": "x"});
        let records = [
            record(2, row.clone()),
            record(5, serde_json::Value::String(row.to_string())),
        ];
        let mut source = ReplaySource::new(&plan, &records).unwrap();
        let got = source.next_batch(100).unwrap().unwrap();
        assert!(got.rejected.is_empty());
        assert_eq!(got.batch.lines(), [2, 5]);
        for row in 0..2 {
            assert_eq!(got.batch.column(0).get(row).text, "7");
            let visits = got.batch.column(1).get(row);
            assert_eq!((visits.kind, visits.text), (CellKind::Number, "3"));
        }
    }
}
