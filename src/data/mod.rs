//! Tabular data: readers (CSV, gzip-compressed CSV, Parquet) that fill typed columns in
//! bounded chunks, the [`Schema`] (roles, types, task), seeded splits and the [`Preprocessor`]
//! fitted on the training rows. Training reads a whole [`Dataset`]; `predict` and `evaluate`
//! stream the rows [`open_rows`] opens, chunk by chunk.

use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::config::{DataConfig, TrainConfig};
use crate::error::{Error, Result};

pub mod csv;
pub mod parquet;
pub mod preprocess;
pub mod schema;
pub mod split;
pub mod table;

pub use csv::{ColumnKind, MissingValues};
pub use preprocess::{Encoder, Encoding, Preprocessor, Standardizer, Unseen};
pub use schema::{ColumnPlan, FeatureType, Schema, Task};
pub use split::Split;
pub use table::{Column, ColumnData, MISSING, Table, TableBuilder};

/// Fisher's Iris (the values R and scikit-learn distribute), with a header row.
pub const IRIS_CSV: &[u8] = include_bytes!("../../data/iris.csv");

/// The name used for the embedded data in messages and metadata.
pub const EMBEDDED_IRIS: &str = "embedded:iris.csv";

/// Largest prediction input read from standard input in one go by older callers.
pub const MAX_CSV_BYTES: u64 = 1 << 30;

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a field is not a usable number; the caller says where it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadValue {
    /// The field is empty.
    #[error("missing value (empty field)")]
    Missing,
    /// The field is not a number.
    #[error("`{0}` is not a number")]
    NotANumber(String),
    /// The field parses to NaN or infinity.
    #[error("`{0}` is not a finite number (NaN, infinity or out of range)")]
    NotFinite(String),
}

/// Parses one number, refusing empty, non-numeric and non-finite values.
pub fn parse_number(s: &str) -> std::result::Result<f32, BadValue> {
    if s.is_empty() {
        return Err(BadValue::Missing);
    }
    let shown = || match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    };
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(BadValue::NotFinite(shown())),
        Err(_) => Err(BadValue::NotANumber(shown())),
    }
}

/// Reads a whole file, refusing directories.
pub fn read_limited(path: &Path) -> Result<Vec<u8>> {
    check_file(path)?;
    std::fs::read(path).map_err(|source| Error::DataRead {
        path: path.to_path_buf(),
        source,
    })
}

fn check_file(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|source| Error::DataRead {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        return Err(Error::Data {
            source_name: path.display().to_string(),
            message: "is a directory; give the path of a CSV or Parquet file".into(),
        });
    }
    Ok(())
}

/// Where a table comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The Iris data embedded in the binary.
    Embedded,
    /// A file: CSV, gzip-compressed CSV or Parquet, recognised by its first bytes.
    Path(PathBuf),
    /// Standard input (CSV or gzip-compressed CSV).
    Stdin,
}

impl Source {
    /// The name used in messages and metadata.
    pub fn name(&self) -> String {
        match self {
            Source::Embedded => EMBEDDED_IRIS.to_string(),
            Source::Path(p) => p.display().to_string(),
            Source::Stdin => "standard input".to_string(),
        }
    }
}

/// Hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Arc<Mutex<Sha256>>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut h) = self.hasher.lock() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// The file format found from the first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Gzip,
    Parquet,
}

/// An opened input: its format, a reader of its (decompressed) bytes and the hash of its raw
/// bytes so far.
struct Opened {
    name: String,
    format: Format,
    path: Option<PathBuf>,
    reader: Box<dyn Read + Send>,
    hasher: Arc<Mutex<Sha256>>,
}

fn open(source: &Source) -> Result<Opened> {
    let name = source.name();
    let hasher = Arc::new(Mutex::new(Sha256::new()));
    let (raw, path): (Box<dyn Read + Send>, Option<PathBuf>) = match source {
        Source::Embedded => (Box::new(IRIS_CSV), None),
        Source::Path(p) => {
            check_file(p)?;
            let f = std::fs::File::open(p).map_err(|source| Error::DataRead {
                path: p.clone(),
                source,
            })?;
            (Box::new(f), Some(p.clone()))
        }
        Source::Stdin => (Box::new(std::io::stdin()), None),
    };
    let mut raw: Box<dyn Read + Send> = Box::new(Hashing {
        inner: raw,
        hasher: Arc::clone(&hasher),
    });
    let mut magic = Vec::with_capacity(4);
    (&mut raw)
        .take(4)
        .read_to_end(&mut magic)
        .map_err(|e| read_error(&name, path.as_deref(), e))?;
    let format = if magic == b"PAR1" {
        Format::Parquet
    } else if magic.starts_with(&[0x1f, 0x8b]) {
        Format::Gzip
    } else {
        Format::Csv
    };
    let rejoined: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(magic).chain(raw));
    let reader: Box<dyn Read + Send> = match format {
        Format::Gzip => Box::new(flate2::read::MultiGzDecoder::new(rejoined)),
        _ => rejoined,
    };
    Ok(Opened {
        name,
        format,
        path,
        reader,
        hasher,
    })
}

fn read_error(name: &str, path: Option<&Path>, e: std::io::Error) -> Error {
    match path {
        Some(p)
            if e.kind() != std::io::ErrorKind::InvalidData
                && e.kind() != std::io::ErrorKind::InvalidInput =>
        {
            Error::DataRead {
                path: p.to_path_buf(),
                source: e,
            }
        }
        _ => Error::Data {
            source_name: name.to_string(),
            message: format!("cannot be read: {e}"),
        },
    }
}

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

