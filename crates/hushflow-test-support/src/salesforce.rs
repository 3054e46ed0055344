//! A stateful fake of the parts of Salesforce's REST API the connector calls, written from
//! Salesforce's published documentation (REST API Developer Guide: `query`, query locators,
//! `Sforce-Limit-Info`, error lists; OAuth 2.0 refresh-token flow), for the connector's tests:
//! a plain HTTP/1.1 server on a loopback port, a thread per connection, its state behind one
//! lock.
//!
//! It follows what the connector relies on:
//! - `POST /services/oauth2/token`: the refresh-token grant (form-encoded), answering an access
//!   token and the org's `instance_url` (no `expires_in`, as Salesforce); `400 invalid_grant`
//!   for a wrong client or refresh token;
//! - `GET /services/data/vXX.X/query?q=SOQL`: a small SOQL interpreter for what the connector
//!   writes (`SELECT fields FROM object [WHERE …] [ORDER BY …] [LIMIT n]`, `AND`, `OR`,
//!   parentheses, `= != < <= > >=` on dateTime literals and quoted strings), unknown fields
//!   refused with `INVALID_FIELD` (whose message quotes the name, as Salesforce's does), a
//!   malformed query with `MALFORMED_QUERY`; `batch_size` records a page with `done` and
//!   `nextRecordsUrl`;
//! - `GET /services/data/vXX.X/query/LOCATOR-OFFSET`: the next pages;
//! - `DELETE /services/data/vXX.X/sobjects/OBJECT/ID`: removes the record (204), 404 when it
//!   holds none;
//! - `Sforce-Limit-Info: api-usage=N/M` on every API answer, and `403 REQUEST_LIMIT_EXCEEDED`
//!   once the daily allowance is spent;
//! - `401 INVALID_SESSION_ID` for a missing, unknown or expired access token;
//! - faults to inject on the next API requests: a 503, a 429 with or without `Retry-After`.
//!
//! Nothing it holds is printed: tokens and records are test data, canaries included.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use crate::fake_http::{Answer, FakeServer, Request, answer, form, raw};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A fault to answer the next API request with (the token endpoint is not affected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 503 Service Unavailable.
    Unavailable,
    /// 429, with `Retry-After: N` when given.
    TooMany(Option<u64>),
}

/// One record.
#[derive(Debug, Clone)]
pub struct Record {
    /// Fields by API name (as the object spells them); `Id` and `SystemModstamp` are kept apart.
    pub fields: BTreeMap<String, Value>,
    /// `SystemModstamp`, in seconds since the epoch.
    pub modstamp: u64,
}

/// A Bulk API 2.0 ingest job.
#[derive(Debug, Clone)]
pub struct Job {
    /// `Open`, `UploadComplete`, `InProgress`, `JobComplete`, `Failed`, `Aborted`.
    pub state: String,
    /// The object and the external id field it upserts on.
    pub object: String,
    /// The external id field.
    pub external_id: String,
    /// The CSV uploaded (one upload a job).
    pub csv: Option<Vec<u8>>,
    /// Rows refused: `sf__Error`, and the row as sent.
    pub failed: Vec<(String, Vec<String>)>,
    /// The header as sent.
    pub header: Vec<String>,
    /// Rows written.
    pub processed: u64,
    /// Looks at its state since `UploadComplete`.
    polls: u32,
    /// Why it failed, when it did.
    pub error_message: Option<String>,
}

/// A Bulk API 2.0 query job: its results are decided when it is created.
#[derive(Debug, Clone)]
pub struct QueryJob {
    /// `UploadComplete`, `InProgress`, `JobComplete`.
    pub state: String,
    /// The SOQL.
    pub query: String,
    names: Vec<String>,
    records: Vec<Value>,
    polls: u32,
}

/// A query's results being paged through.
#[derive(Debug)]
struct Cursor {
    records: Vec<Value>,
}

