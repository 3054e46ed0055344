//! Upserts records with Bulk API 2.0 ingest jobs: for each batch the engine hands over, one job
//! (`operation = "upsert"` on `external_id_field`) is created, its CSV uploaded, the upload
//! closed (`UploadComplete`), and its state polled until `JobComplete` (or `Failed`/`Aborted`,
//! which stop the run). Rows Salesforce refused are read from the job's `failedResults` and
//! handed back as [`SinkRejection`]s with the error's status code (`INVALID_EMAIL_ADDRESS`)
//! only: the rest of `sf__Error` can quote the value, so it is never kept.
//!
//! Null cells are sent empty, which Bulk API leaves as they are. Two rows with the same key
//! (compared without regard to case, as external ids are) go in separate jobs, one after the
//! other, so the later one wins as it would row by row.

use super::client::{Salesforce, word};
use super::config::SalesforceSinkConfig;
use crate::fields::{Output, not_open};
use hushflow_core::{Batch, CellKind, Error, RejectReason, Schema, Sink, SinkRejection};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

const PATH: &str = "Salesforce";

/// Writes records to Salesforce with Bulk API 2.0.
pub struct SalesforceSink {
    api: Salesforce,
    object: String,
    external_id: String,
    key: String,
    fields: Option<Vec<String>>,
    poll: Duration,
    job_timeout: Duration,
    output: Option<(Output, usize)>,
    rejections: Vec<SinkRejection>,
}

impl SalesforceSink {
    pub(super) fn new(api: Salesforce, config: &SalesforceSinkConfig, key: &str) -> SalesforceSink {
        SalesforceSink {
            api,
            object: config.object.clone(),
            external_id: config
                .external_id_field
                .clone()
                .unwrap_or_else(|| key.to_string()),
            key: key.to_string(),
            fields: config.fields.clone(),
            poll: Duration::from_millis(config.poll_interval_ms.max(1)),
            job_timeout: Duration::from_secs(config.job_timeout_secs.max(1)),
            output: None,
            rejections: Vec::new(),
        }
    }

