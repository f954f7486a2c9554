//! The TOML configuration: schema with defaults, validation, command-line overrides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use crate::recipe::{Activation, Impute, NumericScaling, RegressionLoss, Task};
use crate::recipe::{
    CategoryEncoding, EnsembleRecipe, FeatureRecipe, FittingRecipe, MAX_EPOCHS, NetworkRecipe,
    Optimizer, RECIPE_NAME, RECIPE_VERSION, Recipe, Schedule,
};

/// Everything a training run needs to know, resolved from defaults, a TOML file and flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Where the data comes from and how it is split.
    pub data: DataConfig,
    /// The network's shape.
    pub model: ModelConfig,
    /// The optimiser and loop.
    pub training: TrainingConfig,
    /// Where the model directory goes.
    pub output: OutputConfig,
    /// How feature columns are turned into the network's inputs.
    pub preprocess: PreprocessConfig,
}

/// A column chosen by header name or by 0-based position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ColumnRef {
    /// 0-based column position.
    Index(usize),
    /// Column name from the header.
    Name(String),
}

impl std::fmt::Display for ColumnRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ColumnRef::Index(i) => write!(f, "column {i}"),
            ColumnRef::Name(n) => write!(f, "column `{n}`"),
        }
    }
}

/// How a feature column is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureType {
    /// A number: imputed, standardised.
    Numeric,
    /// Text values: one input per level seen in training (one-hot).
    Categorical,
    /// Two values (true/false, yes/no...): one 0/1 input.
    Boolean,
}

impl std::fmt::Display for FeatureType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FeatureType::Numeric => "numeric",
            FeatureType::Categorical => "categorical",
            FeatureType::Boolean => "boolean",
        })
    }
}

/// `[data]`: the table, its columns and the held-out split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// CSV (optionally gzip-compressed) or Parquet file; `None` trains on the Iris data
    /// embedded in the binary.
    pub path: Option<PathBuf>,
    /// Whether the first row is a header; `None` detects it.
    pub has_header: Option<bool>,
    /// The CSV field delimiter (`","`, `";"`, `"\t"` or `"tab"`, `"|"`); `None` detects comma,
    /// semicolon or tab.
    pub delimiter: Option<String>,
    /// The label column; `None` is the last column.
    pub label: Option<ColumnRef>,
    /// The feature columns; `None` is every column but the label and the ignored ones.
    pub features: Option<Vec<ColumnRef>>,
    /// Columns not used at all.
    pub ignore: Vec<ColumnRef>,
    /// Feature types by column name; columns not listed are inferred.
    pub types: BTreeMap<String, FeatureType>,
    /// Classification or regression; `None` infers it from the label.
    pub task: Option<Task>,
    /// Values that mean "missing" (compared after trimming, case-sensitively).
    pub missing_values: Vec<String>,
    /// Fraction held out for the test split (of each class, for classification), in (0, 1).
    pub test_fraction: f64,
    /// Seeds the test split, the validation split and cross-validation folds; `None` uses
    /// `training.seed`. A sweep sets it to its base seed, so that points which vary
    /// `training.seed` are still compared on the same rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_seed: Option<u64>,
}

/// The default `data.missing_values`.
pub const DEFAULT_MISSING_VALUES: [&str; 5] = ["", "NA", "NaN", "null", "?"];

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            path: None,
            has_header: None,
            delimiter: None,
            label: None,
            features: None,
            ignore: Vec::new(),
            types: BTreeMap::new(),
            task: None,
            missing_values: DEFAULT_MISSING_VALUES.map(String::from).to_vec(),
            test_fraction: 0.2,
            split_seed: None,
        }
    }
}

impl DataConfig {
    /// The delimiter byte `delimiter` names; `Err` with the reason when it names none.
    pub fn delimiter_byte(&self) -> std::result::Result<Option<u8>, BadDelimiter> {
        match self.delimiter.as_deref() {
            None => Ok(None),
            Some("tab" | "\t") => Ok(Some(b'\t')),
            Some(d) if d.len() == 1 && matches!(d.as_bytes()[0], b',' | b';' | b'\t' | b'|') => {
                Ok(Some(d.as_bytes()[0]))
            }
            Some(_) => Err(BadDelimiter),
        }
    }
}