/// The fake's state, for tests to set up and inspect.
#[derive(Debug)]
pub struct State {
    /// The object's API name (`Contact`).
    pub object: String,
    /// Records by id.
    pub records: BTreeMap<String, Record>,
    /// The object's fields besides `Id` and `SystemModstamp`, as the object spells them.
    pub fields: Vec<String>,
    next_id: u64,
    /// The connected app: client id, client secret, refresh token.
    pub oauth: (String, String, String),
    /// The JWT bearer flow: the connected app's consumer key, the username, the audience, and
    /// the RSA public key (DER, `RSAPublicKey`) of the certificate the app holds.
    pub jwt: Option<(String, String, String, Vec<u8>)>,
    /// Refresh token rotation (a connected app setting): each refresh answers with a new
    /// refresh token and revokes the one sent.
    pub rotate_refresh: bool,
    /// The host the token endpoint names (Prism's, when it stands in front).
    pub instance_url: String,
    /// Access tokens issued, with their expiry.
    issued: Vec<(String, Instant)>,
    /// How long issued access tokens are taken.
    pub session: Duration,
    /// Records a query page holds (Salesforce's default is 2,000).
    pub batch_size: usize,
    cursors: HashMap<String, Cursor>,
    next_cursor: u64,
    /// Faults for the next API requests, in order.
    pub faults: VecDeque<Fault>,
    /// The org's daily API allowance.
    pub daily_max: u64,
    /// API requests counted against it.
    pub api_used: u64,
    /// Requests by kind: `query`, `more`, `token`, and the statuses of refusals.
    pub counts: BTreeMap<String, u64>,
    /// SOQL received, in order.
    pub queries: Vec<String>,
    /// Bulk API ingest jobs by id.
    pub jobs: BTreeMap<String, Job>,
    next_job: u64,
    /// Bulk API query jobs by id.
    pub query_jobs: BTreeMap<String, QueryJob>,
    /// Looks at a job's state after `UploadComplete` before it is `JobComplete`.
    pub polls_to_complete: u32,
    /// The `Host` header of each API request (not the token endpoint's), in order.
    pub api_hosts: Vec<String>,
}

impl State {
    /// Adds a record modified at `modstamp` (seconds), returning its id (18 characters).
    pub fn insert(&mut self, fields: &[(&str, &str)], modstamp: u64) -> String {
        let id = format!("003FAKE{:011}", self.next_id);
        self.next_id += 1;
        let fields = fields
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        self.records.insert(id.clone(), Record { fields, modstamp });
        id
    }

    /// Marks record `id` modified at `modstamp`.
    pub fn touch(&mut self, id: &str, modstamp: u64) {
        if let Some(r) = self.records.get_mut(id) {
            r.modstamp = modstamp;
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

    /// How many requests of `kind` were answered.
    pub fn count(&self, kind: &str) -> u64 {
        self.counts.get(kind).copied().unwrap_or(0)
    }

    fn bump(&mut self, kind: &str) {
        *self.counts.entry(kind.to_string()).or_default() += 1;
    }

    /// The canonical spelling of a field, if the object has it.
    fn field_name(&self, name: &str) -> Option<String> {
        ["Id", "SystemModstamp"]
            .iter()
            .map(|s| s.to_string())
            .chain(self.fields.iter().cloned())
            .find(|f| f.eq_ignore_ascii_case(name))
    }
}

/// The running fake; stops accepting when dropped.
pub struct FakeSalesforce {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
    _server: FakeServer,
}

impl FakeSalesforce {
    /// Starts the fake with no records, its connected app taking `client_id`, `client_secret`
    /// and `refresh_token`.
    pub fn start(client_id: &str, client_secret: &str, refresh_token: &str) -> FakeSalesforce {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            object: "Contact".into(),
            records: BTreeMap::new(),
            fields: ["Email", "FirstName", "LastName", "Phone"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            next_id: 1,
            oauth: (client_id.into(), client_secret.into(), refresh_token.into()),
            instance_url: url.clone(),
            jwt: None,
            rotate_refresh: false,
            issued: Vec::new(),
            session: Duration::from_secs(7200),
            batch_size: 2000,
            cursors: HashMap::new(),
            next_cursor: 1,
            faults: VecDeque::new(),
            daily_max: 100_000,
            api_used: 0,
            counts: BTreeMap::new(),
            queries: Vec::new(),
            api_hosts: Vec::new(),
            jobs: BTreeMap::new(),
            query_jobs: BTreeMap::new(),
            next_job: 1,
            polls_to_complete: 2,
        }));
        let server = FakeServer::start(
            listener,
            state.clone(),
            "application/json;charset=UTF-8",
            handle,
        );
        FakeSalesforce {
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

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Salesforce's error list: `[{"message", "errorCode"}]`.
fn error(status: u16, code: &str, message: &str) -> Answer {
    answer(status, json!([{ "message": message, "errorCode": code }]))
}

fn handle(s: &mut State, r: &Request) -> Answer {
    if r.method == "POST" && r.path == "/services/oauth2/token" {
        s.bump("token");
        return token(s, r);
    }
    s.api_hosts
        .push(r.header("host").unwrap_or_default().to_string());
    let mut a = api(s, r);
    if a.status != 401 {
        a.headers.push((
            "Sforce-Limit-Info".into(),
            format!("api-usage={}/{}", s.api_used, s.daily_max),
        ));
    }
    if a.status >= 400 {
        s.bump(&a.status.to_string());
    }
    a
}

fn token(s: &mut State, r: &Request) -> Answer {
    let form = form(std::str::from_utf8(&r.body).unwrap_or(""));
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("grant_type") == Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        if let Err(why) = check_assertion(s, get("assertion").unwrap_or("")) {
            return answer(
                400,
                json!({"error": "invalid_grant", "error_description": why}),
            );
        }
        return issue(s);
    }
    let (id, secret, refresh) = &s.oauth;
    if get("grant_type") != Some("refresh_token")
        || get("client_id") != Some(id)
        || get("client_secret") != Some(secret)
    {
        return answer(
            400,
            json!({"error": "invalid_client_id", "error_description": "client identifier invalid"}),
        );
    }
    if get("refresh_token") != Some(refresh) {
        return answer(
            400,
            json!({"error": "invalid_grant", "error_description": "expired access/refresh token"}),
        );
    }
    let mut a = issue(s);
    if s.rotate_refresh {
        let rotated = format!("5Aep861-canary-rotated-{}-{}", s.issued.len(), now_secs());
        s.oauth.2 = rotated.clone();
        if let Value::Object(fields) = &mut a.body {
            fields.insert("refresh_token".into(), Value::String(rotated));
        }
    }
    a
}

/// Checks a JWT bearer assertion as Salesforce does: RS256 over `header.claims` with the app's
/// certificate, `iss`, `sub`, `aud`, and an `exp` in the future.
fn check_assertion(s: &State, assertion: &str) -> Result<(), &'static str> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let Some((client_id, username, audience, public)) = &s.jwt else {
        return Err("no JWT bearer app");
    };
    let mut parts = assertion.split('.');
    let (Some(h), Some(c), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("invalid assertion");
    };
    let header: Value = serde_json::from_slice(&b64.decode(h).map_err(|_| "bad header")?)
        .map_err(|_| "bad header")?;
    if header["alg"] != "RS256" {
        return Err("algorithm not supported");
    }
    let signature = b64.decode(sig).map_err(|_| "bad signature")?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, public)
        .verify(format!("{h}.{c}").as_bytes(), &signature)
        .map_err(|_| "invalid signature")?;
    let claims: Value = serde_json::from_slice(&b64.decode(c).map_err(|_| "bad claims")?)
        .map_err(|_| "bad claims")?;
    if claims["iss"] != client_id.as_str() {
        return Err("invalid client_id");
    }
    if claims["sub"] != username.as_str() {
        return Err("user hasn't approved this consumer");
    }
    if claims["aud"] != audience.as_str() {
        return Err("audience is invalid");
    }
    if claims["exp"].as_u64().is_none_or(|e| e <= now_secs()) {
        return Err("expired authorization code");
    }
    Ok(())
}

