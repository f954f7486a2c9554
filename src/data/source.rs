//! Where a table's bytes come from (the embedded Iris data, a file, standard input), its format
//! recognised from the first bytes (CSV, gzip-compressed CSV, Parquet), and the SHA-256 of the
//! raw bytes, taken as they are read.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Fisher's Iris (the values R and scikit-learn distribute), with a header row.
pub const IRIS_CSV: &[u8] = include_bytes!("../../data/iris.csv");

/// The name used for the embedded data in messages and metadata.
pub const EMBEDDED_IRIS: &str = "embedded:iris.csv";

/// Largest prediction input read from standard input in one go by older callers.
pub const MAX_CSV_BYTES: u64 = 1 << 30;

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a whole file, refusing directories.
pub fn read_limited(path: &Path) -> Result<Vec<u8>> {
    check_file(path)?;
    std::fs::read(path).map_err(|source| Error::DataRead {
        path: path.to_path_buf(),
        source,
    })
}

fn check_file(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|source| Error::DataRead {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        return Err(Error::Data {
            source_name: path.display().to_string(),
            message: "is a directory; give the path of a CSV or Parquet file".into(),
        });
    }
    Ok(())
}

/// Where a table comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The Iris data embedded in the binary.
    Embedded,
    /// A file: CSV, gzip-compressed CSV or Parquet, recognised by its first bytes.
    Path(PathBuf),
    /// Standard input (CSV or gzip-compressed CSV).
    Stdin,
}

impl Source {
    /// The name used in messages and metadata.
    pub fn name(&self) -> String {
        match self {
            Source::Embedded => EMBEDDED_IRIS.to_string(),
            Source::Path(p) => p.display().to_string(),
            Source::Stdin => "standard input".to_string(),
        }
    }
}

/// Hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Arc<Mutex<Sha256>>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut h) = self.hasher.lock() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// The file format found from the first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// Plain CSV.
    Csv,
    /// gzip-compressed CSV.
    Gzip,
    /// Parquet.
    Parquet,
}

/// An opened input: its format, a reader of its (decompressed) bytes and the hash of its raw
/// bytes so far.
pub(super) struct Opened {
    pub(super) name: String,
    pub(super) format: Format,
    pub(super) path: Option<PathBuf>,
    pub(super) reader: Box<dyn Read + Send>,
    pub(super) hasher: Arc<Mutex<Sha256>>,
}

pub(super) fn open(source: &Source) -> Result<Opened> {
    let name = source.name();
    let hasher = Arc::new(Mutex::new(Sha256::new()));
    let (raw, path): (Box<dyn Read + Send>, Option<PathBuf>) = match source {
        Source::Embedded => (Box::new(IRIS_CSV), None),
        Source::Path(p) => {
            check_file(p)?;
            let f = std::fs::File::open(p).map_err(|source| Error::DataRead {
                path: p.clone(),
                source,
            })?;
            (Box::new(f), Some(p.clone()))
        }
        Source::Stdin => (Box::new(std::io::stdin()), None),
    };
    let mut raw: Box<dyn Read + Send> = Box::new(Hashing {
        inner: raw,
        hasher: Arc::clone(&hasher),
    });
    let mut magic = Vec::with_capacity(4);
    (&mut raw)
        .take(4)
        .read_to_end(&mut magic)
        .map_err(|e| read_error(&name, path.as_deref(), e))?;
    let format = if magic == b"PAR1" {
        Format::Parquet
    } else if magic.starts_with(&[0x1f, 0x8b]) {
        Format::Gzip
    } else {
        Format::Csv
    };
    let rejoined: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(magic).chain(raw));
    let reader: Box<dyn Read + Send> = match format {
        Format::Gzip => Box::new(flate2::read::MultiGzDecoder::new(rejoined)),
        _ => rejoined,
    };
    Ok(Opened {
        name,
        format,
        path,
        reader,
        hasher,
    })
}

pub(super) fn read_error(name: &str, path: Option<&Path>, e: std::io::Error) -> Error {
    match path {
        Some(p)
            if e.kind() != std::io::ErrorKind::InvalidData
                && e.kind() != std::io::ErrorKind::InvalidInput =>
        {
            Error::DataRead {
                path: p.to_path_buf(),
                source: e,
            }
        }
        _ => Error::Data {
            source_name: name.to_string(),
            message: format!("cannot be read: {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DataConfig;
    use crate::data::fixtures::{load, write};

    #[test]
    fn gzip_is_read_by_content() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(IRIS_CSV).unwrap();
        let bytes = gz.finish().unwrap();
        let p = write(dir.path(), "iris.csv.gz", &bytes);
        let d = load(&p, DataConfig::default()).unwrap();
        assert_eq!(d.rows(), 150);
        assert_eq!(d.sha256, sha256_hex(&bytes));
        assert!(d.format.starts_with("gzip-compressed CSV"), "{}", d.format);
        let bad = write(dir.path(), "bad.gz", &bytes[..bytes.len() / 2]);
        let e = load(&bad, DataConfig::default()).unwrap_err().to_string();
        assert!(e.contains("bad.gz"), "{e}");
    }
}
