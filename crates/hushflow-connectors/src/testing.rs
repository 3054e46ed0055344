//! Helpers shared by the connectors' tests.

use hushflow_core::{Batch, CellKind, Rejected, Schema, Source};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A cell as the tests compare it: `None` is null.
pub(crate) type Row = Vec<Option<(CellKind, String)>>;

/// Everything a source yields, read `max_rows` at a time.
pub(crate) struct Drained {
    pub rows: Vec<Row>,
    pub lines: Vec<u64>,
    pub rejected: Vec<Rejected>,
    pub batch_sizes: Vec<usize>,
}

pub(crate) fn drain(source: &mut dyn Source, max_rows: usize) -> Drained {
    let mut out = Drained {
        rows: Vec::new(),
        lines: Vec::new(),
        rejected: Vec::new(),
        batch_sizes: Vec::new(),
    };
    while let Some(sb) = source.next_batch(max_rows).unwrap() {
        assert_eq!(*sb.batch.schema(), source.schema());
        out.batch_sizes.push(sb.batch.len());
        for row in 0..sb.batch.len() {
            out.rows.push(
                sb.batch
                    .columns()
                    .iter()
                    .map(|c| {
                        let cell = c.get(row);
                        (!cell.is_null()).then(|| (cell.kind, cell.text.to_string()))
                    })
                    .collect(),
            );
        }
        out.lines.extend_from_slice(sb.batch.lines());
        out.rejected.extend(sb.rejected);
    }
    out
}

/// A text cell.
pub(crate) fn t(s: &str) -> Option<(CellKind, String)> {
    Some((CellKind::Text, s.to_string()))
}

/// A cell of another kind.
pub(crate) fn k(kind: CellKind, s: &str) -> Option<(CellKind, String)> {
    Some((kind, s.to_string()))
}

pub(crate) fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

pub(crate) fn schema(fields: &[&str]) -> Arc<Schema> {
    Arc::new(Schema::new(names(fields)))
}

/// A batch of rows over `fields`; lines are numbered from 2.
pub(crate) fn batch(fields: &[&str], rows: &[Row]) -> Batch {
    let mut batch = Batch::new(schema(fields));
    for (i, row) in rows.iter().enumerate() {
        batch.push_row(
            i as u64 + 2,
            row.iter().map(|cell| match cell {
                None => hushflow_core::Cell::NULL,
                Some((kind, text)) => hushflow_core::Cell {
                    kind: *kind,
                    text: text.as_str(),
                },
            }),
        );
    }
    batch
}

pub(crate) fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The names of the entries of a directory, sorted.
pub(crate) fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The permission bits of a file.
#[cfg(unix)]
pub(crate) fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}
