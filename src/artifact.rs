//! The model directory: `model.mpk` (Burn record), `model.json` (metadata), `metrics.csv`
//! (per-epoch history) and `model.txt` (summary), plus `model.safetensors` (the weights for other
//! tools) and pictures (training curves, confusion matrix), written atomically and validated on
//! load. `model.json` lists the SHA-256 of the record and of every other file it names.
//!
//! Saving writes every file into a hidden staging directory inside the model directory, marks it
//! complete (the marker lists the files of the new model), then renames the files into place and
//! removes optional files the new model does not have. Signals are handled by the caller between epochs,
//! so only SIGKILL or a power cut can land between two renames; the next writer or reader under
//! the directory lock finishes a complete staging directory and deletes an incomplete one.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::prelude::Backend;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, NamedMpkFileRecorder, Recorder};
use serde::Deserialize;

use crate::data::sha256_hex;
use crate::error::{Error, Result};
use crate::metadata::{Metadata, READABLE_VERSIONS, RecordInfo};
use crate::model::{Ensemble, EnsembleRecord, MlpRecord};
use crate::plot::Picture;

/// The record file's name (Burn's named MessagePack, full precision).
pub const RECORD_FILE: &str = "model.mpk";
/// The metadata file's name.
pub const METADATA_FILE: &str = "model.json";
/// The per-epoch history's file name.
pub const METRICS_FILE: &str = "metrics.csv";
/// The human-readable summary's file name.
pub const SUMMARY_FILE: &str = "model.txt";
/// The weights in PyTorch's layout, for other tools (see [`crate::export`]).
pub const SAFETENSORS_FILE: &str = "model.safetensors";
/// The whole model, raw columns to answers, as one ONNX graph (see [`crate::onnx`]).
pub const ONNX_FILE: &str = "model.onnx";
/// Loss and accuracy (or R²) per epoch, as SVG.
pub const CURVES_SVG: &str = "training_curves.svg";
/// Loss and accuracy (or R²) per epoch, as PNG.
pub const CURVES_PNG: &str = "training_curves.png";
/// The test confusion matrix (classification), as SVG.
pub const CONFUSION_SVG: &str = "confusion_matrix.svg";
/// The test confusion matrix (classification), as PNG.
pub const CONFUSION_PNG: &str = "confusion_matrix.png";
/// Optional files, listed with their SHA-256 in `model.json`'s `files` when present (older
/// directories and regression models lack some).
pub const COMPANION_FILES: [&str; 6] = [
    SAFETENSORS_FILE,
    ONNX_FILE,
    CURVES_SVG,
    CURVES_PNG,
    CONFUSION_SVG,
    CONFUSION_PNG,
];
/// Files every model directory has.
const REQUIRED_FILES: [&str; 4] = [METRICS_FILE, SUMMARY_FILE, RECORD_FILE, METADATA_FILE];
/// Files in commit order: the metadata, which names the other files' hashes, goes last.
const FILES: [&str; 10] = [
    METRICS_FILE,
    SUMMARY_FILE,
    CURVES_SVG,
    CURVES_PNG,
    CONFUSION_SVG,
    CONFUSION_PNG,
    SAFETENSORS_FILE,
    ONNX_FILE,
    RECORD_FILE,
    METADATA_FILE,
];
/// Held (exclusively) by the one run that writes the directory, for the whole run.
const LOCK_FILE: &str = ".lock";
/// Held exclusively while files are moved into place, shared while a reader reads them, so a
/// reader never sees the metadata of one model with the record of another.
const COMMIT_LOCK_FILE: &str = ".commit-lock";
const STAGING_PREFIX: &str = ".staging-";
const COMMIT_MARKER: &str = "COMPLETE";
/// The checkpoint of an unfinished training run, beside the staging directories.
pub const CHECKPOINT_FILE: &str = ".checkpoint.mpk";
/// Larger metadata files are refused unread.
const MAX_METADATA_BYTES: u64 = 16 << 20;

/// Whether an optional file of a model directory is as `model.json` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// Present, with the listed size and SHA-256.
    Ok,
    /// Not there.
    Missing,
    /// Present, but not the file that was saved (edited, truncated or replaced).
    Changed,
}

