use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// One detector per phone region the tests use, built once.
fn detector(region: Option<&str>) -> &'static PiiDetector {
    static DETECTORS: OnceLock<Vec<(Option<&'static str>, PiiDetector)>> = OnceLock::new();
    let all = DETECTORS.get_or_init(|| {
        [None, Some("US"), Some("DE"), Some("FR"), Some("GB")]
            .into_iter()
            .map(|r| (r, PiiDetector::new(&PiiKind::ALL, r).unwrap()))
            .collect()
    });
    &all.iter()
        .find(|(r, _)| *r == region)
        .expect("a test region")
        .1
}

fn redact_with(d: &PiiDetector, text: &str) -> String {
    let mut out = String::new();
    d.redact_into(text, &mut Vec::new(), &mut out);
    out
}

/// Hand-labelled cases: phone region, text, and the expected redaction.
const CASES: &[(Option<&str>, &str, &str)] = &[
    // Emails.
    (
        None,
        "mail jane.doe+crm@example.com today",
        "mail [EMAIL] today",
    ),
    (
        None,
        "Contact: J.Smith@sub.example.co.uk.",
        "Contact: [EMAIL].",
    ),
    (
        None,
        "two: a@example.com, b@example.org",
        "two: [EMAIL], [EMAIL]",
    ),
    (None, "«josé.garcía@correo.es»", "«[EMAIL]»"),
    (None, "请联系zhang.wei@example.cn谢谢", "请联系[EMAIL]谢谢"),
    (
        None,
        "not an address: user@localhost or @handle",
        "not an address: user@localhost or @handle",
    ),
    // The top-level domain must exist: file names and local hosts are no addresses.
    (
        None,
        "see name@2x.png, logo@2x.jpg and icon@3x.webp",
        "see name@2x.png, logo@2x.jpg and icon@3x.webp",
    ),
    (
        None,
        "from user@host.local via admin@printer.lan",
        "from user@host.local via admin@printer.lan",
    ),
    // The TLDs reserved for documentation and tests (sample data uses them) count.
    (
        None,
        "demo jane@acme.example and qa@ci.TEST, not root@box.invalid",
        "demo [EMAIL] and [EMAIL], not root@box.invalid",
    ),
    (
        None,
        "uk j.smith@nhs.net.co.uk, museum curator@louvre.museum",
        "uk [EMAIL], museum [EMAIL]",
    ),
    (
        None,
        "new gTLDs: hi@studio.photography, info@firma.berlin, me@dev.app",
        "new gTLDs: [EMAIL], [EMAIL], [EMAIL]",
    ),
    (
        None,
        "IDN: info@example.xn--p1ai and kontakt@beratung.XN--VERMGENSBERATUNG-PWB.",
        "IDN: [EMAIL] and [EMAIL].",
    ),
    // Phones: international, North American, national with a region.
    (
        Some("US"),
        "call (415) 555-0132 after 5",
        "call [PHONE] after 5",
    ),
    (
        None,
        "call 415-555-0132 or 1 (415) 555-0132",
        "call [PHONE] or [PHONE]",
    ),
    (None, "mobile +49 151 12345678", "mobile [PHONE]"),
    (
        None,
        "tel +44 20 7946 0958 (office)",
        "tel [PHONE] (office)",
    ),
    (None, "Tel:+33 (0)1 44 60 56 93.", "Tel:[PHONE]."),
    (None, "fax 0049 30 1234567", "fax [PHONE]"),
    (
        Some("DE"),
        "Handy 0151 12345678, Büro 030/1234567",
        "Handy [PHONE], Büro [PHONE]",
    ),
    (
        Some("FR"),
        "Appeler le 06.12.34.56.78 svp",
        "Appeler le [PHONE] svp",
    ),
    (Some("GB"), "ring 020 7946 0958 today", "ring [PHONE] today"),
    (
        Some("US"),
        "call 415-555-0132 2024 budget",
        "call [PHONE] 2024 budget",
    ),
    // Cards: Luhn, an issuer prefix, a card-like layout.
    (
        None,
        "card 4111 1111 1111 1111 exp 12/29",
        "card [CREDIT_CARD] exp 12/29",
    ),
    (
        None,
        "paid with 5500-0000-0000-0004",
        "paid with [CREDIT_CARD]",
    ),
    (None, "amex 3782 822463 10005 ok", "amex [CREDIT_CARD] ok"),
    (None, "CC#4012888888881881", "CC#[CREDIT_CARD]"),
    // IBANs.
    (
        None,
        "IBAN DE89 3704 0044 0532 0130 00 please",
        "IBAN [IBAN] please",
    ),
    (None, "iban GB82WEST12345698765432", "iban [IBAN]"),
    (
        None,
        "Konto AT61 1904 3002 3457 3201 WIEN",
        "Konto [IBAN] WIEN",
    ),
    // SSNs.
    (None, "ssn 123-45-6789 on file", "ssn [US_SSN] on file"),
    (Some("US"), "SSN: 219 09 9999", "SSN: [US_SSN]"),
    // IP addresses.
    (
        None,
        "login from 192.168.1.20 at noon",
        "login from [IP_ADDRESS] at noon",
    ),
    (
        None,
        "v6 2001:db8::8a2e:370:7334 seen",
        "v6 [IP_ADDRESS] seen",
    ),
    (
        None,
        "host fe80::1%eth0 and 10.0.0.1:8080",
        "host [IP_ADDRESS] and [IP_ADDRESS]:8080",
    ),
    (
        None,
        "mapped ::ffff:192.0.2.128 here",
        "mapped [IP_ADDRESS] here",
    ),
    // Adjacent findings.
    (None, "a@example.com+49 151 12345678", "[EMAIL][PHONE]"),
    // Hard negatives: numbers that look like PII and are not.
    (
        Some("US"),
        "order ORD-2024-000123 shipped",
        "order ORD-2024-000123 shipped",
    ),
    (
        Some("DE"),
        "Termin 2024-03-15 um 10:30, Rechnung 15.03.2024",
        "Termin 2024-03-15 um 10:30, Rechnung 15.03.2024",
    ),
    (
        Some("US"),
        "invoice 2024/0042 and INV-20240315-0042",
        "invoice 2024/0042 and INV-20240315-0042",
    ),
    (
        Some("US"),
        "tracking 1Z999AA10123456784",
        "tracking 1Z999AA10123456784",
    ),
    (
        Some("US"),
        "ref 4111111111111112 (not Luhn)",
        "ref 4111111111111112 (not Luhn)",
    ),
    (
        Some("DE"),
        "Auftrag 4111 1111 1111 1112 erledigt",
        "Auftrag 4111 1111 1111 1112 erledigt",
    ),
    (
        Some("US"),
        "id 1234567890123452 passes Luhn, no issuer",
        "id 1234567890123452 passes Luhn, no issuer",
    ),
    (
        None,
        "bad iban DE89 3704 0044 0532 0130 01",
        "bad iban DE89 3704 0044 0532 0130 01",
    ),
    (
        Some("US"),
        "not ssn 000-12-3456 or 666-12-3456 or 900-12-3456",
        "not ssn 000-12-3456 or 666-12-3456 or 900-12-3456",
    ),
    (
        Some("US"),
        "not ssn 123-00-4567 or 123-45-0000",
        "not ssn 123-00-4567 or 123-45-0000",
    ),
    (
        None,
        "version 1.2.3.4567 and v2.10.3.1 released",
        "version 1.2.3.4567 and v2.10.3.1 released",
    ),
    (
        None,
        "ip-like 999.1.1.1 and 10.0.0.1.5",
        "ip-like 999.1.1.1 and 10.0.0.1.5",
    ),
    (
        Some("US"),
        "price $1,299.00 for 12 seats, EUR 1.299,00",
        "price $1,299.00 for 12 seats, EUR 1.299,00",
    ),
    (Some("US"), "zip 94107-1234 ok", "zip 94107-1234 ok"),
    (
        Some("US"),
        "time 12:30:45 and 12:30:: and ::1",
        "time 12:30:45 and 12:30:: and ::1",
    ),
    (
        Some("US"),
        "SKU AB-1234-5678-90, ticket #4155550132",
        "SKU AB-1234-5678-90, ticket #4155550132",
    ),
    (
        Some("US"),
        "plain ids 4155550132 and 2024001234",
        "plain ids 4155550132 and 2024001234",
    ),
    (
        Some("DE"),
        "Bestellnr. 20240315 und 12345678",
        "Bestellnr. 20240315 und 12345678",
    ),
    (None, "MAC 00:1A:2B:3C:4D:5E", "MAC 00:1A:2B:3C:4D:5E"),
    (None, "no pii here at all", "no pii here at all"),
    (None, "Zoë Ørsted, Łódź — café", "Zoë Ørsted, Łódź — café"),
];

