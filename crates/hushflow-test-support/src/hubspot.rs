//! A stateful fake of the HubSpot CRM v3 contacts API, written from HubSpot's published
//! documentation (not from its OpenAPI files), for the connector's tests: a plain HTTP/1.1
//! server on a loopback port, a thread per connection, its state behind one lock.
//!
//! It follows what the connector relies on:
//! - `GET /crm/v3/objects/contacts?limit&after&properties`: contacts by id, at most 100 a page,
//!   only the requested properties (plus HubSpot's defaults), `paging.next.after`;
//! - `POST /crm/v3/objects/contacts/search`: `filterGroups` with `GTE`, `GT`, `LT`, `LTE`, `EQ`
//!   on `lastmodifieddate` and `hs_object_id`, `sorts`, `limit` ≤ 200, `after` as an offset, and
//!   the 10,000 cap (an `after` at or past it is a 400);
//! - `POST /crm/v3/objects/contacts/batch/upsert`: at most 100 inputs, matched on `idProperty`
//!   (emails without regard to case), duplicates refused, per-input validation (an email
//!   without `@`, an unknown property) answered with 207 and `errors[]` whose messages quote
//!   the refused value, as HubSpot's do;
//! - `POST /crm/v3/objects/contacts/gdpr-delete`: removes the contact `objectId` names (204),
//!   404 for one it does not hold; search's `EQ` on a string property compares text;
//! - `POST /oauth/v1/token`: the refresh-token grant (form-encoded), access tokens that expire;
//!   401 for a missing, unknown or expired token;
//! - `X-HubSpot-RateLimit-*` headers on every answer, a ten-second window whose overflow is a
//!   429 `TEN_SECONDLY_ROLLING`, and a daily budget whose end is a 429 `DAILY`;
//! - faults to inject on the next request: a 429 with or without `Retry-After`, a 502.
//!
//! Nothing it holds is printed: tokens and contacts are test data, canaries included.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use crate::fake_http::{Answer, FakeServer, Request, answer, form};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A fault to answer the next API request with (the token endpoint is not affected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 of the ten-second policy, with `Retry-After: N` when given.
    RateLimited(Option<u64>),
    /// 429 of the daily policy.
    Daily,
    /// 502 Bad Gateway.
    BadGateway,
}

/// One contact.
#[derive(Debug, Clone)]
pub struct Contact {
    /// Properties by name (values are strings, as in HubSpot).
    pub properties: BTreeMap<String, String>,
    /// `lastmodifieddate`, in milliseconds since the epoch.
    pub modified: u64,
}

/// The fake's state, for tests to set up and inspect.
#[derive(Debug)]
pub struct State {
    /// Contacts by id.
    pub contacts: BTreeMap<u64, Contact>,
    /// Contact ids by lower-cased email (HubSpot's unique key for contacts).
    by_email: HashMap<String, u64>,
    next_id: u64,
    /// Properties that exist (upserting another is refused).
    pub known_properties: HashSet<String>,
    /// Private-app tokens accepted.
    pub static_tokens: HashSet<String>,
    /// The OAuth app: client id, client secret, refresh token.
    pub oauth: Option<(String, String, String)>,
    /// Access tokens issued, with their expiry.
    issued: Vec<(String, Instant)>,
    /// Lifetime of issued access tokens.
    pub expires_in: u64,
    /// Faults for the next API requests, in order.
    pub faults: VecDeque<Fault>,
    /// API requests allowed per window.
    pub window_max: u32,
    /// The window's length (HubSpot's is ten seconds).
    pub window_length: Duration,
    window: (Instant, u32),
    /// API requests allowed in all (the daily budget); `None`: unlimited.
    pub daily_max: Option<u64>,
    /// API requests answered (not the token endpoint).
    pub api_requests: u64,
    /// Requests by kind: `list`, `search`, `upsert`, `token`, and the 401s and 429s.
    pub counts: BTreeMap<&'static str, u64>,
    /// Search request bodies, in order.
    pub searches: Vec<Value>,
    /// List request query strings, in order.
    pub lists: Vec<String>,
    /// Sizes of upsert batches, in order.
    pub upserts: Vec<usize>,
    /// The clock for `lastmodifieddate` of upserted contacts: a fixed value, or the real time.
    pub clock: Option<u64>,
}