/// What a model predicts for each row of its training data.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Class indices into `names`.
    Classes {
        /// Class names, in output order.
        names: Vec<String>,
        /// One class index per row.
        labels: Vec<usize>,
    },
    /// Numbers.
    Numbers(Vec<f32>),
}

/// A labelled table, its schema decided: what training reads.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// A path, or `embedded:iris.csv`.
    pub source: String,
    /// SHA-256 of the file's bytes.
    pub sha256: String,
    /// How the file was read, for messages.
    pub format: String,
    /// The feature columns (rows with a missing label removed).
    pub table: Table,
    /// Roles, types and the task.
    pub schema: Schema,
    /// The label of each row.
    pub target: Target,
    /// Rows dropped because their label was missing.
    pub dropped: usize,
    /// Missing-value markers used.
    pub missing_values: Vec<String>,
}

impl Dataset {
    /// Reads the table `config` names (or the embedded Iris data) and decides its schema.
    pub fn load(config: &DataConfig, max_categories: usize) -> Result<Self> {
        let source = match &config.path {
            None => Source::Embedded,
            Some(p) => Source::Path(p.clone()),
        };
        let reader = TableReader::open(&source, &ReadOptions::from_config(config), &[], false)?;
        let name = reader.source_name().to_string();
        let data_err = |message: String| Error::Data {
            source_name: name.clone(),
            message,
        };
        let format = reader.format.clone();
        let plan = ColumnPlan::new(&reader.names, config).map_err(&data_err)?;
        let (table, sha256) = reader.read_all(&plan.kinds())?;
        if table.rows() == 0 {
            return Err(data_err("no data rows after the header".into()));
        }
        let schema = Schema::infer(&plan, &table, max_categories).map_err(&data_err)?;
        let label = table
            .column(&schema.label)
            .ok_or_else(|| data_err(format!("label `{}` was not read", schema.label)))?;
        let keep: Vec<bool> = (0..table.rows())
            .map(|i| !label.data.is_missing(i))
            .collect();
        let dropped = keep.iter().filter(|&&k| !k).count();
        if dropped == table.rows() {
            return Err(data_err(format!(
                "every row's label (`{}`) is missing",
                schema.label
            )));
        }
        let mut table = table;
        if dropped > 0 {
            table.retain_rows(&keep);
        }
        let label = &table
            .column(&schema.label)
            .ok_or_else(|| data_err("label column lost".into()))?
            .data;
        let target = match schema.task {
            Task::Classification => {
                // Each row's value as a key (a text code, or a number's bits), each distinct
                // key written out once: no string per row.
                let key = |i: usize| -> u32 {
                    match label {
                        ColumnData::Text { codes, .. } => codes[i],
                        ColumnData::Numeric(v) if v[i] == 0.0 => 0,
                        ColumnData::Numeric(v) => v[i].to_bits(),
                    }
                };
                let mut texts: std::collections::HashMap<u32, String> =
                    std::collections::HashMap::new();
                for i in 0..label.len() {
                    if let std::collections::hash_map::Entry::Vacant(e) = texts.entry(key(i))
                        && let Some(t) = label.text(i)
                    {
                        e.insert(t);
                    }
                }
                let mut names: Vec<String> = texts
                    .values()
                    .cloned()
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                schema::sort_levels(&mut names);
                if names.len() < 2 {
                    return Err(data_err(format!(
                        "only one class (`{}`) in column `{}`: a classifier needs at least two",
                        names.first().cloned().unwrap_or_default(),
                        schema.label
                    )));
                }
                let index: std::collections::HashMap<&str, usize> = names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.as_str(), i))
                    .collect();
                let class_of: std::collections::HashMap<u32, usize> = texts
                    .iter()
                    .map(|(&k, t)| (k, index.get(t.as_str()).copied().unwrap_or(0)))
                    .collect();
                let labels = match label {
                    ColumnData::Text { codes, levels } => {
                        let map: Vec<usize> = (0..levels.len() as u32)
                            .map(|c| class_of.get(&c).copied().unwrap_or(0))
                            .collect();
                        codes.iter().map(|&c| map[c as usize]).collect()
                    }
                    ColumnData::Numeric(_) => (0..label.len())
                        .map(|i| class_of.get(&key(i)).copied().unwrap_or(0))
                        .collect(),
                };
                Target::Classes { names, labels }
            }
            Task::Regression => match label {
                ColumnData::Numeric(v) => {
                    let first = v[0];
                    if v.iter().all(|&x| x == first) {
                        return Err(data_err(format!(
                            "the label `{}` is {first} in every row: there is nothing to predict",
                            schema.label
                        )));
                    }
                    Target::Numbers(v.clone())
                }
                ColumnData::Text { .. } => {
                    return Err(data_err(format!(
                        "the label `{}` holds text; regression needs numbers (use --task classification)",
                        schema.label
                    )));
                }
            },
        };
        table.columns.retain(|c| c.name != schema.label);
        Ok(Dataset {
            source: name,
            sha256,
            format,
            table,
            schema,
            target,
            dropped,
            missing_values: config.missing_values.clone(),
        })
    }

    /// Number of rows with a label.
    pub fn rows(&self) -> usize {
        self.table.rows()
    }

    /// Class names (empty for regression).
    pub fn class_names(&self) -> &[String] {
        match &self.target {
            Target::Classes { names, .. } => names,
            Target::Numbers(_) => &[],
        }
    }

    /// Rows per class, in class order (empty for regression).
    pub fn class_counts(&self) -> Vec<usize> {
        match &self.target {
            Target::Classes { names, labels } => {
                let mut counts = vec![0; names.len()];
                for &l in labels {
                    counts[l] += 1;
                }
                counts
            }
            Target::Numbers(_) => Vec::new(),
        }
    }

    /// The schema as a compact table, with the file, its format and dropped rows: what the
    /// trainer prints at start.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "data: {} ({}; {} rows{})\n",
            self.source,
            self.format,
            self.rows(),
            if self.dropped > 0 {
                format!(
                    "; {} row(s) with a missing label `{}` dropped",
                    self.dropped, self.schema.label
                )
            } else {
                String::new()
            }
        );
        // The label column is gone from the features; show it from the target.
        let label = match &self.target {
            Target::Numbers(v) => ColumnData::Numeric(v.clone()),
            Target::Classes { names, labels } => ColumnData::Text {
                codes: labels.iter().map(|&l| l as u32).collect(),
                levels: names.clone(),
            },
        };
        s.push_str(&self.schema.describe(&self.table, Some(&label)));
        s
    }
}