/// Issues an access token, with the org's host.
fn issue(s: &mut State) -> Answer {
    let n = s.issued.len() + 1;
    let access = format!("00DFAKE!canary-access-{n}-{}", now_secs());
    s.issued.push((access.clone(), Instant::now() + s.session));
    answer(
        200,
        json!({
            "access_token": access,
            "instance_url": s.instance_url,
            "id": format!("{}/id/00DFAKE0000000001/005FAKE0000000001", s.instance_url),
            "token_type": "Bearer",
            "issued_at": (now_secs() * 1000).to_string(),
            "signature": "ZmFrZQ=="
        }),
    )
}

fn api(s: &mut State, r: &Request) -> Answer {
    let token = r
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    let now = Instant::now();
    if !s.issued.iter().any(|(t, until)| t == token && *until > now) {
        return error(401, "INVALID_SESSION_ID", "Session expired or invalid");
    }
    if s.api_used >= s.daily_max {
        return error(
            403,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        );
    }
    s.api_used += 1;
    if let Some(fault) = s.faults.pop_front() {
        return match fault {
            Fault::Unavailable => error(503, "SERVER_UNAVAILABLE", "Service unavailable"),
            Fault::TooMany(after) => {
                let mut a = error(429, "REQUEST_LIMIT_EXCEEDED", "Too many requests");
                if let Some(after) = after {
                    a.headers.push(("Retry-After".into(), after.to_string()));
                }
                a
            }
        };
    }
    let Some(rest) = r.path.strip_prefix("/services/data/v") else {
        return error(404, "NOT_FOUND", "The requested resource does not exist");
    };
    let (version, resource) = rest.split_once('/').unwrap_or((rest, ""));
    if !version.contains('.') {
        return error(404, "NOT_FOUND", "The requested resource does not exist");
    }
    match (r.method.as_str(), resource) {
        ("GET", "query") => {
            s.bump("query");
            let q = form(&r.query)
                .into_iter()
                .find(|(k, _)| k == "q")
                .map(|(_, v)| v)
                .unwrap_or_default();
            s.queries.push(q.clone());
            query(s, version, &q)
        }
        ("GET", locator) if locator.starts_with("query/") => {
            s.bump("more");
            more(s, version, &locator["query/".len()..])
        }
        ("DELETE", rest) if rest.starts_with("sobjects/") => {
            s.bump("delete");
            let mut parts = rest["sobjects/".len()..].splitn(2, '/');
            let (object, id) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if !object.eq_ignore_ascii_case(&s.object) {
                return error(404, "NOT_FOUND", "The requested resource does not exist");
            }
            match s.records.remove(id) {
                Some(_) => raw(204, "application/json", Vec::new()),
                None => error(404, "ENTITY_IS_DELETED", "entity is deleted"),
            }
        }
        ("POST", "jobs/query") => {
            s.bump("create_query");
            create_query_job(s, version, &r.body)
        }
        ("GET", rest) if rest.starts_with("jobs/query/") => {
            let rest = &rest["jobs/query/".len()..];
            let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
            let id = id.to_string();
            if !s.query_jobs.contains_key(&id) {
                return error(404, "NOT_FOUND", "The requested resource does not exist");
            }
            match tail {
                "" => {
                    s.bump("poll_query");
                    poll_query(s, &id)
                }
                "results" => {
                    s.bump("results");
                    results(s, &id, &r.query)
                }
                _ => error(404, "NOT_FOUND", "The requested resource does not exist"),
            }
        }
        ("POST", "jobs/ingest") => {
            s.bump("create");
            create_job(s, &r.body)
        }
        (method, rest) if rest.starts_with("jobs/ingest/") => {
            let rest = &rest["jobs/ingest/".len()..];
            let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
            let id = id.to_string();
            if !s.jobs.contains_key(&id) {
                return error(404, "NOT_FOUND", "The requested resource does not exist");
            }
            match (method, tail) {
                ("PUT", "batches") => {
                    s.bump("upload");
                    upload(s, &id, r)
                }
                ("PATCH", "") => {
                    s.bump("close");
                    close(s, &id, &r.body)
                }
                ("GET", "") => {
                    s.bump("poll");
                    poll(s, &id)
                }
                ("GET", "failedResults") => {
                    s.bump("failedResults");
                    failed_results(s, &id)
                }
                _ => error(404, "NOT_FOUND", "The requested resource does not exist"),
            }
        }
        _ => error(404, "NOT_FOUND", "The requested resource does not exist"),
    }
}

