//! Reading a table: [`TableReader`] opens a [`Source`] and reads its column names (a CSV's
//! header, its delimiter and header detected, or a Parquet file's schema); [`Chunks`] then
//! yields the rows in bounded chunks, and [`TableReader::read_all`] gathers them into one
//! [`Table`], its columns sized once.

use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::csv::{self, ColumnKind, MissingValues};
use super::parquet;
use super::source::{Format, Source, hex, open, read_error};
use super::table::{Table, TableBuilder};
use crate::config::DataConfig;
use crate::error::{Error, Result};

/// Options for reading a table.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// CSV delimiter; `None` detects it.
    pub delimiter: Option<u8>,
    /// Whether a CSV's first row is a header; `None` detects it.
    pub has_header: Option<bool>,
    /// Missing-value markers.
    pub missing: Vec<String>,
    /// Parsing threads (0: every core).
    pub threads: usize,
}

impl ReadOptions {
    /// The options `config` sets.
    pub fn from_config(config: &DataConfig) -> Self {
        ReadOptions {
            delimiter: config.delimiter_byte().ok().flatten(),
            has_header: config.has_header,
            missing: config.missing_values.clone(),
            threads: 0,
        }
    }
}

/// A table reader whose column names are known; [`TableReader::chunks`] reads the rows.
pub struct TableReader {
    /// Column names, in file order.
    pub names: Vec<String>,
    /// How the file was read, for messages (`CSV, delimiter ',', header`).
    pub format: String,
    name: String,
    inner: ReaderKind,
    hasher: Arc<Mutex<Sha256>>,
    as_input: bool,
    size: SizeHint,
}

/// What is known of a table's size before its rows are read, to size the columns once.
#[derive(Debug, Clone, Copy)]
enum SizeHint {
    /// The row count (a Parquet footer says it).
    Rows(usize),
    /// The bytes of an uncompressed file.
    Bytes(u64),
    Unknown,
}

impl SizeHint {
    /// The rows to expect in all, given that a first chunk of `rows` rows of `columns` columns
    /// came from `bytes` bytes of the file (2 % more than the file's size suggests: rows vary in
    /// length).
    fn rows(self, rows: usize, bytes: usize, columns: usize) -> Option<usize> {
        match self {
            SizeHint::Rows(n) => Some(n),
            SizeHint::Bytes(total) if bytes > 0 && rows > 0 => {
                let estimate = total as f64 / bytes as f64 * rows as f64 * 1.02;
                // Every field takes at least one byte (its delimiter or newline): however short
                // the first rows were, no more rows than that are reserved.
                let most = total / columns.max(1) as u64 + 1;
                Some((estimate as usize).min(usize::try_from(most).unwrap_or(usize::MAX)))
            }
            _ => None,
        }
    }
}

enum ReaderKind {
    Csv(csv::CsvFile),
    Parquet(parquet::ParquetFile),
}

impl std::fmt::Debug for TableReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableReader")
            .field("names", &self.names)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// Chunks of rows in file order.
pub struct Chunks {
    inner: Box<dyn Iterator<Item = std::result::Result<csv::Chunk, csv::ReadError>> + Send>,
    name: String,
    as_input: bool,
    hasher: Arc<Mutex<Sha256>>,
}

impl std::fmt::Debug for Chunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunks")
            .field("source", &self.name)
            .finish_non_exhaustive()
    }
}

impl Chunks {
    /// The hex SHA-256 of the raw bytes read so far (of the whole file once every chunk is read).
    pub fn sha256(&self) -> String {
        self.hasher
            .lock()
            .map(|h| hex(&h.clone().finalize()))
            .unwrap_or_default()
    }
}

impl Iterator for Chunks {
    type Item = Result<csv::Chunk>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner
            .next()
            .map(|r| r.map_err(|e| wrap(&self.name, e, self.as_input)))
    }
}

fn wrap(name: &str, e: csv::ReadError, as_input: bool) -> Error {
    let message = match e {
        csv::ReadError::Csv(e) => e.to_string(),
        csv::ReadError::Io(e) => format!("cannot be read: {e}"),
    };
    if as_input {
        Error::Input(format!("{name}: {message}"))
    } else {
        Error::Data {
            source_name: name.to_string(),
            message,
        }
    }
}

