//! `Table`: named raw columns as read from a file, before any type decision beyond "number or
//! text". Numbers are `f32` with `NaN` for a missing value; text is dictionary-encoded (`u32`
//! codes into a list of distinct levels, [`MISSING`] for a missing value). No cell is kept as its
//! own string.

use std::collections::HashMap;

/// The code of a missing value in a text column.
pub const MISSING: u32 = u32::MAX;

/// The values of one column. Equality treats two missing values as equal.
#[derive(Debug, Clone)]
pub enum ColumnData {
    /// Numbers; `NaN` marks a missing value.
    Numeric(Vec<f32>),
    /// Text, dictionary-encoded: `levels[codes[row]]`, or missing where the code is [`MISSING`].
    Text {
        /// One code per row.
        codes: Vec<u32>,
        /// Distinct values, in order of first appearance.
        levels: Vec<String>,
    },
}

impl PartialEq for ColumnData {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ColumnData::Numeric(a), ColumnData::Numeric(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
            }
            (
                ColumnData::Text { codes, levels },
                ColumnData::Text {
                    codes: c2,
                    levels: l2,
                },
            ) => codes == c2 && levels == l2,
            _ => false,
        }
    }
}

impl ColumnData {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Numeric(v) => v.len(),
            ColumnData::Text { codes, .. } => codes.len(),
        }
    }

    /// Whether the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether row `i` is missing.
    pub fn is_missing(&self, i: usize) -> bool {
        match self {
            ColumnData::Numeric(v) => v[i].is_nan(),
            ColumnData::Text { codes, .. } => codes[i] == MISSING,
        }
    }

    /// Rows that are missing.
    pub fn missing_count(&self) -> usize {
        match self {
            ColumnData::Numeric(v) => v.iter().filter(|x| x.is_nan()).count(),
            ColumnData::Text { codes, .. } => codes.iter().filter(|&&c| c == MISSING).count(),
        }
    }

    /// The value of row `i` as text (numbers in their shortest form), `None` when missing.
    pub fn text(&self, i: usize) -> Option<String> {
        match self {
            ColumnData::Numeric(v) => (!v[i].is_nan()).then(|| format_number(v[i])),
            ColumnData::Text { codes, levels } => levels.get(codes[i] as usize).cloned(),
        }
    }

    /// A kind name for messages: `numeric` or `text`.
    pub fn kind(&self) -> &'static str {
        match self {
            ColumnData::Numeric(_) => "numeric",
            ColumnData::Text { .. } => "text",
        }
    }

    /// Keeps the given rows, in that order.
    pub fn select(&self, rows: &[usize]) -> ColumnData {
        match self {
            ColumnData::Numeric(v) => ColumnData::Numeric(rows.iter().map(|&r| v[r]).collect()),
            ColumnData::Text { codes, levels } => ColumnData::Text {
                codes: rows.iter().map(|&r| codes[r]).collect(),
                levels: levels.clone(),
            },
        }
    }
}

/// Hands the pages of freed heap memory back to the operating system. glibc's allocator keeps
/// them (blocks under its adaptive mmap threshold live in its arenas), so a table cut back would
/// still count in the process's memory; elsewhere this does nothing.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` takes no pointers; it only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A number written the way this crate writes numbers as text: Rust's shortest round-trip form
/// (`2`, `2.5`, `0.1`).
pub fn format_number(x: f32) -> String {
    format!("{x}")
}

/// One named column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// The header's name (or `column_N` for a file without a header).
    pub name: String,
    /// Its values.
    pub data: ColumnData,
}

/// A table of named raw columns, all of the same length.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// The columns, in file order (skipped columns are absent).
    pub columns: Vec<Column>,
    rows: usize,
}