/// A page of `records` from `offset`, with the locator of the next when there is one.
fn page(s: &mut State, version: &str, locator: &str, offset: usize) -> Answer {
    let Some(cursor) = s.cursors.get(locator) else {
        return error(400, "INVALID_QUERY_LOCATOR", "invalid query locator");
    };
    let total = cursor.records.len();
    let end = (offset + s.batch_size).min(total);
    let records: Vec<Value> = cursor.records[offset.min(total)..end].to_vec();
    let mut body = json!({ "totalSize": total, "done": end >= total, "records": records });
    if end < total {
        body["nextRecordsUrl"] = json!(format!("/services/data/v{version}/query/{locator}-{end}"));
    } else {
        s.cursors.remove(locator);
    }
    answer(200, body)
}

fn more(s: &mut State, version: &str, locator: &str) -> Answer {
    let Some((locator, offset)) = locator.rsplit_once('-') else {
        return error(400, "INVALID_QUERY_LOCATOR", "invalid query locator");
    };
    let Ok(offset) = offset.parse() else {
        return error(400, "INVALID_QUERY_LOCATOR", "invalid query locator");
    };
    let locator = locator.to_string();
    page(s, version, &locator, offset)
}

// ---- Bulk API 2.0 ingest ----

fn job_info(id: &str, j: &Job) -> Value {
    let mut v = json!({
        "id": id,
        "operation": "upsert",
        "object": j.object,
        "externalIdFieldName": j.external_id,
        "state": j.state,
        "contentType": "CSV",
        "lineEnding": "LF",
        "columnDelimiter": "COMMA",
        "apiVersion": 62.0,
        "numberRecordsProcessed": j.processed + j.failed.len() as u64,
        "numberRecordsFailed": j.failed.len(),
    });
    if let Some(m) = &j.error_message {
        v["errorMessage"] = json!(m);
    }
    v
}

fn create_job(s: &mut State, body: &[u8]) -> Answer {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return error(400, "JSON_PARSER_ERROR", "Invalid JSON");
    };
    let get = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    if get("operation") != "upsert" || get("contentType") != "CSV" {
        return error(400, "INVALIDJOB", "Only CSV upserts are faked");
    }
    if !get("object").eq_ignore_ascii_case(&s.object) {
        return error(
            400,
            "INVALIDENTITY",
            "Entity is not supported by the Bulk API",
        );
    }
    let Some(external_id) = s.field_name(&get("externalIdFieldName")) else {
        return error(
            400,
            "INVALIDFIELD",
            &format!("Field name not found : {}", get("externalIdFieldName")),
        );
    };
    let id = format!("750FAKE{:011}", s.next_job);
    s.next_job += 1;
    let job = Job {
        state: "Open".into(),
        object: s.object.clone(),
        external_id,
        csv: None,
        failed: Vec::new(),
        header: Vec::new(),
        processed: 0,
        polls: 0,
        error_message: None,
    };
    let info = job_info(&id, &job);
    s.jobs.insert(id, job);
    answer(200, info)
}

