//! The library's error type. Every message names what was wrong, where, and what to do.

use std::path::PathBuf;

/// Everything that can go wrong in iris-trainer, grouped by what the user has to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration file could not be read.
    #[error("cannot read config file {path}: {source}")]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// A configuration file is not valid TOML or has unknown/mistyped keys.
    #[error("invalid config {origin}: {message}")]
    ConfigParse {
        /// The file (or `command line`).
        origin: String,
        /// What is wrong, with its line where known.
        message: String,
    },
    /// A configuration value is out of range.
    #[error("invalid config {origin}: `{key}` = {value}: {reason}")]
    ConfigValue {
        /// Where the value came from: a file, flags, a sweep point.
        origin: String,
        /// The dotted key or flag.
        key: String,
        /// The value as given.
        value: String,
        /// Why it is refused and what would be accepted.
        reason: String,
    },
    /// A data file could not be read.
    #[error("cannot read data file {path}: {source}")]
    DataRead {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// A data file was read but its contents are unusable.
    #[error("invalid data in {source_name}: {message}")]
    Data {
        /// The file (or `embedded:iris.csv`).
        source_name: String,
        /// What is wrong, with line and column where known.
        message: String,
    },
    /// Input for prediction (CLI values, CSV rows, HTTP bodies) is unusable.
    #[error("invalid input: {0}")]
    Input(String),
    /// A row of prediction or evaluation input cannot be encoded for the model: its row, column
    /// and value, typed, so the caller can number rows its own way.
    #[error(
        "{}{error}",
        match input {
            Some(name) => format!("invalid data in {name}: "),
            None => "invalid input: ".to_string(),
        }
    )]
    Encode {
        /// The file the rows came from (`None`: a request's or the command line's rows).
        input: Option<String>,
        /// What is wrong, and where.
        error: EncodeError,
    },
    /// The model directory is missing, incomplete, corrupt or from an unknown format.
    #[error("model directory {dir}: {message}")]
    Model {
        /// The model directory.
        dir: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// The output directory cannot be written.
    #[error("cannot write model directory {dir}: {message}")]
    Output {
        /// The directory.
        dir: PathBuf,
        /// Why it cannot be written.
        message: String,
    },
    /// The compute device could not be initialised.
    #[error("{0}")]
    Device(String),
    /// Training was stopped by a signal before it finished.
    #[error(
        "interrupted by {signal}: training stopped, previous model left untouched{}",
        match checkpoint {
            Some(epoch) => format!(
                "; progress saved at epoch {epoch}: run the same command again to resume"
            ),
            None => String::new(),
        }
    )]
    Interrupted {
        /// The signal that stopped it.
        signal: Signal,
        /// The epoch whose checkpoint was saved, when checkpoints are on.
        checkpoint: Option<usize>,
    },
    /// Results could not be written (standard output, a report file).
    #[error("cannot write {what}: {source}")]
    WriteOutput {
        /// What was being written, e.g. `standard output`.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A bug: something the program should never do. The message is for the log, not for users.
    #[error("internal error: {0}")]
    Internal(String),
    /// Training diverged (non-finite outputs or loss).
    #[error(
        "training diverged at epoch {epoch}: the network's outputs are no longer finite; lower \
         `training.learning_rate` (now {learning_rate}) or check the data for extreme values"
    )]
    Diverged {
        /// The epoch whose outputs were not finite.
        epoch: usize,
        /// The learning rate used.
        learning_rate: f64,
    },
    /// Some points of a local sweep failed.
    #[error("{0}")]
    SweepFailed(String),
    /// The local HTTP service did not answer its health check.
    #[error("unhealthy: {url} {reason}")]
    Unhealthy {
        /// The health URL asked.
        url: String,
        /// What happened instead of a 200.
        reason: String,
    },
    /// The MLflow tracking server could not be reached or refused a request before training.
    #[error(
        "MLflow tracking server {uri}: {message}; nothing was trained. Check that the server is \
         running and reachable (`curl {uri}/health`), or train without tracking (unset \
         MLFLOW_TRACKING_URI, no --tracking-uri)"
    )]
    Tracking {
        /// The tracking URI.
        uri: String,
        /// What failed.
        message: String,
    },
    /// A trained, saved and logged model could not be registered in MLflow's model registry.
    #[error(
        "the model is trained and saved, and MLflow run {run_id} logged it, but registering it \
         as {name:?} in the model registry at {uri} failed: {message}. Register it later with \
         mlflow.register_model(\"runs:/{run_id}/model\", \"NAME\") or from MLflow's UI"
    )]
    Registry {
        /// The tracking URI.
        uri: String,
        /// The registered model's name asked for.
        name: String,
        /// The run that logged the model.
        run_id: String,
        /// What failed.
        message: String,
    },
    /// The HTTP service could not start.
    #[error("cannot serve on {addr}: {source}")]
    Serve {
        /// The address it tried to listen on.
        addr: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// Process exit codes, documented in the README.
pub mod exit_code {
    /// Anything not covered below (an I/O failure while serving, an internal error).
    pub const FAILURE: u8 = 1;
    /// Bad command line (clap's own code).
    pub const USAGE: u8 = 2;
    /// Bad configuration file or value.
    pub const CONFIG: u8 = 3;
    /// Bad data file or prediction input.
    pub const DATA: u8 = 4;
    /// Missing, corrupt or incompatible model directory.
    pub const MODEL: u8 = 5;
    /// Output cannot be written: the model directory, report files or standard output.
    pub const OUTPUT: u8 = 6;
    /// No usable compute device (e.g. no GPU with `--require-gpu`).
    pub const DEVICE: u8 = 7;
    /// Training diverged.
    pub const DIVERGED: u8 = 8;
    /// The MLflow tracking server is unreachable or refused the run (nothing was trained).
    pub const TRACKING: u8 = 9;
    /// The model was trained and saved, but registering it in MLflow's model registry failed.
    pub const REGISTRY: u8 = 10;
    /// Stopped by SIGINT (128 + 2).
    pub const SIGINT: u8 = 130;
    /// Stopped by SIGTERM (128 + 15).
    pub const SIGTERM: u8 = 143;
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::ConfigRead { .. } | Error::ConfigParse { .. } | Error::ConfigValue { .. } => {
                exit_code::CONFIG
            }
            Error::DataRead { .. }
            | Error::Data { .. }
            | Error::Input(_)
            | Error::Encode { .. } => exit_code::DATA,
            Error::Model { .. } => exit_code::MODEL,
            Error::Output { .. } | Error::WriteOutput { .. } => exit_code::OUTPUT,
            Error::Device(_) => exit_code::DEVICE,
            Error::Diverged { .. } => exit_code::DIVERGED,
            Error::Tracking { .. } => exit_code::TRACKING,
            Error::Registry { .. } => exit_code::REGISTRY,
            Error::Interrupted { signal, .. } => signal.exit_code(),
            Error::Serve { .. }
            | Error::Unhealthy { .. }
            | Error::SweepFailed(_)
            | Error::Internal(_) => exit_code::FAILURE,
        }
    }

    pub(crate) fn model(dir: &std::path::Path, message: impl Into<String>) -> Self {
        Error::Model {
            dir: dir.to_path_buf(),
            message: message.into(),
        }
    }

    pub(crate) fn output(dir: &std::path::Path, message: impl std::fmt::Display) -> Self {
        Error::Output {
            dir: dir.to_path_buf(),
            message: message.to_string(),
        }
    }
}