impl Table {
    /// A table from columns; `None` if their lengths differ.
    pub fn new(columns: Vec<Column>) -> Option<Self> {
        let rows = columns.first().map_or(0, |c| c.data.len());
        columns
            .iter()
            .all(|c| c.data.len() == rows)
            .then_some(Table { columns, rows })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The column with this name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The position of the column with this name.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The values row-major `[rows, columns]`, when every column is numeric (`None` otherwise).
    pub fn numeric_row_major(&self) -> Option<Vec<f32>> {
        let columns: Vec<&Vec<f32>> = self
            .columns
            .iter()
            .map(|c| match &c.data {
                ColumnData::Numeric(v) => Some(v),
                ColumnData::Text { .. } => None,
            })
            .collect::<Option<_>>()?;
        Some(
            (0..self.rows)
                .flat_map(|r| columns.iter().map(move |c| c[r]))
                .collect(),
        )
    }

    /// Column names, in order.
    pub fn names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// Keeps the rows whose `keep` is true, in order, in place (no second copy of the table).
    pub fn retain_rows(&mut self, keep: &[bool]) {
        assert_eq!(keep.len(), self.rows, "retain_rows: one flag per row");
        fn retain<T>(v: &mut Vec<T>, keep: &[bool]) {
            let mut i = 0;
            v.retain(|_| {
                i += 1;
                keep[i - 1]
            });
        }
        for c in &mut self.columns {
            match &mut c.data {
                ColumnData::Numeric(v) => retain(v, keep),
                ColumnData::Text { codes, .. } => retain(codes, keep),
            }
        }
        self.rows = keep.iter().filter(|&&k| k).count();
    }

    /// Drops every row from `rows` on and gives their memory back to the allocator.
    pub fn truncate_rows(&mut self, rows: usize) {
        fn cut<T>(v: &mut Vec<T>, rows: usize) {
            v.truncate(rows);
            v.shrink_to_fit();
        }
        for c in &mut self.columns {
            match &mut c.data {
                ColumnData::Numeric(v) => cut(v, rows),
                ColumnData::Text { codes, .. } => cut(codes, rows),
            }
        }
        self.rows = self.rows.min(rows);
        release_freed_memory();
    }

    /// A new table holding the given rows, in that order.
    pub fn select(&self, rows: &[usize]) -> Table {
        Table {
            columns: self
                .columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    data: c.data.select(rows),
                })
                .collect(),
            rows: rows.len(),
        }
    }
}

/// Why a chunk does not continue the table being built (a reader bug, or chunks from different
/// files).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkMismatch {
    /// The chunk has another number of columns.
    #[error("{got} columns where earlier rows had {expected}")]
    ColumnCount {
        /// The chunk's columns.
        got: usize,
        /// The columns of the earlier chunks.
        expected: usize,
    },
    /// The chunk's column at this position has another name or kind; shown as its name.
    #[error("{column}")]
    Column {
        /// The column's name.
        column: String,
    },
}

/// Builds one table from chunks read in order, merging the chunks' text dictionaries.
#[derive(Debug, Default)]
pub struct TableBuilder {
    table: Table,
    /// Per column: level -> code in the merged dictionary (text columns only).
    dictionaries: Vec<Option<HashMap<String, u32>>>,
    started: bool,
}

impl TableBuilder {
    /// An empty builder; the first chunk fixes the columns.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reserves room for about `rows` more rows in every column, as far as the allocator gives
    /// it: a size hint that turns out too large for this machine is skipped (the columns then
    /// grow as rows arrive), never an abort.
    pub fn reserve(&mut self, rows: usize) {
        for c in &mut self.table.columns {
            let _ = match &mut c.data {
                ColumnData::Numeric(v) => v.try_reserve(rows),
                ColumnData::Text { codes, .. } => codes.try_reserve(rows),
            };
        }
    }

    /// Appends a chunk with the same columns (names and kinds) as the first one.
    ///
    /// Refuses a chunk that does not match, naming the column (a reader bug, or chunks from
    /// different files).
    pub fn push(&mut self, chunk: Table) -> Result<(), ChunkMismatch> {
        if !self.started {
            self.started = true;
            self.dictionaries = chunk
                .columns
                .iter()
                .map(|c| match &c.data {
                    ColumnData::Text { levels, .. } => Some(
                        levels
                            .iter()
                            .enumerate()
                            .map(|(i, l)| (l.clone(), i as u32))
                            .collect(),
                    ),
                    ColumnData::Numeric(_) => None,
                })
                .collect();
            self.table = chunk;
            return Ok(());
        }
        if chunk.columns.len() != self.table.columns.len() {
            return Err(ChunkMismatch::ColumnCount {
                got: chunk.columns.len(),
                expected: self.table.columns.len(),
            });
        }
        for ((dst, src), dict) in self
            .table
            .columns
            .iter_mut()
            .zip(chunk.columns)
            .zip(&mut self.dictionaries)
        {
            if dst.name != src.name {
                return Err(ChunkMismatch::Column { column: src.name });
            }
            match (&mut dst.data, src.data, dict) {
                (ColumnData::Numeric(d), ColumnData::Numeric(s), None) => d.extend_from_slice(&s),
                (
                    ColumnData::Text { codes, levels },
                    ColumnData::Text {
                        codes: new_codes,
                        levels: new_levels,
                    },
                    Some(dict),
                ) => {
                    let remap: Vec<u32> = new_levels
                        .into_iter()
                        .map(|l| {
                            let next = levels.len() as u32;
                            *dict.entry(l).or_insert_with_key(|l| {
                                levels.push(l.clone());
                                next
                            })
                        })
                        .collect();
                    codes.extend(new_codes.iter().map(|&c| {
                        if c == MISSING {
                            MISSING
                        } else {
                            remap[c as usize]
                        }
                    }));
                }
                _ => {
                    return Err(ChunkMismatch::Column {
                        column: dst.name.clone(),
                    });
                }
            }
        }
        self.table.rows += chunk.rows;
        Ok(())
    }

