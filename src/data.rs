//! Reading tabular CSV data: the embedded Iris set, `Table`, the stratified split and scaling.

use std::path::Path;

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{ColumnRef, DataConfig};
use crate::error::{Error, Result};

/// Fisher's Iris (the values R and scikit-learn distribute), with a header row.
pub const IRIS_CSV: &[u8] = include_bytes!("../data/iris.csv");

/// The name used for the embedded data in messages and metadata.
pub const EMBEDDED_IRIS: &str = "embedded:iris.csv";

/// Largest CSV accepted, so a wrong path (a disk image, a log) fails fast instead of filling memory.
pub const MAX_CSV_BYTES: u64 = 1 << 30;

/// A labelled table of numeric features.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Where the rows came from (a path or [`EMBEDDED_IRIS`]).
    pub source: String,
    /// SHA-256 of the raw bytes, hex.
    pub sha256: String,
    /// Feature column names, in model input order.
    pub feature_names: Vec<String>,
    /// The label column's name.
    pub label_name: String,
    /// Distinct labels, in a deterministic order (numeric if all labels are numbers, else lexical).
    pub class_names: Vec<String>,
    /// Row-major features, `rows * feature_names.len()` values.
    pub features: Vec<f32>,
    /// Class index of each row.
    pub labels: Vec<usize>,
}

impl Table {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    /// Number of features per row.
    pub fn width(&self) -> usize {
        self.feature_names.len()
    }

    /// The features of one row.
    pub fn row(&self, i: usize) -> &[f32] {
        let w = self.width();
        &self.features[i * w..(i + 1) * w]
    }

