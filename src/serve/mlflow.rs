//! MLflow's scoring protocol, as `mlflow models serve` answers it
//! (`mlflow/pyfunc/scoring_server`): `POST /invocations`, `GET /ping`, `GET /version`.
//!
//! Requests: JSON with exactly one of `dataframe_split` (pandas `to_dict(orient="split")`, what
//! MLflow's own client sends), `dataframe_records` (`orient="records"`), `instances` or
//! `inputs` (rows as arrays in feature order or as records; `inputs` also as columns
//! `{feature: [values]}`), and an optional `params`; or `text/csv` with a header. Columns are
//! matched to the model's features by name; other columns (a pandas index, the label) are
//! ignored, as MLflow ignores inputs its signature does not name.
//!
//! Answers: `{"predictions": [...]}`: each row's label, or with
//! `"params": {"predict_method": "predict_proba"}` (MLflow's scikit-learn convention) each
//! row's class probabilities. Errors: `{"error_code": "BAD_REQUEST", "message": ...}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::json::{InvalidJson, RawColumn, ValueError, cut, truncate};
use super::limits::{self, MediaType, RowCountError};
use super::{AnswerKind, ApiError, Batch, Shared};
use crate::data::{Column, Encoder, Encoding, Table};
use crate::predict::RowPrediction;

/// The JSON input fields of MLflow's scoring protocol.
pub const FORMATS: [&str; 4] = [
    "dataframe_split",
    "dataframe_records",
    "instances",
    "inputs",
];

/// What `predict` answers, as `params.predict_method` asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredictMethod {
    /// Each row's label (MLflow's default).
    Predict,
    /// Each row's class probabilities.
    PredictProba,
}

/// A parsed scoring request.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// Rows in the batch.
    pub rows: usize,
    /// The raw feature columns, named after the model's features.
    pub table: Table,
    /// What to answer.
    pub method: PredictMethod,
}

impl Invocation {
    /// The feature values row-major `[rows, features]`, when every feature is numeric.
    pub fn numeric_values(&self) -> Option<Vec<f32>> {
        self.table.numeric_row_major()
    }
}

/// Where a value of a scoring request is: `instances[2]`, `dataframe_split.data[0]`, or one
/// column's value `inputs.bill[3]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum At {
    /// Row `index` of the rows in `field`.
    Row {
        /// `instances`, `inputs`, `dataframe_records` or `dataframe_split.data`.
        field: &'static str,
        /// The row.
        index: usize,
    },
    /// Row `row` of column `column` of `inputs` given as columns.
    Column {
        /// The column.
        column: String,
        /// The row.
        row: usize,
    },
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Row { field, index } => write!(f, "{field}[{index}]"),
            At::Column { column, row } => write!(f, "inputs.{column}[{row}]"),
        }
    }
}

/// What a JSON scoring request gave instead of exactly one input field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Given {
    /// A JSON array.
    List,
    /// Another JSON value, cut to 60 characters.
    Value(String),
    /// These input fields (none, or more than one).
    Fields(Vec<&'static str>),
}

impl std::fmt::Display for Given {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Given::List => f.write_str("a list"),
            Given::Value(v) => f.write_str(v),
            Given::Fields(fields) if fields.is_empty() => f.write_str("none"),
            Given::Fields(fields) => f.write_str(&fields.join(", ")),
        }
    }
}