fn upload(s: &mut State, id: &str, r: &Request) -> Answer {
    let job = s.jobs.get_mut(id).unwrap();
    if !r
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/csv"))
    {
        return error(400, "INVALIDCONTENT", "Content type must be text/csv");
    }
    if job.state != "Open" || job.csv.is_some() {
        return error(409, "INVALIDJOBSTATE", "Job is not open for uploads");
    }
    job.csv = Some(r.body.clone());
    raw(201, "text/plain", Vec::new())
}

fn close(s: &mut State, id: &str, body: &[u8]) -> Answer {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return error(400, "JSON_PARSER_ERROR", "Invalid JSON");
    };
    if v.get("state").and_then(Value::as_str) != Some("UploadComplete") {
        return error(400, "INVALIDJOBSTATE", "Only UploadComplete is faked");
    }
    let mut job = s.jobs.get(id).unwrap().clone();
    if job.state != "Open" {
        return error(409, "INVALIDJOBSTATE", "Job is not open");
    }
    job.state = "UploadComplete".into();
    process(s, &mut job);
    let info = job_info(id, &job);
    s.jobs.insert(id.to_string(), job);
    answer(200, info)
}

/// Applies a job's rows as Salesforce would, deciding now what the polls will reveal.
fn process(s: &mut State, job: &mut Job) {
    let rows = parse_csv(job.csv.as_deref().unwrap_or_default());
    let Some((header, rows)) = rows.split_first() else {
        job.error_message = Some("InvalidBatch : no header".into());
        return;
    };
    job.header = header.clone();
    let mut names = Vec::new();
    for h in header {
        match s.field_name(h) {
            Some(n) => names.push(n),
            None => {
                job.error_message = Some(format!("InvalidBatch : Field name not found : {h}"));
                return;
            }
        }
    }
    let Some(key_at) = names.iter().position(|n| *n == job.external_id) else {
        job.error_message = Some("InvalidBatch : the external id field is not a column".into());
        return;
    };
    let mut seen = std::collections::HashSet::new();
    let now = now_secs();
    for row in rows {
        let key = row.get(key_at).cloned().unwrap_or_default();
        if !seen.insert(key.to_lowercase()) {
            job.failed.push((
                format!(
                    "DUPLICATE_EXTERNAL_ID:{}:Duplicate external id specified: {key}:--",
                    job.external_id
                ),
                row.clone(),
            ));
            continue;
        }
        if let Some(i) = names.iter().position(|n| n == "Email")
            && let Some(email) = row.get(i)
            && !email.is_empty()
            && !email.contains('@')
        {
            job.failed.push((
                format!("INVALID_EMAIL_ADDRESS:Email: invalid email address: {email}:--"),
                row.clone(),
            ));
            continue;
        }
        let existing = s.records.iter().find_map(|(id, r)| {
            let have = match job.external_id.as_str() {
                "Id" => id.clone(),
                f => r
                    .fields
                    .get(f)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            };
            have.eq_ignore_ascii_case(&key).then(|| id.clone())
        });
        let id = match existing {
            Some(id) => id,
            None => s.insert(&[], now),
        };
        let record = s.records.get_mut(&id).unwrap();
        record.modstamp = now;
        for (name, value) in names.iter().zip(row) {
            // An empty cell leaves the field as it is (Bulk API nulls only `#N/A`).
            if name != "Id" && !value.is_empty() {
                record
                    .fields
                    .insert(name.clone(), Value::String(value.clone()));
            }
        }
        job.processed += 1;
    }
}

fn poll(s: &mut State, id: &str) -> Answer {
    let polls_to_complete = s.polls_to_complete;
    let job = s.jobs.get_mut(id).unwrap();
    if matches!(job.state.as_str(), "UploadComplete" | "InProgress") {
        job.polls += 1;
        job.state = if job.polls < polls_to_complete {
            "InProgress".into()
        } else if job.error_message.is_some() {
            "Failed".into()
        } else {
            "JobComplete".into()
        };
    }
    let info = job_info(id, job);
    answer(200, info)
}

