//! One connection to the metadata database, SQLite or PostgreSQL, behind the few calls the
//! store makes. Queries are written once in PostgreSQL's `$1` style; parameters and columns
//! are only integers and text, so both dialects read them the same way.

use super::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(Option<i64>),
    Text(Option<String>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(Some(v))
    }
}
impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Value {
        Value::Int(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(Some(v.to_string()))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(Some(v))
    }
}
impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Value {
        Value::Text(v)
    }
}
impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Value {
        Value::Text(v.map(str::to_string))
    }
}

/// A result row; `int`/`text` read a column by position.
#[derive(Debug, Clone)]
pub struct Row(Vec<Value>);

impl Row {
    pub fn int(&self, i: usize) -> Option<i64> {
        match self.0.get(i) {
            Some(Value::Int(v)) => *v,
            Some(Value::Text(Some(t))) => t.parse().ok(),
            _ => None,
        }
    }
    pub fn int0(&self, i: usize) -> i64 {
        self.int(i).unwrap_or(0)
    }
    pub fn text(&self, i: usize) -> Option<String> {
        match self.0.get(i) {
            Some(Value::Text(v)) => v.clone(),
            Some(Value::Int(Some(v))) => Some(v.to_string()),
            _ => None,
        }
    }
    pub fn string(&self, i: usize) -> String {
        self.text(i).unwrap_or_default()
    }
}

/// Which database a store is: the few queries that differ between them ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (embedded, one machine).
    Sqlite,
    /// PostgreSQL (shared by machines).
    Postgres,
}

pub enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(Box<postgres::Client>),
}

fn pg_error(e: postgres::Error) -> StoreError {
    // The server's message names tables and constraints, never a parameter's value.
    let text = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    };
    StoreError::Database(text)
}

fn sqlite_error(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

impl Db {
    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    pub fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        match self {
            Db::Sqlite(c) => c.execute_batch(sql).map_err(sqlite_error),
            Db::Postgres(c) => c.batch_execute(sql).map_err(pg_error),
        }
    }

    pub fn exec(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        match self {
            Db::Sqlite(c) => {
                let sql = sql.replace('$', "?");
                let mut stmt = c.prepare_cached(&sql).map_err(sqlite_error)?;
                let n = stmt
                    .execute(rusqlite::params_from_iter(params.iter().map(to_sqlite)))
                    .map_err(sqlite_error)?;
                Ok(n as u64)
            }
            Db::Postgres(c) => {
                let boxed = to_pg(params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    boxed.iter().map(|b| b.as_ref()).collect();
                c.execute(sql, &refs).map_err(pg_error)
            }
        }
    }

    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        match self {
            Db::Sqlite(c) => {
                let sql = sql.replace('$', "?");
                let mut stmt = c.prepare_cached(&sql).map_err(sqlite_error)?;
                let width = stmt.column_count();
                let rows = stmt
                    .query_map(
                        rusqlite::params_from_iter(params.iter().map(to_sqlite)),
                        |row| {
                            (0..width)
                                .map(|i| {
                                    Ok(match row.get_ref(i)? {
                                        rusqlite::types::ValueRef::Integer(v) => {
                                            Value::Int(Some(v))
                                        }
                                        rusqlite::types::ValueRef::Null => Value::Int(None),
                                        rusqlite::types::ValueRef::Text(t) => Value::Text(Some(
                                            String::from_utf8_lossy(t).into_owned(),
                                        )),
                                        rusqlite::types::ValueRef::Real(r) => {
                                            Value::Int(Some(r as i64))
                                        }
                                        rusqlite::types::ValueRef::Blob(_) => Value::Text(None),
                                    })
                                })
                                .collect::<Result<Vec<_>, rusqlite::Error>>()
                                .map(Row)
                        },
                    )
                    .map_err(sqlite_error)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sqlite_error)
            }
            Db::Postgres(c) => {
                let boxed = to_pg(params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    boxed.iter().map(|b| b.as_ref()).collect();
                let rows = c.query(sql, &refs).map_err(pg_error)?;
                rows.iter()
                    .map(|row| {
                        (0..row.len())
                            .map(|i| {
                                use postgres::types::Type;
                                let ty = row.columns()[i].type_().clone();
                                let v = if ty == Type::INT8 {
                                    Value::Int(row.try_get::<_, Option<i64>>(i).map_err(pg_error)?)
                                } else if ty == Type::INT4 {
                                    Value::Int(
                                        row.try_get::<_, Option<i32>>(i)
                                            .map_err(pg_error)?
                                            .map(i64::from),
                                    )
                                } else if ty == Type::BOOL {
                                    Value::Int(
                                        row.try_get::<_, Option<bool>>(i)
                                            .map_err(pg_error)?
                                            .map(i64::from),
                                    )
                                } else {
                                    Value::Text(
                                        row.try_get::<_, Option<String>>(i).map_err(pg_error)?,
                                    )
                                };
                                Ok(v)
                            })
                            .collect::<Result<Vec<_>, StoreError>>()
                            .map(Row)
                    })
                    .collect()
            }
        }
    }

    /// Runs `f` in a transaction that takes the write lock at once (SQLite `BEGIN IMMEDIATE`,
    /// so that two writers never deadlock upgrading their locks); rolls back on error.
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&mut Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let begin = match self.dialect() {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        };
        self.batch(begin)?;
        match f(self) {
            Ok(v) => match self.batch("COMMIT") {
                Ok(()) => Ok(v),
                Err(e) => {
                    // Leave the connection usable: a failed COMMIT can leave the transaction open.
                    let _ = self.batch("ROLLBACK");
                    Err(e)
                }
            },
            Err(e) => {
                let _ = self.batch("ROLLBACK");
                Err(e)
            }
        }
    }
}

fn to_sqlite(v: &Value) -> rusqlite::types::Value {
    match v {
        Value::Int(Some(i)) => rusqlite::types::Value::Integer(*i),
        Value::Text(Some(t)) => rusqlite::types::Value::Text(t.clone()),
        Value::Int(None) | Value::Text(None) => rusqlite::types::Value::Null,
    }
}

fn to_pg(params: &[Value]) -> Vec<Box<dyn postgres::types::ToSql + Sync>> {
    params
        .iter()
        .map(|v| -> Box<dyn postgres::types::ToSql + Sync> {
            match v {
                Value::Int(i) => Box::new(*i),
                Value::Text(t) => Box::new(t.clone()),
            }
        })
        .collect()
}