/// Why a JSON scoring request cannot be read. Values are shown as sent, cut to 60 characters
/// (names to 40).
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    /// Not JSON, or a key given twice.
    #[error(transparent)]
    Json(#[from] InvalidJson),
    /// No rows, or too many.
    #[error(transparent)]
    Rows(#[from] RowCountError),
    /// Not an object with exactly one input field.
    #[error(
        "the input must be a JSON object with exactly one of the input fields {formats}; got {0}",
        formats = FORMATS.join(", ")
    )]
    NotOneFormat(Given),
    /// A field other than the input fields and `params`.
    #[error(
        "unknown field `{}`; the input must be a JSON object with exactly one of the input \
         fields {} (and optionally `params`)",
        cut(.0, 40),
        FORMATS.join(", ")
    )]
    UnknownField(String),
    /// An input field of the wrong JSON type.
    #[error("`{format}` must be {}, got {got}", format_shape(.format))]
    FormatType {
        /// The input field.
        format: &'static str,
        /// Its value.
        got: String,
    },
    /// A value its feature cannot take.
    #[error("{at}, column `{column}`: {source}")]
    Value {
        /// Where.
        at: At,
        /// The feature.
        column: String,
        /// Why.
        source: ValueError,
    },
    /// A row of records that is not an object.
    #[error("{at}: expected a record (an object keyed by column name), got {got}")]
    NotARecord {
        /// The row.
        at: At,
        /// What was sent.
        got: String,
    },
    /// A record without a feature.
    #[error(
        "{at}: missing column `{column}`; the model's features are {} (send null for a missing \
         value)",
        .features.join(", ")
    )]
    RecordWithout {
        /// The row.
        at: At,
        /// The feature.
        column: String,
        /// The model's features.
        features: Vec<String>,
    },
    /// A row of arrays that is not an array.
    #[error("{at}: expected a row (an array), got {got}")]
    NotARow {
        /// The row.
        at: At,
        /// What was sent.
        got: String,
    },
    /// A row with the wrong number of values.
    #[error("{at}: expected {expected} values, got {got}")]
    RowLength {
        /// The row.
        at: At,
        /// Values expected.
        expected: usize,
        /// Values sent.
        got: usize,
    },
    /// `dataframe_split` that is not an object.
    #[error(
        "`dataframe_split` must be an object with `columns` and `data` (pandas \
         `to_dict(orient=\"split\")`), got {0}"
    )]
    SplitNotObject(String),
    /// A key of `dataframe_split` other than `columns`, `data` and `index`.
    #[error(
        "unknown field `{}` in `dataframe_split`; expected columns, data, index",
        cut(.0, 40)
    )]
    SplitField(String),
    /// `dataframe_split.data` that is not an array.
    #[error("`dataframe_split.data` must be an array of rows")]
    SplitData,
    /// `dataframe_split.columns` with an entry that is not a string.
    #[error("`dataframe_split.columns` must be an array of column names")]
    SplitColumnName,
    /// `dataframe_split.columns` that is not an array.
    #[error("`dataframe_split.columns` must be an array of column names, got {0}")]
    SplitColumns(String),
    /// A column named twice in `dataframe_split.columns`.
    #[error("`dataframe_split.columns[{index}]`: column `{}` appears twice", cut(.column, 40))]
    SplitColumnTwice {
        /// Its second position.
        index: usize,
        /// The column.
        column: String,
    },
    /// Features missing from the columns.
    #[error(
        "missing column(s) {}; the model's features are {}",
        .missing.join(", "),
        .features.join(", ")
    )]
    MissingColumns {
        /// The features missing.
        missing: Vec<String>,
        /// The model's features.
        features: Vec<String>,
    },
    /// A column of `inputs` that is not an array.
    #[error("inputs.{column}: expected an array of values, got {got}")]
    ColumnNotArray {
        /// The column.
        column: String,
        /// What was sent.
        got: String,
    },
    /// A feature missing from `inputs` given as columns.
    #[error("inputs: missing column `{column}`; the model's features are {}", .features.join(", "))]
    ColumnMissing {
        /// The feature.
        column: String,
        /// The model's features.
        features: Vec<String>,
    },
    /// Columns of `inputs` of different lengths.
    #[error(
        "inputs.{column} has {len} values but inputs.{first} has {first_len}; every column needs \
         the same rows"
    )]
    ColumnLength {
        /// The column.
        column: String,
        /// Its values.
        len: usize,
        /// The first column.
        first: String,
        /// Its values.
        first_len: usize,
    },
    /// `params` that is not an object.
    #[error("`params` must be an object, got {0}")]
    ParamsNotObject(String),
    /// A parameter other than `predict_method`.
    #[error(
        "unknown parameter `{}`; this model takes `predict_method` (predict or predict_proba)",
        cut(.0, 40)
    )]
    UnknownParam(String),
    /// A `predict_method` other than `predict` and `predict_proba`.
    #[error("`predict_method` must be \"predict\" or \"predict_proba\", got {0}")]
    PredictMethod(String),
    /// The columns read do not make a table (a bug).
    #[error("columns of different lengths")]
    Ragged,
}

/// What an input field holds, for [`InvocationError::FormatType`].
fn format_shape(format: &str) -> &'static str {
    if format == "inputs" {
        "an array of rows or an object of columns"
    } else {
        "an array"
    }
}

