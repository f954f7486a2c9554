//! iris-trainer: train a small MLP on tabular data (Fisher's Iris by default) with Burn, save a
//! self-describing model directory, and predict from it on the command line or over HTTP.
//!
//! Data flows `data` -> `train` (with `model` and `metrics`) -> `artifact` -> `predict` -> `serve`.
//! The concrete backend is named only in [`backend`].

pub mod artifact;
pub mod backend;
pub mod cli;
pub mod config;
pub mod data;
pub mod error;
pub mod metrics;
pub mod model;
pub mod predict;
pub mod serve;
pub mod sweep;
pub mod train;

pub use error::{Error, Result};
