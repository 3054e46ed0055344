//! Rows as stored: read without assuming the column types, so that a tampered row is still a
//! row to judge, and turned into [`AuditRecord`]s where they can be.

use super::chain::{HashInput, record_hash};
use super::{AuditError, AuditLog, AuditRecord, COLUMNS, sql_error};
use rusqlite::Connection;
use rusqlite::types::ValueRef;
use std::path::Path;

impl AuditLog {
    /// Every row as stored, sorted by (seq, rowid), read without assuming the column types so
    /// that a tampered row is still a row to judge.
    pub(super) fn raw_rows(&self) -> Result<Vec<RawRow>, AuditError> {
        read_raw_rows(&self.conn, &self.path, None)
    }
}

/// The rows as stored (those numbered `from` and up, if given), sorted by (seq, rowid), read
/// without assuming the column types. `path` names the database in errors.
pub(super) fn read_raw_rows(
    conn: &Connection,
    path: &Path,
    from: Option<i64>,
) -> Result<Vec<RawRow>, AuditError> {
    let read = || -> rusqlite::Result<Vec<RawRow>> {
        let filter = if from.is_some() {
            " WHERE seq >= ?1"
        } else {
            ""
        };
        let mut stmt = conn.prepare(&format!("SELECT rowid, {COLUMNS} FROM audit{filter}"))?;
        let params: &[&dyn rusqlite::ToSql] = match &from {
            Some(from) => &[from],
            None => &[],
        };
        let rows = stmt.query_map(params, |row| {
            let mut typed = true;
            let rowid = row.get(0)?;
            let seq = match row.get_ref(1)? {
                ValueRef::Integer(i) => i,
                other => {
                    typed = false;
                    String::from_utf8_lossy(&value_bytes(other))
                        .trim()
                        .parse()
                        .unwrap_or(i64::MAX)
                }
            };
            let mut required = |i| row.get_ref(i).map(|v| required_bytes(v, &mut typed));
            let time = required(2)?;
            let actor = required(3)?;
            let action = required(4)?;
            let counts = required(7)?;
            let outcome = required(8)?;
            let prev_hash = required(10)?;
            let hash = required(11)?;
            let mut optional = |i| row.get_ref(i).map(|v| optional_bytes(v, &mut typed));
            let pipeline = optional(5)?;
            let policy_fingerprint = optional(6)?;
            let detail = optional(9)?;
            Ok(RawRow {
                rowid,
                seq,
                typed,
                time,
                actor,
                action,
                pipeline,
                policy_fingerprint,
                counts,
                outcome,
                detail,
                prev_hash,
                hash,
            })
        })?;
        rows.collect()
    };
    let mut rows = read().map_err(sql_error(path, "read the records"))?;
    // A column of the wrong type compares above every number in SQL; drop what is below `from`.
    rows.retain(|r| from.is_none_or(|from| r.seq >= from));
    rows.sort_by_key(|r| (r.seq, r.rowid));
    Ok(rows)
}

/// A row as stored. `typed` is false when a column holds a type the schema does not allow
/// (possible only in a table rebuilt without `STRICT`); such a row never matches its hash.
#[derive(Debug, Clone)]
pub(super) struct RawRow {
    pub(super) rowid: i64,
    pub(super) seq: i64,
    pub(super) typed: bool,
    pub(super) time: Vec<u8>,
    pub(super) actor: Vec<u8>,
    pub(super) action: Vec<u8>,
    pub(super) pipeline: Option<Vec<u8>>,
    pub(super) policy_fingerprint: Option<Vec<u8>>,
    pub(super) counts: Vec<u8>,
    pub(super) outcome: Vec<u8>,
    pub(super) detail: Option<Vec<u8>>,
    pub(super) prev_hash: Vec<u8>,
    pub(super) hash: Vec<u8>,
}

impl RawRow {
    pub(super) fn hash_at(&self, seq: i64) -> String {
        record_hash(&HashInput {
            seq: seq as u64,
            time: &self.time,
            actor: &self.actor,
            action: &self.action,
            pipeline: self.pipeline.as_deref(),
            policy_fingerprint: self.policy_fingerprint.as_deref(),
            counts: &self.counts,
            outcome: &self.outcome,
            detail: self.detail.as_deref(),
            prev_hash: &self.prev_hash,
        })
    }

    /// Whether the content, numbered `seq`, matches the stored hash.
    pub(super) fn matches_at(&self, seq: i64) -> bool {
        self.typed && self.hash_at(seq).as_bytes() == self.hash.as_slice()
    }

    pub(super) fn to_record(&self) -> Result<AuditRecord, String> {
        if !self.typed {
            return Err("a column holds a value of the wrong type".into());
        }
        let text = |bytes: &[u8], field: &str| {
            String::from_utf8(bytes.to_vec()).map_err(|_| format!("`{field}` is not UTF-8"))
        };
        let optional = |bytes: &Option<Vec<u8>>, field: &str| {
            bytes.as_deref().map(|b| text(b, field)).transpose()
        };
        Ok(AuditRecord {
            seq: u64::try_from(self.seq).map_err(|_| "`seq` is negative".to_string())?,
            time: text(&self.time, "time")?
                .parse()
                .map_err(|_| "`time` is not an RFC 3339 timestamp".to_string())?,
            actor: text(&self.actor, "actor")?,
            action: text(&self.action, "action")?,
            pipeline: optional(&self.pipeline, "pipeline")?,
            policy_fingerprint: optional(&self.policy_fingerprint, "policy_fingerprint")?,
            counts: serde_json::from_slice(&self.counts)
                .map_err(|_| "`counts` is not a JSON object of counts".to_string())?,
            outcome: text(&self.outcome, "outcome")?,
            detail: optional(&self.detail, "detail")?,
            prev_hash: text(&self.prev_hash, "prev_hash")?,
            hash: text(&self.hash, "hash")?,
        })
    }
}

fn value_bytes(value: ValueRef<'_>) -> Vec<u8> {
    match value {
        ValueRef::Null => Vec::new(),
        ValueRef::Integer(i) => i.to_string().into_bytes(),
        ValueRef::Real(f) => f.to_string().into_bytes(),
        ValueRef::Text(b) | ValueRef::Blob(b) => b.to_vec(),
    }
}

fn required_bytes(value: ValueRef<'_>, typed: &mut bool) -> Vec<u8> {
    if !matches!(value, ValueRef::Text(_)) {
        *typed = false;
    }
    value_bytes(value)
}

fn optional_bytes(value: ValueRef<'_>, typed: &mut bool) -> Option<Vec<u8>> {
    match value {
        ValueRef::Null => None,
        ValueRef::Text(b) => Some(b.to_vec()),
        other => {
            *typed = false;
            Some(value_bytes(other))
        }
    }
}
