//! Open Inference Protocol v2 over REST, as KServe, Triton and Seldon MLServer clients speak it
//! (kserve/open-inference-protocol, `inference_rest.md`), with Triton's binary tensor data
//! extension, which `tritonclient` uses by default.
//!
//! How a tabular model maps onto tensors:
//! - input: one tensor per feature, named after its column, of shape `[N]` or `[N, 1]`: BYTES
//!   (UTF-8 text) for a category, FP32 (or FP64 / any integer type, converted to 32-bit floats)
//!   for a number, BOOL or a number for a boolean; a BYTES element that is one of the model's
//!   missing-value markers (such as `""` or `NA`) is a missing value, for any feature. A model
//!   without categorical features also takes one tensor `input` of shape `[N, features]` (FP32
//!   or another numeric type). Data row-major, nested or flat, in JSON or as binary after the
//!   JSON header (BYTES elements as a 4-byte little-endian length and the bytes);
//! - outputs: by the model's task (see [`answer_tensors`]): `label` (BYTES `[N]`) and
//!   `probabilities` (FP32 `[N, classes]`) for a classifier, `value` (FP32 `[N]`) for a
//!   regressor; a request's `outputs` picks some.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::json::{InvalidJson, cut, truncate};
use super::limits::RowCountError;
use super::{AnswerKind, ApiError, Batch, Shared, limits};
use crate::data::{Column, ColumnData, Encoder, Encoding, FeatureType, MISSING, Table};
use crate::predict::RowPrediction;

/// The name of the single input tensor that carries every feature.
pub const INPUT: &str = "input";
/// The classifier's output: the most probable class of each row.
pub const LABEL: &str = "label";
/// The classifier's output: each class's probability for each row.
pub const PROBABILITIES: &str = "probabilities";
/// The regressor's output: the predicted number of each row.
pub const VALUE: &str = "value";
/// The binary tensor data extension's header: the length of the JSON part of the body.
pub const HEADER_LENGTH: &str = "inference-header-content-length";
/// The extensions `GET /v2` lists.
pub const EXTENSIONS: [&str; 1] = ["binary_tensor_data"];

/// A tensor element type of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datatype {
    /// `BOOL`
    Bool,
    /// `UINT8`
    Uint8,
    /// `UINT16`
    Uint16,
    /// `UINT32`
    Uint32,
    /// `UINT64`
    Uint64,
    /// `INT8`
    Int8,
    /// `INT16`
    Int16,
    /// `INT32`
    Int32,
    /// `INT64`
    Int64,
    /// `FP16`
    Fp16,
    /// `FP32`
    Fp32,
    /// `FP64`
    Fp64,
    /// `BYTES`
    Bytes,
}

const DATATYPES: [(Datatype, &str); 13] = [
    (Datatype::Bool, "BOOL"),
    (Datatype::Uint8, "UINT8"),
    (Datatype::Uint16, "UINT16"),
    (Datatype::Uint32, "UINT32"),
    (Datatype::Uint64, "UINT64"),
    (Datatype::Int8, "INT8"),
    (Datatype::Int16, "INT16"),
    (Datatype::Int32, "INT32"),
    (Datatype::Int64, "INT64"),
    (Datatype::Fp16, "FP16"),
    (Datatype::Fp32, "FP32"),
    (Datatype::Fp64, "FP64"),
    (Datatype::Bytes, "BYTES"),
];

impl Datatype {
    /// The protocol's name for a datatype.
    pub fn parse(name: &str) -> Option<Self> {
        DATATYPES.iter().find(|(_, n)| *n == name).map(|(d, _)| *d)
    }

    /// The protocol's name of this datatype.
    pub fn name(self) -> &'static str {
        DATATYPES
            .iter()
            .find(|(d, _)| *d == self)
            .map_or("?", |(_, n)| n)
    }

    /// Bytes per element in binary form, for the numeric types a feature can be sent as.
    fn feature_width(self) -> Option<usize> {
        use Datatype::*;
        match self {
            Uint8 | Int8 => Some(1),
            Uint16 | Int16 => Some(2),
            Uint32 | Int32 | Fp32 => Some(4),
            Uint64 | Int64 | Fp64 => Some(8),
            Bool | Fp16 | Bytes => None,
        }
    }

    /// One JSON element of a BYTES or BOOL tensor as text (`None`: missing).
    fn json_text(self, v: &Value) -> Result<Option<String>, ElementError> {
        match (self, v) {
            (Datatype::Bytes, Value::String(s)) => Ok(Some(s.clone())),
            (Datatype::Bytes, Value::Null) => Ok(None),
            (Datatype::Bytes, other) => Err(ElementError::NotAString(truncate(other))),
            (_, Value::Bool(b)) => Ok(Some(b.to_string())),
            (_, other) => Err(ElementError::NotABool(truncate(other))),
        }
    }

    /// One JSON element as a feature value.
    fn json_value(self, v: &Value) -> Result<f32, ElementError> {
        use Datatype::*;
        let integer = |min: i128, max: i128| -> Result<f32, ElementError> {
            let i = v
                .as_i64()
                .map(i128::from)
                .or_else(|| v.as_u64().map(i128::from))
                .filter(|i| (min..=max).contains(i));
            i.map(|i| i as f32)
                .ok_or_else(|| ElementError::NotRepresentable {
                    value: truncate(v),
                    datatype: self,
                })
        };
        match self {
            Fp32 | Fp64 => match v.as_f64() {
                Some(f) if (f as f32).is_finite() => Ok(f as f32),
                Some(_) => Err(ElementError::OutOfRange(v.to_string())),
                None => Err(ElementError::NotANumber(truncate(v))),
            },
            Uint8 => integer(0, u8::MAX.into()),
            Uint16 => integer(0, u16::MAX.into()),
            Uint32 => integer(0, u32::MAX.into()),
            Uint64 => integer(0, u64::MAX.into()),
            Int8 => integer(i8::MIN.into(), i8::MAX.into()),
            Int16 => integer(i16::MIN.into(), i16::MAX.into()),
            Int32 => integer(i32::MIN.into(), i32::MAX.into()),
            Int64 => integer(i64::MIN.into(), i64::MAX.into()),
            Bool | Fp16 | Bytes => Err(ElementError::NotAFeatureType(self)),
        }
    }

    /// Binary little-endian elements as feature values (`bytes.len()` is a multiple of the width).
    fn binary_values(self, bytes: &[u8]) -> Vec<f32> {
        use Datatype::*;
        macro_rules! decode {
            ($t:ty) => {
                bytes
                    .chunks_exact(std::mem::size_of::<$t>())
                    .map(|c| <$t>::from_le_bytes(c.try_into().unwrap_or_default()) as f32)
                    .collect()
            };
        }
        match self {
            Uint8 => decode!(u8),
            Uint16 => decode!(u16),
            Uint32 => decode!(u32),
            Uint64 => decode!(u64),
            Int8 => decode!(i8),
            Int16 => decode!(i16),
            Int32 => decode!(i32),
            Int64 => decode!(i64),
            Fp32 => decode!(f32),
            Fp64 => decode!(f64),
            Bool | Fp16 | Bytes => Vec::new(),
        }
    }
}

/// One decoded input tensor's elements.
#[derive(Debug)]
enum Elements {
    /// A numeric tensor, converted to 32-bit floats.
    Numbers(Vec<f32>),
    /// A BYTES or BOOL tensor as text (`None`: a JSON `null`).
    Texts(Vec<Option<String>>),
}

impl Elements {
    fn len(&self) -> usize {
        match self {
            Elements::Numbers(v) => v.len(),
            Elements::Texts(v) => v.len(),
        }
    }

    /// The column these elements make, with the model's missing-value markers as missing.
    fn into_column(self, name: &str, missing: &[String]) -> Column {
        let data = match self {
            Elements::Numbers(v) => ColumnData::Numeric(v),
            Elements::Texts(texts) => {
                let mut levels: Vec<String> = Vec::new();
                let codes = texts
                    .into_iter()
                    .map(|t| match t {
                        Some(t) if !missing.iter().any(|m| *m == t.trim()) => {
                            match levels.iter().position(|l| *l == t) {
                                Some(i) => i as u32,
                                None => {
                                    levels.push(t);
                                    levels.len() as u32 - 1
                                }
                            }
                        }
                        _ => MISSING,
                    })
                    .collect();
                ColumnData::Text { codes, levels }
            }
        };
        Column {
            name: name.to_string(),
            data,
        }
    }
}

