//! `Predictor`: a model directory loaded once, predicting batches of rows. Shared by the
//! `predict` and `evaluate` commands and the HTTP service.

use std::path::Path;

use burn::prelude::*;
use serde::Serialize;

use crate::artifact::{Metadata, ModelDir};
use crate::error::{Error, Result};
use crate::metrics::{argmax_rows, softmax_rows};
use crate::model::Mlp;
use crate::train::logits_of;

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
        let logits = logits_of(&self.model, x);
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
}