    /// The merged table.
    pub fn finish(self) -> Table {
        self.table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(codes: &[u32], levels: &[&str]) -> ColumnData {
        ColumnData::Text {
            codes: codes.to_vec(),
            levels: levels.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn table(cols: Vec<(&str, ColumnData)>) -> Table {
        Table::new(
            cols.into_iter()
                .map(|(n, d)| Column {
                    name: n.into(),
                    data: d,
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn chunks_merge_their_dictionaries() {
        let a = table(vec![
            ("x", ColumnData::Numeric(vec![1.0, f32::NAN])),
            ("c", text(&[0, 1], &["red", "blue"])),
        ]);
        let b = table(vec![
            ("x", ColumnData::Numeric(vec![3.0])),
            ("c", text(&[1], &["green", "red"])),
        ]);
        let c = table(vec![
            ("x", ColumnData::Numeric(vec![4.0, 5.0])),
            ("c", text(&[MISSING, 0], &["green"])),
        ]);
        let mut builder = TableBuilder::new();
        for t in [a, b, c] {
            builder.push(t).unwrap();
        }
        let t = builder.finish();
        assert_eq!(t.rows(), 5);
        assert_eq!(
            t.column("c").unwrap().data,
            text(&[0, 1, 0, MISSING, 2], &["red", "blue", "green"])
        );
        let x = &t.column("x").unwrap().data;
        assert_eq!(x.missing_count(), 1);
        assert_eq!(x.text(2).as_deref(), Some("3"));
        assert_eq!(t.column("c").unwrap().data.text(3), None);
    }

    #[test]
    fn mismatched_chunks_are_refused() {
        let mut builder = TableBuilder::new();
        builder
            .push(table(vec![("x", ColumnData::Numeric(vec![1.0]))]))
            .unwrap();
        let err = builder
            .push(table(vec![("x", text(&[0], &["a"]))]))
            .unwrap_err();
        assert_eq!(err.to_string(), "x");
        assert!(
            Table::new(vec![
                Column {
                    name: "a".into(),
                    data: ColumnData::Numeric(vec![1.0])
                },
                Column {
                    name: "b".into(),
                    data: ColumnData::Numeric(vec![])
                },
            ])
            .is_none()
        );
    }

    #[test]
    fn select_keeps_rows_in_order() {
        let t = table(vec![
            ("x", ColumnData::Numeric(vec![1.0, 2.0, 3.0])),
            ("c", text(&[0, 1, 0], &["a", "b"])),
        ]);
        let s = t.select(&[2, 0]);
        assert_eq!(s.rows(), 2);
        assert_eq!(s.columns[0].data, ColumnData::Numeric(vec![3.0, 1.0]));
        assert_eq!(s.columns[1].data, text(&[0, 0], &["a", "b"]));
    }

    #[test]
    fn a_reservation_the_allocator_refuses_is_skipped() {
        let chunk = |v: f32| {
            Table::new(vec![Column {
                name: "x".into(),
                data: ColumnData::Numeric(vec![v]),
            }])
            .unwrap()
        };
        let mut b = TableBuilder::new();
        b.push(chunk(1.0)).unwrap();
        b.reserve(usize::MAX / 8);
        b.push(chunk(2.0)).unwrap();
        assert_eq!(b.finish().rows(), 2);
    }
}