impl TableReader {
    /// Opens `source`, reading a CSV's header (detecting delimiter and header) or a Parquet
    /// file's schema. `known_names` make a CSV's first row a header when it holds one of them.
    /// With `as_input`, errors are prediction-input errors rather than data-file errors.
    pub fn open(
        source: &Source,
        options: &ReadOptions,
        known_names: &[String],
        as_input: bool,
    ) -> Result<Self> {
        let opened = open(source)?;
        let name = opened.name.clone();
        let fail = |e: csv::ReadError| wrap(&name, e, as_input);
        match opened.format {
            Format::Parquet => {
                let Some(path) = opened.path.clone() else {
                    return Err(wrap(
                        &name,
                        csv::ReadError::Csv(csv::CsvError {
                            line: 0,
                            message:
                                "Parquet can be read from a file only, not from standard input"
                                    .into(),
                        }),
                        as_input,
                    ));
                };
                // The rest of the file through the hashing reader (its SHA-256 in one streaming
                // pass); the row groups are then read from disk as they are needed, so memory
                // stays bounded whatever the file's size.
                let mut reader = opened.reader;
                std::io::copy(&mut reader, &mut std::io::sink())
                    .map_err(|e| read_error(&name, Some(&path), e))?;
                let f =
                    std::fs::File::open(&path).map_err(|e| read_error(&name, Some(&path), e))?;
                let file = parquet::ParquetFile::open_file(f, &options.missing).map_err(fail)?;
                Ok(TableReader {
                    names: file.names.clone(),
                    format: "Parquet".into(),
                    name,
                    size: SizeHint::Rows(file.rows()),
                    inner: ReaderKind::Parquet(file),
                    hasher: opened.hasher,
                    as_input,
                })
            }
            Format::Csv | Format::Gzip => {
                let csv_options = csv::CsvOptions {
                    delimiter: options.delimiter,
                    has_header: options.has_header,
                    known_names: known_names.to_vec(),
                    missing: MissingValues::new(&options.missing),
                    threads: options.threads,
                    block_bytes: csv::BLOCK_BYTES,
                    extra_trailing_field: false,
                };
                let file = csv::CsvFile::open(opened.reader, csv_options).map_err(fail)?;
                let delimiter = match file.delimiter {
                    b'\t' => "tab".to_string(),
                    d => format!("'{}'", d as char),
                };
                let format = format!(
                    "{}CSV, delimiter {delimiter}, {}",
                    if opened.format == Format::Gzip {
                        "gzip-compressed "
                    } else {
                        ""
                    },
                    if file.has_header {
                        "header"
                    } else {
                        "no header"
                    }
                );
                let size = match (&opened.path, opened.format) {
                    (Some(p), Format::Csv) => {
                        std::fs::metadata(p).map_or(SizeHint::Unknown, |m| SizeHint::Bytes(m.len()))
                    }
                    _ => SizeHint::Unknown,
                };
                Ok(TableReader {
                    names: file.names.clone(),
                    format,
                    name,
                    inner: ReaderKind::Csv(file),
                    hasher: opened.hasher,
                    as_input,
                    size,
                })
            }
        }
    }

    /// Whether a CSV's first row was a header (Parquet always names its columns).
    pub fn has_header(&self) -> bool {
        match &self.inner {
            ReaderKind::Csv(f) => f.has_header,
            ReaderKind::Parquet(_) => true,
        }
    }

    /// Accepts rows with one extra trailing field, ignored (CSV only).
    pub fn allow_extra_trailing_field(&mut self) {
        if let ReaderKind::Csv(f) = &mut self.inner {
            f.allow_extra_trailing_field();
        }
    }

    /// Renames the columns (for a headerless CSV whose layout is known).
    pub fn rename(&mut self, names: Vec<String>) {
        if let ReaderKind::Csv(f) = &mut self.inner {
            f.names = names.clone();
        }
        self.names = names;
    }