/// A `data.delimiter` that is not one of the delimiters a table may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be \",\", \";\", \"\\t\" (or \"tab\") or \"|\"; remove the key to detect it")]
pub struct BadDelimiter;

/// `[preprocess]`: how feature columns become the network's inputs (fitted on the training
/// rows only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PreprocessConfig {
    /// How a missing number is filled in.
    pub impute: Impute,
    /// The value used with `impute = "constant"`.
    pub fill_value: f64,
    /// Adds a 0/1 input "was missing" for each numeric column with missing training values.
    pub missing_indicators: bool,
    /// Most distinct values a categorical column may have (each becomes one input).
    pub max_categories: usize,
    /// How numeric inputs are scaled: `standard` or `robust`.
    pub scaling: NumericScaling,
}

/// The default `preprocess.max_categories`.
pub const DEFAULT_MAX_CATEGORIES: usize = 100;

impl Default for PreprocessConfig {
    fn default() -> Self {
        Self {
            impute: Impute::Mean,
            fill_value: 0.0,
            missing_indicators: false,
            max_categories: DEFAULT_MAX_CATEGORIES,
            scaling: NumericScaling::Standard,
        }
    }
}

/// `[model]`: the MLP's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Width of each hidden layer, input side first.
    pub hidden: Vec<usize>,
    /// Activation after each hidden layer.
    pub activation: Activation,
    /// Dropout probability after each hidden activation, in [0, 1).
    pub dropout: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            hidden: vec![16],
            activation: Activation::Relu,
            dropout: 0.0,
        }
    }
}

/// `[training]`: the optimiser and the loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingConfig {
    /// Passes over the training split (at most: see `max_steps`).
    pub epochs: usize,
    /// The most optimiser steps of a run: a table of many batches gets fewer epochs.
    pub max_steps: usize,
    /// Rows per optimiser step; `None` is full batch.
    pub batch_size: Option<usize>,
    /// Adam's step size.
    pub learning_rate: f64,
    /// L2 penalty added to the gradients.
    pub weight_decay: f64,
    /// Seeds the split, the shuffling and the initial weights.
    pub seed: u64,
    /// Stop after this many epochs without improvement of the validation loss; `None` is off.
    pub early_stopping_patience: Option<usize>,
    /// Fraction of the training split held out to watch for early stopping.
    pub validation_fraction: f64,
    /// The loss of a regression model.
    pub regression_loss: RegressionLoss,
    /// Huber's threshold, in standard deviations of the target.
    pub huber_delta: f64,
    /// Save a checkpoint every this many epochs (and when interrupted); `None` is off.
    pub checkpoint_every: Option<usize>,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            epochs: 300,
            max_steps: 100_000,
            batch_size: None,
            learning_rate: 0.01,
            weight_decay: 0.0,
            seed: 42,
            early_stopping_patience: None,
            validation_fraction: 0.1,
            regression_loss: RegressionLoss::Mse,
            huber_delta: 1.0,
            checkpoint_every: None,
        }
    }
}

/// `[output]`: where the model directory is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// The model directory (created if needed).
    pub dir: PathBuf,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("artifacts"),
        }
    }
}

/// Command-line values that replace the matching config keys.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--data`
    pub data: Option<PathBuf>,
    /// `--out`
    pub out: Option<PathBuf>,
    /// `--epochs`
    pub epochs: Option<usize>,
    /// `--lr`
    pub learning_rate: Option<f64>,
    /// `--seed`
    pub seed: Option<u64>,
    /// `--batch-size`
    pub batch_size: Option<usize>,
    /// `--test-fraction`
    pub test_fraction: Option<f64>,
    /// `--hidden`
    pub hidden: Option<Vec<usize>>,
    /// `--patience`
    pub patience: Option<usize>,
    /// `--label`
    pub label: Option<String>,
    /// `--ignore`
    pub ignore: Option<Vec<String>>,
    /// `--task`
    pub task: Option<Task>,
    /// `--checkpoint-every`
    pub checkpoint_every: Option<usize>,
}

