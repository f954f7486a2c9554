//! The library's entry points: train and save a model directory, evaluate a model on a table.
//! The command line, the sweep and other programs call these; nothing here prints.

use std::path::Path;

use burn::tensor::backend::AutodiffBackend;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::artifact::{ModelDir, ONNX_FILE, SAFETENSORS_FILE, WriteLock};
use crate::backend::DeviceInfo;
use crate::config::TrainConfig;
use crate::crossval::CrossValidationRun;
use crate::data::{self, Dataset, TrainingData};
use crate::error::{Error, Result};
use crate::metadata::{
    DataInfo, FORMAT_VERSION, MAX_PARAMETERS, Metadata, Preprocessing, RecordInfo, SweepInfo,
    TrainingSummary, history_csv,
};
use crate::plot;
use crate::predict::Predictor;
use crate::train::{self, Interrupter, TrainObserver};

/// A training run that has passed every check that can be made before training: the config is
/// valid, the data loaded, its schema decided, split and encoded, the network within the size a
/// model directory may hold, and the output directory locked for writing. [`TrainRun::run`]
/// trains and saves.
#[derive(Debug)]
pub struct TrainRun {
    config: TrainConfig,
    description: String,
    data_info: DataInfo,
    label: String,
    features: Vec<String>,
    prepared: TrainingData,
    out: ModelDir,
    lock: WriteLock,
    sweep: Option<SweepInfo>,
    cross_validation: Option<CrossValidationRun>,
}

impl TrainRun {
    /// Checks `config` (`origin` says where it came from, for messages), loads its data, decides
    /// the schema, splits and encodes the rows (seeded by [`TrainConfig::split_seed`]) and locks
    /// `config.output.dir`.
    ///
    /// `sweep` is recorded in the metadata of a sweep point's model; a sweep point also holds
    /// out validation rows (`training.validation_fraction` of the training split), which it is
    /// ranked on. With `folds`, [`TrainRun::run`] first cross-validates on the training split
    /// (see [`crate::crossval`]) and records the scores; the folds are checked here.
    pub fn prepare(
        config: TrainConfig,
        origin: &str,
        sweep: Option<SweepInfo>,
        folds: Option<usize>,
    ) -> Result<Self> {
        config.validate(origin)?;
        let dataset = Dataset::load(&config.data)?;
        // The split draws from the seed's first stream; every epoch draws its batch order and
        // dropout masks from a stream of its own (`train::epoch_rng`).
        let mut rng = ChaCha8Rng::seed_from_u64(config.split_seed());
        let cross_validation = folds
            .map(|k| CrossValidationRun::from_dataset(dataset.clone(), config.clone(), origin, k))
            .transpose()?;
        let description = dataset.describe();
        let Dataset {
            source,
            sha256,
            schema,
            dropped,
            ..
        } = &dataset;
        let data_info = DataInfo {
            source: source.clone(),
            sha256: sha256.clone(),
            rows: dataset.rows(),
            class_counts: dataset.class_counts(),
            dropped_rows: *dropped,
        };
        let label = schema.label.clone();
        let features = schema.features.iter().map(|f| f.name.clone()).collect();
        // The dataset's columns are freed as they are encoded.
        let prepared = TrainingData::from_dataset(dataset, &config, &mut rng, sweep.is_some())?;
        let params = train::mlp_config(&prepared, &config).num_params();
        if params > MAX_PARAMETERS {
            // Refused now: the saved model would be refused by every command that loads it.
            return Err(Error::ConfigValue {
                origin: origin.to_string(),
                key: "model.hidden".into(),
                value: format!("{:?}", config.model.hidden),
                reason: format!(
                    "makes {params} parameters for this data; at most {MAX_PARAMETERS} are supported"
                ),
            });
        }
        let out = ModelDir::new(&config.output.dir);
        let lock = out.lock_for_writing()?;
        Ok(TrainRun {
            description,
            data_info,
            label,
            features,
            config,
            prepared,
            out,
            lock,
            sweep,
            cross_validation,
        })
    }

