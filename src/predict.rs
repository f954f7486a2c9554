//! `Predictor`: a model directory loaded once, predicting batches of rows. Shared by the
//! `predict` and `evaluate` commands and the HTTP service.

use std::path::Path;

use burn::prelude::*;
use serde::Serialize;

use crate::artifact::ModelDir;
use crate::config::{ColumnRef, DataConfig};
use crate::data::{self, Table};
use crate::error::{Error, Result};
use crate::metadata::Metadata;
use crate::metrics::{Evaluation, argmax_rows, softmax_rows};
use crate::model::Mlp;

/// Largest batch accepted in one call, so one request cannot exhaust memory.
pub const MAX_BATCH_ROWS: usize = 1_000_000;

/// One row's prediction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// The most probable class.
    pub species: String,
    /// Its index in the model's class list.
    pub class_index: usize,
    /// Its probability.
    pub probability: f32,
    /// Every class's probability, in class order.
    pub probabilities: Vec<f32>,
}

/// A loaded model ready to predict.
#[derive(Debug)]
pub struct Predictor<B: Backend> {
    model: Mlp<B>,
    meta: Metadata,
    device: B::Device,
}

impl<B: Backend> Predictor<B> {
    /// Loads and validates a model directory.
    pub fn load(dir: &Path, device: &B::Device) -> Result<Self> {
        let (meta, model) = ModelDir::new(dir).load::<B>(device)?;
        Ok(Predictor {
            model,
            meta,
            device: device.clone(),
        })
    }

    /// The model's metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// Feature names, in input order.
    pub fn features(&self) -> &[String] {
        &self.meta.features
    }

    /// Class names, in output order.
    pub fn classes(&self) -> &[String] {
        &self.meta.classes
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

    /// Logits for raw (unscaled) row-major feature values, in one forward pass.
    pub fn logits(&self, values: &[f32]) -> Result<Vec<f32>> {
        let rows = self.check_rows(values)?;
        let mut scaled = values.to_vec();
        self.meta.scaling.transform(&mut scaled);
        let w = self.features().len();
        if let Some(i) = scaled.iter().position(|v| !v.is_finite()) {
            return Err(Error::Input(format!(
                "row {}, feature `{}`: {} is too large to use (it overflows once scaled)",
                i / w + 1,
                self.features()[i % w],
                values[i]
            )));
        }
        let x = Tensor::<B, 2>::from_data(
            TensorData::new(scaled, [rows, self.features().len()]),
            &self.device,
        );
        let logits = self.model.logits_to_host(x);
        let k = self.classes().len();
        if let Some(i) = logits.iter().position(|v| !v.is_finite()) {
            return Err(Error::Input(format!(
                "row {}: the values are too extreme for this model (its outputs overflow)",
                i / k + 1
            )));
        }
        Ok(logits)
    }

    /// Predictions for raw (unscaled) row-major feature values, in one forward pass.
    pub fn predict(&self, values: &[f32]) -> Result<Vec<Prediction>> {
        let logits = self.logits(values)?;
        let k = self.classes().len();
        let probs = softmax_rows(&logits, k);
        Ok(argmax_rows(&logits, k)
            .into_iter()
            .zip(probs.chunks(k))
            .map(|(c, p)| Prediction {
                species: self.classes()[c].clone(),
                class_index: c,
                probability: p[c],
                probabilities: p.to_vec(),
            })
            .collect())
    }

    /// One row from text values in the model's feature order (the command line's arguments).
    pub fn parse_row(&self, values: &[String]) -> Result<Vec<f32>> {
        let features = self.features();
        if values.len() != features.len() {
            return Err(Error::Input(format!(
                "expected {} values ({}), got {}; or pass rows with --input FILE",
                features.len(),
                features.join(", "),
                values.len()
            )));
        }
        values
            .iter()
            .zip(features)
            .map(|(v, name)| {
                data::parse_number(v.trim())
                    .map_err(|e| Error::Input(format!("column `{name}`: {e}")))
            })
            .collect()
    }

    /// Scores the model on labelled CSV bytes (`source` names them in messages).
    ///
    /// Columns are matched by the model's names when the header has them all, by position
    /// otherwise; labels the model was not trained on are refused, naming them.
    pub fn evaluate_csv(&self, bytes: &[u8], source: &str) -> Result<Evaluation> {
        let meta = &self.meta;
        let header = data::first_row(bytes);
        let named = std::iter::once(&meta.label)
            .chain(&meta.features)
            .all(|name| header.contains(name));
        let columns = if named {
            DataConfig {
                label: Some(ColumnRef::Name(meta.label.clone())),
                features: Some(meta.features.iter().cloned().map(ColumnRef::Name).collect()),
                ..DataConfig::default()
            }
        } else {
            DataConfig::default()
        };
        let table = Table::from_csv(bytes, source, &columns)?;
        let data_err = |message: String| Error::Data {
            source_name: source.to_string(),
            message,
        };
        if table.width() != meta.features.len() {
            return Err(data_err(format!(
                "{} feature columns, but the model takes {} ({})",
                table.width(),
                meta.features.len(),
                meta.features.join(", ")
            )));
        }
        let unknown: Vec<String> = table
            .class_names
            .iter()
            .filter(|c| !meta.classes.contains(c))
            .map(|c| format!("`{c}`"))
            .collect();
        if !unknown.is_empty() {
            return Err(data_err(format!(
                "labels the model was not trained on: {}; it knows {}",
                unknown.join(", "),
                meta.classes.join(", ")
            )));
        }
        let labels: Vec<usize> = table
            .labels
            .iter()
            .map(|&l| {
                meta.classes
                    .iter()
                    .position(|c| *c == table.class_names[l])
                    .unwrap_or(0)
            })
            .collect();
        let logits = self.logits(&table.features)?;
        Ok(Evaluation::from_logits(&logits, &labels, &meta.classes))
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
            .map(|p| format!("{}\t{:.4}\n", p.species, p.probability))
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
                    json!({"species": p.species, "probability": p.probability, "probabilities": probs})
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
                let row = [p.species.clone(), p.probability.to_string()]
                    .into_iter()
                    .chain(p.probabilities.iter().map(f32::to_string));
                w.write_record(row).map_err(|e| csv_err(&e))?;
            }
            String::from_utf8_lossy(&w.into_inner().map_err(|e| csv_err(&e))?).into_owned()
        }
    })
}
