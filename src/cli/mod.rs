//! The command line: clap types, turned at once into the library's own structs. The commands
//! themselves are in [`commands`]; they call the library, print and pick the exit code.

mod commands;
mod progress;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use iris_trainer::Error;
use iris_trainer::config::{Overrides, Task};
use iris_trainer::predict::PredictionFormat;
use iris_trainer::sweep::{RankBy, SweepError};
use iris_trainer::track::TrackingOptions;

/// Train a small MLP on tabular data (Fisher's Iris by default) and serve it.
///
/// With no subcommand, trains (same as `iris-trainer train`).
#[derive(Debug, Parser)]
#[command(
    name = "iris-trainer",
    version,
    about,
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  iris-trainer                                  train on the embedded Iris data\n  iris-trainer --config configs/mlp.toml        train as configured\n  iris-trainer predict 5.1 3.5 1.4 0.2          classify one flower\n  iris-trainer serve --model artifacts          HTTP service on 0.0.0.0:5000"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    train: TrainArgs,
    #[command(flatten)]
    global: GlobalArgs,
}

#[derive(Debug, Args)]
struct GlobalArgs {
    /// No progress, start-up or request log on stderr (errors are still printed).
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Fail unless a hardware GPU is used (wgpu build).
    #[arg(long, global = true, env = "IRIS_TRAINER_REQUIRE_GPU", value_parser = clap::builder::FalseyValueParser::new())]
    require_gpu: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train a model and write its directory (the default command).
    Train(TrainArgs),
    /// Predict the class of rows given on the command line, in a file, or on stdin.
    Predict(PredictArgs),
    /// Score a model on labelled data: accuracy, confusion matrix, per-class precision/recall/F1.
    Evaluate(EvaluateArgs),
    /// Show what a model directory holds.
    Info(InfoArgs),
    /// Write a model's weights for other tools (safetensors, PyTorch layout).
    Export(ExportArgs),
    /// Serve predictions over HTTP.
    Serve(ServeArgs),
    /// K-fold cross-validation on the training split: each fold's scores, their mean and spread.
    CrossValidate(CrossValidateArgs),
    /// Train every point of a sweep on this machine (in parallel), then rank them.
    Sweep(SweepArgs),
    /// Rank the finished points of a sweep; optionally install the best model.
    SweepReport(SweepReportArgs),
    /// Exit 0 if the local service answers 200 on /health, 1 if not (container health checks).
    Healthcheck(HealthcheckArgs),
}

#[derive(Debug, Args)]
struct SweepArgs {
    #[command(flatten)]
    train: TrainArgs,
    /// Points trained at once [default: the number of CPUs].
    #[arg(short, long, value_name = "N")]
    jobs: Option<usize>,
    /// The metric that ranks the points, on their validation rows or (with --folds) their
    /// mean over the folds; never on the test split [default: accuracy, or r2 for regression].
    #[arg(long, value_enum)]
    rank_by: Option<RankByArg>,
}

#[derive(Debug, Args)]
struct CrossValidateArgs {
    #[command(flatten)]
    train: TrainArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
}

/// How `sweep` and `sweep-report` rank points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RankByArg {
    /// Accuracy, higher first (classification).
    Accuracy,
    /// Macro-averaged F1, higher first (classification).
    MacroF1,
    /// The loss, lower first.
    Loss,
    /// R², higher first (regression).
    R2,
    /// Root mean squared error, lower first (regression).
    Rmse,
    /// Mean absolute error, lower first (regression).
    Mae,
}

impl From<RankByArg> for RankBy {
    fn from(r: RankByArg) -> Self {
        match r {
            RankByArg::Accuracy => RankBy::Accuracy,
            RankByArg::MacroF1 => RankBy::MacroF1,
            RankByArg::Loss => RankBy::Loss,
            RankByArg::R2 => RankBy::R2,
            RankByArg::Rmse => RankBy::Rmse,
            RankByArg::Mae => RankBy::Mae,
        }
    }
}

/// Output format of `sweep-report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TableFormat {
    /// A Markdown table.
    Markdown,
    /// CSV with a header.
    Csv,
    /// JSON.
    Json,
}

#[derive(Debug, Args)]
struct SweepReportArgs {
    /// The sweep's output directory (holding point-NNN directories).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// The metric that ranks the points, on their validation rows or their mean over the folds
    /// (when every point was trained with --folds) [default: accuracy, or r2 for regression].
    #[arg(long, value_enum)]
    rank_by: Option<RankByArg>,
    /// Output format on stdout (all three are written into DIR).
    #[arg(short, long, value_enum, default_value_t = TableFormat::Markdown)]
    format: TableFormat,
    /// Copy the best point's model into this model directory (atomically).
    #[arg(long, value_name = "DIR")]
    best: Option<PathBuf>,
}