/// Labels of one split.
#[derive(Debug, Clone, PartialEq)]
pub enum Labels {
    /// Class indices.
    Classes(Vec<usize>),
    /// Targets standardised with [`Prepared::target_scaling`].
    Numbers(Vec<f32>),
}

/// One split's encoded rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// Row-major inputs, `rows * width`.
    pub x: Vec<f32>,
    /// Number of rows.
    pub rows: usize,
    /// Their labels.
    pub y: Labels,
}

/// Mean and standard deviation of a regression target, fitted on the training rows.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TargetScaling {
    /// Mean.
    pub mean: f32,
    /// Population standard deviation (1 when constant).
    pub std: f32,
}

/// A dataset split, its preprocessor fitted on the training rows, every split encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// Classification or regression.
    pub task: Task,
    /// Class names (empty for regression).
    pub classes: Vec<String>,
    /// The transform from raw columns to inputs.
    pub preprocessor: Preprocessor,
    /// Scaling of a regression target.
    pub target_scaling: Option<TargetScaling>,
    /// Rows the optimiser sees.
    pub train: Part,
    /// Rows that decide early stopping (carved out of the training split).
    pub valid: Option<Part>,
    /// Held-out rows, reported, never used for a decision.
    pub test: Part,
}

impl Prepared {
    /// Number of inputs.
    pub fn width(&self) -> usize {
        self.preprocessor.width()
    }

    /// Splits `data` (seeded by `rng`: stratified for classes, random for numbers), holds out a
    /// validation split when early stopping is on, fits the preprocessor on the rows the
    /// optimiser sees and encodes every split.
    pub fn new(data: &Dataset, config: &TrainConfig, rng: &mut ChaCha8Rng) -> Result<Self> {
        Self::with_validation(
            data,
            config,
            rng,
            config.training.early_stopping_patience.is_some(),
        )
    }

    /// As [`Prepared::new`], holding out a validation split (`training.validation_fraction` of
    /// the training rows, drawn after the test split from the same `rng`) whenever `validation`
    /// is true or early stopping is on. A sweep point holds one out to be ranked on.
    pub fn with_validation(
        data: &Dataset,
        config: &TrainConfig,
        rng: &mut ChaCha8Rng,
        validation: bool,
    ) -> Result<Self> {
        let rows = Self::draw_splits(data, config, rng, validation)?;
        Self::encode_splits(
            data,
            Cow::Borrowed(&data.table),
            config,
            rows,
            RELEASE_BLOCK_ROWS,
        )
    }

    /// The rows of the training, validation (see [`Prepared::with_validation`]) and test
    /// splits, drawn from `rng`: the test split first, the validation split from its rest.
    fn draw_splits(
        data: &Dataset,
        config: &TrainConfig,
        rng: &mut ChaCha8Rng,
        validation: bool,
    ) -> Result<SplitRows> {
        let outer = Self::test_split(data, config, rng)?;
        if validation || config.training.early_stopping_patience.is_some() {
            let inner = Self::validation_split(data, config, &outer.train, rng)?;
            Ok((inner.train, Some(inner.test), outer.test))
        } else {
            Ok((outer.train, None, outer.test))
        }
    }

    /// The train/test split of `data` (`data.test_fraction`, seeded by `rng`): the first draw
    /// from the split seed's generator.
    pub fn test_split(data: &Dataset, config: &TrainConfig, rng: &mut ChaCha8Rng) -> Result<Split> {
        // `split_rows` over every row, without its list of row numbers and their labels.
        let fraction = config.data.test_fraction;
        match &data.target {
            Target::Classes { names, labels } => Split::stratified(labels, names, fraction, rng),
            Target::Numbers(_) => Split::random(data.rows(), fraction, rng),
        }
        .map_err(|m| Error::Data {
            source_name: data.source.clone(),
            message: format!("cannot split into train and test: {m}"),
        })
    }

    /// `training.validation_fraction` of `rows` held out (stratified for classes), for early
    /// stopping or ranking.
    pub fn validation_split(
        data: &Dataset,
        config: &TrainConfig,
        rows: &[usize],
        rng: &mut ChaCha8Rng,
    ) -> Result<Split> {
        split_rows(data, rows, config.training.validation_fraction, rng).map_err(|m| Error::Data {
            source_name: data.source.clone(),
            message: format!("cannot hold out a validation split: {m}"),
        })
    }

