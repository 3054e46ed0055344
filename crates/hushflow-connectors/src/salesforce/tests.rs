//! Against a stateful fake Salesforce (`hushflow_test_support::salesforce`) that follows
//! Salesforce's published behaviour, with Stoplight Prism in between as a validating proxy
//! (`tests/openapi/salesforce.yaml`): every request the connector sends and every answer the
//! fake gives is checked against the OpenAPI subset, and a violation fails the test. Without
//! Prism installed the tests talk to the fake directly and say so (scripts/test.sh installs it
//! and requires it).

use super::*;
use crate::testing::drain;
use crate::{Connections, SinkConfig, SinkContext, SourceConfig, SourceContext};
use hushflow_core::{Batch, Cell, Position, RejectReason, Schema, Source};
use hushflow_secrets::SecretValue;
use hushflow_test_support::prism::workspace_root;
use hushflow_test_support::salesforce::{FakeSalesforce, Fault, now_secs};
use hushflow_test_support::service::Service;
use serde_json::json;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Secrets that must never appear in any output: messages, Debug, Prism's log.
const REFRESH: &str = "5Aep861-canary-refresh-token-hushflow-3e9d";
const SECRET: &str = "canary-consumer-secret-hushflow-71c4";
const CLIENT_ID: &str = "3MVG9-hushflow-test-app";

/// The fake, and Prism in front of it when installed.
struct Harness {
    fake: FakeSalesforce,
    prism: Option<Service>,
}

impl Harness {
    fn start(test: &str) -> Harness {
        let fake = FakeSalesforce::start(CLIENT_ID, SECRET, REFRESH);
        let spec = workspace_root().join("tests/openapi/salesforce.yaml");
        let prism = Service::prism(test, &spec, &fake.url);
        let h = Harness { fake, prism };
        // The token endpoint names the org's host: Prism's, so API calls go through it too.
        let base = h.base();
        h.fake.state().instance_url = base;
        h
    }

    /// Where the connector is pointed: Prism, or the fake itself.
    fn base(&self) -> String {
        self.prism
            .as_ref()
            .map_or_else(|| self.fake.url.clone(), |p| p.url())
    }

    fn connections(&self) -> Connections {
        let mut c = Connections::new();
        c.insert("env:SF_REFRESH".into(), SecretValue::new(REFRESH.into()));
        c.insert("env:SF_SECRET".into(), SecretValue::new(SECRET.into()));
        c
    }

    /// Prism's output: it must hold no violation and no secret.
    fn check_log(&self) {
        if let Some(p) = &self.prism {
            let log = p.log();
            assert!(
                !log.contains(REFRESH),
                "the refresh token reached Prism's log"
            );
            assert!(
                !log.contains(SECRET),
                "the client secret reached Prism's log"
            );
            assert!(
                !log.contains("canary-access"),
                "an access token reached Prism's log"
            );
            let broken: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("Request terminated with error") || l.contains("VIOLATIONS"))
                .filter(|l| !l.contains("/__ready"))
                .collect();
            assert!(
                broken.is_empty(),
                "Prism saw traffic that breaks the OpenAPI subset:\n{log}"
            );
            assert!(
                log.contains("Forwarding"),
                "Prism forwarded nothing:\n{log}"
            );
        }
    }

    fn config(&self, extra: serde_json::Value) -> SalesforceSourceConfig {
        let mut v = json!({
            "refresh_token": "env:SF_REFRESH",
            "client_id": CLIENT_ID,
            "client_secret": "env:SF_SECRET",
            "login_url": self.base(),
            "settle_secs": 0,
            "requests_per_second": 1000.0,
            "api_reserve": 0,
        });
        for (k, x) in extra.as_object().cloned().unwrap_or_default() {
            v[k] = x;
        }
        serde_json::from_value(v).unwrap()
    }
}

impl Harness {
    fn sink_config(&self, extra: serde_json::Value) -> SalesforceSinkConfig {
        let mut v = json!({
            "refresh_token": "env:SF_REFRESH",
            "client_id": CLIENT_ID,
            "client_secret": "env:SF_SECRET",
            "login_url": self.base(),
            "requests_per_second": 1000.0,
            "api_reserve": 0,
            "poll_interval_ms": 20,
        });
        for (k, x) in extra.as_object().cloned().unwrap_or_default() {
            v[k] = x;
        }
        serde_json::from_value(v).unwrap()
    }

    fn open_sink(&self, config: &SalesforceSinkConfig) -> Box<dyn hushflow_core::Sink> {
        let connections = self.connections();
        config
            .open(&SinkContext {
                base: Path::new(""),
                key: "Email",
                column_types: Default::default(),
                connections: &connections,
            })
            .unwrap()
    }
}