    /// The name used in messages.
    pub fn source_name(&self) -> &str {
        &self.name
    }

    /// Reads the rows in chunks; `kinds` has one entry per column of [`TableReader::names`].
    pub fn chunks(self, kinds: &[ColumnKind]) -> Result<Chunks> {
        let name = self.name.clone();
        let as_input = self.as_input;
        let inner: Box<dyn Iterator<Item = _> + Send> = match self.inner {
            ReaderKind::Csv(f) => Box::new(f.chunks(kinds).map_err(|e| wrap(&name, e, as_input))?),
            ReaderKind::Parquet(f) => {
                Box::new(f.chunks(kinds).map_err(|e| wrap(&name, e, as_input))?)
            }
        };
        Ok(Chunks {
            inner,
            name,
            as_input,
            hasher: self.hasher,
        })
    }

    /// Reads every row into one table; returns it with the SHA-256 of the file's bytes.
    pub fn read_all(self, kinds: &[ColumnKind]) -> Result<(Table, String)> {
        let name = self.name.clone();
        let self_size = self.size;
        let mut chunks = self.chunks(kinds)?;
        let size = self_size;
        let mut builder = TableBuilder::new();
        let mut first = true;
        for chunk in chunks.by_ref() {
            let chunk = chunk?;
            let rows = chunk.table.rows();
            let bytes = chunk.bytes;
            let columns = chunk.table.columns.len();
            builder
                .push(chunk.table)
                .map_err(|c| Error::Internal(format!("{name}: chunks disagree on column `{c}`")))?;
            if std::mem::take(&mut first) {
                // Columns sized once for the whole file: growing them by doubling would hold
                // up to twice the table at the moment a column moves.
                if let Some(total) = size.rows(rows, bytes, columns) {
                    builder.reserve(total.saturating_sub(rows));
                }
            }
        }
        // Drain what the reader did not need (a trailing remainder), so the hash covers the file.
        Ok((builder.finish(), chunks.sha256()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_row_estimate_follows_the_first_chunk_and_is_capped_by_the_file_size() {
        // 1,000 rows from 4,000 bytes of a 4,000,000-byte file: about a million rows, +2 %.
        assert_eq!(
            SizeHint::Bytes(4_000_000).rows(1_000, 4_000, 3),
            Some(1_020_000)
        );
        // Short first rows (1 byte a row) would suggest 4 million rows of 3 columns; a field
        // takes at least a byte, so at most a third of that.
        assert_eq!(
            SizeHint::Bytes(4_000_000).rows(1_000, 1_000, 3),
            Some(1_333_334)
        );
        assert_eq!(SizeHint::Rows(42).rows(7, 0, 3), Some(42));
        assert_eq!(SizeHint::Bytes(4_000_000).rows(1_000, 0, 3), None);
        assert_eq!(SizeHint::Unknown.rows(1_000, 4_000, 3), None);
    }

    mod properties {
        use std::path::Path;

        use super::*;
        use crate::data::fixtures::{cells, write};
        use crate::data::table::format_number;
        use arrow_array::{ArrayRef, Float32Array, RecordBatch, StringArray};
        use proptest::prelude::*;

        /// Rows of a generated table: a number and a word, either of them missing.
        fn rows() -> impl Strategy<Value = Vec<(Option<f32>, Option<String>)>> {
            proptest::collection::vec(
                (
                    proptest::option::of(-1e6f32..1e6),
                    proptest::option::of("[a-z]{1,6}"),
                ),
                1..40,
            )
        }

        fn csv_text(rows: &[(Option<f32>, Option<String>)], sep: char) -> String {
            let mut s = format!("x{sep}word\n");
            for (x, w) in rows {
                let x = x.map_or("NA".to_string(), |x| x.to_string());
                s += &format!("{x}{sep}{}\n", w.as_deref().unwrap_or(""));
            }
            s
        }

        fn parquet(rows: &[(Option<f32>, Option<String>)]) -> Vec<u8> {
            let batch = RecordBatch::try_from_iter(vec![
                (
                    "x",
                    Arc::new(Float32Array::from(
                        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                    )) as ArrayRef,
                ),
                (
                    "word",
                    Arc::new(StringArray::from(
                        rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
                    )) as ArrayRef,
                ),
            ])
            .unwrap();
            let mut out = Vec::new();
            let mut w =
                ::parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
            w.write(&batch).unwrap();
            w.close().unwrap();
            out
        }

        fn gzip(bytes: &[u8]) -> Vec<u8> {
            use std::io::Write;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(bytes).unwrap();
            gz.finish().unwrap()
        }

        /// Reads a file as the trainer does: `x` as numbers, `word` as text.
        fn read_file(path: &Path) -> Result<Table> {
            let options = ReadOptions {
                delimiter: None,
                has_header: None,
                missing: crate::config::DEFAULT_MISSING_VALUES
                    .map(String::from)
                    .to_vec(),
                threads: 1,
            };
            let names = ["x".to_string(), "word".to_string()];
            let reader =
                TableReader::open(&Source::Path(path.to_path_buf()), &options, &names, false)?;
            reader
                .read_all(&[ColumnKind::Numeric, ColumnKind::Text])
                .map(|(t, _)| t)
        }

        fn is_marker(s: &str) -> bool {
            crate::config::DEFAULT_MISSING_VALUES.contains(&s)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]

            /// A table written as CSV (comma, semicolon, tab), gzip-compressed CSV and Parquet
            /// reads back as the same cells: the numbers exactly, missing values as missing.
            #[test]
            fn every_format_round_trips(rows in rows(), sep in prop::sample::select(vec![',', ';', '\t'])) {
                let dir = tempfile::tempdir().unwrap();
                let text = csv_text(&rows, sep);
                let files = [
                    write(dir.path(), "t.csv", text.as_bytes()),
                    write(dir.path(), "t.csv.gz", &gzip(text.as_bytes())),
                    write(dir.path(), "t.parquet", &parquet(&rows)),
                ];
                let expected: Vec<Vec<Option<String>>> = vec![
                    rows.iter().map(|r| r.0.map(format_number)).collect(),
                    rows.iter()
                        .map(|r| r.1.clone().filter(|w| !is_marker(w)))
                        .collect(),
                ];
                for f in &files {
                    let t = read_file(f).unwrap_or_else(|e| panic!("{}: {e}\n{text}", f.display()));
                    prop_assert_eq!(t.names(), ["x", "word"]);
                    prop_assert_eq!(&cells(&t), &expected, "{}", f.display());
                }
            }

            /// Bytes that start like gzip or Parquet but are not never panic the readers: they
            /// are an error naming the file, or (by chance) a table.
            #[test]
            fn arbitrary_gzip_and_parquet_bytes_never_panic(
                body in proptest::collection::vec(any::<u8>(), 0..300),
                kind in 0..3usize,
            ) {
                let dir = tempfile::tempdir().unwrap();
                let bytes = match kind {
                    0 => [&[0x1f, 0x8b][..], &body].concat(),
                    1 => [&b"PAR1"[..], &body].concat(),
                    _ => [&b"PAR1"[..], &body, b"PAR1"].concat(),
                };
                let f = write(dir.path(), "t.bin", &bytes);
                if let Err(e) = read_file(&f) {
                    prop_assert!(e.to_string().contains("t.bin"), "{}", e);
                }
                if kind > 0
                    && let Ok(p) = parquet::ParquetFile::open(bytes, &[])
                {
                    let kinds = vec![ColumnKind::Auto; p.names.len()];
                    if let Ok(chunks) = p.chunks(&kinds) {
                        for c in chunks {
                            if c.is_err() { break; }
                        }
                    }
                }
            }

            /// Truncated gzip of a real table is an error, never a panic or a shorter table.
            #[test]
            fn truncated_gzip_is_an_error(rows in rows(), cut in 1usize..64) {
                let dir = tempfile::tempdir().unwrap();
                let gz = gzip(csv_text(&rows, ',').as_bytes());
                let cut = cut.min(gz.len() - 1);
                let f = write(dir.path(), "t.csv.gz", &gz[..gz.len() - cut]);
                prop_assert!(read_file(&f).is_err());
            }
        }
    }
}