/// Holds the model directory's lock while a run writes it.
#[derive(Debug)]
pub struct WriteLock {
    _file: File,
}

/// A model directory on disk.
#[derive(Debug, Clone)]
pub struct ModelDir {
    path: PathBuf,
}

impl ModelDir {
    /// Names a model directory (nothing is touched yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ModelDir { path: path.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the directory if needed, takes its write lock and cleans up after any earlier
    /// interrupted save. Call before training, so an unwritable directory fails fast.
    pub fn lock_for_writing(&self) -> Result<WriteLock> {
        let out = |e: &dyn std::fmt::Display| Error::output(&self.path, e);
        if self.path.exists() && !self.path.is_dir() {
            return Err(out(&"exists and is not a directory; choose another --out"));
        }
        fs::create_dir_all(&self.path).map_err(|e| out(&e))?;
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.path.join(LOCK_FILE))
            .map_err(|e| out(&e))?;
        // A reader finishing an interrupted save holds the lock for a moment: retry briefly
        // before concluding that another run is writing.
        let mut attempts = 0;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) if attempts < 20 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(out(
                        &"another iris-trainer run is writing this directory; wait for it or choose another --out",
                    ));
                }
                Err(fs::TryLockError::Error(e)) => return Err(out(&e)),
            }
        }
        recover(&self.path).map_err(|e| out(&e))?;
        // A directory can be writable for create but not for the files in it: probe once.
        let probe = tempfile::Builder::new()
            .prefix(STAGING_PREFIX)
            .tempdir_in(&self.path)
            .map_err(|e| out(&e))?;
        probe.close().map_err(|e| out(&e))?;
        Ok(WriteLock { _file: file })
    }

    /// Writes a model and its files, replacing the previous model only once all are on disk.
    ///
    /// `model.safetensors` and `model.onnx` are written from `model`; `pictures` are named by their file stem
    /// (`training_curves`, `confusion_matrix`) and written as `.svg` and `.png`.
    /// `metadata.record` and `metadata.files` are filled in here from the written files.
    pub fn save<B: Backend>(
        &self,
        lock: &WriteLock,
        model: Ensemble<B>,
        mut metadata: Metadata,
        metrics_csv: &str,
        summary: impl Fn(&Metadata) -> String,
        pictures: &[(&str, Picture)],
    ) -> Result<Metadata> {
        let out = |e: &dyn std::fmt::Display| Error::output(&self.path, e);
        let mut companions = vec![
            (
                SAFETENSORS_FILE.to_string(),
                crate::export::safetensors(&model, &metadata)?,
            ),
            (
                ONNX_FILE.to_string(),
                crate::onnx::model_onnx(&model, &metadata),
            ),
        ];
        for (stem, picture) in pictures {
            companions.push((format!("{stem}.svg"), picture.svg.clone().into_bytes()));
            companions.push((format!("{stem}.png"), picture.png.clone()));
        }
        if let Some((name, _)) = companions
            .iter()
            .find(|(n, _)| !COMPANION_FILES.contains(&n.as_str()))
        {
            return Err(Error::Internal(format!(
                "{name} is not a file of the model directory"
            )));
        }
        self.replace_files(lock, |staging| {
            let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
            // The recorder appends the `.mpk` extension itself.
            model
                .with_stable_ids()
                .save_file(staging.join("model"), &recorder)
                .map_err(|e| out(&format!("writing {RECORD_FILE}: {e}")))?;
            let record_path = staging.join(RECORD_FILE);
            let record = fs::read(&record_path).map_err(|e| out(&e))?;
            File::open(&record_path)
                .and_then(|f| f.sync_all())
                .map_err(|e| out(&e))?;
            metadata.record = file_info(RECORD_FILE, &record);
            write_synced(&staging.join(METRICS_FILE), metrics_csv.as_bytes())
                .map_err(|e| out(&format!("writing {METRICS_FILE}: {e}")))?;
            metadata.files = write_companions(staging, &companions)
                .map_err(|(name, e)| out(&format!("writing {name}: {e}")))?;
            let json = serde_json::to_string_pretty(&metadata).map_err(|e| out(&e))? + "\n";
            for (name, contents) in [
                (METADATA_FILE, json.as_str()),
                (SUMMARY_FILE, summary(&metadata).as_str()),
            ] {
                write_synced(&staging.join(name), contents.as_bytes())
                    .map_err(|e| out(&format!("writing {name}: {e}")))?;
            }
            Ok(())
        })?;
        Ok(metadata)
    }

    /// Where the training run that writes this directory keeps its checkpoint, for that run
    /// (it holds the lock) to read and replace.
    pub fn checkpoints<'a>(&'a self, lock: &'a WriteLock) -> DirCheckpoints<'a> {
        DirCheckpoints { dir: self, lock }
    }

    /// Replaces this directory's model with a copy of the (validated) model in `from`.
    pub fn copy_from(&self, lock: &WriteLock, from: &ModelDir) -> Result<Metadata> {
        self.rewrite(lock, from, Vec::new())
    }

    /// Adds (or replaces) optional files (named in [`COMPANION_FILES`]) of this directory's
    /// model, as `export` does for a model saved without `model.safetensors`. The model itself,
    /// its record and history, stay as they are; `model.json` lists the new files.
    pub fn add_files(&self, lock: &WriteLock, files: Vec<(String, Vec<u8>)>) -> Result<Metadata> {
        if let Some((name, _)) = files
            .iter()
            .find(|(n, _)| !COMPANION_FILES.contains(&n.as_str()))
        {
            return Err(Error::Internal(format!(
                "{name} is not an optional file of the model directory"
            )));
        }
        self.rewrite(lock, self, files)
    }

    /// Replaces this directory's files with those of the model in `from` (checked against its
    /// metadata), with `extra` files added; `model.json` and `model.txt` are rewritten when there
    /// are any. Optional files that are missing or changed in `from` are left out (and no longer
    /// listed): the model does not need them, and a changed one would be wrong.
    fn rewrite(
        &self,
        lock: &WriteLock,
        from: &ModelDir,
        extra: Vec<(String, Vec<u8>)>,
    ) -> Result<Metadata> {
        let mut meta = from.read_metadata()?;
        let out = |e: &dyn std::fmt::Display| Error::output(&self.path, e);
        let bad = |m: String| Error::model(&from.path, m);
        // Read everything first: `from` may be this directory.
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut kept: Vec<RecordInfo> = Vec::new();
        {
            let _guard = from.read_guard();
            for name in REQUIRED_FILES {
                let bytes =
                    fs::read(from.path.join(name)).map_err(|e| bad(format!("{name}: {e}")))?;
                if name == RECORD_FILE && sha256_hex(&bytes) != meta.record.sha256 {
                    return Err(bad(format!(
                        "{RECORD_FILE} does not match the SHA-256 in {METADATA_FILE}"
                    )));
                }
                files.push((name.to_string(), bytes));
            }
            for info in &meta.files {
                if extra.iter().any(|(n, _)| *n == info.file) {
                    continue;
                }
                if let Ok(bytes) = fs::read(from.path.join(&info.file))
                    && sha256_hex(&bytes) == info.sha256
                {
                    files.push((info.file.clone(), bytes));
                    kept.push(info.clone());
                }
            }
        }
        let dropped = meta
            .files
            .iter()
            .any(|i| !kept.contains(i) && !extra.iter().any(|(n, _)| *n == i.file));
        if !extra.is_empty() || dropped {
            let mut listed = kept;
            listed.extend(extra.iter().map(|(n, b)| file_info(n, b)));
            listed.sort_by_key(|i| COMPANION_FILES.iter().position(|c| *c == i.file));
            meta.files = listed;
            let json = serde_json::to_string_pretty(&meta).map_err(|e| out(&e))? + "\n";
            files.retain(|(n, _)| n != METADATA_FILE && n != SUMMARY_FILE);
            files.push((METADATA_FILE.into(), json.into_bytes()));
            files.push((SUMMARY_FILE.into(), meta.summary().into_bytes()));
            files.extend(extra);
        }
        self.replace_files(lock, |staging| {
            for (name, bytes) in &files {
                write_synced(&staging.join(name), bytes)
                    .map_err(|e| out(&format!("writing {name}: {e}")))?;
            }
            Ok(())
        })?;
        Ok(meta)
    }

    /// Checks the optional files `meta` lists (see [`COMPANION_FILES`]) against their SHA-256.
    pub fn check_files(&self, meta: &Metadata) -> Vec<(RecordInfo, FileState)> {
        let _guard = self.read_guard();
        meta.files
            .iter()
            .map(|info| {
                let limit = info.bytes.saturating_add(1);
                let state = match read_capped(&self.path.join(&info.file), limit) {
                    Err(_) if !self.path.join(&info.file).exists() => FileState::Missing,
                    Ok(b) if b.len() as u64 == info.bytes && sha256_hex(&b) == info.sha256 => {
                        FileState::Ok
                    }
                    _ => FileState::Changed,
                };
                (info.clone(), state)
            })
            .collect()
    }

    /// Fills a fresh staging directory with `fill`, marks it complete and moves its files in.
    /// On any error the staging directory is removed and the current files stay as they were.
    fn replace_files(
        &self,
        _lock: &WriteLock,
        fill: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<()> {
        let out = |e: &dyn std::fmt::Display| Error::output(&self.path, e);
        let staging = tempfile::Builder::new()
            .prefix(STAGING_PREFIX)
            .tempdir_in(&self.path)
            .map_err(|e| out(&e))?;
        fill(staging.path())?;
        // The marker lists the new model's files: the commit removes optional files of the
        // previous model that this one lacks.
        let mut manifest: Vec<String> = fs::read_dir(staging.path())
            .map_err(|e| out(&e))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        manifest.sort();
        write_synced(
            &staging.path().join(COMMIT_MARKER),
            manifest.join("\n").as_bytes(),
        )
        .map_err(|e| out(&format!("writing {COMMIT_MARKER}: {e}")))?;
        sync_dir(staging.path()).map_err(|e| out(&e))?;
        {
            let commit_lock = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(self.path.join(COMMIT_LOCK_FILE))
                .map_err(|e| out(&e))?;
            commit_lock.lock().map_err(|e| out(&e))?;
            if let Err(e) = commit(staging.path(), &self.path) {
                // Some files may be in place already: keep the complete staging directory, so
                // the next reader or writer finishes the commit instead of leaving two models
                // mixed.
                let _ = staging.keep();
                return Err(out(&e));
            }
        }
        staging.close().map_err(|e| out(&e))
    }

    /// A shared hold on the commit lock while a reader reads several files (none if the
    /// directory has no lock file, as one written by hand or copied without hidden files).
    fn read_guard(&self) -> Option<File> {
        let file = File::open(self.path.join(COMMIT_LOCK_FILE)).ok()?;
        file.lock_shared().ok()?;
        Some(file)
    }

    /// Reads and checks `model.json` only.
    pub fn read_metadata(&self) -> Result<Metadata> {
        self.try_recover();
        self.read_metadata_as_is()
    }

    /// [`Self::read_metadata`] without first finishing an interrupted save.
    fn read_metadata_as_is(&self) -> Result<Metadata> {
        let err = |m: String| Error::model(&self.path, m);
        if !self.path.is_dir() {
            return Err(err(if self.path.exists() {
                "is not a directory; pass the model directory that `iris-trainer train` wrote"
                    .into()
            } else {
                "does not exist; train a model first (`iris-trainer train --out DIR`) or pass --model".into()
            }));
        }
        let bytes = read_capped(&self.path.join(METADATA_FILE), MAX_METADATA_BYTES)
            .map_err(|m| err(format!("{METADATA_FILE}: {m}")))?;
        #[derive(Deserialize)]
        struct Version {
            format_version: u32,
        }
        let version: Version = serde_json::from_slice(&bytes).map_err(|e| {
            err(format!(
                "{METADATA_FILE} is not iris-trainer metadata ({e}); retrain to recreate it"
            ))
        })?;
        if !READABLE_VERSIONS.contains(&version.format_version) {
            return Err(err(format!(
                "{METADATA_FILE} has format version {}, this iris-trainer ({}) reads versions \
                 {READABLE_VERSIONS:?}; use a matching iris-trainer or retrain",
                version.format_version,
                env!("CARGO_PKG_VERSION")
            )));
        }
        let meta = Metadata::from_json(&bytes, version.format_version).map_err(|e| {
            err(format!(
                "{METADATA_FILE} is invalid: {e}; retrain to recreate it"
            ))
        })?;
        meta.validate()
            .map_err(|m| err(format!("{METADATA_FILE} is inconsistent: {m}")))?;
        Ok(meta)
    }

    /// Loads the metadata and the model, checking the record against the metadata. Records of
    /// formats before 3 hold one network; they load as a model of one.
    pub fn load<B: Backend>(&self, device: &B::Device) -> Result<(Metadata, Ensemble<B>)> {
        self.try_recover();
        let guard = self.read_guard();
        let meta = self.read_metadata_as_is()?;
        let err = |m: String| Error::model(&self.path, m);
        // Each float is about 4 bytes plus a little framing per tensor; anything much larger is
        // not this model's record.
        let limit = (meta.model.num_params() as u64).saturating_mul(8) + (1 << 20);
        let bytes = read_capped(&self.path.join(RECORD_FILE), limit)
            .map_err(|m| err(format!("{RECORD_FILE}: {m}")))?;
        drop(guard);
        if sha256_hex(&bytes) != meta.record.sha256 {
            return Err(err(format!(
                "{RECORD_FILE} does not match the SHA-256 in {METADATA_FILE} (truncated, corrupt \
                 or from another run); retrain or restore the directory"
            )));
        }
        let recorder = NamedMpkBytesRecorder::<FullPrecisionSettings>::default();
        let one_network = meta.format_version < 3;
        // Burn panics on some malformed tensors; treat that as a bad file too.
        let loaded = crate::error::catch_panic(|| {
            if one_network {
                Recorder::<B>::load::<MlpRecord<B>>(&recorder, bytes, device).map(|r| {
                    EnsembleRecord {
                        members: vec![r],
                        combine: Default::default(),
                    }
                })
            } else {
                Recorder::<B>::load::<EnsembleRecord<B>>(&recorder, bytes, device)
            }
        });
        let record = match loaded {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                return Err(err(format!(
                    "{RECORD_FILE} is not a valid record: {}",
                    e.to_string().lines().next().unwrap_or_default()
                )));
            }
            Err(_) => return Err(err(format!("{RECORD_FILE} holds malformed tensors"))),
        };
        meta.model
            .check_record(&record)
            .map_err(|m| err(format!("{RECORD_FILE} does not match {METADATA_FILE}: {m}")))?;
        let model = meta.model.init::<B>(device).load_record(record);
        Ok((meta, model))
    }

    /// Finishes or discards an interrupted save, when nobody is writing and the directory allows.
    fn try_recover(&self) {
        let Ok(file) = File::open(self.path.join(LOCK_FILE)) else {
            return;
        };
        if file.try_lock().is_ok() {
            let _ = recover(&self.path);
        }
    }
}