/// One decoded input tensor.
#[derive(Debug)]
struct Input {
    name: String,
    shape: Vec<u64>,
    values: Elements,
}

/// An output a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedOutput {
    /// The output's name.
    pub name: String,
    /// Answer it as binary data after the JSON (the binary tensor data extension).
    pub binary: bool,
}

/// A parsed inference request.
#[derive(Debug, Clone, PartialEq)]
pub struct InferRequest {
    /// The request's `id`, echoed in the answer.
    pub id: Option<String>,
    /// Rows in the batch.
    pub rows: usize,
    /// The raw feature columns, named after the model's features.
    pub table: Table,
    /// What to answer, in order.
    pub outputs: Vec<RequestedOutput>,
}

impl InferRequest {
    /// The feature values row-major `[rows, features]`, when every column was sent as numbers.
    pub fn numeric_values(&self) -> Option<Vec<f32>> {
        self.table.numeric_row_major()
    }
}

/// The datatype a feature's own input is described with in model metadata.
fn feature_datatype(e: &Encoder) -> &'static str {
    match e.kind() {
        FeatureType::Numeric => "FP32",
        FeatureType::Boolean => "BOOL",
        FeatureType::Categorical => "BYTES",
    }
}

/// Whether the model takes the single `input` tensor: no feature is a category.
fn takes_matrix(encoders: &[Encoder]) -> bool {
    encoders
        .iter()
        .all(|e| e.kind() != FeatureType::Categorical)
}