fn failed_results(s: &mut State, id: &str) -> Answer {
    let job = &s.jobs[id];
    if job.state != "JobComplete" {
        return error(400, "INVALIDJOBSTATE", "Job is not complete");
    }
    let mut out = String::new();
    let quote = |v: &str| format!("\"{}\"", v.replace('"', "\"\""));
    let mut header = vec![quote("sf__Id"), quote("sf__Error")];
    header.extend(job.header.iter().map(|h| quote(h)));
    out.push_str(&header.join(","));
    out.push('\n');
    for (e, row) in &job.failed {
        let mut line = vec![quote(""), quote(e)];
        line.extend(row.iter().map(|v| quote(v)));
        out.push_str(&line.join(","));
        out.push('\n');
    }
    raw(200, "text/csv", out.into_bytes())
}

/// RFC 4180 CSV: quoted fields with doubled quotes, LF or CRLF line ends.
fn parse_csv(bytes: &[u8]) -> Vec<Vec<String>> {
    let text = String::from_utf8_lossy(bytes);
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

// ---- Bulk API 2.0 query ----

fn query_job_info(id: &str, j: &QueryJob) -> Value {
    json!({
        "id": id,
        "operation": "query",
        "object": "Contact",
        "state": j.state,
        "contentType": "CSV",
        "lineEnding": "LF",
        "columnDelimiter": "COMMA",
        "apiVersion": 62.0,
    })
}

fn create_query_job(s: &mut State, version: &str, body: &[u8]) -> Answer {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return error(400, "JSON_PARSER_ERROR", "Invalid JSON");
    };
    if v.get("operation").and_then(Value::as_str) != Some("query") {
        return error(400, "INVALIDJOB", "Only query is faked");
    }
    let q = v
        .get("query")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    s.queries.push(q.clone());
    let (names, records) = match run_soql(s, version, &q) {
        Ok(x) => x,
        Err(a) => return a,
    };
    let id = format!("750FAKEQ{:010}", s.next_job);
    s.next_job += 1;
    let job = QueryJob {
        state: "UploadComplete".into(),
        query: q,
        names,
        records,
        polls: 0,
    };
    let info = query_job_info(&id, &job);
    s.query_jobs.insert(id, job);
    answer(200, info)
}

fn poll_query(s: &mut State, id: &str) -> Answer {
    let polls_to_complete = s.polls_to_complete;
    let job = s.query_jobs.get_mut(id).unwrap();
    if job.state != "JobComplete" {
        job.polls += 1;
        job.state = if job.polls < polls_to_complete {
            "InProgress".into()
        } else {
            "JobComplete".into()
        };
    }
    let info = query_job_info(id, job);
    answer(200, info)
}

/// A page of a query job's results as CSV, `batch_size` rows, with `Sforce-Locator` naming
/// the next (the text `null` after the last).
fn results(s: &mut State, id: &str, query: &str) -> Answer {
    let size = s.batch_size;
    let job = &s.query_jobs[id];
    if job.state != "JobComplete" {
        return error(400, "INVALIDJOBSTATE", "Job is not complete");
    }
    let params = form(query);
    let offset: usize = match params.iter().find(|(k, _)| k == "locator") {
        None => 0,
        Some((_, l)) => match l.strip_prefix("LOC").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => return error(400, "INVALIDLOCATOR", "Invalid locator"),
        },
    };
    let end = (offset + size).min(job.records.len());
    let quote = |v: &str| format!("\"{}\"", v.replace('"', "\"\""));
    let mut out = job
        .names
        .iter()
        .map(|n| quote(n))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for r in &job.records[offset.min(end)..end] {
        let line: Vec<String> = job
            .names
            .iter()
            .map(|n| match r.get(n) {
                Some(Value::String(v)) => quote(v),
                _ => String::new(),
            })
            .collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    let mut a = raw(200, "text/csv", out.into_bytes());
    let next = if end < job.records.len() {
        format!("LOC{end}")
    } else {
        "null".into()
    };
    a.headers.push(("Sforce-Locator".into(), next));
    a.headers.push((
        "Sforce-NumberOfRecords".into(),
        (end - offset.min(end)).to_string(),
    ));
    a
}

// ---- SOQL ----

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Time(u64),
    Op(String),
    Comma,
    Open,
    Close,
}

