//! `Predictor`: a model directory loaded once, predicting batches of rows. Shared by the
//! `predict` and `evaluate` commands and the HTTP service.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::prelude::*;
use serde::Serialize;

use crate::artifact::ModelDir;
use crate::data::{
    self, Column, ColumnData, Preprocessor, Source, Table, TargetScaling, Task, Unseen,
};
use crate::error::{EncodeError, EncodeProblem, Error, Result};
use crate::metadata::Metadata;
use crate::metrics::{Scorer, Scores, Truth, argmax_rows, softmax_rows};
use crate::model::{Ensemble, Inputs};

/// Largest batch accepted in one call, so one request cannot exhaust memory.
pub const MAX_BATCH_ROWS: usize = 1_000_000;

/// One row's class prediction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// The most probable class (`species` on the wire, the name the service's first clients
    /// read).
    #[serde(rename = "species")]
    pub class: String,
    /// Its index in the model's class list.
    pub class_index: usize,
    /// Its probability.
    pub probability: f32,
    /// Every class's probability, in class order.
    pub probabilities: Vec<f32>,
}

/// What a model predicts for one row: a class (classification) or a number (regression).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RowPrediction {
    /// A classifier's answer.
    Class(Prediction),
    /// A regressor's answer, in the target's units.
    Number(f32),
}

/// A model's scores on a labelled table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvaluationReport {
    /// The table: a path, or `embedded:iris.csv`.
    pub data: String,
    /// Rows left out because their label was missing.
    pub dropped_rows: usize,
    /// Values of categorical columns the model never saw in training (encoded as all zeros).
    pub unseen_categories: u64,
    /// Accuracy, loss, confusion matrix, per-class precision/recall/F1; or R², RMSE, MAE.
    pub evaluation: Scores,
}

/// Predictions for a batch of raw rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    /// One per row, in order.
    pub rows: Vec<RowPrediction>,
    /// Categories the model never saw in training (encoded as all zeros), by column.
    pub unseen: Unseen,
}

/// A loaded model ready to predict.
#[derive(Debug)]
pub struct Predictor<B: Backend> {
    model: Ensemble<B>,
    meta: Metadata,
    preprocessor: Preprocessor,
    device: B::Device,
    unseen: AtomicU64,
}

impl<B: Backend> Predictor<B> {
    /// Loads and validates a model directory.
    pub fn load(dir: &Path, device: &B::Device) -> Result<Self> {
        let (meta, model) = ModelDir::new(dir).load::<B>(device)?;
        Ok(Predictor {
            model,
            preprocessor: meta.preprocessor(),
            meta,
            device: device.clone(),
            unseen: AtomicU64::new(0),
        })
    }

    /// The model's metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// Feature column names, in input order.
    pub fn features(&self) -> &[String] {
        &self.meta.features
    }

    /// Class names, in output order (empty for regression).
    pub fn classes(&self) -> &[String] {
        &self.meta.classes
    }

    /// Classification or regression.
    pub fn task(&self) -> Task {
        self.meta.task
    }

    /// The transform from raw columns to inputs (feature types, category levels...).
    pub fn preprocessor(&self) -> &Preprocessor {
        &self.preprocessor
    }

    /// Category values never seen in training, counted over every call since loading (for a
    /// service's metrics).
    pub fn unseen_categories(&self) -> u64 {
        self.unseen.load(Ordering::Relaxed)
    }

