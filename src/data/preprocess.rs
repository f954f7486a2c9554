//! The `Preprocessor`: raw columns in, the network's input matrix out. TrainedModel on the training
//! rows only (imputation values, category levels, scaling) and stored in `model.json`, so
//! training, `predict`, `evaluate` and the service apply exactly the same transform.
//!
//! - numeric: a missing value is filled in (mean, median or a constant), optionally with a 0/1
//!   "was missing" input; then standardised.
//! - categorical: one 0/1 input per level seen in the training rows, plus one for "missing" when
//!   training rows had missing values. A level never seen in training is all zeros (and counted).
//! - boolean: one 0/1 input, a missing value filled with the training rows' share of `true`;
//!   standardised like a number.

use serde::{Deserialize, Serialize};

use super::encoded::Encoded;
use super::schema::{FeatureType, Schema, boolean_value, sort_levels};
use super::table::{ColumnData, MISSING, Table, format_number};
use super::value::BadValue;
use crate::config::{Impute, NumericScaling, PreprocessConfig};

/// How one feature column becomes inputs; stored in `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Encoder {
    /// One input (plus an optional "was missing" input).
    Numeric {
        /// The column.
        name: String,
        /// The value a missing entry takes.
        fill: f32,
        /// Whether a 0/1 "was missing" input follows.
        indicator: bool,
    },
    /// One 0/1 input.
    Boolean {
        /// The column.
        name: String,
        /// The value a missing entry takes (the training rows' share of `true`).
        fill: f32,
    },
    /// One 0/1 input per level (and one for "missing" when `missing_level`, one for every other
    /// level when `other_level`).
    Categorical {
        /// The column.
        name: String,
        /// Levels of the training rows that have an input, in input order.
        levels: Vec<String>,
        /// Whether "missing" has its own input (training rows had missing values).
        missing_level: bool,
        /// Whether the levels without an input of their own share one: the column had more
        /// levels than `preprocess.max_categories`, and only the most frequent were kept.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        other_level: bool,
    },
}

impl Encoder {
    /// The column it reads.
    pub fn name(&self) -> &str {
        match self {
            Encoder::Numeric { name, .. }
            | Encoder::Boolean { name, .. }
            | Encoder::Categorical { name, .. } => name,
        }
    }

    /// Its feature type.
    pub fn kind(&self) -> FeatureType {
        match self {
            Encoder::Numeric { .. } => FeatureType::Numeric,
            Encoder::Boolean { .. } => FeatureType::Boolean,
            Encoder::Categorical { .. } => FeatureType::Categorical,
        }
    }

    /// Number of inputs it produces.
    pub fn width(&self) -> usize {
        match self {
            Encoder::Numeric { indicator, .. } => 1 + usize::from(*indicator),
            Encoder::Boolean { .. } => 1,
            Encoder::Categorical {
                levels,
                missing_level,
                other_level,
                ..
            } => levels.len() + usize::from(*missing_level) + usize::from(*other_level),
        }
    }

    /// Names of its inputs: `col`, `col:missing`, `col=level`, `col=<missing>`, `col=<other>`.
    pub fn input_names(&self) -> Vec<String> {
        match self {
            Encoder::Numeric {
                name, indicator, ..
            } => {
                let mut v = vec![name.clone()];
                if *indicator {
                    v.push(format!("{name}:missing"));
                }
                v
            }
            Encoder::Boolean { name, .. } => vec![name.clone()],
            Encoder::Categorical {
                name,
                levels,
                missing_level,
                other_level,
            } => {
                let mut v: Vec<String> = levels.iter().map(|l| format!("{name}={l}")).collect();
                if *missing_level {
                    v.push(format!("{name}=<missing>"));
                }
                if *other_level {
                    v.push(format!("{name}=<other>"));
                }
                v
            }
        }
    }

    /// Whether its inputs are standardised (numbers and booleans) or left as 0/1.
    fn scaled(&self) -> Vec<bool> {
        match self {
            Encoder::Numeric { indicator, .. } => {
                let mut v = vec![true];
                if *indicator {
                    v.push(false);
                }
                v
            }
            Encoder::Boolean { .. } => vec![true],
            Encoder::Categorical { .. } => vec![false; self.width()],
        }
    }
}

/// Why a stored encoding (a loaded `model.json`'s `preprocess`) cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodingError {
    /// Two encoders read the same column.
    #[error("feature `{feature}` is listed twice")]
    FeatureTwice {
        /// The column.
        feature: String,
    },
    /// A numeric or boolean encoder's fill value is NaN or infinite.
    #[error("feature `{feature}` has a non-finite fill value")]
    NonFiniteFill {
        /// The column.
        feature: String,
    },
    /// A categorical encoder with no inputs.
    #[error("categorical feature `{feature}` has no levels")]
    NoLevels {
        /// The column.
        feature: String,
    },
    /// A categorical encoder lists a level twice.
    #[error("categorical feature `{feature}` lists level `{level}` twice")]
    LevelTwice {
        /// The column.
        feature: String,
        /// The level.
        level: String,
    },
}