impl State {
    fn now(&self) -> u64 {
        self.clock.unwrap_or_else(now_ms)
    }

    /// Adds a contact modified at `modified`, returning its id.
    pub fn insert(&mut self, properties: &[(&str, &str)], modified: u64) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let mut props: BTreeMap<String, String> = properties
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        props.insert("hs_object_id".into(), id.to_string());
        for k in props.keys() {
            self.known_properties.insert(k.clone());
        }
        if let Some(email) = props.get("email") {
            self.by_email.insert(email.to_lowercase(), id);
        }
        self.contacts.insert(
            id,
            Contact {
                properties: props,
                modified,
            },
        );
        id
    }

    /// Marks contact `id` modified at `modified`.
    pub fn touch(&mut self, id: u64, modified: u64) {
        if let Some(c) = self.contacts.get_mut(&id) {
            c.modified = modified;
        }
    }

    /// The access tokens issued so far (for a test to check they are masked).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.issued.iter().map(|(t, _)| t.clone()).collect()
    }

    /// Makes every issued access token expired (the next request with one gets a 401).
    pub fn expire_tokens(&mut self) {
        let past = Instant::now() - Duration::from_secs(1);
        for (_, until) in &mut self.issued {
            *until = past;
        }
    }

    /// The contact whose `property` equals `value` (emails compared without regard to case).
    pub fn find(&self, property: &str, value: &str) -> Option<(u64, &Contact)> {
        if property == "email" {
            let id = *self.by_email.get(&value.to_lowercase())?;
            return self.contacts.get(&id).map(|c| (id, c));
        }
        self.contacts
            .iter()
            .find(|(_, c)| {
                c.properties
                    .get(property)
                    .is_some_and(|v| v.eq_ignore_ascii_case(value))
            })
            .map(|(id, c)| (*id, c))
    }

    fn count(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }
}

/// The running fake; stops accepting when dropped.
pub struct FakeHubSpot {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
    _server: FakeServer,
}

impl FakeHubSpot {
    /// Starts the fake with no contacts, accepting `token` as a private-app token.
    pub fn start(token: &str) -> FakeHubSpot {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut known = HashSet::new();
        for p in [
            "email",
            "firstname",
            "lastname",
            "phone",
            "company",
            "hs_object_id",
        ] {
            known.insert(p.to_string());
        }
        let state = Arc::new(Mutex::new(State {
            contacts: BTreeMap::new(),
            by_email: HashMap::new(),
            next_id: 101,
            known_properties: known,
            static_tokens: [token.to_string()].into_iter().collect(),
            oauth: None,
            issued: Vec::new(),
            expires_in: 1800,
            faults: VecDeque::new(),
            window_max: 100_000,
            window_length: Duration::from_secs(10),
            window: (Instant::now(), 0),
            daily_max: None,
            api_requests: 0,
            counts: BTreeMap::new(),
            searches: Vec::new(),
            lists: Vec::new(),
            upserts: Vec::new(),
            clock: None,
        }));
        let server = FakeServer::start(
            listener,
            state.clone(),
            "application/json;charset=utf-8",
            handle,
        );
        FakeHubSpot {
            url,
            state,
            _server: server,
        }
    }

    /// The state, to set up or inspect.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn handle(s: &mut State, r: &Request) -> Answer {
    if r.method == "POST" && r.path == "/oauth/v1/token" {
        s.count("token");
        return token(s, r);
    }
    s.api_requests += 1;
    let mut a = api(s, r);
    // The rate-limit headers HubSpot sends with every answer of a private app.
    let now = Instant::now();
    if now.duration_since(s.window.0) >= s.window_length {
        s.window = (now, 0);
    }
    let remaining = s.window_max.saturating_sub(s.window.1);
    let daily_remaining = s
        .daily_max
        .map_or(250_000, |d| d.saturating_sub(s.api_requests));
    a.headers.extend([
        ("X-HubSpot-RateLimit-Max".into(), s.window_max.to_string()),
        (
            "X-HubSpot-RateLimit-Remaining".into(),
            remaining.to_string(),
        ),
        (
            "X-HubSpot-RateLimit-Interval-Milliseconds".into(),
            s.window_length.as_millis().to_string(),
        ),
        (
            "X-HubSpot-RateLimit-Daily".into(),
            s.daily_max.unwrap_or(250_000).to_string(),
        ),
        (
            "X-HubSpot-RateLimit-Daily-Remaining".into(),
            daily_remaining.to_string(),
        ),
    ]);
    a
}