/// Rows collected into the model's feature columns: numbers (or `null`) for numeric features,
/// strings, numbers, booleans (or `null`) for categorical and boolean ones.
struct Rows<'a> {
    features: Vec<String>,
    encoders: &'a [Encoder],
    max_rows: usize,
    columns: Vec<RawColumn>,
    rows: usize,
}

impl<'a> Rows<'a> {
    fn new(encoders: &'a [Encoder], max_rows: usize, rows: usize) -> Result<Self, InvocationError> {
        limits::check_rows(rows, max_rows)?;
        Ok(Rows {
            features: encoders.iter().map(|e| e.name().to_string()).collect(),
            encoders,
            max_rows,
            columns: encoders.iter().map(RawColumn::for_encoder).collect(),
            rows: 0,
        })
    }

    /// Adds the value of feature `index` to the current row.
    fn value(&mut self, index: usize, v: &Value, at: &At) -> Result<(), InvocationError> {
        self.columns[index]
            .push(v)
            .map_err(|source| InvocationError::Value {
                at: at.clone(),
                column: self.features[index].clone(),
                source,
            })
    }

    /// A record keyed by column name; columns the model does not use are ignored.
    fn record(&mut self, v: &Value, at: &At) -> Result<(), InvocationError> {
        let Value::Object(map) = v else {
            return Err(InvocationError::NotARecord {
                at: at.clone(),
                got: truncate(v),
            });
        };
        for (index, name) in self.features.clone().iter().enumerate() {
            let x = map
                .get(name)
                .ok_or_else(|| InvocationError::RecordWithout {
                    at: at.clone(),
                    column: name.clone(),
                    features: self.features.clone(),
                })?;
            self.value(index, x, at)?;
        }
        self.rows += 1;
        Ok(())
    }

    /// A row of values at the given positions of the features.
    fn row(
        &mut self,
        v: &Value,
        at: &At,
        positions: &[usize],
        width: usize,
    ) -> Result<(), InvocationError> {
        let Value::Array(cells) = v else {
            return Err(InvocationError::NotARow {
                at: at.clone(),
                got: truncate(v),
            });
        };
        if cells.len() != width {
            return Err(InvocationError::RowLength {
                at: at.clone(),
                expected: width,
                got: cells.len(),
            });
        }
        for (index, &p) in positions.iter().enumerate() {
            self.value(index, &cells[p], at)?;
        }
        self.rows += 1;
        Ok(())
    }

    /// Rows as arrays in feature order or as records, all of one kind.
    fn rows_or_records(
        &mut self,
        items: &[Value],
        field: &'static str,
    ) -> Result<(), InvocationError> {
        let positions: Vec<usize> = (0..self.features.len()).collect();
        let records = items.first().is_some_and(Value::is_object);
        for (i, item) in items.iter().enumerate() {
            let at = At::Row { field, index: i };
            if records {
                self.record(item, &at)?;
            } else {
                self.row(item, &at, &positions, self.features.len())?;
            }
        }
        Ok(())
    }

    fn done(self, method: PredictMethod) -> Result<Invocation, InvocationError> {
        debug_assert!(self.rows <= self.max_rows);
        let columns = self
            .encoders
            .iter()
            .zip(self.columns)
            .map(|(e, c)| Column {
                name: e.name().to_string(),
                data: c.into_data(),
            })
            .collect();
        Ok(Invocation {
            rows: self.rows,
            table: Table::new(columns).ok_or(InvocationError::Ragged)?,
            method,
        })
    }
}

