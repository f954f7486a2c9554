//! `model.json`: the model directory's versioned metadata schema, and the formats of the
//! other files that describe a run (`metrics.csv`, `model.txt`).
//!
//! The schema is a public format that users' scripts parse: fields are added, or
//! [`FORMAT_VERSION`] is bumped with a migration; an existing field never moves silently.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::backend::DeviceInfo;
use crate::config::TrainConfig;
use crate::data::Standardizer;
use crate::error::{Error, Result};
use crate::metrics::Evaluation;
use crate::model::MlpConfig;

/// The metadata format this program writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Largest model accepted from disk, in parameters (the record is about 4 bytes each).
pub const MAX_PARAMETERS: usize = 50_000_000;

/// Where the training data came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    /// A path, or `embedded:iris.csv`.
    pub source: String,
    /// SHA-256 of the file's bytes.
    pub sha256: String,
    /// Rows read.
    pub rows: usize,
    /// Rows per class, in class order.
    pub class_counts: Vec<usize>,
}

/// The record file's identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordInfo {
    /// File name inside the model directory.
    pub file: String,
    /// Its SHA-256.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// What training measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// Epochs run.
    pub epochs_run: usize,
    /// The epoch whose weights were kept.
    pub best_epoch: usize,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Scores on the whole training split.
    pub train: Evaluation,
    /// Scores on the test split.
    pub test: Evaluation,
}

/// `model.json`: everything needed to use and audit the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// See [`FORMAT_VERSION`].
    pub format_version: u32,
    /// `iris-trainer <version>`.
    pub created_by: String,
    /// RFC 3339 UTC time the model was saved.
    pub created_at: String,
    /// Backend and device it was trained on.
    pub device: DeviceInfo,
    /// The resolved configuration.
    pub config: TrainConfig,
    /// The architecture.
    pub model: MlpConfig,
    /// Trainable parameters.
    pub parameters: usize,
    /// Input feature names, in order.
    pub features: Vec<String>,
    /// The label column's name.
    pub label: String,
    /// Class names, in output order.
    pub classes: Vec<String>,
    /// Standardisation applied to inputs before the network.
    pub scaling: Standardizer,
    /// The training data.
    pub data: DataInfo,
    /// Row counts of the splits.
    pub split: SplitSizes,
    /// The seed of the split, the shuffling and the initial weights.
    pub seed: u64,
    /// Seconds spent in the training loop.
    pub duration_s: f64,
    /// Training and test scores.
    pub metrics: TrainingSummary,
    /// The record file.
    pub record: RecordInfo,
    /// Which point of a sweep this is, for models trained with `--sweep`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepInfo>,
}

impl Metadata {
    /// Checks that the metadata describes one consistent model, so it is safe to build.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let m = &self.model;
        if m.inputs == 0 || m.outputs < 2 || m.hidden.is_empty() || m.hidden.contains(&0) {
            return Err(format!(
                "architecture {:?} is not a usable network",
                m.widths()
            ));
        }
        if !(m.dropout.is_finite() && (0.0..1.0).contains(&m.dropout)) {
            return Err(format!("dropout {} is outside [0, 1)", m.dropout));
        }
        if m.num_params() > MAX_PARAMETERS || m.hidden.len() > 64 {
            return Err(format!(
                "architecture {:?} has {} parameters; at most {MAX_PARAMETERS} are accepted",
                m.widths(),
                m.num_params()
            ));
        }
        if self.parameters != m.num_params() {
            return Err(format!(
                "`parameters` is {}, but the architecture {:?} has {}",
                self.parameters,
                m.widths(),
                m.num_params()
            ));
        }
        if self.features.len() != m.inputs {
            return Err(format!(
                "{} feature names for {} model inputs",
                self.features.len(),
                m.inputs
            ));
        }
        if self.classes.len() != m.outputs {
            return Err(format!(
                "{} class names for {} model outputs",
                self.classes.len(),
                m.outputs
            ));
        }
        if self.scaling.mean.len() != m.inputs || self.scaling.std.len() != m.inputs {
            return Err(format!(
                "scaling has {} means and {} deviations for {} inputs",
                self.scaling.mean.len(),
                self.scaling.std.len(),
                m.inputs
            ));
        }
        if !self.scaling.mean.iter().all(|x| x.is_finite())
            || !self.scaling.std.iter().all(|s| s.is_finite() && *s > 0.0)
        {
            return Err("scaling holds non-finite or non-positive values".into());
        }
        for (i, c) in self.classes.iter().enumerate() {
            if self.classes[..i].contains(c) {
                return Err(format!("class `{c}` is listed twice"));
            }
        }
        for (i, f) in self.features.iter().enumerate() {
            if self.features[..i].contains(f) {
                return Err(format!("feature `{f}` is listed twice"));
            }
        }
        Ok(())
    }
}