fn rate_limited(policy: &str, retry_after: Option<u64>) -> Answer {
    let mut a = answer(
        429,
        json!({
            "status": "error",
            "message": format!("You have reached your {} limit.", policy.to_lowercase()),
            "errorType": "RATE_LIMIT",
            "correlationId": "00000000-0000-4000-8000-000000000429",
            "policyName": policy,
            "groupName": "fake"
        }),
    );
    if let Some(n) = retry_after {
        a.headers.push(("Retry-After".into(), n.to_string()));
    }
    a
}

fn error(status: u16, category: &str, message: &str) -> Answer {
    answer(
        status,
        json!({
            "status": "error",
            "message": message,
            "correlationId": "00000000-0000-4000-8000-000000000000",
            "category": category
        }),
    )
}

fn api(s: &mut State, r: &Request) -> Answer {
    // Authentication first, as HubSpot does.
    let token = r
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    let now = Instant::now();
    let valid = s.static_tokens.contains(token)
        || s.issued.iter().any(|(t, until)| t == token && *until > now);
    if !valid {
        s.count("401");
        let expired = s.issued.iter().any(|(t, _)| t == token);
        return if expired {
            error(
                401,
                "EXPIRED_AUTHENTICATION",
                "The OAuth token used to make this call expired.",
            )
        } else {
            error(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found.",
            )
        };
    }
    if let Some(d) = s.daily_max
        && s.api_requests > d
    {
        s.count("429");
        return rate_limited("DAILY", None);
    }
    if let Some(fault) = s.faults.pop_front() {
        return match fault {
            Fault::RateLimited(after) => {
                s.count("429");
                rate_limited("TEN_SECONDLY_ROLLING", after)
            }
            Fault::Daily => {
                s.count("429");
                rate_limited("DAILY", None)
            }
            Fault::BadGateway => {
                s.count("502");
                error(502, "BAD_GATEWAY", "Bad gateway")
            }
        };
    }
    let now = Instant::now();
    if now.duration_since(s.window.0) >= s.window_length {
        s.window = (now, 0);
    }
    s.window.1 += 1;
    if s.window.1 > s.window_max {
        s.count("429");
        return rate_limited("TEN_SECONDLY_ROLLING", None);
    }
    let body: Value = if r.body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&r.body) {
            Ok(v) => v,
            Err(_) => return error(400, "VALIDATION_ERROR", "Invalid input JSON"),
        }
    };
    match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/crm/v3/objects/contacts") => {
            s.count("list");
            list(s, &r.query)
        }
        ("POST", "/crm/v3/objects/contacts/search") => {
            s.count("search");
            search(s, body)
        }
        ("POST", "/crm/v3/objects/contacts/batch/upsert") => {
            s.count("upsert");
            upsert(s, &body)
        }
        ("POST", "/crm/v3/objects/contacts/gdpr-delete") => {
            s.count("gdpr-delete");
            let id = body
                .get("objectId")
                .and_then(Value::as_str)
                .and_then(|id| id.parse::<u64>().ok());
            match id.and_then(|id| s.contacts.remove(&id)) {
                Some(_) => crate::fake_http::raw(204, "application/json", Vec::new()),
                None => error(404, "OBJECT_NOT_FOUND", "resource not found"),
            }
        }
        _ => error(404, "OBJECT_NOT_FOUND", "not found"),
    }
}

fn view(id: u64, c: &Contact, wanted: &[String]) -> Value {
    let mut props = Map::new();
    // HubSpot adds these to every answer.
    props.insert("hs_object_id".into(), json!(id.to_string()));
    props.insert("lastmodifieddate".into(), json!(iso(c.modified)));
    props.insert("createdate".into(), json!(iso(c.modified)));
    for w in wanted {
        props.insert(
            w.clone(),
            c.properties.get(w).map_or(Value::Null, |v| json!(v)),
        );
    }
    json!({
        "id": id.to_string(),
        "properties": props,
        "createdAt": iso(c.modified),
        "updatedAt": iso(c.modified),
        "archived": false
    })
}