    /// Rows per class, in `class_names` order.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.class_names.len()];
        for &l in &self.labels {
            counts[l] += 1;
        }
        counts
    }

    /// Loads the CSV named by the config, or the embedded Iris data when there is none.
    pub fn load(config: &DataConfig) -> Result<Self> {
        match &config.path {
            None => Self::from_csv(IRIS_CSV, EMBEDDED_IRIS, config),
            Some(path) => {
                let bytes = read_limited(path)?;
                Self::from_csv(&bytes, &path.display().to_string(), config)
            }
        }
    }

    /// Parses CSV bytes; `source` names them in errors.
    pub fn from_csv(bytes: &[u8], source: &str, config: &DataConfig) -> Result<Self> {
        let err = |message: String| Error::Data {
            source_name: source.to_string(),
            message,
        };
        let records = read_records(bytes, source)?;
        let Some((first_line, first)) = records.first() else {
            return Err(err(
                "the file is empty: expected a header and data rows".into()
            ));
        };
        let ncols = first.len();
        let has_header = config
            .has_header
            .unwrap_or_else(|| looks_like_header(first, records.get(1).map(|(_, r)| r)));
        let names: Vec<String> = if has_header {
            first.clone()
        } else {
            (0..ncols).map(|i| format!("column_{i}")).collect()
        };
        if let Some(dup) = first_duplicate(&names).filter(|_| has_header) {
            return Err(err(format!(
                "line {first_line}: the header names column `{dup}` twice"
            )));
        }
        if ncols < 2 {
            return Err(err(format!(
                "line {first_line} has {ncols} column: expected at least one feature column and a label column"
            )));
        }
        let data = if has_header {
            &records[1..]
        } else {
            &records[..]
        };
        if data.is_empty() {
            return Err(err("no data rows after the header".into()));
        }

        let resolve = |c: &ColumnRef, what: &str| -> Result<usize> {
            match c {
                ColumnRef::Index(i) if *i < ncols => Ok(*i),
                ColumnRef::Index(i) => Err(err(format!(
                    "{what} column index {i} is out of range: the file has {ncols} columns (0 to {})",
                    ncols - 1
                ))),
                ColumnRef::Name(n) => names.iter().position(|x| x == n).ok_or_else(|| {
                    err(format!(
                        "{what} column `{n}` not found; the columns are: {}",
                        names.join(", ")
                    ))
                }),
            }
        };
        let label_col = match &config.label {
            Some(c) => resolve(c, "label")?,
            None => ncols - 1,
        };
        let feature_cols: Vec<usize> = match &config.features {
            Some(cs) => cs
                .iter()
                .map(|c| resolve(c, "feature"))
                .collect::<Result<_>>()?,
            None => (0..ncols).filter(|&i| i != label_col).collect(),
        };
        if feature_cols.contains(&label_col) {
            return Err(err(format!(
                "`{}` is both the label and a feature; remove it from `data.features`",
                names[label_col]
            )));
        }
        if let Some(dup) = first_duplicate(&feature_cols) {
            return Err(err(format!(
                "feature column `{}` is listed twice in `data.features`",
                names[dup]
            )));
        }

        let mut features = Vec::with_capacity(data.len() * feature_cols.len());
        let mut raw_labels = Vec::with_capacity(data.len());
        for (line, rec) in data {
            if rec.len() != ncols {
                return Err(err(format!(
                    "line {line} has {} fields, expected {ncols} like line {first_line}",
                    rec.len()
                )));
            }
            for &c in &feature_cols {
                features.push(parse_value(&rec[c], *line, &names[c]).map_err(&err)?);
            }
            let label = rec[label_col].as_str();
            if label.is_empty() {
                return Err(err(format!(
                    "line {line}, column `{}`: the label is empty",
                    names[label_col]
                )));
            }
            raw_labels.push(label.to_string());
        }

        let class_names = class_order(&raw_labels);
        if class_names.len() < 2 {
            return Err(err(format!(
                "only one class (`{}`) in column `{}`: a classifier needs at least two",
                class_names[0], names[label_col]
            )));
        }
        let index: std::collections::HashMap<&str, usize> = class_names
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        let labels = raw_labels.iter().map(|l| index[l.as_str()]).collect();

        Ok(Table {
            source: source.to_string(),
            sha256: sha256_hex(bytes),
            feature_names: feature_cols.iter().map(|&c| names[c].clone()).collect(),
            label_name: names[label_col].clone(),
            class_names,
            features,
            labels,
        })
    }

    /// A new table holding the given rows, in that order.
    pub fn subset(&self, rows: &[usize]) -> Table {
        let mut features = Vec::with_capacity(rows.len() * self.width());
        for &r in rows {
            features.extend_from_slice(self.row(r));
        }
        Table {
            features,
            labels: rows.iter().map(|&r| self.labels[r]).collect(),
            ..self.clone()
        }
    }
}

/// Reads a file, refusing directories and files over [`MAX_CSV_BYTES`].
pub fn read_limited(path: &Path) -> Result<Vec<u8>> {
    let read_err = |source| Error::DataRead {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if meta.is_dir() {
        return Err(Error::Data {
            source_name: path.display().to_string(),
            message: "is a directory; give the path of a CSV file".into(),
        });
    }
    if meta.len() > MAX_CSV_BYTES {
        return Err(Error::Data {
            source_name: path.display().to_string(),
            message: format!(
                "is {} bytes; files over {MAX_CSV_BYTES} bytes are refused",
                meta.len()
            ),
        });
    }
    std::fs::read(path).map_err(read_err)
}

/// The one way this crate reads CSV: no header assumed (it is detected), rows of any length
/// (checked by the caller, with line numbers), fields trimmed, a UTF-8 byte-order mark skipped.
fn csv_reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes)
}