#[derive(Debug, Args, Default)]
struct TrainArgs {
    /// TOML config file (every key optional; see configs/mlp.toml). Without it, the defaults.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data file: CSV, gzip-compressed CSV or Parquet [config: data.path; default: the
    /// embedded Iris data].
    #[arg(long, value_name = "FILE")]
    data: Option<PathBuf>,
    /// The label column, by header name [config: data.label; default: the last column].
    #[arg(long, value_name = "COLUMN")]
    label: Option<String>,
    /// Columns to leave out, comma-separated [config: data.ignore].
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    ignore: Option<Vec<String>>,
    /// Predict a class or a number [config: data.task; default: inferred from the label].
    #[arg(long, value_enum)]
    task: Option<TaskArg>,
    /// Model directory to write [config: output.dir; default: artifacts].
    #[arg(short, long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Epochs [config: training.epochs].
    #[arg(long)]
    epochs: Option<usize>,
    /// Learning rate [config: training.learning_rate].
    #[arg(long, value_name = "RATE", allow_negative_numbers = true)]
    lr: Option<f64>,
    /// Random seed [config: training.seed].
    #[arg(long)]
    seed: Option<u64>,
    /// Rows per optimiser step [config: training.batch_size; default: full batch].
    #[arg(long, value_name = "ROWS")]
    batch_size: Option<usize>,
    /// Fraction of each class held out for testing [config: data.test_fraction].
    #[arg(long, value_name = "FRACTION", allow_negative_numbers = true)]
    test_fraction: Option<f64>,
    /// Hidden layer widths, comma-separated [config: model.hidden].
    #[arg(long, value_delimiter = ',', value_name = "WIDTHS")]
    hidden: Option<Vec<usize>>,
    /// Early-stopping patience in epochs [config: training.early_stopping_patience].
    #[arg(long, value_name = "EPOCHS")]
    patience: Option<usize>,
    /// Save the run's progress every N epochs and when stopped by SIGTERM/SIGINT; the same
    /// command run again resumes from it [config: training.checkpoint_every].
    #[arg(long, value_name = "N")]
    checkpoint_every: Option<usize>,
    /// Sweep file: train one of its points into OUT/point-NNN.
    #[arg(long, value_name = "FILE")]
    sweep: Option<PathBuf>,
    /// Which point of --sweep to train (Kubernetes Indexed Jobs set JOB_COMPLETION_INDEX).
    #[arg(long, value_name = "N", env = "JOB_COMPLETION_INDEX")]
    sweep_index: Option<usize>,
    /// Cross-validate on K folds of the training split before training, and record each fold's
    /// scores in model.json (a sweep then ranks points by their mean); `cross-validate`
    /// defaults to 5.
    #[arg(long, value_name = "K")]
    folds: Option<usize>,
    /// Log the run to this MLflow tracking server, http://HOST:PORT [default: no tracking].
    #[arg(long, value_name = "URI", env = "MLFLOW_TRACKING_URI")]
    tracking_uri: Option<String>,
    /// The MLflow experiment, created if missing [default: MLflow's default experiment].
    #[arg(long, value_name = "NAME", env = "MLFLOW_EXPERIMENT_NAME")]
    experiment: Option<String>,
    /// The MLflow run's name [default: the model directory's name; a sweep's is `sweep NAME`].
    #[arg(long, value_name = "NAME")]
    run_name: Option<String>,
    /// Log the MLflow run as a child of this run (a local sweep passes its parent run's id).
    #[arg(long, value_name = "RUN_ID")]
    parent_run_id: Option<String>,
    /// Register the trained model in the tracking server's model registry as a new version of
    /// NAME (created if missing); `train` only, with --tracking-uri.
    #[arg(long, value_name = "NAME")]
    register_model: Option<String>,
}

/// `--task`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TaskArg {
    /// Predict one of the label's values.
    Classification,
    /// Predict a number.
    Regression,
}

impl From<TaskArg> for Task {
    fn from(t: TaskArg) -> Self {
        match t {
            TaskArg::Classification => Task::Classification,
            TaskArg::Regression => Task::Regression,
        }
    }
}

/// Parses `--model-name`.
fn model_name(s: &str) -> std::result::Result<String, iris_trainer::serve::BadModelName> {
    iris_trainer::serve::check_model_name(s).map(|()| s.to_string())
}