/// The fitted encoders, as stored in `model.json` under `preprocess`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encoding {
    /// One encoder per feature column, in input order.
    pub columns: Vec<Encoder>,
    /// Values that mean "missing" in input files.
    pub missing_values: Vec<String>,
    /// Every column of the training file, in order (to name the columns of a headerless file).
    pub source_columns: Vec<String>,
}

impl Encoding {
    /// Total number of inputs.
    pub fn width(&self) -> usize {
        self.columns.iter().map(Encoder::width).sum()
    }

    /// Input names, in order.
    pub fn input_names(&self) -> Vec<String> {
        self.columns.iter().flat_map(Encoder::input_names).collect()
    }

    /// The index of the column whose encoder makes input `input` (`input` < [`Self::width`]).
    pub fn column_of_input(&self, input: usize) -> usize {
        let mut end = 0;
        self.columns
            .iter()
            .position(|c| {
                end += c.width();
                input < end
            })
            .unwrap_or(self.columns.len().saturating_sub(1))
    }

    /// Feature column names, in order.
    pub fn feature_names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name().to_string()).collect()
    }

    /// Checks that the encoders are usable (for a loaded `model.json`).
    pub fn validate(&self) -> Result<(), EncodingError> {
        for (i, c) in self.columns.iter().enumerate() {
            let feature = || c.name().to_string();
            if self.columns[..i].iter().any(|d| d.name() == c.name()) {
                return Err(EncodingError::FeatureTwice { feature: feature() });
            }
            match c {
                Encoder::Numeric { fill, .. } | Encoder::Boolean { fill, .. }
                    if !fill.is_finite() =>
                {
                    return Err(EncodingError::NonFiniteFill { feature: feature() });
                }
                Encoder::Categorical {
                    levels,
                    missing_level,
                    other_level,
                    ..
                } => {
                    if levels.is_empty() && !missing_level && !other_level {
                        return Err(EncodingError::NoLevels { feature: feature() });
                    }
                    for (j, l) in levels.iter().enumerate() {
                        if levels[..j].contains(l) {
                            return Err(EncodingError::LevelTwice {
                                feature: feature(),
                                level: l.clone(),
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Per-input scaling, `(x - mean) / std`, fitted on the training split only, then (with `clip`)
/// smoothly clipped, `x / sqrt(1 + (x / 3)^2)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    /// The centre of each input: its mean, or its median (robust scaling); 0 for inputs left
    /// as 0/1.
    pub mean: Vec<f32>,
    /// The spread of each input: its population standard deviation, or its inter-quartile
    /// range (robust scaling); 1 where an input is constant or left as 0/1.
    pub std: Vec<f32>,
    /// Whether every scaled value is then smoothly clipped (robust scaling).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clip: bool,
}

impl Standardizer {
    /// Fits robust scaling on row-major `values` of `scaled.len()` inputs: the median and the
    /// inter-quartile range of each scaled input (its standard deviation where that range is 0,
    /// then 1), with smooth clipping; inputs not `scaled` keep 0 and 1.
    pub fn fit_robust(values: &[f32], scaled: &[bool]) -> Self {
        let standard = Self::fit(values, scaled);
        let w = scaled.len();
        let mut mean = standard.mean.clone();
        let mut std = standard.std.clone();
        let mut column = Vec::with_capacity(values.len().checked_div(w).unwrap_or(0));
        for j in (0..w).filter(|&j| scaled[j]) {
            column.clear();
            column.extend(values.iter().skip(j).step_by(w).copied());
            if column.is_empty() {
                continue;
            }
            column.sort_unstable_by(f32::total_cmp);
            let at = |q: f64| {
                let pos = q * (column.len() - 1) as f64;
                let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
                let t = pos - lo as f64;
                f64::from(column[lo]) * (1.0 - t) + f64::from(column[hi]) * t
            };
            let iqr = at(0.75) - at(0.25);
            mean[j] = at(0.5) as f32;
            if iqr > 1e-12 {
                std[j] = iqr as f32;
            }
        }
        Standardizer {
            mean,
            std,
            clip: true,
        }
    }

    /// Fits on row-major `values` of `scaled.len()` inputs; inputs not `scaled` keep 0 and 1.
    pub fn fit(values: &[f32], scaled: &[bool]) -> Self {
        let w = scaled.len();
        let n = values.len().checked_div(w).unwrap_or(0);
        let mut mean = vec![0f64; w];
        let mut var = vec![0f64; w];
        if n > 0 {
            for row in values.chunks_exact(w) {
                for (m, &x) in mean.iter_mut().zip(row) {
                    *m += f64::from(x);
                }
            }
            mean.iter_mut().for_each(|m| *m /= n as f64);
            for row in values.chunks_exact(w) {
                for ((v, &x), m) in var.iter_mut().zip(row).zip(&mean) {
                    *v += (f64::from(x) - m).powi(2);
                }
            }
        }
        let std = var
            .iter()
            .zip(scaled)
            .map(|(v, &s)| {
                let sd = (v / n.max(1) as f64).sqrt();
                if s && sd > 1e-12 { sd as f32 } else { 1.0 }
            })
            .collect();
        Standardizer {
            mean: mean
                .iter()
                .zip(scaled)
                .map(|(&m, &s)| if s { m as f32 } else { 0.0 })
                .collect(),
            std,
            clip: false,
        }
    }

    /// Scales row-major values in place.
    pub fn transform(&self, values: &mut [f32]) {
        let w = self.mean.len();
        if w == 0 {
            return;
        }
        for row in values.chunks_mut(w) {
            for ((x, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *x = (*x - m) / s;
            }
        }
        if self.clip {
            // Every input, the 0/1 ones too (1 becomes 0.949): the same at training and
            // prediction time, and no list of which inputs are numbers to keep.
            for x in values.iter_mut() {
                *x /= (1.0 + (*x / 3.0) * (*x / 3.0)).sqrt();
            }
        }
    }
}

/// How often inputs held a category the model never saw in training (encoded as all zeros).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Unseen {
    /// `(column, count, up to five example values)`, for columns with any.
    pub columns: Vec<(String, u64, Vec<String>)>,
}

impl Unseen {
    /// Total unseen values.
    pub fn total(&self) -> u64 {
        self.columns.iter().map(|c| c.1).sum()
    }

    /// Adds another batch's counts.
    pub fn merge(&mut self, other: Unseen) {
        for (name, n, examples) in other.columns {
            match self.columns.iter_mut().find(|c| c.0 == name) {
                Some(c) => {
                    c.1 += n;
                    for e in examples {
                        if c.2.len() < 5 && !c.2.contains(&e) {
                            c.2.push(e);
                        }
                    }
                }
                None => self.columns.push((name, n, examples)),
            }
        }
    }

    /// One line for a warning, e.g. "`island`: 2 values (Atlantis)"; empty when none.
    pub fn describe(&self) -> String {
        self.columns
            .iter()
            .map(|(name, n, ex)| format!("`{name}`: {n} ({})", ex.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

pub use crate::error::{EncodeError, EncodeProblem};

/// Why a preprocessor cannot be fitted on the training rows.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    /// The table lacks a feature column of the schema.
    #[error("column `{column}` was not read")]
    ColumnNotRead {
        /// The column.
        column: String,
    },
    /// A numeric feature's column holds text.
    #[error("column `{column}` is numeric but was read as text")]
    NumericReadAsText {
        /// The column.
        column: String,
    },
    /// A training row cannot be encoded.
    #[error("{0}")]
    Encode(EncodeError),
}

/// Encoders and scaling: the whole transform from raw columns to network inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocessor {
    /// The encoders.
    pub encoding: Encoding,
    /// Scaling of the encoded inputs.
    pub scaling: Standardizer,
}

/// Rows of `n` given as a list, or all.
/// Rows encoded at a time: their inputs (4,096 rows of 32 inputs: 512 KiB) stay in cache.
const ENCODE_BLOCK_ROWS: usize = 4096;

fn row_at(rows: Option<&[usize]>, i: usize) -> usize {
    rows.map_or(i, |r| r[i])
}

impl Preprocessor {
    /// Fits on `rows` of `table` for `schema`'s features and returns the encoded (scaled)
    /// training matrix with it.
    pub fn fit(
        table: &Table,
        schema: &Schema,
        rows: &[usize],
        config: &PreprocessConfig,
        missing_values: &[String],
    ) -> Result<(Self, Encoded), FitError> {
        let mut p = Self::fit_encoders(table, schema, rows, config, missing_values)?;
        let (mut x, _) = p.encode(table, Some(rows)).map_err(FitError::Encode)?;
        p.fit_scaling(x.dense(), config.scaling);
        p.scaling.transform(x.dense_mut());
        p.check_finite(x.dense(), 0).map_err(FitError::Encode)?;
        Ok((p, x))
    }

    /// Fits the encoders on `rows` of `table` for `schema`'s features, leaving the scaling
    /// the identity: [`Preprocessor::fit_scaling`] fits it on the encoded training rows.
    /// A categorical feature's levels are not limited here: [`Schema::infer`] holds every
    /// categorical column to `preprocess.max_categories`, over all of its rows.
    pub fn fit_encoders(
        table: &Table,
        schema: &Schema,
        rows: &[usize],
        config: &PreprocessConfig,
        missing_values: &[String],
    ) -> Result<Self, FitError> {
        let mut columns = Vec::with_capacity(schema.features.len());
        for f in &schema.features {
            let col = table
                .column(&f.name)
                .ok_or_else(|| FitError::ColumnNotRead {
                    column: f.name.clone(),
                })?;
            columns.push(fit_encoder(&f.name, f.kind, &col.data, rows, config)?);
        }
        let encoding = Encoding {
            columns,
            missing_values: missing_values.to_vec(),
            source_columns: schema.columns.clone(),
        };
        let identity = Standardizer {
            mean: vec![0.0; encoding.width()],
            std: vec![1.0; encoding.width()],
            clip: false,
        };
        Ok(Preprocessor {
            encoding,
            scaling: identity,
        })
    }

    /// Fits the scaling on the training rows `x`, encoded (row-major) with the identity scaling.
    pub fn fit_scaling(&mut self, x: &[f32], how: NumericScaling) {
        let scaled: Vec<bool> = self
            .encoding
            .columns
            .iter()
            .flat_map(Encoder::scaled)
            .collect();
        self.scaling = match how {
            NumericScaling::Standard => Standardizer::fit(x, &scaled),
            NumericScaling::Robust => Standardizer::fit_robust(x, &scaled),
        };
    }

    /// Checks that every encoded, scaled input in `x` (row-major, its first row numbered
    /// `first_row` in messages) is finite.
    pub fn check_finite(&self, x: &[f32], first_row: usize) -> Result<(), EncodeError> {
        let w = self.width().max(1);
        match x.iter().position(|v| !v.is_finite()) {
            None => Ok(()),
            Some(i) => Err(EncodeError {
                row: Some(first_row + i / w),
                column: Some(
                    self.encoding.columns[self.encoding.column_of_input(i % w)]
                        .name()
                        .to_string(),
                ),
                problem: EncodeProblem::Overflows { given: None },
            }),
        }
    }

    /// Number of inputs.
    pub fn width(&self) -> usize {
        self.encoding.width()
    }

    /// Encodes and scales `rows` of `table` (all rows when `None`) into a batch for the
    /// network.
    ///
    /// Columns are found by name; other columns are ignored. Numbers may come as text (from
    /// JSON or a file read as text) and categories as numbers.
    pub fn encode(
        &self,
        table: &Table,
        rows: Option<&[usize]>,
    ) -> Result<(Encoded, Unseen), EncodeError> {
        let n = rows.map_or(table.rows(), <[usize]>::len);
        let mut out = vec![0f32; n * self.width()];
        let mut unknown = vec![(0, Vec::new()); self.encoding.columns.len()];
        self.encode_unscaled(table, rows, &mut out, 0, &mut unknown)?;
        let mut unseen = Unseen::default();
        for (enc, (count, examples)) in self.encoding.columns.iter().zip(unknown) {
            if count > 0 {
                unseen
                    .columns
                    .push((enc.name().to_string(), count, examples));
            }
        }
        self.scaling.transform(&mut out);
        self.check_finite(&out, 0)?;
        Ok((Encoded::from_dense(n, out, self.width()), unseen))
    }

    /// Encodes `rows` of `table` (all rows when `None`) into `out` (row-major, zeroed, one row
    /// of [`Preprocessor::width`] inputs each), without the scaling; messages number the first
    /// row `first_row`. Per column, `unknown` counts the values the encoder never saw in training
    /// and keeps up to five of them.
    pub fn encode_unscaled(
        &self,
        table: &Table,
        rows: Option<&[usize]>,
        out: &mut [f32],
        first_row: usize,
        unknown: &mut [(u64, Vec<String>)],
    ) -> Result<(), EncodeError> {
        let n = rows.map_or(table.rows(), <[usize]>::len);
        let w = self.width();
        assert_eq!(
            out.len(),
            n * w,
            "encode_unscaled: output of the wrong size"
        );
        assert_eq!(unknown.len(), self.encoding.columns.len());
        let cols = self
            .encoding
            .columns
            .iter()
            .map(|enc| {
                table
                    .column(enc.name())
                    .map(|c| &c.data)
                    .ok_or_else(|| EncodeError {
                        row: None,
                        column: Some(enc.name().to_string()),
                        problem: EncodeProblem::MissingColumn {
                            needs: self.encoding.feature_names(),
                        },
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // A categorical column's own codes mapped to the model's inputs once, not per row.
        let maps: Vec<(Vec<Option<usize>>, Vec<String>)> = self
            .encoding
            .columns
            .iter()
            .zip(&cols)
            .map(|(enc, col)| match (enc, col) {
                (Encoder::Categorical { levels, .. }, ColumnData::Text { levels: own, .. }) => (
                    own.iter()
                        .map(|l| levels.iter().position(|x| x == l))
                        .collect(),
                    own.clone(),
                ),
                _ => (Vec::new(), Vec::new()),
            })
            .collect();
        // Rows are encoded a block at a time, every column of the block before the next block:
        // the block's rows of the output stay in cache while each column fills its inputs.
        for lo in (0..n).step_by(ENCODE_BLOCK_ROWS) {
            let block = lo..(lo + ENCODE_BLOCK_ROWS).min(n);
            let mut offset = 0;
            for (((enc, &col), (map, names)), (count, examples)) in self
                .encoding
                .columns
                .iter()
                .zip(&cols)
                .zip(&maps)
                .zip(unknown.iter_mut())
            {
                let name = enc.name();
                let err = |row: usize, problem: EncodeProblem| EncodeError {
                    row: Some(first_row + row),
                    column: Some(name.to_string()),
                    problem,
                };
                match enc {
                    Encoder::Numeric {
                        fill, indicator, ..
                    } => {
                        for i in block.clone() {
                            let r = row_at(rows, i);
                            let v = match col {
                                ColumnData::Numeric(v) => v[r],
                                ColumnData::Text { codes, levels } => match codes[r] {
                                    MISSING => f32::NAN,
                                    c => parse_text_number(
                                        &levels[c as usize],
                                        &self.encoding.missing_values,
                                    )
                                    .map_err(|e| err(i, EncodeProblem::Number(e)))?,
                                },
                            };
                            let cell = &mut out[i * w + offset..];
                            if v.is_nan() {
                                cell[0] = *fill;
                                if *indicator {
                                    cell[1] = 1.0;
                                }
                            } else {
                                cell[0] = v;
                            }
                        }
                    }
                    Encoder::Boolean { fill, .. } => {
                        for i in block.clone() {
                            let r = row_at(rows, i);
                            let v = match col {
                                ColumnData::Numeric(v) if v[r].is_nan() => None,
                                ColumnData::Numeric(v) => match v[r] {
                                    0.0 => Some(false),
                                    1.0 => Some(true),
                                    x => {
                                        return Err(err(i, EncodeProblem::BooleanNumber(x)));
                                    }
                                },
                                ColumnData::Text { codes, levels } => match codes[r] {
                                    MISSING => None,
                                    c => {
                                        let l = &levels[c as usize];
                                        if self
                                            .encoding
                                            .missing_values
                                            .iter()
                                            .any(|m| m == l.trim())
                                        {
                                            None
                                        } else {
                                            Some(boolean_value(l).ok_or_else(|| {
                                                err(i, EncodeProblem::BooleanText(l.clone()))
                                            })?)
                                        }
                                    }
                                },
                            };
                            out[i * w + offset] = match v {
                                None => *fill,
                                Some(b) => f32::from(u8::from(b)),
                            };
                        }
                    }
                    Encoder::Categorical {
                        levels,
                        missing_level,
                        other_level,
                        ..
                    } => {
                        let position = |value: &str| levels.iter().position(|l| l == value);
                        let missing_input = missing_level.then_some(levels.len());
                        // Levels without an input of their own share the last one.
                        let other_input =
                            other_level.then_some(levels.len() + usize::from(*missing_level));
                        for i in block.clone() {
                            let r = row_at(rows, i);
                            let (slot, value) = match col {
                                ColumnData::Text { codes, .. } => match codes[r] {
                                    MISSING => (missing_input, None),
                                    c => (map[c as usize], Some(c as usize)),
                                },
                                ColumnData::Numeric(v) if v[r].is_nan() => (missing_input, None),
                                ColumnData::Numeric(v) => (position(&format_number(v[r])), None),
                            };
                            let is_missing = match col {
                                ColumnData::Text { codes, .. } => codes[r] == MISSING,
                                ColumnData::Numeric(v) => v[r].is_nan(),
                            };
                            match slot.or(if is_missing { None } else { other_input }) {
                                Some(j) => out[i * w + offset + j] = 1.0,
                                None => {
                                    if !is_missing {
                                        *count += 1;
                                        if examples.len() < 5 {
                                            let text = match (col, value) {
                                                (_, Some(c)) => names[c].clone(),
                                                (ColumnData::Numeric(v), _) => format_number(v[r]),
                                                _ => String::new(),
                                            };
                                            if !examples.contains(&text) {
                                                examples.push(text);
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                offset += enc.width();
            }
        }
        Ok(())
    }
}

/// A number given as text (JSON string, a file column read as text); a missing-value marker is
/// `NaN`. An error shows the whole (trimmed) text.
fn parse_text_number(text: &str, missing: &[String]) -> Result<f32, BadValue> {
    let t = text.trim();
    if missing.iter().any(|m| m == t) {
        return Ok(f32::NAN);
    }
    match t.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(BadValue::NotFinite(t.to_string())),
        Err(_) => Err(BadValue::NotANumber(t.to_string())),
    }
}

fn fit_encoder(
    name: &str,
    kind: FeatureType,
    data: &ColumnData,
    rows: &[usize],
    config: &PreprocessConfig,
) -> Result<Encoder, FitError> {
    let name = name.to_string();
    Ok(match (kind, data) {
        (FeatureType::Numeric, ColumnData::Numeric(v)) => {
            let mut present: Vec<f32> =
                rows.iter().map(|&r| v[r]).filter(|x| !x.is_nan()).collect();
            let has_missing = present.len() < rows.len();
            let fill = match config.impute {
                Impute::Constant => config.fill_value as f32,
                _ if present.is_empty() => 0.0,
                Impute::Mean => {
                    (present.iter().map(|&x| f64::from(x)).sum::<f64>() / present.len() as f64)
                        as f32
                }
                Impute::Median => {
                    present.sort_unstable_by(f32::total_cmp);
                    let m = present.len() / 2;
                    if present.len() % 2 == 1 {
                        present[m]
                    } else {
                        ((f64::from(present[m - 1]) + f64::from(present[m])) / 2.0) as f32
                    }
                }
            };
            Encoder::Numeric {
                name,
                fill,
                indicator: config.missing_indicators && has_missing,
            }
        }
        (FeatureType::Numeric, ColumnData::Text { .. }) => {
            return Err(FitError::NumericReadAsText { column: name });
        }
        (FeatureType::Boolean, data) => {
            let mut trues = 0usize;
            let mut present = 0usize;
            for &r in rows {
                let b = match data {
                    ColumnData::Numeric(v) if v[r].is_nan() => None,
                    ColumnData::Numeric(v) => Some(v[r] == 1.0),
                    ColumnData::Text { codes, levels } => match codes[r] {
                        MISSING => None,
                        c => boolean_value(&levels[c as usize]),
                    },
                };
                if let Some(b) = b {
                    present += 1;
                    trues += usize::from(b);
                }
            }
            Encoder::Boolean {
                name,
                fill: if present == 0 {
                    0.0
                } else {
                    trues as f32 / present as f32
                },
            }
        }
        (FeatureType::Categorical, data) => {
            let mut has_missing = false;
            let mut levels: Vec<String> = match data {
                ColumnData::Text { codes, levels } => {
                    let mut seen = vec![false; levels.len()];
                    for &r in rows {
                        match codes[r] {
                            MISSING => has_missing = true,
                            c => seen[c as usize] = true,
                        }
                    }
                    levels
                        .iter()
                        .zip(seen)
                        .filter(|(_, s)| *s)
                        .map(|(l, _)| l.clone())
                        .collect()
                }
                ColumnData::Numeric(v) => {
                    let mut bits: Vec<u32> = Vec::new();
                    for &r in rows {
                        if v[r].is_nan() {
                            has_missing = true;
                        } else {
                            bits.push(v[r].to_bits());
                        }
                    }
                    bits.sort_unstable();
                    bits.dedup();
                    bits.into_iter()
                        .map(|b| format_number(f32::from_bits(b)))
                        .collect()
                }
            };
            sort_levels(&mut levels);
            levels.dedup();
            let other_level = levels.len() > config.max_categories;
            if other_level {
                levels = most_frequent(data, rows, levels, config.max_categories);
            }
            Encoder::Categorical {
                name,
                levels,
                missing_level: has_missing,
                other_level,
            }
        }
    })
}

/// The levels (of `levels`, sorted) that occur at least twice in `rows`, at most `keep` of the
/// most frequent (ties in `levels`' order), in `levels`' order: the ones a column of too many
/// levels keeps an input for. A level seen once cannot be learned from.
fn most_frequent(
    data: &ColumnData,
    rows: &[usize],
    levels: Vec<String>,
    keep: usize,
) -> Vec<String> {
    let mut count = vec![0usize; levels.len()];
    let position: std::collections::HashMap<&str, usize> = levels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    match data {
        ColumnData::Text { codes, levels: own } => {
            let map: Vec<Option<usize>> = own
                .iter()
                .map(|l| position.get(l.as_str()).copied())
                .collect();
            for &r in rows {
                if let Some(Some(i)) = (codes[r] != MISSING).then(|| map[codes[r] as usize]) {
                    count[i] += 1;
                }
            }
        }
        ColumnData::Numeric(v) => {
            for &r in rows {
                if !v[r].is_nan()
                    && let Some(&i) = position.get(format_number(v[r]).as_str())
                {
                    count[i] += 1;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..levels.len()).filter(|&i| count[i] >= 2).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(count[i]));
    order.truncate(keep);
    order.sort_unstable();
    let mut levels = levels.into_iter().map(Some).collect::<Vec<_>>();
    order.into_iter().filter_map(|i| levels[i].take()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::schema::{Feature, Task};
    use crate::data::table::Column;

    fn table() -> Table {
        Table::new(vec![
            Column {
                name: "x".into(),
                data: ColumnData::Numeric(vec![1.0, 3.0, f32::NAN, 5.0]),
            },
            Column {
                name: "c".into(),
                data: ColumnData::Text {
                    codes: vec![0, 1, MISSING, 0],
                    levels: vec!["red".into(), "blue".into()],
                },
            },
            Column {
                name: "b".into(),
                data: ColumnData::Text {
                    codes: vec![0, 1, 0, MISSING],
                    levels: vec!["yes".into(), "no".into()],
                },
            },
        ])
        .unwrap()
    }

    fn schema() -> Schema {
        Schema {
            columns: vec!["x".into(), "c".into(), "b".into(), "y".into()],
            label: "y".into(),
            task: Task::Classification,
            features: vec![
                Feature {
                    name: "x".into(),
                    kind: FeatureType::Numeric,
                },
                Feature {
                    name: "c".into(),
                    kind: FeatureType::Categorical,
                },
                Feature {
                    name: "b".into(),
                    kind: FeatureType::Boolean,
                },
            ],
            ignored: vec![],
            task_reason: String::new(),
        }
    }

    #[test]
    fn a_column_of_too_many_levels_keeps_the_frequent_ones_and_one_for_the_rest() {
        // Training rows: a x5, b x3, c x2, d x1, e x1 and a blank; two inputs allowed.
        let words = ["a", "a", "a", "a", "a", "b", "b", "b", "c", "c", "d", "e"];
        let mut levels: Vec<String> = vec!["a", "b", "c", "d", "e", "zzz"]
            .into_iter()
            .map(String::from)
            .collect();
        let mut codes: Vec<u32> = words
            .iter()
            .map(|w| levels.iter().position(|l| l == w).unwrap() as u32)
            .collect();
        codes.push(MISSING);
        codes.push(5); // `zzz`: not a training row
        levels.truncate(6);
        let t = Table::new(vec![Column {
            name: "c".into(),
            data: ColumnData::Text { codes, levels },
        }])
        .unwrap();
        let schema = Schema {
            columns: vec!["c".into(), "y".into()],
            label: "y".into(),
            task: Task::Classification,
            features: vec![Feature {
                name: "c".into(),
                kind: FeatureType::Categorical,
            }],
            ignored: vec![],
            task_reason: String::new(),
        };
        let cfg = PreprocessConfig {
            max_categories: 2,
            ..PreprocessConfig::default()
        };
        let train: Vec<usize> = (0..13).collect();
        let (p, _) = Preprocessor::fit(&t, &schema, &train, &cfg, &[]).unwrap();
        assert_eq!(
            p.encoding.input_names(),
            ["c=a", "c=b", "c=<missing>", "c=<other>"]
        );
        let (x, unseen) = p.encode(&t, Some(&[0, 5, 8, 10, 12, 13])).unwrap();
        let rows: Vec<&[f32]> = x.dense().chunks(4).collect();
        assert_eq!(rows[0], [1.0, 0.0, 0.0, 0.0], "a");
        assert_eq!(rows[1], [0.0, 1.0, 0.0, 0.0], "b");
        assert_eq!(
            rows[2],
            [0.0, 0.0, 0.0, 1.0],
            "c: too rare for its own input"
        );
        assert_eq!(rows[3], [0.0, 0.0, 0.0, 1.0], "d: seen once");
        assert_eq!(
            rows[4],
            [0.0, 0.0, 1.0, 0.0],
            "a blank is missing, not other"
        );
        assert_eq!(rows[5], [0.0, 0.0, 0.0, 1.0], "a level never seen: other");
        assert_eq!(unseen.total(), 0, "every value has an input");
        // Within the limit, nothing changes: no other input.
        let (p, _) =
            Preprocessor::fit(&t, &schema, &train, &PreprocessConfig::default(), &[]).unwrap();
        assert_eq!(p.encoding.width(), 6, "5 levels and missing");
    }

    #[test]
    fn robust_scaling_centres_on_the_median_and_clips_outliers_smoothly() {
        // One input: 1, 2, 3, 4 and an outlier 1000; one 0/1 input left unscaled.
        let x = [1.0, 0.0, 2.0, 1.0, 3.0, 0.0, 4.0, 1.0, 1000.0, 0.0];
        let s = Standardizer::fit_robust(&x, &[true, false]);
        assert_eq!(
            (s.mean[0], s.std[0]),
            (3.0, 2.0),
            "median 3, quartiles 2 and 4"
        );
        assert_eq!((s.mean[1], s.std[1]), (0.0, 1.0));
        let mut v = vec![3.0, 1.0, 1000.0, 0.0];
        s.transform(&mut v);
        assert_eq!(v[0], 0.0);
        assert!(
            (v[1] - 1.0 / (1.0f32 + 1.0 / 9.0).sqrt()).abs() < 1e-6,
            "{v:?}"
        );
        // (1000 - 3) / 2 = 498.5, clipped to just under 3.
        assert!(v[2] > 2.99 && v[2] < 3.0, "{v:?}");
        assert_eq!(v[3], 0.0);
        // A constant input keeps its deviation (here 0, so 1).
        let c = Standardizer::fit_robust(&[5.0, 5.0, 5.0], &[true]);
        assert_eq!((c.mean[0], c.std[0]), (5.0, 1.0));
        // Standard scaling never clips.
        assert!(!Standardizer::fit(&x, &[true, false]).clip);
    }

    #[test]
    fn fits_on_the_training_rows_only() {
        let t = table();
        // Rows 0, 1 and 3: the missing x (row 2) and the missing category are not among them.
        let (p, x) =
            Preprocessor::fit(&t, &schema(), &[0, 1, 3], &PreprocessConfig::default(), &[])
                .unwrap();
        assert_eq!(p.encoding.input_names(), ["x", "c=blue", "c=red", "b"]);
        let owners: Vec<usize> = (0..4).map(|i| p.encoding.column_of_input(i)).collect();
        assert_eq!(owners, [0, 1, 1, 2], "each input's column");
        assert_eq!((x.rows(), x.dense_width(), x.code_width()), (3, 4, 0));
        let x = x.dense();
        assert_eq!(
            p.encoding.columns[0],
            Encoder::Numeric {
                name: "x".into(),
                fill: 3.0,
                indicator: false
            }
        );
        // x: mean 3, std sqrt(8/3); one-hot unscaled; b: yes, no, (missing -> 1/2).
        let sd = (8f32 / 3.0).sqrt();
        let expected_x = [-2.0 / sd, 0.0, 2.0 / sd];
        for (i, ex) in expected_x.iter().enumerate() {
            assert!((x[i * 4] - ex).abs() < 1e-6, "{x:?}");
        }
        assert_eq!(&x[1..3], [0.0, 1.0]);
        assert_eq!(&x[5..7], [1.0, 0.0]);
        // Row 2 (never fitted on): x imputed with the mean, the category unseen as "missing".
        let (all, unseen) = p.encode(&t, None).unwrap();
        let all = all.dense();
        assert!((all[2 * 4]).abs() < 1e-6);
        assert_eq!(&all[2 * 4 + 1..2 * 4 + 3], [0.0, 0.0]);
        assert_eq!(unseen.total(), 0);
    }

    #[test]
    fn unseen_levels_are_zero_and_counted() {
        let t = table();
        let (p, _) =
            Preprocessor::fit(&t, &schema(), &[0, 2, 3], &PreprocessConfig::default(), &[])
                .unwrap();
        // Training rows saw only `red` and a missing value: `blue` (row 1) is unseen.
        assert_eq!(p.encoding.input_names(), ["x", "c=red", "c=<missing>", "b"]);
        let (v, unseen) = p.encode(&t, Some(&[1])).unwrap();
        assert_eq!(&v.dense()[1..3], [0.0, 0.0]);
        assert_eq!(
            unseen.columns,
            [("c".to_string(), 1, vec!["blue".to_string()])]
        );
    }

    #[test]
    fn median_constant_and_indicators() {
        let t = table();
        let cfg = PreprocessConfig {
            impute: Impute::Median,
            missing_indicators: true,
            ..PreprocessConfig::default()
        };
        let (p, _) = Preprocessor::fit(&t, &schema(), &[0, 1, 2, 3], &cfg, &[]).unwrap();
        assert_eq!(
            p.encoding.columns[0],
            Encoder::Numeric {
                name: "x".into(),
                fill: 3.0,
                indicator: true
            }
        );
        assert_eq!(p.encoding.input_names()[1], "x:missing");
        let cfg = PreprocessConfig {
            impute: Impute::Constant,
            fill_value: -1.0,
            ..PreprocessConfig::default()
        };
        let (p, _) = Preprocessor::fit(&t, &schema(), &[0, 1, 2, 3], &cfg, &[]).unwrap();
        assert!(matches!(p.encoding.columns[0], Encoder::Numeric { fill, .. } if fill == -1.0));
    }

    #[test]
    fn values_given_as_text_or_numbers_encode_the_same() {
        let t = table();
        let (p, _) = Preprocessor::fit(
            &t,
            &schema(),
            &[0, 1, 2, 3],
            &PreprocessConfig::default(),
            &["NA".into()],
        )
        .unwrap();
        let as_text = Table::new(vec![
            Column {
                name: "b".into(),
                data: ColumnData::Text {
                    codes: vec![0],
                    levels: vec!["YES".into()],
                },
            },
            Column {
                name: "x".into(),
                data: ColumnData::Text {
                    codes: vec![0],
                    levels: vec!["3".into()],
                },
            },
            Column {
                name: "c".into(),
                data: ColumnData::Text {
                    codes: vec![0],
                    levels: vec!["red".into()],
                },
            },
        ])
        .unwrap();
        let (a, _) = p.encode(&as_text, None).unwrap();
        let (b, _) = p.encode(&t, Some(&[0])).unwrap();
        assert_eq!(a.dense()[1..], b.dense()[1..]);
        let bad = Table::new(vec![
            Column {
                name: "x".into(),
                data: ColumnData::Text {
                    codes: vec![0],
                    levels: vec!["abc".into()],
                },
            },
            Column {
                name: "c".into(),
                data: ColumnData::Numeric(vec![1.0]),
            },
            Column {
                name: "b".into(),
                data: ColumnData::Numeric(vec![1.0]),
            },
        ])
        .unwrap();
        let e = p.encode(&bad, None).unwrap_err();
        assert_eq!(e.to_string(), "row 1, column `x`: `abc` is not a number");
        // Typed: the caller renumbers the row without reading the text.
        assert_eq!(e.row, Some(0));
        assert_eq!(e.column.as_deref(), Some("x"));
        assert_eq!(
            e.problem,
            EncodeProblem::Number(BadValue::NotANumber("abc".into()))
        );
        assert_eq!(
            e.clone().rows_from(40).to_string(),
            "row 41, column `x`: `abc` is not a number"
        );
        assert_eq!(
            e.lone_row().to_string(),
            "column `x`: `abc` is not a number"
        );
        let missing = Table::new(vec![Column {
            name: "x".into(),
            data: ColumnData::Numeric(vec![1.0]),
        }])
        .unwrap();
        let e = p.encode(&missing, None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("column `c`: the column is missing"),
            "{e}"
        );
        assert_eq!(e.row, None, "a missing column is no one row's fault");
    }
}