fn contacts_batch(rows: &[(Option<&str>, Option<&str>)]) -> Batch {
    let schema = Arc::new(Schema::new(names(&["Email", "FirstName"])));
    let mut b = Batch::new(schema);
    for (i, (email, first)) in rows.iter().enumerate() {
        b.push_row(
            i as u64 + 1,
            [
                email.map_or(Cell::NULL, Cell::text),
                first.map_or(Cell::NULL, Cell::text),
            ],
        );
    }
    b
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn open(
    config: &SalesforceSourceConfig,
    connections: &Connections,
    fields: &[String],
    after: Option<&Position>,
) -> Result<Box<dyn Source>, hushflow_core::Error> {
    config.open(&SourceContext {
        base: Path::new(""),
        fields,
        key: "Email",
        after,
        connections,
    })
}

/// The ids (first field) a source yields, and its final position.
fn read_ids(source: &mut dyn Source, max_rows: usize) -> (Vec<String>, Option<Position>) {
    let out = drain(source, max_rows);
    assert!(out.rejected.is_empty());
    let ids = out
        .rows
        .iter()
        .map(|r| r[0].as_ref().map(|c| c.1.clone()).unwrap_or_default())
        .collect();
    (ids, source.position())
}

/// Reads batches until the end or an error: the ids read, and the error if any.
fn read_until_error(source: &mut dyn Source, max_rows: usize) -> (Vec<String>, Option<String>) {
    let mut read = Vec::new();
    loop {
        match source.next_batch(max_rows) {
            Ok(Some(b)) => {
                read.extend((0..b.batch.len()).map(|r| b.batch.column(0).get(r).text.to_string()))
            }
            Ok(None) => return (read, None),
            Err(e) => return (read, Some(e.to_string())),
        }
    }
}

fn seed(fake: &FakeSalesforce, n: usize, modstamp: u64) -> Vec<String> {
    let mut s = fake.state();
    (0..n)
        .map(|i| {
            let email = format!("person{i}@example.com");
            let first = format!("First{i}");
            s.insert(
                &[
                    ("Email", &email),
                    ("FirstName", &first),
                    ("Phone", "+4930901820"),
                ],
                modstamp,
            )
        })
        .collect()
}

#[test]
fn a_full_load_follows_next_records_url_and_selects_only_the_policys_fields() {
    let h = Harness::start("salesforce_full_load");
    let ids = seed(&h.fake, 250, 1_700_000_000);
    h.fake.state().batch_size = 100;
    let config = h.config(json!({}));
    assert!(config.problems().is_empty(), "{:?}", config.problems());
    // Policy names in any case: Salesforce's are case-insensitive.
    let fields = names(&["Id", "email", "FirstName"]);
    let mut source = open(&config, &h.connections(), &fields, None).unwrap();
    let out = drain(source.as_mut(), 1000);
    assert!(out.rejected.is_empty());
    assert_eq!(out.rows.len(), 250);
    assert_eq!(source.position(), None, "a full load keeps no position");
    let got: Vec<String> = out.rows.iter().map(|r| r[0].clone().unwrap().1).collect();
    assert_eq!(got, ids);
    assert_eq!(out.rows[7][1].as_ref().unwrap().1, "person7@example.com");
    assert_eq!(out.rows[7][2].as_ref().unwrap().1, "First7");
    let s = h.fake.state();
    assert_eq!(
        s.queries,
        vec!["SELECT Id, email, FirstName FROM Contact".to_string()],
        "`Phone` is in Salesforce but not in the policy: never asked for"
    );
    assert_eq!(s.count("query"), 1);
    assert_eq!(s.count("more"), 2, "two nextRecordsUrl pages");
    assert_eq!(s.count("token"), 1);
    drop(s);
    h.check_log();
}

#[test]
fn requests_go_to_the_instance_url_the_token_endpoint_names() {
    // Without Prism: the login host and the org's host differ only in how they are written,
    // which the fake sees in the Host header.
    let fake = FakeSalesforce::start(CLIENT_ID, SECRET, REFRESH);
    seed(&fake, 3, 1_700_000_000);
    let port = fake.url.rsplit(':').next().unwrap().to_string();
    fake.state().instance_url = format!("http://localhost:{port}");
    let config: SalesforceSourceConfig = serde_json::from_value(json!({
        "refresh_token": "env:SF_REFRESH",
        "client_id": CLIENT_ID,
        "client_secret": "env:SF_SECRET",
        "login_url": fake.url,
    }))
    .unwrap();
    let h = Harness { fake, prism: None };
    let mut source = open(&config, &h.connections(), &names(&["Id"]), None).unwrap();
    assert_eq!(drain(source.as_mut(), 10).rows.len(), 3);
    let s = h.fake.state();
    assert_eq!(s.api_hosts, vec![format!("localhost:{port}")]);
}

#[test]
fn incremental_reads_everything_first_then_only_the_window_since_the_position() {
    let h = Harness::start("salesforce_incremental");
    let old = now_secs() - 600;
    let ids = seed(&h.fake, 120, old);
    let config = h.config(json!({"incremental": true}));
    let fields = names(&["Id", "Email"]);
    let connections = h.connections();

    let mut first = open(&config, &connections, &fields, None).unwrap();
    let (got, position) = read_ids(first.as_mut(), 50);
    assert_eq!(got.len(), 120);
    let position = position.expect("an incremental source keeps a position");
    assert_eq!(position.key, "", "the window is done");
    let q = h.fake.state().queries[0].clone();
    assert!(
        q.starts_with("SELECT Id, SystemModstamp, Email FROM Contact WHERE SystemModstamp <= "),
        "{q}"
    );
    assert!(q.ends_with("ORDER BY SystemModstamp, Id"), "{q}");

    // Two records change after the run start; one at the start itself is not read again.
    std::thread::sleep(Duration::from_millis(1100));
    let later = now_secs();
    {
        let mut s = h.fake.state();
        s.touch(&ids[90], later);
        s.touch(&ids[3], later);
        let start = q
            .rsplit("<= ")
            .next()
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_string();
        assert_eq!(start, position.cursor);
        s.touch(&ids[5], later - 2);
    }
    let mut second = open(&config, &connections, &fields, Some(&position)).unwrap();
    let (got, next) = read_ids(second.as_mut(), 50);
    // In `SystemModstamp, Id` order.
    assert_eq!(got, vec![ids[3].clone(), ids[90].clone()]);
    let next = next.unwrap();
    assert!(next.cursor > position.cursor, "{next:?}");
    let q = h.fake.state().queries.last().unwrap().clone();
    assert!(
        q.contains(&format!("WHERE SystemModstamp > {} AND", position.cursor)),
        "{q}"
    );
    let queries = h.fake.state().queries.len();

    // Run again within `settle_secs`: the window is empty, nothing is asked, and the position
    // does not move back.
    let settled = h.config(json!({"incremental": true, "settle_secs": 3600}));
    let mut third = open(&settled, &connections, &fields, Some(&next)).unwrap();
    let (got, kept) = read_ids(third.as_mut(), 50);
    assert!(got.is_empty());
    assert_eq!(kept, Some(next));
    assert_eq!(h.fake.state().queries.len(), queries);
    h.check_log();
}

#[test]
fn a_stopped_run_resumes_inside_one_timestamp_without_gaps_or_duplicates() {
    let h = Harness::start("salesforce_resume");
    // Every record modified in the same second (an import): only the id orders them.
    let stamp = now_secs() - 60;
    let ids = seed(&h.fake, 1_000, stamp);
    h.fake.state().batch_size = 200;
    let config = h.config(json!({"incremental": true}));
    let fields = names(&["Id"]);
    let connections = h.connections();
    let from = Position {
        cursor: soql::literal(stamp - 1),
        key: String::new(),
    };

    // Stopped after one batch (a kill).
    let mut first = open(&config, &connections, &fields, Some(&from)).unwrap();
    let batch = first.next_batch(300).unwrap().unwrap();
    let read_first: Vec<String> = (0..batch.batch.len())
        .map(|r| batch.batch.column(0).get(r).text.to_string())
        .collect();
    assert_eq!(read_first.len(), 400, "two pages of 200");
    let mid = first.position().unwrap();
    drop(first);
    assert_eq!(mid.cursor, from.cursor, "the window is not done");
    let parts: Vec<&str> = mid.key.split(' ').collect();
    assert_eq!(parts.len(), 3, "{}", mid.key);
    assert_eq!(parts[2], read_first.last().unwrap());

    // A record already read changes after the window: the next window has it.
    std::thread::sleep(Duration::from_millis(1100));
    h.fake.state().touch(&ids[0], now_secs());
    let mut second = open(&config, &connections, &fields, Some(&mid)).unwrap();
    let (read_second, end) = read_ids(second.as_mut(), 300);
    let q = h.fake.state().queries.last().unwrap().clone();
    assert!(q.contains("AND Id > '"), "{q}");
    let mut all: Vec<String> = read_first.iter().chain(&read_second).cloned().collect();
    assert_eq!(all.len(), ids.len(), "none twice");
    all.sort();
    all.dedup();
    assert_eq!(all.len(), ids.len(), "no gaps");
    let end = end.unwrap();
    assert_eq!(end.key, "");
    let mut third = open(&config, &connections, &fields, Some(&end)).unwrap();
    let (read_third, _) = read_ids(third.as_mut(), 300);
    assert_eq!(read_third, vec![ids[0].clone()]);
    h.check_log();
}

#[test]
fn the_run_stops_before_the_daily_allowance_keeping_a_resumable_position() {
    let h = Harness::start("salesforce_limit");
    let stamp = now_secs() - 60;
    let ids = seed(&h.fake, 1_000, stamp);
    {
        let mut s = h.fake.state();
        s.batch_size = 100;
        // Three requests left before the reserve of 10.
        s.daily_max = s.api_used + 13;
    }
    let config = h.config(json!({"incremental": true, "api_reserve": 10}));
    let connections = h.connections();
    let from = Position {
        cursor: soql::literal(stamp - 1),
        key: String::new(),
    };
    let mut source = open(&config, &connections, &names(&["Id"]), Some(&from)).unwrap();
    let (mut read, e) = read_until_error(source.as_mut(), 100);
    let e = e.expect("the allowance stopped the run");
    assert!(e.contains("daily API allowance"), "{e}");
    assert!(e.contains("3 of 13 used"), "{e}");
    assert!(e.contains("api_reserve"), "{e}");
    assert_eq!(read.len(), 300);
    let s = h.fake.state();
    assert_eq!(s.api_used, 3, "no request past the reserve");
    assert_eq!(s.count("403"), 0);
    drop(s);
    let position = source.position().unwrap();
    drop(source);

    // The allowance frees up: the run goes on after what it read.
    h.fake.state().daily_max = 100_000;
    let mut source = open(&config, &connections, &names(&["Id"]), Some(&position)).unwrap();
    let (rest, _) = read_ids(source.as_mut(), 500);
    read.extend(rest);
    assert_eq!(read.len(), ids.len());
    assert_eq!(read.iter().collect::<HashSet<_>>().len(), ids.len());

    // An org already over its allowance (REQUEST_LIMIT_EXCEEDED) stops the run at once.
    {
        let mut s = h.fake.state();
        s.daily_max = s.api_used;
    }
    let started = Instant::now();
    let mut source = open(&config, &connections, &names(&["Id"]), Some(&from)).unwrap();
    let e = source.next_batch(10).unwrap_err().to_string();
    assert!(e.contains("daily API allowance"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2), "not retried");
    assert_eq!(h.fake.state().count("403"), 1);
    assert_eq!(source.position(), Some(from), "nothing read, nothing lost");
    h.check_log();
}

#[test]
fn unavailable_and_too_many_requests_are_retried() {
    let h = Harness::start("salesforce_retry");
    seed(&h.fake, 150, 1_700_000_000);
    {
        let mut s = h.fake.state();
        s.batch_size = 100;
        s.faults.extend([
            Fault::TooMany(Some(1)),
            Fault::Unavailable,
            Fault::TooMany(None),
        ]);
    }
    let config = h.config(json!({}));
    let started = Instant::now();
    let mut source = open(&config, &h.connections(), &names(&["Id"]), None).unwrap();
    assert_eq!(drain(source.as_mut(), 1000).rows.len(), 150);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    let s = h.fake.state();
    assert_eq!(s.count("429"), 2);
    assert_eq!(s.count("503"), 1);
    assert_eq!(s.count("query"), 1);
    assert_eq!(s.count("more"), 1);
    drop(s);
    h.check_log();
}

#[test]
fn an_expired_session_is_refreshed_and_tokens_are_masked() {
    let h = Harness::start("salesforce_oauth");
    seed(&h.fake, 30, 1_700_000_000);
    let config = h.config(json!({}));
    let connections = h.connections();
    let fields = names(&["Id", "Email"]);
    let mut source = open(&config, &connections, &fields, None).unwrap();
    assert_eq!(drain(source.as_mut(), 100).rows.len(), 30);
    assert_eq!(h.fake.state().count("token"), 1);

    // A session that expires mid-run (timeout, revoked): the client's next request is refused
    // once with a 401, a new token is fetched, and the same request is answered.
    let api = super::client::Salesforce::connect(&config.common(), &connections).unwrap();
    assert_eq!(
        api.query("SELECT Id FROM Contact").unwrap().records.len(),
        30
    );
    assert_eq!(h.fake.state().count("token"), 2);
    h.fake.state().expire_tokens();
    assert_eq!(
        api.query("SELECT Id FROM Contact").unwrap().records.len(),
        30
    );
    let s = h.fake.state();
    assert_eq!(s.count("401"), 1, "one refusal, cured by a refresh");
    assert_eq!(s.count("token"), 3);
    let issued = s.issued_tokens();
    drop(s);
    for token in issued.iter().map(String::as_str).chain([REFRESH, SECRET]) {
        let scrubbed = connections
            .redactor()
            .scrub(&format!("Bearer {token} x"))
            .into_owned();
        assert!(!scrubbed.contains(token), "{scrubbed}");
    }

    // A refresh token the endpoint refuses: a message naming what to check, no secret.
    h.fake.state().oauth.2 = "another".into();
    let mut source = open(&config, &connections, &fields, None).unwrap();
    let e = source.next_batch(10).unwrap_err().to_string();
    assert!(e.contains("refused the refresh token"), "{e}");
    assert!(e.contains("invalid_grant"), "{e}");
    assert!(!e.contains(REFRESH) && !e.contains(SECRET), "{e}");
    h.check_log();
}

#[test]
fn unknown_fields_and_bad_names_are_named_without_salesforces_message() {
    let h = Harness::start("salesforce_errors");
    seed(&h.fake, 3, 1_700_000_000);
    let config = h.config(json!({}));
    let connections = h.connections();
    let mut source = open(&config, &connections, &names(&["Id", "Birthdate__c"]), None).unwrap();
    let e = source.next_batch(10).unwrap_err().to_string();
    assert!(e.contains("400") && e.contains("INVALID_FIELD"), "{e}");
    // Salesforce's message quotes the name (it could quote a value): not shown.
    assert!(!e.contains("No such column"), "{e}");

    // A field that is not an API name never reaches a query.
    let queries = h.fake.state().queries.len();
    let e = match open(
        &config,
        &connections,
        &names(&["Id", "Email FROM User"]),
        None,
    ) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a bad field name was accepted"),
    };
    assert!(e.contains("field number 2"), "{e}");
    assert!(!e.contains("User"), "{e}");
    assert_eq!(h.fake.state().queries.len(), queries);

    // A saved position that is not one this connector wrote.
    let forged = Position {
        cursor: "2024-01-01T00:00:00Z".into(),
        key: "2024-01-02T00:00:00Z 2024-01-01T00:00:00Z x' OR Id != '".into(),
    };
    let incremental = h.config(json!({"incremental": true}));
    let e = match open(&incremental, &connections, &names(&["Id"]), Some(&forged)) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a forged position was accepted"),
    };
    assert!(e.contains("saved position"), "{e}");

    let bad: SalesforceSourceConfig = serde_json::from_value(json!({
        "login_url": "http://login.salesforce.com",
        "refresh_token": "env:R",
        "object": "Contact; DELETE",
        "api_version": "latest",
    }))
    .unwrap();
    let keys: Vec<&str> = bad.problems().iter().map(|p| p.key).collect();
    assert_eq!(
        keys,
        vec![
            "client_secret",
            "client_id",
            "object",
            "api_version",
            "login_url"
        ]
    );
    let jwt: SalesforceSourceConfig = serde_json::from_value(json!({
        "private_key": "env:K", "client_id": "app"
    }))
    .unwrap();
    let keys: Vec<&str> = jwt.problems().iter().map(|p| p.key).collect();
    assert_eq!(keys, vec!["username"]);
    let both: SalesforceSourceConfig = serde_json::from_value(json!({
        "private_key": "env:K", "refresh_token": "env:R", "client_id": "app", "username": "u"
    }))
    .unwrap();
    let keys: Vec<&str> = both.problems().iter().map(|p| p.key).collect();
    assert_eq!(keys, vec!["refresh_token"]);
    assert!(
        serde_json::from_value::<SalesforceSourceConfig>(
            json!({"refresh_token": "env:R", "objet": "Lead"})
        )
        .is_err(),
        "unknown keys are refused"
    );
    assert!(!format!("{config:?}").contains(REFRESH));
    h.check_log();
}

