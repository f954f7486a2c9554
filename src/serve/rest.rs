//! The service's own routes: the workshop's `GET /prediction`, `POST /predict`, `GET /health`
//! and `GET /metadata`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::json::{RawColumn, feature_value, truncate};
use super::{ApiError, AppState, Shared, limits};
use crate::data::{Column, Encoder, Table};
use crate::predict::{Prediction, RowPrediction};

/// The workshop's query parameter names, in Iris feature order.
pub const WORKSHOP_PARAMS: [&str; 4] = ["slength", "swidth", "plength", "pwidth"];

/// The workshop's names when the model has four features (Iris), else none.
pub fn workshop_aliases(features: &[String]) -> &'static [&'static str] {
    if features.len() == WORKSHOP_PARAMS.len() {
        &WORKSHOP_PARAMS
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
    json!({"species": p.species, "probability": p.probability, "probabilities": probs})
}

/// `GET /prediction?slength=&swidth=&plength=&pwidth=` (or the model's own feature names).
pub async fn workshop_prediction(
    State(state): State<Shared>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(pairs) =
        query.map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))?;
    let features = state.predictor.features();
    let aliases = workshop_aliases(features);
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
    let p = super::run_predictions(&state, values)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("the model answered no row for one row"))?;
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

/// Turns one JSON instance (an object keyed by feature name, or an array) into values.
fn instance_values(
    v: &Value,
    features: &[String],
    at: &str,
    out: &mut Vec<f32>,
) -> Result<(), String> {
    let number = |x: &Value, name: &str| feature_value(x).map_err(|e| format!("{at}`{name}`: {e}"));
    match v {
        Value::Array(items) => {
            if items.len() != features.len() {
                return Err(format!(
                    "{at}expected {} values ({}), got {}",
                    features.len(),
                    features.join(", "),
                    items.len()
                ));
            }
            for (x, name) in items.iter().zip(features) {
                out.push(number(x, name)?);
            }
        }
        Value::Object(map) => {
            if let Some(extra) = map.keys().find(|k| !features.contains(k)) {
                return Err(format!(
                    "{at}unknown field `{extra}`; expected {}",
                    features.join(", ")
                ));
            }
            for name in features {
                let x = map
                    .get(name)
                    .ok_or_else(|| format!("{at}missing field `{name}`"))?;
                out.push(number(x, name)?);
            }
        }
        other => {
            return Err(format!(
                "{at}expected an object keyed by feature name or an array of {} numbers, got {}",
                features.len(),
                truncate(other)
            ));
        }
    }
    Ok(())
}

/// Parses a `POST /predict` body into row-major values; `Ok((values, batched))`.
pub fn parse_predict_body(
    body: &[u8],
    features: &[String],
    max_instances: usize,
) -> Result<(Vec<f32>, bool), String> {
    let v = super::json::parse(body)?;
    let mut out = Vec::new();
    match &v {
        Value::Object(map) if map.contains_key("instances") => {
            if let Some(extra) = map.keys().find(|k| *k != "instances") {
                return Err(format!("unknown field `{extra}` beside `instances`"));
            }
            let Some(Value::Array(items)) = map.get("instances") else {
                return Err("`instances` must be an array".into());
            };
            if items.is_empty() {
                return Err("`instances` is empty".into());
            }
            if items.len() > max_instances {
                return Err(format!(
                    "{} instances in one request; at most {max_instances} are accepted",
                    items.len()
                ));
            }
            out.reserve(items.len() * features.len());
            for (i, item) in items.iter().enumerate() {
                instance_values(item, features, &format!("instances[{i}]: "), &mut out)?;
            }
            Ok((out, true))
        }
        _ => {
            instance_values(&v, features, "", &mut out)?;
            Ok((out, false))
        }
    }
}