/// A model directory's checkpoint file, `.checkpoint.mpk`: written into a staging directory, then
/// renamed into place, so it is always a whole checkpoint. The model's own files are never
/// touched; the file is removed once the run's model is saved.
#[derive(Debug)]
pub struct DirCheckpoints<'a> {
    dir: &'a ModelDir,
    lock: &'a WriteLock,
}

impl DirCheckpoints<'_> {
    /// The checkpoint file.
    pub fn path(&self) -> PathBuf {
        self.dir.path.join(CHECKPOINT_FILE)
    }

    /// Deletes the checkpoint (the run it belongs to has saved its model).
    pub fn remove(&self) -> Result<()> {
        let _ = self.lock;
        match fs::remove_file(self.path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::output(
                &self.dir.path,
                format!("removing {CHECKPOINT_FILE}: {e}"),
            )),
            _ => Ok(()),
        }
    }
}

impl crate::train::CheckpointStore for DirCheckpoints<'_> {
    fn load(&self) -> Result<Option<Vec<u8>>> {
        match fs::read(self.path()) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::output(
                &self.dir.path,
                format!("reading {CHECKPOINT_FILE}: {e}"),
            )),
        }
    }

    fn save(&mut self, bytes: &[u8]) -> Result<()> {
        let path = &self.dir.path;
        let out = |e: &dyn std::fmt::Display| {
            Error::output(path, format!("writing {CHECKPOINT_FILE}: {e}"))
        };
        // Killed while writing, the staging directory has no COMPLETE marker: the next writer's
        // recovery deletes it, and the previous checkpoint is still whole.
        let staging = tempfile::Builder::new()
            .prefix(STAGING_PREFIX)
            .tempdir_in(path)
            .map_err(|e| out(&e))?;
        let file = staging.path().join(CHECKPOINT_FILE);
        write_synced(&file, bytes).map_err(|e| out(&e))?;
        fs::rename(&file, self.path()).map_err(|e| out(&e))?;
        sync_dir(path).map_err(|e| out(&e))?;
        staging.close().map_err(|e| out(&e))
    }
}

