//! The recipe: every choice of how a model is built and fitted, as one versioned unit.
//!
//! A [`Recipe`] says how raw columns become inputs ([`FeatureRecipe`]), which network is built
//! ([`NetworkRecipe`]), how it is fitted ([`FittingRecipe`]) and how many networks make the
//! model ([`EnsembleRecipe`]). It is made from the configuration (`TrainConfig::recipe`) and
//! checked ([`Recipe::check`]) before any data is read, recorded whole in `model.json`, and read
//! back from there by everything that rebuilds or audits a model. Its `name` and `version` say
//! which recipe it is: a recipe whose meaning changes gets a new version, so a model directory
//! always says how it was made.

use serde::{Deserialize, Serialize};

/// The recipe this program builds: an MLP on one-hot and standardised inputs.
pub const RECIPE_NAME: &str = "mlp";
/// The version of [`RECIPE_NAME`] this program builds.
///
/// - Version 1: what every model directory before format 3 was made with; a category column of
///   more levels than `max_categories` was refused.
/// - Version 2: a category column of any number of levels is encoded (its most frequent
///   `max_categories` levels seen at least twice get an input each, the rest one shared input),
///   and a run takes at most `max_steps` optimiser steps.
pub const RECIPE_VERSION: u32 = 2;
/// Every version of [`RECIPE_NAME`] this program reads.
pub const READABLE_RECIPE_VERSIONS: [u32; 2] = [1, 2];

/// Most hidden layers a network may have.
pub const MAX_LAYERS: usize = 64;
/// Widest hidden layer.
pub const MAX_WIDTH: usize = 65_536;
/// Most epochs a run may ask for.
pub const MAX_EPOCHS: usize = 10_000_000;
/// Most networks in one model.
pub const MAX_MEMBERS: usize = 64;

/// What the model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// A class out of the label's values.
    #[default]
    Classification,
    /// A number.
    Regression,
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Task::Classification => "classification",
            Task::Regression => "regression",
        })
    }
}

/// How missing numbers are filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Impute {
    /// The training rows' mean.
    #[default]
    Mean,
    /// The training rows' median.
    Median,
    /// `preprocess.fill_value`.
    Constant,
}

/// The loss a regression model is trained with (on the standardised target).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RegressionLoss {
    /// Mean squared error.
    #[default]
    Mse,
    /// Huber loss with `training.huber_delta` (in standard deviations of the target).
    Huber,
}

/// Hidden-layer activation function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// max(0, x)
    #[default]
    Relu,
    /// Gaussian error linear unit.
    Gelu,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid.
    Sigmoid,
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Activation::Relu => "relu",
            Activation::Gelu => "gelu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
        })
    }
}

/// How numeric inputs are scaled before the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NumericScaling {
    /// `(x - mean) / std` of the training rows (a constant column keeps a deviation of 1).
    #[default]
    Standard,
    /// `(x - median) / IQR` of the training rows (the deviation where the inter-quartile range
    /// is 0, then 1), then smoothly clipped, `x / sqrt(1 + (x / 3)^2)`, so an outlier cannot
    /// dominate: RealMLP's numeric preprocessing.
    Robust,
}

/// How a categorical column becomes inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CategoryEncoding {
    /// One 0/1 input per level seen in training; unseen levels are all zeros.
    #[default]
    OneHot,
}

/// How raw columns become the network's inputs (fitted on the training rows only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureRecipe {
    /// Scaling of numeric inputs.
    pub numeric: NumericScaling,
    /// How a missing number is filled in.
    pub impute: Impute,
    /// The value used with `impute = "constant"`.
    pub fill_value: f64,
    /// A 0/1 "was missing" input beside each numeric column with missing training values.
    pub missing_indicators: bool,
    /// Encoding of categorical columns.
    pub categories: CategoryEncoding,
    /// Most distinct values a categorical column may have.
    pub max_categories: usize,
}

/// The network each member of the model is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkRecipe {
    /// Width of each hidden layer, input side first.
    pub hidden: Vec<usize>,
    /// Activation after each hidden layer.
    pub activation: Activation,
    /// Dropout probability after each hidden activation (training only), in [0, 1).
    pub dropout: f64,
}

/// The optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Optimizer {
    /// Adam, with an L2 penalty added to the gradients.
    Adam {
        /// The penalty's weight (0: none).
        weight_decay: f64,
    },
}

/// How the learning rate changes over the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// The same rate for every step.
    #[default]
    Constant,
}

/// The loss a model is fitted with, and scored with wherever a loss is reported (training,
/// `evaluate`, cross-validation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Loss {
    /// Cross-entropy of the softmax of the logits (classification).
    CrossEntropy,
    /// Mean squared error of the standardised target (regression).
    SquaredError,
    /// Huber loss of the standardised target (regression).
    Huber {
        /// The threshold, in standard deviations of the target.
        delta: f64,
    },
}

