use super::*;
use crate::testing::{Row, batch, drain, entries, k, names, t, write_file};
use hushflow_core::{CellKind, Error, RejectReason, Sink, Source};
use std::path::Path;

fn source(path: &Path, wanted: Option<&[&str]>) -> JsonlSource {
    let wanted = wanted.map(names);
    JsonlSource::open(&JsonlSourceConfig::new(path), wanted.as_deref()).unwrap()
}

const KINDS: &str = concat!(
    r#"{"id": "1", "n": 42, "f": 1.50, "e": -2E+3, "b": true, "z": null, "#,
    r#""o": {"a": [1, 2], "s": "x y"}, "a": [ ], "s": "q\"\u00e9\\n\n"}"#,
    "\n",
    r#"{"b": false, "id": "2"}"#,
    "\n"
);

fn kinds_rows() -> Vec<Row> {
    vec![
        vec![
            t("1"),
            k(CellKind::Number, "42"),
            k(CellKind::Number, "1.50"),
            k(CellKind::Number, "-2E+3"),
            k(CellKind::Bool, "true"),
            None,
            k(CellKind::Json, r#"{"a":[1,2],"s":"x y"}"#),
            k(CellKind::Json, "[]"),
            t("q\"é\\n\n"),
        ],
        vec![
            t("2"),
            None,
            None,
            None,
            k(CellKind::Bool, "false"),
            None,
            None,
            None,
            None,
        ],
    ]
}

#[test]
fn reads_every_kind_of_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "in.jsonl", KINDS.as_bytes());
    let mut src = source(&path, None);
    assert_eq!(
        src.schema().fields(),
        names(&["id", "n", "f", "e", "b", "z", "o", "a", "s"])
    );
    let out = drain(&mut src, 10);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(out.rows, kinds_rows());
    assert_eq!(out.lines, vec![1, 2]);
}

#[test]
fn kinds_survive_a_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_file(dir.path(), "in.jsonl", KINDS.as_bytes());
    let output = dir.path().join("out.jsonl");
    let mut src = source(&input, None);
    let mut sink = JsonlSink::new(&JsonlSinkConfig::new(&output)).unwrap();
    sink.open(&src.schema()).unwrap();
    while let Some(sb) = src.next_batch(1).unwrap() {
        sink.write_batch(&sb.batch).unwrap();
    }
    sink.finish().unwrap();

    let text = std::fs::read_to_string(&output).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        r#"{"id":"1","n":42,"f":1.50,"e":-2E+3,"b":true,"z":null,"o":{"a":[1,2],"s":"x y"},"a":[],"s":"q\"é\\n\n"}"#
    );
    assert_eq!(
        lines.next().unwrap(),
        r#"{"id":"2","n":null,"f":null,"e":null,"b":false,"z":null,"o":null,"a":null,"s":null}"#
    );
    assert_eq!(lines.next(), None);
    assert_eq!(drain(&mut source(&output, None), 10).rows, kinds_rows());
}

#[test]
fn broken_json_is_rejected_without_quoting_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        r#"{"id": "1", "email": "CANARY@example.com",}"#,
        r#"{"id": "2", "email": "CANARY@example.com""#,
        r#"{"id": "3", "email": CANARY}"#,
        r#"{"id": "4", "email": "CANARY"} {"more": 1}"#,
        r#"{"id": "5", "email": "CANARY\q"}"#,
        r#"{"id": "6", "email": "CANARY\ud800"}"#,
        r#"{"id": "7", "email": "ok"}"#,
    ];
    let path = write_file(dir.path(), "in.jsonl", lines.join("\n").as_bytes());
    let out = drain(&mut source(&path, Some(&["id", "email"])), 10);
    assert_eq!(out.rows, vec![vec![t("7"), t("ok")]]);
    assert_eq!(out.lines, vec![7]);
    assert_eq!(out.rejected.len(), 6);
    let details: Vec<&str> = out
        .rejected
        .iter()
        .map(|r| match &r.reason {
            RejectReason::BrokenJson { detail, .. } => detail.as_ref(),
            ref other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        details,
        vec![
            "trailing comma",
            "EOF while parsing an object",
            "expected value",
            "trailing characters",
            "invalid escape",
            "invalid string escape"
        ]
    );
    for (i, r) in out.rejected.iter().enumerate() {
        assert_eq!(r.line, i as u64 + 1);
        assert_eq!(r.raw, lines[i].as_bytes());
        let reason = r.reason.to_string();
        assert!(!reason.contains("CANARY"), "{reason}");
    }
    let RejectReason::BrokenJson { column, .. } = out.rejected[2].reason else {
        unreachable!()
    };
    assert_eq!(column, lines[2].find("CANARY").unwrap() + 1);
}