#[test]
fn the_sink_upserts_through_a_bulk_job_and_quarantines_failed_rows_by_status_code_only() {
    let h = Harness::start("salesforce_sink");
    let existing = seed(&h.fake, 1, 1_700_000_000).remove(0);
    let config = h.sink_config(json!({}));
    assert!(SinkConfig::problems(&config).is_empty());
    let mut sink = h.open_sink(&config);
    assert!(sink.rejects_records());
    let emails: Vec<String> = (0..250)
        .map(|i| match i {
            17 | 120 | 249 => format!("not-an-email-{i}"),
            // The seeded contact, written in another case: matched, not created again.
            0 => "PERSON0@example.com".to_string(),
            _ => format!("new{i}@example.com"),
        })
        .collect();
    let mut rows: Vec<(Option<&str>, Option<&str>)> = emails
        .iter()
        .map(|e| (Some(e.as_str()), Some("Ada")))
        .collect();
    rows[60] = (None, Some("Nobody"));
    rows[61].1 = None;
    let batch = contacts_batch(&rows);
    sink.open(batch.schema()).unwrap();
    sink.write_batch(&batch).unwrap();
    let refused = sink.take_rejections();
    let refused_rows: Vec<usize> = refused.iter().map(|r| r.row).collect();
    assert_eq!(refused_rows, vec![17, 60, 120, 249]);
    for r in &refused {
        let text = r.reason.to_string();
        assert!(!text.contains("not-an-email"), "{text}");
        assert!(!text.contains("invalid email address"), "{text}");
        assert!(matches!(r.reason, RejectReason::Refused { .. }), "{text}");
    }
    assert!(
        refused[0]
            .reason
            .to_string()
            .contains("INVALID_EMAIL_ADDRESS"),
        "{}",
        refused[0].reason
    );
    {
        let s = h.fake.state();
        // 245 new, the seeded one updated.
        assert_eq!(s.records.len(), 246);
        assert_eq!(s.records[&existing].fields["FirstName"], "Ada");
        assert_eq!(s.count("create"), 1, "one job for the batch");
        assert_eq!(s.count("upload"), 1);
        assert_eq!(s.count("close"), 1);
        assert!(s.count("poll") >= 2, "polled until JobComplete");
        assert_eq!(s.count("failedResults"), 1);
        let job = s.jobs.values().next().unwrap();
        assert_eq!(job.state, "JobComplete");
        assert_eq!(job.external_id, "Email");
        let new61 = s
            .records
            .values()
            .find(|r| r.fields.get("Email").and_then(|v| v.as_str()) == Some("new61@example.com"))
            .unwrap();
        assert!(
            !new61.fields.contains_key("FirstName"),
            "a null is sent empty: not set"
        );
    }

    // A key twice in one batch: the later row goes in a job of its own, after the first, and
    // wins; nothing is refused as a duplicate.
    let rows = vec![
        (Some("new5@example.com"), Some("Grace")),
        (Some("new6@example.com"), Some("Grace")),
        (Some("NEW5@example.com"), Some("Lin")),
    ];
    let batch = contacts_batch(&rows);
    sink.write_batch(&batch).unwrap();
    assert!(sink.take_rejections().is_empty());
    sink.finish().unwrap();
    let s = h.fake.state();
    assert_eq!(s.count("create"), 3);
    assert_eq!(s.records.len(), 246);
    let name_of = |email: &str| {
        s.records
            .values()
            .find(|r| {
                r.fields
                    .get("Email")
                    .and_then(|v| v.as_str())
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
            .map(|r| r.fields["FirstName"].clone())
    };
    assert_eq!(name_of("new5@example.com"), Some(json!("Lin")));
    assert_eq!(name_of("new6@example.com"), Some(json!("Grace")));
    drop(s);
    h.check_log();
}

#[test]
fn a_failed_bulk_job_stops_the_run_without_quoting_anything() {
    let h = Harness::start("salesforce_sink_failed");
    let config = h.sink_config(json!({}));
    let mut sink = h.open_sink(&config);
    // `Nickname` is not a field of the object: Salesforce fails the whole job.
    let schema = Arc::new(Schema::new(names(&["Email", "Nickname"])));
    let mut batch = Batch::new(schema);
    batch.push_row(
        1,
        [Cell::text("ada@example.com"), Cell::text("canary-nick-7d")],
    );
    sink.open(batch.schema()).unwrap();
    let e = sink.write_batch(&batch).unwrap_err().to_string();
    assert!(e.contains("ended Failed"), "{e}");
    assert!(e.contains("external_id_field"), "{e}");
    assert!(!e.contains("canary-nick") && !e.contains("ada@"), "{e}");
    assert_eq!(h.fake.state().records.len(), 0);

    // A field name that is not an API name never reaches a job.
    let schema = Arc::new(Schema::new(names(&["Email", "First Name"])));
    let mut sink = h.open_sink(&config);
    let e = sink.open(&schema).unwrap_err().to_string();
    assert!(e.contains("field number 2"), "{e}");
    assert_eq!(h.fake.state().count("create"), 1);
    h.check_log();
}

#[test]
fn a_bulk_query_job_is_polled_and_its_csv_results_read_following_the_locator() {
    let h = Harness::start("salesforce_bulk_query");
    let ids = seed(&h.fake, 250, 1_700_000_000);
    let bare = h
        .fake
        .state()
        .insert(&[("Email", "bare@example.com")], 1_700_000_000);
    {
        let mut s = h.fake.state();
        s.batch_size = 100;
        s.polls_to_complete = 3;
    }
    let config = h.config(json!({"api": "bulk", "poll_interval_ms": 10}));
    assert!(config.problems().is_empty(), "{:?}", config.problems());
    let fields = names(&["Id", "Email", "FirstName"]);
    let mut source = open(&config, &h.connections(), &fields, None).unwrap();
    let out = drain(source.as_mut(), 1000);
    assert!(out.rejected.is_empty());
    assert_eq!(out.rows.len(), 251);
    let got: Vec<String> = out.rows.iter().map(|r| r[0].clone().unwrap().1).collect();
    let mut want = ids.clone();
    want.push(bare);
    assert_eq!(got, want);
    assert_eq!(out.rows[7][1].as_ref().unwrap().1, "person7@example.com");
    assert_eq!(out.rows[250][2], None, "an empty CSV value is null");
    let s = h.fake.state();
    assert_eq!(
        s.queries,
        vec!["SELECT Id, Email, FirstName FROM Contact".to_string()]
    );
    assert_eq!(s.count("create_query"), 1);
    assert_eq!(s.count("poll_query"), 3, "polled until JobComplete");
    assert_eq!(
        s.count("results"),
        3,
        "three pages, following Sforce-Locator"
    );
    assert_eq!(s.count("query"), 0, "no REST query");
    drop(s);
    h.check_log();
}

#[test]
fn an_incremental_bulk_read_resumes_after_the_last_record_handed_out() {
    let h = Harness::start("salesforce_bulk_resume");
    let stamp = now_secs() - 60;
    let ids = seed(&h.fake, 500, stamp);
    {
        let mut s = h.fake.state();
        s.batch_size = 100;
        s.polls_to_complete = 1;
    }
    let config = h.config(json!({"api": "bulk", "incremental": true, "poll_interval_ms": 10}));
    let connections = h.connections();
    let from = Position {
        cursor: soql::literal(stamp - 1),
        key: String::new(),
    };
    let mut first = open(&config, &connections, &names(&["Id"]), Some(&from)).unwrap();
    let batch = first.next_batch(150).unwrap().unwrap();
    let read_first: Vec<String> = (0..batch.batch.len())
        .map(|r| batch.batch.column(0).get(r).text.to_string())
        .collect();
    assert_eq!(read_first.len(), 200);
    let mid = first.position().unwrap();
    drop(first);
    assert!(
        mid.key.ends_with(read_first.last().unwrap().as_str()),
        "{}",
        mid.key
    );
    let mut second = open(&config, &connections, &names(&["Id"]), Some(&mid)).unwrap();
    let (read_second, end) = read_ids(second.as_mut(), 150);
    let mut all: Vec<String> = read_first.iter().chain(&read_second).cloned().collect();
    assert_eq!(all.len(), ids.len(), "none twice");
    all.sort();
    all.dedup();
    assert_eq!(all.len(), ids.len(), "no gaps");
    assert_eq!(end.unwrap().key, "");
    assert_eq!(h.fake.state().count("create_query"), 2);
    h.check_log();
}

/// A 2048-bit RSA key made for this test only (`openssl genpkey -algorithm RSA`); it signs
/// nothing anywhere else. Its text is a canary: it must not appear in any output.
const TEST_KEY: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC6TJjInAj8HVZC\n\
Jy7MsDGepzzhOiSjbfeJ4Uaz8/2RaXltFOVNVuDLdBCY4mN64kdiKMEiOv9v7+MT\n\
KPpmZ3k8RdNO2hqZglrYbAhmVtgoitN3a1mzXDK5dd4PPHh/kn2TMAnYerqhK5IL\n\
cWKcDM6vLgWXLYNf5JMQwNc5K04EVjqH4sU2+/7WJ/X8j22hyv8DQlaK5bD/3RRd\n\
UOCSS69yRtUM0jw+KrEzqyMriHBfdtkCJD78j1i11v22J/bLRJ5c0kUYII8mSVI/\n\
+U3xmAYOAXNoEhhzYO/co2cj8mFkX5zHHiDO87n+fIuPHgEpKRi6IZ8FlbbKya3n\n\
XuQFQWN/AgMBAAECggEABUDTrhR4TGOnYwYn063EOG0O0msJTXJ0YHbxv3FJ3SfU\n\
PLcyIBQrEpGbRjRcCcMHsETl7UksmsNw68FkDi8sw/5UDw0nYtzCIwgo1HnubnY7\n\
sEpepSgcZg5kzJkv7Kj80YGxRWFwkcrgu2HfHfdefKIXlkO6SKHxY6+MYhhOguC/\n\
IvChBadEyToKgaECqEVKSWc+8t0R+8hWcgZ4iaXjnsOg+XiSKUnfrWUJO4UJJKAW\n\
XHGxZjLTRQuJP5YZJv2aky8OFnfcgqnnAooQnZy/glfr38CycER70NSnitA95RaQ\n\
iCM3Gp0vBIuj+v4U1nlL7566XiDJE9gRw5v9FlCXQQKBgQD81XHwtMtLjba+gRyv\n\
W14XpnTKDAtGGkcLeqMHi2gik0z5SvYziM3rzfYFez+Z5tKiOu3qvZ8Il4hRXo5K\n\
bJLiX56kSJRW1O2SGw6quupLK1ACiJKfuE+k5eU/E0nzLcfbYhq1Hz6tmoxbUK7q\n\
vztdvixwK54DuXEf5vAW8aoyawKBgQC8odmQCVp5li40weMwPqzTmG9NCNMYxSBB\n\
E95BLwC+GLUvRqHnND/SzB6WaH1i/FmMl40RxHLhUFfGgc2oVxvoNX7PswSamZzn\n\
bM1i+zMdpLYe6Na3xBUo+xxN0YTeg40AvkKxziTAyqKKMxDpdCk9oLbY2GwsVMns\n\
zKhVEbIgPQKBgQCrb7egtZablm3xYu6mYNe+RZovXldOo4bE29UrynVD7IlnCFNE\n\
wmCOoctOEDIiEweEBV1JrGXnl4hRVEI7aL94S8nwL16WOi8UwNADKFaxvZ60+RIi\n\
xwEKGPCHAndEMyivMyhU4+jGImNFj8HrXtvMRqUvMgQlFlsEfL0Tca4sHQKBgH9R\n\
0zJ4TbwhlQCBGeJ3e1m62u0pFqryawnh6jMfEaY9sRW+3ArdZnLW2ZJ15qQIZj0S\n\
EeK7MTtJamWPOYv1d92tNfHlCCd9pb1C4AJ+QQsyIMcOK9ePnySxEXKpB8DVFDg7\n\
M3MmDAKhA0K6oyCgCjIRpzkII0Ns23pczQXWUt+VAoGAF+Z3geFKTjMMTAGc9Hku\n\
R6Hz2MNubvaIBsNVHh3MaHmBL9gqckr8CBukD967cfTGm/UCFNroSFRXh21MNJWS\n\
bwjB2Y3ceSvqPx5ay/0hUEqwHG/vt/TMr4peY98j8tjArAG5XxOQsP1Vh5ZsQhUG\n\
eIe021M2+9Bexgif0askaGc=\n\
-----END PRIVATE KEY-----\n";

#[test]
fn the_jwt_bearer_flow_signs_an_rs256_assertion_and_never_shows_the_key() {
    let h = Harness::start("salesforce_jwt");
    seed(&h.fake, 5, 1_700_000_000);
    let der = ureq::tls::parse_pem(TEST_KEY.as_bytes())
        .find_map(|i| match i {
            Ok(ureq::tls::PemItem::PrivateKey(k)) => Some(k.der().to_vec()),
            _ => None,
        })
        .unwrap();
    let public = ring::signature::KeyPair::public_key(
        &ring::signature::RsaKeyPair::from_pkcs8(&der).unwrap(),
    )
    .as_ref()
    .to_vec();
    let base = h.base();
    h.fake.state().jwt = Some((
        CLIENT_ID.into(),
        "integration@example.com".into(),
        base.clone(),
        public,
    ));
    let config = h.config(json!({
        "refresh_token": null,
        "client_secret": null,
        "private_key": "env:SF_KEY",
        "username": "integration@example.com",
    }));
    assert!(config.problems().is_empty(), "{:?}", config.problems());
    // What `validate` checks of the resolved key: a PEM key passes (its armour has spaces and
    // line breaks, which a token may not hold), and the message never quotes the value.
    let connection = crate::SourceConfig::connection(&config).unwrap();
    assert!(connection.check_url(TEST_KEY, Path::new(".")).is_ok());
    let refused = connection
        .check_url("not a key", Path::new("."))
        .unwrap_err();
    assert!(!refused.contains("not a key"), "{refused}");
    let mut connections = Connections::new();
    connections.insert("env:SF_KEY".into(), SecretValue::new(TEST_KEY.into()));
    let mut source = open(&config, &connections, &names(&["Id"]), None).unwrap();
    assert_eq!(drain(source.as_mut(), 10).rows.len(), 5);
    assert_eq!(h.fake.state().count("token"), 1);
    // An expired session: a new assertion, a new token.
    h.fake.state().expire_tokens();
    let api = super::client::Salesforce::connect(&config.common(), &connections).unwrap();
    assert_eq!(
        api.query("SELECT Id FROM Contact").unwrap().records.len(),
        5
    );
    assert_eq!(h.fake.state().count("token"), 2);

    // Another user: the endpoint refuses the assertion; the message says what to check.
    let other = h.config(json!({
        "refresh_token": null,
        "client_secret": null,
        "private_key": "env:SF_KEY",
        "username": "someone@example.com",
    }));
    let mut source = open(&other, &connections, &names(&["Id"]), None).unwrap();
    let e = source.next_batch(10).unwrap_err().to_string();
    assert!(e.contains("refused the JWT bearer assertion"), "{e}");
    assert!(e.contains("invalid_grant"), "{e}");

    // A key that is not PEM: named, not shown.
    let mut bad = Connections::new();
    bad.insert(
        "env:SF_KEY".into(),
        SecretValue::new(b"canary-not-a-key-5e2a".to_vec()),
    );
    let e = match open(&config, &bad, &names(&["Id"]), None) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a key that is not PEM was accepted"),
    };
    assert!(e.contains("no PEM private key"), "{e}");
    assert!(!e.contains("canary-not-a-key"), "{e}");
    assert!(!format!("{config:?}").contains("BEGIN"));
    if let Some(p) = &h.prism {
        let log = p.log();
        let body = TEST_KEY.lines().nth(1).unwrap();
        assert!(!log.contains(body), "the private key reached Prism's log");
    }
    h.check_log();
}