#[test]
fn labelled_cases() {
    let mut failures = Vec::new();
    for (region, text, want) in CASES {
        let got = redact_with(detector(*region), text);
        if &got != want {
            failures.push(format!(
                "{region:?} {text:?}\n   got  {got:?}\n   want {want:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn findings_name_kind_and_byte_span() {
    let mut out = Vec::new();
    detector(None).find("é 123-45-6789 y a@b.io", &mut out);
    assert_eq!(
        out,
        [
            Finding {
                kind: PiiKind::UsSsn,
                start: 3,
                end: 14
            },
            Finding {
                kind: PiiKind::Email,
                start: 17,
                end: 23
            }
        ]
    );
    assert_eq!(
        detector(None).redact_into("x 1.2.3.4", &mut out, &mut String::new()),
        1
    );
}

#[test]
fn only_requested_kinds_are_redacted() {
    let d = PiiDetector::new(&[PiiKind::Email], None).unwrap();
    assert_eq!(d.kinds(), [PiiKind::Email]);
    assert_eq!(
        redact_with(&d, "a@example.com 123-45-6789 4111 1111 1111 1111"),
        "[EMAIL] 123-45-6789 4111 1111 1111 1111"
    );
    let d = PiiDetector::new(&[PiiKind::Phone, PiiKind::CreditCard], Some("us")).unwrap();
    assert_eq!(
        redact_with(&d, "a@example.com (415) 555-0132 4111 1111 1111 1111"),
        "a@example.com [PHONE] [CREDIT_CARD]"
    );
    let none = PiiDetector::new(&[], None).unwrap();
    assert_eq!(redact_with(&none, "a@example.com"), "a@example.com");
}

#[test]
fn regions_are_checked_and_errors_hold_no_text() {
    for bad in ["XX", "", "USA", "united states"] {
        let err = PiiDetector::new(&PiiKind::ALL, Some(bad)).unwrap_err();
        assert_eq!(err, PiiError::Region);
        if !bad.is_empty() {
            assert!(!err.to_string().contains(bad));
        }
    }
}

#[test]
fn national_phones_need_a_region_except_north_american_ones() {
    let text = "call 030 1234567 or (415) 555-0132 or +1 415 555 0132";
    assert_eq!(
        redact_with(detector(None), text),
        "call 030 1234567 or [PHONE] or [PHONE]"
    );
    assert_eq!(
        redact_with(detector(Some("DE")), text),
        "call [PHONE] or [PHONE] or [PHONE]"
    );
}

/// Five regions at once: a national number valid in any of them is a phone number, and the
/// hard negatives of each region stay as they are.
#[test]
fn a_list_of_regions_finds_each_national_format() {
    let d = PiiDetector::with_regions(&PiiKind::ALL, &["US", "GB", "DE", "FR", "ES"]).unwrap();
    for (text, want) in [
        ("call (415) 555-0132 today", "call [PHONE] today"),
        ("ring 020 7946 0958 today", "ring [PHONE] today"),
        (
            "Handy 0151 12345678, Büro 030/1234567",
            "Handy [PHONE], Büro [PHONE]",
        ),
        ("Appeler le 06.12.34.56.78 svp", "Appeler le [PHONE] svp"),
        (
            "Llamar al 912 345 678 o al 612 34 56 78",
            "Llamar al [PHONE] o al [PHONE]",
        ),
        ("mobile +49 151 12345678", "mobile [PHONE]"),
    ] {
        assert_eq!(redact_with(&d, text), want, "{text}");
    }
    for negative in [
        "order ORD-2024-000123 shipped",
        "Termin 2024-03-15 um 10:30, Rechnung 15.03.2024",
        "invoice 2024/0042 and INV-20240315-0042",
        "tracking 1Z999AA10123456784",
        "price $1,299.00 for 12 seats, EUR 1.299,00",
        "SKU AB-1234-5678-90, ticket #4155550132",
        "plain ids 4155550132 and 2024001234",
        "Bestellnr. 20240315 und 12345678",
        "Kundennummer 4711-0815, Lieferschein LS-0815-4711",
        "facture n° 2024-00815 du 15/03/2024, total 1 299,00 €",
        "pedido 2024-0042, versión 10.0.19045.2006",
        "version 1.2.3.4567 and v2.10.3.1 released",
        "zip 94107-1234 ok",
        "expediente 91029/2025 cerrado",
        "Screenshot attached (02/15/2025), user reports a crash",
    ] {
        assert_eq!(redact_with(&d, negative), negative);
    }
    // Each region once, whatever the case; a bad one anywhere in the list is refused.
    assert!(PiiDetector::with_regions(&PiiKind::ALL, &["de", "DE", "fr"]).is_ok());
    assert_eq!(
        PiiDetector::with_regions(&PiiKind::ALL, &["DE", "XX"]).unwrap_err(),
        PiiError::Region
    );
}

/// `region_from`: a record's own country, by code or name, decides; unknown ones fall back to
/// the configured regions.
#[test]
fn a_records_own_region_replaces_the_configured_ones() {
    let d = PiiDetector::with_regions(&PiiKind::ALL, &["US"]).unwrap();
    let mut scratch = String::new();
    let redact = |text: &str, country: &str| {
        let mut scratch = String::new();
        let region = d.phone_region(country, &mut scratch);
        let mut out = String::new();
        d.redact_in(text, region, &mut Vec::new(), &mut out);
        out
    };
    let german = "Büro 030 1234567";
    assert_eq!(redact(german, "DE"), "Büro [PHONE]");
    assert_eq!(redact(german, " deutschland "), "Büro [PHONE]");
    assert_eq!(redact(german, "Germany"), "Büro [PHONE]");
    assert_eq!(redact(german, "DEU"), "Büro [PHONE]");
    assert_eq!(redact(german, "Allemagne"), "Büro [PHONE]");
    assert_eq!(redact(german, "US"), german);
    // Unknown or blank: the configured region (US) decides.
    assert_eq!(redact(german, "Atlantis"), german);
    assert_eq!(redact(german, ""), german);
    assert_eq!(redact("call (415) 555-0132", "nowhere"), "call [PHONE]");
    for (name, id) in [
        ("España", "ES"),
        ("espana", "ES"),
        ("Royaume-Uni", "GB"),
        ("uk", "GB"),
        ("Österreich", "AT"),
        ("ÉTATS-UNIS", "US"),
        ("fr", "FR"),
    ] {
        let want = d.phone_region(id, &mut scratch);
        assert!(want.is_some(), "{id}");
        assert_eq!(d.phone_region(name, &mut scratch), want, "{name}");
    }
    assert_eq!(d.phone_region("001", &mut scratch), None);
}

#[test]
fn kinds_serialize_as_in_pipeline_files() {
    for kind in PiiKind::ALL {
        let json = serde_json::to_string(&kind).unwrap();
        assert_eq!(json, format!("\"{}\"", kind.name()));
        assert_eq!(serde_json::from_str::<PiiKind>(&json).unwrap(), kind);
        assert_eq!(kind.label(), format!("[{}]", kind.name().to_uppercase()));
    }
}

#[test]
fn detector_is_shared_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<PiiDetector>();
    let d = detector(Some("US"));
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                assert_eq!(redact_with(d, "ssn 123-45-6789"), "ssn [US_SSN]");
            });
        }
    });
}