#[test]
fn a_line_that_is_not_an_object_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let data = "[\"CANARY\"]\n  \"CANARY\"\n42\n{\"id\": \"1\"}\n";
    let path = write_file(dir.path(), "in.jsonl", data.as_bytes());
    let out = drain(&mut source(&path, None), 10);
    assert_eq!(out.rows, vec![vec![t("1")]]);
    let reasons: Vec<_> = out
        .rejected
        .iter()
        .map(|r| (r.line, r.reason.clone()))
        .collect();
    let not_object = |column| RejectReason::BrokenJson {
        column,
        detail: "not a JSON object".into(),
    };
    assert_eq!(
        reasons,
        vec![(1, not_object(1)), (2, not_object(3)), (3, not_object(1))]
    );
}

#[test]
fn a_too_long_line_is_skipped_and_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!(r#"{{"id": "1", "notes": "{}"}}"#, "x".repeat(500));
    let exact = format!(r#"{{"id":"3","n":"{}"}}"#, "y".repeat(64 - 17));
    assert_eq!(exact.len(), 64);
    let over = format!("{exact} ");
    let data = format!("{long}\n{{\"id\": \"2\"}}\n{exact}\r\n{over}\r\n{exact}\n{long}");
    let path = write_file(dir.path(), "in.jsonl", data.as_bytes());
    let config = JsonlSourceConfig::new(&path);
    let wanted = names(&["id"]);
    let mut src = JsonlSource::open_with_limit(&config, Some(&wanted), 64).unwrap();
    let out = drain(&mut src, 10);
    assert_eq!(out.rows, vec![vec![t("2")], vec![t("3")], vec![t("3")]]);
    assert_eq!(out.lines, vec![2, 3, 5]);
    assert_eq!(out.rejected.len(), 3);
    for (r, line) in out.rejected.iter().zip([1, 4, 6]) {
        assert_eq!(r.line, line);
        assert_eq!(r.reason, RejectReason::TooLong { limit: 64 });
        assert!(r.raw.is_empty());
    }
}

#[test]
fn blank_lines_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let data = "\n{\"id\": \"1\"}\r\n   \n\t\r\n{\"id\": \"2\"}\n\n";
    let path = write_file(dir.path(), "in.jsonl", data.as_bytes());
    let out = drain(&mut source(&path, None), 10);
    assert_eq!(out.rows, vec![vec![t("1")], vec![t("2")]]);
    assert_eq!(out.lines, vec![2, 5]);
    assert!(out.rejected.is_empty());
}

#[test]
fn invalid_utf8_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        dir.path(),
        "in.jsonl",
        b"{\"id\": \"\xff\"}\n{\"id\": \"2\"}\n",
    );
    let out = drain(&mut source(&path, Some(&["id"])), 10);
    assert_eq!(out.rows, vec![vec![t("2")]]);
    assert_eq!(out.rejected[0].line, 1);
    assert_eq!(
        out.rejected[0].reason,
        RejectReason::InvalidUtf8 {
            field: Some("id".into())
        }
    );
    // Nothing of a line that is not UTF-8 is kept: its bytes may hold dropped fields.
    assert!(out.rejected[0].raw.is_empty());
}

