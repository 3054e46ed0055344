//! The column types a database sink gives typed output fields, and the check of an existing
//! table's columns against them. The words are the policy's value types (`text`, `integer`,
//! `boolean`, `date`, `timestamp`), handed over in [`SinkContext::column_types`]
//! (crate::SinkContext).

/// How one database names a value type: the type a new column gets, and the declared types of
/// an existing column that hold its values as the type (matched without regard to case).
pub(crate) struct Dialect {
    /// The database's name, for messages (`PostgreSQL`, `SQLite`).
    pub(crate) name: &'static str,
    /// `(value type, type of a new column, accepted types of an existing column)`.
    pub(crate) types: &'static [(&'static str, &'static str, &'static [&'static str])],
}

impl Dialect {
    /// The type a new column of `value_type` gets; an unknown word is used as it is.
    pub(crate) fn column_type<'a>(&self, value_type: &'a str) -> &'a str {
        self.types
            .iter()
            .find(|(t, _, _)| *t == value_type)
            .map_or(value_type, |(_, sql, _)| sql)
    }

    /// Checks an existing column's type `found` against the value type the policy writes into
    /// it: `Err` names the table, the column, the expected and the found types.
    pub(crate) fn check(
        &self,
        table: &str,
        column: &str,
        value_type: &str,
        found: &str,
    ) -> Result<(), String> {
        let Some((_, sql, accepted)) = self.types.iter().find(|(t, _, _)| *t == value_type) else {
            return Ok(());
        };
        let found_lower = found.trim().to_ascii_lowercase();
        if accepted
            .iter()
            .any(|a| found_lower == *a || (a.ends_with('(') && found_lower.starts_with(a)))
        {
            return Ok(());
        }
        let shown = if found.trim().is_empty() {
            "none"
        } else {
            found.trim()
        };
        Err(format!(
            "{} table `{table}`: column `{column}` has type {shown}, but the policy writes \
             {value_type} values into it (expected {}); change the column's type to {sql}, \
             write to a new table, or change the field's `type`",
            self.name,
            accepted
                .iter()
                .map(|a| match a.trim_end_matches('(') {
                    "" => "no declared type",
                    a => a,
                })
                .collect::<Vec<_>>()
                .join(" or "),
        ))
    }
}

/// PostgreSQL, by `information_schema.columns.data_type`.
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES: Dialect = Dialect {
    name: "PostgreSQL",
    types: &[
        ("text", "text", &["text", "character varying", "character"]),
        ("integer", "bigint", &["bigint", "integer", "smallint"]),
        ("boolean", "boolean", &["boolean"]),
        ("date", "date", &["date"]),
        ("timestamp", "timestamptz", &["timestamp with time zone"]),
    ],
};

/// SQLite, by declared type (`pragma_table_info`). A column declared without a type holds
/// each value as it is bound (an integer as INTEGER, a boolean as 0 or 1), so it is accepted
/// for every type.
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE: Dialect = Dialect {
    name: "SQLite",
    types: &[
        ("text", "TEXT", &["text", "varchar(", "character(", ""]),
        ("integer", "INTEGER", &["integer", "int", "bigint", ""]),
        ("boolean", "BOOLEAN", &["boolean", "bool", ""]),
        ("date", "DATE", &["date", ""]),
        ("timestamp", "TIMESTAMP", &["timestamp", "datetime", ""]),
    ],
};

#[cfg(all(test, feature = "postgres", feature = "sqlite"))]
mod tests {
    use super::*;

    #[test]
    fn types_are_checked_by_dialect() {
        assert_eq!(POSTGRES.column_type("timestamp"), "timestamptz");
        assert_eq!(SQLITE.column_type("boolean"), "BOOLEAN");
        assert!(POSTGRES.check("t", "n", "integer", "integer").is_ok());
        assert!(SQLITE.check("t", "n", "text", "VARCHAR(40)").is_ok());
        assert!(SQLITE.check("t", "n", "date", "").is_ok());
        let e = POSTGRES
            .check("leads", "seen", "timestamp", "text")
            .unwrap_err();
        assert!(e.contains("table `leads`"), "{e}");
        assert!(e.contains("column `seen` has type text"), "{e}");
        assert!(e.contains("expected timestamp with time zone"), "{e}");
        let e = SQLITE.check("leads", "ok", "boolean", "TEXT").unwrap_err();
        assert!(e.contains("expected boolean or bool"), "{e}");
    }
}
