//! The plaintext of a staged segment: one source batch (its rows, line numbers and the records
//! the source rejected), as compact little-endian binary. It only ever exists on disk inside an
//! age file; age authenticates it, so a decode error here means a bug or a format change, and is
//! reported as damage, never with the bytes.
//!
//! ```text
//! "HFSEG1\n"
//! the run id as u32 length + UTF-8, u64 segment number (so that renamed or swapped segment
//! files, each a valid age file, are still caught)
//! u32 field count, then each field name as u32 length + UTF-8
//! u32 rows, then rows × u64 line
//! per column: rows × u8 kind, rows × u32 text length, then the column's text (UTF-8, checked
//! once per column, not per cell)
//! u32 rejected, then per record: u64 line, reason (u8 tag + its fields), u32 length + raw bytes
//! ```

use hushflow_core::{Batch, Cell, CellKind, Column, RejectReason, Rejected, Schema, SourceBatch};
use std::borrow::Cow;
use std::sync::Arc;

const MAGIC: &[u8] = b"HFSEG1\n";

/// Why a segment's plaintext did not decode.
#[derive(Debug, thiserror::Error)]
#[error("staged segment is not in the expected format ({0})")]
pub struct FormatError(&'static str);

/// Where a segment belongs: decoding checks it, so a segment moved from another run or to
/// another position is refused.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    /// The staged run's id.
    pub run_id: &'a str,
    /// The segment's number, from 1.
    pub segment: u64,
}

/// Encodes `batch` as the plaintext of the segment at `place`, appending to `out`.
pub fn encode(place: Place<'_>, batch: &SourceBatch, out: &mut Vec<u8>) {
    let SourceBatch { batch, rejected } = batch;
    out.extend_from_slice(MAGIC);
    put_bytes(out, place.run_id.as_bytes());
    out.extend_from_slice(&place.segment.to_le_bytes());
    let fields = batch.schema().fields();
    put_u32(out, fields.len());
    for name in fields {
        put_bytes(out, name.as_bytes());
    }
    put_u32(out, batch.len());
    for line in batch.lines() {
        out.extend_from_slice(&line.to_le_bytes());
    }
    for column in batch.columns() {
        out.extend(column.iter().map(|c| kind_tag(c.kind)));
        let mut total = 0;
        for cell in column.iter() {
            put_u32(out, cell.text.len());
            total += cell.text.len();
        }
        out.reserve(total);
        for cell in column.iter() {
            out.extend_from_slice(cell.text.as_bytes());
        }
    }
    put_u32(out, rejected.len());
    for r in rejected {
        out.extend_from_slice(&r.line.to_le_bytes());
        put_reason(out, &r.reason);
        put_bytes(out, &r.raw);
    }
}

/// Decodes a segment, checking that its fields are `schema`'s.
pub fn decode(
    place: Place<'_>,
    bytes: &[u8],
    schema: &Arc<Schema>,
) -> Result<SourceBatch, FormatError> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(MAGIC.len())? != MAGIC {
        return Err(FormatError("bad magic"));
    }
    if r.bytes()? != place.run_id.as_bytes() {
        return Err(FormatError("it belongs to another staged run"));
    }
    if r.u64()? != place.segment {
        return Err(FormatError(
            "it is out of place: segment files were renamed or swapped",
        ));
    }
    let nfields = r.u32()?;
    if nfields != schema.len() {
        return Err(FormatError("field count differs from the manifest"));
    }
    for field in schema.fields() {
        if r.bytes()? != field.as_bytes() {
            return Err(FormatError("fields differ from the manifest"));
        }
    }
    let rows = r.u32()?;
    // Bounded by the bytes present, so a damaged count cannot allocate without limit.
    if rows > bytes.len() / 8 {
        return Err(FormatError("row count too large"));
    }
    let mut lines = Vec::with_capacity(rows);
    for _ in 0..rows {
        lines.push(r.u64()?);
    }
    let mut columns = Vec::with_capacity(nfields);
    let mut lengths = Vec::with_capacity(rows);
    for _ in 0..nfields {
        let kinds = r.take(rows)?;
        lengths.clear();
        let mut total = 0usize;
        for _ in 0..rows {
            let n = r.u32()?;
            total = total.checked_add(n).ok_or(FormatError("text too long"))?;
            lengths.push(n);
        }
        let text =
            std::str::from_utf8(r.take(total)?).map_err(|_| FormatError("text is not UTF-8"))?;
        let mut column = Column::with_capacity(rows, total);
        let mut at = 0;
        for (&tag, &n) in kinds.iter().zip(&lengths) {
            // A cut inside a character is an error, not a panic.
            let cell = text
                .get(at..at + n)
                .ok_or(FormatError("a cell is cut inside a character"))?;
            column.push(Cell {
                kind: cell_kind(tag)?,
                text: cell,
            });
            at += n;
        }
        columns.push(column);
    }
    let nrejected = r.u32()?;
    if nrejected > bytes.len() / 8 {
        return Err(FormatError("rejected count too large"));
    }
    let mut rejected = Vec::with_capacity(nrejected);
    for _ in 0..nrejected {
        let line = r.u64()?;
        let reason = r.reason()?;
        let raw = r.bytes()?.to_vec();
        rejected.push(Rejected { line, reason, raw });
    }
    if r.at != bytes.len() {
        return Err(FormatError("trailing bytes"));
    }
    Ok(SourceBatch {
        batch: Batch::from_columns(schema.clone(), columns, lines),
        rejected,
    })
}

