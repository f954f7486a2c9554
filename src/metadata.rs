//! `model.json`: the model directory's versioned metadata schema, and the formats of the
//! other files that describe a run (`metrics.csv`, `model.txt`).
//!
//! The schema is a public format that users' scripts parse: fields are added, or
//! [`FORMAT_VERSION`] is bumped with a migration; an existing field never moves silently.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::backend::DeviceInfo;
use crate::config::DEFAULT_MISSING_VALUES;
use crate::config::TrainConfig;
use crate::data::{
    Encoder, Encoding, EncodingError, Preprocessor, Standardizer, TargetScaling, Task,
};
use crate::error::{Error, Result};
use crate::metrics::Scores;
use crate::model::{EnsembleConfig, MlpConfig};
use crate::recipe::{Loss, Optimizer, Recipe, RecipeError, Schedule};

/// The metadata format this program writes.
///
/// Version 2 added `task`, `preprocess` (how raw columns become inputs), `target_scaling`
/// (regression), `data.dropped_rows`, and regression scores (`r2`, `rmse`, `mae`) in `metrics`;
/// in version 2 `features` names the raw feature columns, which for an all-numeric table are
/// the inputs, as in version 1.
///
/// Version 3 records the [`Recipe`] whole (`recipe`), gathers what was fitted on the training
/// rows into one `preprocessing` (`encoding`, `scaling`, `target_scaling`: version 2's
/// `preprocess`, `scaling` and `target_scaling`), and describes the model as an ensemble
/// (`model.members`; the record holds that many networks). Versions 1 and 2 load as recipe
/// `mlp` version 1 with one network.
pub const FORMAT_VERSION: u32 = 3;
/// Every metadata format this program reads (version 1 is read as an all-numeric classifier).
pub const READABLE_VERSIONS: [u32; 3] = [1, 2, 3];
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
    /// Rows per class, in class order (empty for regression).
    pub class_counts: Vec<usize>,
    /// Rows left out because their label was missing.
    #[serde(default)]
    pub dropped_rows: usize,
}

/// A file's identity: the record's, or that of another file of the model directory.
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
    pub train: Scores,
    /// Scores on the test split.
    pub test: Scores,
    /// Scores of the kept weights on the validation rows, when some were held out (early
    /// stopping, or a sweep point, which is ranked on them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<Scores>,
    /// Cross-validated scores on the training split, for models trained with `--folds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_validation: Option<CrossValidation>,
}

/// One fold of a cross-validation: a model trained on the other folds, scored on this one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldResult {
    /// 1-based fold number.
    pub fold: usize,
    /// Rows the optimiser fitted on.
    pub train_rows: usize,
    /// Rows of the other folds held out for early stopping (0 when it is off).
    pub valid_rows: usize,
    /// Rows of this fold, which the scores are measured on.
    pub held_out_rows: usize,
    /// Epochs run.
    pub epochs_run: usize,
    /// The task's headline metrics on the held-out rows (see [`Scores::named`]).
    pub scores: BTreeMap<String, f64>,
}

/// K-fold cross-validation on the training split (the test split left out): each fold's
/// scores, and their mean and standard deviation per metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossValidation {
    /// Number of folds.
    pub k: usize,
    /// The seed that made the folds (with the test split: `data.split_seed`, or
    /// `training.seed`).
    pub seed: u64,
    /// Whether folds keep each class's share (classification) or are drawn at random.
    pub stratified: bool,
    /// Training-split rows dealt into the folds.
    pub rows: usize,
    /// Test-split rows left out of every fold.
    pub test_rows_left_out: usize,
    /// One entry per fold.
    pub folds: Vec<FoldResult>,
    /// Mean over the folds, per metric.
    pub mean: BTreeMap<String, f64>,
    /// Population standard deviation over the folds (as scikit-learn's `cv_results_`), per
    /// metric.
    pub std: BTreeMap<String, f64>,
}

impl CrossValidation {
    /// Summarises `folds`: their mean and standard deviation per metric.
    pub fn new(
        seed: u64,
        stratified: bool,
        rows: usize,
        test_rows_left_out: usize,
        folds: Vec<FoldResult>,
    ) -> Self {
        let mut mean = BTreeMap::new();
        let mut std = BTreeMap::new();
        let n = folds.len().max(1) as f64;
        if let Some(first) = folds.first() {
            for key in first.scores.keys() {
                let values: Vec<f64> = folds
                    .iter()
                    .map(|f| f.scores.get(key).copied().unwrap_or(f64::NAN))
                    .collect();
                let m = values.iter().sum::<f64>() / n;
                let var = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n;
                mean.insert(key.clone(), m);
                std.insert(key.clone(), var.sqrt());
            }
        }
        CrossValidation {
            k: folds.len(),
            seed,
            stratified,
            rows,
            test_rows_left_out,
            folds,
            mean,
            std,
        }
    }

