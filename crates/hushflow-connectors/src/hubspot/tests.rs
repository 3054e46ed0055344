//! Against a stateful fake HubSpot (`hushflow_test_support::hubspot`) that follows HubSpot's
//! published behaviour, with Stoplight Prism in between as a validating proxy
//! (`tests/openapi/hubspot.yaml`): every request the connector sends and every answer the fake
//! gives is checked against the OpenAPI subset, and a violation fails the test. Without Prism
//! installed the tests talk to the fake directly and say so (scripts/test.sh installs it and
//! requires it).

use super::*;
use crate::testing::drain;
use crate::{Connections, SinkConfig, SinkContext, SourceConfig, SourceContext};
use hushflow_core::{Batch, Cell, Position, RejectReason, Schema, Source};
use hushflow_secrets::SecretValue;
use hushflow_test_support::hubspot::{FakeHubSpot, Fault, now_ms};
use hushflow_test_support::prism::workspace_root;
use hushflow_test_support::service::Service;
use serde_json::json;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A token that must never appear in any output: messages, Debug, Prism's log.
const CANARY: &str = "pat-na1-canary-7f3c1e0b-hushflow-token";
const TOKEN_REF: &str = "env:HUBSPOT_TOKEN";

/// The fake, and Prism in front of it when installed.
struct Harness {
    fake: FakeHubSpot,
    prism: Option<Service>,
}

impl Harness {
    fn start(test: &str) -> Harness {
        let fake = FakeHubSpot::start(CANARY);
        let spec = workspace_root().join("tests/openapi/hubspot.yaml");
        let prism = Service::prism(test, &spec, &fake.url);
        Harness { fake, prism }
    }

    /// Where the connector is pointed: Prism, or the fake itself.
    fn base(&self) -> String {
        self.prism
            .as_ref()
            .map_or_else(|| self.fake.url.clone(), |p| p.url())
    }

    fn connections(&self) -> Connections {
        let mut c = Connections::new();
        c.insert(
            TOKEN_REF.into(),
            SecretValue::new(CANARY.as_bytes().to_vec()),
        );
        c
    }