/// Row counts of each split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitSizes {
    /// Rows the optimiser fitted on.
    pub train: usize,
    /// Rows held out from the training split to watch for early stopping.
    pub valid: usize,
    /// Held-out test rows.
    pub test: usize,
}

/// What one epoch measured; one row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (with dropout active).
    pub train_loss: f64,
    /// Training accuracy over the epoch's batches.
    pub train_accuracy: f64,
    /// Validation loss (only with early stopping).
    pub valid_loss: Option<f64>,
    /// Validation accuracy (only with early stopping).
    pub valid_accuracy: Option<f64>,
    /// Test loss after the epoch (reported, never used for decisions).
    pub test_loss: f64,
    /// Test accuracy after the epoch.
    pub test_accuracy: f64,
}

/// Which point of a sweep a model is; recorded in its `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepInfo {
    /// This point's index.
    pub index: usize,
    /// Number of points in the sweep.
    pub points: usize,
    /// The overrides this point applied, by dotted key.
    pub overrides: BTreeMap<String, serde_json::Value>,
}

/// `metrics.csv`: one row per epoch, with a header.
pub fn history_csv(history: &[EpochStats]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in history {
        w.serialize(row)
            .map_err(|e| Error::Internal(format!("formatting metrics.csv: {e}")))?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::Internal(format!("formatting metrics.csv: {e}")))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

impl Metadata {
    /// A short human-readable description (`model.txt`, `iris-trainer info`).
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let widths: Vec<String> = self.model.widths().iter().map(usize::to_string).collect();
        let _ = writeln!(s, "{} model, saved {}", self.created_by, self.created_at);
        let _ = writeln!(
            s,
            "network:   MLP {} ({} activation, dropout {}), {} parameters",
            widths.join("-"),
            self.model.activation,
            self.model.dropout,
            self.parameters
        );
        let _ = writeln!(s, "trained:   {}", self.device);
        let _ = writeln!(
            s,
            "data:      {} ({} rows; split {} train, {} validation, {} test; seed {})",
            self.data.source,
            self.data.rows,
            self.split.train,
            self.split.valid,
            self.split.test,
            self.seed
        );
        let _ = writeln!(s, "features:  {}", self.features.join(", "));
        let _ = writeln!(s, "label:     {} ({})", self.label, self.classes.join(", "));
        let _ = writeln!(
            s,
            "training:  {} epochs{}, learning rate {}, batch {}, {:.3}s",
            self.metrics.epochs_run,
            if self.metrics.stopped_early {
                format!(" (stopped early; best epoch {})", self.metrics.best_epoch)
            } else {
                String::new()
            },
            self.config.training.learning_rate,
            self.config
                .training
                .batch_size
                .map_or("full".to_string(), |b| b.to_string()),
            self.duration_s
        );
        let _ = writeln!(
            s,
            "train:     accuracy {:.4}, loss {:.4}",
            self.metrics.train.accuracy, self.metrics.train.loss
        );
        let report = self.metrics.test.report(&self.classes);
        let mut lines = report.trim_end().lines();
        let _ = writeln!(s, "test:      {}", lines.next().unwrap_or_default());
        for line in lines {
            let _ = writeln!(s, "{}", format!("           {line}").trim_end());
        }
        let _ = writeln!(
            s,
            "record:    {} (sha256 {})",
            self.record.file, self.record.sha256
        );
        s
    }
}