    /// The CSV of `rows`: the output fields, and the external id field last unless it is one
    /// of them.
    fn csv(&self, batch: &Batch, rows: &[usize]) -> Result<(Vec<u8>, Vec<String>), Error> {
        let Some((output, key_at)) = &self.output else {
            return Err(not_open(Path::new(PATH)));
        };
        let columns = output.columns(Path::new(PATH), batch)?;
        let key_col = batch.column(*key_at);
        let id_in_output = output
            .names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(&self.external_id));
        let mut header = output.names.clone();
        if !id_in_output {
            header.push(self.external_id.clone());
        }
        let encode_error =
            |_| Error::Config("Salesforce: a Bulk API upload could not be encoded".into());
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        w.write_record(&header).map_err(encode_error)?;
        for &row in rows {
            let mut record: Vec<&str> = columns
                .iter()
                .map(|c| {
                    let cell = c.get(row);
                    if cell.kind == CellKind::Null {
                        ""
                    } else {
                        cell.text
                    }
                })
                .collect();
            if !id_in_output {
                record.push(key_col.get(row).text);
            }
            w.write_record(&record).map_err(encode_error)?;
        }
        let bytes = w.into_inner().map_err(|_| {
            Error::Config("Salesforce: a Bulk API upload could not be encoded".into())
        })?;
        Ok((bytes, header))
    }

    /// One job for `rows` (keys unique among them): upload, close, wait, and note the rows
    /// Salesforce refused.
    fn job(&mut self, batch: &Batch, rows: &[usize]) -> Result<(), Error> {
        let Some((_, key_at)) = &self.output else {
            return Err(not_open(Path::new(PATH)));
        };
        let key_col = batch.column(*key_at);
        let (csv, _) = self.csv(batch, rows)?;
        let job = self
            .api
            .create_ingest_job(&self.object, &self.external_id)?;
        self.api.upload(&job, &csv)?;
        drop(csv);
        self.api.close(&job)?;
        let started = Instant::now();
        let info = loop {
            let info = self.api.job(&job)?;
            match info.state.as_str() {
                "JobComplete" => break info,
                "Failed" | "Aborted" => {
                    return Err(Error::Config(format!(
                        "Salesforce: the Bulk API job {job} ended {}: no record of it was \
                         written; check `object`, `external_id_field` (an external id field \
                         of the object, or Id) and the field names, and see the job in Setup \
                         > Bulk Data Load Jobs",
                        info.state
                    )));
                }
                _ => {}
            }
            if started.elapsed() > self.job_timeout {
                return Err(Error::Config(format!(
                    "Salesforce: the Bulk API job {job} did not complete in {} s (job_timeout_secs); \
                     it may still finish in Salesforce: run again to write the rest (upserts \
                     are idempotent)",
                    self.job_timeout.as_secs()
                )));
            }
            std::thread::sleep(self.poll);
        };
        if info.failed == Some(0) {
            return Ok(());
        }
        let response = self.api.failed_results(&job)?;
        let fold = |s: &str| s.trim().to_lowercase();
        let mut row_of: HashMap<String, usize> = HashMap::with_capacity(rows.len());
        for &row in rows {
            row_of.insert(fold(key_col.get(row).text), row);
        }
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(response.body.as_slice());
        let unreadable = || {
            Error::Config(format!(
                "Salesforce: the failed rows of Bulk API job {job} are not the CSV expected"
            ))
        };
        let header = reader.headers().map_err(|_| unreadable())?.clone();
        let at = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
        let (Some(error_at), Some(id_at)) = (at("sf__Error"), at(&self.external_id)) else {
            return Err(unreadable());
        };
        let mut unmatched = 0usize;
        let mut refused: Vec<SinkRejection> = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|_| unreadable())?;
            let code = record
                .get(error_at)
                .and_then(|e| e.split(':').next())
                .map(|c| serde_json::Value::String(c.trim().to_string()))
                .and_then(|c| word(&c))
                .unwrap_or_else(|| "UNKNOWN".into());
            match record.get(id_at).and_then(|id| row_of.get(&fold(id))) {
                Some(&row) => refused.push(SinkRejection {
                    row,
                    reason: RejectReason::Refused {
                        field: None,
                        detail: format!("Salesforce refused it ({code})").into(),
                    },
                }),
                None => unmatched += 1,
            }
        }
        if unmatched > 0 {
            return Err(Error::Config(format!(
                "Salesforce: {unmatched} failed rows of Bulk API job {job} name no record that \
                 was sent; the rest of the job was written, and those rows are not known: see \
                 the job in Setup > Bulk Data Load Jobs"
            )));
        }
        self.rejections.extend(refused);
        Ok(())
    }
}

impl Sink for SalesforceSink {
    fn open(&mut self, schema: &Schema) -> Result<(), Error> {
        let output = Output::resolve(Path::new(PATH), schema, self.fields.as_deref())?;
        if let Some(bad) = output
            .names
            .iter()
            .position(|n| !super::soql::is_identifier(n))
        {
            return Err(Error::Config(format!(
                "Salesforce sink: output field number {} is not a Salesforce API name \
                 (letters, digits and underscores, starting with a letter); rename it in the \
                 policy",
                bad + 1
            )));
        }
        let key_at = schema.index_of(&self.key).ok_or_else(|| {
            Error::Config(format!(
                "Salesforce sink: the records have no key field `{}` to match records on",
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
        // Round k holds each key's k-th row, so no job has a key twice.
        let mut rounds: Vec<Vec<usize>> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::with_capacity(batch.len());
        for row in 0..batch.len() {
            let id = key_col.get(row);
            if id.is_null() || id.text.trim().is_empty() {
                self.rejections.push(SinkRejection {
                    row,
                    reason: RejectReason::Refused {
                        field: Some(self.external_id.clone()),
                        detail: "has no value to match records on".into(),
                    },
                });
                continue;
            }
            let n = seen.entry(id.text.trim().to_lowercase()).or_insert(0);
            if rounds.len() <= *n {
                rounds.push(Vec::new());
            }
            rounds[*n].push(row);
            *n += 1;
        }
        for rows in rounds {
            self.job(batch, &rows)?;
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
