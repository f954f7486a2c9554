//! The service's own routes: the query-string route `GET /prediction` (with Iris's short
//! parameter names), `POST /predict`, `GET /health` and `GET /metadata`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::json::{InvalidJson, RawColumn, ValueError, truncate};
use super::{ApiError, AppState, Batch, Shared, limits};
use crate::data::{Column, Encoder, Table};
use crate::predict::{Prediction, RowPrediction};

/// The query-string route's short parameter names, in Iris feature order (sepal and petal
/// length and width).
pub const IRIS_QUERY_PARAMS: [&str; 4] = ["slength", "swidth", "plength", "pwidth"];

/// The short Iris parameter names when the model has four features, else none (the feature
/// names are the parameters then).
pub fn iris_query_aliases(features: &[String]) -> &'static [&'static str] {
    if features.len() == IRIS_QUERY_PARAMS.len() {
        &IRIS_QUERY_PARAMS
    } else {
        &[]
    }
}

fn prediction_json(state: &AppState, p: &Prediction) -> Value {
    let probs: serde_json::Map<String, Value> = state
        .predictor
        .classes()
        .iter()
        .cloned()
        .zip(p.probabilities.iter().map(|&x| json!(x)))
        .collect();
    json!({"species": p.class, "probability": p.probability, "probabilities": probs})
}

/// The query-string route: `GET /prediction?slength=&swidth=&plength=&pwidth=` (or the
/// model's own feature names), one row of numbers.
pub async fn get_prediction(
    State(state): State<Shared>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(pairs) =
        query.map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))?;
    let features = state.predictor.features();
    let aliases = iris_query_aliases(features);
    let mut values: Vec<Option<f32>> = vec![None; features.len()];
    let mut echo = serde_json::Map::new();
    for (key, raw) in &pairs {
        let idx = aliases
            .iter()
            .position(|a| a == key)
            .or_else(|| features.iter().position(|f| f == key))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unknown parameter `{key}`; expected {}",
                    expected_params(aliases, features)
                ))
            })?;
        if values[idx].is_some() {
            return Err(ApiError::bad_request(format!(
                "parameter for `{}` given twice",
                features[idx]
            )));
        }
        let v = crate::data::parse_number(raw.trim())
            .map_err(|e| ApiError::bad_request(format!("parameter `{key}`: {e}")))?;
        values[idx] = Some(v);
        // Echo the number as sent, not its 32-bit rounding.
        echo.insert(
            key.clone(),
            json!(raw.trim().parse::<f64>().unwrap_or(f64::from(v))),
        );
    }
    let missing: Vec<String> = values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_none())
        .map(|(i, _)| {
            aliases
                .get(i)
                .map_or(features[i].clone(), |a| a.to_string())
        })
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::bad_request(format!(
            "missing parameter(s): {}; expected {}",
            missing.join(", "),
            expected_params(aliases, features)
        )));
    }
    let values: Vec<f32> = values.into_iter().flatten().collect();
    let p = match super::run_batch(&state, Batch::Values(values))
        .await?
        .into_iter()
        .next()
    {
        Some(RowPrediction::Class(p)) => p,
        Some(RowPrediction::Number(_)) => {
            return Err(ApiError::internal(
                "the model answered a number for a class",
            ));
        }
        None => return Err(ApiError::internal("the model answered no row for one row")),
    };
    let mut body = echo;
    if let Value::Object(pred) = prediction_json(&state, &p) {
        body.extend(pred);
    }
    Ok(Json(Value::Object(body)))
}

fn expected_params(aliases: &[&str], features: &[String]) -> String {
    if aliases.is_empty() {
        features.join(", ")
    } else {
        format!("{} (or {})", aliases.join(", "), features.join(", "))
    }
}

/// Where an instance of a `POST /predict` body is: the body itself, or `instances[i]`. Shown as
/// the prefix of a message (`instances[2]: `, or nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceAt {
    /// The body is the one instance.
    Body,
    /// `instances[i]` of a batch.
    Batch(usize),
}

