use super::*;
use crate::testing::{Row, batch, drain, entries, names, t, write_file};
use hushflow_core::{CellKind, Error, RejectReason, Sink, Source};
use std::path::Path;

fn source(path: &Path, wanted: Option<&[&str]>) -> CsvSource {
    let wanted = wanted.map(names);
    CsvSource::open(&CsvSourceConfig::new(path), wanted.as_deref()).unwrap()
}

fn open_error(path: &Path, wanted: Option<&[&str]>) -> String {
    let wanted = wanted.map(names);
    match CsvSource::open(&CsvSourceConfig::new(path), wanted.as_deref()) {
        Err(Error::Config(message)) => message,
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

const TRICKY: &[u8] = b"id,name,notes\n\
1,\"Doe, Jane\",\"first line\nsecond line\"\n\
2,\"She said \"\"hi\"\"\",plain\n\
3,,\"\"\"quoted\"\", with comma\"\n";

fn tricky_rows() -> Vec<Row> {
    vec![
        vec![t("1"), t("Doe, Jane"), t("first line\nsecond line")],
        vec![t("2"), t("She said \"hi\""), t("plain")],
        vec![t("3"), None, t("\"quoted\", with comma")],
    ]
}

#[test]
fn reads_quoted_commas_newlines_and_quotes() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "in.csv", TRICKY);
    let mut src = source(&path, None);
    assert_eq!(src.schema().fields(), names(&["id", "name", "notes"]));
    let out = drain(&mut src, 100);
    assert_eq!(out.rows, tricky_rows());
    // The first record spans lines 2 and 3.
    assert_eq!(out.lines, vec![2, 4, 5]);
    assert!(out.rejected.is_empty());
}

#[test]
fn round_trips_through_the_sink() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_file(dir.path(), "in.csv", TRICKY);
    let output = dir.path().join("out.csv");
    let mut src = source(&input, None);
    let mut sink = CsvSink::new(&CsvSinkConfig::new(&output)).unwrap();
    sink.open(&src.schema()).unwrap();
    while let Some(sb) = src.next_batch(2).unwrap() {
        sink.write_batch(&sb.batch).unwrap();
    }
    sink.finish().unwrap();

    let mut again = source(&output, None);
    assert_eq!(again.schema().fields(), names(&["id", "name", "notes"]));
    assert_eq!(drain(&mut again, 100).rows, tricky_rows());
    let text = std::fs::read_to_string(&output).unwrap();
    assert!(text.starts_with("id,name,notes\n1,\"Doe, Jane\",\"first line\nsecond line\"\n"));
    assert!(text.contains("\n3,,"), "null is an empty field: {text}");
}

#[test]
fn projection_takes_wanted_fields_in_the_order_given() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes =
        b"id,name,email,notes\n1,Ann,ann@example.com,ok\n2,Bob,bob@example.com,".to_vec();
    bytes.extend_from_slice(b"\xff\xfe bad bytes\n");
    let path = write_file(dir.path(), "in.csv", &bytes);
    let mut src = source(&path, Some(&["email", "id"]));
    assert_eq!(src.schema().fields(), names(&["email", "id"]));
    let out = drain(&mut src, 100);
    // Invalid UTF-8 in a column nobody wants does not reject the row.
    assert!(out.rejected.is_empty());
    assert_eq!(
        out.rows,
        vec![
            vec![t("ann@example.com"), t("1")],
            vec![t("bob@example.com"), t("2")],
        ]
    );
}

#[test]
fn wrong_field_count_is_rejected_at_its_starting_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = b"id,name,notes\n\
1,\"two\nlines\",a\n\
2,\"three\nmore\nlines\",b\n\
3,CANARY-7f3a\n\
4,ok,\"x\ny\"\n\
5,too,many,fields,CANARY-7f3a\n\
6,last,c\n";
    let path = write_file(dir.path(), "in.csv", data);
    let out = drain(&mut source(&path, None), 100);
    assert_eq!(out.lines, vec![2, 4, 8, 11]);
    assert_eq!(out.rows.len(), 4);
    assert_eq!(out.rejected.len(), 2);

    let short = &out.rejected[0];
    assert_eq!(short.line, 7);
    assert_eq!(
        short.reason,
        RejectReason::WrongFieldCount {
            expected: 3,
            found: 2
        }
    );
    // Positions are ambiguous in a row of the wrong width: nothing of it is kept.
    assert_eq!(short.raw, b"");
    let long = &out.rejected[1];
    assert_eq!(long.line, 10);
    assert_eq!(
        long.reason,
        RejectReason::WrongFieldCount {
            expected: 3,
            found: 5
        }
    );
    for r in &out.rejected {
        assert!(!r.reason.to_string().contains("CANARY"));
        assert!(r.raw.is_empty());
    }
    // Replayed, such a record is rejected again, by its line, rather than vanishing.
    let src = source(&path, None);
    let again = crate::RawDecoder::decode(&src, &[(7, &short.raw[..])]).unwrap();
    assert_eq!(again.batch.len(), 0);
    assert_eq!(again.rejected.len(), 1, "{:?}", again.rejected);
    assert_eq!(again.rejected[0].line, 7);
}

