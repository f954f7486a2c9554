//! What the fuzz targets share: reading a table from bytes the way the program reads a file,
//! and a scratch directory for the files a target writes.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use iris_trainer::config::DataConfig;
use iris_trainer::data::{ColumnKind, ReadOptions, Source, Table, TableReader};

/// A directory of this process's own, removed when it ends.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
        .path()
}

/// Writes `bytes` to `name` in the scratch directory.
pub fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, bytes).expect("writing a scratch file");
    path
}

/// Writes a model directory holding `model.json` and `model.mpk` as `name` in the scratch
/// directory, in place of whatever was there (a failed load may leave files behind).
pub fn write_model(name: &str, json: &[u8], record: &[u8]) -> PathBuf {
    let dir = scratch().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch model directory");
    std::fs::write(dir.join("model.json"), json).expect("writing model.json");
    std::fs::write(dir.join("model.mpk"), record).expect("writing model.mpk");
    dir
}

/// The options the program reads a data file with when nothing is configured (one thread:
/// the inputs are small and a run is repeatable).
pub fn read_options() -> ReadOptions {
    let mut options = ReadOptions::from_config(&DataConfig::default());
    options.threads = 1;
    options
}

/// Reads the file at `path` (CSV, gzip-compressed CSV or Parquet, told by its first bytes) into
/// one table, every column's type detected; the error as the user would see it.
pub fn read_table(path: &Path) -> Result<Table, String> {
    let reader = TableReader::open(
        &Source::Path(path.to_path_buf()),
        &read_options(),
        &[],
        false,
    )
    .map_err(|e| e.to_string())?;
    let kinds = vec![ColumnKind::Auto; reader.names.len()];
    reader
        .read_all(&kinds)
        .map(|(table, _sha256)| table)
        .map_err(|e| e.to_string())
}