/// Reads CSV records as trimmed UTF-8 strings with their 1-based line numbers.
fn read_records(bytes: &[u8], source: &str) -> Result<Vec<(u64, Vec<String>)>> {
    let err = |message: String| Error::Data {
        source_name: source.to_string(),
        message,
    };
    let mut reader = csv_reader(bytes);
    let mut out = Vec::new();
    let mut rec = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(err(format!("not valid CSV: {e}"))),
        }
        let line = rec.position().map_or(0, |p| p.line());
        // A line holding only separators or whitespace is treated as blank.
        if rec.iter().all(|f| f.is_empty()) {
            continue;
        }
        let fields = rec
            .iter()
            .enumerate()
            .map(|(i, f)| {
                String::from_utf8(f.to_vec()).map_err(|_| {
                    err(format!(
                        "line {line}, field {}: not UTF-8 text; save the file as UTF-8",
                        i + 1
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        out.push((line, fields));
    }
    Ok(out)
}

/// The trimmed fields of the first non-blank row (a header, if the file has one); empty when
/// the bytes are not readable CSV.
pub fn first_row(bytes: &[u8]) -> Vec<String> {
    let mut reader = csv_reader(bytes);
    let mut rec = csv::StringRecord::new();
    while reader.read_record(&mut rec).unwrap_or(false) {
        if rec.iter().any(|f| !f.is_empty()) {
            return rec.iter().map(String::from).collect();
        }
    }
    Vec::new()
}

/// Why a field is not a usable feature value; the caller says where it was.
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

/// Parses one feature value, refusing empty, non-numeric and non-finite values.
pub fn parse_number(s: &str) -> std::result::Result<f32, BadValue> {
    if s.is_empty() {
        return Err(BadValue::Missing);
    }
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(BadValue::NotFinite(truncate(s, 40))),
        Err(_) => Err(BadValue::NotANumber(truncate(s, 40))),
    }
}

/// [`parse_number`] for a CSV field, with its line and column in the message.
pub fn parse_value(s: &str, line: u64, column: &str) -> std::result::Result<f32, String> {
    parse_number(s).map_err(|e| format!("line {line}, column `{column}`: {e}"))
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn is_number(s: &str) -> bool {
    s.parse::<f64>().is_ok()
}

/// A first row is a header when some column is non-numeric there but numeric in the second row
/// (or, with a single row, when no field is numeric).
fn looks_like_header(first: &[String], second: Option<&Vec<String>>) -> bool {
    match second {
        Some(second) => first
            .iter()
            .zip(second)
            .any(|(a, b)| !is_number(a) && is_number(b)),
        None => !first.iter().any(|f| is_number(f)),
    }
}

fn first_duplicate<T: PartialEq + Clone>(items: &[T]) -> Option<T> {
    items
        .iter()
        .enumerate()
        .find(|(i, x)| items[..*i].contains(x))
        .map(|(_, x)| x.clone())
}

/// Orders class names: numerically when every label is a number, otherwise lexically.
fn class_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y).then_with(|| a.cmp(b)),
        _ => a.cmp(b),
    }
}

fn class_order(labels: &[String]) -> Vec<String> {
    let mut names: Vec<String> = labels.to_vec();
    let numeric = names.iter().all(|n| is_number(n));
    names.sort_by(|a, b| if numeric { class_cmp(a, b) } else { a.cmp(b) });
    names.dedup();
    names
}

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Row indices of a stratified split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Rows to fit on, ascending.
    pub train: Vec<usize>,
    /// Held-out rows, ascending.
    pub test: Vec<usize>,
}

impl Split {
    /// Holds out `fraction` of each class (rounded, at least one row, and at least one row kept).
    pub fn stratified(
        labels: &[usize],
        class_names: &[String],
        fraction: f64,
        rng: &mut ChaCha8Rng,
    ) -> std::result::Result<Split, String> {
        let mut train = Vec::new();
        let mut test = Vec::new();
        for (class, name) in class_names.iter().enumerate() {
            let mut rows: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
            if rows.len() < 2 {
                return Err(format!(
                    "class `{name}` has {} row(s); every class needs at least 2 to appear on both sides of the split",
                    rows.len()
                ));
            }
            rows.shuffle(rng);
            let n_test = ((rows.len() as f64 * fraction).round() as usize).clamp(1, rows.len() - 1);
            test.extend_from_slice(&rows[..n_test]);
            train.extend_from_slice(&rows[n_test..]);
        }
        train.sort_unstable();
        test.sort_unstable();
        Ok(Split { train, test })
    }
}

