//! Reads one sObject with the REST `query` resource, page by page (`nextRecordsUrl`).
//!
//! A full load asks `SELECT fields FROM object`. An incremental run reads the window of
//! `SystemModstamp` after the saved position up to the run start (less `settle_secs`), ordered
//! by `SystemModstamp, Id`, and its position says how far it got:
//! - `cursor` = the window's start (a UTC time, `2024-05-01T09:30:00Z`; empty before the first
//!   run finished), exclusive;
//! - `key` = `""` when the window is read (the next run starts at `cursor`), or
//!   `UNTIL STAMP ID` when a run stopped inside the window `(cursor, UNTIL]` after the record
//!   `ID` modified at `STAMP`: the next run asks for what sorts after that pair, so a stopped
//!   run (a kill, the daily allowance) goes on without gaps or duplicates.

use super::client::{QueryPage, Salesforce};
use super::config::SalesforceSourceConfig;
use super::soql::{self, Window};
use hushflow_core::{
    Batch, Cell, CellKind, Error, Position, RejectReason, Rejected, Schema, Source, SourceBatch,
};
use serde_json::Value;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// What to ask next.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Next {
    /// Run this SOQL (a REST query, or a Bulk API query job).
    Query(String),
    /// A REST `nextRecordsUrl`.
    More(String),
    /// A Bulk API query job's results, from this locator (`None`: the first page).
    Results(String, Option<String>),
    Done,
}

/// Reads a Salesforce object, full or incrementally.
pub struct SalesforceSource {
    api: Salesforce,
    schema: Arc<Schema>,
    /// Each field's name in lower case (Salesforce's names are case-insensitive, and its
    /// answers spell them as the object defines them).
    wanted: Vec<String>,
    /// The window read, when incremental.
    window: Option<Window>,
    next: Next,
    position: Option<Position>,
    rows: u64,
    api_kind: super::Api,
    poll: std::time::Duration,
    job_timeout: std::time::Duration,
}

fn bad_position() -> Error {
    Error::Config(
        "Salesforce source: the saved position is not one this connector wrote; run with a \
         full refresh to start over"
            .into(),
    )
}

/// Reads a saved position back into a window ending at `until` (or the saved one).
fn window_of(position: Option<&Position>, until: u64) -> Result<Window, Error> {
    let Some(p) = position else {
        return Ok(Window {
            from: None,
            until,
            past: None,
        });
    };
    let from = if p.cursor.is_empty() {
        None
    } else {
        Some(soql::parse_time(&p.cursor).ok_or_else(bad_position)?)
    };
    if p.key.is_empty() {
        // A run again before the settle time has passed: nothing new can be read.
        return Ok(Window {
            from,
            until: until.max(from.unwrap_or(0)),
            past: None,
        });
    }
    let mut parts = p.key.split(' ');
    let (Some(u), Some(stamp), Some(id), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad_position());
    };
    let until = soql::parse_time(u).ok_or_else(bad_position)?;
    let stamp = soql::parse_time(stamp).ok_or_else(bad_position)?;
    if !soql::is_record_id(id) {
        return Err(bad_position());
    }
    Ok(Window {
        from,
        until,
        past: Some((stamp, id.to_string())),
    })
}

