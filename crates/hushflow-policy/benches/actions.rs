//! The cost of each policy action alone.
//!
//! Each bench compiles a policy with one field rule (the `drop` bench also keeps `id`, since a
//! policy that lets nothing leave is refused) against a batch of 8192 synthetic contacts, then
//! times [`CompiledPolicy::apply`] on that batch: filters (none here), the one column operation,
//! assembling the output batch and freeing it. The contacts are generated here, deterministically: US phone
//! numbers in mixed formats, emails with stray case and whitespace, birth dates, ZIP codes,
//! amounts, and ~150-byte CRM notes of which some hold an email or phone and a few a card, IBAN,
//! SSN or IP address. Throughput is in records, so criterion prints elements/s; the time per
//! record is the time per batch divided by 8192.
//!
//! Run all (about a minute and a half):
//!
//! ```text
//! cargo bench -p hushflow-policy --bench actions
//! ```
//!
//! or one, by a filter on its name: `cargo bench -p hushflow-policy --bench actions -- redact`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hushflow_core::{Batch, Cell, Schema};
use hushflow_policy::{CompileInputs, CompiledPolicy, Day, KeyMaterial, Policy, ResolvedKey};
use hushflow_secrets::SecretValue;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

/// Records per batch.
const ROWS: usize = 8192;

