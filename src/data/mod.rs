//! Tabular data, from bytes to the network's inputs ([`Encoded`] batches).
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
//! TrainingData: seeded Split,           Preprocessor::encode    training.rs (split.rs,
//! Preprocessor fitted on the training                            preprocess.rs)
//! rows, every split encoded
//!   ▼                                     ▼
//! EncodedSplit { Encoded, Labels }      Encoded: dense numbers   encoded.rs
//!                                       + category codes
//! ```
//!
//! Training reads a whole [`Dataset`]; `predict` and `evaluate` stream the rows [`open_rows`]
//! opens, chunk by chunk. The same [`Preprocessor`] encodes rows at training and at prediction
//! time.

pub mod csv;
mod dataset;
mod encoded;
#[cfg(test)]
mod fixtures;
mod input;
pub mod parquet;
pub mod preprocess;
mod reader;
pub mod schema;
mod source;
pub mod split;
pub mod table;
mod training;
mod value;

pub use csv::{Chunk, ColumnKind, MissingValues};
pub use dataset::{Dataset, Target};
pub use encoded::{Encoded, ShapeError};
pub use input::{open_rows, read_feature_rows, read_feature_table};
pub use preprocess::{
    Encoder, Encoding, EncodingError, FitError, Preprocessor, Standardizer, Unseen,
};
pub use reader::{Chunks, ReadOptions, TableReader};
pub use schema::{ColumnPlan, FeatureType, Schema, SchemaError, Task};
pub use source::{EMBEDDED_IRIS, IRIS_CSV, MAX_CSV_BYTES, Source, read_limited, sha256_hex};
pub use split::{Split, SplitError};
pub use table::{ChunkMismatch, Column, ColumnData, MISSING, Table, TableBuilder};
pub use training::{EncodedSplit, Labels, TargetScaling, TrainingData};
pub use value::{BadValue, parse_number};