impl SalesforceSource {
    /// Opens the source for `fields` (API names; `Id` is the record id), after `after` when
    /// incremental.
    pub(super) fn open(
        api: Salesforce,
        config: &SalesforceSourceConfig,
        fields: &[String],
        after: Option<&Position>,
    ) -> Result<SalesforceSource, Error> {
        if let Some(bad) = fields.iter().position(|f| !soql::is_identifier(f)) {
            return Err(Error::Config(format!(
                "Salesforce source: field number {} is not a Salesforce API name (letters, \
                 digits and underscores, starting with a letter); rename it in the policy",
                bad + 1
            )));
        }
        let wanted: Vec<String> = fields.iter().map(|f| f.to_ascii_lowercase()).collect();
        // Asked for: the policy's fields, and what the position needs.
        let mut select: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let extra: &[&str] = if config.incremental {
            &["Id", "SystemModstamp"]
        } else {
            &["Id"]
        };
        for f in extra
            .iter()
            .map(|s| s.to_string())
            .chain(fields.iter().cloned())
        {
            if seen.insert(f.to_ascii_lowercase()) {
                select.push(f);
            }
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let until = now.saturating_sub(config.settle_secs);
        let (window, next, position) = if config.incremental {
            let window = window_of(after, until)?;
            let position = after.cloned();
            let next = if window.past.is_none() && window.from.is_some_and(|f| f >= window.until) {
                Next::Done
            } else {
                Next::Query(
                    soql::select(&select, &config.object, Some(&window))
                        .map_err(|e| Error::Config(format!("Salesforce source: {e}")))?,
                )
            };
            (Some(window), next, position)
        } else {
            let q = soql::select(&select, &config.object, None)
                .map_err(|e| Error::Config(format!("Salesforce source: {e}")))?;
            (None, Next::Query(q), None)
        };
        Ok(SalesforceSource {
            api,
            schema: Arc::new(Schema::new(fields.to_vec())),
            wanted,
            window,
            next,
            position,
            rows: 0,
            api_kind: config.api,
            poll: std::time::Duration::from_millis(config.poll_interval_ms.max(1)),
            job_timeout: std::time::Duration::from_secs(config.job_timeout_secs.max(1)),
        })
    }

    /// The next page of records, or `None` at the end.
    fn next_page(&mut self) -> Result<Option<QueryPage>, Error> {
        if self.api_kind == super::Api::Bulk {
            return self.next_bulk_page();
        }
        let page = match &self.next {
            Next::Done => return Ok(None),
            Next::Query(q) => self.api.query(q)?,
            Next::More(url) => self.api.query_more(url)?,
            Next::Results(..) => return Ok(None),
        };
        self.next = match (&page.next_records_url, page.done) {
            (Some(url), false) => Next::More(url.clone()),
            _ => Next::Done,
        };
        Ok(Some(page))
    }

    /// The next page of a Bulk API query job's results (creating the job and waiting for it
    /// first), as records like the REST API's: every value text, an empty one null.
    fn next_bulk_page(&mut self) -> Result<Option<QueryPage>, Error> {
        let (job, locator) = match &self.next {
            Next::Done | Next::More(_) => return Ok(None),
            Next::Query(q) => {
                let job = self.api.create_query_job(q)?;
                let started = std::time::Instant::now();
                loop {
                    let info = self.api.query_job(&job)?;
                    match info.state.as_str() {
                        "JobComplete" => break,
                        "Failed" | "Aborted" => {
                            return Err(Error::Config(format!(
                                "Salesforce: the Bulk API query job {job} ended {}; check the \
                                 object and the field names, and see the job in Setup > Bulk \
                                 Data Load Jobs",
                                info.state
                            )));
                        }
                        _ => {}
                    }
                    if started.elapsed() > self.job_timeout {
                        return Err(Error::Config(format!(
                            "Salesforce: the Bulk API query job {job} did not complete in {} s \
                             (job_timeout_secs); run again, or raise it",
                            self.job_timeout.as_secs()
                        )));
                    }
                    std::thread::sleep(self.poll);
                }
                (job, None)
            }
            Next::Results(job, locator) => (job.clone(), locator.clone()),
        };
        let (response, next) = self.api.query_results(&job, locator.as_deref())?;
        self.next = match next {
            Some(l) => Next::Results(job.clone(), Some(l)),
            None => Next::Done,
        };
        let unreadable = || {
            Error::Config(format!(
                "Salesforce: the results of Bulk API query job {job} are not the CSV expected"
            ))
        };
        let mut reader = csv::ReaderBuilder::new().from_reader(response.body.as_slice());
        let header = reader.headers().map_err(|_| unreadable())?.clone();
        let mut records = Vec::new();
        for row in reader.records() {
            let row = row.map_err(|_| unreadable())?;
            let mut m = serde_json::Map::with_capacity(header.len());
            for (name, value) in header.iter().zip(row.iter()) {
                let v = if value.is_empty() {
                    Value::Null
                } else {
                    Value::String(value.to_string())
                };
                m.insert(name.to_string(), v);
            }
            records.push(Value::Object(m));
        }
        Ok(Some(QueryPage {
            records,
            done: self.next == Next::Done,
            next_records_url: None,
        }))
    }

    /// Moves the position past `records` (ordered by `SystemModstamp, Id`), or to the window's
    /// end when the query is done.
    fn advance(&mut self, records: &[Value]) {
        let Some(window) = &self.window else {
            return;
        };
        let cursor = window.from.map(soql::literal).unwrap_or_default();
        if self.next == Next::Done {
            self.position = Some(Position {
                cursor: soql::literal(window.until),
                key: String::new(),
            });
            return;
        }
        let last = records.iter().rev().find_map(|r| {
            let stamp = field(r, "systemmodstamp")?
                .as_str()
                .and_then(soql::parse_time)?;
            let id = field(r, "id")?
                .as_str()
                .filter(|id| soql::is_record_id(id))?;
            Some((stamp, id.to_string()))
        });
        if let Some((stamp, id)) = last {
            self.position = Some(Position {
                cursor,
                key: format!(
                    "{} {} {id}",
                    soql::literal(window.until),
                    soql::literal(stamp)
                ),
            });
        }
    }

    /// Adds one record to `batch`, or rejects it (an answer that is not a record).
    fn push(&mut self, value: &Value, batch: &mut Batch, rejected: &mut Vec<Rejected>) {
        self.rows += 1;
        let line = self.rows;
        let Some(record) = value.as_object() else {
            rejected.push(Rejected {
                line,
                reason: RejectReason::InvalidField {
                    field: "records".into(),
                    detail: "the record is not a JSON object".into(),
                },
                raw: Vec::new(),
            });
            return;
        };
        let mut texts: Vec<(CellKind, String)> = Vec::with_capacity(self.wanted.len());
        for name in &self.wanted {
            let v = record
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v);
            texts.push(match v {
                None | Some(Value::Null) => (CellKind::Null, String::new()),
                Some(Value::String(s)) => (CellKind::Text, s.clone()),
                Some(Value::Bool(b)) => (CellKind::Bool, b.to_string()),
                Some(Value::Number(n)) => (CellKind::Number, n.to_string()),
                Some(v) => (CellKind::Json, v.to_string()),
            });
        }
        batch.push_row(
            line,
            texts.iter().map(|(kind, text)| Cell {
                kind: *kind,
                text: text.as_str(),
            }),
        );
    }
}

/// A record's field, its name compared without regard to case.
fn field<'a>(record: &'a Value, lower: &str) -> Option<&'a Value> {
    record
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(lower))
        .map(|(_, v)| v)
}

impl Source for SalesforceSource {
    fn schema(&self) -> Arc<Schema> {
        self.schema.clone()
    }

    /// Pages until `max_rows` records (a page may overshoot by less than a page) or the end.
    fn next_batch(&mut self, max_rows: usize) -> Result<Option<SourceBatch>, Error> {
        let mut batch = Batch::new(self.schema.clone());
        let mut rejected = Vec::new();
        let mut any = false;
        while batch.len() + rejected.len() < max_rows.max(1) {
            let Some(page) = self.next_page()? else {
                break;
            };
            any = true;
            for value in &page.records {
                self.push(value, &mut batch, &mut rejected);
            }
            self.advance(&page.records);
        }
        if !any {
            return Ok(None);
        }
        Ok(Some(SourceBatch { batch, rejected }))
    }

    fn position(&self) -> Option<Position> {
        if self.window.is_some() {
            self.position.clone()
        } else {
            None
        }
    }
}
