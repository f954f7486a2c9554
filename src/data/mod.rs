//! Tabular data, from bytes to the network's input matrix.
//!
//! ```text
//! Source (embedded Iris, a file, standard input)            source.rs
//!   │  format from the first bytes (CSV, gzip, Parquet); SHA-256 of the raw bytes
//!   ▼
//! TableReader: column names, then Chunks of rows            reader.rs (csv.rs, parquet.rs)
//!   │  read in bounded chunks straight into typed columns   table.rs (Table, TableBuilder)
//!   ├──────────────────────────────┐
//!   ▼ training                     ▼ predict, evaluate, serve
//! Dataset::load                   open_rows, read_feature_rows,  input.rs
//!   ColumnPlan + Schema           read_feature_table: columns
//!   (roles, types, task)          matched to a model's features
//!   dataset.rs, schema.rs
//!   ▼
//! Prepared: seeded Split, Preprocessor fitted on the          prepared.rs (split.rs,
//! training rows, every split encoded                          preprocess.rs)
//! ```
//!
//! Training reads a whole [`Dataset`]; `predict` and `evaluate` stream the rows [`open_rows`]
//! opens, chunk by chunk. The same [`Preprocessor`] encodes rows at training and at prediction
//! time.

pub mod csv;
mod dataset;
#[cfg(test)]
mod fixtures;
mod input;
pub mod parquet;
mod prepared;
pub mod preprocess;
mod reader;
pub mod schema;
mod source;
pub mod split;
pub mod table;
mod value;

pub use csv::{Chunk, ColumnKind, MissingValues};
pub use dataset::{Dataset, Target};
pub use input::{open_rows, read_feature_rows, read_feature_table};
pub use prepared::{Labels, Part, Prepared, TargetScaling};
pub use preprocess::{
    Encoder, Encoding, EncodingError, FitError, Preprocessor, Standardizer, Unseen,
};
pub use reader::{Chunks, ReadOptions, TableReader};
pub use schema::{ColumnPlan, FeatureType, Schema, SchemaError, Task};
pub use source::{EMBEDDED_IRIS, IRIS_CSV, MAX_CSV_BYTES, Source, read_limited, sha256_hex};
pub use split::{Split, SplitError};
pub use table::{ChunkMismatch, Column, ColumnData, MISSING, Table, TableBuilder};
pub use value::{BadValue, parse_number};