    /// Fits the preprocessor (and a regression target's scaling) on `fit_rows` and encodes them,
    /// the `valid_rows` that decide early stopping, and the held-out `test_rows` (reported, never
    /// used for a decision). Row numbers index `data`; each split keeps its rows in file order
    /// (training shuffles them every epoch).
    pub fn from_rows(
        data: &Dataset,
        config: &TrainConfig,
        fit_rows: &[usize],
        valid_rows: Option<&[usize]>,
        test_rows: &[usize],
    ) -> Result<Self> {
        Self::encode_splits(
            data,
            Cow::Borrowed(&data.table),
            config,
            (
                fit_rows.to_vec(),
                valid_rows.map(<[usize]>::to_vec),
                test_rows.to_vec(),
            ),
            RELEASE_BLOCK_ROWS,
        )
    }

    /// As [`Prepared::with_validation`], taking the dataset: its columns are given back to the
    /// allocator block by block as the rows are encoded, so the raw table and the encoded
    /// matrix are never both whole in memory (peak about the larger of the two, not their sum).
    pub fn from_dataset(
        mut data: Dataset,
        config: &TrainConfig,
        rng: &mut ChaCha8Rng,
        validation: bool,
    ) -> Result<Self> {
        let rows = Self::draw_splits(&data, config, rng, validation)?;
        let table = std::mem::take(&mut data.table);
        Self::encode_splits(&data, Cow::Owned(table), config, rows, RELEASE_BLOCK_ROWS)
    }

    /// [`Prepared::from_rows`] over `table` (the columns of `data`, lent or given): an owned
    /// table is cut back as its rows are encoded, from the last rows to the first, each split's
    /// matrix filled from its end, so freed raw rows and newly written encoded rows balance.
    /// The training, validation and test rows are `rows`; `block_rows` rows are encoded between
    /// two cuts of an owned table.
    fn encode_splits(
        data: &Dataset,
        mut table: Cow<'_, Table>,
        config: &TrainConfig,
        rows: SplitRows,
        block_rows: usize,
    ) -> Result<Self> {
        let data_err = |message: String| Error::Data {
            source_name: data.source.clone(),
            message,
        };
        let sorted = |mut rows: Vec<usize>| {
            rows.sort_unstable();
            rows
        };
        let (fit_rows, valid_rows, test_rows) =
            (sorted(rows.0), rows.1.map(sorted), sorted(rows.2));
        let mut preprocessor = Preprocessor::fit_encoders(
            &table,
            &data.schema,
            &fit_rows,
            &config.preprocess,
            &data.missing_values,
        )
        .map_err(&data_err)?;
        let w = preprocessor.width();
        let mut splits: Vec<(&[usize], Vec<f32>)> = std::iter::once(fit_rows.as_slice())
            .chain(valid_rows.as_deref())
            .chain(std::iter::once(test_rows.as_slice()))
            .map(|rows| (rows, vec![0f32; rows.len() * w]))
            .collect();
        let mut unknown = vec![(0, Vec::new()); preprocessor.encoding.columns.len()];
        let mut hi = table.rows();
        while hi > 0 {
            let lo = hi.saturating_sub(block_rows.max(1));
            for (rows, x) in &mut splits {
                let (a, b) = (
                    rows.partition_point(|&r| r < lo),
                    rows.partition_point(|&r| r < hi),
                );
                preprocessor
                    .encode_unscaled(
                        &table,
                        Some(&rows[a..b]),
                        &mut x[a * w..b * w],
                        a,
                        &mut unknown,
                    )
                    .map_err(|e| data_err(e.to_string()))?;
            }
            if let Cow::Owned(t) = &mut table {
                t.truncate_rows(lo);
            }
            hi = lo;
        }
        drop(table);
        preprocessor.fit_scaling(&splits[0].1);
        for (_, x) in &mut splits {
            preprocessor.scaling.transform(x);
            preprocessor
                .check_finite(x, 0)
                .map_err(|e| data_err(e.to_string()))?;
        }
        let target_scaling = match &data.target {
            Target::Numbers(v) => {
                let n = fit_rows.len() as f64;
                let mean = fit_rows.iter().map(|&r| f64::from(v[r])).sum::<f64>() / n;
                let var = fit_rows
                    .iter()
                    .map(|&r| (f64::from(v[r]) - mean).powi(2))
                    .sum::<f64>()
                    / n;
                let std = var.sqrt();
                Some(TargetScaling {
                    mean: mean as f32,
                    std: if std > 1e-12 { std as f32 } else { 1.0 },
                })
            }
            Target::Classes { .. } => None,
        };
        let labels = |rows: &[usize]| match &data.target {
            Target::Classes { labels, .. } => {
                Labels::Classes(rows.iter().map(|&r| labels[r]).collect())
            }
            Target::Numbers(v) => {
                let s = target_scaling.unwrap_or(TargetScaling {
                    mean: 0.0,
                    std: 1.0,
                });
                Labels::Numbers(rows.iter().map(|&r| (v[r] - s.mean) / s.std).collect())
            }
        };
        let mut parts = splits.into_iter().map(|(rows, x)| Part {
            x,
            rows: rows.len(),
            y: labels(rows),
        });
        let train = parts.next().expect("the training split");
        let valid = valid_rows.as_ref().and_then(|_| parts.next());
        let test = parts.next().expect("the test split");
        Ok(Prepared {
            task: data.schema.task,
            classes: data.class_names().to_vec(),
            preprocessor,
            target_scaling,
            train,
            valid,
            test,
        })
    }
}

/// Row numbers of the training, validation (if any) and test splits.
type SplitRows = (Vec<usize>, Option<Vec<usize>>, Vec<usize>);

/// Rows encoded between two cuts of an owned table (`Prepared::from_dataset`): 65,536 rows of a
/// numeric column are 256 KiB given back at a time.
const RELEASE_BLOCK_ROWS: usize = 65_536;

