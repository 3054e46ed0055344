use super::*;
use proptest::prelude::*;

fn detector() -> PiiDetector {
    PiiDetector::new(&PiiKind::ALL, Some("US")).unwrap()
}

fn redact(text: &str) -> String {
    let mut out = String::new();
    detector().redact_into(text, &mut Vec::new(), &mut out);
    out
}

/// Hand-labelled cases: the expected redaction of each text.
const CASES: &[(&str, &str)] = &[
    // Positives, in the formats CRM notes carry them.
    ("mail jane.doe+crm@example.com today", "mail [EMAIL] today"),
    ("Contact: J.Smith@sub.example.co.uk.", "Contact: [EMAIL]."),
    ("call (415) 555-0132 after 5", "call [PHONE] after 5"),
    ("mobile +49 151 12345678", "mobile [PHONE]"),
    ("tel +44 20 7946 0958 (office)", "tel [PHONE] (office)"),
    (
        "card 4111 1111 1111 1111 exp 12/29",
        "card [CREDIT_CARD] exp 12/29",
    ),
    ("paid with 5500-0000-0000-0004", "paid with [CREDIT_CARD]"),
    ("amex 378282246310005", "amex [CREDIT_CARD]"),
    (
        "IBAN DE89 3704 0044 0532 0130 00 please",
        "IBAN [IBAN] please",
    ),
    ("iban GB82WEST12345698765432", "iban [IBAN]"),
    ("ssn 123-45-6789 on file", "ssn [US_SSN] on file"),
    (
        "login from 192.168.1.20 at noon",
        "login from [IP_ADDRESS] at noon",
    ),
    ("v6 2001:db8::8a2e:370:7334 seen", "v6 [IP_ADDRESS] seen"),
    ("two: a@example.com, b@example.org", "two: [EMAIL], [EMAIL]"),
    // Hard negatives: numbers that look like PII and are not.
    (
        "order ORD-2024-000123 shipped",
        "order ORD-2024-000123 shipped",
    ),
    (
        "meeting on 2024-03-15 at 10:30",
        "meeting on 2024-03-15 at 10:30",
    ),
    (
        "date 15.03.2024, invoice 2024/0042",
        "date 15.03.2024, invoice 2024/0042",
    ),
    ("tracking 1Z999AA10123456784", "tracking 1Z999AA10123456784"),
    (
        "ref 4111111111111112 (not Luhn)",
        "ref 4111111111111112 (not Luhn)",
    ),
    (
        "bad iban DE89 3704 0044 0532 0130 01",
        "bad iban DE89 3704 0044 0532 0130 01",
    ),
    (
        "not ssn 000-12-3456 or 666-12-3456 or 900-12-3456",
        "not ssn 000-12-3456 or 666-12-3456 or 900-12-3456",
    ),
    ("version 1.2.3.4567 released", "version 1.2.3.4567 released"),
    (
        "price $1,299.00 for 12 seats",
        "price $1,299.00 for 12 seats",
    ),
    ("zip 94107-1234 ok", "zip 94107-1234 ok"),
    (
        "ip-like 999.1.1.1 is not an address",
        "ip-like 999.1.1.1 is not an address",
    ),
    (
        "time 12:30:45 and 2001 results",
        "time 12:30:45 and 2001 results",
    ),
    ("SKU AB-1234-5678-90", "SKU AB-1234-5678-90"),
    ("no pii here at all", "no pii here at all"),
    ("Zoë Ørsted, Łódź — café", "Zoë Ørsted, Łódź — café"),
];

#[test]
fn labelled_cases() {
    for (text, want) in CASES {
        assert_eq!(&redact(text), want, "for {text:?}");
    }
}

#[test]
fn findings_name_kind_and_span() {
    let mut out = Vec::new();
    detector().find("x 123-45-6789 y a@b.io", &mut out);
    assert_eq!(
        out,
        [
            Finding {
                kind: PiiKind::UsSsn,
                start: 2,
                end: 13
            },
            Finding {
                kind: PiiKind::Email,
                start: 16,
                end: 22
            }
        ]
    );
}

#[test]
fn only_requested_kinds_are_redacted() {
    let d = PiiDetector::new(&[PiiKind::Email], None).unwrap();
    let mut out = String::new();
    d.redact_into("a@example.com 123-45-6789", &mut Vec::new(), &mut out);
    assert_eq!(out, "[EMAIL] 123-45-6789");
    assert!(PiiDetector::new(&[PiiKind::Phone], Some("XX")).is_err());
}

#[test]
fn phones_without_country_code_need_a_region() {
    let d = PiiDetector::new(&[PiiKind::Phone], None).unwrap();
    let mut out = String::new();
    d.redact_into(
        "call (415) 555-0132 or +1 415 555 0132",
        &mut Vec::new(),
        &mut out,
    );
    assert_eq!(out, "call (415) 555-0132 or [PHONE]");
}

proptest! {
    #[test]
    fn never_panics_and_leaves_no_finding(text in "\\PC{0,80}") {
        let d = detector();
        let mut findings = Vec::new();
        let mut once = String::new();
        d.redact_into(&text, &mut findings, &mut once);
        let mut again = String::new();
        d.redact_into(&once, &mut findings, &mut again);
        prop_assert_eq!(&again, &once);
        d.find(&once, &mut findings);
        prop_assert!(findings.is_empty());
    }

    #[test]
    fn planted_pii_is_always_found(prefix in "[a-z ]{0,10}", suffix in "[a-z ]{0,10}", n in 0usize..4) {
        let planted = ["jane@example.com", "123-45-6789", "4111 1111 1111 1111", "192.168.0.1"][n];
        let text = format!("{prefix} {planted} {suffix}");
        let out = redact(&text);
        prop_assert!(!out.contains(planted), "{out}");
    }
}

/// Evaluates the detector on a labelled corpus (bench/pii): per-kind precision and recall.
/// `HUSHFLOW_PII_CORPUS=path cargo test -p hushflow-policy --release -- --ignored pii_corpus --nocapture`
#[test]
#[ignore]
fn pii_corpus() {
    let Ok(path) = std::env::var("HUSHFLOW_PII_CORPUS") else {
        return;
    };
    let text = std::fs::read_to_string(path).unwrap();
    let d = detector();
    let mut findings = Vec::new();
    let mut stats: std::collections::BTreeMap<String, (u64, u64, u64)> = Default::default();
    for line in text.lines() {
        let doc: serde_json::Value = serde_json::from_str(line).unwrap();
        let text = doc["text"].as_str().unwrap();
        let mut gold: Vec<(String, usize, usize)> = doc["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["kind"].as_str().unwrap().to_string(),
                    s["start"].as_u64().unwrap() as usize,
                    s["end"].as_u64().unwrap() as usize,
                )
            })
            .collect();
        d.find(text, &mut findings);
        for f in &findings {
            let kind = serde_json::to_value(f.kind)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string();
            let entry = stats.entry(kind.clone()).or_default();
            if let Some(i) = gold
                .iter()
                .position(|(k, s, e)| *k == kind && *s < f.end && f.start < *e)
            {
                gold.remove(i);
                entry.0 += 1;
            } else {
                entry.1 += 1;
            }
        }
        for (k, _, _) in gold {
            stats.entry(k).or_default().2 += 1;
        }
    }
    for (kind, (tp, fp, fn_)) in stats {
        let p = tp as f64 / (tp + fp).max(1) as f64;
        let r = tp as f64 / (tp + fn_).max(1) as f64;
        println!("{kind:<12} precision {p:.3} recall {r:.3} (tp {tp}, fp {fp}, fn {fn_})");
    }
}