    /// The validated configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The training data: its file, format, columns with their roles and types, and the task,
    /// as a compact table to print before training.
    pub fn describe_data(&self) -> &str {
        &self.description
    }

    /// The split and encoded training data.
    pub fn data(&self) -> &TrainingData {
        &self.prepared
    }

    /// The cross-validation that runs before the model is trained, with `folds`.
    pub fn cross_validation(&self) -> Option<&CrossValidationRun> {
        self.cross_validation.as_ref()
    }

    /// The training data's source, SHA-256, rows and class counts.
    pub fn data_info(&self) -> &DataInfo {
        &self.data_info
    }

    /// The sweep point this run trains, if it is one.
    pub fn sweep_info(&self) -> Option<&SweepInfo> {
        self.sweep.as_ref()
    }

    /// The model directory it writes.
    pub fn output(&self) -> &ModelDir {
        &self.out
    }

    /// Trains on `device` and replaces the model directory's contents atomically.
    ///
    /// `device_info` is recorded in the metadata; `observer` hears every epoch; raising
    /// `interrupter` stops training before its next batch with [`Error::Interrupted`], leaving
    /// the previous model as it was (and, with `training.checkpoint_every`, the progress in a
    /// checkpoint). A checkpoint of this run left in the model directory by an earlier, killed
    /// attempt is resumed from. With folds, the folds are trained first (the observer hears
    /// them too) and their scores recorded. Returns the saved metadata.
    pub fn run<B: AutodiffBackend>(
        self,
        device: &B::Device,
        device_info: DeviceInfo,
        observer: &mut dyn TrainObserver,
        interrupter: &Interrupter,
    ) -> Result<Metadata> {
        let TrainRun {
            config,
            data_info,
            label,
            features,
            prepared,
            out,
            lock,
            sweep,
            cross_validation,
            ..
        } = self;
        let cross_validation = cross_validation
            .map(|cv| cv.run::<B>(device, observer, interrupter))
            .transpose()?;
        let mut checkpoints = out.checkpoints(&lock);
        // What the metadata needs of the data; the rows themselves move to the device.
        let (task, classes, preprocessor, target_scaling) = (
            prepared.task,
            prepared.classes.clone(),
            prepared.preprocessor.clone(),
            prepared.target_scaling,
        );
        let fitted = train::fit::<B>(
            prepared,
            &config,
            device,
            observer,
            interrupter,
            &mut checkpoints,
        )?;
        let metadata = Metadata {
            format_version: FORMAT_VERSION,
            created_by: format!("iris-trainer {}", env!("CARGO_PKG_VERSION")),
            created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            device: device_info,
            parameters: fitted.architecture.num_params(),
            model: fitted.architecture.clone(),
            recipe: config.recipe(),
            features,
            label,
            classes,
            task,
            preprocessing: Preprocessing {
                encoding: preprocessor.encoding,
                scaling: preprocessor.scaling,
                target_scaling,
            },
            data: data_info,
            split: fitted.split,
            seed: config.training.seed,
            duration_s: fitted.duration.as_secs_f64(),
            metrics: TrainingSummary {
                epochs_run: fitted.history.len(),
                best_epoch: fitted.best_epoch,
                stopped_early: fitted.stopped_early,
                train: fitted.train.clone(),
                test: fitted.test.clone(),
                valid: fitted.valid.clone(),
                cross_validation,
            },
            record: RecordInfo {
                file: String::new(),
                sha256: String::new(),
                bytes: 0,
            },
            files: Vec::new(),
            sweep,
            config,
        };
        let metrics_csv = history_csv(&fitted.history, task)?;
        let mut pictures = vec![(
            "training_curves",
            plot::training_curves(&fitted.history, task, fitted.best_epoch)?,
        )];
        if let Some(test) = metadata.metrics.test.classification() {
            pictures.push((
                "confusion_matrix",
                plot::confusion_matrix(test, &metadata.classes)?,
            ));
        }
        // Training is done: from here on an interruption no longer stops anything, the save
        // completes.
        let saved = out.save(
            &lock,
            fitted.model,
            metadata,
            &metrics_csv,
            Metadata::summary,
            &pictures,
        )?;
        // Killed before this, the next run resumes from the checkpoint and saves the same model.
        out.checkpoints(&lock).remove()?;
        Ok(saved)
    }
}