    /// A plain-text table: one line per fold, then the mean and standard deviation.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let keys: Vec<&String> = self.mean.keys().collect();
        let mut s = format!(
            "{}-fold cross-validation ({}, seed {}) on {} training rows; the {} test rows were left out\n",
            self.k,
            if self.stratified {
                "stratified"
            } else {
                "random folds"
            },
            self.seed,
            self.rows,
            self.test_rows_left_out
        );
        let _ = write!(
            s,
            "{:<6} {:>6} {:>9} {:>6}",
            "fold", "train", "held out", "epochs"
        );
        for k in &keys {
            let _ = write!(s, " {k:>9}");
        }
        s.push('\n');
        for f in &self.folds {
            let _ = write!(
                s,
                "{:<6} {:>6} {:>9} {:>6}",
                f.fold, f.train_rows, f.held_out_rows, f.epochs_run
            );
            for k in &keys {
                let _ = write!(s, " {:>9.4}", f.scores.get(*k).copied().unwrap_or(f64::NAN));
            }
            s.push('\n');
        }
        for (name, values) in [("mean", &self.mean), ("std", &self.std)] {
            let _ = write!(s, "{name:<6} {:>6} {:>9} {:>6}", "", "", "");
            for k in &keys {
                let _ = write!(s, " {:>9.4}", values.get(*k).copied().unwrap_or(f64::NAN));
            }
            s.push('\n');
        }
        s
    }
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
    /// How the model was built and fitted, whole.
    pub recipe: Recipe,
    /// The architecture: the networks' shape and their number.
    pub model: EnsembleConfig,
    /// Trainable parameters.
    pub parameters: usize,
    /// Feature column names, in input order.
    pub features: Vec<String>,
    /// The label column's name.
    pub label: String,
    /// Class names, in output order (empty for regression).
    pub classes: Vec<String>,
    /// Classification or regression.
    pub task: Task,
    /// What was fitted on the training rows to turn raw columns into inputs (and the target
    /// into what the network predicts).
    pub preprocessing: Preprocessing,
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
    /// The directory's other files that describe this model (`model.safetensors`, pictures),
    /// with their checksums; empty for directories written before they existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<RecordInfo>,
    /// Which point of a sweep this is, for models trained with `--sweep`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepInfo>,
}

/// What was fitted on the training rows: how raw columns become the network's inputs and, for a
/// regressor, how the target was standardised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocessing {
    /// Per column: imputation, categories, missing markers.
    pub encoding: Encoding,
    /// Standardisation applied to the encoded inputs before the network.
    pub scaling: Standardizer,
    /// A regression target's mean and deviation: the network predicts `(y - mean) / std`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_scaling: Option<TargetScaling>,
}