#[test]
fn invalid_utf8_in_a_wanted_field_is_rejected_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = b"id,name,city\n1,Ann,Oslo\n2,CANARY\xc3\x28name,Paris\n3,Cy,Rome\n".to_vec();
    // Bad bytes in a field not read pass; an \"é\" cut in two between fields is bad in both.
    data.extend_from_slice(b"4,Di,Lyon\xff\n5,Ed\xc3,\xa9Nice\n");
    let path = write_file(dir.path(), "in.csv", &data);
    let out = drain(&mut source(&path, Some(&["id", "name"])), 100);
    assert_eq!(out.lines, vec![2, 4, 5]);
    assert_eq!(out.rows[1], vec![t("3"), t("Cy")]);
    assert_eq!(out.rows[2], vec![t("4"), t("Di")]);
    let [bad, split] = out.rejected.as_slice() else {
        panic!("two rejects expected: {:?}", out.rejected);
    };
    assert_eq!(split.line, 6);
    assert_eq!(bad.line, 3);
    assert_eq!(
        bad.reason,
        RejectReason::InvalidUtf8 {
            field: Some("name".into())
        }
    );
    // The dropped field (`city`) is emptied; the row keeps its width for a replay.
    assert_eq!(bad.raw, b"2,CANARY\xc3\x28name,");
    let again = source(&path, Some(&["id", "name"]))
        .decode_records(&[(bad.line, &bad.raw)])
        .unwrap();
    assert_eq!(again.rejected[0].reason, bad.reason);
    let reason = bad.reason.to_string();
    assert!(reason.contains("`name`"), "{reason}");
    assert!(!reason.contains("CANARY"), "{reason}");
}

#[test]
fn strips_a_byte_order_mark() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "in.csv", b"\xEF\xBB\xBFid,name\r\n1,Ann\r\n");
    let mut src = source(&path, None);
    assert_eq!(src.schema().fields(), names(&["id", "name"]));
    assert_eq!(drain(&mut src, 10).rows, vec![vec![t("1"), t("Ann")]]);
    let out = drain(&mut source(&path, Some(&["id"])), 10);
    assert_eq!(out.rows, vec![vec![t("1")]]);
}

#[test]
fn a_missing_wanted_column_is_an_error_listing_the_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "in.csv", b"id,name\n1,Ann\n");
    let message = open_error(&path, Some(&["id", "phone"]));
    assert!(message.contains("in.csv"), "{message}");
    assert!(message.contains("has no column `phone`"), "{message}");
    assert!(message.contains("`id`, `name`"), "{message}");
}

#[test]
fn header_problems_are_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write_file(dir.path(), "empty.csv", b"");
    assert!(open_error(&empty, None).contains("header"));
    let twice = write_file(dir.path(), "twice.csv", b"id,email,email\n1,a,b\n");
    assert!(open_error(&twice, Some(&["email"])).contains("more than one column named `email`"));
    assert!(open_error(&twice, None).contains("`email` twice"));
    // A duplicated column nobody wants is fine.
    assert_eq!(drain(&mut source(&twice, Some(&["id"])), 10).rows.len(), 1);

    let mut config = CsvSourceConfig::new(&twice);
    config.has_header = false;
    let Err(Error::Config(message)) = CsvSource::open(&config, None) else {
        panic!("has_header = false must be refused");
    };
    assert!(
        message.contains("CSV sources need a header row"),
        "{message}"
    );

    let mut config = CsvSourceConfig::new(&twice);
    config.delimiter = 'é';
    assert!(matches!(
        CsvSource::open(&config, None),
        Err(Error::Config(_))
    ));
    let missing = CsvSource::open(&CsvSourceConfig::new(dir.path().join("nope.csv")), None);
    assert!(matches!(missing, Err(Error::Io { .. })));
}