/// Turns one JSON instance (an object keyed by feature name, or an array in feature order) into
/// raw values.
fn instance_row(
    v: &Value,
    encoders: &[Encoder],
    at: &str,
    columns: &mut [RawColumn],
) -> Result<(), String> {
    let names: Vec<&str> = encoders.iter().map(Encoder::name).collect();
    match v {
        Value::Array(items) => {
            if items.len() != names.len() {
                return Err(format!(
                    "{at}expected {} values ({}), got {}",
                    names.len(),
                    names.join(", "),
                    items.len()
                ));
            }
            for ((x, name), col) in items.iter().zip(&names).zip(columns.iter_mut()) {
                col.push(x).map_err(|e| format!("{at}`{name}`: {e}"))?;
            }
        }
        Value::Object(map) => {
            if let Some(extra) = map.keys().find(|k| !names.contains(&k.as_str())) {
                return Err(format!(
                    "{at}unknown field `{extra}`; expected {}",
                    names.join(", ")
                ));
            }
            for (name, col) in names.iter().zip(columns.iter_mut()) {
                let x = map.get(*name).ok_or_else(|| {
                    format!("{at}missing field `{name}` (send null for a missing value)")
                })?;
                col.push(x).map_err(|e| format!("{at}`{name}`: {e}"))?;
            }
        }
        other => {
            return Err(format!(
                "{at}expected an object keyed by feature name or an array of {} values, got {}",
                names.len(),
                truncate(other)
            ));
        }
    }
    Ok(())
}

/// Parses a `POST /predict` body into a table of raw columns, `Ok((rows, batched))`: numbers
/// for numeric features, strings for categories, `null` for a missing value.
pub fn parse_predict_rows(
    body: &[u8],
    encoders: &[Encoder],
    max_instances: usize,
) -> Result<(Table, bool), String> {
    let v = super::json::parse(body)?;
    let mut columns: Vec<RawColumn> = encoders.iter().map(RawColumn::for_encoder).collect();
    let batched = match &v {
        Value::Object(map) if map.contains_key("instances") => {
            if let Some(extra) = map.keys().find(|k| *k != "instances") {
                return Err(format!("unknown field `{extra}` beside `instances`"));
            }
            let Some(Value::Array(items)) = map.get("instances") else {
                return Err("`instances` must be an array".into());
            };
            if items.is_empty() {
                return Err("`instances` is empty".into());
            }
            if items.len() > max_instances {
                return Err(format!(
                    "{} instances in one request; at most {max_instances} are accepted",
                    items.len()
                ));
            }
            for (i, item) in items.iter().enumerate() {
                instance_row(item, encoders, &format!("instances[{i}]: "), &mut columns)?;
            }
            true
        }
        _ => {
            instance_row(&v, encoders, "", &mut columns)?;
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
    let table = Table::new(columns).ok_or("columns of different lengths")?;
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
    let (table, batched) = parse_predict_rows(
        &body,
        &state.predictor.preprocessor().encoding.columns,
        state.max_instances,
    )
    .map_err(ApiError::bad_request)?;
    let predictions = super::run_rows(&state, table).await?;
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

    fn names() -> Vec<String> {
        ["a", "b"].map(String::from).to_vec()
    }

    #[test]
    fn bodies_parse_as_objects_arrays_and_batches() {
        let f = names();
        assert_eq!(
            parse_predict_body(br#"{"a":1,"b":2}"#, &f, 10).unwrap(),
            (vec![1.0, 2.0], false)
        );
        assert_eq!(
            parse_predict_body(b"[1,2]", &f, 10).unwrap(),
            (vec![1.0, 2.0], false)
        );
        assert_eq!(
            parse_predict_body(br#"{"instances":[[1,2],{"b":4,"a":3}]}"#, &f, 10).unwrap(),
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
            let m = parse_predict_body(body, &f, 2).unwrap_err();
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
        let (t, batched) = parse_predict_rows(
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
            let m = parse_predict_rows(body, &e, 10).unwrap_err();
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
                    prop_assert!(!m.is_empty());
                }
            }

            /// Arbitrary bytes never panic the raw-row parser either.
            #[test]
            fn arbitrary_raw_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
                if let Err(m) = parse_predict_rows(&body, &penguin_encoders(), 10) {
                    prop_assert!(!m.is_empty());
                }
            }

            /// JSON-shaped text: what parses has exactly whole, finite rows.
            #[test]
            fn json_like_bodies_parse_to_whole_finite_rows(
                body in "(\\{|\\}|\\[|\\]|,|:|\"a\"|\"b\"|\"instances\"|[0-9]{1,3}|-|1e39|null|true){0,40}"
            ) {
                if let Ok((values, _)) = parse_predict_body(body.as_bytes(), &names(), 10) {
                    prop_assert!(!values.is_empty());
                    prop_assert_eq!(values.len() % 2, 0);
                    prop_assert!(values.iter().all(|v| v.is_finite()));
                }
            }
        }
    }
}