impl std::fmt::Display for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Loss::CrossEntropy => f.write_str("cross-entropy"),
            Loss::SquaredError => f.write_str("squared error"),
            Loss::Huber { delta } => write!(f, "huber (delta {delta})"),
        }
    }
}

impl Loss {
    /// The loss of one standardised residual `predicted - target` (regression losses; 0 for
    /// cross-entropy, which is not a function of a residual).
    pub fn of_residual(self, r: f64) -> f64 {
        match self {
            Loss::SquaredError => r * r,
            Loss::Huber { delta } if r.abs() <= delta => 0.5 * r * r,
            Loss::Huber { delta } => delta * (r.abs() - 0.5 * delta),
            Loss::CrossEntropy => 0.0,
        }
    }
}

/// How the network is fitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FittingRecipe {
    /// The optimiser.
    pub optimizer: Optimizer,
    /// Its step size.
    pub learning_rate: f64,
    /// How the step size changes.
    pub schedule: Schedule,
    /// Passes over the training rows (at most: see `max_steps`).
    pub epochs: usize,
    /// The most optimiser steps of a run: a table of many batches gets fewer epochs. Version 1
    /// had no such bound.
    #[serde(default = "unbounded")]
    pub max_steps: usize,
    /// Rows per step; `None` is full batch.
    pub batch_size: Option<usize>,
    /// Stop after this many epochs without a better validation loss (and keep the best epoch);
    /// `None` is off.
    pub early_stopping_patience: Option<usize>,
    /// Fraction of the training split held out to watch for early stopping.
    pub validation_fraction: f64,
    /// The loss of a regression model.
    pub regression_loss: RegressionLoss,
    /// Huber's threshold, in standard deviations of the target.
    pub huber_delta: f64,
    /// Seeds the shuffling, the initial weights and dropout.
    pub seed: u64,
}

impl FittingRecipe {
    /// The loss a model for `task` is fitted and scored with.
    pub fn loss(&self, task: Task) -> Loss {
        match (task, self.regression_loss) {
            (Task::Classification, _) => Loss::CrossEntropy,
            (Task::Regression, RegressionLoss::Mse) => Loss::SquaredError,
            (Task::Regression, RegressionLoss::Huber) => Loss::Huber {
                delta: self.huber_delta,
            },
        }
    }
}

fn unbounded() -> usize {
    usize::MAX
}

/// How many networks make the model, and how their answers are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleRecipe {
    /// Networks trained; their probabilities (or numbers) are averaged.
    pub members: usize,
}

impl Default for EnsembleRecipe {
    fn default() -> Self {
        Self { members: 1 }
    }
}

/// Every choice of how a model is built and fitted (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Which recipe: [`RECIPE_NAME`].
    pub name: String,
    /// Its version: [`RECIPE_VERSION`] for what this program builds.
    pub version: u32,
    /// Raw columns to inputs.
    pub features: FeatureRecipe,
    /// The network.
    pub network: NetworkRecipe,
    /// The fitting.
    pub fitting: FittingRecipe,
    /// The networks' number.
    pub ensemble: EnsembleRecipe,
}

/// A value of a recipe that cannot be used: its key (as in the configuration file), the value
/// and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}` = {value}: {reason}")]
pub struct RecipeError {
    /// The dotted configuration key.
    pub key: &'static str,
    /// The value as given.
    pub value: String,
    /// Why it is refused and what would be accepted.
    pub reason: String,
}