/// `dataframe_split`: `{"columns": [...], "data": [[...]], "index": [...]}`.
fn dataframe_split<'a>(
    v: &Value,
    encoders: &'a [Encoder],
    max_rows: usize,
) -> Result<Rows<'a>, InvocationError> {
    use InvocationError as E;
    let features: Vec<String> = encoders.iter().map(|e| e.name().to_string()).collect();
    let features = &features[..];
    let Value::Object(map) = v else {
        return Err(E::SplitNotObject(truncate(v)));
    };
    if let Some(k) = map
        .keys()
        .find(|k| !["columns", "data", "index"].contains(&k.as_str()))
    {
        return Err(E::SplitField(k.clone()));
    }
    let Some(Value::Array(data)) = map.get("data") else {
        return Err(E::SplitData);
    };
    let (positions, width) = match map.get("columns") {
        // No column names: the rows hold the features in the model's order.
        None => ((0..features.len()).collect(), features.len()),
        Some(Value::Array(columns)) => {
            let names = columns
                .iter()
                .map(|c| c.as_str())
                .collect::<Option<Vec<&str>>>()
                .ok_or(E::SplitColumnName)?;
            if let Some((i, dup)) = names
                .iter()
                .enumerate()
                .find(|(i, n)| names[..*i].contains(n))
            {
                return Err(E::SplitColumnTwice {
                    index: i,
                    column: dup.to_string(),
                });
            }
            (column_positions(&names, features)?, names.len())
        }
        Some(other) => return Err(E::SplitColumns(truncate(other))),
    };
    let mut rows = Rows::new(encoders, max_rows, data.len())?;
    for (i, row) in data.iter().enumerate() {
        let at = At::Row {
            field: "dataframe_split.data",
            index: i,
        };
        rows.row(row, &at, &positions, width)?;
    }
    Ok(rows)
}

/// Where each feature is among `columns`.
fn column_positions(columns: &[&str], features: &[String]) -> Result<Vec<usize>, InvocationError> {
    let missing: Vec<String> = features
        .iter()
        .filter(|f| !columns.contains(&f.as_str()))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(InvocationError::MissingColumns {
            missing,
            features: features.to_vec(),
        });
    }
    Ok(features
        .iter()
        .filter_map(|f| columns.iter().position(|c| c == f))
        .collect())
}

/// `inputs` as columns: `{feature: [values]}`.
fn columns<'a>(
    map: &Map<String, Value>,
    encoders: &'a [Encoder],
    max_rows: usize,
) -> Result<Rows<'a>, InvocationError> {
    use InvocationError as E;
    let features: Vec<String> = encoders.iter().map(|e| e.name().to_string()).collect();
    let features = &features[..];
    let mut cols: Vec<&Vec<Value>> = Vec::with_capacity(features.len());
    for name in features {
        match map.get(name) {
            Some(Value::Array(values)) => cols.push(values),
            Some(other) => {
                return Err(E::ColumnNotArray {
                    column: name.clone(),
                    got: truncate(other),
                });
            }
            None => {
                return Err(E::ColumnMissing {
                    column: name.clone(),
                    features: features.to_vec(),
                });
            }
        }
    }
    let n = cols.first().map_or(0, |c| c.len());
    if let Some((name, c)) = features.iter().zip(&cols).find(|(_, c)| c.len() != n) {
        return Err(E::ColumnLength {
            column: name.clone(),
            len: c.len(),
            first: features[0].clone(),
            first_len: n,
        });
    }
    let mut rows = Rows::new(encoders, max_rows, n)?;
    for r in 0..n {
        for (index, (c, name)) in cols.iter().zip(features).enumerate() {
            let at = At::Column {
                column: name.clone(),
                row: r,
            };
            rows.value(index, &c[r], &at)?;
        }
        rows.rows += 1;
    }
    Ok(rows)
}

fn predict_method(params: Option<&Value>) -> Result<PredictMethod, InvocationError> {
    use InvocationError as E;
    let map = match params {
        None => return Ok(PredictMethod::Predict),
        Some(Value::Object(m)) => m,
        Some(other) => return Err(E::ParamsNotObject(truncate(other))),
    };
    if let Some(k) = map.keys().find(|k| *k != "predict_method") {
        return Err(E::UnknownParam(k.clone()));
    }
    match map.get("predict_method") {
        None => Ok(PredictMethod::Predict),
        Some(Value::String(s)) if s == "predict" => Ok(PredictMethod::Predict),
        Some(Value::String(s)) if s == "predict_proba" => Ok(PredictMethod::PredictProba),
        Some(other) => Err(E::PredictMethod(truncate(other))),
    }
}