fn file_info(name: &str, bytes: &[u8]) -> RecordInfo {
    RecordInfo {
        file: name.into(),
        sha256: sha256_hex(bytes),
        bytes: bytes.len() as u64,
    }
}

/// Writes the optional files into `staging`, returning them as `model.json` lists them.
fn write_companions(
    staging: &Path,
    files: &[(String, Vec<u8>)],
) -> std::result::Result<Vec<RecordInfo>, (&'static str, std::io::Error)> {
    let mut listed = Vec::new();
    for name in COMPANION_FILES {
        if let Some((_, bytes)) = files.iter().find(|(n, _)| n == name) {
            write_synced(&staging.join(name), bytes).map_err(|e| (name, e))?;
            listed.push(file_info(name, bytes));
        }
    }
    Ok(listed)
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    // Directories can be opened and fsynced on Unix; elsewhere this is best effort.
    match File::open(path) {
        Ok(d) => d.sync_all().or(Ok(())),
        Err(_) => Ok(()),
    }
}

/// Why a file of the model directory could not be read.
#[derive(Debug, thiserror::Error)]
enum ReadFileError {
    #[error("is missing; the directory is incomplete, retrain to recreate it")]
    Missing,
    #[error("is a directory, expected a file")]
    Directory,
    #[error(
        "is {size} bytes, more than the {limit} bytes this model can need; refusing to read it"
    )]
    TooLarge { size: u64, limit: u64 },
    #[error("{0}")]
    Io(std::io::Error),
}