/// Why a field is not a usable number; the caller says where it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadValue {
    /// The field is empty.
    #[error("missing value (empty field)")]
    Missing,
    /// The field is not a number.
    #[error("`{0}` is not a number")]
    NotANumber(String),
    /// The field parses to NaN or infinity.
    #[error("`{0}` is not a finite number (NaN, infinity or out of range)")]
    NotFinite(String),
}

/// A value that cannot be turned into the model's inputs: where it is, and what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{}{}{problem}",
    match row {
        Some(r) => format!("row {}, ", r + 1),
        None => String::new(),
    },
    match column {
        Some(c) => format!("column `{c}`: "),
        None => String::new(),
    }
)]
pub struct EncodeError {
    /// The 0-based row among the rows given (`None`: the one row there is, as the command
    /// line's values).
    pub row: Option<usize>,
    /// The column (`None`: the row as a whole).
    pub column: Option<String>,
    /// What is wrong.
    pub problem: EncodeProblem,
}

impl EncodeError {
    /// The same error with its row counted `first_row` further on: a chunk's rows made
    /// file-wide.
    #[must_use]
    pub fn rows_from(mut self, first_row: usize) -> Self {
        self.row = self.row.map(|r| r + first_row);
        self
    }

    /// The same error, its row renumbered by `to` (a row of a selection mapped back to the
    /// rows it was selected from).
    #[must_use]
    pub fn map_row(mut self, to: impl FnOnce(usize) -> usize) -> Self {
        self.row = self.row.map(to);
        self
    }

    /// The same error without a row number, for a lone row.
    #[must_use]
    pub fn lone_row(mut self) -> Self {
        self.row = None;
        self
    }
}

/// What is wrong with a value (see [`EncodeError`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EncodeProblem {
    /// A feature column is not in the rows at all.
    #[error("the column is missing; the model needs {}", needs.join(", "))]
    MissingColumn {
        /// The model's feature columns.
        needs: Vec<String>,
    },
    /// A numeric feature's value is not a number.
    #[error("{0}")]
    Number(BadValue),
    /// A boolean feature's number is neither 0 nor 1.
    #[error("{0} is not a boolean value (0 or 1)")]
    BooleanNumber(f32),
    /// A boolean feature's text is not one of the spellings of true and false.
    #[error("`{0}` is not a boolean value (true/false, yes/no, y/n, t/f, 1/0)")]
    BooleanText(String),
    /// The value overflows once standardised (`given`: the value as given, where known).
    #[error(
        "{} is too large to use (it overflows once scaled)",
        match given {
            Some(v) => v.to_string(),
            None => "the value".to_string(),
        }
    )]
    Overflows {
        /// The raw value.
        given: Option<f32>,
    },
    /// The row's values are usable, but the network's outputs on them overflow.
    #[error("the values are too extreme for this model (its outputs overflow)")]
    OutputsOverflow,
}

/// A signal that asks a run to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (`kill`, `docker stop`, a Kubernetes eviction).
    Terminate,
}

impl Signal {
    /// The conventional exit code, 128 + the signal number.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => exit_code::SIGINT,
            Signal::Terminate => exit_code::SIGTERM,
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        })
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

thread_local! {
    /// Whether this thread is inside [`catch_panic`], whose panics are not printed.
    static CATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, turning a panic inside it into `Err` with the panic's message, and without the
/// panic printing anything: some dependencies (the Parquet reader, Burn's record decoder) panic
/// on malformed input, which is the user's bad file, reported as an error, not a crash. Panics
/// anywhere else are printed by the hook that was installed before, as ever.
pub(crate) fn catch_panic<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    static QUIET_HOOK: std::sync::Once = std::sync::Once::new();
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CATCHING.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
    let outer = CATCHING.with(|c| c.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(outer));
    result.map_err(|panic| {
        panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default()
    })
}