#[test]
fn reads_other_delimiters() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "in.csv", b"id;name\n1;\"A;B\"\n");
    let mut config = CsvSourceConfig::new(&path);
    config.delimiter = ';';
    let out = drain(&mut CsvSource::open(&config, None).unwrap(), 10);
    assert_eq!(out.rows, vec![vec![t("1"), t("A;B")]]);
}

/// Chunks are cut where records end, whatever the quoting and line breaks, and every record
/// keeps the line it starts on, at every chunk size.
#[test]
fn chunks_cut_between_records_whatever_the_quoting() {
    let dir = tempfile::tempdir().unwrap();
    let data: &[u8] = b"id,a,b\r\n\
        1,\"x\"\"\ny\",plain\r\n\
        2,5'11\",\"\"\r\
        3,\"\"\"\",\"a,\rb\"\n\
        \n\
        4,\"q\"z,\"\r\n\"\n\
        5,last,\"end\"";
    let path = write_file(dir.path(), "in.csv", data);
    let expected = vec![
        vec![t("1"), t("x\"\ny"), t("plain")],
        vec![t("2"), t("5'11\""), None],
        vec![t("3"), t("\""), t("a,\rb")],
        vec![t("4"), t("qz"), t("\r\n")],
        vec![t("5"), t("last"), t("end")],
    ];
    for max_rows in 1..=7 {
        let out = drain(&mut source(&path, None), max_rows);
        assert_eq!(out.rows, expected, "max_rows {max_rows}");
        assert_eq!(out.lines, vec![2, 4, 4, 6, 8], "max_rows {max_rows}");
        assert!(out.rejected.is_empty());
    }
}

/// A quote never closed makes the rest of the file one record: it is set aside whole, counted,
/// never decoded into a row that would carry the records after it inside one field.
#[test]
fn an_unclosed_quote_sets_the_rest_of_the_file_aside() {
    let dir = tempfile::tempdir().unwrap();
    let data = b"id,email,notes\n0,z@x.com,ok\n1,a@x.com,\"oops\n2,b@x.com,fine\n3,c@x.com,\"\"";
    let path = write_file(dir.path(), "in.csv", data);
    for max_rows in [1, 2, 100] {
        let out = drain(&mut source(&path, None), max_rows);
        assert_eq!(out.rows, vec![vec![t("0"), t("z@x.com"), t("ok")]]);
        let [bad] = out.rejected.as_slice() else {
            panic!("one reject expected, got {}", out.rejected.len());
        };
        assert_eq!(bad.line, 3);
        assert_eq!(bad.reason, RejectReason::UnclosedQuote { lines: 3 });
        assert_eq!(bad.raw, b"1,a@x.com,\"oops\n2,b@x.com,fine\n3,c@x.com,\"\"");
    }
}

#[test]
fn batches_honor_max_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = String::from("id,email\n");
    for i in 0..10_000 {
        data.push_str(&format!("{i},user{i}@example.com\n"));
        if i % 1000 == 0 {
            data.push_str("broken\n");
        }
    }
    let path = write_file(dir.path(), "in.csv", data.as_bytes());
    let out = drain(&mut source(&path, None), 999);
    assert!(out.batch_sizes.iter().all(|&n| n <= 999));
    // 10,010 records (rejected ones count too) in chunks of 999.
    assert_eq!(out.batch_sizes.len(), 11);
    assert_eq!(out.rows.len(), 10_000);
    assert_eq!(out.rejected.len(), 10);
    assert_eq!(out.rows[9_999], vec![t("9999"), t("user9999@example.com")]);
    assert!(out.lines.windows(2).all(|w| w[0] < w[1]));
}

fn contacts() -> hushflow_core::Batch {
    batch(
        &["id", "name", "email"],
        &[
            vec![t("1"), t("Ann"), t("ann@example.com")],
            vec![t("2"), None, t("bob@example.com")],
        ],
    )
}

#[test]
fn the_sink_writes_the_chosen_fields_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.csv");
    let mut config = CsvSinkConfig::new(&output);
    config.fields = Some(names(&["email", "id"]));
    config.delimiter = '\t';
    let mut sink = CsvSink::new(&config).unwrap();
    let b = contacts();
    sink.open(b.schema()).unwrap();
    sink.write_batch(&b).unwrap();
    sink.finish().unwrap();
    assert_eq!(
        std::fs::read_to_string(&output).unwrap(),
        "email\tid\nann@example.com\t1\nbob@example.com\t2\n"
    );
}