impl Recipe {
    /// Checks every choice (linfa's `ParamGuard`: a recipe that passes can be built and fitted);
    /// the first bad one is named by its configuration key.
    pub fn check(&self) -> Result<&Self, RecipeError> {
        let bad = |key: &'static str, value: String, reason: &str| RecipeError {
            key,
            value,
            reason: reason.to_string(),
        };
        if self.name != RECIPE_NAME || !READABLE_RECIPE_VERSIONS.contains(&self.version) {
            return Err(bad(
                "recipe",
                format!("{} version {}", self.name, self.version),
                &format!(
                    "this iris-trainer builds `{RECIPE_NAME}` versions \
                     {READABLE_RECIPE_VERSIONS:?}; use a matching iris-trainer"
                ),
            ));
        }
        let f = &self.features;
        if f.max_categories == 0 {
            return Err(bad(
                "preprocess.max_categories",
                "0".into(),
                "must be at least 1, e.g. 100",
            ));
        }
        if !f.fill_value.is_finite() {
            return Err(bad(
                "preprocess.fill_value",
                f.fill_value.to_string(),
                "must be a finite number",
            ));
        }
        let t = &self.fitting;
        if !(t.huber_delta.is_finite() && t.huber_delta > 0.0) {
            return Err(bad(
                "training.huber_delta",
                t.huber_delta.to_string(),
                "must be a positive number, e.g. 1.0",
            ));
        }
        let n = &self.network;
        if n.hidden.is_empty() {
            return Err(bad(
                "model.hidden",
                "[]".into(),
                "needs at least one hidden layer width, e.g. [16]",
            ));
        }
        if n.hidden.len() > MAX_LAYERS {
            return Err(bad(
                "model.hidden",
                format!("{} layers", n.hidden.len()),
                &format!("at most {MAX_LAYERS} hidden layers are supported"),
            ));
        }
        if let Some(w) = n.hidden.iter().find(|&&w| w == 0 || w > MAX_WIDTH) {
            return Err(bad(
                "model.hidden",
                format!("{:?}", n.hidden),
                &format!("each width must be between 1 and {MAX_WIDTH}, got {w}"),
            ));
        }
        if !(n.dropout.is_finite() && (0.0..1.0).contains(&n.dropout)) {
            return Err(bad(
                "model.dropout",
                n.dropout.to_string(),
                "must be at least 0 and below 1",
            ));
        }
        if t.epochs == 0 || t.epochs > MAX_EPOCHS {
            return Err(bad(
                "training.epochs",
                t.epochs.to_string(),
                &format!("must be between 1 and {MAX_EPOCHS}"),
            ));
        }
        if t.max_steps == 0 {
            return Err(bad(
                "training.max_steps",
                t.max_steps.to_string(),
                "must be at least 1",
            ));
        }
        if t.batch_size == Some(0) {
            return Err(bad(
                "training.batch_size",
                "0".into(),
                "must be at least 1; remove the key for full-batch training",
            ));
        }
        if !(t.learning_rate.is_finite() && t.learning_rate > 0.0) {
            return Err(bad(
                "training.learning_rate",
                t.learning_rate.to_string(),
                "must be a positive number, e.g. 0.01",
            ));
        }
        let Optimizer::Adam { weight_decay } = t.optimizer;
        if !(weight_decay.is_finite() && weight_decay >= 0.0) {
            return Err(bad(
                "training.weight_decay",
                weight_decay.to_string(),
                "must be zero or a positive number",
            ));
        }
        if t.early_stopping_patience == Some(0) {
            return Err(bad(
                "training.early_stopping_patience",
                "0".into(),
                "must be at least 1; remove the key to turn early stopping off",
            ));
        }
        let v = t.validation_fraction;
        if !(v.is_finite() && v > 0.0 && v < 1.0) {
            return Err(bad(
                "training.validation_fraction",
                v.to_string(),
                "must be between 0 and 1 (exclusive), e.g. 0.1",
            ));
        }
        let m = self.ensemble.members;
        if m == 0 || m > MAX_MEMBERS {
            return Err(bad(
                "ensemble.members",
                m.to_string(),
                &format!("must be between 1 and {MAX_MEMBERS}"),
            ));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe() -> Recipe {
        Recipe {
            name: RECIPE_NAME.into(),
            version: RECIPE_VERSION,
            features: FeatureRecipe {
                numeric: NumericScaling::Standard,
                impute: Impute::Mean,
                fill_value: 0.0,
                missing_indicators: false,
                categories: CategoryEncoding::OneHot,
                max_categories: 100,
            },
            network: NetworkRecipe {
                hidden: vec![16],
                activation: Activation::Relu,
                dropout: 0.0,
            },
            fitting: FittingRecipe {
                optimizer: Optimizer::Adam { weight_decay: 0.0 },
                learning_rate: 0.01,
                schedule: Schedule::Constant,
                epochs: 300,
                max_steps: 10_000,
                batch_size: None,
                early_stopping_patience: None,
                validation_fraction: 0.1,
                regression_loss: RegressionLoss::Huber,
                huber_delta: 1.5,
                seed: 42,
            },
            ensemble: EnsembleRecipe::default(),
        }
    }

    #[test]
    fn a_good_recipe_passes_and_round_trips_through_json() {
        let r = recipe();
        assert!(r.check().is_ok());
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Recipe>(&text).unwrap(), r);
    }

    #[test]
    fn bad_values_are_named_by_their_key() {
        let mut r = recipe();
        r.ensemble.members = 0;
        assert_eq!(r.check().unwrap_err().key, "ensemble.members");
        let mut r = recipe();
        r.version = 99;
        let e = r.check().unwrap_err();
        assert_eq!(e.key, "recipe");
        assert!(e.to_string().contains("mlp version 99"), "{e}");
        let mut r = recipe();
        r.network.dropout = 1.0;
        assert_eq!(r.check().unwrap_err().key, "model.dropout");
    }

    #[test]
    fn the_loss_follows_the_task() {
        let f = recipe().fitting;
        assert_eq!(f.loss(Task::Classification), Loss::CrossEntropy);
        assert_eq!(f.loss(Task::Regression), Loss::Huber { delta: 1.5 });
        let huber = Loss::Huber { delta: 1.0 };
        assert_eq!(huber.of_residual(0.5), 0.125);
        assert_eq!(huber.of_residual(-3.0), 2.5);
        assert_eq!(Loss::SquaredError.of_residual(-3.0), 9.0);
    }
}