/// Per-feature standardisation, `(x - mean) / std`, fitted on the training split only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    /// Mean of each feature.
    pub mean: Vec<f32>,
    /// Population standard deviation of each feature (1 where a feature is constant).
    pub std: Vec<f32>,
}

impl Standardizer {
    /// Fits on every row of `table`.
    pub fn fit(table: &Table) -> Self {
        let (n, w) = (table.rows().max(1) as f64, table.width());
        let mut mean = vec![0f64; w];
        for r in 0..table.rows() {
            for (m, &x) in mean.iter_mut().zip(table.row(r)) {
                *m += f64::from(x);
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0f64; w];
        for r in 0..table.rows() {
            for ((v, &x), m) in var.iter_mut().zip(table.row(r)).zip(&mean) {
                *v += (f64::from(x) - m).powi(2);
            }
        }
        let std = var
            .iter()
            .map(|v| {
                let s = (v / n).sqrt();
                if s > 1e-12 { s as f32 } else { 1.0 }
            })
            .collect();
        Standardizer {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std,
        }
    }

    /// Scales row-major values in place.
    pub fn transform(&self, values: &mut [f32]) {
        let w = self.mean.len();
        for row in values.chunks_mut(w) {
            for ((x, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *x = (*x - m) / s;
            }
        }
    }
}

/// Reads rows of features for prediction, matching columns to the model's `feature_names`.
///
/// With a header, columns are matched by name and others (such as the label) are ignored.
/// Without one, each row holds the features in model order, optionally followed by a label.
pub fn read_feature_rows(bytes: &[u8], source: &str, feature_names: &[String]) -> Result<Vec<f32>> {
    let err = |message: String| Error::Input(format!("{source}: {message}"));
    let records = read_records(bytes, source).map_err(|e| match e {
        Error::Data { message, .. } => err(message),
        other => other,
    })?;
    let Some((_, first)) = records.first() else {
        return Err(err("no rows to predict".into()));
    };
    let w = feature_names.len();
    let header = looks_like_header(first, records.get(1).map(|(_, r)| r))
        || first.iter().any(|f| feature_names.contains(f));
    let (cols, rows): (Vec<usize>, &[(u64, Vec<String>)]) = if header {
        let cols = feature_names
            .iter()
            .map(|n| {
                first.iter().position(|f| f == n).ok_or_else(|| {
                    err(format!(
                        "the header has no column `{n}`; the model needs {}",
                        feature_names.join(", ")
                    ))
                })
            })
            .collect::<Result<_>>()?;
        (cols, &records[1..])
    } else {
        ((0..w).collect(), &records[..])
    };
    if rows.is_empty() {
        return Err(err("no rows to predict after the header".into()));
    }
    let mut out = Vec::with_capacity(rows.len() * w);
    for (line, rec) in rows {
        let ok = if header {
            rec.len() == first.len()
        } else {
            rec.len() == w || rec.len() == w + 1
        };
        if !ok {
            let expected = if header {
                first.len().to_string()
            } else {
                format!("{w} (or {} with a label)", w + 1)
            };
            return Err(err(format!(
                "line {line} has {} fields, expected {expected}",
                rec.len()
            )));
        }
        for (&c, name) in cols.iter().zip(feature_names) {
            out.push(parse_value(&rec[c], *line, name).map_err(&err)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn table(csv: &str) -> Result<Table> {
        Table::from_csv(csv.as_bytes(), "t.csv", &DataConfig::default())
    }

    fn data_err(csv: &str) -> String {
        table(csv).unwrap_err().to_string()
    }

    #[test]
    fn embedded_iris_is_150_by_4_with_50_per_class() {
        let t = Table::load(&DataConfig::default()).unwrap();
        assert_eq!((t.rows(), t.width()), (150, 4));
        assert_eq!(t.class_names, ["setosa", "versicolor", "virginica"]);
        assert_eq!(t.class_counts(), [50, 50, 50]);
        assert_eq!(
            t.feature_names,
            ["sepal_length", "sepal_width", "petal_length", "petal_width"]
        );
        assert_eq!(t.label_name, "species");
        // Fisher's values, not UCI's: samples 35 and 38 per UCI's errata.
        assert_eq!(t.row(34), [4.9, 3.1, 1.5, 0.2]);
        assert_eq!(t.row(37), [4.9, 3.6, 1.4, 0.1]);
    }

    #[test]
    fn headerless_uci_layout() {
        let t = table("5.1,3.5,1.4,0.2,Iris-setosa\n7.0,3.2,4.7,1.4,Iris-versicolor\n").unwrap();
        assert_eq!(t.rows(), 2);
        assert_eq!(
            t.feature_names,
            ["column_0", "column_1", "column_2", "column_3"]
        );
        assert_eq!(t.class_names, ["Iris-setosa", "Iris-versicolor"]);
        assert_eq!(t.labels, [0, 1]);
    }

    #[test]
    fn label_and_features_by_name_and_index() {
        let cfg = DataConfig {
            label: Some(ColumnRef::Name("y".into())),
            features: Some(vec![ColumnRef::Index(2), ColumnRef::Name("a".into())]),
            ..DataConfig::default()
        };
        let t = Table::from_csv(b"y,a,b\nx,1,2\nz,3,4\n", "t", &cfg).unwrap();
        assert_eq!(t.feature_names, ["b", "a"]);
        assert_eq!(t.features, [2.0, 1.0, 4.0, 3.0]);
        assert_eq!(t.labels, [0, 1]);
    }

    #[test]
    fn numeric_labels_sort_numerically() {
        let t = table("a,y\n1,10\n2,2\n3,1\n").unwrap();
        assert_eq!(t.class_names, ["1", "2", "10"]);
        assert_eq!(t.labels, [2, 1, 0]);
    }

    #[test]
    fn mixed_text_and_number_labels_keep_their_rows() {
        let t = table("a,y\n1,1\n2,10\n3,9\n4,a\n5,10\n").unwrap();
        assert_eq!(t.class_names, ["1", "10", "9", "a"]);
        assert_eq!(t.labels, [0, 1, 2, 3, 1]);
        assert_eq!(t.class_counts(), [1, 2, 1, 1]);
    }

    #[test]
    fn bad_values_name_line_and_column() {
        let m = data_err("a,b,y\n1,2,x\n1,oops,z\n");
        assert!(
            m.contains("line 3") && m.contains("`b`") && m.contains("oops"),
            "{m}"
        );
        let m = data_err("a,b,y\n1,2,x\nNaN,1,z\n");
        assert!(
            m.contains("line 3") && m.contains("`a`") && m.contains("finite"),
            "{m}"
        );
        let m = data_err("a,b,y\n1,inf,x\n1,2,z\n");
        assert!(m.contains("line 2") && m.contains("finite"), "{m}");
        let m = data_err("a,b,y\n1,,x\n1,2,z\n");
        assert!(m.contains("line 2") && m.contains("missing"), "{m}");
        let m = data_err("a,b,y\n1,1e39,x\n1,2,z\n");
        assert!(m.contains("finite"), "{m}");
    }

    #[test]
    fn ragged_rows_are_refused() {
        let m = data_err("a,b,y\n1,2,x\n1,2\n");
        assert!(m.contains("line 3 has 2 fields, expected 3"), "{m}");
    }

    #[test]
    fn empty_and_header_only_files_are_refused() {
        assert!(data_err("").contains("empty"));
        assert!(data_err("\n\n").contains("empty"));
        assert!(data_err("a,b,y\n").contains("no data rows"));
    }

    #[test]
    fn one_class_is_refused() {
        let m = data_err("a,y\n1,x\n2,x\n");
        assert!(m.contains("only one class") && m.contains("`x`"), "{m}");
    }

    #[test]
    fn missing_column_lists_the_columns() {
        let cfg = DataConfig {
            label: Some(ColumnRef::Name("species".into())),
            ..DataConfig::default()
        };
        let m = Table::from_csv(b"a,b\n1,x\n2,y\n", "t", &cfg)
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("`species` not found") && m.contains("a, b"),
            "{m}"
        );
    }

    #[test]
    fn label_as_feature_is_refused() {
        let cfg = DataConfig {
            features: Some(vec![ColumnRef::Index(1)]),
            ..DataConfig::default()
        };
        let m = Table::from_csv(b"a,y\n1,x\n2,y\n", "t", &cfg)
            .unwrap_err()
            .to_string();
        assert!(m.contains("both the label and a feature"), "{m}");
    }

    #[test]
    fn binary_garbage_is_an_error() {
        let m = Table::from_csv(b"\xff\xfe\x00a,b\n\x80,1\n", "g", &DataConfig::default())
            .unwrap_err()
            .to_string();
        assert!(m.contains("UTF-8"), "{m}");
    }

    #[test]
    fn split_is_stratified_seeded_and_disjoint() {
        let t = Table::load(&DataConfig::default()).unwrap();
        let split = |seed| {
            Split::stratified(
                &t.labels,
                &t.class_names,
                0.2,
                &mut ChaCha8Rng::seed_from_u64(seed),
            )
            .unwrap()
        };
        let (s1, s2, s3) = (split(1), split(1), split(2));
        assert_eq!(s1, s2);
        assert_ne!(s1, s3);
        assert_eq!((s1.train.len(), s1.test.len()), (120, 30));
        let test = t.subset(&s1.test);
        assert_eq!(test.class_counts(), [10, 10, 10]);
        assert!(s1.test.iter().all(|i| !s1.train.contains(i)));
    }

    #[test]
    fn split_needs_two_rows_per_class() {
        let labels = [0, 0, 1];
        let names = ["a".to_string(), "b".to_string()];
        let m =
            Split::stratified(&labels, &names, 0.2, &mut ChaCha8Rng::seed_from_u64(0)).unwrap_err();
        assert!(m.contains("class `b` has 1 row"), "{m}");
    }

    #[test]
    fn standardizer_centres_and_scales() {
        let t = table("a,b,y\n1,5,x\n3,5,y\n").unwrap();
        let s = Standardizer::fit(&t);
        assert_eq!(s.mean, [2.0, 5.0]);
        assert_eq!(s.std, [1.0, 1.0]); // b is constant: scale 1, not a division by zero
        let mut v = t.features.clone();
        s.transform(&mut v);
        assert_eq!(v, [-1.0, 0.0, 1.0, 0.0]);
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
        use proptest::prelude::*;

        fn names() -> Vec<String> {
            ["a", "b"].map(String::from).to_vec()
        }

        proptest! {
            /// Arbitrary bytes never panic the CSV readers; errors always say something.
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
                if let Err(e) = Table::from_csv(&bytes, "p.csv", &DataConfig::default()) {
                    prop_assert!(e.to_string().starts_with("invalid data in p.csv: "));
                }
                let _ = read_feature_rows(&bytes, "p.csv", &names());
            }

            /// CSV-like text (numbers, words, quotes, separators) never panics, and what parses
            /// is consistent: every row has every feature and a valid label.
            #[test]
            fn csv_like_text_is_read_consistently(text in "([0-9]{1,3}(\\.[0-9])?|[a-z]{1,3}|nan|inf|-|\"|,|\n| ){0,80}") {
                if let Ok(t) = Table::from_csv(text.as_bytes(), "p.csv", &DataConfig::default()) {
                    prop_assert_eq!(t.features.len(), t.rows() * t.width());
                    prop_assert!(t.features.iter().all(|x| x.is_finite()));
                    prop_assert!(t.labels.iter().all(|&l| l < t.class_names.len()));
                    prop_assert!(t.class_names.len() >= 2);
                }
                if let Ok(v) = read_feature_rows(text.as_bytes(), "p.csv", &names()) {
                    prop_assert_eq!(v.len() % 2, 0);
                    prop_assert!(v.iter().all(|x| x.is_finite()));
                }
            }
        }
    }
}