#[test]
fn bad_utf8_in_a_dropped_field_neither_rejects_the_record_nor_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        dir.path(),
        "in.jsonl",
        b"{\"id\": \"1\", \"notes\": \"CANARY-\xff-7f3a\"}\n{\"id\": \"2\", \"notes\": \"x\"}\n",
    );
    let out = drain(&mut source(&path, Some(&["id"])), 10);
    assert_eq!(out.rows, vec![vec![t("1")], vec![t("2")]]);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    // A broken line that is also not UTF-8 keeps nothing either.
    let path = write_file(
        dir.path(),
        "b.jsonl",
        b"{\"id\": \"3\", \"notes\": \"\xff CANARY\"\n",
    );
    let out = drain(&mut source(&path, Some(&["id"])), 10);
    assert_eq!(out.rejected.len(), 1);
    assert!(out.rejected[0].raw.is_empty());
}

#[test]
fn the_schema_comes_from_the_first_object_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let data = "\u{feff}not json\n\n{\"b\": 1, \"a\": 2, \"b\": 3}\n{\"a\": 4, \"c\": 5}\n";
    let path = write_file(dir.path(), "in.jsonl", data.as_bytes());
    let mut src = source(&path, None);
    assert_eq!(src.schema().fields(), names(&["b", "a"]));
    let out = drain(&mut src, 10);
    assert_eq!(out.rejected.len(), 2);
    assert_eq!(out.rejected[0].line, 1);
    assert_eq!(
        out.rejected[0].raw, b"not json",
        "the byte order mark is dropped"
    );
    // `b` twice: neither value is taken for the record's.
    assert_eq!(out.rejected[1].line, 3);
    assert_eq!(out.rejected[1].reason.code(), "invalid_field");
    assert_eq!(out.rows, vec![vec![None, k(CellKind::Number, "4")]]);
    assert_eq!(out.lines, vec![4]);

    let empty = write_file(dir.path(), "empty.jsonl", b"");
    let mut src = source(&empty, None);
    assert!(src.schema().is_empty());
    assert!(src.next_batch(10).unwrap().is_none());
}

#[test]
fn projection_skips_unwanted_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = r#"{"id": "1", "secret": {"deep": [1, {"x": "\u0041"}]}, "email": "a@b"}"#;
    let path = write_file(dir.path(), "in.jsonl", data.as_bytes());
    let mut src = source(&path, Some(&["email", "phone", "id"]));
    assert_eq!(src.schema().fields(), names(&["email", "phone", "id"]));
    assert_eq!(drain(&mut src, 10).rows, vec![vec![t("a@b"), None, t("1")]]);
}

#[test]
fn batches_honor_max_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = String::new();
    for i in 0..5_000 {
        data.push_str(&format!("{{\"id\": \"{i}\", \"n\": {i}}}\n"));
    }
    let path = write_file(dir.path(), "in.jsonl", data.as_bytes());
    let out = drain(&mut source(&path, None), 512);
    assert!(out.batch_sizes.iter().all(|&n| n <= 512));
    assert_eq!(out.rows.len(), 5_000);
    assert_eq!(
        out.rows[4_999],
        vec![t("4999"), k(CellKind::Number, "4999")]
    );
    assert_eq!(out.lines.last(), Some(&5_000));
}

fn contacts() -> hushflow_core::Batch {
    batch(
        &["id", "name", "n", "flag", "meta"],
        &[
            vec![
                t("1"),
                t("Ann \"A\"\t\u{1}\u{7f}"),
                k(CellKind::Number, "7"),
                k(CellKind::Bool, "true"),
                k(CellKind::Json, "{\"a\":1}"),
            ],
            vec![
                t("2"),
                None,
                k(CellKind::Number, "not a number"),
                k(CellKind::Bool, "yes"),
                k(CellKind::Json, "{broken"),
            ],
        ],
    )
}

#[test]
fn the_sink_writes_valid_json_for_any_cell() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.jsonl");
    let mut sink = JsonlSink::new(&JsonlSinkConfig::new(&output)).unwrap();
    let b = contacts();
    sink.open(b.schema()).unwrap();
    sink.write_batch(&b).unwrap();
    sink.finish().unwrap();
    let text = std::fs::read_to_string(&output).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        vec![
            // DEL needs no escape in JSON.
            "{\"id\":\"1\",\"name\":\"Ann \\\"A\\\"\\t\\u0001\u{7f}\",\"n\":7,\"flag\":true,\"meta\":{\"a\":1}}",
            r#"{"id":"2","name":null,"n":"not a number","flag":"yes","meta":"{broken"}"#,
        ]
    );
    for line in lines {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
}

