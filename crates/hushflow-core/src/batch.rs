//! Columnar batches. A batch stores each field's values together in one text buffer, so that a
//! policy can transform a whole column at a time (no per-record field-name lookups) and a batch
//! that is cleared and refilled reuses its allocations.

use std::sync::Arc;

/// The ordered field names a source produces, resolved once per run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    fields: Vec<String>,
}

impl Schema {
    /// A schema of `fields`, in the order the source produces them.
    pub fn new(fields: Vec<String>) -> Self {
        Schema { fields }
    }

    /// The field names, in column order.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields at all.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Position of a field; used when a plan is compiled, never per record.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f == name)
    }
}

/// What a cell holds. Text is the lingua franca of contact data; numbers, booleans and nested
/// JSON keep their kind so that typed sinks (JSON lines, SQLite) write them as they came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CellKind {
    /// No value: an empty CSV cell, a JSON or SQL `null`.
    Null,
    /// A string.
    Text,
    /// A number, kept as the text it was written as.
    Number,
    /// A boolean, `true` or `false`.
    Bool,
    /// A JSON object or array, kept as its JSON text.
    Json,
}

/// A borrowed view of one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell<'a> {
    /// What the cell holds, and so how `text` is to be read.
    pub kind: CellKind,
    /// The cell's value as text (empty for a null).
    pub text: &'a str,
}

impl<'a> Cell<'a> {
    /// The null cell.
    pub const NULL: Cell<'static> = Cell {
        kind: CellKind::Null,
        text: "",
    };

    /// A text cell holding `text`.
    pub fn text(text: &'a str) -> Self {
        Cell {
            kind: CellKind::Text,
            text,
        }
    }

    /// Whether this is a null cell.
    pub fn is_null(&self) -> bool {
        self.kind == CellKind::Null
    }
}

/// The values of one field across the rows of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Column {
    kinds: Vec<CellKind>,
    ends: Vec<usize>,
    text: String,
}

impl Column {
    /// An empty column with room for `rows` cells and `text_bytes` bytes of their text.
    pub fn with_capacity(rows: usize, text_bytes: usize) -> Self {
        Column {
            kinds: Vec::with_capacity(rows),
            ends: Vec::with_capacity(rows),
            text: String::with_capacity(text_bytes),
        }
    }

    /// How many cells the column holds.
    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    /// Whether the column holds no cells.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// Appends a copy of `cell`.
    pub fn push(&mut self, cell: Cell<'_>) {
        self.text.push_str(cell.text);
        self.ends.push(self.text.len());
        self.kinds.push(cell.kind);
    }

    /// Appends a null cell.
    pub fn push_null(&mut self) {
        self.push(Cell::NULL);
    }

    /// Appends a cell whose text is written in place by `write`, so that transforms can format
    /// straight into the column's buffer instead of allocating a string per value.
    pub fn push_with(&mut self, kind: CellKind, write: impl FnOnce(&mut String)) {
        write(&mut self.text);
        self.ends.push(self.text.len());
        self.kinds.push(kind);
    }

    /// The cell at `row`; panics if there is no such row.
    pub fn get(&self, row: usize) -> Cell<'_> {
        let start = if row == 0 { 0 } else { self.ends[row - 1] };
        Cell {
            kind: self.kinds[row],
            text: &self.text[start..self.ends[row]],
        }
    }

    /// The cells in row order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Cell<'_>> + '_ {
        (0..self.len()).map(move |row| self.get(row))
    }

    /// Removes every cell, keeping the allocations for the next batch.
    pub fn clear(&mut self) {
        self.kinds.clear();
        self.ends.clear();
        self.text.clear();
    }

    /// Bytes of text held, a cheap measure of a batch's size.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// A new column of the cells at `rows`, in that order: one pass and one copy of each kept
    /// value, where a clone followed by [`Batch::retain_rows`] copies every value twice.
    pub fn gather(&self, rows: &[usize]) -> Column {
        // The kept rows' share of the text, a little over, so the copy rarely reallocates.
        let share = self.text.len() / self.len().max(1) * rows.len() * 9 / 8;
        let mut out = Column::with_capacity(rows.len(), share);
        for &row in rows {
            out.push(self.get(row));
        }
        out
    }
}

/// Rows of records over one schema, stored column by column. `lines` holds each row's position
/// in its source (a line number for files), so that any later stage can report where a record
/// came from without holding on to its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    schema: Arc<Schema>,
    columns: Vec<Column>,
    lines: Vec<u64>,
}

impl Batch {
    /// An empty batch over `schema`.
    pub fn new(schema: Arc<Schema>) -> Self {
        let columns = vec![Column::default(); schema.len()];
        Batch {
            schema,
            columns,
            lines: Vec::new(),
        }
    }

    /// An empty batch with room for `rows` rows, `text_bytes[i]` bytes of text reserved for
    /// column `i`: a source sizes batches from what it has seen so that filling one does not
    /// reallocate.
    pub fn with_capacity(schema: Arc<Schema>, rows: usize, text_bytes: &[usize]) -> Self {
        let columns = (0..schema.len())
            .map(|i| Column::with_capacity(rows, text_bytes.get(i).copied().unwrap_or(0)))
            .collect();
        Batch {
            schema,
            columns,
            lines: Vec::with_capacity(rows),
        }
    }

