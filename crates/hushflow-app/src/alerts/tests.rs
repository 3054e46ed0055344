//! Each kind fires exactly once on its scenario and never on a normal series of runs; the
//! deliveries reach real sockets (a TCP syslog receiver, a Unix datagram socket, an HTTP
//! webhook receiver) in the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;

const FP_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const FP_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn every_kind() -> String {
    [
        "detokenize\"\nthreshold = 10\nwindow = \"1h\"",
        "key_export\"",
        "quarantine_export\"",
        "bulk_write\"\nfactor = 3.0\nruns = 5",
        "policy_changed\"",
        "sink_changed\"",
        "erasure\"",
        "key_rotation\"",
        "audit_verify_failed\"",
        "signin_failures\"\nthreshold = 3\nwindow = \"15m\"",
        "permission_denials\"\nthreshold = 3\nwindow = \"15m\"",
    ]
    .iter()
    .map(|k| format!("[[alert]]\nkind = \"{k}\n"))
    .collect()
}

/// The next connection, failing the test after 20 s instead of hanging it.
fn accept_within(listener: &TcpListener) -> std::net::TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                return s;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "nothing was delivered");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn state_with(config: &str) -> (tempfile::TempDir, StateDir) {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(dir.path().join("state")).unwrap();
    let config = AlertConfig::parse(config, Path::new("alerts.toml")).unwrap();
    let state = with_config(state, config, &Redactor::new());
    (dir, state)
}

fn append(state: &StateDir, r: NewRecord) {
    state.audit_log().unwrap().append(r).unwrap();
}

fn record(actor: &str, action: &str, outcome: &str, counts: &[(&str, u64)]) -> NewRecord {
    NewRecord {
        actor: actor.into(),
        action: action.into(),
        pipeline: None,
        policy_fingerprint: None,
        counts: counts.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        outcome: outcome.into(),
        detail: Some("key keyring:canary-secret-name".into()),
    }
}

fn run(pipeline: &str, written: u64, fingerprint: &str, sink: &str) -> NewRecord {
    NewRecord {
        actor: "os-user:ops".into(),
        action: "run".into(),
        pipeline: Some(pipeline.into()),
        policy_fingerprint: Some(fingerprint.into()),
        counts: BTreeMap::from([("read".into(), written), ("written".into(), written)]),
        outcome: "success".into(),
        detail: Some(format!("run 20261203T000000Z; sink {sink}")),
    }
}

/// The `alert` records of the log: (kind word, summary).
fn alerts(state: &StateDir) -> Vec<(String, String)> {
    state
        .audit_log()
        .unwrap()
        .list()
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "alert")
        .map(|r| {
            let d = r.detail.unwrap();
            (d.split(':').next().unwrap().to_string(), d)
        })
        .collect()
}

/// A normal day: steady runs of two pipelines, a few detokenizations under the threshold,
/// a denial or two, sign-ins that fail now and then.
fn normal_day(state: &StateDir) {
    for i in 0..12u64 {
        append(
            state,
            run("crm", 1000 + (i % 3) * 50, FP_A, "csv 0123456789abcdef"),
        );
        append(
            state,
            run("erp", 40 + i % 2, FP_B, "sqlite fedcba9876543210"),
        );
        if i % 4 == 0 {
            append(
                state,
                record("os-user:ana", "detokenize", "ok", &[("tokens", 3)]),
            );
            append(state, record("api-user:bo", "keys.list", "denied", &[]));
            append(state, record("api-user:bo", "sign-in", "refused", &[]));
        }
    }
}

#[test]
fn a_normal_day_raises_nothing() {
    let (_dir, state) = state_with(&every_kind());
    normal_day(&state);
    assert_eq!(alerts(&state), Vec::<(String, String)>::new());
}

