//! iris-trainer: train a small MLP on tabular data (Fisher's Iris by default) with Burn, save a
//! self-describing model directory, and predict from it on the command line or over HTTP.
//!
//! Modules are listed in the order the data flows through them, and each imports only modules
//! listed before it (a test checks both):
//!
//! ```text
//! error, backend          typed errors; the one place the concrete backend is named
//! recipe                  what to build and how to fit it: one versioned, checked unit
//! config                  the configuration file and flags, which make a recipe
//! data                    bytes -> Table -> Dataset -> TrainingData; Encoded batches
//! metrics                 the one Scorer: training, evaluate and cross-validation
//! model                   Ensemble<B> of networks, the one model type; Inputs on a device
//! metadata                model.json (format 3: the recipe, the model, what was fitted)
//! train, crossval         the training loop; k-fold cross-validation
//! export, onnx, plot      model.safetensors, model.onnx; the pictures
//! artifact                the model directory, replaced atomically
//! mlflow_model            an MLflow model directory (MLmodel) around model.onnx
//! predict                 Predictor: a loaded model answering rows
//! pipeline                train-and-save, evaluate
//! track, sweep, serve     MLflow tracking; sweeps; the HTTP service
//! ```
//!
//! The command line is the binary's own; everything it does is reachable from here.
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
//! assert_eq!(prediction.class, "setosa");
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod error;

pub mod backend;

pub mod recipe;

pub mod config;

pub mod data;

pub mod metrics;

pub mod model;

pub mod metadata;

pub mod train;

pub mod crossval;

pub mod export;

pub mod onnx;

pub mod plot;

pub mod artifact;

pub mod mlflow_model;

pub mod predict;

pub mod pipeline;

pub mod track;

pub mod sweep;

pub mod serve;

pub use config::TrainConfig;
pub use error::{Error, Result};
pub use metadata::Metadata;
pub use pipeline::{EvaluationReport, TrainRun, evaluate, train_and_save};
pub use predict::Predictor;

/// Serialises the unit tests that train in this process: Burn's backends draw initial weights and
/// dropout masks from one generator per process, so two trainings on parallel test threads would
/// interleave their draws and neither would be reproducible. Hold it for the whole of a training.
#[cfg(test)]
pub(crate) fn training_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod layering {
    //! The module list above is the data flow: each module may import only modules listed
    //! before it, so no two modules import each other.

    /// Library modules in data-flow order, as declared above.
    const ORDER: &[&str] = &[
        "error",
        "backend",
        "recipe",
        "config",
        "data",
        "metrics",
        "model",
        "metadata",
        "train",
        "crossval",
        "export",
        "onnx",
        "plot",
        "artifact",
        "mlflow_model",
        "predict",
        "pipeline",
        "track",
        "sweep",
        "serve",
    ];

    /// The `crate::NAME` modules a source file (or directory of files) refers to.
    fn imports(module: &str) -> std::collections::BTreeSet<String> {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![src.join(format!("{module}.rs"))];
        if let Ok(dir) = std::fs::read_dir(src.join(module)) {
            files.extend(dir.flatten().map(|e| e.path()));
        }
        let mut found = std::collections::BTreeSet::new();
        for file in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "rs"))
        {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            for (i, _) in text.match_indices("crate::") {
                let rest = &text[i + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if ORDER.contains(&name.as_str()) && name != module {
                    found.insert(name);
                }
            }
            // `use crate::{a, b}` groups.
            for (i, _) in text.match_indices("crate::{") {
                let rest = &text[i + "crate::{".len()..];
                let group = &rest[..rest.find('}').unwrap_or(0)];
                for part in group.split(',') {
                    let name = part.trim().split("::").next().unwrap_or("").trim();
                    if ORDER.contains(&name) && name != module {
                        found.insert(name.to_string());
                    }
                }
            }
        }
        found
    }

    #[test]
    fn lib_rs_declares_the_modules_in_data_flow_order() {
        let lib = include_str!("lib.rs");
        let declared: Vec<&str> = lib
            .lines()
            .filter_map(|l| l.strip_prefix("pub mod "))
            .filter_map(|l| l.strip_suffix(';'))
            .collect();
        assert_eq!(declared, ORDER);
    }

    #[test]
    fn every_import_points_down_the_data_flow() {
        let mut wrong = Vec::new();
        for (i, module) in ORDER.iter().enumerate() {
            for import in imports(module) {
                let j = ORDER.iter().position(|m| *m == import).unwrap_or(0);
                if j > i {
                    wrong.push(format!("{module} imports {import}, which comes after it"));
                }
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn the_check_sees_imports() {
        // Guards the test above against passing because it reads nothing.
        assert!(imports("pipeline").contains("train"));
        assert!(imports("serve").contains("predict"));
    }

    #[test]
    fn every_library_module_is_in_the_order() {
        let lib = include_str!("lib.rs");
        for line in lib.lines() {
            if let Some(name) = line.strip_prefix("pub mod ") {
                let name = name.trim_end_matches(';');
                assert!(ORDER.contains(&name), "add `{name}` to the layering order");
            }
        }
    }
}