/// An ISO 8601 UTC time with milliseconds, as HubSpot writes them.
fn iso(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

fn list(s: &mut State, query: &str) -> Answer {
    s.lists.push(query.to_string());
    let params = form(query);
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let limit: usize = get("limit").and_then(|l| l.parse().ok()).unwrap_or(10);
    if limit == 0 || limit > 100 {
        return error(400, "VALIDATION_ERROR", "limit must be between 1 and 100");
    }
    let after: u64 = match get("after").map(|a| a.parse()) {
        None => 0,
        Some(Ok(a)) => a,
        Some(Err(_)) => return error(400, "VALIDATION_ERROR", "invalid after"),
    };
    let wanted: Vec<String> = get("properties")
        .map(|p| {
            p.split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let page: Vec<(u64, &Contact)> = s
        .contacts
        .range(after..)
        .take(limit + 1)
        .map(|(id, c)| (*id, c))
        .collect();
    let more = page.len() > limit;
    let results: Vec<Value> = page
        .iter()
        .take(limit)
        .map(|(id, c)| view(*id, c, &wanted))
        .collect();
    let mut body = json!({ "results": results });
    if more {
        let next = page[limit].0.to_string();
        body["paging"] = json!({"next": {"after": next, "link": format!("?after={next}")}});
    }
    answer(200, body)
}

fn number_of(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

fn search(s: &mut State, body: Value) -> Answer {
    s.searches.push(body.clone());
    let limit = body.get("limit").and_then(Value::as_u64).unwrap_or(10) as usize;
    if limit == 0 || limit > 200 {
        return error(400, "VALIDATION_ERROR", "limit must be between 1 and 200");
    }
    let after = body.get("after").and_then(number_of).unwrap_or(0);
    if after >= 10_000 {
        // HubSpot's search pages no further than 10,000 results.
        return error(
            400,
            "VALIDATION_ERROR",
            "There was a problem with the request: paging is limited to 10000 results",
        );
    }
    let wanted: Vec<String> = body
        .get("properties")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let groups = body
        .get("filterGroups")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let matches = |id: u64, c: &Contact| -> bool {
        if groups.is_empty() {
            return true;
        }
        groups.iter().any(|g| {
            g.get("filters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .all(|f| {
                    let prop = f.get("propertyName").and_then(Value::as_str).unwrap_or("");
                    let op = f.get("operator").and_then(Value::as_str).unwrap_or("");
                    // A string property compared with EQ: as text (emails without regard
                    // to case, as HubSpot does).
                    if op == "EQ"
                        && !matches!(prop, "lastmodifieddate" | "hs_object_id")
                        && let Some(v) = f.get("value").and_then(Value::as_str)
                    {
                        return c.properties.get(prop).is_some_and(|h| {
                            if prop == "email" {
                                h.eq_ignore_ascii_case(v)
                            } else {
                                h == v
                            }
                        });
                    }
                    let value = f.get("value").and_then(number_of);
                    let have = match prop {
                        "lastmodifieddate" => Some(c.modified),
                        "hs_object_id" => Some(id),
                        p => c.properties.get(p).and_then(|v| v.parse().ok()),
                    };
                    match (have, value) {
                        (Some(h), Some(v)) => match op {
                            "GTE" => h >= v,
                            "GT" => h > v,
                            "LT" => h < v,
                            "LTE" => h <= v,
                            "EQ" => h == v,
                            _ => false,
                        },
                        _ => false,
                    }
                })
        })
    };
    let mut hits: Vec<(u64, &Contact)> = s
        .contacts
        .iter()
        .filter(|(id, c)| matches(**id, c))
        .map(|(id, c)| (*id, c))
        .collect();
    let sort = body
        .get("sorts")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .cloned();
    if let Some(sort) = sort {
        let prop = sort
            .get("propertyName")
            .and_then(Value::as_str)
            .unwrap_or("");
        let desc = sort.get("direction").and_then(Value::as_str) == Some("DESCENDING");
        match prop {
            "lastmodifieddate" => hits.sort_by_key(|(id, c)| (c.modified, *id)),
            _ => hits.sort_by_key(|(id, _)| *id),
        }
        if desc {
            hits.reverse();
        }
    }
    let total = hits.len();
    let start = after as usize;
    let results: Vec<Value> = hits
        .iter()
        .skip(start)
        .take(limit)
        .map(|(id, c)| view(*id, c, &wanted))
        .collect();
    let mut out = json!({ "total": total, "results": results });
    if start + limit < total {
        let next = (start + limit).to_string();
        out["paging"] = json!({"next": {"after": next, "link": format!("?after={next}")}});
    }
    answer(200, out)
}

fn upsert(s: &mut State, body: &Value) -> Answer {
    let Some(inputs) = body.get("inputs").and_then(Value::as_array) else {
        return error(400, "VALIDATION_ERROR", "inputs is required");
    };
    if inputs.len() > 100 {
        return error(400, "VALIDATION_ERROR", "Batch input limit is 100");
    }
    s.upserts.push(inputs.len());
    let mut seen = HashSet::new();
    for input in inputs {
        let id = input
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_lowercase();
        if !seen.insert(id) {
            return error(
                400,
                "VALIDATION_ERROR",
                "Duplicate IDs found in batch input",
            );
        }
    }
    let now = s.now();
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for input in inputs {
        let id_property = input
            .get("idProperty")
            .and_then(Value::as_str)
            .unwrap_or("");
        let id_value = input.get("id").and_then(Value::as_str).unwrap_or("");
        let props: BTreeMap<String, String> = input
            .get("properties")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), str::to_string),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        // Validation, as HubSpot words it: the message quotes the value.
        let mut problem = None;
        if id_property == "email" && !id_value.contains('@') {
            problem = Some((
                "INVALID_EMAIL",
                "email",
                format!("Property values were not valid: Email address {id_value} is invalid"),
            ));
        }
        for (k, v) in &props {
            if problem.is_none() && !s.known_properties.contains(k) {
                problem = Some((
                    "PROPERTY_DOESNT_EXIST",
                    "properties",
                    format!("Property \"{k}\" does not exist (value {v})"),
                ));
            }
        }
        if let Some((code, at, message)) = problem {
            errors.push(json!({
                "status": "error",
                "category": "VALIDATION_ERROR",
                "subCategory": code,
                "message": message,
                "context": {"ids": [id_value], "propertyName": [at]},
                "errors": [{"message": message, "code": code, "in": at}]
            }));
            continue;
        }
        let existing = s.find(id_property, id_value).map(|(id, _)| id);
        let (id, new) = match existing {
            Some(id) => (id, false),
            None => {
                let id = s.next_id;
                s.next_id += 1;
                s.contacts.insert(
                    id,
                    Contact {
                        properties: [("hs_object_id".to_string(), id.to_string())]
                            .into_iter()
                            .collect(),
                        modified: now,
                    },
                );
                (id, true)
            }
        };
        if id_property == "email" {
            s.by_email.insert(id_value.to_lowercase(), id);
        }
        let contact = s.contacts.get_mut(&id).unwrap();
        contact
            .properties
            .insert(id_property.to_string(), id_value.to_string());
        for (k, v) in props {
            contact.properties.insert(k, v);
        }
        contact.modified = now;
        let mut shown = Map::new();
        for (k, v) in &contact.properties {
            shown.insert(k.clone(), json!(v));
        }
        results.push(json!({
            "id": id.to_string(),
            "properties": shown,
            "createdAt": iso(now),
            "updatedAt": iso(now),
            "archived": false,
            "new": new
        }));
    }
    let status = if errors.is_empty() { 200 } else { 207 };
    let mut out = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": iso(now),
        "completedAt": iso(now)
    });
    if !errors.is_empty() {
        out["numErrors"] = json!(errors.len());
        out["errors"] = Value::Array(errors);
    }
    answer(status, out)
}

fn token(s: &mut State, r: &Request) -> Answer {
    let form = form(&String::from_utf8_lossy(&r.body));
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let ok = match &s.oauth {
        Some((id, secret, refresh)) => {
            get("grant_type") == Some("refresh_token")
                && get("client_id") == Some(id.as_str())
                && get("client_secret") == Some(secret.as_str())
                && get("refresh_token") == Some(refresh.as_str())
        }
        None => false,
    };
    if !ok {
        return answer(
            400,
            json!({"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown refresh token"}),
        );
    }
    let n = s.issued.len() + 1;
    let access = format!("fake-access-{n}-{}", now_ms());
    s.issued.push((
        access.clone(),
        Instant::now() + Duration::from_secs(s.expires_in),
    ));
    let refresh = s.oauth.as_ref().map(|o| o.2.clone()).unwrap_or_default();
    answer(
        200,
        json!({
            "token_type": "bearer",
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": s.expires_in
        }),
    )
}