impl std::fmt::Display for InstanceAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InstanceAt::Body => Ok(()),
            InstanceAt::Batch(i) => write!(f, "instances[{i}]: "),
        }
    }
}

/// Why a `POST /predict` body cannot be read as rows.
#[derive(Debug, thiserror::Error)]
pub enum PredictBodyError {
    /// Not JSON, or a key given twice.
    #[error(transparent)]
    Json(#[from] InvalidJson),
    /// A field other than `instances` in a batch.
    #[error("unknown field `{0}` beside `instances`")]
    BesideInstances(String),
    /// `instances` is not an array.
    #[error("`instances` must be an array")]
    InstancesNotArray,
    /// `instances` is `[]`.
    #[error("`instances` is empty")]
    NoInstances,
    /// More instances than `--max-instances`.
    #[error("{sent} instances in one request; at most {max} are accepted")]
    TooMany {
        /// Instances sent.
        sent: usize,
        /// Instances accepted.
        max: usize,
    },
    /// An array instance with the wrong number of values.
    #[error("{at}expected {} values ({}), got {got}", .features.len(), .features.join(", "))]
    Length {
        /// The instance.
        at: InstanceAt,
        /// The model's features, in order.
        features: Vec<String>,
        /// Values sent.
        got: usize,
    },
    /// An object instance with a key that is not a feature.
    #[error("{at}unknown field `{field}`; expected {}", .features.join(", "))]
    UnknownField {
        /// The instance.
        at: InstanceAt,
        /// The key.
        field: String,
        /// The model's features, in order.
        features: Vec<String>,
    },
    /// An object instance without a feature.
    #[error("{at}missing field `{field}` (send null for a missing value)")]
    MissingField {
        /// The instance.
        at: InstanceAt,
        /// The feature.
        field: String,
    },
    /// A value the feature cannot take.
    #[error("{at}`{field}`: {source}")]
    Value {
        /// The instance.
        at: InstanceAt,
        /// The feature.
        field: String,
        /// Why not.
        source: ValueError,
    },
    /// An instance that is neither an object nor an array.
    #[error(
        "{at}expected an object keyed by feature name or an array of {features} values, got {got}"
    )]
    NotAnInstance {
        /// The instance.
        at: InstanceAt,
        /// How many features the model takes.
        features: usize,
        /// What was sent, cut to 60 characters.
        got: String,
    },
    /// The columns read do not make a table (a bug).
    #[error("columns of different lengths")]
    Ragged,
}

/// Adds one JSON instance (an object keyed by feature name, or an array in feature order) to
/// the raw columns.
fn instance_row(
    v: &Value,
    names: &[&str],
    at: InstanceAt,
    columns: &mut [RawColumn],
) -> Result<(), PredictBodyError> {
    let features = || names.iter().map(|n| n.to_string()).collect();
    let push = |col: &mut RawColumn, x: &Value, name: &str| {
        col.push(x).map_err(|source| PredictBodyError::Value {
            at,
            field: name.to_string(),
            source,
        })
    };
    match v {
        Value::Array(items) => {
            if items.len() != names.len() {
                return Err(PredictBodyError::Length {
                    at,
                    features: features(),
                    got: items.len(),
                });
            }
            for ((x, name), col) in items.iter().zip(names).zip(columns.iter_mut()) {
                push(col, x, name)?;
            }
        }
        Value::Object(map) => {
            if let Some(extra) = map.keys().find(|k| !names.contains(&k.as_str())) {
                return Err(PredictBodyError::UnknownField {
                    at,
                    field: extra.clone(),
                    features: features(),
                });
            }
            for (name, col) in names.iter().zip(columns.iter_mut()) {
                let x = map
                    .get(*name)
                    .ok_or_else(|| PredictBodyError::MissingField {
                        at,
                        field: name.to_string(),
                    })?;
                push(col, x, name)?;
            }
        }
        other => {
            return Err(PredictBodyError::NotAnInstance {
                at,
                features: names.len(),
                got: truncate(other),
            });
        }
    }
    Ok(())
}