#[test]
fn the_sink_writes_the_chosen_fields_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.jsonl");
    let mut config = JsonlSinkConfig::new(&output);
    config.fields = Some(names(&["n", "id"]));
    let mut sink = JsonlSink::new(&config).unwrap();
    let b = contacts();
    sink.open(b.schema()).unwrap();
    sink.write_batch(&b).unwrap();
    sink.finish().unwrap();
    assert_eq!(
        std::fs::read_to_string(&output).unwrap(),
        "{\"n\":7,\"id\":\"1\"}\n{\"n\":\"not a number\",\"id\":\"2\"}\n"
    );
}

#[test]
fn the_sink_refuses_an_unknown_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = JsonlSinkConfig::new(dir.path().join("out.jsonl"));
    config.fields = Some(names(&["id", "phone"]));
    let mut sink = JsonlSink::new(&config).unwrap();
    let Err(Error::Config(message)) = sink.open(contacts().schema()) else {
        panic!("an unknown field must be refused");
    };
    assert!(message.contains("`phone`"), "{message}");
    config.fields = Some(names(&["id", "id"]));
    let mut sink = JsonlSink::new(&config).unwrap();
    assert!(matches!(
        sink.open(contacts().schema()),
        Err(Error::Config(_))
    ));
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn the_target_appears_only_on_finish() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.jsonl");
    let mut sink = JsonlSink::new(&JsonlSinkConfig::new(&output)).unwrap();
    let b = contacts();
    sink.open(b.schema()).unwrap();
    // Enough rows to go past the write buffer.
    for _ in 0..2_000 {
        sink.write_batch(&b).unwrap();
    }
    assert!(!output.exists());
    assert_eq!(entries(dir.path()).len(), 1, "one temporary file");
    sink.finish().unwrap();
    assert_eq!(entries(dir.path()), vec!["out.jsonl"]);
    assert_eq!(
        std::fs::read_to_string(&output).unwrap().lines().count(),
        4_000
    );
    #[cfg(unix)]
    assert_eq!(crate::testing::mode(&output), 0o600);
}