impl TrainConfig {
    /// The seed of the test split, the validation split and cross-validation folds:
    /// `data.split_seed`, or `training.seed` when that is not set.
    pub fn split_seed(&self) -> u64 {
        self.data.split_seed.unwrap_or(self.training.seed)
    }

    /// Parses TOML text; `origin` names where it came from in error messages.
    ///
    /// ```
    /// use iris_trainer::config::TrainConfig;
    ///
    /// let c = TrainConfig::from_toml_str("[training]\nepochs = 50\n", "example.toml").unwrap();
    /// assert_eq!(c.training.epochs, 50);
    /// assert_eq!(c.model.hidden, [16]); // every other key keeps its default
    ///
    /// let err = TrainConfig::from_toml_str("[training]\nepoch = 50\n", "example.toml").unwrap_err();
    /// assert!(err.to_string().contains("unknown field `epoch`"));
    /// ```
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::ConfigParse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })
    }

    /// Reads and parses a TOML file (not yet validated: apply overrides, then [`Self::validate`]).
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
        let origin = path.display().to_string();
        let text = String::from_utf8(bytes).map_err(|e| Error::ConfigParse {
            origin: origin.clone(),
            message: format!(
                "not UTF-8 text (invalid byte at offset {}); save the file as UTF-8",
                e.utf8_error().valid_up_to()
            ),
        })?;
        Self::from_toml_str(&text, &origin)
    }

    /// Replaces config keys with the command-line values that were given.
    pub fn apply(&mut self, o: &Overrides) {
        if let Some(v) = &o.data {
            self.data.path = Some(v.clone());
        }
        if let Some(v) = &o.out {
            self.output.dir = v.clone();
        }
        if let Some(v) = o.epochs {
            self.training.epochs = v;
        }
        if let Some(v) = o.learning_rate {
            self.training.learning_rate = v;
        }
        if let Some(v) = o.seed {
            self.training.seed = v;
        }
        if let Some(v) = o.batch_size {
            self.training.batch_size = Some(v);
        }
        if let Some(v) = o.test_fraction {
            self.data.test_fraction = v;
        }
        if let Some(v) = &o.hidden {
            self.model.hidden = v.clone();
        }
        if let Some(v) = o.patience {
            self.training.early_stopping_patience = Some(v);
        }
        if let Some(v) = &o.label {
            self.data.label = Some(ColumnRef::Name(v.clone()));
        }
        if let Some(v) = &o.ignore {
            self.data.ignore = v.iter().cloned().map(ColumnRef::Name).collect();
        }
        if let Some(v) = o.task {
            self.data.task = Some(v);
        }
        if let Some(v) = o.checkpoint_every {
            self.training.checkpoint_every = Some(v);
        }
    }

    /// The recipe these settings ask for: how raw columns become inputs, the network, its
    /// fitting and the number of networks. Checked by [`TrainConfig::validate`].
    pub fn recipe(&self) -> Recipe {
        let (p, m, t) = (&self.preprocess, &self.model, &self.training);
        Recipe {
            name: RECIPE_NAME.to_string(),
            version: RECIPE_VERSION,
            features: FeatureRecipe {
                numeric: p.scaling,
                impute: p.impute,
                fill_value: p.fill_value,
                missing_indicators: p.missing_indicators,
                categories: CategoryEncoding::OneHot,
                max_categories: p.max_categories,
            },
            network: NetworkRecipe {
                hidden: m.hidden.clone(),
                activation: m.activation,
                dropout: m.dropout,
            },
            fitting: FittingRecipe {
                optimizer: Optimizer::Adam {
                    weight_decay: t.weight_decay,
                },
                learning_rate: t.learning_rate,
                schedule: Schedule::Constant,
                epochs: t.epochs,
                max_steps: t.max_steps,
                batch_size: t.batch_size,
                early_stopping_patience: t.early_stopping_patience,
                validation_fraction: t.validation_fraction,
                regression_loss: t.regression_loss,
                huber_delta: t.huber_delta,
                seed: t.seed,
            },
            ensemble: EnsembleRecipe::default(),
        }
    }

    /// Checks every value; the first bad one is reported with its key, value and `origin`.
    pub fn validate(&self, origin: &str) -> Result<()> {
        let bad = |key: &str, value: String, reason: &str| Error::ConfigValue {
            origin: origin.to_string(),
            key: key.to_string(),
            value,
            reason: reason.to_string(),
        };
        let frac = |x: f64| x.is_finite() && x > 0.0 && x < 1.0;
        if !frac(self.data.test_fraction) {
            return Err(bad(
                "data.test_fraction",
                self.data.test_fraction.to_string(),
                "must be between 0 and 1 (exclusive), e.g. 0.2",
            ));
        }
        if self.data.features.as_ref().is_some_and(Vec::is_empty) {
            return Err(bad(
                "data.features",
                "[]".into(),
                "needs at least one column; remove the key to use every column but the label",
            ));
        }
        if let Err(reason) = self.data.delimiter_byte() {
            return Err(bad(
                "data.delimiter",
                format!("{:?}", self.data.delimiter.clone().unwrap_or_default()),
                &reason.to_string(),
            ));
        }
        self.recipe().check().map_err(|e| Error::ConfigValue {
            origin: origin.to_string(),
            key: e.key.to_string(),
            value: e.value,
            reason: e.reason,
        })?;
        let t = &self.training;
        if let Some(k) = t.checkpoint_every
            && (k == 0 || k > MAX_EPOCHS)
        {
            return Err(bad(
                "training.checkpoint_every",
                k.to_string(),
                &format!(
                    "must be between 1 and {MAX_EPOCHS} epochs; remove the key to turn checkpoints off"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = TrainConfig::from_toml_str("", "test").unwrap();
        assert_eq!(c, TrainConfig::default());
        c.validate("test").unwrap();
    }

    #[test]
    fn shipped_config_parses_validates_and_equals_defaults() {
        let text = include_str!("../configs/mlp.toml");
        let c = TrainConfig::from_toml_str(text, "configs/mlp.toml").unwrap();
        c.validate("configs/mlp.toml").unwrap();
        assert_eq!(c, TrainConfig::default());
    }

    #[test]
    fn the_benchmark_table_configs_parse_and_validate() {
        for (name, text) in [
            ("penguins", include_str!("../configs/penguins.toml")),
            ("wine", include_str!("../configs/wine.toml")),
            (
                "breast_cancer",
                include_str!("../configs/breast_cancer.toml"),
            ),
            ("diabetes", include_str!("../configs/diabetes.toml")),
        ] {
            let c = TrainConfig::from_toml_str(text, name).unwrap();
            c.validate(name).unwrap();
            assert_eq!(c.training.batch_size, Some(32), "{name}");
            assert!(c.data.label.is_some(), "{name}");
        }
    }

    #[test]
    fn the_tabular_config_is_the_measured_one() {
        let text = include_str!("../configs/tabular.toml");
        let c = TrainConfig::from_toml_str(text, "configs/tabular.toml").unwrap();
        c.validate("configs/tabular.toml").unwrap();
        assert_eq!(c.model.hidden, [256, 256]);
        assert_eq!(c.training.batch_size, Some(256));
        assert_eq!(c.training.early_stopping_patience, Some(20));
        assert_eq!(c.training.max_steps, 10_000);
        assert_eq!(c.data, TrainConfig::default().data, "it names no data");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = TrainConfig::from_toml_str("[training]\nepoch = 3\n", "my.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("my.toml"), "{msg}");
        assert!(msg.contains("epoch"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn unknown_section_is_rejected() {
        let err = TrainConfig::from_toml_str("[trainin]\n", "x.toml").unwrap_err();
        assert!(err.to_string().contains("trainin"));
    }

    #[test]
    fn wrong_type_is_rejected() {
        let err = TrainConfig::from_toml_str("[training]\nepochs = \"many\"\n", "x").unwrap_err();
        assert!(err.to_string().contains("epochs"), "{err}");
    }

    fn invalid(toml: &str) -> String {
        let c = TrainConfig::from_toml_str(toml, "c.toml").unwrap();
        c.validate("c.toml").unwrap_err().to_string()
    }

    #[test]
    fn bad_values_name_key_and_value() {
        let cases = [
            ("[training]\nepochs = 0", "training.epochs", "= 0"),
            (
                "[training]\nlearning_rate = -0.1",
                "training.learning_rate",
                "-0.1",
            ),
            (
                "[training]\nlearning_rate = nan",
                "training.learning_rate",
                "NaN",
            ),
            ("[training]\nbatch_size = 0", "training.batch_size", "= 0"),
            (
                "[training]\nweight_decay = -1.0",
                "training.weight_decay",
                "-1",
            ),
            (
                "[training]\nearly_stopping_patience = 0",
                "early_stopping_patience",
                "= 0",
            ),
            (
                "[training]\ncheckpoint_every = 0",
                "training.checkpoint_every",
                "= 0",
            ),
            ("[data]\ntest_fraction = 1.0", "data.test_fraction", "= 1"),
            ("[data]\ntest_fraction = 0.0", "data.test_fraction", "= 0"),
            ("[data]\nfeatures = []", "data.features", "[]"),
            ("[model]\nhidden = []", "model.hidden", "[]"),
            ("[model]\nhidden = [16, 0]", "model.hidden", "got 0"),
            ("[model]\ndropout = 1.0", "model.dropout", "= 1"),
        ];
        for (toml, key, value) in cases {
            let msg = invalid(toml);
            assert!(msg.contains(key), "{toml}: {msg}");
            assert!(msg.contains(value), "{toml}: {msg}");
            assert!(msg.contains("c.toml"), "{toml}: {msg}");
        }
    }

    #[test]
    fn negative_epochs_is_a_type_error() {
        let err = TrainConfig::from_toml_str("[training]\nepochs = -5", "x").unwrap_err();
        assert!(err.to_string().contains("epochs"), "{err}");
    }

    #[test]
    fn columns_by_name_or_index() {
        let c = TrainConfig::from_toml_str(
            "[data]\nlabel = \"species\"\nfeatures = [0, \"petal_width\"]",
            "x",
        )
        .unwrap();
        assert_eq!(c.data.label, Some(ColumnRef::Name("species".into())));
        assert_eq!(
            c.data.features,
            Some(vec![
                ColumnRef::Index(0),
                ColumnRef::Name("petal_width".into())
            ])
        );
    }

    #[test]
    fn overrides_replace_keys() {
        let mut c = TrainConfig::default();
        c.apply(&Overrides {
            epochs: Some(7),
            learning_rate: Some(0.5),
            batch_size: Some(8),
            out: Some("o".into()),
            ..Default::default()
        });
        assert_eq!(c.training.epochs, 7);
        assert_eq!(c.training.learning_rate, 0.5);
        assert_eq!(c.training.batch_size, Some(8));
        assert_eq!(c.output.dir, PathBuf::from("o"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Arbitrary text never panics the parser or the validator.
            #[test]
            fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
                if let Ok(c) = TrainConfig::from_toml_str(&text, "p.toml") {
                    let _ = c.validate("p.toml");
                }
            }

            /// Known keys with arbitrary values: either refused with the key named, or valid.
            #[test]
            fn known_keys_with_any_value(
                key in prop::sample::select(vec![
                    "data.test_fraction", "data.split_seed", "model.hidden", "model.dropout", "training.epochs",
                    "training.batch_size", "training.learning_rate", "training.weight_decay",
                    "training.seed", "training.early_stopping_patience", "training.validation_fraction",
                    "training.checkpoint_every",
                ]),
                value in prop::sample::select(vec![
                    "0", "1", "-1", "0.5", "1e300", "-1e-300", "nan", "inf", "-inf", "[]", "[0]",
                    "[16, 8]", "\"x\"", "true", "18446744073709551615", "1.0",
                ]),
            ) {
                let (section, name) = key.split_once('.').unwrap();
                let text = format!("[{section}]\n{name} = {value}\n");
                match TrainConfig::from_toml_str(&text, "p.toml") {
                    Err(e) => prop_assert!(e.to_string().contains("p.toml")),
                    Ok(c) => {
                        if let Err(e) = c.validate("p.toml") {
                            prop_assert!(e.to_string().contains(key), "{e}");
                        }
                    }
                }
            }
        }
    }
}