    /// Builds a batch from finished columns; every column must have one cell per line.
    pub fn from_columns(schema: Arc<Schema>, columns: Vec<Column>, lines: Vec<u64>) -> Self {
        assert_eq!(schema.len(), columns.len(), "one column per schema field");
        assert!(
            columns.iter().all(|c| c.len() == lines.len()),
            "every column holds one cell per row"
        );
        Batch {
            schema,
            columns,
            lines,
        }
    }

    /// The fields the batch's columns hold, in column order.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// How many rows the batch holds.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether the batch holds no rows.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// One column per schema field, in schema order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The column of the field at `index` in the schema; panics if there is none.
    pub fn column(&self, index: usize) -> &Column {
        &self.columns[index]
    }

    /// Each row's position in its source (a line number for files), in row order.
    pub fn lines(&self) -> &[u64] {
        &self.lines
    }

    /// Hands the columns over to a transform, leaving the batch empty of them.
    pub fn into_parts(self) -> (Arc<Schema>, Vec<Column>, Vec<u64>) {
        (self.schema, self.columns, self.lines)
    }

    /// Appends one row; `cells` is in schema order.
    pub fn push_row<'c>(&mut self, line: u64, cells: impl IntoIterator<Item = Cell<'c>>) {
        let mut n = 0;
        for (column, cell) in self.columns.iter_mut().zip(cells) {
            column.push(cell);
            n += 1;
        }
        debug_assert_eq!(n, self.columns.len(), "a row has one cell per field");
        self.lines.push(line);
    }

    /// Mutable access for sources that fill columns directly; the caller pushes exactly one cell
    /// to every column and then calls [`Batch::push_line`].
    pub fn columns_mut(&mut self) -> &mut [Column] {
        &mut self.columns
    }

    /// Ends a row whose cells were pushed through [`Batch::columns_mut`], at source position
    /// `line`.
    pub fn push_line(&mut self, line: u64) {
        self.lines.push(line);
        debug_assert!(self.columns.iter().all(|c| c.len() == self.lines.len()));
    }

    /// Keeps the rows for which `keep` returns true, in order.
    pub fn retain_rows(&mut self, keep: &[bool]) {
        assert_eq!(keep.len(), self.len());
        if keep.iter().all(|k| *k) {
            return;
        }
        for column in &mut self.columns {
            let mut kept = Column::with_capacity(column.len(), column.text_len());
            for (cell, _) in column.iter().zip(keep).filter(|(_, k)| **k) {
                kept.push(cell);
            }
            *column = kept;
        }
        let mut row = 0;
        self.lines.retain(|_| {
            row += 1;
            keep[row - 1]
        });
    }

    /// Removes every row, keeping the allocations for the next batch.
    pub fn clear(&mut self) {
        self.columns.iter_mut().for_each(Column::clear);
        self.lines.clear();
    }

    /// Approximate bytes held, used to bound memory between stages.
    pub fn text_len(&self) -> usize {
        self.columns.iter().map(Column::text_len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(names: &[&str]) -> Arc<Schema> {
        Arc::new(Schema::new(names.iter().map(|s| s.to_string()).collect()))
    }

    #[test]
    fn column_round_trips_cells_of_every_kind() {
        let mut c = Column::default();
        c.push(Cell::text("a,b"));
        c.push_null();
        c.push(Cell {
            kind: CellKind::Number,
            text: "42",
        });
        c.push_with(CellKind::Text, |s| s.push_str("écrit"));
        assert_eq!(c.len(), 4);
        assert_eq!(c.get(0), Cell::text("a,b"));
        assert!(c.get(1).is_null());
        assert_eq!(c.get(2).text, "42");
        assert_eq!(c.get(2).kind, CellKind::Number);
        assert_eq!(c.get(3).text, "écrit");
    }

    #[test]
    fn retain_rows_keeps_order_and_lines() {
        let mut b = Batch::new(schema(&["id", "email"]));
        for (line, id) in [(2, "1"), (3, "2"), (4, "3")] {
            b.push_row(line, [Cell::text(id), Cell::text("x")]);
        }
        b.retain_rows(&[true, false, true]);
        assert_eq!(b.lines(), &[2, 4]);
        assert_eq!(b.column(0).get(1).text, "3");
        assert_eq!(b.column(1).len(), 2);
    }

    #[test]
    fn gather_copies_the_given_rows() {
        let mut c = Column::default();
        for text in ["a", "bb", "", "ccc"] {
            c.push(Cell::text(text));
        }
        c.push_null();
        let g = c.gather(&[1, 3, 4]);
        assert_eq!(g.len(), 3);
        assert_eq!(g.get(0).text, "bb");
        assert_eq!(g.get(1).text, "ccc");
        assert!(g.get(2).is_null());
        assert!(c.gather(&[]).is_empty());
    }

    #[test]
    fn clear_keeps_schema() {
        let mut b = Batch::new(schema(&["id"]));
        b.push_row(1, [Cell::text("1")]);
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.schema().fields(), &["id".to_string()]);
    }
}