#[test]
fn a_sink_dropped_without_finish_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.jsonl");
    {
        let mut sink = JsonlSink::new(&JsonlSinkConfig::new(&output)).unwrap();
        let b = contacts();
        sink.open(b.schema()).unwrap();
        sink.write_batch(&b).unwrap();
        assert_eq!(entries(dir.path()).len(), 1);
    }
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn configs_refuse_unknown_keys() {
    let config: JsonlSinkConfig = serde_json::from_str(r#"{"path": "out.jsonl"}"#).unwrap();
    assert_eq!(config, JsonlSinkConfig::new("out.jsonl"));
    assert!(
        serde_json::from_str::<JsonlSourceConfig>(r#"{"path": "a", "type": "jsonl"}"#).is_err()
    );
}

/// Rows (line and cells) and rejections, whatever the batches' cut.
fn everything(
    batches: Vec<hushflow_core::SourceBatch>,
) -> (Vec<(u64, Row)>, Vec<hushflow_core::Rejected>) {
    let (mut rows, mut rejected) = (Vec::new(), Vec::new());
    for sb in batches {
        for row in 0..sb.batch.len() {
            let cells = sb
                .batch
                .columns()
                .iter()
                .map(|c| {
                    let cell = c.get(row);
                    (!cell.is_null()).then(|| (cell.kind, cell.text.to_string()))
                })
                .collect();
            rows.push((sb.batch.lines()[row], cells));
        }
        rejected.extend(sb.rejected);
    }
    (rows, rejected)
}

#[test]
fn chunks_decoded_apart_give_what_batches_give() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!(r#"{{"id": "9", "s": "{}"}}"#, "x".repeat(100));
    let data = format!(
        "\u{feff}{{\"id\": \"1\", \"s\": 2}}\r\n\n{long}\n[1]\n{{\"id\": \"3\"\n  \n{{\"s\": {{\"a\": true}}}}\n{{\"id\": \"4\"}}"
    );
    let mut bytes = data.into_bytes();
    bytes.extend_from_slice(b"\n{\"id\": \"\xff\"}\n{\"id\": \"5\"}\n");
    let path = write_file(dir.path(), "in.jsonl", &bytes);
    let config = JsonlSourceConfig::new(&path);
    let wanted = names(&["s", "id"]);
    for max_rows in [1, 2, 3, 100] {
        let mut whole = JsonlSource::open_with_limit(&config, Some(&wanted), 64).unwrap();
        let mut batches = Vec::new();
        while let Some(b) = whole.next_batch(max_rows).unwrap() {
            batches.push(b);
        }
        let mut chunked = JsonlSource::open_with_limit(&config, Some(&wanted), 64).unwrap();
        let mut chunks = Vec::new();
        while let Some(c) = chunked.next_chunk(max_rows).unwrap() {
            chunks.push(c);
        }
        // Decoded in reverse, as parallel workers may.
        let mut decoded: Vec<_> = chunks
            .into_iter()
            .rev()
            .map(|c| c.decode().unwrap())
            .collect();
        decoded.reverse();
        let expected = everything(batches);
        assert_eq!(expected.0.len(), 4, "{expected:?}");
        assert_eq!(expected.1.len(), 4, "{expected:?}");
        assert_eq!(everything(decoded), expected, "max_rows {max_rows}");
    }
}

/// An object with a wanted key twice (which value would win?) and a record key that is an
/// object or an array are rejected, naming the field and no value; by batches, by chunks and
/// through the `[source]` table alike. A repeated key the pipeline does not read is harmless.
#[test]
fn duplicate_keys_and_a_non_scalar_record_key_are_rejected_naming_the_field() {
    use crate::{Connections, SourceConfig, SourceContext};
    let dir = tempfile::tempdir().unwrap();
    let data = concat!(
        r#"{"id": "1", "email": "a@example.com"}"#,
        "\n",
        r#"{"id": "2", "email": "first-canary@example.com", "email": "second@example.com"}"#,
        "\n",
        r#"{"id": {"nested": "canary"}, "email": "c@example.com"}"#,
        "\n",
        r#"{"id": ["canary"], "email": "d@example.com"}"#,
        "\n",
        r#"{"id": "5", "other": 1, "other": 2}"#,
        "\n",
        r#"{"id": "6", "email": null, "email": "e@example.com"}"#,
        "\n",
        r#"{"id": 7, "email": "f@example.com"}"#,
        "\n",
    );
    let path = write_file(dir.path(), "in.jsonl", data.as_bytes());
    let config = JsonlSourceConfig::new(&path);
    let wanted = names(&["id", "email"]);
    let twice = |field: &str| RejectReason::InvalidField {
        field: field.into(),
        detail: "appears more than once in the object".into(),
    };
    let not_scalar = RejectReason::InvalidField {
        field: "id".into(),
        detail: "is an object or an array; a record key must be a string, a number or a boolean"
            .into(),
    };
    let expected = vec![
        (2, twice("email")),
        (3, not_scalar.clone()),
        (4, not_scalar),
        (6, twice("email")),
    ];
    let check = |lines: Vec<u64>, rejected: Vec<hushflow_core::Rejected>| {
        assert_eq!(lines, vec![1, 5, 7]);
        let got: Vec<(u64, RejectReason)> = rejected
            .iter()
            .map(|r| (r.line, r.reason.clone()))
            .collect();
        assert_eq!(got, expected);
        for r in &rejected {
            assert!(!r.reason.to_string().contains("canary"), "{}", r.reason);
        }
    };

    let mut by_batches = JsonlSource::open(&config, Some(&wanted))
        .unwrap()
        .with_key("id");
    let out = drain(&mut by_batches, 3);
    check(out.lines, out.rejected);

    let connections = Connections::new();
    let ctx = SourceContext {
        base: dir.path(),
        fields: &wanted,
        key: "id",
        after: None,
        connections: &connections,
    };
    let mut by_chunks = config.open(&ctx).unwrap();
    let (mut lines, mut rejected) = (Vec::new(), Vec::new());
    while let Some(chunk) = by_chunks.next_chunk(2).unwrap() {
        let sb = chunk.decode().unwrap();
        lines.extend_from_slice(sb.batch.lines());
        rejected.extend(sb.rejected);
    }
    check(lines, rejected);
}

/// A JSON lines sink's rows are found by a field's value as text (numbers included), with
/// their line; lines that are not objects hold no row.
#[test]
fn rows_are_found_with_their_line() {
    use crate::{RowMatch, SinkConfig, SinkContext};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    std::fs::write(
        &path,
        "{\"id\":1,\"email\":\"a\"}\nnot json\n{\"id\":2,\"email\":null}\n{\"id\":3,\"email\":\"a\"}\n",
    )
    .unwrap();
    let config = JsonlSinkConfig::new(&path);
    let connections = Default::default();
    let ctx = SinkContext {
        base: dir.path(),
        key: "id",
        column_types: Default::default(),
        connections: &connections,
    };
    let mut rows = config.rows(&ctx).unwrap().unwrap();
    let m = |field: &str, value: &str| RowMatch {
        field: field.into(),
        value: value.into(),
    };
    let found = rows.find(&[m("email", "a"), m("id", "2")]).unwrap();
    let lines: Vec<Option<u64>> = found.iter().map(|r| r.line).collect();
    assert_eq!(lines, [Some(1), Some(3), Some(4)]);
    assert!(found[1].fields.contains(&("email".into(), None)));
    assert!(!rows.can_delete());
}

/// The flat-object fast path (`flat.rs`) against serde_json's path, on generated lines: flat
/// and nested objects, every kind of value, escapes, whitespace, duplicate keys, and broken
/// tokens of each kind. Both must give the same cells or the same rejection.
mod fast_path_equals_serde {
    use super::super::source::{ABSENT, FieldIndex, Row as Wanted, Slot, parse_row_with};
    use hushflow_core::{CellKind, RejectReason};
    use proptest::prelude::*;

    type Parsed = (Result<(), RejectReason>, Vec<(CellKind, String, bool)>);

    fn parse(line: &str, fast: bool) -> Parsed {
        let fields: Vec<String> = ["id", "email", "notes", "n"].map(String::from).to_vec();
        let index: FieldIndex = fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.clone(), i))
            .collect();
        let row = Wanted {
            index: &index,
            fields: &fields,
            key: Some(0),
        };
        let mut slots: Vec<Slot> = vec![ABSENT; fields.len()];
        let mut text = String::new();
        let result = parse_row_with(line, row, &mut slots, &mut text, fast);
        let cells = if result.is_ok() {
            slots
                .iter()
                .map(|s| (s.kind, text[s.start..s.end].to_string(), s.seen))
                .collect()
        } else {
            Vec::new()
        };
        (result, cells)
    }

    fn ws() -> impl Strategy<Value = String> {
        prop_oneof![Just(""), Just(" "), Just("\t"), Just(" \r "), Just("\n")]
            .prop_map(String::from)
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(r#""id""#),
            Just(r#""email""#),
            Just(r#""notes""#),
            Just(r#""n""#),
            Just(r#""other""#),
            Just(r#""é""#),
            Just(r#""em\u0061il""#),
            Just(r#""e\"x""#),
            Just(r#""""#),
            Just("id"),
            Just("1"),
            Just(r#""unterminated"#),
        ]
        .prop_map(String::from)
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            // Valid.
            Just(r#""plain text""#),
            Just(r#""""#),
            Just(r#""Zoë Ünal — 東京""#),
            Just(r#""a \"quoted\" word\\ and \/ \b\f\n\r\t""#),
            Just(r#""\u00e9\ud83d\ude00""#),
            Just("0"),
            Just("-0"),
            Just("123"),
            Just("-12.50"),
            Just("6.02E+23"),
            Just("1e-7"),
            Just("1e400"),
            Just("18446744073709551616123"),
            Just("true"),
            Just("false"),
            Just("null"),
            Just(r#"{"a": [1, {"b": "c"}]}"#),
            Just("[ ]"),
            // Broken.
            Just("01"),
            Just("1."),
            Just(".5"),
            Just("-"),
            Just("+1"),
            Just("1e"),
            Just("1e+"),
            Just("--1"),
            Just("0x10"),
            Just("tru"),
            Just("nul"),
            Just("True"),
            Just("NaN"),
            Just("\"tab\tinside\""),
            Just("\"nul\u{0}inside\""),
            Just(r#""bad \x escape""#),
            Just(r#""bad \u12 escape""#),
            Just(r#""lone \ud800 surrogate""#),
            Just(r#""unterminated"#),
            Just("'single'"),
            Just(""),
        ]
        .prop_map(String::from)
    }

    fn member() -> impl Strategy<Value = String> {
        (key(), ws(), ws(), value(), ws()).prop_map(|(k, a, b, v, c)| format!("{k}{a}:{b}{v}{c}"))
    }

    fn object() -> impl Strategy<Value = String> {
        (
            ws(),
            prop::collection::vec(member(), 0..6),
            ws(),
            prop_oneof![Just(""), Just(","), Just(" x"), Just("}"), Just("\u{0}")],
        )
            .prop_map(|(lead, members, tail, junk)| {
                format!("{lead}{{{}}}{tail}{junk}", members.join(","))
            })
    }

    /// Objects with one byte replaced or removed: truncations, missing commas and colons.
    fn damaged() -> impl Strategy<Value = String> {
        (
            object(),
            any::<prop::sample::Index>(),
            prop::sample::select(vec!["", ",", ":", "\"", "}", "{", "\\", " ", "a", "9"]),
        )
            .prop_map(|(line, at, with)| {
                let bytes: Vec<char> = line.chars().collect();
                if bytes.is_empty() {
                    return line;
                }
                let i = at.index(bytes.len());
                let mut out: String = bytes[..i].iter().collect();
                out.push_str(with);
                out.extend(&bytes[i + 1..]);
                out
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn on_generated_objects(line in object()) {
            prop_assert_eq!(parse(&line, true), parse(&line, false), "line {:?}", line);
        }

        #[test]
        fn on_damaged_objects(line in damaged()) {
            prop_assert_eq!(parse(&line, true), parse(&line, false), "line {:?}", line);
        }

        #[test]
        fn on_arbitrary_text(line in r#"[{}\[\]":,\\ \t0-9eE.+\-truefalsn"ié\x01]{0,40}"#) {
            prop_assert_eq!(parse(&line, true), parse(&line, false), "line {:?}", line);
        }
    }

    #[test]
    fn flat_lines_take_the_fast_path() {
        // Not a check of equality (the proptests do that) but that the fast path is used at
        // all: a line it reads gives the same cells with the serde path switched off.
        let line = r#"{"id": 7, "email": "a@example.com", "other": [1], "notes": "x\"y"}"#;
        let (result, _) = parse(line, true);
        assert!(result.is_ok());
        let flat = r#"{"id": 7, "email": "a@example.com", "notes": "x\"y", "n": null}"#;
        let fields: Vec<String> = ["id", "email", "notes", "n"].map(String::from).to_vec();
        let index: FieldIndex = fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.clone(), i))
            .collect();
        let row = Wanted {
            index: &index,
            fields: &fields,
            key: Some(0),
        };
        let mut slots = vec![ABSENT; 4];
        let mut text = String::new();
        let mut problem = None;
        assert!(super::super::flat::parse_flat(
            flat,
            row,
            &mut slots,
            &mut text,
            &mut problem
        ));
        assert_eq!(&text[slots[2].start..slots[2].end], "x\"y");
        assert_eq!(slots[3].kind, CellKind::Null);
        let nested = r#"{"id": 7, "other": [1]}"#;
        assert!(!super::super::flat::parse_flat(
            nested,
            row,
            &mut slots,
            &mut text,
            &mut problem
        ));
    }
}