/// Why a `model.json` cannot describe a usable model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Inconsistent {
    /// The layers make no network.
    #[error("architecture {0:?} is not a usable network")]
    Architecture(Vec<usize>),
    /// Dropout outside its range.
    #[error("dropout {0} is outside [0, 1)")]
    Dropout(f64),
    /// Too large to load.
    #[error(
        "architecture {widths:?} has {parameters} parameters; at most {MAX_PARAMETERS} are accepted"
    )]
    TooLarge {
        /// Layer widths.
        widths: Vec<usize>,
        /// Their parameters.
        parameters: usize,
    },
    /// `parameters` disagrees with the architecture.
    #[error("`parameters` is {given}, but the architecture {widths:?} has {actual}")]
    Parameters {
        /// As written.
        given: usize,
        /// Layer widths.
        widths: Vec<usize>,
        /// The architecture's count.
        actual: usize,
    },
    /// The networks' number.
    #[error("`model.members` is {0}; a model has 1 to {max} networks", max = crate::recipe::MAX_MEMBERS)]
    Members(usize),
    /// The recipe cannot be built.
    #[error("`recipe`: {0}")]
    Recipe(#[from] RecipeError),
    /// The encoding is unusable.
    #[error(transparent)]
    Encoding(#[from] EncodingError),
    /// The encoding and the network disagree on the inputs.
    #[error("`preprocess` makes {made} inputs for {inputs} model inputs")]
    Inputs {
        /// Inputs the encoding makes.
        made: usize,
        /// Inputs the network takes.
        inputs: usize,
    },
    /// The encoding and `features` disagree.
    #[error("`preprocess` and `features` name different columns")]
    Features,
    /// Classes and outputs disagree.
    #[error("{classes} class names for {outputs} model outputs")]
    Classes {
        /// Class names.
        classes: usize,
        /// Outputs.
        outputs: usize,
    },
    /// A regressor with classes or several outputs.
    #[error(
        "a regression model has one output and no classes, not {outputs} outputs and {classes} classes"
    )]
    Regressor {
        /// Outputs.
        outputs: usize,
        /// Class names.
        classes: usize,
    },
    /// A regressor without its target scaling.
    #[error("a regression model needs a finite `target_scaling`")]
    TargetScaling,
    /// Scaling of the wrong length.
    #[error("scaling has {means} means and {stds} deviations for {inputs} inputs")]
    ScalingLength {
        /// Means.
        means: usize,
        /// Deviations.
        stds: usize,
        /// Inputs.
        inputs: usize,
    },
    /// Scaling with unusable values.
    #[error("scaling holds non-finite or non-positive values")]
    ScalingValues,
    /// A class twice.
    #[error("class `{0}` is listed twice")]
    DuplicateClass(String),
    /// A feature twice.
    #[error("feature `{0}` is listed twice")]
    DuplicateFeature(String),
}

impl Metadata {
    /// Checks that the metadata describes one consistent model, so it is safe to build.
    pub fn validate(&self) -> std::result::Result<(), Inconsistent> {
        let m = &self.model;
        let min_outputs = match self.task {
            Task::Classification => 2,
            Task::Regression => 1,
        };
        if m.inputs == 0 || m.outputs < min_outputs || m.hidden.is_empty() || m.hidden.contains(&0)
        {
            return Err(Inconsistent::Architecture(m.widths()));
        }
        if !(m.dropout.is_finite() && (0.0..1.0).contains(&m.dropout)) {
            return Err(Inconsistent::Dropout(m.dropout));
        }
        if m.members == 0 || m.members > crate::recipe::MAX_MEMBERS {
            return Err(Inconsistent::Members(m.members));
        }
        if m.num_params() > MAX_PARAMETERS || m.hidden.len() > 64 {
            return Err(Inconsistent::TooLarge {
                widths: m.widths(),
                parameters: m.num_params(),
            });
        }
        if self.parameters != m.num_params() {
            return Err(Inconsistent::Parameters {
                given: self.parameters,
                widths: m.widths(),
                actual: m.num_params(),
            });
        }
        self.recipe.check()?;
        let p = &self.preprocessing;
        p.encoding.validate()?;
        if p.encoding.width() != m.inputs {
            return Err(Inconsistent::Inputs {
                made: p.encoding.width(),
                inputs: m.inputs,
            });
        }
        if p.encoding.feature_names() != self.features {
            return Err(Inconsistent::Features);
        }
        match self.task {
            Task::Classification if self.classes.len() != m.outputs => {
                return Err(Inconsistent::Classes {
                    classes: self.classes.len(),
                    outputs: m.outputs,
                });
            }
            Task::Regression => {
                if m.outputs != 1 || !self.classes.is_empty() {
                    return Err(Inconsistent::Regressor {
                        outputs: m.outputs,
                        classes: self.classes.len(),
                    });
                }
                match p.target_scaling {
                    Some(t) if t.mean.is_finite() && t.std.is_finite() && t.std > 0.0 => {}
                    _ => return Err(Inconsistent::TargetScaling),
                }
            }
            Task::Classification => {}
        }
        if p.scaling.mean.len() != m.inputs || p.scaling.std.len() != m.inputs {
            return Err(Inconsistent::ScalingLength {
                means: p.scaling.mean.len(),
                stds: p.scaling.std.len(),
                inputs: m.inputs,
            });
        }
        if !p.scaling.mean.iter().all(|x| x.is_finite())
            || !p.scaling.std.iter().all(|s| s.is_finite() && *s > 0.0)
        {
            return Err(Inconsistent::ScalingValues);
        }
        for (i, c) in self.classes.iter().enumerate() {
            if self.classes[..i].contains(c) {
                return Err(Inconsistent::DuplicateClass(c.clone()));
            }
        }
        for (i, f) in self.features.iter().enumerate() {
            if self.features[..i].contains(f) {
                return Err(Inconsistent::DuplicateFeature(f.clone()));
            }
        }
        Ok(())
    }