/// Parses a `POST /predict` body (one instance, or `{"instances": [...]}`) into a table of raw
/// columns, `Ok((rows, batched))`: numbers for numeric features, strings for categories, `null`
/// for a missing value.
pub fn parse_predict_body(
    body: &[u8],
    encoders: &[Encoder],
    max_instances: usize,
) -> Result<(Table, bool), PredictBodyError> {
    let v = super::json::parse(body)?;
    let names: Vec<&str> = encoders.iter().map(Encoder::name).collect();
    let mut columns: Vec<RawColumn> = encoders.iter().map(RawColumn::for_encoder).collect();
    let batched = match &v {
        Value::Object(map) if map.contains_key("instances") => {
            if let Some(extra) = map.keys().find(|k| *k != "instances") {
                return Err(PredictBodyError::BesideInstances(extra.clone()));
            }
            let Some(Value::Array(items)) = map.get("instances") else {
                return Err(PredictBodyError::InstancesNotArray);
            };
            if items.is_empty() {
                return Err(PredictBodyError::NoInstances);
            }
            if items.len() > max_instances {
                return Err(PredictBodyError::TooMany {
                    sent: items.len(),
                    max: max_instances,
                });
            }
            for (i, item) in items.iter().enumerate() {
                instance_row(item, &names, InstanceAt::Batch(i), &mut columns)?;
            }
            true
        }
        _ => {
            instance_row(&v, &names, InstanceAt::Body, &mut columns)?;
            false
        }
    };
    let columns = encoders
        .iter()
        .zip(columns)
        .map(|(e, c)| Column {
            name: e.name().to_string(),
            data: c.into_data(),
        })
        .collect();
    let table = Table::new(columns).ok_or(PredictBodyError::Ragged)?;
    Ok((table, batched))
}

/// A class or number prediction as JSON: `{"species", "probability", "probabilities"}` or
/// `{"value"}`.
fn row_json(state: &AppState, p: &RowPrediction) -> Value {
    match p {
        RowPrediction::Class(c) => prediction_json(state, c),
        RowPrediction::Number(v) => json!({ "value": v }),
    }
}

/// `POST /predict`: one instance, or `{"instances": [...]}`.
pub async fn predict(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = limits::body(body)?;
    limits::identity_encoding(&headers)?;
    if let Some(ct) = limits::media_type(&headers)?
        && ct.essence != "application/json"
    {
        return Err(ApiError::unsupported_media_type(format!(
            "Content-Type must be application/json, got `{}`",
            ct.text
        )));
    }
    let (table, batched) = parse_predict_body(
        &body,
        &state.predictor.preprocessor().encoding.columns,
        state.max_instances,
    )?;
    let predictions = super::run_batch(&state, Batch::Rows(table)).await?;
    let mut rows: Vec<Value> = predictions.iter().map(|p| row_json(&state, p)).collect();
    Ok(Json(if batched {
        json!({ "predictions": rows })
    } else {
        rows.pop().unwrap_or(Value::Null)
    }))
}

/// `GET /health`: the model is loaded; which one.
pub async fn health(State(state): State<Shared>) -> Json<Value> {
    let m = state.predictor.metadata();
    Json(json!({
        "status": "ok",
        "model": {
            "created_at": m.created_at,
            "record_sha256": m.record.sha256,
            "classes": m.classes,
            "features": m.features,
        }
    }))
}