    /// Prism's output: it must hold no violation and no secret.
    fn check_log(&self) {
        if let Some(p) = &self.prism {
            let log = p.log();
            assert!(!log.contains(CANARY), "the token reached Prism's log");
            // With `--errors`, a request that breaks the subset ends "Invalid request" (422) and
            // an answer that does ends in "VIOLATIONS" (500), both logged as terminated.
            // (The readiness probe's unknown path is the one error expected.)
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

    fn source_config(&self, extra: serde_json::Value) -> HubSpotSourceConfig {
        let mut v = json!({
            "token": TOKEN_REF,
            "base_url": self.base(),
            "settle_secs": 0,
            "search_requests_per_second": 1000.0,
            "requests_per_second": 1000.0,
        });
        for (k, x) in extra.as_object().cloned().unwrap_or_default() {
            v[k] = x;
        }
        serde_json::from_value(v).unwrap()
    }

    fn sink_config(&self, extra: serde_json::Value) -> HubSpotSinkConfig {
        let mut v = json!({
            "token": TOKEN_REF,
            "base_url": self.base(),
            "requests_per_second": 1000.0,
        });
        for (k, x) in extra.as_object().cloned().unwrap_or_default() {
            v[k] = x;
        }
        serde_json::from_value(v).unwrap()
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn open_source(
    config: &HubSpotSourceConfig,
    connections: &Connections,
    fields: &[String],
    after: Option<&Position>,
) -> Result<Box<dyn Source>, hushflow_core::Error> {
    config.open(&SourceContext {
        base: Path::new(""),
        fields,
        key: "email",
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

fn seed(fake: &FakeHubSpot, n: usize, modified: u64) -> Vec<u64> {
    let mut s = fake.state();
    (0..n)
        .map(|i| {
            let email = format!("person{i}@example.com");
            let first = format!("First{i}");
            s.insert(
                &[
                    ("email", &email),
                    ("firstname", &first),
                    ("phone", "+4930901820"),
                ],
                modified,
            )
        })
        .collect()
}

#[test]
fn a_full_load_pages_on_after_and_asks_only_for_the_policys_properties() {
    let h = Harness::start("hubspot_full_load");
    let ids = seed(&h.fake, 250, 1_700_000_000_000);
    let config = h.source_config(json!({}));
    let fields = names(&["id", "email", "firstname"]);
    let mut source = open_source(&config, &h.connections(), &fields, None).unwrap();
    let out = drain(source.as_mut(), 1000);
    assert_eq!(out.rows.len(), 250);
    assert_eq!(source.position(), None, "a full load keeps no position");
    let got: Vec<String> = out.rows.iter().map(|r| r[0].clone().unwrap().1).collect();
    let want: Vec<String> = ids.iter().map(u64::to_string).collect();
    assert_eq!(got, want);
    assert_eq!(out.rows[7][1].as_ref().unwrap().1, "person7@example.com");
    let state = h.fake.state();
    assert_eq!(state.lists.len(), 3, "100 a page: {:?}", state.lists);
    for q in &state.lists {
        assert!(q.contains("properties=email%2Cfirstname"), "{q}");
        // `phone` is in HubSpot but not in the policy: never asked for.
        assert!(!q.contains("phone"), "{q}");
    }
    drop(state);
    h.check_log();
}

#[test]
fn incremental_reads_list_first_then_only_the_window_since_the_position() {
    let h = Harness::start("hubspot_incremental");
    let old = now_ms() - 60_000;
    let ids = seed(&h.fake, 120, old);
    let config = h.source_config(json!({"incremental": true}));
    let fields = names(&["id", "email"]);
    let connections = h.connections();

    // The first run has no position: it lists everything and ends at its start time.
    let mut first = open_source(&config, &connections, &fields, None).unwrap();
    let (got, position) = read_ids(first.as_mut(), 50);
    assert_eq!(got.len(), 120);
    let position = position.expect("an incremental source keeps a position");
    assert_eq!(position.key, "", "the window is done");
    let start: u64 = position.cursor.parse().unwrap();
    assert!(start >= old);

    // Two contacts change after it; one changed before it is not read again.
    std::thread::sleep(Duration::from_millis(5));
    let later = now_ms();
    {
        let mut s = h.fake.state();
        s.touch(ids[3], later);
        s.touch(ids[90], later);
        s.touch(ids[5], start - 1);
    }
    std::thread::sleep(Duration::from_millis(5));
    let mut second = open_source(&config, &connections, &fields, Some(&position)).unwrap();
    let (got, next) = read_ids(second.as_mut(), 50);
    assert_eq!(got, vec![ids[3].to_string(), ids[90].to_string()]);
    let next = next.unwrap();
    assert!(next.cursor.parse::<u64>().unwrap() > later);
    let state = h.fake.state();
    let search = state.searches.last().unwrap();
    let filters = &search["filterGroups"][0]["filters"];
    assert_eq!(filters[0]["propertyName"], "lastmodifieddate");
    assert_eq!(filters[0]["operator"], "GTE");
    assert_eq!(filters[0]["value"], position.cursor);
    assert_eq!(filters[1]["operator"], "LT");
    assert_eq!(search["sorts"][0]["propertyName"], "hs_object_id");
    assert_eq!(search["properties"], json!(["email"]));
    let searches = state.searches.len();
    drop(state);

    // Run again within `settle_secs`: the window is empty, nothing is asked, and the position
    // does not move back.
    let settled = h.source_config(json!({"incremental": true, "settle_secs": 3600}));
    let mut third = open_source(&settled, &connections, &fields, Some(&next)).unwrap();
    let (got, kept) = read_ids(third.as_mut(), 50);
    assert!(got.is_empty());
    assert_eq!(kept, Some(next));
    assert_eq!(h.fake.state().searches.len(), searches);
    h.check_log();
}

#[test]
fn more_than_ten_thousand_contacts_with_one_timestamp_are_read_once_each() {
    let h = Harness::start("hubspot_search_cap");
    let stamp = now_ms() - 10_000;
    let ids = seed(&h.fake, 23_456, stamp);
    let config = h.source_config(json!({"incremental": true}));
    let fields = names(&["id"]);
    let after = Position {
        cursor: (stamp - 1).to_string(),
        key: String::new(),
    };
    let mut source = open_source(&config, &h.connections(), &fields, Some(&after)).unwrap();
    let (got, position) = read_ids(source.as_mut(), 5000);
    assert_eq!(got.len(), ids.len());
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no contact twice");
    assert_eq!(position.unwrap().key, "");
    let state = h.fake.state();
    // Never past the cap (the fake answers 400 there); restarted above the last id instead.
    for s in &state.searches {
        let after: u64 = s["after"].as_str().map_or(0, |a| a.parse().unwrap());
        assert!(after < 10_000, "{after}");
    }
    let restarts = state
        .searches
        .iter()
        .filter(|s| s["filterGroups"][0]["filters"][2]["propertyName"] == "hs_object_id")
        .count();
    assert!(restarts >= 2, "{restarts}");
    drop(state);
    h.check_log();
}

#[test]
fn a_stopped_run_resumes_from_its_position_without_gaps_or_duplicates() {
    let h = Harness::start("hubspot_resume");
    let stamp = now_ms() - 10_000;
    let ids = seed(&h.fake, 1_000, stamp);
    let config = h.source_config(json!({"incremental": true}));
    let fields = names(&["id"]);
    let connections = h.connections();
    let from = Position {
        cursor: (stamp - 1).to_string(),
        key: String::new(),
    };
    // The first run is stopped after one batch (a kill, a daily limit).
    let mut first = open_source(&config, &connections, &fields, Some(&from)).unwrap();
    let batch = first.next_batch(300).unwrap().unwrap();
    let read_first: Vec<String> = (0..batch.batch.len())
        .map(|r| batch.batch.column(0).get(r).text.to_string())
        .collect();
    let mid = first.position().unwrap();
    drop(first);
    assert!(mid.key.starts_with("search:"), "{}", mid.key);
    assert_eq!(mid.cursor, from.cursor, "the window is not done");

    // A contact already read changes meanwhile: the next window has it again.
    let changed = ids[0];
    h.fake.state().touch(changed, now_ms());
    std::thread::sleep(Duration::from_millis(5));
    let mut second = open_source(&config, &connections, &fields, Some(&mid)).unwrap();
    let (read_second, end) = read_ids(second.as_mut(), 300);
    let mut all: Vec<String> = read_first.iter().chain(&read_second).cloned().collect();
    let changed_text = changed.to_string();
    let twice = all.iter().filter(|id| **id == changed_text).count();
    assert_eq!(
        twice, 2,
        "the changed contact is read again, in the next window"
    );
    all.sort();
    all.dedup();
    assert_eq!(all.len(), ids.len(), "no gaps");
    assert_eq!(read_first.len() + read_second.len(), ids.len() + 1);
    assert_eq!(end.unwrap().key, "");
    h.check_log();
}

#[test]
fn rate_limits_and_server_errors_are_retried_after_retry_after_or_a_backoff() {
    let h = Harness::start("hubspot_retry");
    seed(&h.fake, 150, 1_700_000_000_000);
    h.fake.state().faults.extend([
        Fault::RateLimited(Some(1)),
        Fault::RateLimited(None),
        Fault::BadGateway,
    ]);
    let config = h.source_config(json!({}));
    let fields = names(&["id", "email"]);
    let started = Instant::now();
    let mut source = open_source(&config, &h.connections(), &fields, None).unwrap();
    let out = drain(source.as_mut(), 1000);
    assert_eq!(out.rows.len(), 150);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    let state = h.fake.state();
    assert_eq!(state.counts.get("429"), Some(&2));
    assert_eq!(state.counts.get("502"), Some(&1));
    assert_eq!(state.counts.get("list"), Some(&2));
    drop(state);
    h.check_log();
}

#[test]
fn the_rate_limit_headers_hold_requests_back_until_the_window_rolls_over() {
    let h = Harness::start("hubspot_window");
    seed(&h.fake, 500, 1_700_000_000_000);
    {
        let mut s = h.fake.state();
        s.window_max = 2;
        s.window_length = Duration::from_millis(700);
    }
    // The client-side limiter is wide open: only HubSpot's headers slow it down.
    let config = h.source_config(json!({}));
    let started = Instant::now();
    let mut source = open_source(&config, &h.connections(), &names(&["id"]), None).unwrap();
    assert_eq!(drain(source.as_mut(), 1000).rows.len(), 500);
    // Five pages, two a window: the source waited out two windows instead of meeting a 429.
    // The header's interval, not a ten-second guess.
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1400), "{took:?}");
    assert!(took < Duration::from_secs(8), "{took:?}");
    assert_eq!(h.fake.state().counts.get("429"), None);
    h.check_log();
}

#[test]
fn the_daily_limit_stops_the_run_at_once_with_a_resumable_position() {
    let h = Harness::start("hubspot_daily");
    let stamp = now_ms() - 10_000;
    let ids = seed(&h.fake, 1_000, stamp);
    let config = h.source_config(json!({"incremental": true}));
    let fields = names(&["id"]);
    let connections = h.connections();
    let from = Position {
        cursor: (stamp - 1).to_string(),
        key: String::new(),
    };

    // A 429 of the DAILY policy: no retry, a message that says what to do.
    h.fake.state().faults.push_back(Fault::Daily);
    let started = Instant::now();
    let mut source = open_source(&config, &connections, &fields, Some(&from)).unwrap();
    let e = source.next_batch(500).unwrap_err().to_string();
    assert!(e.contains("daily API limit"), "{e}");
    assert!(e.contains("run it again"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2), "not retried");
    assert_eq!(h.fake.state().counts.get("429"), Some(&1));
    assert_eq!(
        source.position(),
        Some(from.clone()),
        "nothing read, nothing lost"
    );
    drop(source);

    // The headers say the day's budget is spent after two more requests: the source stops
    // before sending a third, with the position of what it handed out.
    {
        let mut s = h.fake.state();
        s.daily_max = Some(s.api_requests + 2);
    }
    let mut source = open_source(&config, &connections, &fields, Some(&from)).unwrap();
    let mut read: Vec<String> = Vec::new();
    let e = loop {
        match source.next_batch(200) {
            Ok(Some(b)) => {
                read.extend((0..b.batch.len()).map(|r| b.batch.column(0).get(r).text.to_string()))
            }
            Ok(None) => panic!("the daily limit did not stop the run"),
            Err(e) => break e.to_string(),
        }
    };
    assert!(e.contains("daily API limit"), "{e}");
    assert_eq!(read.len(), 400);
    assert_eq!(
        h.fake.state().counts.get("429"),
        Some(&1),
        "no request sent past the limit"
    );
    let position = source.position().unwrap();
    drop(source);

    // The next day: the run continues after what it read.
    h.fake.state().daily_max = None;
    let mut source = open_source(&config, &connections, &fields, Some(&position)).unwrap();
    let (rest, _) = read_ids(source.as_mut(), 500);
    read.extend(rest);
    assert_eq!(read.len(), ids.len());
    assert_eq!(read.iter().collect::<HashSet<_>>().len(), ids.len());
    h.check_log();
}

#[test]
fn oauth_tokens_are_fetched_refreshed_after_a_401_and_masked() {
    let h = Harness::start("hubspot_oauth");
    seed(&h.fake, 30, 1_700_000_000_000);
    let client_secret = "canary-client-secret-5d1e";
    let refresh = "canary-refresh-token-9a2b";
    h.fake.state().oauth = Some(("hushflow-app".into(), client_secret.into(), refresh.into()));
    let config = h.source_config(json!({
        "token": null,
        "refresh_token": "env:HUBSPOT_REFRESH",
        "client_id": "hushflow-app",
        "client_secret": "env:HUBSPOT_SECRET",
    }));
    assert!(config.problems().is_empty(), "{:?}", config.problems());
    let mut connections = Connections::new();
    connections.insert(
        "env:HUBSPOT_REFRESH".into(),
        SecretValue::new(refresh.into()),
    );
    connections.insert(
        "env:HUBSPOT_SECRET".into(),
        SecretValue::new(client_secret.into()),
    );
    let fields = names(&["id", "email"]);

    let mut source = open_source(&config, &connections, &fields, None).unwrap();
    let first = source.next_batch(10).unwrap().unwrap();
    assert_eq!(first.batch.len(), 30);
    assert_eq!(h.fake.state().counts.get("token"), Some(&1));
    drop(source);

    // The access token expires early (revoked, clock skew): the 401 is met with a refresh.
    h.fake.state().expire_tokens();
    let mut source = open_source(&config, &connections, &fields, None).unwrap();
    assert_eq!(drain(source.as_mut(), 100).rows.len(), 30);
    let state = h.fake.state();
    assert_eq!(state.counts.get("token"), Some(&2));
    drop(state);

    // The secrets and every token that came from the token endpoint are masked by the
    // run's redactor.
    let issued = h.fake.state().issued_tokens();
    assert_eq!(issued.len(), 2);
    for token in &issued {
        let scrubbed = connections
            .redactor()
            .scrub(&format!("Bearer {token}"))
            .into_owned();
        assert!(!scrubbed.contains(token.as_str()), "{scrubbed}");
    }
    for secret in [client_secret, refresh] {
        let scrubbed = connections
            .redactor()
            .scrub(&format!("x {secret} y"))
            .into_owned();
        assert!(!scrubbed.contains(secret), "{scrubbed}");
    }

    // A refresh token the endpoint refuses: a message naming what to check, no secret.
    h.fake.state().oauth = Some(("hushflow-app".into(), client_secret.into(), "other".into()));
    let mut source = open_source(&config, &connections, &fields, None).unwrap();
    let e = source.next_batch(10).unwrap_err().to_string();
    assert!(e.contains("refused the refresh token"), "{e}");
    assert!(e.contains("BAD_REFRESH_TOKEN"), "{e}");
    assert!(!e.contains(refresh) && !e.contains(client_secret), "{e}");
    h.check_log();
}

#[test]
fn an_access_token_is_refreshed_before_it_expires_without_waiting_for_a_401() {
    let h = Harness::start("hubspot_oauth_ahead");
    let stamp = now_ms() - 10_000;
    seed(&h.fake, 450, stamp);
    {
        let mut s = h.fake.state();
        s.oauth = Some((
            "app".into(),
            "canary-secret-ahead".into(),
            "canary-refresh-ahead".into(),
        ));
        // Two seconds: used for one (half its life, as it is under the five-minute margin).
        s.expires_in = 2;
    }
    let config = h.source_config(json!({
        "token": null,
        "refresh_token": "env:R",
        "client_id": "app",
        "client_secret": "env:S",
        "incremental": true,
    }));
    let mut connections = Connections::new();
    connections.insert(
        "env:R".into(),
        SecretValue::new(b"canary-refresh-ahead".to_vec()),
    );
    connections.insert(
        "env:S".into(),
        SecretValue::new(b"canary-secret-ahead".to_vec()),
    );
    let from = Position {
        cursor: (stamp - 1).to_string(),
        key: String::new(),
    };
    let mut source = open_source(&config, &connections, &names(&["id"]), Some(&from)).unwrap();
    // Search pages of 200: one page a batch, the second after the token's useful life.
    assert_eq!(source.next_batch(200).unwrap().unwrap().batch.len(), 200);
    assert_eq!(h.fake.state().counts.get("token"), Some(&1));
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(source.next_batch(200).unwrap().unwrap().batch.len(), 200);
    let s = h.fake.state();
    assert_eq!(s.counts.get("token"), Some(&2), "refreshed ahead of expiry");
    assert_eq!(s.counts.get("401"), None, "no request was refused");
    drop(s);
    h.check_log();
}

fn contacts_batch(rows: &[(Option<&str>, &str)]) -> Batch {
    let schema = Arc::new(Schema::new(names(&["email", "firstname"])));
    let mut b = Batch::new(schema);
    for (i, (email, first)) in rows.iter().enumerate() {
        b.push_row(
            i as u64 + 1,
            [email.map_or(Cell::NULL, Cell::text), Cell::text(first)],
        );
    }
    b
}

#[test]
fn the_sink_upserts_in_batches_of_100_and_hands_back_refused_contacts_without_values() {
    let h = Harness::start("hubspot_sink");
    let config = h.sink_config(json!({"id_property": "email"}));
    assert!(config.problems().is_empty());
    let connections = h.connections();
    let mut sink = config
        .open(&SinkContext {
            base: Path::new(""),
            key: "email",
            column_types: Default::default(),
            connections: &connections,
        })
        .unwrap();
    assert!(sink.rejects_records());
    let emails: Vec<String> = (0..250)
        .map(|i| match i {
            17 | 120 | 249 => format!("not-an-email-{i}"),
            _ => format!("Person{i}@Example.com"),
        })
        .collect();
    let mut rows: Vec<(Option<&str>, &str)> =
        emails.iter().map(|e| (Some(e.as_str()), "Ada")).collect();
    rows[60] = (None, "Nobody");
    let batch = contacts_batch(&rows);
    sink.open(batch.schema()).unwrap();
    sink.write_batch(&batch).unwrap();
    let refused = sink.take_rejections();
    let refused_rows: Vec<usize> = refused.iter().map(|r| r.row).collect();
    assert_eq!(refused_rows, vec![17, 60, 120, 249]);
    for r in &refused {
        let text = r.reason.to_string();
        assert!(!text.contains("not-an-email"), "{text}");
        assert!(matches!(r.reason, RejectReason::Refused { .. }), "{text}");
    }
    assert!(
        refused[0].reason.to_string().contains("INVALID_EMAIL"),
        "{}",
        refused[0].reason
    );
    assert!(
        refused[0].reason.to_string().contains("`email`"),
        "{}",
        refused[0].reason
    );
    {
        let s = h.fake.state();
        assert_eq!(s.contacts.len(), 246);
        assert!(s.upserts.iter().all(|n| *n <= 100), "{:?}", s.upserts);
        assert!(s.find("email", "person5@example.com").is_some());
    }

    // The same contacts again, one name changed, and a key twice in one batch: updated in
    // place, nothing new, the duplicate in a request of its own.
    let mut rows: Vec<(Option<&str>, &str)> = emails
        .iter()
        .take(10)
        .map(|e| (Some(e.as_str()), "Grace"))
        .collect();
    rows.push((Some("person3@example.com"), "Lin"));
    let batch = contacts_batch(&rows);
    sink.write_batch(&batch).unwrap();
    assert!(sink.take_rejections().is_empty());
    sink.finish().unwrap();
    let s = h.fake.state();
    assert_eq!(s.contacts.len(), 246);
    let (_, c) = s.find("email", "person3@example.com").unwrap();
    assert_eq!(c.properties["firstname"], "Lin");
    let (_, c) = s.find("email", "person4@example.com").unwrap();
    assert_eq!(c.properties["firstname"], "Grace");
    drop(s);
    h.check_log();
}

#[test]
fn a_refused_token_and_config_mistakes_are_named_without_the_secret() {
    let h = Harness::start("hubspot_errors");
    let config = h.source_config(json!({}));
    let mut connections = Connections::new();
    connections.insert(
        TOKEN_REF.into(),
        SecretValue::new(b"pat-na1-wrong-canary-0000".to_vec()),
    );
    let mut source = open_source(&config, &connections, &names(&["id"]), None).unwrap();
    let e = source.next_batch(10).unwrap_err().to_string();
    assert!(e.contains("401") && e.contains("token was refused"), "{e}");
    assert!(!e.contains("wrong-canary"), "{e}");
    assert!(!format!("{config:?}").contains(CANARY));

    let bad: HubSpotSourceConfig = serde_json::from_value(json!({
        "base_url": "http://api.hubapi.com",
        "refresh_token": "env:R",
    }))
    .unwrap();
    let problems: Vec<&str> = bad.problems().iter().map(|p| p.key).collect();
    assert_eq!(problems, vec!["client_id", "client_secret", "base_url"]);
    let sink: HubSpotSinkConfig = serde_json::from_value(json!({
        "token": TOKEN_REF, "batch_size": 101
    }))
    .unwrap();
    assert_eq!(sink.problems()[0].key, "batch_size");
    assert!(
        serde_json::from_value::<HubSpotSinkConfig>(json!({"token": "env:T", "tokne": 1})).is_err(),
        "unknown keys are refused"
    );
    h.check_log();
}