/// Parses a JSON scoring request for a model with these features (`encoders`): numbers (or
/// `null` for missing) for numeric features, strings for categories.
pub fn parse_json(
    body: &[u8],
    encoders: &[Encoder],
    max_rows: usize,
) -> Result<Invocation, InvocationError> {
    use InvocationError as E;
    let v = super::json::parse(body)?;
    let Value::Object(map) = &v else {
        return Err(E::NotOneFormat(match &v {
            Value::Array(_) => Given::List,
            other => Given::Value(truncate(other)),
        }));
    };
    if let Some(k) = map
        .keys()
        .find(|k| *k != "params" && !FORMATS.contains(&k.as_str()))
    {
        return Err(E::UnknownField(k.clone()));
    }
    let given: Vec<&'static str> = FORMATS
        .iter()
        .copied()
        .filter(|f| map.contains_key(*f))
        .collect();
    let [format] = given[..] else {
        return Err(E::NotOneFormat(Given::Fields(given)));
    };
    let method = predict_method(map.get("params"))?;
    let data = &map[format];
    let rows = match (format, data) {
        ("dataframe_split", v) => dataframe_split(v, encoders, max_rows)?,
        ("dataframe_records", Value::Array(items)) => {
            let mut rows = Rows::new(encoders, max_rows, items.len())?;
            for (i, item) in items.iter().enumerate() {
                let at = At::Row {
                    field: "dataframe_records",
                    index: i,
                };
                rows.record(item, &at)?;
            }
            rows
        }
        ("inputs", Value::Object(cols)) => columns(cols, encoders, max_rows)?,
        ("instances" | "inputs", Value::Array(items)) => {
            let mut rows = Rows::new(encoders, max_rows, items.len())?;
            rows.rows_or_records(items, format)?;
            rows
        }
        (_, other) => {
            return Err(E::FormatType {
                format,
                got: truncate(other),
            });
        }
    };
    rows.done(method)
}

/// Parses a scoring request of either content type for a model whose features `encoding`
/// describes.
pub fn parse_invocation(
    body: &[u8],
    content_type: Option<&str>,
    encoding: &Encoding,
    max_rows: usize,
) -> Result<Invocation, ApiError> {
    let expected = "Content-Type must be application/json or text/csv";
    let Some(ct) = content_type.map(MediaType::parse) else {
        return Err(ApiError::unsupported_media_type(format!(
            "{expected}; none was sent"
        )));
    };
    ct.require_utf8()?;
    if let Some((k, _)) = ct.params.iter().find(|(k, _)| k != "charset") {
        return Err(ApiError::unsupported_media_type(format!(
            "unknown Content-Type parameter `{}` in `{}`",
            cut(k, 40),
            ct.text
        )));
    }
    match ct.essence.as_str() {
        "application/json" => Ok(parse_json(body, &encoding.columns, max_rows)?),
        "text/csv" => {
            let table = crate::data::read_feature_table(body, "CSV body", encoding)?;
            let rows = table.rows();
            limits::check_rows(rows, max_rows)?;
            Ok(Invocation {
                rows,
                table,
                method: PredictMethod::Predict,
            })
        }
        _ => Err(ApiError::unsupported_media_type(format!(
            "{expected}, got `{}`",
            ct.text
        ))),
    }
}

/// The answer's `predictions`, by the model's task: labels or class probabilities for a
/// classifier, numbers for a regressor.
fn predictions_json(method: PredictMethod, predictions: &[RowPrediction]) -> Value {
    Value::Array(
        predictions
            .iter()
            .map(|p| match (p, method) {
                (RowPrediction::Class(c), PredictMethod::Predict) => json!(c.class),
                (RowPrediction::Class(c), PredictMethod::PredictProba) => json!(c.probabilities),
                (RowPrediction::Number(v), _) => json!(v),
            })
            .collect(),
    )
}

/// `POST /invocations`.
pub(crate) async fn invocations(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = limits::body(body)?;
    limits::identity_encoding(&headers)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str())
        .transpose()
        .map_err(|_| ApiError::unsupported_media_type("Content-Type is not readable text"))?;
    let invocation = parse_invocation(
        &body,
        content_type,
        &state.predictor.preprocessor().encoding,
        state.max_instances,
    )?;
    if invocation.method == PredictMethod::PredictProba
        && matches!(state.answers, AnswerKind::Number)
    {
        return Err(ApiError::bad_request(
            "`predict_method` predict_proba needs a classifier; this model predicts a number",
        ));
    }
    let predictions = super::run_batch(&state, Batch::Rows(invocation.table)).await?;
    Ok(Json(json!({
        "predictions": predictions_json(invocation.method, &predictions)
    })))
}

