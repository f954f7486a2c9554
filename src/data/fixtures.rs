//! Helpers the data tests share: files written to a temporary directory, loaded as a training
//! table, and a table's cells as text.

use std::path::{Path, PathBuf};

use super::dataset::Dataset;
use super::table::Table;
use crate::config::DataConfig;
use crate::error::Result;

/// Writes `bytes` to `dir/name` and returns the path.
pub(super) fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Loads the file at `path` as training data, with `cfg`'s other settings.
pub(super) fn load(path: &Path, cfg: DataConfig) -> Result<Dataset> {
    Dataset::load(&DataConfig {
        path: Some(path.to_path_buf()),
        ..cfg
    })
}

/// A table's cells as text (`None`: missing), so that tables read by different readers
/// compare whatever order they met the levels in.
pub(super) fn cells(t: &Table) -> Vec<Vec<Option<String>>> {
    t.columns
        .iter()
        .map(|c| (0..t.rows()).map(|i| c.data.text(i)).collect())
        .collect()
}