#[test]
fn each_kind_fires_exactly_once_on_its_scenario() {
    type Scenario = (&'static str, fn(&StateDir));
    let scenarios: [Scenario; 11] = [
        ("detokenize", |s| {
            // 4 + 4 stays at 8; the third takes it to 12 (> 10): one alert; more stay above.
            for _ in 0..5 {
                append(
                    s,
                    record("os-user:eve", "detokenize", "ok", &[("tokens", 4)]),
                );
            }
            // Another actor's values are counted apart: ana's 9 of the day and 1 make 10.
            append(
                s,
                record("os-user:ana", "detokenize", "ok", &[("tokens", 1)]),
            );
        }),
        ("key_export", |s| {
            append(s, record("os-user:eve", "keys.export", "ok", &[]));
            append(s, record("os-user:eve", "keys.export", "ok", &[]));
        }),
        ("quarantine_export", |s| {
            append(
                s,
                record("api-user:ada", "quarantine.export", "ok", &[("records", 3)]),
            );
            append(
                s,
                record(
                    "api-user:ada",
                    "quarantine.export",
                    "failed",
                    &[("records", 0)],
                ),
            );
        }),
        ("bulk_write", |s| {
            append(s, run("crm", 50_000, FP_A, "csv 0123456789abcdef"));
        }),
        ("policy_changed", |s| {
            append(s, run("crm", 1000, FP_B, "csv 0123456789abcdef"));
            append(s, run("crm", 1000, FP_B, "csv 0123456789abcdef"));
        }),
        ("sink_changed", |s| {
            append(s, run("crm", 1000, FP_A, "csv 9999999999999999"));
            append(s, run("crm", 1000, FP_A, "csv 9999999999999999"));
        }),
        ("erasure", |s| {
            append(s, record("os-user:ops", "erase", "ok", &[("keys", 1)]));
        }),
        ("key_rotation", |s| {
            append(s, record("os-user:ops", "keys.rotate", "ok", &[]));
        }),
        ("audit_verify_failed", |s| {
            append(s, record("os-user:ops", "audit.verify", "broken", &[]));
        }),
        ("signin_failures", |s| {
            for _ in 0..6 {
                append(s, record("api-user:mallory", "sign-in", "refused", &[]));
            }
        }),
        ("permission_denials", |s| {
            for _ in 0..6 {
                append(
                    s,
                    record("api-user:mallory", "quarantine.export", "denied", &[]),
                );
            }
        }),
    ];
    for (kind, scenario) in scenarios {
        let (_dir, state) = state_with(&every_kind());
        normal_day(&state);
        scenario(&state);
        let raised = alerts(&state);
        assert_eq!(
            raised.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            [kind],
            "{kind}: {raised:?}"
        );
        // Alert texts name actors, pipelines and counts, never a record's detail text.
        assert!(!raised[0].1.contains("canary"), "{raised:?}");
        // The alert's own record is attributed to the rules and points at its trigger.
        let log = state.audit_log().unwrap().list().unwrap();
        let alert = log.iter().rfind(|r| r.action == "alert").unwrap();
        assert_eq!(alert.actor, ALERT_ACTOR);
        assert_eq!(alert.outcome, "raised");
        assert!(alert.counts["record"] < alert.seq);
        assert!(state.audit_log().unwrap().verify().unwrap().is_intact());
    }
}

#[test]
fn bad_files_are_refused_naming_the_key() {
    for (text, says) in [
        ("[[alert]]\nkind = \"nonsense\"\n", "unknown variant"),
        (
            "[[alert]]\nkind = \"detokenize\"\nwindow = \"soon\"\n",
            "window",
        ),
        ("[[alert]]\nkind = \"bulk_write\"\nfactor = 0.0\n", "factor"),
        (
            "[delivery.syslog]\naddress = \"udp:1.2.3.4:514\"\n",
            "tcp:HOST:PORT",
        ),
        (
            "[delivery.webhook]\nurl = \"https://hooks.example/x\"\n",
            "secret reference",
        ),
        (
            "[[alert]]\nkind = \"erasure\"\nthreshhold = 3\n",
            "unknown field",
        ),
    ] {
        let e = AlertConfig::parse(text, Path::new("alerts.toml")).unwrap_err();
        assert!(
            e.message.contains(says) && e.message.contains("alerts.toml"),
            "{text}: {}",
            e.message
        );
    }
}

#[test]
fn deliveries_reach_syslog_over_tcp_and_a_unix_socket_and_the_webhook() {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let http = TcpListener::bind("127.0.0.1:0").unwrap();
    let sockets = tempfile::tempdir().unwrap();
    let unix_path = sockets.path().join("log.sock");
    let unix = std::os::unix::net::UnixDatagram::bind(&unix_path).unwrap();
    let hook_url = format!(
        "http://127.0.0.1:{}/hook",
        http.local_addr().unwrap().port()
    );
    let config = format!(
        "[[alert]]\nkind = \"key_export\"\n\n[delivery.syslog]\naddress = \"tcp:{}\"\n\
         app_name = \"hushflow-test\"\n\n[delivery.webhook]\nurl = \"file:{}\"\n",
        tcp.local_addr().unwrap(),
        {
            // A file: reference must be private to its owner.
            let f = sockets.path().join("hook-url");
            std::fs::write(&f, &hook_url).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
            f.display().to_string()
        }
    );
    let (_dir, state) = state_with(&config);
    append(&state, record("os-user:eve", "keys.export", "ok", &[]));

    // The webhook receiver: one request, answered 200.
    let mut conn = accept_within(&http);
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    use std::io::Write as _;
    conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["event"], "alert");
    assert_eq!(event["kind"], "key_export");
    assert_eq!(event["actor"], "os-user:eve");
    assert_eq!(event["severity"], "critical");

    // The syslog receiver: one octet-counted RFC 5424 message.
    let mut s = accept_within(&tcp);
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (len, message) = text.split_once(' ').unwrap();
    assert_eq!(len.parse::<usize>().unwrap(), message.len());
    assert!(message.starts_with("<106>1 "), "{message}");
    assert!(message.contains(" hushflow-test "), "{message}");
    assert!(
        message.contains(
            "[hushflow@32473 kind=\"key_export\" severity=\"critical\" actor=\"os-user:eve\""
        ),
        "{message}"
    );
    assert!(!message.contains("canary"), "{message}");
    assert_eq!(flush(Duration::from_secs(10)), 0);

    // A Unix datagram socket, as /dev/log is.
    let config = format!(
        "[[alert]]\nkind = \"erasure\"\n[delivery.syslog]\naddress = \"unix:{}\"\n",
        unix_path.display()
    );
    let (_dir, state) = state_with(&config);
    append(&state, record("os-user:ops", "erase", "ok", &[]));
    let mut buf = [0u8; 4096];
    unix.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let n = unix.recv(&mut buf).unwrap();
    let message = String::from_utf8_lossy(&buf[..n]);
    assert!(message.starts_with("<108>1 "), "{message}");
    assert!(message.contains("erasure: os-user:ops erased"), "{message}");
    assert_eq!(flush(Duration::from_secs(10)), 0);
}

