//! SQL text built from names in a pipeline file: identifiers are always quoted, literals only
//! ever come from values hushflow itself stored (a committed position).

use hushflow_core::Cell;

/// `"name"`, or `"schema"."table"`, with quotes doubled: a name from a pipeline file can never
/// become SQL.
pub fn ident(name: &str) -> String {
    name.split('.')
        .map(|part| format!("\"{}\"", part.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

/// One identifier that must not be schema-qualified (a column).
pub fn column(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A string literal (standard_conforming_strings must be on: the source checks it).
pub fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Appends a cell in COPY's text format: `\N` for null, and backslash, tab, newline and
/// carriage return escaped.
pub fn copy_cell(cell: Cell<'_>, out: &mut Vec<u8>) {
    if cell.is_null() {
        out.extend_from_slice(b"\\N");
        return;
    }
    let text = cell.text.as_bytes();
    // Most values need no escaping: copy them whole.
    if !text
        .iter()
        .any(|b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r'))
    {
        out.extend_from_slice(text);
        return;
    }
    for &b in text {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// What a database error says, without the values some messages quote: data exceptions
/// (SQLSTATE class 22: `invalid input syntax for type integer: "…"`) and integrity violations
/// (class 23: `Key (id)=(…) already exists`) keep only their code, and a unique violation its
/// constraint's name. Reads and loads share it; the sink explains a unique violation by its
/// mode.
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => match d.code().code() {
            "23505" => match d.constraint() {
                Some(c) => format!("a row breaks a unique constraint (`{c}`) of the table"),
                None => "a row breaks a unique constraint of the table".into(),
            },
            code if code.starts_with("22") || code.starts_with("23") => {
                format!("a value was refused (SQLSTATE {code})")
            }
            _ => d.message().to_string(),
        },
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_names() {
        assert_eq!(ident("crm.contacts"), "\"crm\".\"contacts\"");
        assert_eq!(
            column("a\"; DROP TABLE x; --"),
            "\"a\"\"; DROP TABLE x; --\""
        );
        assert_eq!(literal("it's"), "'it''s'");
    }

    #[test]
    fn copy_text_escapes_what_it_must() {
        let mut out = Vec::new();
        copy_cell(Cell::text("a\tb\\c\nd\re"), &mut out);
        out.push(b'|');
        copy_cell(Cell::NULL, &mut out);
        out.push(b'|');
        copy_cell(Cell::text("\\N"), &mut out);
        assert_eq!(out, b"a\\tb\\\\c\\nd\\re|\\N|\\\\N");
    }
}
