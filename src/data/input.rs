//! Matching prediction input to a model: a file of rows opened for its features
//! ([`open_rows`]), or CSV rows held in memory such as a request body ([`read_feature_rows`],
//! [`read_feature_table`]).

use super::csv::{self, ColumnKind, MissingValues};
use super::preprocess::Encoding;
use super::reader::{ReadOptions, TableReader};
use super::schema::{FeatureType, Task};
use super::source::Source;
use super::table::{ColumnData, Table, TableBuilder};
use crate::error::{Error, Result};

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
    use crate::config::DataConfig;
    use crate::data::fixtures::write;
    use crate::data::{Dataset, Preprocessor};

    #[test]
    fn rows_for_a_model_are_matched_by_name_or_layout() {
        let d = Dataset::load(&DataConfig::default()).unwrap();
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
}