fn read_capped(path: &Path, limit: u64) -> std::result::Result<Vec<u8>, ReadFileError> {
    let meta = fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ReadFileError::Missing
        } else {
            ReadFileError::Io(e)
        }
    })?;
    if meta.is_dir() {
        return Err(ReadFileError::Directory);
    }
    if meta.len() > limit {
        return Err(ReadFileError::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    fs::read(path).map_err(ReadFileError::Io)
}

/// Moves a complete staging directory's files into `dir`, metadata last, then removes the
/// optional files that the marker does not list (they belonged to the previous model). Running
/// it again on the same staging directory (recovery after a crash) finishes the same commit.
fn commit(staging: &Path, dir: &Path) -> std::io::Result<()> {
    let manifest = fs::read_to_string(staging.join(COMMIT_MARKER))?;
    let listed: Vec<&str> = manifest.lines().collect();
    for name in FILES {
        let from = staging.join(name);
        if from.exists() {
            fs::rename(&from, dir.join(name))?;
        }
    }
    // An empty marker (written before markers listed files) removes nothing.
    if !listed.is_empty() {
        for name in COMPANION_FILES {
            if !listed.contains(&name) {
                match fs::remove_file(dir.join(name)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
    }
    sync_dir(dir)?;
    fs::remove_file(staging.join(COMMIT_MARKER))
}

/// Rolls complete staging directories forward and deletes incomplete ones.
fn recover(dir: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(STAGING_PREFIX) || !entry.path().is_dir() {
            continue;
        }
        let staging = entry.path();
        if staging.join(COMMIT_MARKER).exists() {
            let commit_lock = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dir.join(COMMIT_LOCK_FILE))?;
            commit_lock.lock()?;
            commit(&staging, dir)?;
        }
        fs::remove_dir_all(&staging)?;
    }
    Ok(())
}

/// Whether a directory holds leftovers of an interrupted save (for tests and diagnostics).
pub fn has_staging_leftovers(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(STAGING_PREFIX))
    })
}

#[cfg(test)]
mod tests;
