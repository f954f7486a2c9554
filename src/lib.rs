//! iris-trainer: train a small MLP on tabular data (Fisher's Iris by default) with Burn, save a
//! self-describing model directory, and predict from it on the command line or over HTTP.
//!
//! Modules are listed in the order the data flows through them, and each imports only modules
//! listed before it: `config` and `data` -> `model` -> `metadata` -> `train` -> `artifact`
//! (the model directory) -> `predict` -> `pipeline` (train-and-save, evaluate) -> `sweep` ->
//! `serve`. The concrete backend is named only in [`backend`]. The command line is the binary's
//! own; everything it does is reachable from here.
//!
//! Train into a directory and predict from it:
//!
//! ```
//! use iris_trainer::{Predictor, TrainConfig, backend};
//!
//! # fn main() -> iris_trainer::Result<()> {
//! let dir = tempfile::tempdir().expect("a temporary directory");
//! let mut config = TrainConfig::default(); // the embedded Iris data, a 4-16-3 MLP
//! config.training.epochs = 100;
//! config.output.dir = dir.path().join("model");
//! let saved = iris_trainer::train_and_save(config)?;
//! assert_eq!(saved.classes, ["setosa", "versicolor", "virginica"]);
//!
//! let device = backend::init(false)?.device;
//! let predictor = Predictor::<backend::Backend>::load(&dir.path().join("model"), &device)?;
//! let prediction = &predictor.predict(&[5.1, 3.5, 1.4, 0.2])?[0];
//! assert_eq!(prediction.species, "setosa");
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod error;

pub mod backend;
pub mod config;
pub mod data;
pub mod metrics;
pub mod model;

pub mod metadata;
pub mod train;

pub mod artifact;
pub mod predict;

pub mod pipeline;
pub mod sweep;

pub mod serve;

pub use config::TrainConfig;
pub use error::{Error, Result};
pub use metadata::Metadata;
pub use pipeline::{EvaluationReport, TrainRun, evaluate, train_and_save};
pub use predict::Predictor;