fn kind_tag(kind: CellKind) -> u8 {
    match kind {
        CellKind::Null => 0,
        CellKind::Text => 1,
        CellKind::Number => 2,
        CellKind::Bool => 3,
        CellKind::Json => 4,
    }
}

fn cell_kind(tag: u8) -> Result<CellKind, FormatError> {
    Ok(match tag {
        0 => CellKind::Null,
        1 => CellKind::Text,
        2 => CellKind::Number,
        3 => CellKind::Bool,
        4 => CellKind::Json,
        _ => return Err(FormatError("unknown cell kind")),
    })
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    // Batches, fields and records are far below 4 GiB: the source caps a record at 64 MiB.
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, bytes.len());
    out.extend_from_slice(bytes);
}

fn put_opt(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        None => out.push(0),
        Some(t) => {
            out.push(1);
            put_bytes(out, t.as_bytes());
        }
    }
}

fn put_reason(out: &mut Vec<u8>, reason: &RejectReason) {
    let u64le = |out: &mut Vec<u8>, n: u64| out.extend_from_slice(&n.to_le_bytes());
    match reason {
        RejectReason::WrongFieldCount { expected, found } => {
            out.push(0);
            u64le(out, *expected as u64);
            u64le(out, *found as u64);
        }
        RejectReason::InvalidUtf8 { field } => {
            out.push(1);
            put_opt(out, field.as_deref());
        }
        RejectReason::BrokenJson { column, detail } => {
            out.push(2);
            u64le(out, *column as u64);
            put_bytes(out, detail.as_bytes());
        }
        RejectReason::MissingKey { field } => {
            out.push(3);
            put_bytes(out, field.as_bytes());
        }
        RejectReason::InvalidField { field, detail } => {
            out.push(4);
            put_bytes(out, field.as_bytes());
            put_bytes(out, detail.as_bytes());
        }
        RejectReason::TooLong { limit } => {
            out.push(5);
            u64le(out, *limit as u64);
        }
        RejectReason::UnclosedQuote { lines } => {
            out.push(6);
            u64le(out, *lines);
        }
        RejectReason::Refused { field, detail } => {
            out.push(7);
            put_opt(out, field.as_deref());
            put_bytes(out, detail.as_bytes());
        }
        RejectReason::NotKept { original } => {
            out.push(8);
            put_bytes(out, original.as_bytes());
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(FormatError("cut short"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<usize, FormatError> {
        let b: [u8; 4] = self
            .take(4)?
            .try_into()
            .map_err(|_| FormatError("cut short"))?;
        Ok(u32::from_le_bytes(b) as usize)
    }

    fn u64(&mut self) -> Result<u64, FormatError> {
        let b: [u8; 8] = self
            .take(8)?
            .try_into()
            .map_err(|_| FormatError("cut short"))?;
        Ok(u64::from_le_bytes(b))
    }

    fn usize(&mut self) -> Result<usize, FormatError> {
        usize::try_from(self.u64()?).map_err(|_| FormatError("number too large"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], FormatError> {
        let n = self.u32()?;
        self.take(n)
    }

    fn str(&mut self) -> Result<&'a str, FormatError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| FormatError("text is not UTF-8"))
    }

    fn string(&mut self) -> Result<String, FormatError> {
        self.str().map(str::to_owned)
    }

    fn reason(&mut self) -> Result<RejectReason, FormatError> {
        Ok(match self.u8()? {
            0 => RejectReason::WrongFieldCount {
                expected: self.usize()?,
                found: self.usize()?,
            },
            1 => RejectReason::InvalidUtf8 {
                field: match self.u8()? {
                    0 => None,
                    _ => Some(self.string()?),
                },
            },
            2 => RejectReason::BrokenJson {
                column: self.usize()?,
                detail: Cow::Owned(self.string()?),
            },
            3 => RejectReason::MissingKey {
                field: self.string()?,
            },
            4 => RejectReason::InvalidField {
                field: self.string()?,
                detail: Cow::Owned(self.string()?),
            },
            5 => RejectReason::TooLong {
                limit: self.usize()?,
            },
            6 => RejectReason::UnclosedQuote { lines: self.u64()? },
            7 => RejectReason::Refused {
                field: match self.u8()? {
                    0 => None,
                    _ => Some(self.string()?),
                },
                detail: Cow::Owned(self.string()?),
            },
            8 => RejectReason::NotKept {
                original: self.string()?,
            },
            _ => return Err(FormatError("unknown reject reason")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLACE: Place<'static> = Place {
        run_id: "20261201T120000.000000Z",
        segment: 1,
    };

    fn sample() -> SourceBatch {
        let schema = Arc::new(Schema::new(vec!["id".into(), "email".into(), "n".into()]));
        let mut batch = Batch::new(schema);
        batch.push_row(
            2,
            [Cell::text("1"), Cell::text("a@example.com"), Cell::NULL],
        );
        batch.push_row(
            4,
            [
                Cell::text("2"),
                Cell::text("ünï\ncode"),
                Cell {
                    kind: CellKind::Number,
                    text: "4.5",
                },
            ],
        );
        let rejected = vec![
            Rejected {
                line: 3,
                reason: RejectReason::WrongFieldCount {
                    expected: 3,
                    found: 2,
                },
                raw: b"x,y".to_vec(),
            },
            Rejected {
                line: 5,
                reason: RejectReason::BrokenJson {
                    column: 7,
                    detail: "expected value".into(),
                },
                raw: vec![0xff, 0xfe],
            },
            Rejected {
                line: 6,
                reason: RejectReason::InvalidUtf8 {
                    field: Some("email".into()),
                },
                raw: vec![],
            },
            Rejected {
                line: 9,
                reason: RejectReason::UnclosedQuote { lines: 12 },
                raw: b"\"open".to_vec(),
            },
        ];
        SourceBatch { batch, rejected }
    }

    #[test]
    fn round_trips_rows_kinds_lines_and_rejections() {
        let original = sample();
        let mut bytes = Vec::new();
        encode(PLACE, &original, &mut bytes);
        let back = decode(PLACE, &bytes, original.batch.schema()).unwrap();
        assert_eq!(back.batch, original.batch);
        assert_eq!(back.rejected, original.rejected);
    }

    #[test]
    fn every_truncation_and_a_wrong_schema_are_errors_not_panics() {
        let original = sample();
        let mut bytes = Vec::new();
        encode(PLACE, &original, &mut bytes);
        let schema = original.batch.schema();
        for cut in 0..bytes.len() {
            assert!(decode(PLACE, &bytes[..cut], schema).is_err(), "cut {cut}");
        }
        let other = Arc::new(Schema::new(vec!["id".into(), "mail".into(), "n".into()]));
        assert!(decode(PLACE, &bytes, &other).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(PLACE, &longer, schema).is_err());
        let moved = Place {
            run_id: PLACE.run_id,
            segment: 2,
        };
        let e = decode(moved, &bytes, schema).unwrap_err();
        assert!(e.to_string().contains("swapped"), "{e}");
        let elsewhere = Place {
            run_id: "20990101T000000.000000Z",
            segment: 1,
        };
        assert!(decode(elsewhere, &bytes, schema).is_err());
    }
}