    /// The transform from raw columns to the network's inputs.
    pub fn preprocessor(&self) -> Preprocessor {
        Preprocessor {
            encoding: self.preprocessing.encoding.clone(),
            scaling: self.preprocessing.scaling.clone(),
        }
    }

    /// A regression target's scaling (identity for a classifier).
    pub fn target_scaling(&self) -> TargetScaling {
        self.preprocessing.target_scaling.unwrap_or(TargetScaling {
            mean: 0.0,
            std: 1.0,
        })
    }

    /// The loss the model was fitted with, which every score of it reports.
    pub fn loss(&self) -> Loss {
        self.recipe.fitting.loss(self.task)
    }

    /// Parses `model.json` of any readable format version (checked by the caller), bringing
    /// older formats to this one: they were made by recipe `mlp` version 1, with one network.
    pub fn from_json(bytes: &[u8], format_version: u32) -> serde_json::Result<Self> {
        if format_version >= 3 {
            return serde_json::from_slice(bytes);
        }
        let old: legacy::Metadata = serde_json::from_slice(bytes)?;
        Ok(old.into_current())
    }
}

/// `model.json` of formats 1 and 2, read to be brought to the current format.
mod legacy {
    use super::*;

    #[derive(Deserialize)]
    pub(super) struct Metadata {
        format_version: u32,
        created_by: String,
        created_at: String,
        device: DeviceInfo,
        config: TrainConfig,
        model: MlpConfig,
        parameters: usize,
        features: Vec<String>,
        label: String,
        classes: Vec<String>,
        scaling: Standardizer,
        #[serde(default)]
        task: Task,
        #[serde(default)]
        preprocess: Option<Encoding>,
        #[serde(default)]
        target_scaling: Option<TargetScaling>,
        data: DataInfo,
        split: SplitSizes,
        seed: u64,
        duration_s: f64,
        metrics: TrainingSummary,
        record: RecordInfo,
        #[serde(default)]
        files: Vec<RecordInfo>,
        #[serde(default)]
        sweep: Option<SweepInfo>,
    }