#[test]
fn the_sink_refuses_an_unknown_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = CsvSinkConfig::new(dir.path().join("out.csv"));
    config.fields = Some(names(&["id", "phone"]));
    let mut sink = CsvSink::new(&config).unwrap();
    let Err(Error::Config(message)) = sink.open(contacts().schema()) else {
        panic!("an unknown field must be refused");
    };
    assert!(message.contains("`phone`"), "{message}");
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn the_target_appears_only_on_finish() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("nested/dir/out.csv");
    let mut sink = CsvSink::new(&CsvSinkConfig::new(&output)).unwrap();
    let b = contacts();
    sink.open(b.schema()).unwrap();
    sink.write_batch(&b).unwrap();
    assert!(!output.exists());
    assert_eq!(
        entries(output.parent().unwrap()).len(),
        1,
        "one temporary file"
    );
    sink.finish().unwrap();
    assert_eq!(entries(output.parent().unwrap()), vec!["out.csv"]);
    #[cfg(unix)]
    assert_eq!(crate::testing::mode(&output), 0o600);
    assert!(
        sink.write_batch(&b).is_err(),
        "nothing is written after finish"
    );
}

#[test]
fn a_sink_dropped_without_finish_leaves_the_target_alone() {
    let dir = tempfile::tempdir().unwrap();
    let output = write_file(dir.path(), "out.csv", b"previous results\n");
    {
        let mut sink = CsvSink::new(&CsvSinkConfig::new(&output)).unwrap();
        let b = contacts();
        sink.open(b.schema()).unwrap();
        sink.write_batch(&b).unwrap();
    }
    assert_eq!(entries(dir.path()), vec!["out.csv"]);
    assert_eq!(std::fs::read(&output).unwrap(), b"previous results\n");
}

#[test]
fn finish_replaces_an_existing_target() {
    let dir = tempfile::tempdir().unwrap();
    let output = write_file(dir.path(), "out.csv", b"previous results\n");
    let mut sink = CsvSink::new(&CsvSinkConfig::new(&output)).unwrap();
    let b = batch(
        &["id"],
        &[vec![t("1")], vec![Some((CellKind::Number, "2".into()))]],
    );
    sink.open(b.schema()).unwrap();
    sink.write_batch(&b).unwrap();
    sink.finish().unwrap();
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "id\n1\n2\n");
    #[cfg(unix)]
    assert_eq!(crate::testing::mode(&output), 0o600);
}