#[derive(Debug)]
enum Expr {
    Cmp(String, String, Token),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

fn lex(q: &str) -> Result<Vec<Token>, String> {
    let b: Vec<char> = q.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == ',' {
            out.push(Token::Comma);
            i += 1;
        } else if c == '(' {
            out.push(Token::Open);
            i += 1;
        } else if c == ')' {
            out.push(Token::Close);
            i += 1;
        } else if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match b.get(i) {
                    None => return Err("unterminated string".into()),
                    Some('\\') => {
                        s.push(*b.get(i + 1).ok_or("bad escape")?);
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(c) => {
                        s.push(*c);
                        i += 1;
                    }
                }
            }
            out.push(Token::Str(s));
        } else if "=<>!".contains(c) {
            let mut op = c.to_string();
            if b.get(i + 1) == Some(&'=') || (c == '<' && b.get(i + 1) == Some(&'>')) {
                op.push(b[i + 1]);
                i += 1;
            }
            i += 1;
            out.push(Token::Op(op));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || ":-+.".contains(b[i])) {
                i += 1;
            }
            let text: String = b[start..i].iter().collect();
            match parse_time(&text) {
                Some(t) => out.push(Token::Time(t)),
                None => out.push(Token::Word(text)),
            }
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '_' || b[i] == '.') {
                i += 1;
            }
            out.push(Token::Word(b[start..i].iter().collect()));
        } else {
            return Err(format!("unexpected character {c}"));
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }
    fn keyword(&mut self, k: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(k)) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    fn word(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(w)) => Ok(w),
            t => Err(format!("expected a name, found {t:?}")),
        }
    }
    fn expr(&mut self) -> Result<Expr, String> {
        let mut left = self.term()?;
        while self.keyword("OR") {
            left = Expr::Or(Box::new(left), Box::new(self.term()?));
        }
        Ok(left)
    }
    fn term(&mut self) -> Result<Expr, String> {
        let mut left = self.factor()?;
        while self.keyword("AND") {
            left = Expr::And(Box::new(left), Box::new(self.factor()?));
        }
        Ok(left)
    }
    fn factor(&mut self) -> Result<Expr, String> {
        if self.peek() == Some(&Token::Open) {
            self.at += 1;
            let e = self.expr()?;
            if self.next() != Some(Token::Close) {
                return Err("expected )".into());
            }
            return Ok(e);
        }
        let field = self.word()?;
        let op = match self.next() {
            Some(Token::Op(op)) => op,
            t => return Err(format!("expected an operator, found {t:?}")),
        };
        match self.next() {
            Some(v @ (Token::Str(_) | Token::Time(_))) => Ok(Expr::Cmp(field, op, v)),
            t => Err(format!("expected a value, found {t:?}")),
        }
    }
}

struct Select {
    fields: Vec<String>,
    object: String,
    filter: Option<Expr>,
    order: Vec<String>,
    limit: Option<usize>,
}

fn parse(q: &str) -> Result<Select, String> {
    let mut p = Parser {
        tokens: lex(q)?,
        at: 0,
    };
    if !p.keyword("SELECT") {
        return Err("expected SELECT".into());
    }
    let mut fields = vec![p.word()?];
    while p.peek() == Some(&Token::Comma) {
        p.at += 1;
        fields.push(p.word()?);
    }
    if !p.keyword("FROM") {
        return Err("expected FROM".into());
    }
    let object = p.word()?;
    let filter = if p.keyword("WHERE") {
        Some(p.expr()?)
    } else {
        None
    };
    let mut order = Vec::new();
    if p.keyword("ORDER") {
        if !p.keyword("BY") {
            return Err("expected BY".into());
        }
        order.push(p.word()?);
        p.keyword("ASC");
        while p.peek() == Some(&Token::Comma) {
            p.at += 1;
            order.push(p.word()?);
            p.keyword("ASC");
        }
    }
    let limit = if p.keyword("LIMIT") {
        match p.next() {
            Some(Token::Word(n)) => Some(n.parse().map_err(|_| "bad LIMIT")?),
            _ => return Err("bad LIMIT".into()),
        }
    } else {
        None
    };
    if p.at < p.tokens.len() {
        return Err(format!("unexpected {:?}", p.tokens[p.at]));
    }
    Ok(Select {
        fields,
        object,
        filter,
        order,
        limit,
    })
}

/// A record's value of `field` (canonical name) for comparing: a time or a string.
fn value_of(id: &str, r: &Record, field: &str) -> Token {
    match field {
        "Id" => Token::Str(id.to_string()),
        "SystemModstamp" => Token::Time(r.modstamp),
        f => Token::Str(
            r.fields
                .get(f)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        ),
    }
}

fn eval(s: &State, id: &str, r: &Record, e: &Expr) -> Result<bool, (String, String)> {
    Ok(match e {
        Expr::And(a, b) => eval(s, id, r, a)? && eval(s, id, r, b)?,
        Expr::Or(a, b) => eval(s, id, r, a)? || eval(s, id, r, b)?,
        Expr::Cmp(field, op, v) => {
            let name = s.field_name(field).ok_or_else(|| {
                (
                    "INVALID_FIELD".to_string(),
                    format!("No such column '{field}' on entity '{}'", s.object),
                )
            })?;
            let have = value_of(id, r, &name);
            let ord = match (&have, v) {
                (Token::Time(a), Token::Time(b)) => a.cmp(b),
                (Token::Str(a), Token::Str(b)) => a.as_str().cmp(b.as_str()),
                _ => {
                    return Err((
                        "INVALID_FIELD".into(),
                        format!("value of incorrect type for {name}"),
                    ));
                }
            };
            match op.as_str() {
                "=" => ord.is_eq(),
                "!=" | "<>" => !ord.is_eq(),
                "<" => ord.is_lt(),
                "<=" => ord.is_le(),
                ">" => ord.is_gt(),
                ">=" => ord.is_ge(),
                _ => return Err(("MALFORMED_QUERY".into(), format!("unknown operator {op}"))),
            }
        }
    })
}