impl TrainArgs {
    /// The flags that reproduce these arguments, for the runs a local sweep starts.
    fn to_args(&self) -> Vec<std::ffi::OsString> {
        let mut v: Vec<std::ffi::OsString> = Vec::new();
        let mut push = |flag: &str, value: Option<String>| {
            if let Some(value) = value {
                v.push(flag.into());
                v.push(value.into());
            }
        };
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        push("--config", path(&self.config));
        push("--data", path(&self.data));
        push("--label", self.label.clone());
        push("--ignore", self.ignore.as_ref().map(|v| v.join(",")));
        push("--task", self.task.map(|t| Task::from(t).to_string()));
        push("--out", path(&self.out));
        push("--epochs", self.epochs.map(|x| x.to_string()));
        push("--lr", self.lr.map(|x| x.to_string()));
        push("--seed", self.seed.map(|x| x.to_string()));
        push("--batch-size", self.batch_size.map(|x| x.to_string()));
        push("--test-fraction", self.test_fraction.map(|x| x.to_string()));
        push(
            "--hidden",
            self.hidden
                .as_ref()
                .map(|h| h.iter().map(usize::to_string).collect::<Vec<_>>().join(",")),
        );
        push("--patience", self.patience.map(|x| x.to_string()));
        push(
            "--checkpoint-every",
            self.checkpoint_every.map(|x| x.to_string()),
        );
        push("--sweep", path(&self.sweep));
        push("--folds", self.folds.map(|x| x.to_string()));
        if let Some(t) = self.tracking() {
            push("--tracking-uri", Some(t.uri));
            push("--experiment", t.experiment);
        }
        v
    }

    /// Where to track the run, if anywhere (an empty `MLFLOW_TRACKING_URI` is no tracking).
    fn tracking(&self) -> Option<TrackingOptions> {
        let nonempty = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        Some(TrackingOptions {
            uri: nonempty(&self.tracking_uri)?,
            experiment: nonempty(&self.experiment),
            run_name: nonempty(&self.run_name),
            parent_run_id: nonempty(&self.parent_run_id),
            token: std::env::var("MLFLOW_TRACKING_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
        })
    }
}

/// Output format of `predict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PredictFormat {
    /// `species<TAB>probability`, one line per row.
    Text,
    /// A JSON object with every class's probability.
    Json,
    /// CSV with a header: species, probability, then one column per class.
    Csv,
}

impl From<PredictFormat> for PredictionFormat {
    fn from(f: PredictFormat) -> Self {
        match f {
            PredictFormat::Text => PredictionFormat::Text,
            PredictFormat::Json => PredictionFormat::Json,
            PredictFormat::Csv => PredictionFormat::Csv,
        }
    }
}

/// Output format of `evaluate` and `info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReportFormat {
    /// For people.
    Text,
    /// For programs.
    Json,
}

#[derive(Debug, Args)]
struct ModelArg {
    /// Model directory written by `train`.
    #[arg(
        short,
        long,
        value_name = "DIR",
        env = "MODEL_DIR",
        default_value = "artifacts"
    )]
    model: PathBuf,
}

#[derive(Debug, Args)]
struct PredictArgs {
    #[command(flatten)]
    model: ModelArg,
    /// Feature values of one row, in the model's feature order.
    #[arg(
        value_name = "VALUE",
        allow_negative_numbers = true,
        conflicts_with = "input"
    )]
    values: Vec<String>,
    /// CSV of rows to predict (`-` for stdin); with or without a header, a label column is ignored.
    #[arg(short, long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = PredictFormat::Text)]
    format: PredictFormat,
}

#[derive(Debug, Args)]
struct EvaluateArgs {
    #[command(flatten)]
    model: ModelArg,
    /// Labelled CSV [default: the embedded Iris data].
    #[arg(short, long, value_name = "FILE")]
    data: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
}

#[derive(Debug, Args)]
struct InfoArgs {
    #[command(flatten)]
    model: ModelArg,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
}

/// Format of `export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExportFormat {
    /// safetensors: Linear weights `[out, in]` as in PyTorch, preprocessing in `__metadata__`.
    Safetensors,
    /// ONNX: the whole model, raw columns in, `label` and `probabilities` (or `value`) out.
    Onnx,
    /// A Triton model repository entry: `OUTPUT/NAME/config.pbtxt` and `OUTPUT/NAME/1/model.onnx`.
    TritonRepository,
    /// An MLflow model directory at OUTPUT: `MLmodel` (the onnx and python_function flavors, a
    /// signature, an input example), `model.onnx` and the loader, for `mlflow.pyfunc.load_model`
    /// and `mlflow models serve`.
    Mlflow,
}