impl std::fmt::Display for Datatype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A tensor shape, shown as `[2, 4]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape(pub Vec<u64>);

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dims: Vec<String> = self.0.iter().map(u64::to_string).collect();
        write!(f, "[{}]", dims.join(", "))
    }
}

/// What inputs a model takes, for error messages: `input` or one input per feature for a model
/// without categories, else one input per feature, with its datatype.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedInputs {
    /// Each feature's name and datatype, in order.
    pub features: Vec<(String, &'static str)>,
    /// Whether the single `input` tensor is accepted.
    pub matrix: bool,
}

impl ExpectedInputs {
    fn of(encoders: &[Encoder]) -> Self {
        ExpectedInputs {
            features: encoders
                .iter()
                .map(|e| (e.name().to_string(), feature_datatype(e)))
                .collect(),
            matrix: takes_matrix(encoders),
        }
    }
}

impl std::fmt::Display for ExpectedInputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.matrix {
            let names: Vec<&str> = self.features.iter().map(|(n, _)| n.as_str()).collect();
            write!(
                f,
                "this model takes `{INPUT}` (FP32 [-1, {}]) or one input per feature ({}), each [-1] or [-1, 1]",
                names.len(),
                names.join(", ")
            )
        } else {
            let described: Vec<String> = self
                .features
                .iter()
                .map(|(n, d)| format!("{n} ({d})"))
                .collect();
            write!(
                f,
                "this model takes one input per feature, each [-1] or [-1, 1]: {}",
                described.join(", ")
            )
        }
    }
}

/// A JSON object of an inference request, as messages name it by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The request itself.
    Request,
    /// `inputs[i]`.
    Input(usize),
    /// `outputs[i]`.
    Output(usize),
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Part::Request => f.write_str("the inference request"),
            Part::Input(i) => write!(f, "inputs[{i}]"),
            Part::Output(i) => write!(f, "outputs[{i}]"),
        }
    }
}

/// Whose `parameters` a message is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamsOf {
    /// The request's.
    Request,
    /// The named input's.
    Input(String),
    /// The named output's.
    Output(String),
}

impl std::fmt::Display for ParamsOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamsOf::Request => f.write_str("the request"),
            ParamsOf::Input(n) => write!(f, "input `{n}`"),
            ParamsOf::Output(n) => write!(f, "output `{n}`"),
        }
    }
}

/// Why one element of an input tensor cannot be read; [`InferRequestError::Element`] says which.
/// Values are shown as sent, cut to 60 characters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ElementError {
    /// A BYTES element that is not a string (or `null`).
    #[error("expected a string, got {0}")]
    NotAString(String),
    /// A BOOL element that is not `true` or `false`.
    #[error("expected true or false, got {0}")]
    NotABool(String),
    /// A floating-point element that is not a number.
    #[error("expected a number, got {0}")]
    NotANumber(String),
    /// A number past the range of a 32-bit float.
    #[error("{0} is out of range for a 32-bit float (the model computes in FP32)")]
    OutOfRange(String),
    /// An integer element that its datatype cannot hold.
    #[error("{value} is not representable as {datatype}")]
    NotRepresentable {
        /// The element.
        value: String,
        /// The tensor's datatype.
        datatype: Datatype,
    },
    /// A datatype no feature is sent as.
    #[error("{0} is not a feature type")]
    NotAFeatureType(Datatype),
    /// Binary BYTES data cut inside an element's length.
    #[error("the binary data ends inside a 4-byte length")]
    CutLength,
    /// Binary BYTES data cut inside an element's text.
    #[error("its length is {length} bytes but only {left} are left")]
    CutText {
        /// The element's declared length.
        length: usize,
        /// Bytes left.
        left: usize,
    },
    /// A binary BYTES element that is not UTF-8.
    #[error("the text is not UTF-8")]
    NotUtf8,
}

/// Why an inference request cannot be read. Values are shown as sent, cut to 60 characters.
#[derive(Debug, thiserror::Error)]
pub enum InferRequestError {
    /// Not JSON, or a key given twice.
    #[error(transparent)]
    Json(#[from] InvalidJson),
    /// No rows, or too many.
    #[error(transparent)]
    Rows(#[from] RowCountError),
    /// The binary extension's header says the JSON is longer than the body.
    #[error("Inference-Header-Content-Length is {header} but the body has only {body} bytes")]
    HeaderLength {
        /// The header's value.
        header: usize,
        /// The body's length.
        body: usize,
    },
    /// The request is not a JSON object.
    #[error("the inference request must be a JSON object with `inputs`, got {0}")]
    NotAnObject(String),
    /// A key the protocol does not have.
    #[error("unknown field `{field}` in {part}; expected {}", .allowed.join(", "))]
    UnknownField {
        /// The object.
        part: Part,
        /// The key.
        field: String,
        /// The keys it may have.
        allowed: &'static [&'static str],
    },
    /// A parameter that is not a string, number or boolean.
    #[error("{owner} parameter `{key}` must be a string, number or boolean")]
    ParameterType {
        /// Whose parameter.
        owner: ParamsOf,
        /// The parameter.
        key: String,
    },
    /// `parameters` that is not an object.
    #[error("`parameters` of {0} must be an object")]
    ParametersNotObject(ParamsOf),
    /// A flag parameter that is not a boolean.
    #[error("{owner} parameter `{key}` must be true or false, got {got}")]
    NotABoolParameter {
        /// Whose parameter.
        owner: ParamsOf,
        /// The parameter.
        key: &'static str,
        /// Its value.
        got: String,
    },
    /// An `id` that is not a string.
    #[error("`id` must be a string, got {0}")]
    IdNotString(String),
    /// `inputs` is `[]`.
    #[error("`inputs` is empty; {0}")]
    NoInputs(ExpectedInputs),
    /// `inputs` is not an array.
    #[error("`inputs` must be an array, got {0}")]
    InputsNotArray(String),
    /// No `inputs`.
    #[error("missing field `inputs`; {0}")]
    InputsMissing(ExpectedInputs),
    /// Binary data past the last input's.
    #[error(
        "{0} bytes of binary data follow the last input's; the inputs' `binary_data_size` \
         parameters must add up to the body after the JSON header"
    )]
    BinaryLeftOver(usize),
    /// `inputs[i]` is not an object.
    #[error("inputs[{0}] must be an object with name, shape, datatype and data")]
    InputNotObject(usize),
    /// `inputs[i].name` is not a string.
    #[error("inputs[{index}].name must be a string, got {got}")]
    InputName {
        /// The input's position.
        index: usize,
        /// Its name.
        got: String,
    },
    /// `inputs[i]` has no name.
    #[error("inputs[{0}] has no `name`")]
    InputWithoutName(usize),
    /// An input without `shape`, `datatype` or `data`.
    #[error("input `{input}` has no `{field}`")]
    InputWithout {
        /// The input.
        input: String,
        /// The missing field.
        field: &'static str,
    },
    /// A shape that is not an array of non-negative integers.
    #[error("input `{input}`: `shape` must be an array of non-negative integers, got {got}")]
    BadShape {
        /// The input.
        input: String,
        /// Its shape.
        got: String,
    },
    /// A datatype the protocol does not have.
    #[error(
        "input `{input}`: unknown datatype `{}`; the protocol's are {}",
        cut(.datatype, 20),
        DATATYPES.map(|(_, n)| n).join(", ")
    )]
    UnknownDatatype {
        /// The input.
        input: String,
        /// Its datatype.
        datatype: String,
    },
    /// A datatype that is not a string.
    #[error("input `{input}`: `datatype` must be a string, got {got}")]
    DatatypeNotString {
        /// The input.
        input: String,
        /// Its datatype.
        got: String,
    },
    /// A datatype no feature is sent as (FP16).
    #[error(
        "input `{input}`: datatype {datatype} is not accepted; send FP32 (FP64 and integer types \
         are converted to FP32), or BYTES for text"
    )]
    DatatypeNotAccepted {
        /// The input.
        input: String,
        /// Its datatype.
        datatype: Datatype,
    },
    /// A shape whose element count overflows.
    #[error("input `{input}`: shape {shape} has too many elements")]
    ShapeTooLarge {
        /// The input.
        input: String,
        /// Its shape.
        shape: Shape,
    },
    /// A `binary_data_size` that is not a byte count.
    #[error("input `{input}`: `binary_data_size` must be a non-negative integer, got {got}")]
    BadBinarySize {
        /// The input.
        input: String,
        /// The parameter's value.
        got: String,
    },
    /// Both JSON and binary data.
    #[error("input `{input}` has both `data` and a `binary_data_size` parameter; send one")]
    DataAndBinary {
        /// The input.
        input: String,
    },
    /// `data` that is not an array.
    #[error("input `{input}`: `data` must be an array, got {got}")]
    DataNotArray {
        /// The input.
        input: String,
        /// Its data.
        got: String,
    },
    /// A `binary_data_size` that does not fit the shape.
    #[error(
        "input `{input}`: `binary_data_size` is {size} bytes but shape {shape} of {datatype} takes \
         {} bytes",
        .expected.map_or("too many".to_string(), |e| e.to_string())
    )]
    BinarySize {
        /// The input.
        input: String,
        /// The declared size.
        size: u64,
        /// Its shape.
        shape: Shape,
        /// Its datatype.
        datatype: Datatype,
        /// The size the shape takes (`None`: more than a `u64` counts).
        expected: Option<u64>,
    },
    /// A `binary_data_size` past the end of the body.
    #[error(
        "input `{input}`: `binary_data_size` is {size} bytes but only {left} bytes of binary data \
         are left in the body"
    )]
    BinaryShort {
        /// The input.
        input: String,
        /// The declared size.
        size: usize,
        /// Bytes left.
        left: usize,
    },
    /// Data that does not fill the shape.
    #[error("input `{input}`: shape {shape} holds {elements} values but `data` has {got}")]
    DataLength {
        /// The input.
        input: String,
        /// Its shape.
        shape: Shape,
        /// The elements the shape holds.
        elements: u64,
        /// The elements sent.
        got: usize,
    },
    /// One element that cannot be read.
    #[error("input `{input}`, element {element}: {source}")]
    Element {
        /// The input.
        input: String,
        /// The element's position, row-major.
        element: usize,
        /// Why.
        source: ElementError,
    },
    /// `input` sent beside other inputs.
    #[error(
        "input `{}` carries every feature; send it alone, not with {}",
        INPUT,
        others_text(.others)
    )]
    MatrixNotAlone {
        /// The other inputs' names (empty: `input` twice).
        others: Vec<String>,
    },
    /// `input` for a model with categories.
    #[error("input `{matrix}` cannot carry this model's categories; {0}", matrix = INPUT)]
    MatrixWithCategories(ExpectedInputs),
    /// `input` as BYTES or BOOL.
    #[error("input `{matrix}` must be numeric (FP32); {0}", matrix = INPUT)]
    MatrixNotNumeric(ExpectedInputs),
    /// `input` of a shape other than `[N, features]`.
    #[error(
        "input `{}` has shape {shape}; expected [N, {}] (N rows of {})",
        INPUT,
        .features.len(),
        .features.join(", ")
    )]
    MatrixShape {
        /// Its shape.
        shape: Shape,
        /// The model's features.
        features: Vec<String>,
    },
    /// An input that is not a feature.
    #[error("unknown input `{name}`; {expected}")]
    UnknownInput {
        /// The input.
        name: String,
        /// What the model takes.
        expected: ExpectedInputs,
    },
    /// A feature's input sent twice.
    #[error("input `{0}` is given twice")]
    InputTwice(String),
    /// A feature's input of a shape other than `[N]` or `[N, 1]`.
    #[error("input `{name}` has shape {shape}; a feature's input is [N] or [N, 1]")]
    FeatureShape {
        /// The input.
        name: String,
        /// Its shape.
        shape: Shape,
    },
    /// Features' inputs with different numbers of rows.
    #[error(
        "input `{name}` has {rows} rows but `{first}` has {first_rows}; every feature needs the \
         same rows"
    )]
    RowMismatch {
        /// The input.
        name: String,
        /// Its rows.
        rows: u64,
        /// The first input.
        first: String,
        /// Its rows.
        first_rows: u64,
    },
    /// Features without an input.
    #[error("missing input(s) {}; {expected}", .names.join(", "))]
    MissingInputs {
        /// The features.
        names: Vec<String>,
        /// What the model takes.
        expected: ExpectedInputs,
    },
    /// The inputs do not make a table (a bug).
    #[error("inputs of different lengths")]
    Ragged,
    /// `outputs` is not an array.
    #[error("`outputs` must be an array, got {0}")]
    OutputsNotArray(String),
    /// `outputs[i]` is not an object.
    #[error("outputs[{0}] must be an object with a `name`")]
    OutputNotObject(usize),
    /// `outputs[i]` has no string name.
    #[error("outputs[{0}] needs a string `name`")]
    OutputWithoutName(usize),
    /// An output the model does not answer.
    #[error(
        "unknown output `{}`; this model answers {}",
        cut(.name, 40),
        .available.join(", ")
    )]
    UnknownOutput {
        /// The output asked for.
        name: String,
        /// The model's outputs.
        available: Vec<String>,
    },
    /// An output asked for twice.
    #[error("output `{0}` is asked for twice")]
    OutputTwice(String),
}

/// What `input` was sent with: the other inputs, or another `input`.
fn others_text(others: &[String]) -> String {
    if others.is_empty() {
        format!("another `{INPUT}`")
    } else {
        others.join(", ")
    }
}

/// Refuses keys outside `allowed` in a JSON object.
fn only_keys(
    map: &Map<String, Value>,
    allowed: &'static [&'static str],
    part: Part,
) -> Result<(), InferRequestError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(InferRequestError::UnknownField {
            part,
            field: k.clone(),
            allowed,
        }),
        None => Ok(()),
    }
}

/// A `parameters` object: its values are strings, numbers or booleans.
fn parameters<'a>(
    v: Option<&'a Value>,
    owner: &ParamsOf,
) -> Result<Option<&'a Map<String, Value>>, InferRequestError> {
    match v {
        None => Ok(None),
        Some(Value::Object(m)) => match m
            .iter()
            .find(|(_, v)| !(v.is_string() || v.is_number() || v.is_boolean()))
        {
            Some((k, _)) => Err(InferRequestError::ParameterType {
                owner: owner.clone(),
                key: k.clone(),
            }),
            None => Ok(Some(m)),
        },
        Some(_) => Err(InferRequestError::ParametersNotObject(owner.clone())),
    }
}

fn bool_parameter(
    p: Option<&Map<String, Value>>,
    key: &'static str,
    owner: &ParamsOf,
) -> Result<Option<bool>, InferRequestError> {
    match p.and_then(|p| p.get(key)) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(InferRequestError::NotABoolParameter {
            owner: owner.clone(),
            key,
            got: truncate(other),
        }),
    }
}

/// Splits a body into its JSON part and the binary data after it.
fn split_body(
    body: &[u8],
    header_length: Option<usize>,
) -> Result<(&[u8], &[u8]), InferRequestError> {
    match header_length {
        None => Ok((body, &[])),
        Some(n) if n <= body.len() => Ok(body.split_at(n)),
        Some(n) => Err(InferRequestError::HeaderLength {
            header: n,
            body: body.len(),
        }),
    }
}

/// Flattens nested JSON tensor data of input `input`, converting each element.
fn flatten(
    data: &Value,
    datatype: Datatype,
    input: &str,
    out: &mut Elements,
) -> Result<(), InferRequestError> {
    match data {
        Value::Array(items) => {
            for item in items {
                flatten(item, datatype, input, out)?;
            }
            Ok(())
        }
        leaf => {
            let element = out.len();
            let pushed = match out {
                Elements::Numbers(v) => datatype.json_value(leaf).map(|x| v.push(x)),
                Elements::Texts(v) => datatype.json_text(leaf).map(|x| v.push(x)),
            };
            pushed.map_err(|source| InferRequestError::Element {
                input: input.to_string(),
                element,
                source,
            })
        }
    }
}

/// BYTES elements of input `input` in binary form: each a 4-byte little-endian length and that
/// many bytes of UTF-8 text.
fn binary_texts(mut bytes: &[u8], input: &str) -> Result<Vec<Option<String>>, InferRequestError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let element = out.len();
        let e = |source| InferRequestError::Element {
            input: input.to_string(),
            element,
            source,
        };
        let Some((len, rest)) = bytes.split_first_chunk::<4>() else {
            return Err(e(ElementError::CutLength));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if len > rest.len() {
            return Err(e(ElementError::CutText {
                length: len,
                left: rest.len(),
            }));
        }
        let (text, rest) = rest.split_at(len);
        let text = std::str::from_utf8(text).map_err(|_| e(ElementError::NotUtf8))?;
        out.push(Some(text.to_string()));
        bytes = rest;
    }
    Ok(out)
}

fn parse_input(i: usize, v: &Value, binary: &mut &[u8]) -> Result<Input, InferRequestError> {
    use InferRequestError as E;
    let Value::Object(map) = v else {
        return Err(E::InputNotObject(i));
    };
    only_keys(
        map,
        &["name", "shape", "datatype", "parameters", "data"],
        Part::Input(i),
    )?;
    let name = match map.get("name") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(E::InputName {
                index: i,
                got: truncate(other),
            });
        }
        None => return Err(E::InputWithoutName(i)),
    };
    let input = || name.clone();
    let shape: Vec<u64> = match map.get("shape") {
        Some(Value::Array(dims)) => dims
            .iter()
            .map(|d| d.as_u64())
            .collect::<Option<_>>()
            .ok_or_else(|| E::BadShape {
                input: input(),
                got: truncate(&map["shape"]),
            })?,
        Some(other) => {
            return Err(E::BadShape {
                input: input(),
                got: truncate(other),
            });
        }
        None => {
            return Err(E::InputWithout {
                input: input(),
                field: "shape",
            });
        }
    };
    let datatype = match map.get("datatype") {
        Some(Value::String(s)) => Datatype::parse(s).ok_or_else(|| E::UnknownDatatype {
            input: input(),
            datatype: s.clone(),
        })?,
        Some(other) => {
            return Err(E::DatatypeNotString {
                input: input(),
                got: truncate(other),
            });
        }
        None => {
            return Err(E::InputWithout {
                input: input(),
                field: "datatype",
            });
        }
    };
    // Bytes per element in binary form; `None` for BYTES, whose elements carry their length.
    let width = match datatype {
        Datatype::Bytes => None,
        Datatype::Bool => Some(1),
        d => Some(d.feature_width().ok_or_else(|| E::DatatypeNotAccepted {
            input: input(),
            datatype: d,
        })?),
    };
    let empty = || match datatype {
        Datatype::Bytes | Datatype::Bool => Elements::Texts(Vec::new()),
        _ => Elements::Numbers(Vec::new()),
    };
    let elements = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| E::ShapeTooLarge {
            input: input(),
            shape: Shape(shape.clone()),
        })?;
    let params = parameters(map.get("parameters"), &ParamsOf::Input(input()))?;
    let binary_size = match params.and_then(|p| p.get("binary_data_size")) {
        None => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| E::BadBinarySize {
            input: input(),
            got: truncate(v),
        })?),
    };
    let values = match (map.get("data"), binary_size) {
        (Some(_), Some(_)) => return Err(E::DataAndBinary { input: input() }),
        (None, None) => {
            return Err(E::InputWithout {
                input: input(),
                field: "data",
            });
        }
        (Some(data), None) => {
            if !data.is_array() {
                return Err(E::DataNotArray {
                    input: input(),
                    got: truncate(data),
                });
            }
            let mut values = empty();
            flatten(data, datatype, &name, &mut values)?;
            values
        }
        (None, Some(size)) => {
            let expected = match width {
                Some(w) => elements.checked_mul(w as u64),
                None => Some(size),
            };
            if expected != Some(size) {
                return Err(E::BinarySize {
                    input: input(),
                    size,
                    shape: Shape(shape.clone()),
                    datatype,
                    expected,
                });
            }
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            if size > binary.len() {
                return Err(E::BinaryShort {
                    input: input(),
                    size,
                    left: binary.len(),
                });
            }
            let (mine, rest) = binary.split_at(size);
            *binary = rest;
            match datatype {
                Datatype::Bytes => Elements::Texts(binary_texts(mine, &name)?),
                Datatype::Bool => {
                    Elements::Texts(mine.iter().map(|b| Some((*b != 0).to_string())).collect())
                }
                d => Elements::Numbers(d.binary_values(mine)),
            }
        }
    };
    if values.len() as u64 != elements {
        return Err(E::DataLength {
            input: input(),
            shape: Shape(shape.clone()),
            elements,
            got: values.len(),
        });
    }
    Ok(Input {
        name,
        shape,
        values,
    })
}

/// Lays the input tensors out as the model's raw feature columns: `(rows, table)`.
fn layout(inputs: Vec<Input>, encoding: &Encoding) -> Result<(usize, Table), InferRequestError> {
    use InferRequestError as E;
    let encoders = &encoding.columns;
    let features: Vec<&str> = encoders.iter().map(Encoder::name).collect();
    let width = features.len();
    let expected = || ExpectedInputs::of(encoders);
    let table = |columns: Vec<Column>| Table::new(columns).ok_or(E::Ragged);
    if inputs.iter().any(|t| t.name == INPUT) {
        let t = match <[Input; 1]>::try_from(inputs) {
            Ok([t]) => t,
            Err(inputs) => {
                let others = inputs
                    .iter()
                    .filter(|t| t.name != INPUT)
                    .map(|t| t.name.clone())
                    .collect();
                return Err(E::MatrixNotAlone { others });
            }
        };
        if !takes_matrix(encoders) {
            return Err(E::MatrixWithCategories(expected()));
        }
        let Elements::Numbers(values) = t.values else {
            return Err(E::MatrixNotNumeric(expected()));
        };
        return match t.shape[..] {
            [n, w] if w == width as u64 => {
                let n = n as usize;
                let columns = features
                    .iter()
                    .enumerate()
                    .map(|(j, name)| Column {
                        name: name.to_string(),
                        data: ColumnData::Numeric((0..n).map(|i| values[i * width + j]).collect()),
                    })
                    .collect();
                Ok((n, table(columns)?))
            }
            _ => Err(E::MatrixShape {
                shape: Shape(t.shape),
                features: features.iter().map(|f| f.to_string()).collect(),
            }),
        };
    }
    let mut columns: Vec<Option<Input>> = (0..width).map(|_| None).collect();
    let mut rows: Option<(u64, String)> = None;
    for t in inputs {
        let Some(idx) = features.iter().position(|f| *f == t.name) else {
            return Err(E::UnknownInput {
                name: t.name,
                expected: expected(),
            });
        };
        if columns[idx].is_some() {
            return Err(E::InputTwice(t.name));
        }
        let n = match t.shape[..] {
            [n] | [n, 1] => n,
            _ => {
                return Err(E::FeatureShape {
                    name: t.name,
                    shape: Shape(t.shape),
                });
            }
        };
        match &rows {
            Some((m, first)) if *m != n => {
                return Err(E::RowMismatch {
                    name: t.name,
                    rows: n,
                    first: first.clone(),
                    first_rows: *m,
                });
            }
            Some(_) => {}
            None => rows = Some((n, t.name.clone())),
        }
        columns[idx] = Some(t);
    }
    let missing: Vec<String> = features
        .iter()
        .zip(&columns)
        .filter(|(_, c)| c.is_none())
        .map(|(f, _)| f.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(E::MissingInputs {
            names: missing,
            expected: expected(),
        });
    }
    let n = rows.map_or(0, |(n, _)| n as usize);
    let columns = columns
        .into_iter()
        .flatten()
        .map(|t| t.values.into_column(&t.name, &encoding.missing_values))
        .collect();
    Ok((n, table(columns)?))
}

fn parse_outputs(
    v: Option<&Value>,
    available: &[&str],
    default_binary: bool,
) -> Result<Vec<RequestedOutput>, InferRequestError> {
    use InferRequestError as E;
    let all = || {
        available
            .iter()
            .map(|n| RequestedOutput {
                name: n.to_string(),
                binary: default_binary,
            })
            .collect()
    };
    let items = match v {
        None => return Ok(all()),
        Some(Value::Array(items)) if items.is_empty() => return Ok(all()),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(E::OutputsNotArray(truncate(other))),
    };
    let mut out: Vec<RequestedOutput> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(map) = item else {
            return Err(E::OutputNotObject(i));
        };
        only_keys(map, &["name", "parameters"], Part::Output(i))?;
        let name = match map.get("name") {
            Some(Value::String(s)) => s,
            _ => return Err(E::OutputWithoutName(i)),
        };
        if !available.contains(&name.as_str()) {
            return Err(E::UnknownOutput {
                name: name.clone(),
                available: available.iter().map(|a| a.to_string()).collect(),
            });
        }
        if out.iter().any(|o| o.name == *name) {
            return Err(E::OutputTwice(name.clone()));
        }
        let owner = ParamsOf::Output(name.clone());
        let params = parameters(map.get("parameters"), &owner)?;
        let binary = bool_parameter(params, "binary_data", &owner)?.unwrap_or(default_binary);
        out.push(RequestedOutput {
            name: name.clone(),
            binary,
        });
    }
    Ok(out)
}

/// Parses an inference request body (JSON, or a JSON header of `header_length` bytes followed
/// by binary tensor data) for a model with these features (`encoding`) and outputs.
pub fn parse_infer_request(
    body: &[u8],
    header_length: Option<usize>,
    encoding: &Encoding,
    outputs: &[&str],
    max_rows: usize,
) -> Result<InferRequest, InferRequestError> {
    use InferRequestError as E;
    let (head, mut binary) = split_body(body, header_length)?;
    let v = super::json::parse(head)?;
    let Value::Object(map) = &v else {
        return Err(E::NotAnObject(truncate(&v)));
    };
    only_keys(
        map,
        &["id", "parameters", "inputs", "outputs"],
        Part::Request,
    )?;
    let id = match map.get("id") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(E::IdNotString(truncate(other))),
    };
    let params = parameters(map.get("parameters"), &ParamsOf::Request)?;
    let binary_output =
        bool_parameter(params, "binary_data_output", &ParamsOf::Request)?.unwrap_or(false);
    let inputs = match map.get("inputs") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) => return Err(E::NoInputs(ExpectedInputs::of(&encoding.columns))),
        Some(other) => return Err(E::InputsNotArray(truncate(other))),
        None => return Err(E::InputsMissing(ExpectedInputs::of(&encoding.columns))),
    };
    let inputs = inputs
        .iter()
        .enumerate()
        .map(|(i, v)| parse_input(i, v, &mut binary))
        .collect::<Result<Vec<_>, _>>()?;
    if !binary.is_empty() {
        return Err(E::BinaryLeftOver(binary.len()));
    }
    let (rows, table) = layout(inputs, encoding)?;
    limits::check_rows(rows, max_rows)?;
    let outputs = parse_outputs(map.get("outputs"), outputs, binary_output)?;
    Ok(InferRequest {
        id,
        rows,
        table,
        outputs,
    })
}

/// An output tensor's data.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TensorData {
    /// `BYTES`: UTF-8 strings.
    Bytes(Vec<String>),
    /// `FP32`.
    Fp32(Vec<f32>),
}

impl TensorData {
    fn datatype(&self) -> Datatype {
        match self {
            TensorData::Bytes(_) => Datatype::Bytes,
            TensorData::Fp32(_) => Datatype::Fp32,
        }
    }

    /// The binary tensor data extension's form: little-endian numbers; strings as a 4-byte
    /// little-endian length and the bytes.
    fn to_binary(&self) -> Vec<u8> {
        match self {
            TensorData::Fp32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::Bytes(v) => v
                .iter()
                .flat_map(|s| {
                    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
                    len.to_le_bytes().into_iter().chain(s.bytes())
                })
                .collect(),
        }
    }
}

/// A named output tensor with its data.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputTensor {
    /// The output's name.
    pub name: &'static str,
    /// Its shape; the first axis is the batch.
    pub shape: Vec<i64>,
    /// Its elements, row-major.
    pub data: TensorData,
}

/// The model's answers as output tensors: the one place the v2 outputs depend on the task.
/// (Metadata comes from the same function called with no rows.)
pub fn answer_tensors(kind: &AnswerKind, predictions: &[RowPrediction]) -> Vec<OutputTensor> {
    let n = predictions.len() as i64;
    match kind {
        AnswerKind::Class { classes } => {
            let classes_of = predictions.iter().filter_map(|p| match p {
                RowPrediction::Class(c) => Some(c),
                RowPrediction::Number(_) => None,
            });
            vec![
                OutputTensor {
                    name: LABEL,
                    shape: vec![n],
                    data: TensorData::Bytes(classes_of.clone().map(|p| p.class.clone()).collect()),
                },
                OutputTensor {
                    name: PROBABILITIES,
                    shape: vec![n, classes.len() as i64],
                    data: TensorData::Fp32(
                        classes_of
                            .flat_map(|p| p.probabilities.iter().copied())
                            .collect(),
                    ),
                },
            ]
        }
        AnswerKind::Number => vec![OutputTensor {
            name: VALUE,
            shape: vec![n],
            data: TensorData::Fp32(
                predictions
                    .iter()
                    .filter_map(|p| match p {
                        RowPrediction::Number(v) => Some(*v),
                        RowPrediction::Class(_) => None,
                    })
                    .collect(),
            ),
        }],
    }
}

/// A tensor's description in model metadata.
#[derive(Debug, Serialize)]
struct TensorMeta {
    name: String,
    datatype: &'static str,
    shape: Vec<i64>,
}

/// The model's output tensors as metadata (`-1` for the batch axis).
fn output_metadata(kind: &AnswerKind) -> Vec<TensorMeta> {
    answer_tensors(kind, &[])
        .into_iter()
        .map(|t| TensorMeta {
            name: t.name.to_string(),
            datatype: t.data.datatype().name(),
            shape: std::iter::once(-1)
                .chain(t.shape[1..].iter().copied())
                .collect(),
        })
        .collect()
}

/// The model's inputs as metadata: `input` `[-1, features]` for a model without categories (it
/// takes one input per feature too), otherwise one input `[-1]` per feature.
fn input_metadata(encoders: &[Encoder]) -> Vec<TensorMeta> {
    if takes_matrix(encoders) {
        return vec![TensorMeta {
            name: INPUT.to_string(),
            datatype: "FP32",
            shape: vec![-1, encoders.len() as i64],
        }];
    }
    encoders
        .iter()
        .map(|e| TensorMeta {
            name: e.name().to_string(),
            datatype: feature_datatype(e),
            shape: vec![-1],
        })
        .collect()
}

/// The names of the model's outputs, in answer order.
pub fn output_names(kind: &AnswerKind) -> Vec<&'static str> {
    answer_tensors(kind, &[])
        .into_iter()
        .map(|t| t.name)
        .collect()
}

/// The model a `/v2/models/{name}[/versions/{version}]` path names.
#[derive(Debug, Deserialize)]
pub(crate) struct ModelPath {
    name: String,
    version: Option<String>,
}

fn check_model(
    state: &Shared,
    path: Result<Path<ModelPath>, PathRejection>,
) -> Result<(), ApiError> {
    let Path(p) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if p.name != state.model_name {
        return Err(ApiError::not_found(format!(
            "unknown model `{}`; this server serves `{}`",
            cut(&p.name, 60),
            state.model_name
        )));
    }
    match p.version {
        Some(v) if v != state.model_version => Err(ApiError::not_found(format!(
            "model `{}` has no version `{}`; its version is `{}` (or leave the version out)",
            state.model_name,
            cut(&v, 60),
            state.model_version
        ))),
        _ => Ok(()),
    }
}

/// `GET /v2`: the server's name, version and extensions.
pub(crate) async fn server_metadata() -> Json<Value> {
    Json(json!({
        "name": "iris-trainer",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": EXTENSIONS,
    }))
}

/// `GET /v2/health/live`.
pub(crate) async fn live() -> Json<Value> {
    Json(json!({"live": true}))
}

/// `GET /v2/health/ready`: the one model is loaded before the server listens.
pub(crate) async fn ready() -> Json<Value> {
    Json(json!({"ready": true}))
}

/// `GET /v2/models/{name}[/versions/{version}]/ready`.
pub(crate) async fn model_ready(
    State(state): State<Shared>,
    path: Result<Path<ModelPath>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    check_model(&state, path)?;
    Ok(Json(json!({"name": state.model_name, "ready": true})))
}

/// `GET /v2/models/{name}[/versions/{version}]`: inputs and outputs.
pub(crate) async fn model_metadata(
    State(state): State<Shared>,
    path: Result<Path<ModelPath>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    check_model(&state, path)?;
    Ok(Json(json!({
        "name": state.model_name,
        "versions": [state.model_version],
        "platform": "burn_mpk",
        "inputs": input_metadata(&state.predictor.preprocessor().encoding.columns),
        "outputs": output_metadata(&state.answers),
    })))
}

#[derive(Serialize)]
struct ResponseOutput<'a> {
    name: &'static str,
    datatype: &'static str,
    shape: &'a [i64],
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a TensorData>,
}

#[derive(Serialize)]
struct InferResponse<'a> {
    model_name: &'a str,
    model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    outputs: Vec<ResponseOutput<'a>>,
}

/// `POST /v2/models/{name}[/versions/{version}]/infer`.
pub(crate) async fn infer(
    State(state): State<Shared>,
    path: Result<Path<ModelPath>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    check_model(&state, path)?;
    let body = limits::body(body)?;
    limits::identity_encoding(&headers)?;
    if let Some(ct) = limits::media_type(&headers)? {
        // `curl -d` sends a form type unless told otherwise; Triton and KServe read such a body
        // as JSON too.
        let accepted = [
            "application/json",
            "application/octet-stream",
            "application/x-www-form-urlencoded",
        ];
        if !accepted.contains(&ct.essence.as_str()) {
            return Err(ApiError::unsupported_media_type(format!(
                "Content-Type must be application/json (or application/octet-stream with binary \
                 tensor data), got `{}`",
                ct.text
            )));
        }
    }
    let header_length = match headers.get(HEADER_LENGTH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request("Inference-Header-Content-Length must be a byte count")
                })?,
        ),
    };
    let request = parse_infer_request(
        &body,
        header_length,
        &state.predictor.preprocessor().encoding,
        &output_names(&state.answers),
        state.max_instances,
    )?;
    let predictions = super::run_batch(&state, Batch::Rows(request.table)).await?;
    let tensors = answer_tensors(&state.answers, &predictions);
    let mut binary = Vec::new();
    let mut outputs = Vec::with_capacity(request.outputs.len());
    for wanted in &request.outputs {
        let t = tensors
            .iter()
            .find(|t| t.name == wanted.name)
            .ok_or_else(|| {
                ApiError::internal(format!("output `{}` was not computed", wanted.name))
            })?;
        let (parameters, data) = if wanted.binary {
            let bytes = t.data.to_binary();
            let parameters = json!({"binary_data_size": bytes.len()});
            binary.extend(bytes);
            (Some(parameters), None)
        } else {
            (None, Some(&t.data))
        };
        outputs.push(ResponseOutput {
            name: t.name,
            datatype: t.data.datatype().name(),
            shape: &t.shape,
            parameters,
            data,
        });
    }
    let answer = InferResponse {
        model_name: &state.model_name,
        model_version: &state.model_version,
        id: request.id.as_deref(),
        outputs,
    };
    let mut head = serde_json::to_vec(&answer).map_err(ApiError::internal)?;
    if binary.is_empty() {
        return Ok(([(header::CONTENT_TYPE, "application/json")], head).into_response());
    }
    let head_length = head.len();
    head.extend(binary);
    let mut response = ([(header::CONTENT_TYPE, "application/octet-stream")], head).into_response();
    response
        .headers_mut()
        .insert(HEADER_LENGTH, HeaderValue::from(head_length));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A penguin-like model: a category, a number and a boolean.
    fn penguins() -> Encoding {
        Encoding {
            columns: vec![
                Encoder::Categorical {
                    name: "island".into(),
                    levels: vec!["Biscoe".into(), "Dream".into()],
                    missing_level: true,
                    other_level: false,
                },
                Encoder::Numeric {
                    name: "bill".into(),
                    fill: 40.0,
                    indicator: false,
                },
                Encoder::Boolean {
                    name: "tagged".into(),
                    fill: 0.5,
                },
            ],
            missing_values: vec!["".into(), "NA".into()],
            source_columns: vec![],
        }
    }

    const OUTPUTS: [&str; 2] = [LABEL, PROBABILITIES];

    fn parse(body: &str) -> Result<InferRequest, InferRequestError> {
        parse_infer_request(body.as_bytes(), None, &names(), &OUTPUTS, 3)
    }

    fn values(body: &str) -> Vec<f32> {
        parse(body)
            .unwrap_or_else(|e| panic!("{body}: {e}"))
            .numeric_values()
            .unwrap()
    }

    #[test]
    fn one_input_nested_or_flat_and_one_input_per_feature_give_the_same_rows() {
        let rows = vec![1.0, 2.0, 3.0, 4.0];
        for body in [
            r#"{"inputs":[{"name":"input","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4]]}]}"#,
            r#"{"inputs":[{"name":"input","shape":[2,2],"datatype":"FP64","data":[1,2,3,4]}]}"#,
            r#"{"inputs":[{"name":"input","shape":[2,2],"datatype":"INT64","data":[1,2,3,4]}]}"#,
            r#"{"inputs":[{"name":"b","shape":[2],"datatype":"FP32","data":[2,4]},
                          {"name":"a","shape":[2,1],"datatype":"UINT8","data":[[1],[3]]}]}"#,
        ] {
            assert_eq!(values(body), rows, "{body}");
        }
    }

    #[test]
    fn id_outputs_and_binary_choices_are_kept() {
        let r = parse(r#"{"id":"x1","inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}]}"#)
            .unwrap();
        assert_eq!(r.id.as_deref(), Some("x1"));
        assert_eq!(r.rows, 1);
        let all = |binary| {
            OUTPUTS
                .iter()
                .map(|n| RequestedOutput {
                    name: n.to_string(),
                    binary,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(r.outputs, all(false));
        let r = parse(
            r#"{"parameters":{"binary_data_output":true},
                "inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}]}"#,
        )
        .unwrap();
        assert_eq!(r.outputs, all(true));
        let r = parse(
            r#"{"parameters":{"binary_data_output":true},
                "inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}],
                "outputs":[{"name":"probabilities","parameters":{"binary_data":false}}]}"#,
        )
        .unwrap();
        assert_eq!(
            r.outputs,
            [RequestedOutput {
                name: PROBABILITIES.into(),
                binary: false
            }]
        );
    }

    /// A JSON header and binary little-endian data, as tritonclient sends them.
    fn binary_body(inputs: &[(&str, &str, Vec<u64>, Vec<u8>)]) -> (Vec<u8>, usize) {
        let head: Vec<Value> = inputs
            .iter()
            .map(|(name, datatype, shape, bytes)| {
                json!({"name": name, "datatype": datatype, "shape": shape,
                       "parameters": {"binary_data_size": bytes.len()}})
            })
            .collect();
        let mut body = serde_json::to_vec(&json!({ "inputs": head })).unwrap();
        let n = body.len();
        for (_, _, _, bytes) in inputs {
            body.extend(bytes);
        }
        (body, n)
    }

    #[test]
    fn binary_tensor_data_decodes_every_numeric_type() {
        let f32s: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let i16s: Vec<u8> = [-7i16, 300].iter().flat_map(|x| x.to_le_bytes()).collect();
        let (body, n) = binary_body(&[
            ("a", "FP32", vec![2], f32s),
            ("b", "INT16", vec![2, 1], i16s),
        ]);
        let r = parse_infer_request(&body, Some(n), &names(), &OUTPUTS, 3).unwrap();
        assert_eq!(r.numeric_values().unwrap(), [1.5, -7.0, -2.0, 300.0]);
        let f64s: Vec<u8> = [1.0f64, 2.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        let (body, n) = binary_body(&[("input", "FP64", vec![1, 2], f64s)]);
        let r = parse_infer_request(&body, Some(n), &names(), &OUTPUTS, 3).unwrap();
        assert_eq!(r.numeric_values().unwrap(), [1.0, 2.0]);
    }

    #[test]
    fn binary_data_that_does_not_add_up_is_refused() {
        let eight = vec![0u8; 8];
        let (body, n) = binary_body(&[("input", "FP32", vec![1, 2], eight.clone())]);
        let err = |body: &[u8], n| {
            parse_infer_request(body, Some(n), &names(), &OUTPUTS, 3)
                .unwrap_err()
                .to_string()
        };
        let mut longer = body.clone();
        longer.push(0);
        assert_eq!(
            err(&longer, n),
            "1 bytes of binary data follow the last input's; the inputs' `binary_data_size` \
             parameters must add up to the body after the JSON header"
        );
        assert_eq!(
            err(&body[..body.len() - 1], n),
            "input `input`: `binary_data_size` is 8 bytes but only 7 bytes of binary data are left in the body"
        );
        assert_eq!(
            err(&body, body.len() + 1),
            format!(
                "Inference-Header-Content-Length is {} but the body has only {} bytes",
                body.len() + 1,
                body.len()
            )
        );
        let (body, n) = binary_body(&[("input", "FP32", vec![1, 3], eight)]);
        assert_eq!(
            err(&body, n),
            "input `input`: `binary_data_size` is 8 bytes but shape [1, 3] of FP32 takes 12 bytes"
        );
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let one = |name: &str, shape: &str, datatype: &str, data: &str| {
            format!(
                r#"{{"inputs":[{{"name":"{name}","shape":{shape},"datatype":"{datatype}","data":{data}}}]}}"#
            )
        };
        let cases = [
            ("{".to_string(), "body is not valid JSON: EOF while parsing an object at line 1 column 1"),
            ("[]".into(), "the inference request must be a JSON object with `inputs`, got []"),
            (r#"{"inputs":[],"x":1}"#.into(), "unknown field `x` in the inference request; expected id, parameters, inputs, outputs"),
            (r#"{"inputs":[]}"#.into(), "`inputs` is empty; this model takes `input` (FP32 [-1, 2]) or one input per feature (a, b), each [-1] or [-1, 1]"),
            (r#"{"id":5,"inputs":[]}"#.into(), "`id` must be a string, got 5"),
            (one("input", "[1,3]", "FP32", "[1,2,3]"), "input `input` has shape [1, 3]; expected [N, 2] (N rows of a, b)"),
            (one("input", "[2]", "FP32", "[1,2]"), "input `input` has shape [2]; expected [N, 2] (N rows of a, b)"),
            (one("input", "[1,2]", "FP32", "[1,2,3]"), "input `input`: shape [1, 2] holds 2 values but `data` has 3"),
            (one("input", "[1,2]", "BYTES", r#"["1","2"]"#), "input `input` must be numeric (FP32); this model takes `input` (FP32 [-1, 2]) or one input per feature (a, b), each [-1] or [-1, 1]"),
            (one("input", "[1,2]", "FP16", "[1,2]"), "input `input`: datatype FP16 is not accepted; send FP32 (FP64 and integer types are converted to FP32), or BYTES for text"),
            (one("input", "[1,2]", "FP17", "[1,2]"), "input `input`: unknown datatype `FP17`; the protocol's are BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BYTES"),
            (one("input", "[1,2]", "FP32", r#"[1,"2"]"#), "input `input`, element 1: expected a number, got \"2\""),
            (one("input", "[1,2]", "FP32", "[1,1e39]"), "input `input`, element 1: 1e+39 is out of range for a 32-bit float (the model computes in FP32)"),
            (one("input", "[1,2]", "INT8", "[1,300]"), "input `input`, element 1: 300 is not representable as INT8"),
            (one("input", "[1,2]", "INT32", "[1,1.5]"), "input `input`, element 1: 1.5 is not representable as INT32"),
            (one("input", "[1,-2]", "FP32", "[1,2]"), "input `input`: `shape` must be an array of non-negative integers, got [1,-2]"),
            (one("input", "[0,2]", "FP32", "[]"), "no rows to predict"),
            (one("input", "[4,2]", "FP32", "[1,2,3,4,5,6,7,8]"), "4 rows in one request; at most 3 are accepted"),
            (one("c", "[1]", "FP32", "[1]"), "unknown input `c`; this model takes `input` (FP32 [-1, 2]) or one input per feature (a, b), each [-1] or [-1, 1]"),
            (one("a", "[1]", "FP32", "[1]"), "missing input(s) b; this model takes `input` (FP32 [-1, 2]) or one input per feature (a, b), each [-1] or [-1, 1]"),
            (one("a", "[1,2]", "FP32", "[1,2]"), "input `a` has shape [1, 2]; a feature's input is [N] or [N, 1]"),
            (
                r#"{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]},{"name":"a","shape":[1],"datatype":"FP32","data":[1]}]}"#.into(),
                "input `a` is given twice",
            ),
            (
                r#"{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]},{"name":"b","shape":[2],"datatype":"FP32","data":[1,2]}]}"#.into(),
                "input `b` has 2 rows but `a` has 1; every feature needs the same rows",
            ),
            (
                r#"{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]},{"name":"a","shape":[1],"datatype":"FP32","data":[1]}]}"#.into(),
                "input `input` carries every feature; send it alone, not with a",
            ),
            (
                r#"{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32"}]}"#.into(),
                "input `input` has no `data`",
            ),
            (
                r#"{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}],"outputs":[{"name":"logits"}]}"#.into(),
                "unknown output `logits`; this model answers label, probabilities",
            ),
            (
                r#"{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}],"parameters":{"binary_data_output":"yes"}}"#.into(),
                "the request parameter `binary_data_output` must be true or false, got \"yes\"",
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(parse(&body).unwrap_err().to_string(), expected, "{body}");
        }
    }

    #[test]
    fn answers_follow_the_task_and_metadata_comes_from_them() {
        let task = AnswerKind::Class {
            classes: vec!["x".into(), "y".into()],
        };
        let p = RowPrediction::Class(crate::predict::Prediction {
            class: "y".into(),
            class_index: 1,
            probability: 0.75,
            probabilities: vec![0.25, 0.75],
        });
        let t = answer_tensors(&task, &[p.clone(), p]);
        assert_eq!(t[0].data, TensorData::Bytes(vec!["y".into(), "y".into()]));
        assert_eq!(t[1].shape, [2, 2]);
        assert_eq!(t[1].data, TensorData::Fp32(vec![0.25, 0.75, 0.25, 0.75]));
        assert_eq!(t[0].data.to_binary(), b"\x01\0\0\0y\x01\0\0\0y");
        assert_eq!(t[1].data.to_binary()[..4], 0.25f32.to_le_bytes());
        let meta = serde_json::to_value(output_metadata(&task)).unwrap();
        assert_eq!(
            meta,
            json!([{"name": "label", "datatype": "BYTES", "shape": [-1]},
                   {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}])
        );
        let t = answer_tensors(
            &AnswerKind::Number,
            &[RowPrediction::Number(1.5), RowPrediction::Number(-2.0)],
        );
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].name, &t[0].shape), (VALUE, &vec![2]));
        assert_eq!(t[0].data, TensorData::Fp32(vec![1.5, -2.0]));
        assert_eq!(
            serde_json::to_value(output_metadata(&AnswerKind::Number)).unwrap(),
            json!([{"name": "value", "datatype": "FP32", "shape": [-1]}])
        );
    }

    fn texts(r: &InferRequest, column: &str) -> Vec<Option<String>> {
        let data = &r.table.column(column).unwrap().data;
        (0..r.rows).map(|i| data.text(i)).collect()
    }

    #[test]
    fn categories_are_sent_as_bytes_one_input_per_feature() {
        let e = penguins();
        let body = r#"{"inputs":[
            {"name":"island","shape":[3],"datatype":"BYTES","data":["Dream","NA","Atlantis"]},
            {"name":"bill","shape":[3,1],"datatype":"FP32","data":[[39.1],[40],[41.5]]},
            {"name":"tagged","shape":[3],"datatype":"BOOL","data":[true,false,true]}]}"#;
        let r = parse_infer_request(body.as_bytes(), None, &e, &OUTPUTS, 5).unwrap();
        assert_eq!(r.rows, 3);
        assert_eq!(
            texts(&r, "island"),
            [Some("Dream".into()), None, Some("Atlantis".into())]
        );
        assert_eq!(
            r.table.column("bill").unwrap().data,
            ColumnData::Numeric(vec![39.1, 40.0, 41.5])
        );
        assert_eq!(
            texts(&r, "tagged"),
            [
                Some("true".into()),
                Some("false".into()),
                Some("true".into())
            ]
        );
        // A number can be sent as text too, and "" is missing.
        let body = r#"{"inputs":[
            {"name":"island","shape":[1],"datatype":"BYTES","data":["Biscoe"]},
            {"name":"bill","shape":[1],"datatype":"BYTES","data":[""]},
            {"name":"tagged","shape":[1],"datatype":"FP32","data":[1]}]}"#;
        let r = parse_infer_request(body.as_bytes(), None, &e, &OUTPUTS, 5).unwrap();
        assert!(r.table.column("bill").unwrap().data.is_missing(0));
        assert_eq!(r.numeric_values(), None);
        // The same in binary form, as tritonclient sends BYTES: a 4-byte length, the bytes.
        let bytes = |items: &[&str]| -> Vec<u8> {
            items
                .iter()
                .flat_map(|s| (s.len() as u32).to_le_bytes().into_iter().chain(s.bytes()))
                .collect()
        };
        let bill: Vec<u8> = [39.1f32, 40.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let (body, n) = binary_body(&[
            ("island", "BYTES", vec![2], bytes(&["Dream", ""])),
            ("bill", "FP32", vec![2], bill),
            ("tagged", "BOOL", vec![2], vec![1, 0]),
        ]);
        let r = parse_infer_request(&body, Some(n), &e, &OUTPUTS, 5).unwrap();
        assert_eq!(texts(&r, "island"), [Some("Dream".into()), None]);
        assert_eq!(
            texts(&r, "tagged"),
            [Some("true".into()), Some("false".into())]
        );
        let err = |body: &[u8], n| {
            parse_infer_request(body, Some(n), &e, &OUTPUTS, 5)
                .unwrap_err()
                .to_string()
        };
        let mut cut_short = bytes(&["Dream", "Biscoe"]);
        cut_short.pop();
        let (body, n) = binary_body(&[("island", "BYTES", vec![2], cut_short)]);
        assert_eq!(
            err(&body, n),
            "input `island`, element 1: its length is 6 bytes but only 5 are left"
        );
        let (body, n) = binary_body(&[("island", "BYTES", vec![1], vec![2, 0, 0, 0, 0xff, 0xfe])]);
        assert_eq!(
            err(&body, n),
            "input `island`, element 0: the text is not UTF-8"
        );
        let (body, n) = binary_body(&[("island", "BYTES", vec![1], vec![2, 0])]);
        assert_eq!(
            err(&body, n),
            "input `island`, element 0: the binary data ends inside a 4-byte length"
        );
        let expected = "this model takes one input per feature, each [-1] or [-1, 1]: \
                        island (BYTES), bill (FP32), tagged (BOOL)";
        for (body, message) in [
            (
                r#"{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP32","data":[1,2,1]}]}"#
                    .to_string(),
                format!("input `input` cannot carry this model's categories; {expected}"),
            ),
            (
                r#"{"inputs":[{"name":"island","shape":[1],"datatype":"BYTES","data":["Dream"]}]}"#
                    .into(),
                format!("missing input(s) bill, tagged; {expected}"),
            ),
            (
                r#"{"inputs":[{"name":"island","shape":[1],"datatype":"BYTES","data":[3]}]}"#
                    .into(),
                "input `island`, element 0: expected a string, got 3".into(),
            ),
            (
                r#"{"inputs":[{"name":"tagged","shape":[1],"datatype":"BOOL","data":["yes"]}]}"#
                    .into(),
                "input `tagged`, element 0: expected true or false, got \"yes\"".into(),
            ),
        ] {
            assert_eq!(
                parse_infer_request(body.as_bytes(), None, &e, &OUTPUTS, 5)
                    .unwrap_err()
                    .to_string(),
                message,
                "{body}"
            );
        }
        let meta = serde_json::to_value(input_metadata(&e.columns)).unwrap();
        assert_eq!(
            meta,
            json!([{"name": "island", "datatype": "BYTES", "shape": [-1]},
                   {"name": "bill", "datatype": "FP32", "shape": [-1]},
                   {"name": "tagged", "datatype": "BOOL", "shape": [-1]}])
        );
        let meta = serde_json::to_value(input_metadata(&names().columns)).unwrap();
        assert_eq!(
            meta,
            json!([{"name": "input", "datatype": "FP32", "shape": [-1, 2]}])
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Arbitrary bytes, with or without a header length, never panic the parser.
            #[test]
            fn arbitrary_bodies_never_panic(
                body in proptest::collection::vec(any::<u8>(), 0..300),
                header in proptest::option::of(0usize..400),
            ) {
                if let Err(m) = parse_infer_request(&body, header, &names(), &OUTPUTS, 10) {
                    prop_assert!(!m.to_string().is_empty());
                }
            }

            /// JSON-shaped text: what parses has whole, finite rows within the limit.
            #[test]
            fn json_like_bodies_parse_to_whole_finite_rows(
                body in "(\\{|\\}|\\[|\\]|,|:|\"inputs\"|\"name\"|\"input\"|\"a\"|\"b\"|\"shape\"|\"datatype\"|\"FP32\"|\"INT8\"|\"data\"|\"outputs\"|\"label\"|[0-9]{1,3}|-|1e39|null|true){0,60}"
            ) {
                if let Ok(r) = parse(&body) {
                    prop_assert!(r.rows >= 1 && r.rows <= 3);
                    let values = r.numeric_values().unwrap();
                    prop_assert_eq!(values.len(), r.rows * 2);
                    prop_assert!(values.iter().all(|v| v.is_finite()));
                }
            }

            /// Rows sent in any of the layouts come back as the same row-major values.
            #[test]
            fn every_layout_round_trips(rows in proptest::collection::vec((-1e6f32..1e6, -1e6f32..1e6), 1..4)) {
                let flat: Vec<f32> = rows.iter().flat_map(|(a, b)| [*a, *b]).collect();
                let n = rows.len();
                let nested: Vec<[f32; 2]> = rows.iter().map(|(a, b)| [*a, *b]).collect();
                let column = |j: usize| -> Vec<f32> { flat.iter().skip(j).step_by(2).copied().collect() };
                let bodies = [
                    json!({"inputs": [{"name": "input", "shape": [n, 2], "datatype": "FP32", "data": flat}]}),
                    json!({"inputs": [{"name": "input", "shape": [n, 2], "datatype": "FP32", "data": nested}]}),
                    json!({"inputs": [{"name": "b", "shape": [n, 1], "datatype": "FP32", "data": column(1)},
                                      {"name": "a", "shape": [n], "datatype": "FP32", "data": column(0)}]}),
                ];
                for body in bodies {
                    let r = parse_infer_request(body.to_string().as_bytes(), None, &names(), &OUTPUTS, 3).unwrap();
                    prop_assert_eq!(&r.numeric_values().unwrap(), &flat);
                }
                let bytes: Vec<u8> = flat.iter().flat_map(|x| x.to_le_bytes()).collect();
                let (body, len) = binary_body(&[("input", "FP32", vec![n as u64, 2], bytes)]);
                let r = parse_infer_request(&body, Some(len), &names(), &OUTPUTS, 3).unwrap();
                prop_assert_eq!(&r.numeric_values().unwrap(), &flat);
            }
        }
    }
}