/// Trains with `config` on the default device of the compiled-in backend and saves the model
/// into `config.output.dir`. The one-call form of [`TrainRun`].
pub fn train_and_save(config: TrainConfig) -> Result<Metadata> {
    let run = TrainRun::prepare(config, "(library call)", None, None)?;
    let selected = crate::backend::init(false)?;
    run.run::<crate::backend::TrainBackend>(
        &selected.device,
        selected.info,
        &mut (),
        &Interrupter::new(),
    )
}

pub use crate::predict::EvaluationReport;

/// Scores a loaded model on a labelled table (`None`: the embedded Iris data), read in bounded
/// chunks.
///
/// Columns are matched by the model's names when the file has a header, by the training file's
/// layout otherwise; labels the model was not trained on are refused, naming them.
pub fn evaluate<B: burn::prelude::Backend>(
    predictor: &Predictor<B>,
    data: Option<&Path>,
) -> Result<EvaluationReport> {
    let source = match data {
        Some(p) => data::Source::Path(p.to_path_buf()),
        None => data::Source::Embedded,
    };
    predictor.evaluate_source(&source)
}

/// A file `export` writes from a model directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// `model.safetensors`: the networks' weights, the preprocessing in its metadata (see
    /// [`crate::export`]).
    Safetensors,
    /// `model.onnx`: the whole model, raw columns to answers (see [`crate::onnx`]).
    Onnx,
}

impl ExportFormat {
    /// Its file's name in a model directory.
    pub fn file_name(self) -> &'static str {
        match self {
            ExportFormat::Safetensors => SAFETENSORS_FILE,
            ExportFormat::Onnx => ONNX_FILE,
        }
    }

    fn bytes<B: burn::prelude::Backend>(
        self,
        model: &crate::model::Ensemble<B>,
        meta: &crate::Metadata,
    ) -> Result<Vec<u8>> {
        match self {
            ExportFormat::Safetensors => crate::export::safetensors(model, meta),
            ExportFormat::Onnx => Ok(crate::onnx::model_onnx(model, meta)),
        }
    }
}

/// Writes `format`'s file of the model in `model_dir`: into `output` (replaced atomically: a
/// failure leaves no partial file), or, without one, into the model directory itself, listed in
/// its `model.json` (for models saved before every save wrote it). Returns the file written.
pub fn export<B: burn::prelude::Backend>(
    model_dir: &Path,
    format: ExportFormat,
    output: Option<&Path>,
    device: &B::Device,
) -> Result<std::path::PathBuf> {
    let dir = ModelDir::new(model_dir);
    // Checked first, so a wrong path is not created by the lock below.
    dir.read_metadata()?;
    let Some(path) = output else {
        // Locked before loading: the file added is that of the model it is added to.
        let lock = dir.lock_for_writing()?;
        let (meta, model) = dir.load::<B>(device)?;
        let bytes = format.bytes(&model, &meta)?;
        dir.add_files(&lock, vec![(format.file_name().to_string(), bytes)])?;
        return Ok(model_dir.join(format.file_name()));
    };
    let (meta, model) = dir.load::<B>(device)?;
    let bytes = format.bytes(&model, &meta)?;
    write_atomically(path, &bytes)?;
    Ok(path.to_path_buf())
}

/// Writes `bytes` to `path` through a temporary file beside it, renamed into place.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let out = |e: &dyn std::fmt::Display| Error::output(path, e);
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(parent).map_err(|e| out(&e))?;
    std::io::Write::write_all(&mut file, bytes).map_err(|e| out(&e))?;
    file.as_file().sync_all().map_err(|e| out(&e))?;
    file.persist(path).map_err(|e| out(&e.error))?;
    Ok(())
}