fn check_round_trip(d: &PiiDetector, text: &str) -> Result<(), TestCaseError> {
    let mut findings = Vec::new();
    d.find(text, &mut findings);
    for w in findings.windows(2) {
        prop_assert!(w[0].end <= w[1].start, "overlap {:?}", w);
    }
    for f in &findings {
        prop_assert!(
            f.start < f.end && text.is_char_boundary(f.start) && text.is_char_boundary(f.end)
        );
    }
    let mut once = String::new();
    d.redact_into(text, &mut findings, &mut once);
    let mut again = String::new();
    prop_assert_eq!(
        d.redact_into(&once, &mut findings, &mut again),
        0,
        "{:?} -> {:?}: {:?}",
        text,
        once,
        findings
    );
    prop_assert_eq!(&again, &once);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_text_never_panics_and_redacts_idempotently(text in "\\PC{0,120}") {
        for region in [None, Some("US"), Some("DE")] {
            check_round_trip(detector(region), &text)?;
        }
    }

    /// Text made of the characters PII is written with, so candidates are dense.
    #[test]
    fn dense_candidates_never_panic_and_redact_idempotently(
        text in "[0-9 +()\\-./:@#%a-fA-FxDEGB_é电]{0,80}"
    ) {
        for region in [None, Some("US"), Some("DE"), Some("FR")] {
            check_round_trip(detector(region), &text)?;
        }
    }

    #[test]
    fn planted_pii_is_always_found(
        prefix in "[a-zé电 ,.;:!?]{0,12}",
        suffix in "[a-zé电 ,.;:!?]{0,12}",
        n in 0usize..8,
    ) {
        let planted = [
            "jane@example.com",
            "123-45-6789",
            "4111 1111 1111 1111",
            "192.168.0.1",
            "+49 151 12345678",
            "DE89 3704 0044 0532 0130 00",
            "2001:db8::1",
            "(415) 555-0132",
        ][n];
        // A separator keeps the planted value from joining a neighbouring word.
        let text = format!("{prefix} {planted} {suffix}");
        let out = redact_with(detector(None), &text);
        prop_assert!(!out.contains(planted), "{}", out);
    }
}

