//! JSON shared by the protocols' parsers: bodies whose objects may not repeat a key, and feature
//! values that must be finite 32-bit numbers.

use serde_json::Value;

use crate::data::table::format_number;
use crate::data::{ColumnData, Encoder, FeatureType, MISSING};

/// A request body that is not JSON (or repeats a key).
#[derive(Debug, thiserror::Error)]
#[error("body is not valid JSON: {0}")]
pub struct InvalidJson(#[source] serde_json::Error);

/// Parses a request body as JSON, refusing repeated keys.
pub fn parse(body: &[u8]) -> Result<Value, InvalidJson> {
    serde_json::from_slice::<StrictJson>(body)
        .map(|s| s.0)
        .map_err(InvalidJson)
}

/// Why a JSON value cannot be a feature value; the caller says where it was. The values are
/// shown as sent (cut to 60 characters).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    /// Not a JSON number.
    #[error("expected a number, got {0}")]
    NotANumber(String),
    /// A number outside the range of a 32-bit float.
    #[error("{0} is out of range for a 32-bit float")]
    OutOfRange(String),
    /// Not a string, number, boolean or `null`, for a categorical or boolean feature.
    #[error("expected a string, a number or null, got {0}")]
    NotACategory(String),
}

/// A feature value: a JSON number that fits a finite 32-bit float.
pub fn feature_value(v: &Value) -> Result<f32, ValueError> {
    match v.as_f64() {
        Some(f) if (f as f32).is_finite() => Ok(f as f32),
        Some(_) => Err(ValueError::OutOfRange(v.to_string())),
        None => Err(ValueError::NotANumber(truncate(v))),
    }
}

/// One feature column of raw values being read from JSON.
pub(crate) enum RawColumn {
    /// A numeric feature: numbers, `NaN` for missing.
    Numbers(Vec<f32>),
    /// A categorical or boolean feature: text, with [`MISSING`] for missing.
    Text {
        /// Each row's index into `levels`, or [`MISSING`].
        codes: Vec<u32>,
        /// The distinct values, in order of appearance.
        levels: Vec<String>,
    },
}

impl RawColumn {
    /// An empty column for a feature.
    pub(crate) fn for_encoder(e: &Encoder) -> Self {
        match e.kind() {
            FeatureType::Numeric => RawColumn::Numbers(Vec::new()),
            _ => RawColumn::Text {
                codes: Vec::new(),
                levels: Vec::new(),
            },
        }
    }

    /// Adds one JSON value: a number (or `null`) for a numeric feature; a string, number,
    /// boolean (or `null`) for a categorical or boolean one. The error says why, not where.
    pub(crate) fn push(&mut self, x: &Value) -> Result<(), ValueError> {
        match self {
            RawColumn::Numbers(v) => v.push(match x {
                Value::Null => f32::NAN,
                x => feature_value(x)?,
            }),
            RawColumn::Text { codes, levels } => {
                let text = match x {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    Value::Bool(b) => Some(b.to_string()),
                    Value::Number(_) => Some(format_number(feature_value(x)?)),
                    other => return Err(ValueError::NotACategory(truncate(other))),
                };
                codes.push(match text {
                    None => MISSING,
                    Some(t) => match levels.iter().position(|l| *l == t) {
                        Some(i) => i as u32,
                        None => {
                            levels.push(t);
                            levels.len() as u32 - 1
                        }
                    },
                });
            }
        }
        Ok(())
    }

    /// The column's data.
    pub(crate) fn into_data(self) -> ColumnData {
        match self {
            RawColumn::Numbers(v) => ColumnData::Numeric(v),
            RawColumn::Text { codes, levels } => ColumnData::Text { codes, levels },
        }
    }
}

/// A JSON value as text, cut to 60 characters for error messages.
pub fn truncate(v: &Value) -> String {
    cut(&v.to_string(), 60)
}

/// Text cut to `max` characters (with an ellipsis when cut), for error messages.
pub fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// A JSON value whose objects may not repeat a key (plain `serde_json::Value` keeps the last one,
/// which would silently answer for a value the client did not mean).
struct StrictJson(Value);

impl<'de> serde::Deserialize<'de> for StrictJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StrictJson;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<StrictJson, E> {
                Ok(StrictJson(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<StrictJson, E> {
                Ok(StrictJson(Value::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<StrictJson, E> {
                Ok(StrictJson(Value::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<StrictJson, E> {
                Ok(StrictJson(Value::from(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<StrictJson, E> {
                Ok(StrictJson(Value::String(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<StrictJson, E> {
                Ok(StrictJson(Value::String(v)))
            }
            fn visit_unit<E>(self) -> Result<StrictJson, E> {
                Ok(StrictJson(Value::Null))
            }
            fn visit_none<E>(self) -> Result<StrictJson, E> {
                Ok(StrictJson(Value::Null))
            }
            fn visit_some<D2: serde::Deserializer<'de>>(
                self,
                d: D2,
            ) -> Result<StrictJson, D2::Error> {
                serde::Deserialize::deserialize(d)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<StrictJson, A::Error> {
                let mut items = Vec::new();
                while let Some(StrictJson(v)) = seq.next_element()? {
                    items.push(v);
                }
                Ok(StrictJson(Value::Array(items)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<StrictJson, A::Error> {
                let mut object = serde_json::Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    if object.contains_key(&key) {
                        return Err(serde::de::Error::custom(format!(
                            "field `{key}` is given twice"
                        )));
                    }
                    let StrictJson(v) = map.next_value()?;
                    object.insert(key, v);
                }
                Ok(StrictJson(Value::Object(object)))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_refused_at_any_depth() {
        assert!(parse(br#"{"a":1,"b":[{"c":1}]}"#).is_ok());
        let e = parse(br#"{"a":1,"b":[{"c":1,"c":2}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("field `c` is given twice"), "{e}");
    }

    #[test]
    fn feature_values_are_finite_f32() {
        assert_eq!(feature_value(&serde_json::json!(1.5)), Ok(1.5));
        assert_eq!(feature_value(&serde_json::json!(-3)), Ok(-3.0));
        assert_eq!(
            feature_value(&serde_json::json!(1e39)),
            Err(ValueError::OutOfRange("1e+39".into()))
        );
        assert_eq!(
            feature_value(&serde_json::json!("4")),
            Err(ValueError::NotANumber("\"4\"".into()))
        );
        let long = serde_json::json!("x".repeat(100));
        assert_eq!(truncate(&long).chars().count(), 61);
    }
}