/// `GET /ping`: 200 once the model is loaded (which it is before the server listens).
pub(crate) async fn ping() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], "\n").into_response()
}

/// `GET /version`: the server's version, as text.
pub(crate) async fn version() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        env!("CARGO_PKG_VERSION"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ColumnData;
    use axum::http::StatusCode;

    /// A model of two numeric features, `a` and `b`.
    fn names() -> Encoding {
        Encoding {
            columns: ["a", "b"]
                .map(|n| Encoder::Numeric {
                    name: n.into(),
                    fill: 0.0,
                    indicator: false,
                })
                .to_vec(),
            missing_values: vec!["".into(), "NA".into()],
            source_columns: vec![],
        }
    }

    fn parse(body: &str) -> Result<Invocation, InvocationError> {
        parse_json(body.as_bytes(), &names().columns, 3)
    }

    #[test]
    fn every_format_gives_the_same_rows() {
        let rows = vec![1.0, 2.0, 3.0, 4.0];
        for body in [
            // pandas `to_dict(orient="split")`, as MLflow's client sends a DataFrame; extra
            // columns and any column order.
            r#"{"dataframe_split":{"index":[0,1],"columns":["b","x","a"],"data":[[2,"?",1],[4,"?",3]]}}"#,
            r#"{"dataframe_split":{"data":[[1,2],[3,4]]}}"#,
            r#"{"dataframe_records":[{"a":1,"b":2},{"b":4,"a":3,"label":"x"}]}"#,
            r#"{"instances":[[1,2],[3,4]]}"#,
            r#"{"instances":[{"a":1,"b":2},{"a":3,"b":4}]}"#,
            r#"{"inputs":[[1,2],[3,4]]}"#,
            r#"{"inputs":{"b":[2,4],"a":[1,3]}}"#,
        ] {
            let r = parse(body).unwrap_or_else(|e| panic!("{body}: {e}"));
            assert_eq!(
                (r.rows, &r.numeric_values().unwrap(), r.method),
                (2, &rows, PredictMethod::Predict),
                "{body}"
            );
        }
        let r =
            parse(r#"{"instances":[[1,2]],"params":{"predict_method":"predict_proba"}}"#).unwrap();
        assert_eq!(r.method, PredictMethod::PredictProba);
    }

    #[test]
    fn string_columns_and_nulls_in_every_format() {
        let e = Encoding {
            columns: vec![
                Encoder::Categorical {
                    name: "island".into(),
                    levels: vec!["Biscoe".into(), "Dream".into()],
                    missing_level: false,
                    other_level: false,
                },
                Encoder::Numeric {
                    name: "bill".into(),
                    fill: 40.0,
                    indicator: false,
                },
            ],
            missing_values: vec!["".into(), "NA".into()],
            source_columns: vec![],
        };
        let check = |r: Invocation| {
            assert_eq!(r.rows, 2);
            let island = &r.table.column("island").unwrap().data;
            assert_eq!(island.text(0).as_deref(), Some("Dream"));
            assert!(island.is_missing(1));
            let bill = &r.table.column("bill").unwrap().data;
            assert!(bill.is_missing(0));
            assert_eq!(bill, &ColumnData::Numeric(vec![f32::NAN, 39.5]));
        };
        for body in [
            r#"{"dataframe_split":{"columns":["bill","island"],"data":[[null,"Dream"],[39.5,null]]}}"#,
            r#"{"dataframe_records":[{"island":"Dream","bill":null},{"island":null,"bill":39.5}]}"#,
            r#"{"instances":[["Dream",null],[null,39.5]]}"#,
            r#"{"inputs":{"island":["Dream",null],"bill":[null,39.5]}}"#,
        ] {
            check(
                parse_json(body.as_bytes(), &e.columns, 3)
                    .unwrap_or_else(|m| panic!("{body}: {m}")),
            );
        }
        check(
            parse_invocation(
                b"species,bill,island
Adelie,NA,Dream
Gentoo,39.5,
",
                Some("text/csv"),
                &e,
                3,
            )
            .unwrap(),
        );
        assert_eq!(
            parse_json(br#"{"instances":[[["x"],1]]}"#, &e.columns, 3)
                .unwrap_err()
                .to_string(),
            "instances[0], column `island`: expected a string, a number or null, got [\"x\"]"
        );
        let m = parse_invocation(
            b"island,bill
Dream,abc
",
            Some("text/csv"),
            &e,
            3,
        )
        .unwrap_err()
        .message()
        .to_string();
        assert!(m.contains("bill") && m.contains("abc"), "{m}");
    }

    #[test]
    fn csv_is_matched_by_header() {
        let r = parse_invocation(
            b",b,a\n0,2,1\n1,4,3\n",
            Some("text/csv; charset=utf-8"),
            &names(),
            3,
        )
        .unwrap();
        assert_eq!(
            (r.rows, r.numeric_values().unwrap()),
            (2, vec![1.0, 2.0, 3.0, 4.0])
        );
        let e = parse_invocation(b"a,c\n1,2\n", Some("text/csv"), &names(), 3).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            e.message(),
            "CSV body: the header has no column `b`; the model needs a, b"
        );
        let e = parse_invocation(b"a,b\n1,2\n3,4\n5,6\n7,8\n", Some("text/csv"), &names(), 3)
            .unwrap_err();
        assert_eq!(e.message(), "4 rows in one request; at most 3 are accepted");
    }

    #[test]
    fn content_types_are_checked_as_mlflow_does() {
        let body = br#"{"instances":[[1,2]]}"#;
        for (ct, status, message) in [
            (
                None,
                415,
                "Content-Type must be application/json or text/csv; none was sent",
            ),
            (
                Some("text/plain"),
                415,
                "Content-Type must be application/json or text/csv, got `text/plain`",
            ),
            (
                Some("application/json; charset=latin-1"),
                415,
                "charset `latin-1` is not supported; send UTF-8 (Content-Type `application/json; charset=latin-1`)",
            ),
            (
                Some("application/json; format=pandas-split"),
                415,
                "unknown Content-Type parameter `format` in `application/json; format=pandas-split`",
            ),
        ] {
            let e = parse_invocation(body, ct, &names(), 3).unwrap_err();
            assert_eq!(
                (e.status().as_u16(), e.message()),
                (status, message),
                "{ct:?}"
            );
        }
        assert!(
            parse_invocation(body, Some("Application/JSON; charset=UTF-8"), &names(), 3).is_ok()
        );
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let formats = "dataframe_split, dataframe_records, instances, inputs";
        let cases = [
            ("{".to_string(), "body is not valid JSON: EOF while parsing an object at line 1 column 1".to_string()),
            ("[[1,2]]".into(), format!("the input must be a JSON object with exactly one of the input fields {formats}; got a list")),
            ("{}".into(), format!("the input must be a JSON object with exactly one of the input fields {formats}; got none")),
            (r#"{"instances":[[1,2]],"inputs":[[1,2]]}"#.into(), format!("the input must be a JSON object with exactly one of the input fields {formats}; got instances, inputs")),
            (r#"{"data":[[1,2]]}"#.into(), format!("unknown field `data`; the input must be a JSON object with exactly one of the input fields {formats} (and optionally `params`)")),
            (r#"{"instances":[]}"#.into(), "no rows to predict".into()),
            (r#"{"instances":[[1,2],[1,2],[1,2],[1,2]]}"#.into(), "4 rows in one request; at most 3 are accepted".into()),
            (r#"{"instances":[[1,2],[1]]}"#.into(), "instances[1]: expected 2 values, got 1".into()),
            (r#"{"instances":[[1,"x"]]}"#.into(), "instances[0], column `b`: expected a number, got \"x\"".into()),
            (r#"{"instances":[[1,1e39]]}"#.into(), "instances[0], column `b`: 1e+39 is out of range for a 32-bit float".into()),
            (r#"{"instances":[{"a":1,"b":2},[1,2]]}"#.into(), "instances[1]: expected a record (an object keyed by column name), got [1,2]".into()),
            (r#"{"dataframe_records":[{"a":1}]}"#.into(), "dataframe_records[0]: missing column `b`; the model's features are a, b (send null for a missing value)".into()),
            (r#"{"dataframe_records":{"a":1}}"#.into(), "`dataframe_records` must be an array, got {\"a\":1}".into()),
            (r#"{"dataframe_split":{"columns":["a"],"data":[[1]]}}"#.into(), "missing column(s) b; the model's features are a, b".into()),
            (r#"{"dataframe_split":{"columns":["a","b","a"],"data":[[1,2,3]]}}"#.into(), "`dataframe_split.columns[2]`: column `a` appears twice".into()),
            (r#"{"dataframe_split":{"columns":["a","b"],"data":[[1,2,3]]}}"#.into(), "dataframe_split.data[0]: expected 2 values, got 3".into()),
            (r#"{"dataframe_split":{"columns":["a","b"],"rows":[[1,2]]}}"#.into(), "unknown field `rows` in `dataframe_split`; expected columns, data, index".into()),
            (r#"{"inputs":{"a":[1,2],"b":[1]}}"#.into(), "inputs.b has 1 values but inputs.a has 2; every column needs the same rows".into()),
            (r#"{"inputs":{"a":[1]}}"#.into(), "inputs: missing column `b`; the model's features are a, b".into()),
            (r#"{"inputs":5}"#.into(), "`inputs` must be an array of rows or an object of columns, got 5".into()),
            (r#"{"instances":[[1,2]],"params":{"predict_method":"score"}}"#.into(), "`predict_method` must be \"predict\" or \"predict_proba\", got \"score\"".into()),
            (r#"{"instances":[[1,2]],"params":{"temperature":1}}"#.into(), "unknown parameter `temperature`; this model takes `predict_method` (predict or predict_proba)".into()),
        ];
        for (body, expected) in cases {
            assert_eq!(parse(&body).unwrap_err().to_string(), expected, "{body}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Arbitrary bytes as JSON or CSV never panic the parser.
            #[test]
            fn arbitrary_bodies_never_panic(
                body in proptest::collection::vec(any::<u8>(), 0..300),
                csv in any::<bool>(),
            ) {
                let ct = if csv { "text/csv" } else { "application/json" };
                if let Err(e) = parse_invocation(&body, Some(ct), &names(), 10) {
                    prop_assert!(!e.message().is_empty());
                    prop_assert!(e.status().is_client_error());
                }
            }

            /// JSON-shaped text: what parses has whole, finite rows within the limit.
            #[test]
            fn json_like_bodies_parse_to_whole_finite_rows(
                body in "(\\{|\\}|\\[|\\]|,|:|\"a\"|\"b\"|\"dataframe_split\"|\"dataframe_records\"|\"instances\"|\"inputs\"|\"columns\"|\"data\"|\"params\"|[0-9]{1,3}|-|1e39|null){0,50}"
            ) {
                if let Ok(r) = parse(&body) {
                    prop_assert!(r.rows >= 1 && r.rows <= 3);
                    // `null` is a missing value (NaN), never an infinity.
                    let values = r.numeric_values().unwrap();
                    prop_assert_eq!(values.len(), r.rows * 2);
                    prop_assert!(values.iter().all(|v| !v.is_infinite()));
                }
            }

            /// The same rows in every format parse to the same values.
            #[test]
            fn every_format_round_trips(rows in proptest::collection::vec((-1e6f32..1e6, -1e6f32..1e6), 1..4)) {
                let flat: Vec<f32> = rows.iter().flat_map(|(a, b)| [*a, *b]).collect();
                let arrays: Vec<[f32; 2]> = rows.iter().map(|(a, b)| [*a, *b]).collect();
                let records: Vec<Value> = rows.iter().map(|(a, b)| json!({"b": b, "a": a})).collect();
                let column = |j: usize| -> Vec<f32> { flat.iter().skip(j).step_by(2).copied().collect() };
                let bodies = [
                    json!({"dataframe_split": {"columns": ["a", "b"], "data": arrays}}),
                    json!({"dataframe_records": records}),
                    json!({"instances": arrays}),
                    json!({"instances": records}),
                    json!({"inputs": arrays}),
                    json!({"inputs": {"a": column(0), "b": column(1)}}),
                ];
                for body in bodies {
                    let r = parse(&body.to_string()).unwrap();
                    prop_assert_eq!(&r.numeric_values().unwrap(), &flat);
                }
                let csv: String = std::iter::once("a,b\n".to_string())
                    .chain(rows.iter().map(|(a, b)| format!("{a},{b}\n")))
                    .collect();
                let r = parse_invocation(csv.as_bytes(), Some("text/csv"), &names(), 3).unwrap();
                prop_assert_eq!(&r.numeric_values().unwrap(), &flat);
            }
        }
    }
}