// ---------------------------------------------------------------------------------------------
// The corpus evaluation (bench/pii): run with
//   HUSHFLOW_PII_CORPUS=target/pii-corpus.jsonl [HUSHFLOW_PII_PREDICTIONS=target/pii-hushflow.jsonl] \
//   cargo test -p hushflow-policy --release -- --ignored pii_corpus --nocapture
// Offsets in the corpus and the predictions are in Unicode code points, as Python counts them.
// The metric is the one bench/pii/score.py computes.

struct Doc {
    id: u64,
    text: String,
    region: Option<String>,
    /// The record's country field (`make_notes.py`), for `region_from`.
    country: Option<String>,
    lang: String,
    gold: Vec<(usize, usize, String)>,
}

fn read_corpus(path: &str) -> Vec<Doc> {
    let data = std::fs::read_to_string(path).expect("HUSHFLOW_PII_CORPUS names a readable file");
    data.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let spans = v["spans"].as_array().cloned().unwrap_or_default();
            Doc {
                id: v["id"].as_u64().unwrap_or(i as u64),
                text: v["text"].as_str().expect("a text").to_string(),
                region: v["region"].as_str().map(str::to_string),
                country: v["country"].as_str().map(str::to_string),
                lang: v["lang"].as_str().unwrap_or("-").to_string(),
                gold: spans
                    .iter()
                    .map(|s| {
                        (
                            s["start"].as_u64().unwrap() as usize,
                            s["end"].as_u64().unwrap() as usize,
                            s["kind"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect(),
            }
        })
        .collect()
}

#[derive(Default, Clone, Copy)]
struct Counts {
    gold: u64,
    pred: u64,
    exact: u64,
    overlap: u64,
}

fn overlaps(a: (usize, usize), b: (usize, usize)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// Per kind: exact span matches, and one-to-one overlap matches (each prediction, in order,
/// takes the first unmatched gold span of its kind it overlaps). The `any kind` row counts a
/// gold span as covered when any prediction of any kind overlaps it, and a prediction as right
/// when it overlaps any gold span: what matters for redaction.
fn score(
    docs: &[Doc],
    preds: &[Vec<(usize, usize, String)>],
    counts: &mut BTreeMap<String, Counts>,
) {
    for (doc, pred) in docs.iter().zip(preds) {
        let mut used = vec![false; doc.gold.len()];
        for g in &doc.gold {
            counts.entry(g.2.clone()).or_default().gold += 1;
        }
        for p in pred {
            let c = counts.entry(p.2.clone()).or_default();
            c.pred += 1;
            if doc
                .gold
                .iter()
                .any(|g| g.0 == p.0 && g.1 == p.1 && g.2 == p.2)
            {
                c.exact += 1;
            }
            if let Some(i) = (0..doc.gold.len()).find(|&i| {
                !used[i]
                    && doc.gold[i].2 == p.2
                    && overlaps((p.0, p.1), (doc.gold[i].0, doc.gold[i].1))
            }) {
                used[i] = true;
                c.overlap += 1;
            }
        }
        let any = counts.entry("~any kind".into()).or_default();
        any.gold += doc.gold.len() as u64;
        any.pred += pred.len() as u64;
        any.overlap += doc
            .gold
            .iter()
            .filter(|g| pred.iter().any(|p| overlaps((p.0, p.1), (g.0, g.1))))
            .count() as u64;
        any.exact += pred
            .iter()
            .filter(|p| doc.gold.iter().any(|g| overlaps((p.0, p.1), (g.0, g.1))))
            .count() as u64;
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

#[test]
#[ignore = "needs HUSHFLOW_PII_CORPUS; see bench/pii"]
fn pii_corpus() {
    let Ok(path) = std::env::var("HUSHFLOW_PII_CORPUS") else {
        eprintln!("HUSHFLOW_PII_CORPUS is not set: nothing to evaluate");
        return;
    };
    let docs = read_corpus(&path);
    // HUSHFLOW_PII_REGIONS=US,GB,DE,FR,ES: one detector for every text with that region list
    // (what a pipeline over mixed records configures), and with HUSHFLOW_PII_REGION_FROM=1 each
    // text's own `country` field as `region_from`. Otherwise each text's `region` alone.
    let list: Option<Vec<String>> = std::env::var("HUSHFLOW_PII_REGIONS")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.split(',').map(|r| r.trim().to_string()).collect());
    let region_from = std::env::var_os("HUSHFLOW_PII_REGION_FROM").is_some();
    let shared = list.as_ref().map(|l| {
        let refs: Vec<&str> = l.iter().map(String::as_str).collect();
        PiiDetector::with_regions(&PiiKind::ALL, &refs).unwrap()
    });
    let mut detectors: BTreeMap<Option<String>, PiiDetector> = BTreeMap::new();
    for doc in &docs {
        detectors
            .entry(doc.region.clone())
            .or_insert_with(|| PiiDetector::new(&PiiKind::ALL, doc.region.as_deref()).unwrap());
    }
    let mut scratch = String::new();
    let mut findings = Vec::new();
    let mut preds = Vec::with_capacity(docs.len());
    let mut predictions = String::new();
    let run = |doc: &Doc, findings: &mut Vec<Finding>, scratch: &mut String| match &shared {
        Some(d) => {
            let own = if region_from {
                doc.country
                    .as_deref()
                    .and_then(|c| d.phone_region(c, scratch))
            } else {
                None
            };
            d.find_in(&doc.text, own, findings);
        }
        None => detectors[&doc.region].find(&doc.text, findings),
    };
    // Speed on one core: a first pass compiles each region's phone rules, then the best of
    // five timed passes over every text.
    for doc in &docs {
        run(doc, &mut findings, &mut scratch);
    }
    let mut best = f64::MAX;
    for _ in 0..5 {
        let started = std::time::Instant::now();
        for doc in &docs {
            run(std::hint::black_box(doc), &mut findings, &mut scratch);
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    let bytes: usize = docs.iter().map(|d| d.text.len()).sum();
    println!(
        "speed: {:.0} notes/s on one core ({:.0} ns/note, {:.0} B/note average), regions: {}{}",
        docs.len() as f64 / best,
        best * 1e9 / docs.len() as f64,
        bytes as f64 / docs.len().max(1) as f64,
        list.as_ref()
            .map_or("each text's own".to_string(), |l| l.join(",")),
        if region_from && list.is_some() {
            " + region_from = country"
        } else {
            ""
        }
    );
    for doc in &docs {
        run(doc, &mut findings, &mut scratch);
        // Byte offsets to code-point offsets.
        let char_at = |byte: usize| doc.text[..byte].chars().count();
        let spans: Vec<(usize, usize, String)> = findings
            .iter()
            .map(|f| (char_at(f.start), char_at(f.end), f.kind.name().to_string()))
            .collect();
        let json: Vec<serde_json::Value> = spans
            .iter()
            .map(|(s, e, k)| serde_json::json!({"start": s, "end": e, "kind": k}))
            .collect();
        predictions.push_str(&serde_json::json!({"id": doc.id, "spans": json}).to_string());
        predictions.push('\n');
        preds.push(spans);
    }
    if let Ok(out) = std::env::var("HUSHFLOW_PII_PREDICTIONS") {
        std::fs::write(&out, &predictions).expect("HUSHFLOW_PII_PREDICTIONS is writable");
        println!("predictions written to {out}");
    }
    let mut counts = BTreeMap::new();
    score(&docs, &preds, &mut counts);
    println!("hushflow on {} texts ({path})", docs.len());
    print_counts(&counts);
    let langs: std::collections::BTreeSet<&str> = docs.iter().map(|d| d.lang.as_str()).collect();
    if langs.len() > 1 {
        for lang in langs {
            let mut lang_docs = Vec::new();
            let mut lang_preds = Vec::new();
            for (d, p) in docs.iter().zip(&preds).filter(|(d, _)| d.lang == lang) {
                lang_docs.push(Doc {
                    id: d.id,
                    text: String::new(),
                    region: None,
                    country: None,
                    lang: d.lang.clone(),
                    gold: d.gold.clone(),
                });
                lang_preds.push(p.clone());
            }
            let (docs, preds) = (lang_docs, lang_preds);
            let mut counts = BTreeMap::new();
            score(&docs, &preds, &mut counts);
            println!("-- language {lang}: {} texts", docs.len());
            print_counts(&counts);
        }
    }
}

fn print_counts(counts: &BTreeMap<String, Counts>) {
    println!(
        "{:<12} {:>5} {:>5} | {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6}",
        "kind", "gold", "pred", "P(ov)", "R(ov)", "F1(ov)", "P(ex)", "R(ex)", "F1(ex)"
    );
    for (kind, c) in counts {
        let (po, ro) = (ratio(c.overlap, c.pred), ratio(c.overlap, c.gold));
        let (pe, re) = (ratio(c.exact, c.pred), ratio(c.exact, c.gold));
        if kind.starts_with('~') {
            println!(
                "{:<12} {:>5} {:>5} | {:>6.3} {:>6.3} {:>6.3} |",
                kind.trim_start_matches('~'),
                c.gold,
                c.pred,
                ratio(c.exact, c.pred),
                ro,
                f1(ratio(c.exact, c.pred), ro)
            );
        } else {
            println!(
                "{kind:<12} {:>5} {:>5} | {po:>6.3} {ro:>6.3} {:>6.3} | {pe:>6.3} {re:>6.3} {:>6.3}",
                c.gold,
                c.pred,
                f1(po, ro),
                f1(pe, re)
            );
        }
    }
}

/// A rough speed figure, not an assertion: ns per note for notes of about 150 bytes.
/// `cargo test -p hushflow-policy --release -- --ignored pii_speed --nocapture`
#[test]
#[ignore = "timing; run in release"]
fn pii_speed() {
    const NOTES: &[&str] = &[
        "Met at the trade fair in Hannover, wants a demo of the enterprise plan in Q3. Budget approved, decision expected before the end of the month.",
        "Rückruf erbeten, bitte nur vormittags. Termin am 15.03.2024 um 10:30 bestätigt, Angebot 2024-0042 über 1.299,00 EUR folgt per Post.",
        "Prefers email over phone: jane.doe@example.com. Said to call back after the 15th; order ORD-2024-000123 shipped via UPS on 2024-03-15.",
        "Card on file: 4111 1111 1111 1111 exp 12/29. Mobile +49 151 12345678. Last login from 192.168.1.20, asked about GDPR and data deletion.",
        "IBAN DE89 3704 0044 0532 0130 00 for the refund; SSN 123-45-6789 on the W-9. Call (415) 555-0132 between 9 and 5, not on Fridays.",
        "展会上认识，对企业版感兴趣。Interested in the premium offer, wants invoice as PDF, not paper. Duplicate of another record? Check.",
    ];
    let d = detector(Some("US"));
    let mut findings = Vec::new();
    let mut out = String::new();
    let mut bench = |label: &str, notes: &[&str]| {
        let bytes: usize = notes.iter().map(|n| n.len()).sum();
        for n in notes {
            d.redact_into(n, &mut findings, &mut out);
        }
        let rounds = 20_000;
        let started = std::time::Instant::now();
        let mut total = 0;
        for _ in 0..rounds {
            for n in notes {
                total += d.redact_into(std::hint::black_box(n), &mut findings, &mut out);
            }
        }
        let ns = started.elapsed().as_nanos() as f64 / (rounds * notes.len()) as f64;
        println!(
            "{label:<34} {ns:>7.0} ns/note ({:.0} B avg, {:.0} MB/s, {total} findings)",
            bytes as f64 / notes.len() as f64,
            bytes as f64 / notes.len() as f64 / ns * 1000.0
        );
    };
    bench(
        "no PII (prose, dates, amounts)",
        &[NOTES[0], NOTES[1], NOTES[5]],
    );
    bench("with PII (1-3 findings each)", &NOTES[2..5]);
    bench("all six notes", NOTES);
    for (i, n) in NOTES.iter().enumerate() {
        bench(&format!("note {i}"), &[n]);
    }
    // Optionally a file of real-looking notes, one JSON string per line (bench/pii/run.sh
    // extracts the notes of `hushflow sample contacts`).
    if let Ok(path) = std::env::var("HUSHFLOW_PII_NOTES")
        && !path.is_empty()
    {
        let data = std::fs::read_to_string(&path).expect("HUSHFLOW_PII_NOTES is readable");
        let notes: Vec<String> = data
            .lines()
            .filter_map(|l| serde_json::from_str::<String>(l).ok())
            .collect();
        let refs: Vec<&str> = notes.iter().map(String::as_str).collect();
        // A first pass compiles the phone rules of each region met (once per detector).
        for n in &refs {
            d.redact_into(n, &mut findings, &mut out);
        }
        let started = std::time::Instant::now();
        let mut total = 0;
        for n in &refs {
            total += d.redact_into(n, &mut findings, &mut out);
        }
        let ns = started.elapsed().as_nanos() as f64 / refs.len().max(1) as f64;
        let bytes: usize = refs.iter().map(|n| n.len()).sum();
        println!(
            "{} notes from {path}: {ns:.0} ns/note ({:.0} B avg, {total} findings)",
            refs.len(),
            bytes as f64 / refs.len().max(1) as f64
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Phone numbers: our libphonenumber rules against the `phonenumber` crate's.

fn examples(meta: &phonenumber::Metadata) -> Vec<String> {
    let d = meta.descriptors();
    [
        d.fixed_line(),
        d.mobile(),
        d.toll_free(),
        d.premium_rate(),
        d.shared_cost(),
        d.voip(),
        d.personal_number(),
        d.pager(),
        d.uan(),
        d.voicemail(),
    ]
    .into_iter()
    .flatten()
    .filter_map(|desc| desc.example().map(str::to_owned))
    .collect()
}

#[test]
fn calling_codes_are_written_in_decimal() {
    for code in [1u16, 7, 33, 44, 49, 352, 998] {
        let mut out = [0u8; 3];
        let len = phone::write_code(code, &mut out);
        assert_eq!(std::str::from_utf8(&out[..len]).unwrap(), code.to_string());
    }
}

#[test]
fn every_region_compiles_and_its_examples_are_valid() {
    let phones = phone::Phones::new(&[]).unwrap();
    let mut checked = 0;
    for (index, region) in phones.all_regions() {
        assert!(phones.compiles(index), "region {}", region.id);
        // By code and id: the non-geographic regions all have the id 001.
        let metas = phonenumber::metadata::DATABASE
            .by_code(&region.country_code)
            .unwrap_or_default();
        let meta = metas
            .iter()
            .find(|m| m.id() == region.id)
            .expect("every region is in the crate's database");
        for example in examples(meta) {
            let international = format!("{}{example}", meta.country_code());
            assert!(
                phones.international(&international).is_some(),
                "+{international} ({})",
                meta.id()
            );
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked}");
}

/// Numbers judged by Google's libphonenumber (bench/pii/phone_cases.py writes them):
/// `HUSHFLOW_PHONE_CASES=target/pii-phone-cases.jsonl cargo test -p hushflow-policy --release
/// -- --ignored phone_validity --nocapture`.
#[test]
#[ignore = "needs HUSHFLOW_PHONE_CASES; see bench/pii"]
fn phone_validity_agrees_with_libphonenumber() {
    let Ok(path) = std::env::var("HUSHFLOW_PHONE_CASES") else {
        eprintln!("HUSHFLOW_PHONE_CASES is not set: nothing to compare");
        return;
    };
    let data = std::fs::read_to_string(&path).expect("HUSHFLOW_PHONE_CASES is readable");
    let mut by_region: BTreeMap<String, phone::Phones> = BTreeMap::new();
    let (mut compared, mut differ) = (0, Vec::new());
    for line in data.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let region = v["region"].as_str().unwrap().to_string();
        let text = v["text"].as_str().unwrap();
        let phones = by_region
            .entry(region.clone())
            .or_insert_with(|| phone::Phones::new(&[region.as_str()]).unwrap());
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        let ours = if text.starts_with('+') {
            phones.international(&digits)
        } else {
            phones.national(&digits, None)
        };
        let want = (
            v["valid"].as_bool().unwrap(),
            v["mobile"].as_bool().unwrap(),
        );
        let got = (
            ours.is_some(),
            ours.is_some_and(|(_, l)| l == phone::Line::Mobile),
        );
        compared += 1;
        if got != want {
            differ.push(format!(
                "{text} ({region}): ours {got:?}, libphonenumber {want:?}"
            ));
        }
    }
    println!(
        "{compared} numbers compared with libphonenumber, {} differ",
        differ.len()
    );
    for d in differ.iter().take(50) {
        println!("  {d}");
    }
    assert!(differ.len() * 1000 <= compared, "more than 0.1% differ");
}

/// A date-shaped candidate with a long digit run once overflowed in debug builds (found by the
/// full-policy integration test on sample notes).
#[test]
fn long_digit_runs_in_date_shapes_do_not_overflow() {
    for candidate in [
        "12345678901.1.2024",
        "1/12345678901/26",
        "2024-12345678901-1",
    ] {
        assert!(!super::validate::date_shaped(candidate), "{candidate}");
    }
    assert!(super::validate::date_shaped("15.03.2024"));
}

/// `phone_regions.rs` is the `phonenumber` crate's metadata as `phone_meta::generate` writes it.
/// `HUSHFLOW_WRITE_PHONE_REGIONS=1` rewrites the file (after upgrading the crate).
#[test]
fn phone_regions_match_the_phonenumber_crate() {
    let generated = super::phone_meta::generate();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/pii/phone_regions.rs");
    if std::env::var_os("HUSHFLOW_WRITE_PHONE_REGIONS").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let stored = std::fs::read_to_string(path).unwrap();
    assert!(
        stored == generated,
        "src/pii/phone_regions.rs is stale: rewrite it with HUSHFLOW_WRITE_PHONE_REGIONS=1 cargo test -p hushflow-policy phone_regions"
    );
}

/// `tlds.rs` is IANA's list in `data/tlds-alpha-by-domain.txt` as `tld::generate` writes it.
/// `HUSHFLOW_WRITE_TLDS=1` rewrites the file (after `data/refresh-tlds.sh` fetched a new list).
#[test]
fn tlds_match_the_iana_list() {
    let root = env!("CARGO_MANIFEST_DIR");
    let iana = std::fs::read_to_string(format!("{root}/data/tlds-alpha-by-domain.txt")).unwrap();
    let generated = super::tld::generate(&iana);
    let path = format!("{root}/src/pii/tlds.rs");
    if std::env::var_os("HUSHFLOW_WRITE_TLDS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let stored = std::fs::read_to_string(&path).unwrap();
    assert!(
        stored == generated,
        "src/pii/tlds.rs is stale: rewrite it with HUSHFLOW_WRITE_TLDS=1 cargo test -p hushflow-policy tlds"
    );
    // The root zone has well over a thousand TLDs; these must be among them, and these not.
    assert!(generated.lines().count() > 1000);
    for tld in [
        "com", "uk", "museum", "berlin", "app", "xn--p1ai", "XN--P1AI", "Com",
    ] {
        assert!(super::tld::exists(tld), "{tld}");
    }
    // The fast paths agree with the list.
    for tld in generated
        .lines()
        .filter_map(|l| l.strip_prefix('"')?.strip_suffix("\","))
    {
        assert!(super::tld::exists(tld), "{tld}");
    }
    for not in [
        "zz",
        "a1",
        "é",
        "png",
        "jpg",
        "local",
        "lan",
        "localhost",
        "",
        "c",
        "x".repeat(64).as_str(),
    ] {
        assert!(!super::tld::exists(not), "{not}");
    }
}
