//! Upserts contacts with `POST /crm/v3/objects/contacts/batch/upsert`, `batch_size` (≤ 100) a
//! request, matched on `id_property`. HubSpot answers 200 when every contact was written and
//! 207 when some were refused: a refused contact becomes a [`SinkRejection`] with its error's
//! category (the engine quarantines it); HubSpot's message is never kept, since it quotes the
//! value it refused.
//!
//! Null cells are not sent, so they leave the contact's property as it is; two rows with the
//! same id in one batch go in separate requests (HubSpot refuses a batch with duplicates).

use super::client::{HubSpot, word};
use super::config::HubSpotSinkConfig;
use crate::fields::{Output, not_open};
use hushflow_core::{Batch, CellKind, Error, RejectReason, Schema, Sink, SinkRejection};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Writes contacts to HubSpot.
pub struct HubSpotSink {
    api: HubSpot,
    id_property: String,
    key: String,
    fields: Option<Vec<String>>,
    batch_size: usize,
    output: Option<(Output, usize)>,
    rejections: Vec<SinkRejection>,
}

const PATH: &str = "HubSpot contacts";

impl HubSpotSink {
    pub(super) fn new(api: HubSpot, config: &HubSpotSinkConfig, key: &str) -> HubSpotSink {
        HubSpotSink {
            api,
            id_property: config
                .id_property
                .clone()
                .unwrap_or_else(|| key.to_string()),
            key: key.to_string(),
            fields: config.fields.clone(),
            batch_size: config.batch_size.clamp(1, 100),
            output: None,
            rejections: Vec::new(),
        }
    }

    /// Sends one request's rows and notes the refused ones.
    fn send(&mut self, batch: &Batch, rows: &[usize]) -> Result<(), Error> {
        let Some((output, key_at)) = &self.output else {
            return Err(not_open(Path::new(PATH)));
        };
        let key_col = batch.column(*key_at);
        let columns = output.columns(Path::new(PATH), batch)?;
        let mut inputs = Vec::with_capacity(rows.len());
        for &row in rows {
            let mut properties = Map::new();
            for (name, column) in output.names.iter().zip(&columns) {
                let cell = column.get(row);
                if cell.kind == CellKind::Null {
                    continue;
                }
                properties.insert(name.clone(), Value::String(cell.text.to_string()));
            }
            let id = key_col.get(row).text;
            properties.insert(self.id_property.clone(), Value::String(id.to_string()));
            inputs.push(json!({
                "idProperty": self.id_property,
                "id": id,
                "properties": properties,
            }));
        }
        let body = serde_json::to_vec(&json!({ "inputs": inputs }))
            .map_err(|_| Error::Config("HubSpot: a batch could not be encoded".into()))?;
        drop(inputs);
        let response = self.api.upsert(&body)?;
        if response.status != 207 {
            return Ok(());
        }
        // Which rows were refused: those an error names by id, else those missing from the
        // results. HubSpot compares emails without regard to case.
        let answer: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        let fold = |s: &str| s.trim().to_lowercase();
        let mut row_of: HashMap<String, usize> = HashMap::with_capacity(rows.len());
        for &row in rows {
            row_of.insert(fold(key_col.get(row).text), row);
        }
        let mut written: HashSet<usize> = HashSet::new();
        for result in answer
            .get("results")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let id = result
                .get("properties")
                .and_then(|p| p.get(&self.id_property))
                .and_then(Value::as_str);
            if let Some(&row) = id.and_then(|id| row_of.get(&fold(id))) {
                written.insert(row);
            }
        }
        let mut refused: HashMap<usize, RejectReason> = HashMap::new();
        let errors = answer
            .get("errors")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for error in &errors {
            let reason = reason_of(error);
            let ids = error
                .get("context")
                .and_then(|c| c.get("ids"))
                .and_then(Value::as_array);
            for id in ids.into_iter().flatten().filter_map(Value::as_str) {
                if let Some(&row) = row_of.get(&fold(id)) {
                    refused.entry(row).or_insert_with(|| reason.clone());
                }
            }
        }
        let fallback = errors
            .first()
            .map(reason_of)
            .unwrap_or(RejectReason::Refused {
                field: None,
                detail: "HubSpot did not write it and gave no reason".into(),
            });
        for &row in rows {
            if !written.contains(&row) && !refused.contains_key(&row) {
                refused.insert(row, fallback.clone());
            }
        }
        let mut refused: Vec<SinkRejection> = refused
            .into_iter()
            .filter(|(row, _)| !written.contains(row))
            .map(|(row, reason)| SinkRejection { row, reason })
            .collect();
        refused.sort_by_key(|r| r.row);
        self.rejections.extend(refused);
        Ok(())
    }
}

/// A refused contact's reason: HubSpot's category and, when it names one, the property, in
/// fixed words (its message quotes the value, so it is not kept).
fn reason_of(error: &Value) -> RejectReason {
    let category = error
        .get("category")
        .and_then(word)
        .unwrap_or_else(|| "UNKNOWN".into());
    let sub = error
        .get("subCategory")
        .and_then(word)
        .map(|s| format!(", {s}"))
        .unwrap_or_default();
    // The property: in the error's `context.propertyName`, or its nested errors' `in`.
    let property = error
        .get("context")
        .and_then(|c| c.get("propertyName"))
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .or_else(|| {
            error
                .get("errors")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(|e| e.get("in"))
        })
        .and_then(Value::as_str)
        .filter(|p| crate::name_looks_like_data(p).is_none() && p.len() <= 100)
        .map(str::to_string);
    RejectReason::Refused {
        field: property,
        detail: format!("HubSpot refused it ({category}{sub})").into(),
    }
}

impl Sink for HubSpotSink {
    fn open(&mut self, schema: &Schema) -> Result<(), Error> {
        let output = Output::resolve(Path::new(PATH), schema, self.fields.as_deref())?;
        let key_at = schema.index_of(&self.key).ok_or_else(|| {
            Error::Config(format!(
                "HubSpot sink: the records have no key field `{}` to match contacts on",
                self.key
            ))
        })?;
        self.output = Some((output, key_at));
        Ok(())
    }

    fn write_batch(&mut self, batch: &Batch) -> Result<(), Error> {
        self.rejections.clear();
        let Some((_, key_at)) = &self.output else {
            return Err(not_open(Path::new(PATH)));
        };
        let key_col = batch.column(*key_at);
        let mut chunk: Vec<usize> = Vec::with_capacity(self.batch_size);
        let mut ids: HashSet<String> = HashSet::with_capacity(self.batch_size);
        for row in 0..batch.len() {
            let id = key_col.get(row);
            if id.is_null() || id.text.trim().is_empty() {
                self.rejections.push(SinkRejection {
                    row,
                    reason: RejectReason::Refused {
                        field: Some(self.id_property.clone()),
                        detail: "has no value to match contacts on".into(),
                    },
                });
                continue;
            }
            let folded = id.text.trim().to_lowercase();
            if chunk.len() == self.batch_size || ids.contains(&folded) {
                let rows = std::mem::take(&mut chunk);
                self.send(batch, &rows)?;
                ids.clear();
            }
            ids.insert(folded);
            chunk.push(row);
        }
        if !chunk.is_empty() {
            self.send(batch, &chunk)?;
        }
        self.rejections.sort_by_key(|r| r.row);
        Ok(())
    }

    fn rejects_records(&self) -> bool {
        true
    }

    fn take_rejections(&mut self) -> Vec<SinkRejection> {
        std::mem::take(&mut self.rejections)
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.output = None;
        Ok(())
    }
}