/// Holds out `fraction` of `rows` (row numbers of `data`): stratified by class for
/// classification, at random for regression.
fn split_rows(
    data: &Dataset,
    rows: &[usize],
    fraction: f64,
    rng: &mut ChaCha8Rng,
) -> std::result::Result<Split, String> {
    match &data.target {
        Target::Classes { names, labels } => {
            let sub: Vec<usize> = rows.iter().map(|&r| labels[r]).collect();
            Split::stratified(&sub, names, fraction, rng).map(|s| s.within(rows))
        }
        Target::Numbers(_) => Split::random(rows.len(), fraction, rng).map(|s| s.within(rows)),
    }
}

/// Opens a file of rows for a model whose features `encoding` describes (and whose label is
/// `label`), matching columns by header name; a headerless file is taken to be laid out like
/// the training file, or as the features in order (optionally followed by the label).
///
/// Returns the reader, renamed, and the kind each column must be read as. Feature columns the
/// file lacks are an error naming them.
pub fn open_rows(
    source: &Source,
    encoding: &Encoding,
    label: &str,
    task: Task,
    as_input: bool,
) -> Result<(TableReader, Vec<ColumnKind>)> {
    let features = encoding.feature_names();
    let mut known = features.clone();
    known.push(label.to_string());
    let options = ReadOptions {
        delimiter: None,
        has_header: None,
        missing: encoding.missing_values.clone(),
        threads: 0,
    };
    let mut reader = TableReader::open(source, &options, &known, as_input)?;
    let name = reader.source_name().to_string();
    let fail = |message: String| {
        if as_input {
            Error::Input(format!("{name}: {message}"))
        } else {
            Error::Data {
                source_name: name.clone(),
                message,
            }
        }
    };
    if !reader.has_header() {
        let n = reader.names.len();
        let names = if n == encoding.source_columns.len() && n != features.len() {
            encoding.source_columns.clone()
        } else if n == features.len() {
            // Some rows may also hold the label, after the features.
            reader.allow_extra_trailing_field();
            features.clone()
        } else if n == features.len() + 1 {
            known.clone()
        } else {
            let mut expected = format!(
                "{} (or {} with a label)",
                features.len(),
                features.len() + 1
            );
            if !encoding.source_columns.is_empty()
                && encoding.source_columns.len() != features.len() + 1
            {
                expected.push_str(&format!(
                    " or {} like the training file",
                    encoding.source_columns.len()
                ));
            }
            return Err(fail(format!(
                "line 1 has {n} fields, expected {expected}: the model takes {} features ({})",
                features.len(),
                features.join(", ")
            )));
        };
        reader.rename(names);
    }
    let missing: Vec<&String> = features
        .iter()
        .filter(|f| !reader.names.contains(f))
        .collect();
    if let Some(first) = missing.first() {
        return Err(fail(format!(
            "the header has no column `{first}`; the model needs {}",
            features.join(", ")
        )));
    }
    let kinds = reader
        .names
        .iter()
        .map(|n| {
            if let Some(e) = encoding.columns.iter().find(|e| e.name() == n) {
                match e.kind() {
                    FeatureType::Numeric => ColumnKind::Numeric,
                    _ => ColumnKind::Text,
                }
            } else if n == label {
                match task {
                    Task::Classification => ColumnKind::Text,
                    Task::Regression => ColumnKind::Numeric,
                }
            } else {
                ColumnKind::Skip
            }
        })
        .collect();
    Ok((reader, kinds))
}

/// Reads CSV rows of numeric features held in memory (a request body), matching columns to
/// `feature_names`: by name with a header (other columns, such as the label, are ignored);
/// without one, each row holds the features in order, optionally followed by a label. Returns
/// the values row-major; a missing value is `NaN`.
pub fn read_feature_rows(bytes: &[u8], source: &str, feature_names: &[String]) -> Result<Vec<f32>> {
    let table = read_features(
        bytes,
        source,
        feature_names,
        |_| ColumnKind::Numeric,
        MissingValues::default(),
    )?;
    let err = |message: String| Error::Input(format!("{source}: {message}"));
    if table.rows() == 0 {
        return Err(err("no rows to predict".into()));
    }
    let columns: Vec<&Vec<f32>> = feature_names
        .iter()
        .map(|f| match table.column(f).map(|c| &c.data) {
            Some(ColumnData::Numeric(v)) => Ok(v),
            _ => Err(Error::Internal(format!(
                "{source}: column `{f}` not read as numbers"
            ))),
        })
        .collect::<Result<_>>()?;
    let mut out = Vec::with_capacity(table.rows() * columns.len());
    for i in 0..table.rows() {
        out.extend(columns.iter().map(|c| c[i]));
    }
    Ok(out)
}

/// Reads CSV rows held in memory (a request body) for a model whose features `encoding`
/// describes: matched by header name (other columns are ignored), or without a header the
/// features in order, optionally followed by a label. Numeric features are read as numbers,
/// categorical and boolean ones as text; the model's missing-value markers are missing.
pub fn read_feature_table(bytes: &[u8], source: &str, encoding: &Encoding) -> Result<Table> {
    let names = encoding.feature_names();
    let table = read_features(
        bytes,
        source,
        &names,
        |name| match encoding.columns.iter().find(|e| e.name() == name) {
            Some(e) if e.kind() == FeatureType::Numeric => ColumnKind::Numeric,
            _ => ColumnKind::Text,
        },
        MissingValues::new(&encoding.missing_values),
    )?;
    if table.rows() == 0 {
        return Err(Error::Input(format!("{source}: no rows to predict")));
    }
    Ok(table)
}