#[test]
fn an_unreachable_receiver_is_retried_and_never_blocks_the_append() {
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        "[[alert]]\nkind = \"key_rotation\"\n[delivery.syslog]\naddress = \"tcp:127.0.0.1:{port}\"\n"
    );
    let (_dir, state) = state_with(&config);
    let started = Instant::now();
    append(&state, record("os-user:ops", "keys.rotate", "ok", &[]));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the append waited for the delivery"
    );
    assert_eq!(alerts(&state).len(), 1, "the alert is audited anyway");
    // Four attempts with pauses of 0.2 + 1 + 3 s, then it gives up.
    assert_eq!(flush(Duration::from_secs(15)), 0);
}

/// Syslog over TLS (RFC 5425) to a receiver with a certificate from a private CA: delivered,
/// octet-counted, when `ca_file` names that CA; refused (nothing sent in the clear) with
/// another CA or against a plain TCP listener.
#[test]
fn syslog_over_tls_checks_the_receivers_certificate() {
    let ca = |name: &str| {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
        let key = rcgen::KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        (params, key, pem)
    };
    let (ca_params, ca_key, ca_pem) = ca("hushflow test syslog CA");
    let (_, _, other_pem) = ca("another CA");
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (good, bad) = (dir.path().join("ca.pem"), dir.path().join("other.pem"));
    std::fs::write(&good, ca_pem).unwrap();
    std::fs::write(&bad, other_pem).unwrap();

    let server_config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![server_cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        )
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let receiver = {
        let config = server_config.clone();
        std::thread::spawn(move || {
            // The first connection (the wrong CA) fails its handshake; the second delivers.
            let mut got = Vec::new();
            for _ in 0..2 {
                let tcp = accept_within(&listener);
                let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut text = String::new();
                if tls.read_to_string(&mut text).is_ok() || !text.is_empty() {
                    got.push(text);
                }
            }
            got
        })
    };
    let message = "<110>1 2026-12-03T00:00:00Z - hushflow 1 alert - over TLS";
    let address = |ca: &std::path::Path| deliver::SyslogAddress::Tls {
        host_port: format!("localhost:{port}"),
        ca_file: Some(ca.to_path_buf()),
    };
    let refused = deliver::syslog_send(&address(&bad), message).unwrap_err();
    assert!(refused.contains("syslog over TLS"), "{refused}");
    assert!(!refused.contains("over TLS\""), "{refused}");
    deliver::syslog_send(&address(&good), message).unwrap();
    let got = receiver.join().unwrap();
    assert_eq!(got, vec![format!("{} {message}", message.len())]);

    // A plain TCP listener is no TLS receiver: the handshake fails, nothing is sent.
    let plain = TcpListener::bind("127.0.0.1:0").unwrap();
    let plain_port = plain.local_addr().unwrap().port();
    let reader = std::thread::spawn(move || {
        let mut s = accept_within(&plain);
        let mut bytes = Vec::new();
        let _ = s.read_to_end(&mut bytes);
        bytes
    });
    let address = deliver::SyslogAddress::Tls {
        host_port: format!("localhost:{plain_port}"),
        ca_file: Some(good.clone()),
    };
    assert!(deliver::syslog_send(&address, message).is_err());
    let bytes = reader.join().unwrap();
    assert!(
        !String::from_utf8_lossy(&bytes).contains("over TLS"),
        "the message went out in the clear"
    );

    // Parsing: tls: with a CA file; a CA file with tcp: is refused.
    assert!(matches!(
        deliver::SyslogAddress::parse("tls:logs.internal:6514", None),
        Some(deliver::SyslogAddress::Tls { .. })
    ));
    let (_d, _s) =
        state_with("[delivery.syslog]\naddress = \"tls:127.0.0.1:6514\"\nca_file = \"/x.pem\"\n");
    let bad_file = "[delivery.syslog]\naddress = \"tcp:127.0.0.1:514\"\nca_file = \"/x.pem\"\n";
    assert!(AlertConfig::parse(bad_file, std::path::Path::new("a.toml")).is_err());
}