    /// Checks raw row-major feature values: whole rows, finite, not too many.
    pub fn check_rows(&self, values: &[f32]) -> Result<usize> {
        let w = self.features().len();
        if values.is_empty() {
            return Err(Error::Input("no rows to predict".into()));
        }
        if !values.len().is_multiple_of(w) {
            return Err(Error::Input(format!(
                "got {} values, which is not a whole number of rows of {w} features ({})",
                values.len(),
                self.features().join(", ")
            )));
        }
        let rows = values.len() / w;
        if rows > MAX_BATCH_ROWS {
            return Err(Error::Input(format!(
                "{rows} rows in one batch; at most {MAX_BATCH_ROWS} are accepted"
            )));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::Input(format!(
                "row {}, feature `{}`: {} is not a finite number",
                i / w + 1,
                self.features()[i % w],
                values[i]
            )));
        }
        Ok(rows)
    }

    /// Row-major values in feature order as a table of numeric columns.
    fn numeric_table(&self, values: &[f32]) -> Result<Table> {
        let rows = self.check_rows(values)?;
        let w = self.features().len();
        let columns = self
            .features()
            .iter()
            .enumerate()
            .map(|(j, name)| Column {
                name: name.clone(),
                data: ColumnData::Numeric((0..rows).map(|i| values[i * w + j]).collect()),
            })
            .collect();
        Table::new(columns).ok_or_else(|| Error::Internal("ragged numeric table".into()))
    }

    /// Raw outputs (logits, or the standardised number) for a table of raw columns, in one
    /// forward pass, with the categories it had never seen.
    pub fn outputs(&self, rows: &Table) -> Result<(Vec<f32>, Unseen)> {
        let n = rows.rows();
        if n == 0 {
            return Err(Error::Input("no rows to predict".into()));
        }
        if n > MAX_BATCH_ROWS {
            return Err(Error::Input(format!(
                "{n} rows in one batch; at most {MAX_BATCH_ROWS} are accepted"
            )));
        }
        let (x, unseen) = self
            .preprocessor
            .encode(rows, None)
            .map_err(|error| Error::Encode { input: None, error })?;
        self.unseen.fetch_add(unseen.total(), Ordering::Relaxed);
        let out = self.model.outputs_to_host(Inputs::new(x, &self.device));
        let k = self.meta.model.outputs.max(1);
        if let Some(i) = out.iter().position(|v| !v.is_finite()) {
            return Err(Error::Encode {
                input: None,
                error: EncodeError {
                    row: Some(i / k),
                    column: None,
                    problem: EncodeProblem::OutputsOverflow,
                },
            });
        }
        Ok((out, unseen))
    }

    /// Logits for raw (unscaled) row-major feature values, in one forward pass.
    pub fn logits(&self, values: &[f32]) -> Result<Vec<f32>> {
        let table = self.numeric_table(values)?;
        self.outputs(&table).map(|(o, _)| o).map_err(|e| match e {
            // Name the value as given, not as scaled.
            Error::Encode {
                input,
                error:
                    EncodeError {
                        row: Some(row),
                        column: Some(column),
                        problem: EncodeProblem::Overflows { .. },
                    },
            } => {
                let w = self.features().len();
                let given = self
                    .features()
                    .iter()
                    .position(|f| *f == column)
                    .and_then(|j| values.get(row * w + j).copied());
                Error::Encode {
                    input,
                    error: EncodeError {
                        row: Some(row),
                        column: Some(column),
                        problem: EncodeProblem::Overflows { given },
                    },
                }
            }
            other => other,
        })
    }

    fn answers(&self, outputs: &[f32]) -> Vec<RowPrediction> {
        match self.meta.task {
            Task::Classification => {
                let k = self.classes().len();
                let probs = softmax_rows(outputs, k);
                argmax_rows(outputs, k)
                    .into_iter()
                    .zip(probs.chunks(k))
                    .map(|(c, p)| {
                        RowPrediction::Class(Prediction {
                            class: self.classes()[c].clone(),
                            class_index: c,
                            probability: p[c],
                            probabilities: p.to_vec(),
                        })
                    })
                    .collect()
            }
            Task::Regression => {
                let s = self.target_scaling();
                outputs
                    .iter()
                    .map(|&o| RowPrediction::Number(o * s.std + s.mean))
                    .collect()
            }
        }
    }

    fn target_scaling(&self) -> TargetScaling {
        self.meta.target_scaling()
    }

    /// Scores this model's outputs as training did: its classes, its target scaling, its
    /// recipe's loss.
    pub fn scorer(&self) -> Scorer<'_> {
        Scorer::new(
            self.classes(),
            self.meta.preprocessing.target_scaling,
            self.meta.loss(),
        )
    }

    /// Predictions for a table of raw columns (matched by name; other columns are ignored):
    /// numbers or text for numeric features, text (or numbers) for categories, missing values
    /// as the model was trained to fill them.
    pub fn predict_rows(&self, rows: &Table) -> Result<Predictions> {
        let (outputs, unseen) = self.outputs(rows)?;
        Ok(Predictions {
            rows: self.answers(&outputs),
            unseen,
        })
    }

    /// Predictions for a chunk of a file's rows, errors numbering rows within the file.
    pub fn predict_chunk(&self, chunk: &data::Chunk) -> Result<Predictions> {
        self.predict_rows(&chunk.table).map_err(|e| match e {
            Error::Encode { input, error } => Error::Encode {
                input,
                error: error.rows_from(chunk.first_row),
            },
            other => other,
        })
    }

    /// The prediction for one row of text values in the model's feature order (the command
    /// line's arguments; see [`Predictor::parse_row`]); errors name no row.
    pub fn predict_values(&self, values: &[String]) -> Result<Predictions> {
        let row = self.parse_row(values)?;
        self.predict_rows(&row).map_err(|e| match e {
            Error::Encode { input, error } => Error::Encode {
                input,
                error: error.lone_row(),
            },
            other => other,
        })
    }

    /// Class predictions for raw (unscaled) row-major feature values, in one forward pass.
    /// A regression model's answers are numbers: use [`Predictor::predict_rows`].
    pub fn predict(&self, values: &[f32]) -> Result<Vec<Prediction>> {
        if self.meta.task == Task::Regression {
            return Err(Error::Input(
                "this model predicts a number, not a class".into(),
            ));
        }
        let logits = self.logits(values)?;
        Ok(self
            .answers(&logits)
            .into_iter()
            .filter_map(|p| match p {
                RowPrediction::Class(c) => Some(c),
                RowPrediction::Number(_) => None,
            })
            .collect())
    }

    /// One row from text values in the model's feature order (the command line's arguments):
    /// numbers, category values, or a missing-value marker.
    pub fn parse_row(&self, values: &[String]) -> Result<Table> {
        let features = self.features();
        if values.len() != features.len() {
            return Err(Error::Input(format!(
                "expected {} values ({}), got {}; or pass rows with --input FILE",
                features.len(),
                features.join(", "),
                values.len()
            )));
        }
        let missing = &self.preprocessor.encoding.missing_values;
        let columns = values
            .iter()
            .zip(&self.preprocessor.encoding.columns)
            .map(|(v, enc)| {
                let v = v.trim();
                let data = if missing.iter().any(|m| m == v) {
                    ColumnData::Numeric(vec![f32::NAN])
                } else if enc.kind() == data::FeatureType::Numeric {
                    ColumnData::Numeric(vec![
                        data::parse_number(v)
                            .map_err(|e| Error::Input(format!("column `{}`: {e}", enc.name())))?,
                    ])
                } else {
                    ColumnData::Text {
                        codes: vec![0],
                        levels: vec![v.to_string()],
                    }
                };
                Ok(Column {
                    name: enc.name().to_string(),
                    data,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Table::new(columns).ok_or_else(|| Error::Internal("ragged row".into()))
    }

    /// Opens rows for this model from `source`: matched by header name, or laid out like the
    /// training file; label and ignored columns may be present or absent.
    pub fn open_rows(&self, source: &Source, as_input: bool) -> Result<data::Chunks> {
        let (reader, kinds) = data::open_rows(
            source,
            &self.preprocessor.encoding,
            &self.meta.label,
            self.meta.task,
            as_input,
        )?;
        reader.chunks(&kinds)
    }

    /// Scores the model on a labelled table, read in bounded chunks. Rows whose label is
    /// missing are left out and counted; labels the model was not trained on are refused.
    pub fn evaluate_source(&self, source: &Source) -> Result<EvaluationReport> {
        let name = source.name();
        let data_err = |message: String| Error::Data {
            source_name: name.clone(),
            message,
        };
        let label = self.meta.label.clone();
        let mut dropped = 0usize;
        let mut unseen = Unseen::default();
        // Scores are tallied chunk by chunk: memory stays flat whatever the file's size. The
        // scorer is training's: the same loss for the same rows.
        let scorer = self.scorer();
        let mut tally = scorer.tally();
        let mut rows_seen = 0usize;
        for chunk in self.open_rows(source, false)? {
            let chunk = chunk?;
            let t = chunk.table;
            rows_seen += t.rows();
            let col = t.column(&label).ok_or_else(|| {
                data_err(format!(
                    "no label column `{label}`; evaluate needs labelled rows"
                ))
            })?;
            let keep: Vec<usize> = (0..t.rows()).filter(|&i| !col.data.is_missing(i)).collect();
            dropped += t.rows() - keep.len();
            if keep.is_empty() {
                continue;
            }
            let t = if keep.len() < t.rows() {
                t.select(&keep)
            } else {
                t
            };
            let col = &t
                .column(&label)
                .map(|c| c.data.clone())
                .unwrap_or(ColumnData::Numeric(Vec::new()));
            let first_row = chunk.first_row;
            let (out, u) = self.outputs(&t).map_err(|e| match e {
                // Numbered among the file's rows, not the labelled rows kept of this chunk.
                Error::Encode { error, .. } => Error::Encode {
                    input: Some(name.clone()),
                    error: error.map_row(|r| keep[r] + first_row),
                },
                Error::Input(m) => data_err(m),
                other => other,
            })?;
            unseen.merge(u);
            match self.meta.task {
                Task::Classification => {
                    let mut unknown: Vec<String> = Vec::new();
                    let mut class_labels = Vec::with_capacity(t.rows());
                    for i in 0..t.rows() {
                        let v = col.text(i).unwrap_or_default();
                        match self.classes().iter().position(|c| *c == v) {
                            Some(c) => class_labels.push(c),
                            None => {
                                if !unknown.contains(&v) {
                                    unknown.push(v);
                                }
                            }
                        }
                    }
                    if !unknown.is_empty() {
                        return Err(data_err(format!(
                            "labels the model was not trained on: {}; it knows {}",
                            unknown
                                .iter()
                                .map(|c| format!("`{c}`"))
                                .collect::<Vec<_>>()
                                .join(", "),
                            self.classes().join(", ")
                        )));
                    }
                    scorer.add(&mut tally, &out, Truth::Classes(&class_labels));
                }
                Task::Regression => {
                    let ColumnData::Numeric(y) = col else {
                        return Err(data_err(format!("label `{label}` is not numeric")));
                    };
                    scorer.add(&mut tally, &out, Truth::Raw(y));
                }
            }
        }
        if rows_seen == 0 {
            return Err(data_err("no data rows".into()));
        }
        if Scorer::rows(&tally) == 0 {
            return Err(data_err(format!(
                "every row's label (`{label}`) is missing"
            )));
        }
        let evaluation = scorer.finish(&tally);
        Ok(EvaluationReport {
            data: name,
            dropped_rows: dropped,
            unseen_categories: unseen.total(),
            evaluation,
        })
    }
}

/// How [`format_predictions`] writes predictions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredictionFormat {
    /// `class<TAB>probability`, one line per row.
    Text,
    /// One JSON object: `{"predictions": [{"species", "probability", "probabilities": {..}}]}`.
    Json,
    /// CSV with a header: species, probability, then one column per class.
    Csv,
}

/// Writes a batch of class or number predictions as text, JSON or CSV (`classes` names the
/// probability columns; `header` says whether CSV output starts with its header line).
///
/// Numbers are written as `value`: one per line, `{"predictions": [{"value": x}]}`, or a CSV
/// column `value`.
pub fn format_rows(
    rows: &[RowPrediction],
    classes: &[String],
    format: PredictionFormat,
    header: bool,
) -> Result<String> {
    let classes_only: Vec<Prediction> = rows
        .iter()
        .filter_map(|r| match r {
            RowPrediction::Class(p) => Some(p.clone()),
            RowPrediction::Number(_) => None,
        })
        .collect();
    if classes_only.len() == rows.len() {
        let text = format_predictions(&classes_only, classes, format)?;
        return Ok(match (format, header) {
            (PredictionFormat::Csv, false) => text
                .split_once('\n')
                .map_or(String::new(), |(_, rest)| rest.to_string()),
            _ => text,
        });
    }
    let values: Vec<f32> = rows
        .iter()
        .map(|r| match r {
            RowPrediction::Number(v) => *v,
            RowPrediction::Class(_) => f32::NAN,
        })
        .collect();
    Ok(match format {
        PredictionFormat::Text => values.iter().map(|v| format!("{v}\n")).collect(),
        PredictionFormat::Json => {
            let rows: Vec<_> = values
                .iter()
                .map(|v| serde_json::json!({ "value": v }))
                .collect();
            format!("{}\n", serde_json::json!({ "predictions": rows }))
        }
        PredictionFormat::Csv => {
            let mut s = if header {
                "value\n".to_string()
            } else {
                String::new()
            };
            for v in values {
                s.push_str(&format!("{v}\n"));
            }
            s
        }
    })
}

/// Writes predictions as text, JSON or CSV; `classes` names the probability columns.
pub fn format_predictions(
    predictions: &[Prediction],
    classes: &[String],
    format: PredictionFormat,
) -> Result<String> {
    use serde_json::json;
    Ok(match format {
        PredictionFormat::Text => predictions
            .iter()
            .map(|p| format!("{}\t{:.4}\n", p.class, p.probability))
            .collect(),
        PredictionFormat::Json => {
            let rows: Vec<_> = predictions
                .iter()
                .map(|p| {
                    let probs: serde_json::Map<_, _> = classes
                        .iter()
                        .cloned()
                        .zip(p.probabilities.iter().map(|&x| json!(x)))
                        .collect();
                    json!({"species": p.class, "probability": p.probability, "probabilities": probs})
                })
                .collect();
            format!("{}\n", json!({ "predictions": rows }))
        }
        PredictionFormat::Csv => {
            let csv_err =
                |e: &dyn std::fmt::Display| Error::Internal(format!("formatting CSV: {e}"));
            let mut w = csv::Writer::from_writer(Vec::new());
            let header = ["species".to_string(), "probability".to_string()]
                .into_iter()
                .chain(classes.iter().cloned());
            w.write_record(header).map_err(|e| csv_err(&e))?;
            for p in predictions {
                let row = [p.class.clone(), p.probability.to_string()]
                    .into_iter()
                    .chain(p.probabilities.iter().map(f32::to_string));
                w.write_record(row).map_err(|e| csv_err(&e))?;
            }
            String::from_utf8_lossy(&w.into_inner().map_err(|e| csv_err(&e))?).into_owned()
        }
    })
}