/// The rows of the feature columns of in-memory CSV, each read as `kind` says.
fn read_features(
    bytes: &[u8],
    source: &str,
    feature_names: &[String],
    kind: impl Fn(&str) -> ColumnKind,
    missing: MissingValues,
) -> Result<Table> {
    let err = |message: String| Error::Input(format!("{source}: {message}"));
    let fail = |e: csv::ReadError| err(e.to_string());
    let options = csv::CsvOptions {
        known_names: feature_names.to_vec(),
        threads: 1,
        missing,
        ..csv::CsvOptions::default()
    };
    let mut file = csv::CsvFile::open(Box::new(std::io::Cursor::new(bytes.to_vec())), options)
        .map_err(fail)?;
    if !file.has_header {
        let n = file.names.len();
        let w = feature_names.len();
        if n == w {
            file.allow_extra_trailing_field();
        } else if n != w + 1 {
            return Err(err(format!(
                "line 1 has {n} fields, expected {w} (or {} with a label)",
                w + 1
            )));
        }
        file.names = (0..n)
            .map(|i| {
                feature_names
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("column_{i}"))
            })
            .collect();
    }
    if let Some(missing) = feature_names.iter().find(|f| !file.names.contains(f)) {
        return Err(err(format!(
            "the header has no column `{missing}`; the model needs {}",
            feature_names.join(", ")
        )));
    }
    let kinds: Vec<ColumnKind> = file
        .names
        .iter()
        .map(|n| {
            if feature_names.contains(n) {
                kind(n)
            } else {
                ColumnKind::Skip
            }
        })
        .collect();
    let mut builder = TableBuilder::new();
    for chunk in file.chunks(&kinds).map_err(fail)? {
        builder
            .push(chunk.map_err(fail)?.table)
            .map_err(|c| Error::Internal(format!("{source}: chunks disagree on column `{c}`")))?;
    }
    let table = builder.finish();
    let columns = feature_names
        .iter()
        .filter_map(|f| table.column(f).cloned())
        .collect();
    Table::new(columns).ok_or_else(|| Error::Internal(format!("{source}: ragged columns")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ColumnRef;
    use rand::SeedableRng;

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

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn load(path: &Path, cfg: DataConfig) -> Result<Dataset> {
        Dataset::load(
            &DataConfig {
                path: Some(path.to_path_buf()),
                ..cfg
            },
            100,
        )
    }

    #[test]
    fn embedded_iris_is_150_by_4_with_50_per_class() {
        let d = Dataset::load(&DataConfig::default(), 100).unwrap();
        assert_eq!((d.rows(), d.schema.features.len()), (150, 4));
        assert_eq!(d.class_names(), ["setosa", "versicolor", "virginica"]);
        assert_eq!(d.class_counts(), [50, 50, 50]);
        assert_eq!(d.schema.label, "species");
        assert_eq!(d.sha256, sha256_hex(IRIS_CSV));
        let x = match &d.table.column("sepal_width").unwrap().data {
            ColumnData::Numeric(v) => v.clone(),
            _ => panic!(),
        };
        // Fisher's values, not UCI's: samples 35 and 38 per UCI's errata.
        assert_eq!((x[34], x[37]), (3.1, 3.6));
    }

    #[test]
    fn penguin_like_file_with_label_first_blanks_and_categories() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("species,island,bill,sex,year\n");
        for i in 0..40 {
            let species = ["Adelie", "Gentoo"][i % 2];
            let bill = if i % 7 == 3 {
                "NA".to_string()
            } else {
                format!("{}.5", 35 + i % 2 * 10 + i % 3)
            };
            let sex = ["male", "female", ""][i % 3];
            text.push_str(&format!(
                "{species},{},{bill},{sex},{}\n",
                ["Biscoe", "Dream"][i % 3 % 2],
                2007 + i % 3
            ));
        }
        text.push_str("NA,Biscoe,40.1,male,2008\n");
        let p = write(dir.path(), "p.csv", text.as_bytes());
        let d = load(
            &p,
            DataConfig {
                label: Some(ColumnRef::Name("species".into())),
                ignore: vec![ColumnRef::Name("year".into())],
                ..DataConfig::default()
            },
        )
        .unwrap();
        assert_eq!(d.dropped, 1);
        assert_eq!(d.rows(), 40);
        assert_eq!(d.schema.task, Task::Classification);
        assert_eq!(d.class_names(), ["Adelie", "Gentoo"]);
        let kinds: Vec<_> = d
            .schema
            .features
            .iter()
            .map(|f| (f.name.as_str(), f.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("island", FeatureType::Categorical),
                ("bill", FeatureType::Numeric),
                ("sex", FeatureType::Categorical)
            ]
        );
        assert!(
            d.describe().contains("1 row(s) with a missing label"),
            "{}",
            d.describe()
        );
        let config = TrainConfig::default();
        let p = Prepared::new(&d, &config, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        assert_eq!(p.train.rows + p.test.rows, 40);
        assert_eq!(p.width(), 2 + 1 + 3);
        assert!(p.train.x.iter().chain(&p.test.x).all(|v| v.is_finite()));
    }

    #[test]
    fn regression_targets_are_standardised_on_the_training_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("x;y\n");
        for i in 0..50 {
            text.push_str(&format!("{i};{}\n", i as f32 * 2.5 + 1.0));
        }
        let p = write(dir.path(), "r.csv", text.as_bytes());
        let d = load(&p, DataConfig::default()).unwrap();
        assert_eq!(d.schema.task, Task::Regression);
        assert!(d.format.contains("delimiter ';'"), "{}", d.format);
        let prep = Prepared::new(
            &d,
            &TrainConfig::default(),
            &mut ChaCha8Rng::seed_from_u64(1),
        )
        .unwrap();
        let Labels::Numbers(y) = &prep.train.y else {
            panic!()
        };
        let mean: f32 = y.iter().sum::<f32>() / y.len() as f32;
        assert!(mean.abs() < 1e-5, "{mean}");
        assert_eq!((prep.train.rows, prep.test.rows), (40, 10));
        assert!(prep.target_scaling.is_some());
    }

    #[test]
    fn gzip_is_read_by_content() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(IRIS_CSV).unwrap();
        let bytes = gz.finish().unwrap();
        let p = write(dir.path(), "iris.csv.gz", &bytes);
        let d = load(&p, DataConfig::default()).unwrap();
        assert_eq!(d.rows(), 150);
        assert_eq!(d.sha256, sha256_hex(&bytes));
        assert!(d.format.starts_with("gzip-compressed CSV"), "{}", d.format);
        let bad = write(dir.path(), "bad.gz", &bytes[..bytes.len() / 2]);
        let e = load(&bad, DataConfig::default()).unwrap_err().to_string();
        assert!(e.contains("bad.gz"), "{e}");
    }

    #[test]
    fn bad_tables_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = |name: &str, text: &str, cfg: DataConfig| {
            let p = write(dir.path(), name, text.as_bytes());
            load(&p, cfg).unwrap_err().to_string()
        };
        let m = err("one.csv", "a,y\n1,x\n2,x\n", DataConfig::default());
        assert!(m.contains("only one class (`x`)"), "{m}");
        let m = err("h.csv", "a,b,y\n", DataConfig::default());
        assert!(m.contains("no data rows"), "{m}");
        let m = err(
            "missing.csv",
            "a,y\n1,x\n2,z\n",
            DataConfig {
                label: Some(ColumnRef::Name("species".into())),
                ..DataConfig::default()
            },
        );
        assert!(
            m.contains("`species`, which is not found") && m.contains("a, y"),
            "{m}"
        );
        let m = err(
            "reg.csv",
            "a,y\n1,x\n2,z\n",
            DataConfig {
                task: Some(Task::Regression),
                ..DataConfig::default()
            },
        );
        assert!(
            m.contains("line 2") && m.contains("`x` is not a number"),
            "{m}"
        );
        let m = err(
            "const.csv",
            "a,y\n1,2.5\n2,2.5\n",
            DataConfig {
                task: Some(Task::Regression),
                ..DataConfig::default()
            },
        );
        assert!(m.contains("nothing to predict"), "{m}");
        let e = load(dir.path(), DataConfig::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a directory"), "{e}");
    }

    #[test]
    fn rows_for_a_model_are_matched_by_name_or_layout() {
        let d = Dataset::load(&DataConfig::default(), 100).unwrap();
        let (p, _) = Preprocessor::fit(
            &d.table,
            &d.schema,
            &(0..150).collect::<Vec<_>>(),
            &Default::default(),
            &d.missing_values,
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let read = |text: &str| -> Result<Table> {
            let path = write(dir.path(), "in.csv", text.as_bytes());
            let (r, kinds) = open_rows(
                &Source::Path(path),
                &p.encoding,
                "species",
                Task::Classification,
                true,
            )?;
            Ok(r.read_all(&kinds)?.0)
        };
        let t = read(
            "petal_width,species,sepal_length,petal_length,sepal_width\n0.2,setosa,5.1,1.4,3.5\n",
        )
        .unwrap();
        assert_eq!(t.rows(), 1);
        assert!(t.column("species").is_some());
        let t = read("5.1,3.5,1.4,0.2\n6,3,4,1\n").unwrap();
        assert_eq!(t.rows(), 2);
        let t = read("5.1,3.5,1.4,0.2,setosa\n").unwrap();
        assert_eq!(
            t.column("species").unwrap().data.text(0).as_deref(),
            Some("setosa")
        );
        let m = read("1,2,3\n").unwrap_err().to_string();
        assert!(m.contains("line 1 has 3 fields"), "{m}");
        let m = read("a,b,c,d\n").unwrap_err().to_string();
        assert!(m.contains("no column `sepal_length`"), "{m}");
        let m = read("1,2,3,4\n5,6,seven,8\n").unwrap_err().to_string();
        assert!(m.contains("line 2") && m.contains("seven"), "{m}");
    }

    #[test]
    fn feature_rows_with_header_ignore_label_and_reorder() {
        let names: Vec<String> = ["a", "b"].map(String::from).to_vec();
        let v = read_feature_rows(b"b,y,a\n2,x,1\n4,z,3\n", "in", &names).unwrap();
        assert_eq!(v, [1.0, 2.0, 3.0, 4.0]);
        let v = read_feature_rows(b"1,2\n3,4,label\n", "in", &names).unwrap();
        assert_eq!(v, [1.0, 2.0, 3.0, 4.0]);
        let m = read_feature_rows(b"1,2,3,4\n", "in", &names)
            .unwrap_err()
            .to_string();
        assert!(m.contains("line 1 has 4 fields"), "{m}");
        let m = read_feature_rows(b"1,x\n", "in", &names)
            .unwrap_err()
            .to_string();
        assert!(m.contains("`x` is not a number"), "{m}");
    }

    mod properties {
        use super::*;
        use crate::data::table::format_number;
        use arrow_array::{ArrayRef, Float32Array, RecordBatch, StringArray};
        use proptest::prelude::*;

        /// A labelled table (`x`, `colour`, `label`) with blanks in every column, written as CSV
        /// and loaded: the label alternates `a`/`b` where it is not missing.
        fn labelled(rows: &[(Option<f32>, Option<usize>, bool)]) -> Result<Dataset> {
            let dir = tempfile::tempdir().unwrap();
            let mut text = String::from("x,colour,label\n");
            for (i, (x, colour, missing_label)) in rows.iter().enumerate() {
                let x = x.map_or("NA".to_string(), |x| x.to_string());
                let colour = colour.map_or("", |c| ["red", "green", "blue", "grey"][c]);
                let label = if *missing_label {
                    ""
                } else {
                    ["a", "b"][i % 2]
                };
                text += &format!("{x},{colour},{label}\n");
            }
            let p = write(dir.path(), "t.csv", text.as_bytes());
            load(
                &p,
                DataConfig {
                    label: Some(ColumnRef::Name("label".into())),
                    ..DataConfig::default()
                },
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(32))]

            /// A table given to `Prepared`, cut back every `block` rows as they are encoded,
            /// encodes exactly as the same table lent: the same inputs, labels and preprocessor,
            /// with or without a validation split.
            #[test]
            fn an_owned_table_encodes_as_a_lent_one(
                rows in proptest::collection::vec(
                    (proptest::option::of(-1e3f32..1e3), proptest::option::of(0..4usize), prop::bool::weighted(0.1)),
                    12..60,
                ),
                block in 1usize..9,
                validation in any::<bool>(),
                seed in any::<u64>(),
            ) {
                let Ok(data) = labelled(&rows) else { return Ok(()) };
                let config = TrainConfig::default();
                let rng = || ChaCha8Rng::seed_from_u64(seed);
                let lent = Prepared::with_validation(&data, &config, &mut rng(), validation);
                let whole = Prepared::from_dataset(data.clone(), &config, &mut rng(), validation);
                let Ok(lent) = lent else {
                    prop_assert!(whole.is_err());
                    return Ok(());
                };
                prop_assert_eq!(&whole.unwrap(), &lent);

                let mut rng = rng();
                let outer = Prepared::test_split(&data, &config, &mut rng).unwrap();
                let inner = validation
                    .then(|| Prepared::validation_split(&data, &config, &outer.train, &mut rng).unwrap());
                let fit = inner.as_ref().map_or(&outer.train, |i| &i.train);
                let mut rest = data.clone();
                let table = std::mem::take(&mut rest.table);
                let owned = Prepared::encode_splits(
                    &rest, Cow::Owned(table), &config, (fit.clone(), inner.as_ref().map(|i| i.test.clone()), outer.test.clone()), block,
                ).unwrap();
                prop_assert_eq!(&owned, &lent);
                prop_assert_eq!(lent.valid.is_some(), validation);
                prop_assert_eq!(lent.train.rows + lent.valid.map_or(0, |v| v.rows) + lent.test.rows, data.rows());
            }
        }

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

        /// A table's cells as text (`None`: missing), so that tables read by different readers
        /// compare whatever order they met the levels in.
        fn cells(t: &Table) -> Vec<Vec<Option<String>>> {
            t.columns
                .iter()
                .map(|c| (0..t.rows()).map(|i| c.data.text(i)).collect())
                .collect()
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

            /// The delimiter of any rectangular table of plain cells is detected.
            #[test]
            fn delimiters_are_detected(
                table in (2usize..6).prop_flat_map(|c| proptest::collection::vec(
                    proptest::collection::vec("[a-z0-9.]{1,5}", c), 2..10)),
                sep in prop::sample::select(vec![b',', b';', b'\t']),
            ) {
                let text: String = table
                    .iter()
                    .map(|r| r.join(&(sep as char).to_string()) + "\n")
                    .collect();
                prop_assert_eq!(csv::detect_delimiter(text.as_bytes()), sep);
            }

            /// With any list of missing-value markers, a cell is missing exactly when it is
            /// one of them (after trimming), in numeric and text columns alike.
            #[test]
            fn missing_value_markers_are_missing_and_nothing_else(
                markers in proptest::collection::vec("[A-Za-z?_]{1,4}", 1..4),
                rows in proptest::collection::vec((any::<bool>(), 0usize..4, -1e3f32..1e3, "[a-z]{1,3}"), 1..30),
            ) {
                let mut text = String::from("x,word\n");
                let mut expected = (Vec::new(), Vec::new());
                for (marked, m, x, w) in &rows {
                    let marker = &markers[m % markers.len()];
                    if *marked {
                        text += &format!(" {marker},{marker}\n");
                        expected.0.push(None);
                        expected.1.push(None);
                    } else {
                        text += &format!("{x},{w}\n");
                        expected.0.push(Some(format_number(*x)));
                        expected.1.push((!markers.contains(w)).then(|| w.clone()));
                    }
                }
                let options = csv::CsvOptions {
                    has_header: Some(true),
                    delimiter: Some(b','),
                    missing: MissingValues::new(&markers),
                    threads: 1,
                    ..csv::CsvOptions::default()
                };
                let file = csv::CsvFile::open(Box::new(std::io::Cursor::new(text.clone().into_bytes())), options).unwrap();
                let mut builder = TableBuilder::new();
                for chunk in file.chunks(&[ColumnKind::Numeric, ColumnKind::Text]).unwrap() {
                    builder.push(chunk.unwrap().table).unwrap();
                }
                let t = builder.finish();
                prop_assert_eq!(cells(&t), vec![expected.0, expected.1], "{}", text);
            }
        }
    }
}