fn query(s: &mut State, version: &str, q: &str) -> Answer {
    let records = match run_soql(s, version, q) {
        Ok((_, records)) => records,
        Err(a) => return a,
    };
    let locator = format!("01gFAKE{:011}", s.next_cursor);
    s.next_cursor += 1;
    s.cursors.insert(locator.clone(), Cursor { records });
    page(s, version, &locator, 0)
}

/// Runs a query: the fields selected (as the object spells them) and the records, as JSON.
fn run_soql(s: &State, version: &str, q: &str) -> Result<(Vec<String>, Vec<Value>), Answer> {
    let select = match parse(q) {
        Ok(x) => x,
        Err(e) => return Err(error(400, "MALFORMED_QUERY", &e)),
    };
    if !select.object.eq_ignore_ascii_case(&s.object) {
        return Err(error(
            400,
            "INVALID_TYPE",
            &format!("sObject type '{}' is not supported.", select.object),
        ));
    }
    let mut names = Vec::new();
    for f in select.fields.iter().chain(&select.order) {
        match s.field_name(f) {
            Some(n) => names.push(n),
            None => {
                return Err(error(
                    400,
                    "INVALID_FIELD",
                    &format!("No such column '{f}' on entity '{}'", s.object),
                ));
            }
        }
    }
    let order: Vec<String> = names.split_off(select.fields.len());
    let mut hits: Vec<(&String, &Record)> = Vec::new();
    for (id, r) in &s.records {
        let keep = match &select.filter {
            None => true,
            Some(e) => match eval(s, id, r, e) {
                Ok(k) => k,
                Err((code, message)) => return Err(error(400, &code, &message)),
            },
        };
        if keep {
            hits.push((id, r));
        }
    }
    hits.sort_by(|(ia, a), (ib, b)| {
        for f in &order {
            let o = match (value_of(ia, a, f), value_of(ib, b, f)) {
                (Token::Time(x), Token::Time(y)) => x.cmp(&y),
                (Token::Str(x), Token::Str(y)) => x.cmp(&y),
                _ => std::cmp::Ordering::Equal,
            };
            if o.is_ne() {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
    if let Some(n) = select.limit {
        hits.truncate(n);
    }
    let object = s.object.clone();
    let records: Vec<Value> = hits
        .iter()
        .map(|(id, r)| {
            let mut m = Map::new();
            m.insert(
                "attributes".into(),
                json!({"type": object, "url": format!("/services/data/v{version}/sobjects/{object}/{id}")}),
            );
            for name in &names {
                let v = match name.as_str() {
                    "Id" => Value::String(id.to_string()),
                    "SystemModstamp" => Value::String(sf_time(r.modstamp)),
                    f => r.fields.get(f).cloned().unwrap_or(Value::Null),
                };
                m.insert(name.clone(), v);
            }
            Value::Object(m)
        })
        .collect();
    Ok((names, records))
}

/// A dateTime as Salesforce writes it in answers: `2024-05-01T09:30:00.000+0000`.
pub fn sf_time(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
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
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000+0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A SOQL dateTime literal in UTC (`2024-05-01T09:30:00Z`, fractions allowed) as seconds.
fn parse_time(text: &str) -> Option<u64> {
    let t = text.strip_suffix('Z')?;
    let t = t.split('.').next()?;
    let (date, time) = t.split_once('T')?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let h: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if d.len() != 3 || h.len() != 3 {
        return None;
    }
    let (y, m, day) = (d[0], d[1], d[2]);
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h[0] * 3600 + h[1] * 60 + h[2]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_and_soql_parses() {
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(sf_time(1_700_000_000), "2023-11-14T22:13:20.000+0000");
        let s = parse(
            "SELECT Id, Email FROM Contact WHERE (SystemModstamp > 2023-11-14T22:13:20Z OR \
             (SystemModstamp = 2023-11-14T22:13:20Z AND Id > '003')) AND SystemModstamp <= \
             2023-11-14T22:23:20Z ORDER BY SystemModstamp, Id",
        )
        .unwrap();
        assert_eq!(s.fields, vec!["Id", "Email"]);
        assert_eq!(s.order, vec!["SystemModstamp", "Id"]);
        assert!(parse("SELECT Id FROM Contact WHERE Email = x").is_err());
    }
}