#[derive(Debug, Args)]
struct ExportArgs {
    #[command(flatten)]
    model: ModelArg,
    /// File format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Safetensors)]
    format: ExportFormat,
    /// File to write [default: model.safetensors or model.onnx in the model directory, listed
    /// in its model.json]; for triton-repository, the repository directory, and for mlflow, the
    /// MLflow model directory (both required).
    #[arg(
        short,
        long,
        value_name = "PATH",
        required_if_eq_any([("format", "triton-repository"), ("format", "mlflow")])
    )]
    output: Option<PathBuf>,
    /// The model's name in a Triton repository (its directory under --output).
    #[arg(long, value_name = "NAME", default_value = iris_trainer::serve::DEFAULT_MODEL_NAME,
          value_parser = model_name)]
    model_name: String,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    model: ModelArg,
    /// Address to listen on.
    #[arg(long, value_name = "HOST:PORT", default_value = "0.0.0.0:5000")]
    addr: SocketAddr,
    /// The model's name on the Open Inference Protocol routes (/v2/models/NAME/...).
    #[arg(long, value_name = "NAME", default_value = iris_trainer::serve::DEFAULT_MODEL_NAME,
          value_parser = model_name)]
    model_name: String,
    /// Port to listen on, replacing the port of --addr.
    #[arg(long, env = "PORT")]
    port: Option<u16>,
    /// Most instances accepted in one request.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    max_instances: usize,
    /// Largest request body accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    max_body_bytes: usize,
    /// Seconds a request may take before it is answered 408/503.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    timeout: u64,
    /// Requests handled at once; more wait in the accept queue.
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_concurrency: usize,
}

#[derive(Debug, Args)]
struct HealthcheckArgs {
    /// Port of the service on 127.0.0.1 (as `serve`, from PORT when set).
    #[arg(long, env = "PORT", default_value_t = 5000)]
    port: u16,
}

impl TrainArgs {
    /// The overrides these flags make to the config file.
    fn overrides(&self) -> Overrides {
        Overrides {
            data: self.data.clone(),
            out: self.out.clone(),
            epochs: self.epochs,
            learning_rate: self.lr,
            seed: self.seed,
            batch_size: self.batch_size,
            test_fraction: self.test_fraction,
            hidden: self.hidden.clone(),
            patience: self.patience,
            label: self.label.clone(),
            ignore: self.ignore.clone(),
            task: self.task.map(Task::from),
            checkpoint_every: self.checkpoint_every,
        }
    }
}

/// Parses the command line, runs it, prints any error and returns the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let g = cli.global;
    let result = match cli.command {
        None => commands::train(cli.train, &g),
        Some(Command::Train(a)) => commands::train(a, &g),
        Some(Command::Predict(a)) => commands::predict(a, &g),
        Some(Command::Evaluate(a)) => commands::evaluate(a, &g),
        Some(Command::Info(a)) => commands::info(a),
        Some(Command::Export(a)) => commands::export(a, &g),
        Some(Command::Serve(a)) => commands::serve(a, &g),
        Some(Command::CrossValidate(a)) => commands::cross_validate(a, &g),
        Some(Command::Sweep(a)) => return finish(commands::sweep(a, &g)),
        Some(Command::SweepReport(a)) => commands::sweep_report(a),
        Some(Command::Healthcheck(a)) => commands::healthcheck(a),
    };
    finish(result)
}

/// A command's error: what `error:` prints, and the exit code.
trait Failure: std::fmt::Display {
    fn exit_code(&self) -> u8;
}

impl Failure for Error {
    fn exit_code(&self) -> u8 {
        Error::exit_code(self)
    }
}

impl Failure for SweepError {
    fn exit_code(&self) -> u8 {
        SweepError::exit_code(self)
    }
}

/// Prints a failed command's error and returns its exit code.
fn finish(result: std::result::Result<(), impl Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bare_flags_train_and_subcommands_parse() {
        let c =
            Cli::try_parse_from(["iris-trainer", "--config", "x.toml", "--epochs", "5"]).unwrap();
        assert!(c.command.is_none());
        assert_eq!(c.train.epochs, Some(5));
        let c = Cli::try_parse_from(["iris-trainer", "predict", "1", "-2.5", "3", "4"]).unwrap();
        assert!(matches!(c.command, Some(Command::Predict(ref p)) if p.values.len() == 4));
    }
}
