//! Reads contacts: a full load pages through `GET /crm/v3/objects/contacts`; an incremental run
//! searches the window of `lastmodifieddate` from the saved position up to the sync start
//! (less `settle_secs`), sorted by `hs_object_id`.
//!
//! Search answers at most 10,000 results a query (`after` stops there), and any number of
//! contacts can share one `lastmodifieddate` (an import touches thousands in the same
//! millisecond), so the window is not cut by time: within it, when `after` nears the cap, the
//! query starts again with `hs_object_id` greater than the last id seen.
//!
//! The position is `cursor` = the window's start (milliseconds since the epoch) and `key` = how
//! far into it the run got:
//! - `""`: the window before `cursor` is done; the next run searches from `cursor`;
//! - `list:AFTER`: a first full load under way, to go on from the list cursor `AFTER`;
//! - `search:UNTIL:ID`: the window `[cursor, UNTIL)` is read up to `hs_object_id` `ID`.
//!
//! A run that stops (a daily limit, a crash) continues from there without gaps; contacts
//! modified while a window was read fall in the next window, so they are read again (an
//! upsert downstream makes that harmless).

use super::client::{Contact, HubSpot, Page};
use super::config::HubSpotSourceConfig;
use hushflow_core::{
    Batch, Cell, CellKind, Error, Position, RejectReason, Rejected, Schema, Source, SourceBatch,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Results a list page asks for (HubSpot's maximum for this endpoint).
const LIST_LIMIT: usize = 100;
/// Results a search page asks for (HubSpot's maximum).
const SEARCH_LIMIT: usize = 200;
/// Search's cap on `after`: a query cannot page past 10,000 results.
pub(super) const SEARCH_CAP: u64 = 10_000;

/// Where the source stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Paging through all contacts; `start` is the window's end for the next run (incremental)
    /// or `None` (a full load every run).
    List {
        after: Option<String>,
        start: Option<u64>,
    },
    /// Searching `[from, until)` for ids above `floor`, at page cursor `after`; then the
    /// window `[until, next)` when there is one.
    Search {
        from: u64,
        until: u64,
        floor: u64,
        after: Option<String>,
        next: Option<u64>,
    },
    Done,
}

/// Where a field's value comes from.
#[derive(Debug, Clone)]
enum From {
    /// The contact's `id` (also its `hs_object_id`).
    Id,
    /// A property.
    Property(String),
}

/// Reads HubSpot contacts, full or incrementally.
pub struct HubSpotSource {
    api: HubSpot,
    schema: Arc<Schema>,
    from: Vec<From>,
    properties: Vec<String>,
    incremental: bool,
    phase: Phase,
    position: Option<Position>,
    rows: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn bad_position() -> Error {
    Error::Config(
        "HubSpot source: the saved position is not one this connector wrote; run with a full \
         refresh to start over"
            .into(),
    )
}

impl HubSpotSource {
    /// Opens the source for `fields` (`id` is the contact's id; every other field is a
    /// property of that name), after `after` when incremental.
    pub(super) fn open(
        api: HubSpot,
        config: &HubSpotSourceConfig,
        fields: &[String],
        after: Option<&Position>,
    ) -> Result<HubSpotSource, Error> {
        let from: Vec<From> = fields
            .iter()
            .map(|f| match f.as_str() {
                "id" | "hs_object_id" => From::Id,
                p => From::Property(p.to_string()),
            })
            .collect();
        let mut properties: Vec<String> = from
            .iter()
            .filter_map(|f| match f {
                From::Property(p) => Some(p.clone()),
                From::Id => None,
            })
            .collect();
        properties.dedup();
        let until = now_ms().saturating_sub(config.settle_secs.saturating_mul(1000));
        let phase = if !config.incremental {
            Phase::List {
                after: None,
                start: None,
            }
        } else {
            match after {
                None => Phase::List {
                    after: None,
                    start: Some(until),
                },
                Some(p) => {
                    let cursor: u64 = p.cursor.parse().map_err(|_| bad_position())?;
                    if p.key.is_empty() {
                        Phase::Search {
                            from: cursor,
                            until,
                            floor: 0,
                            after: None,
                            next: None,
                        }
                    } else if let Some(list_after) = p.key.strip_prefix("list:") {
                        Phase::List {
                            after: Some(list_after.to_string()),
                            start: Some(cursor),
                        }
                    } else if let Some(rest) = p.key.strip_prefix("search:") {
                        let (window_end, floor) = rest.split_once(':').ok_or_else(bad_position)?;
                        let window_end: u64 = window_end.parse().map_err(|_| bad_position())?;
                        let floor: u64 = floor.parse().map_err(|_| bad_position())?;
                        Phase::Search {
                            from: cursor,
                            until: window_end,
                            floor,
                            after: None,
                            // The rest of the changes, up to now, in a window of its own.
                            next: (until > window_end).then_some(until),
                        }
                    } else {
                        return Err(bad_position());
                    }
                }
            }
        };
        Ok(HubSpotSource {
            api,
            schema: Arc::new(Schema::new(fields.to_vec())),
            from,
            properties,
            incremental: config.incremental,
            phase,
            position: after.cloned(),
            rows: 0,
        })
    }

    /// Time spent waiting on the client-side rate limiters so far.
    pub fn rate_limited_for(&self) -> std::time::Duration {
        self.api.waited()
    }

    /// The search body for the current window and floor.
    fn search_body(&self, from: u64, until: u64, floor: u64, after: Option<&str>) -> Value {
        let mut filters = vec![
            json!({"propertyName": "lastmodifieddate", "operator": "GTE", "value": from.to_string()}),
            json!({"propertyName": "lastmodifieddate", "operator": "LT", "value": until.to_string()}),
        ];
        if floor > 0 {
            filters.push(
                json!({"propertyName": "hs_object_id", "operator": "GT", "value": floor.to_string()}),
            );
        }
        let mut body = json!({
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            "properties": self.properties,
            "limit": SEARCH_LIMIT,
        });
        if let Some(after) = after
            && let Some(map) = body.as_object_mut()
        {
            map.insert("after".into(), Value::String(after.to_string()));
        }
        body
    }

    /// Fetches the next page and moves the phase on; `None` when there is nothing more.
    fn next_page(&mut self) -> Result<Option<Vec<Value>>, Error> {
        match self.phase.clone() {
            Phase::Done => Ok(None),
            Phase::List { after, start } => {
                let page = self
                    .api
                    .list(&self.properties, after.as_deref(), LIST_LIMIT)?;
                let next = page.next_after().map(str::to_string);
                self.phase = match &next {
                    Some(a) => Phase::List {
                        after: Some(a.clone()),
                        start,
                    },
                    None => Phase::Done,
                };
                if let Some(start) = start {
                    self.position = Some(Position {
                        cursor: start.to_string(),
                        key: next.map(|a| format!("list:{a}")).unwrap_or_default(),
                    });
                }
                Ok(Some(page.results))
            }
            Phase::Search {
                from,
                until,
                floor,
                after,
                next,
            } => {
                if from >= until {
                    // Nothing can have changed in an empty window (a run again within
                    // `settle_secs`): the position stays where it is.
                    self.phase = match next {
                        Some(next) if next > from => Phase::Search {
                            from,
                            until: next,
                            floor: 0,
                            after: None,
                            next: None,
                        },
                        _ => Phase::Done,
                    };
                    return Ok(Some(Vec::new()));
                }
                let body = self.search_body(from, until, floor, after.as_deref());
                let page: Page = self.api.search(&body)?;
                let last_id = page
                    .results
                    .iter()
                    .filter_map(|r| r.get("id").and_then(Value::as_str))
                    .filter_map(|id| id.parse::<u64>().ok())
                    .max();
                match page.next_after() {
                    Some(next_after) => {
                        let offset: u64 = next_after.parse().unwrap_or(SEARCH_CAP);
                        let last = last_id.unwrap_or(floor);
                        // Near the cap: the next page would be refused; start the query again
                        // above the last id (the results are sorted by it).
                        let (floor, after) = if offset + SEARCH_LIMIT as u64 > SEARCH_CAP {
                            (last, None)
                        } else {
                            (floor, Some(next_after.to_string()))
                        };
                        self.phase = Phase::Search {
                            from,
                            until,
                            floor,
                            after,
                            next,
                        };
                        self.position = Some(Position {
                            cursor: from.to_string(),
                            key: format!("search:{until}:{last}"),
                        });
                    }
                    None => self.window_done(until, next),
                }
                Ok(Some(page.results))
            }
        }
    }

    /// The window before `until` is read: the position moves to it, and the next window (if
    /// any) starts.
    fn window_done(&mut self, until: u64, next: Option<u64>) {
        self.position = Some(Position {
            cursor: until.to_string(),
            key: String::new(),
        });
        self.phase = match next {
            Some(next) => Phase::Search {
                from: until,
                until: next,
                floor: 0,
                after: None,
                next: None,
            },
            None => Phase::Done,
        };
    }

    /// Adds one contact to `batch`, or rejects it (an answer that is not a contact).
    fn push(&mut self, value: Value, batch: &mut Batch, rejected: &mut Vec<Rejected>) {
        self.rows += 1;
        let line = self.rows;
        let contact = match Contact::deserialize(&value) {
            Ok(c) => c,
            Err(_) => {
                rejected.push(Rejected {
                    line,
                    reason: RejectReason::InvalidField {
                        field: "properties".into(),
                        detail: "the contact is not an object with an id and properties".into(),
                    },
                    raw: serde_json::to_vec(&value).unwrap_or_default(),
                });
                return;
            }
        };
        let mut texts: Vec<(CellKind, String)> = Vec::with_capacity(self.from.len());
        for f in &self.from {
            texts.push(match f {
                From::Id => (CellKind::Text, contact.id.clone()),
                From::Property(p) => match contact.properties.get(p) {
                    None | Some(Value::Null) => (CellKind::Null, String::new()),
                    Some(Value::String(s)) => (CellKind::Text, s.clone()),
                    Some(Value::Bool(b)) => (CellKind::Bool, b.to_string()),
                    Some(Value::Number(n)) => (CellKind::Number, n.to_string()),
                    Some(v) => (CellKind::Json, v.to_string()),
                },
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

impl Source for HubSpotSource {
    fn schema(&self) -> Arc<Schema> {
        self.schema.clone()
    }

    /// Pages until `max_rows` contacts (a page may overshoot by less than a page) or the end.
    fn next_batch(&mut self, max_rows: usize) -> Result<Option<SourceBatch>, Error> {
        let mut batch = Batch::new(self.schema.clone());
        let mut rejected = Vec::new();
        let mut any = false;
        while batch.len() + rejected.len() < max_rows.max(1) {
            let Some(results) = self.next_page()? else {
                break;
            };
            any = true;
            for value in results {
                self.push(value, &mut batch, &mut rejected);
            }
        }
        if !any {
            return Ok(None);
        }
        Ok(Some(SourceBatch { batch, rejected }))
    }

    fn position(&self) -> Option<Position> {
        if self.incremental {
            self.position.clone()
        } else {
            None
        }
    }
}