/// One bench: its name and a policy with that one action, as in a pipeline file.
const CASES: &[(&str, &str)] = &[
    ("keep", r#"fields.email = "keep""#),
    (
        "drop",
        r#"fields.id = "keep"
           fields.email = "drop""#,
    ),
    ("null", r#"fields.email = "null""#),
    (
        "mask_keep_last_4",
        r#"fields.phone = { mask = { keep_last = 4 } }"#,
    ),
    ("mask_email", r#"fields.email = { mask = "email" }"#),
    (
        "hash_hmac_email",
        r#"fields.email = { hash = "hmac-sha256", key = "env:HF_PEPPER", normalize = "email" }"#,
    ),
    (
        "hash_hmac_phone_us",
        r#"fields.phone = { hash = "hmac-sha256", key = "env:HF_PEPPER", normalize = "phone", region = "US" }"#,
    ),
    (
        "match_hash_sha256_email",
        r#"fields.email = { match_hash = "sha256", normalize = "email" }"#,
    ),
    (
        "tokenize_aes_siv",
        r#"fields.first_name = { tokenize = "aes-siv", key = "keyring:names" }"#,
    ),
    (
        "generalize_year",
        r#"fields.birth_date = { generalize = "year" }"#,
    ),
    (
        "generalize_prefix_3",
        r#"fields.postal_code = { generalize = { prefix = 3 } }"#,
    ),
    (
        "generalize_bucket_1000",
        r#"fields.amount = { generalize = { bucket = 1000 } }"#,
    ),
    (
        "redact_email_phone",
        r#"fields.notes = { redact = ["email", "phone"], region = "US" }"#,
    ),
    (
        "redact_all_kinds",
        r#"fields.notes = { redact = ["email", "phone", "credit_card", "iban", "us_ssn", "ip_address"], region = "US" }"#,
    ),
];

/// SplitMix64: a fixed sequence, so every run measures the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next() as usize % items.len()]
    }
}

const FIRST: &[&str] = &[
    "Jane", "John", "Maria", "Wei", "Aisha", "Carlos", "Olga", "Liam", "Noah", "Emma", "Sofia",
    "Mateo", "Yuki", "Fatima", "Lukas", "Chloe", "Priya", "Omar", "Hannah", "Diego",
];
const LAST: &[&str] = &[
    "Doe", "Smith", "Garcia", "Chen", "Khan", "Silva", "Ivanova", "Murphy", "Nguyen", "Brown",
    "Rossi", "Tanaka", "Haddad", "Müller", "Martin", "Patel", "Johnson", "Kowalski",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "acme-corp.io",
    "mail.example.org",
];
/// US area codes in service, so every phone is a valid number.
const AREAS: &[u64] = &[
    212, 310, 415, 617, 206, 312, 404, 512, 303, 702, 646, 718, 305, 214, 503,
];
const IBANS: &[&str] = &[
    "DE89 3704 0044 0532 0130 00",
    "GB82 WEST 1234 5698 7654 32",
    "FR14 2004 1010 0505 0001 3M02 606",
    "NL91 ABNA 0417 1643 00",
];

fn email(rng: &mut Rng, first: &str, last: &str) -> String {
    let domain = rng.pick(DOMAINS);
    let n = rng.range(1, 99);
    match rng.next() % 5 {
        0 => format!(" {first}.{last}@{}", domain.to_uppercase()),
        1 => format!("{}{n}@{domain}", first.to_lowercase()),
        2 => format!(
            "{}.{}+news@{domain}",
            first.to_lowercase(),
            last.to_lowercase()
        ),
        _ => format!(
            "{}.{}{n}@{domain}",
            first.to_lowercase(),
            last.to_lowercase()
        ),
    }
}

fn phone(rng: &mut Rng) -> String {
    let area = AREAS[rng.next() as usize % AREAS.len()];
    // Exchanges start 2-9 and are never N11.
    let mut exchange = rng.range(201, 989);
    if exchange % 100 == 11 {
        exchange += 1;
    }
    let line = rng.range(0, 9999);
    match rng.next() % 4 {
        0 => format!("({area}) {exchange}-{line:04}"),
        1 => format!("{area}-{exchange}-{line:04}"),
        2 => format!("+1 {area} {exchange} {line:04}"),
        _ => format!("{area}.{exchange}.{line:04}"),
    }
}

/// A 16-digit Visa number with a valid Luhn check digit, grouped by four.
fn card(rng: &mut Rng) -> String {
    let mut digits = vec![4u8];
    digits.extend((0..14).map(|_| rng.range(0, 9) as u8));
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 0 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    digits.push(((10 - sum % 10) % 10) as u8);
    let s: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
    format!("{} {} {} {}", &s[0..4], &s[4..8], &s[8..12], &s[12..16])
}

fn notes(rng: &mut Rng, email: &str, phone: &str) -> String {
    let email = email.trim();
    let order = rng.range(1, 999_999);
    match rng.next() % 8 {
        0 | 1 => format!(
            "Met at the spring trade show; interested in the enterprise plan. Follow up by email at {email} before the quarter ends, cc the lead."
        ),
        2 | 3 => format!(
            "Asked for a callback on {phone} after 5pm re: order ORD-2024-{order:06}. Left a voicemail on 2024-03-15; try again next week."
        ),
        4 => format!(
            "Paid by card {} for invoice INV-{order:06}; refunds go to IBAN {} if the order is cancelled.",
            card(rng),
            rng.pick(IBANS)
        ),
        5 => format!(
            "Login trouble from IP 203.0.113.{} on 2024-11-02; identity checked with SSN {}-{:02}-{:04} and the password was reset.",
            rng.range(1, 254),
            rng.range(100, 665),
            rng.range(1, 99),
            rng.range(1, 9999)
        ),
        _ => format!(
            "Renewal discussed on 2025-01-20, invoice INV-{order:06} sent. Prefers no calls; happy with the plan and support times so far."
        ),
    }
}

/// 8192 contacts over every field a bench reads.
fn contacts() -> Batch {
    let schema = Arc::new(Schema::new(
        [
            "id",
            "email",
            "phone",
            "first_name",
            "birth_date",
            "postal_code",
            "amount",
            "notes",
        ]
        .map(String::from)
        .to_vec(),
    ));
    let mut batch = Batch::new(schema);
    let mut rng = Rng(0x4855_5348_464c_4f57);
    for row in 0..ROWS {
        let first = rng.pick(FIRST);
        let last = rng.pick(LAST);
        let email = email(&mut rng, first, last);
        let phone = phone(&mut rng);
        let birth = format!(
            "{}-{:02}-{:02}",
            rng.range(1945, 2006),
            rng.range(1, 12),
            rng.range(1, 28)
        );
        let postal = match rng.next() % 4 {
            0 => format!("{:05}-{:04}", rng.range(1001, 99950), rng.range(1, 9999)),
            _ => format!("{:05}", rng.range(1001, 99950)),
        };
        let amount = format!("{}.{:02}", rng.range(0, 250_000), rng.range(0, 99));
        let notes = notes(&mut rng, &email, &phone);
        let id = format!("c{row:06}");
        batch.push_row(
            row as u64 + 2,
            [
                Cell::text(&id),
                Cell::text(&email),
                Cell::text(&phone),
                Cell::text(first),
                Cell::text(&birth),
                Cell::text(&postal),
                Cell::text(&amount),
                Cell::text(&notes),
            ],
        );
    }
    batch
}

/// 32-byte test keys, given as resolved material.
fn keys() -> KeyMaterial {
    let mut keys = KeyMaterial::new();
    for (reference, id, material) in [
        (
            "env:HF_PEPPER",
            "0011223344556677",
            b"0123456789abcdef0123456789abcdef",
        ),
        (
            "keyring:names",
            "8899aabbccddeeff",
            b"fedcba9876543210fedcba9876543210",
        ),
    ] {
        keys.insert(
            reference.to_string(),
            ResolvedKey {
                id: id.to_string(),
                material: SecretValue::new(material.to_vec()),
            },
        );
    }
    keys
}

fn compile(name: &str, policy: &str, schema: &Schema, keys: &KeyMaterial) -> CompiledPolicy {
    let policy: Policy =
        toml::from_str(policy).unwrap_or_else(|e| panic!("policy of `{name}`: {e}"));
    policy
        .compile(
            schema,
            &CompileInputs {
                subjects: None,
                keys,
                suppression_list: &[],
                today: Day {
                    year: 2026,
                    month: 11,
                    day: 22,
                },
                withdrawal_key: None,
            },
        )
        .unwrap_or_else(|e| panic!("policy of `{name}`: {e}"))
}

fn actions(c: &mut Criterion) {
    let batch = contacts();
    let keys = keys();
    let mut group = c.benchmark_group("actions");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(ROWS as u64));
    for &(name, policy) in CASES {
        let compiled = compile(name, policy, batch.schema(), &keys);
        // Measure the path every record takes when it leaves: a bench whose data the action
        // refused would time the quarantine instead.
        let out = compiled.apply(&batch);
        assert!(
            out.rejected.is_empty(),
            "`{name}` rejected {} of {ROWS} records: {}",
            out.rejected.len(),
            out.rejected[0].1
        );
        assert_eq!(out.batch.len(), ROWS, "`{name}` kept every record");
        if name.starts_with("redact") {
            let redacted = out
                .batch
                .column(0)
                .iter()
                .filter(|c| c.text.contains("["))
                .count();
            assert!(
                redacted > ROWS / 2,
                "`{name}` redacted only {redacted} notes"
            );
        }
        // Freeing the output batch is timed too: a run pays it for every batch.
        group.bench_function(name, |b| b.iter(|| compiled.apply(black_box(&batch))));
    }
    group.finish();
}

criterion_group!(benches, actions);
criterion_main!(benches);