/// The rule reads what the access layer really writes: refused sign-ins through
/// `Access::sign_in` raise `signin_failures` once the threshold is passed, and a permission
/// denial recorded by `Access::record_denial` counts for `permission_denials`.
#[test]
fn the_access_layers_own_records_raise_the_sign_in_and_denial_alerts() {
    use crate::access::{Access, AccessPolicy, PasswordParams};
    let (_dir, state) = state_with(
        "[[alert]]\nkind = \"signin_failures\"\nthreshold = 2\nwindow = \"1h\"\n\
         [[alert]]\nkind = \"permission_denials\"\nthreshold = 0\nwindow = \"1h\"\n",
    );
    let session = crate::Session::new(state.clone(), Redactor::new());
    let mut store = session.open_store().unwrap();
    let access = Access::new(AccessPolicy {
        password: PasswordParams::TEST_ONLY,
        max_failures_per_user: 10,
        ..AccessPolicy::default()
    });
    let admin = crate::Actor::os_user();
    access
        .add_user(
            &session,
            &mut store,
            &admin,
            "bo",
            crate::Role::Viewer,
            "a long enough password",
        )
        .unwrap();
    for _ in 0..3 {
        assert!(
            access
                .sign_in(&session, &mut store, "bo", "not the password", "192.0.2.7")
                .is_err()
        );
    }
    let principal = crate::Principal::new(crate::Actor::api_user("bo"), crate::Role::Viewer);
    access
        .record_denial(
            &session,
            &principal,
            crate::Permission::ManageUsers,
            None,
            "192.0.2.7",
        )
        .unwrap();
    let raised: Vec<String> = alerts(&state).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        raised,
        ["signin_failures", "permission_denials"],
        "{raised:?}"
    );
}