    impl Metadata {
        pub(super) fn into_current(self) -> super::Metadata {
            // A version-1 model reads every feature as a number, a missing one filled with its
            // training mean.
            let encoding = self.preprocess.unwrap_or_else(|| Encoding {
                columns: self
                    .features
                    .iter()
                    .zip(&self.scaling.mean)
                    .map(|(name, &mean)| Encoder::Numeric {
                        name: name.clone(),
                        fill: mean,
                        indicator: false,
                    })
                    .collect(),
                missing_values: DEFAULT_MISSING_VALUES.map(String::from).to_vec(),
                source_columns: Vec::new(),
            });
            super::Metadata {
                format_version: self.format_version,
                created_by: self.created_by,
                created_at: self.created_at,
                device: self.device,
                // Written before recipes had versions: what version 1 built.
                recipe: Recipe {
                    version: 1,
                    ..self.config.recipe()
                },
                config: self.config,
                model: EnsembleConfig::new(&self.model, 1),
                parameters: self.parameters,
                features: self.features,
                label: self.label,
                classes: self.classes,
                task: self.task,
                preprocessing: Preprocessing {
                    encoding,
                    scaling: self.scaling,
                    target_scaling: self.target_scaling,
                },
                data: self.data,
                split: self.split,
                seed: self.seed,
                duration_s: self.duration_s,
                metrics: self.metrics,
                record: self.record,
                files: self.files,
                sweep: self.sweep,
            }
        }
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
    /// Regression: R² of the epoch's training batches (accuracies are then NaN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_r2: Option<f64>,
    /// Regression: validation R² (with early stopping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_r2: Option<f64>,
    /// Regression: test R².
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_r2: Option<f64>,
    /// Regression: test root mean squared error, in the target's units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_rmse: Option<f64>,
    /// Regression: test mean absolute error, in the target's units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_mae: Option<f64>,
}

/// A classifier's row of `metrics.csv` (the version-1 columns).
#[derive(Serialize)]
struct ClassificationRow {
    epoch: usize,
    train_loss: f64,
    train_accuracy: f64,
    valid_loss: Option<f64>,
    valid_accuracy: Option<f64>,
    test_loss: f64,
    test_accuracy: f64,
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

/// `metrics.csv`: one row per epoch, with a header. A classifier's columns are
/// `epoch,train_loss,train_accuracy,valid_loss,valid_accuracy,test_loss,test_accuracy`; a
/// regressor's `epoch,train_loss,train_r2,valid_loss,valid_r2,test_loss,test_r2,test_rmse,test_mae`.
pub fn history_csv(history: &[EpochStats], task: Task) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| Error::Internal(format!("formatting metrics.csv: {e}"));
    let opt = |v: Option<f64>| v.map_or(String::new(), |x| x.to_string());
    match task {
        Task::Classification => {
            for row in history {
                w.serialize(ClassificationRow {
                    epoch: row.epoch,
                    train_loss: row.train_loss,
                    train_accuracy: row.train_accuracy,
                    valid_loss: row.valid_loss,
                    valid_accuracy: row.valid_accuracy,
                    test_loss: row.test_loss,
                    test_accuracy: row.test_accuracy,
                })
                .map_err(err)?;
            }
        }
        Task::Regression => {
            w.write_record([
                "epoch",
                "train_loss",
                "train_r2",
                "valid_loss",
                "valid_r2",
                "test_loss",
                "test_r2",
                "test_rmse",
                "test_mae",
            ])
            .map_err(err)?;
            for r in history {
                w.write_record([
                    r.epoch.to_string(),
                    r.train_loss.to_string(),
                    opt(r.train_r2),
                    opt(r.valid_loss),
                    opt(r.valid_r2),
                    r.test_loss.to_string(),
                    opt(r.test_r2),
                    opt(r.test_rmse),
                    opt(r.test_mae),
                ])
                .map_err(err)?;
            }
        }
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
        let Optimizer::Adam { weight_decay } = self.recipe.fitting.optimizer;
        let _ = writeln!(
            s,
            "recipe:    {} v{}: {} loss, adam (weight decay {weight_decay}), {} learning rate; {} \
             network{} (model.json format {})",
            self.recipe.name,
            self.recipe.version,
            self.loss(),
            match self.recipe.fitting.schedule {
                Schedule::Constant => "constant",
            },
            self.model.members,
            if self.model.members == 1 { "" } else { "s" },
            self.format_version
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
        let features: Vec<String> = self
            .preprocessing
            .encoding
            .columns
            .iter()
            .map(|c| format!("{} ({})", c.name(), c.kind()))
            .collect();
        let _ = writeln!(s, "features:  {}", features.join(", "));
        match self.task {
            Task::Classification => {
                let _ = writeln!(s, "label:     {} ({})", self.label, self.classes.join(", "));
            }
            Task::Regression => {
                let _ = writeln!(s, "label:     {} (regression)", self.label);
            }
        }
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
        let _ = match &self.metrics.train {
            Scores::Classification(e) => writeln!(
                s,
                "train:     accuracy {:.4}, loss {:.4}",
                e.accuracy, e.loss
            ),
            Scores::Regression(e) => writeln!(
                s,
                "train:     r2 {:.4}, rmse {:.4}, mae {:.4}, loss {:.4}",
                e.r2, e.rmse, e.mae, e.loss
            ),
        };
        if let Some(v) = &self.metrics.valid {
            let named: Vec<String> = v
                .named()
                .iter()
                .map(|(k, x)| format!("{k} {x:.4}"))
                .collect();
            let _ = writeln!(s, "valid:     {} ({} rows)", named.join(", "), v.rows());
        }
        if let Some(cv) = &self.metrics.cross_validation {
            let named: Vec<String> = cv
                .mean
                .iter()
                .map(|(k, m)| {
                    let sd = cv.std.get(k).copied().unwrap_or(f64::NAN);
                    format!("{k} {m:.4} ± {sd:.4}")
                })
                .collect();
            let _ = writeln!(
                s,
                "cv:        {} ({} folds, seed {})",
                named.join(", "),
                cv.k,
                cv.seed
            );
        }
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
        let named = |ext: &[&str]| -> Vec<&str> {
            self.files
                .iter()
                .map(|f| f.file.as_str())
                .filter(|f| ext.iter().any(|e| f.ends_with(e)))
                .collect()
        };
        for weights in named(&[".safetensors"]) {
            let _ = writeln!(s, "weights:   {weights} (PyTorch layout, for other tools)");
        }
        for graph in named(&[".onnx"]) {
            let _ = writeln!(
                s,
                "onnx:      {graph} (raw columns to answers, for ONNX runtimes)"
            );
        }
        let pictures = named(&[".svg", ".png"]);
        if !pictures.is_empty() {
            let _ = writeln!(s, "pictures:  {}", pictures.join(", "));
        }
        s
    }
}