/// `GET /metadata`: `model.json` as loaded.
pub async fn metadata(State(state): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.metadata_json.clone(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model of two numeric features, `a` and `b`.
    fn names() -> Vec<Encoder> {
        ["a", "b"]
            .map(|n| Encoder::Numeric {
                name: n.into(),
                fill: 0.0,
                indicator: false,
            })
            .to_vec()
    }

    /// A body for [`names`] as row-major numbers (`NaN` for `null`), and whether it was a batch.
    fn numbers(
        body: &[u8],
        encoders: &[Encoder],
        max_instances: usize,
    ) -> Result<(Vec<f32>, bool), PredictBodyError> {
        parse_predict_body(body, encoders, max_instances).map(|(table, batched)| {
            let values = table.numeric_row_major().expect("numeric columns");
            (values, batched)
        })
    }

    #[test]
    fn bodies_parse_as_objects_arrays_and_batches() {
        let f = names();
        assert_eq!(
            numbers(br#"{"a":1,"b":2}"#, &f, 10).unwrap(),
            (vec![1.0, 2.0], false)
        );
        assert_eq!(numbers(b"[1,2]", &f, 10).unwrap(), (vec![1.0, 2.0], false));
        assert_eq!(
            numbers(br#"{"instances":[[1,2],{"b":4,"a":3}]}"#, &f, 10).unwrap(),
            (vec![1.0, 2.0, 3.0, 4.0], true)
        );
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        let f = names();
        let cases: [(&[u8], &str); 11] = [
            (b"{", "not valid JSON"),
            (br#"{"a":1}"#, "missing field `b`"),
            (br#"{"a":1,"b":2,"c":3}"#, "unknown field `c`"),
            (br#"{"a":1,"b":2,"a":3}"#, "field `a` is given twice"),
            (b"[1]", "expected 2 values"),
            (br#"[1,"x"]"#, "`b`: expected a number"),
            (b"[1,1e39]", "out of range"),
            (br#"{"instances":[]}"#, "empty"),
            (br#"{"instances":[[1,2],[1,2],[1,2]]}"#, "at most 2"),
            (br#"{"instances":[[1,2],[1]]}"#, "instances[1]"),
            (b"\"hello\"", "expected an object"),
        ];
        for (body, expected) in cases {
            let m = parse_predict_body(body, &f, 2).unwrap_err().to_string();
            assert!(
                m.contains(expected),
                "{}: {m}",
                String::from_utf8_lossy(body)
            );
        }
    }

    fn penguin_encoders() -> Vec<Encoder> {
        vec![
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
        ]
    }

    #[test]
    fn raw_rows_take_strings_numbers_and_nulls() {
        let e = penguin_encoders();
        let (t, batched) = parse_predict_body(
            br#"{"instances":[{"island":"Dream","bill":39.1},["Atlantis",null],{"island":null,"bill":1}]}"#,
            &e,
            10,
        )
        .unwrap();
        assert!(batched);
        assert_eq!(t.rows(), 3);
        let island = &t.column("island").unwrap().data;
        assert_eq!(island.text(1).as_deref(), Some("Atlantis"));
        assert!(island.is_missing(2));
        assert!(t.column("bill").unwrap().data.is_missing(1));
        for (body, expected) in [
            (
                &br#"{"island":"Dream"}"#[..],
                "missing field `bill` (send null",
            ),
            (
                br#"{"island":"Dream","bill":"x"}"#,
                "`bill`: expected a number",
            ),
            (
                br#"{"island":[1],"bill":1}"#,
                "`island`: expected a string, a number or null",
            ),
            (br#"["Dream"]"#, "expected 2 values"),
        ] {
            let m = parse_predict_body(body, &e, 10).unwrap_err().to_string();
            assert!(m.contains(expected), "{m}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Arbitrary bytes never panic the request parser.
            #[test]
            fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
                if let Err(m) = parse_predict_body(&body, &names(), 10) {
                    prop_assert!(!m.to_string().is_empty());
                }
            }

            /// Nor with categorical features.
            #[test]
            fn arbitrary_raw_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
                if let Err(m) = parse_predict_body(&body, &penguin_encoders(), 10) {
                    prop_assert!(!m.to_string().is_empty());
                }
            }

            /// JSON-shaped text: what parses has exactly whole rows, never an infinity (`null`
            /// is a missing value, NaN, filled as the model was trained to).
            #[test]
            fn json_like_bodies_parse_to_whole_finite_rows(
                body in "(\\{|\\}|\\[|\\]|,|:|\"a\"|\"b\"|\"instances\"|[0-9]{1,3}|-|1e39|null|true){0,40}"
            ) {
                if let Ok((values, _)) = numbers(body.as_bytes(), &names(), 10) {
                    prop_assert!(!values.is_empty());
                    prop_assert_eq!(values.len() % 2, 0);
                    prop_assert!(values.iter().all(|v| !v.is_infinite()));
                }
            }
        }
    }
}