/// Writes a Triton model repository entry for the model in `model_dir`:
/// `repository/name/config.pbtxt` (the onnxruntime backend, every input and output with its
/// type and shape) and `repository/name/1/model.onnx`. `repository` is created when missing and
/// may hold other models; `repository/name` is replaced whole, atomically. Returns
/// `repository/name`.
pub fn export_triton_repository<B: burn::prelude::Backend>(
    model_dir: &Path,
    repository: &Path,
    name: &str,
    device: &B::Device,
) -> Result<std::path::PathBuf> {
    let dir = ModelDir::new(model_dir);
    dir.read_metadata()?;
    let (meta, model) = dir.load::<B>(device)?;
    let onnx = crate::onnx::model_onnx(&model, &meta);
    let config = crate::onnx::triton_config(&meta, name);
    let target = repository.join(name);
    if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err(Error::output(
            &target,
            "a Triton model name is one path component: pass another --model-name",
        ));
    }
    replace_dir(
        &target,
        &[
            ("config.pbtxt".to_string(), config.into_bytes()),
            (format!("1/{ONNX_FILE}"), onnx),
        ],
    )?;
    Ok(target)
}

/// Writes an MLflow model directory (see [`crate::mlflow_model`]) of the model in `model_dir`
/// at `output`, which `mlflow.pyfunc.load_model` and `mlflow models serve` load. `output` is
/// created, or replaced whole and atomically when it is an MLflow model directory already; any
/// other existing directory or file is refused (exit code 6), as nothing in it is removed.
/// Returns `output`.
pub fn export_mlflow_model<B: burn::prelude::Backend>(
    model_dir: &Path,
    output: &Path,
    device: &B::Device,
) -> Result<std::path::PathBuf> {
    let dir = ModelDir::new(model_dir);
    dir.read_metadata()?;
    if output.exists() && !output.join(crate::mlflow_model::MLMODEL_FILE).is_file() {
        let empty = std::fs::read_dir(output).is_ok_and(|mut d| d.next().is_none());
        if !empty {
            return Err(Error::output(
                output,
                "exists and is not an MLflow model directory (it has no MLmodel), so it is not \
                 replaced: name a new directory",
            ));
        }
    }
    let (meta, model) = dir.load::<B>(device)?;
    let onnx = crate::onnx::model_onnx(&model, &meta);
    replace_dir(output, &crate::mlflow_model::files(&meta, &onnx, None))?;
    Ok(output.to_path_buf())
}

/// Makes `target` a directory of exactly `files` (relative paths, `/`-separated), replacing
/// what was there at once: the files are written and synced in a hidden staging directory
/// beside it, the old directory moves aside, the new one in, then the old one is removed. A
/// failure leaves `target` as it was.
fn replace_dir(target: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    let out = |e: &dyn std::fmt::Display| Error::output(target, e);
    let (Some(parent), Some(leaf)) = (target.parent(), target.file_name()) else {
        return Err(out(
            &"is not a directory that can be replaced: name a new one",
        ));
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    std::fs::create_dir_all(parent).map_err(|e| out(&e))?;
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(parent)
        .map_err(|e| out(&e))?;
    for (rel, bytes) in files {
        let path = staging.path().join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| out(&e))?;
        }
        let mut file = std::fs::File::create(&path).map_err(|e| out(&e))?;
        std::io::Write::write_all(&mut file, bytes).map_err(|e| out(&e))?;
        file.sync_all().map_err(|e| out(&e))?;
    }
    // Swap: the old entry (if any) moves aside, the new one in, then the old one goes.
    let old = parent.join(format!(
        ".old-{}-{}",
        leaf.to_string_lossy(),
        std::process::id()
    ));
    let had_old = target.exists();
    if had_old {
        std::fs::rename(target, &old).map_err(|e| out(&e))?;
    }
    let staged = staging.keep();
    if let Err(e) = std::fs::rename(&staged, target) {
        if had_old {
            let _ = std::fs::rename(&old, target);
        }
        let _ = std::fs::remove_dir_all(&staged);
        return Err(out(&e));
    }
    if had_old {
        std::fs::remove_dir_all(&old).map_err(|e| out(&e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