#[test]
fn configs_parse_with_defaults_and_refuse_unknown_keys() {
    let source: CsvSourceConfig = serde_json::from_str(r#"{"path": "in.csv"}"#).unwrap();
    assert_eq!(source, CsvSourceConfig::new("in.csv"));
    let sink: CsvSinkConfig =
        serde_json::from_str(r#"{"path": "out.csv", "delimiter": ";", "fields": ["id"]}"#).unwrap();
    assert_eq!(sink.delimiter, ';');
    assert_eq!(sink.fields, Some(names(&["id"])));
    assert!(serde_json::from_str::<CsvSinkConfig>(r#"{"path": "o", "type": "csv"}"#).is_err());
    assert!(serde_json::from_str::<CsvSourceConfig>(r#"{"path": "o", "quote": "'"}"#).is_err());
}

/// Cutting into chunks and decoding each must give exactly what the csv crate gives reading the
/// whole file in one go, on input full of quotes, delimiters and every kind of line break.
#[test]
fn chunked_reading_agrees_with_reading_whole() {
    const PIECES: &[&str] = &["a", "b", ",", "\"", "\"\"", "\n", "\r", "\r\n", " ", "é"];
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for round in 0..20 {
        let mut data = String::from("x,y,z\n");
        for _ in 0..300 {
            for field in 0..3 {
                if field > 0 {
                    data.push(',');
                }
                let quoted = next(2) == 0;
                if quoted {
                    data.push('"');
                }
                for _ in 0..next(6) {
                    let piece = PIECES[next(PIECES.len())];
                    data.push_str(if quoted && piece == "\"" {
                        "\"\""
                    } else {
                        piece
                    });
                }
                if quoted {
                    data.push('"');
                }
            }
            data.push_str(["\n", "\r\n", "\r"][next(3)]);
        }
        let path = write_file(dir.path(), &format!("in{round}.csv"), data.as_bytes());
        let mut whole = ::csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(&path)
            .unwrap();
        let mut expected = Vec::new();
        for record in whole.byte_records() {
            let record = record.unwrap();
            if record.len() == 3 {
                let row: Row = record
                    .iter()
                    .map(|f| (!f.is_empty()).then(|| t(std::str::from_utf8(f).unwrap()).unwrap()))
                    .collect();
                expected.push(row);
            }
        }
        for max_rows in [1, 2, 7, 64, 1000] {
            let out = drain(&mut source(&path, None), max_rows);
            assert_eq!(out.rows, expected, "round {round}, max_rows {max_rows}");
        }
    }
}

/// A file without a header row has its first record where the names should be: both the
/// validation peek and the source's open refuse it, and neither message holds a value of it.
#[test]
fn a_file_without_a_header_row_is_refused_without_its_first_record() {
    use crate::SourceConfig;
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        dir.path(),
        "in.csv",
        b"C001,Jane,jane@example.com,+49 30 901820\nC002,Bob,bob@example.com,+33 1 44\n",
    );
    let config = CsvSourceConfig::new(&path);
    let messages = [
        open_error(&path, Some(&["id", "email"])),
        open_error(&path, None),
        config.peek_fields().unwrap_err().to_string(),
        match config.raw_decoder(&names(&["id"])) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("a replay decoder opened the file"),
        },
    ];
    for message in messages {
        assert!(
            message.contains("seems to have no header row")
                && message.contains("column 1")
                && message.contains("Add a header row"),
            "{message}"
        );
        for value in ["C001", "Jane", "jane@", "901820"] {
            assert!(!message.contains(value), "{message}");
        }
    }

    // Names pass, at the peek and at open.
    let path = write_file(
        dir.path(),
        "ok.csv",
        b"\xEF\xBB\xBFid,email,phone_e164\n1,a@example.com,+4930\n",
    );
    let expected = names(&["id", "email", "phone_e164"]);
    assert_eq!(
        CsvSourceConfig::new(&path).peek_fields().unwrap(),
        Some(expected.clone())
    );
    assert_eq!(source(&path, None).schema().fields(), expected);
    // A file that is not there yet is unknown, not an error.
    assert_eq!(
        CsvSourceConfig::new(dir.path().join("later.csv"))
            .peek_fields()
            .unwrap(),
        None
    );
}

#[test]
fn has_header_false_is_a_problem_at_validation() {
    use crate::SourceConfig;
    let mut config = CsvSourceConfig::new("in.csv");
    assert!(config.problems().is_empty());
    config.has_header = false;
    assert_eq!(config.problems()[0].key, "has_header");
}

/// Opening finds each wanted column once (a map of the header), not by scanning the header per
/// wanted field: 40,000 columns open well under a second even in a debug build.
#[test]
fn forty_thousand_wanted_columns_open_in_linear_time() {
    let dir = tempfile::tempdir().unwrap();
    let header: Vec<String> = (0..40_000).map(|i| format!("field{i:05}")).collect();
    let path = write_file(
        dir.path(),
        "wide.csv",
        format!("{}\n", header.join(",")).as_bytes(),
    );
    let start = std::time::Instant::now();
    let src = CsvSource::open(&CsvSourceConfig::new(&path), Some(&header)).unwrap();
    crate::fields::check_unique(&path, &header, "the header").unwrap();
    let took = start.elapsed();
    assert_eq!(src.schema().len(), header.len());
    // Linear takes about 0.15 s in a debug build and quadratic about a minute: the bound tells
    // them apart with room for a loaded CI machine (speed itself lives in bench/).
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
}

/// A CSV sink's rows are found with their line (for manual action), and cannot be deleted.
#[test]
fn rows_are_found_with_their_line_and_not_deleted() {
    use crate::{RowMatch, SinkConfig, SinkContext};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    std::fs::write(&path, "id,email\n1,a\n\"2\nx\",b\n3,b\n").unwrap();
    let config = CsvSinkConfig::new(&path);
    let connections = Default::default();
    let ctx = SinkContext {
        base: dir.path(),
        key: "id",
        column_types: Default::default(),
        connections: &connections,
    };
    let mut rows = config.rows(&ctx).unwrap().unwrap();
    let found = rows
        .find(&[RowMatch {
            field: "email".into(),
            value: "b".into(),
        }])
        .unwrap();
    let lines: Vec<Option<u64>> = found.iter().map(|r| r.line).collect();
    assert_eq!(lines, [Some(3), Some(5)], "a quoted line break counts");
    assert!(!rows.can_delete());
    assert!(rows.delete(&[]).is_err());
}
