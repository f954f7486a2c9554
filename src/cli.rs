//! The command line: clap types, turned at once into the library's own structs, and the commands.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::artifact::{DataInfo, Metadata, ModelDir, RecordInfo, TrainingSummary};
use crate::backend::{self, Backend, DeviceKind, TrainBackend};
use crate::config::{ColumnRef, DataConfig, Overrides, TrainConfig};
use crate::data::{self, Table};
use crate::error::{Error, Result};
use crate::metrics::Evaluation;
use crate::predict::Predictor;
use crate::serve::{ServeOptions, serve};
use crate::sweep::{self, RankBy, Sweep};
use crate::train::{self, ProgressMode};

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
pub struct Cli {
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
    /// Serve predictions over HTTP.
    Serve(ServeArgs),
    /// Train every point of a sweep on this machine (in parallel), then rank them.
    Sweep(SweepArgs),
    /// Rank the finished points of a sweep; optionally install the best model.
    SweepReport(SweepReportArgs),
}

#[derive(Debug, Args)]
struct SweepArgs {
    #[command(flatten)]
    train: TrainArgs,
    /// Points trained at once [default: the number of CPUs].
    #[arg(short, long, value_name = "N")]
    jobs: Option<usize>,
    /// The metric that ranks the points.
    #[arg(long, value_enum, default_value_t = RankBy::TestAccuracy)]
    rank_by: RankBy,
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
    /// The metric that ranks the points.
    #[arg(long, value_enum, default_value_t = RankBy::TestAccuracy)]
    rank_by: RankBy,
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
    /// CSV data file [config: data.path; default: the embedded Iris data].
    #[arg(long, value_name = "FILE")]
    data: Option<PathBuf>,
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
    /// Sweep file: train one of its points into OUT/point-NNN.
    #[arg(long, value_name = "FILE")]
    sweep: Option<PathBuf>,
    /// Which point of --sweep to train (Kubernetes Indexed Jobs set JOB_COMPLETION_INDEX).
    #[arg(long, value_name = "N", env = "JOB_COMPLETION_INDEX")]
    sweep_index: Option<usize>,
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
        push("--sweep", path(&self.sweep));
        v
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

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    model: ModelArg,
    /// Address to listen on.
    #[arg(long, value_name = "HOST:PORT", default_value = "0.0.0.0:5000")]
    addr: SocketAddr,
    /// The model's name on the Open Inference Protocol routes (/v2/models/NAME/...).
    #[arg(long, value_name = "NAME", default_value = crate::serve::DEFAULT_MODEL_NAME,
          value_parser = |s: &str| crate::serve::check_model_name(s).map(|()| s.to_string()))]
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

/// Parses the command line, runs it, prints any error and returns the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let g = cli.global;
    match cli.command {
        None => train_command(cli.train, &g),
        Some(Command::Train(a)) => train_command(a, &g),
        Some(Command::Predict(a)) => predict_command(a, &g),
        Some(Command::Evaluate(a)) => evaluate_command(a, &g),
        Some(Command::Info(a)) => info_command(a),
        Some(Command::Serve(a)) => serve_command(a, &g),
        Some(Command::Sweep(a)) => sweep_command(a, &g),
        Some(Command::SweepReport(a)) => sweep_report_command(a),
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Input(format!(
            "cannot write to standard output: {e}"
        ))),
        _ => Ok(()),
    }
}

fn init_device(g: &GlobalArgs) -> Result<backend::Selected> {
    let selected = backend::init(g.require_gpu)?;
    if !g.quiet {
        eprintln!("using {}", selected.info);
        if selected.info.kind == DeviceKind::SoftwareGpu {
            eprintln!(
                "warning: no hardware GPU found; wgpu is running on a software adapter on the CPU, \
                 which is much slower than the CPU build. Pass --require-gpu to make this an error."
            );
        }
    }
    Ok(selected)
}

/// Records SIGINT/SIGTERM so training can stop between epochs; a second signal exits at once.
fn install_signal_flag() -> Arc<AtomicUsize> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::flag;
    let caught = Arc::new(AtomicUsize::new(0));
    // Past a file-size limit, let writes fail with EFBIG (an error we report, like ENOSPC)
    // instead of the default SIGXFSZ, which would kill the process mid-save.
    #[cfg(unix)]
    let _ = flag::register(
        signal_hook::consts::SIGXFSZ,
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    for sig in [SIGINT, SIGTERM] {
        let already = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Order matters: the shutdown check runs before the flag is set by the same signal.
        let _ = flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&already));
        let _ = flag::register(sig, already);
        let _ = flag::register_usize(sig, Arc::clone(&caught), sig as usize);
    }
    caught
}

/// The config file (or the defaults) with the command-line overrides applied, not yet validated.
fn resolve_config(a: &TrainArgs) -> Result<(TrainConfig, String)> {
    let (mut config, origin) = match &a.config {
        Some(path) => (TrainConfig::from_file(path)?, path.display().to_string()),
        None => (TrainConfig::default(), "(built-in defaults)".to_string()),
    };
    config.apply(&Overrides {
        data: a.data.clone(),
        out: a.out.clone(),
        epochs: a.epochs,
        learning_rate: a.lr,
        seed: a.seed,
        batch_size: a.batch_size,
        test_fraction: a.test_fraction,
        hidden: a.hidden.clone(),
        patience: a.patience,
    });
    Ok((config, format!("{origin} with command-line overrides")))
}

fn train_command(a: TrainArgs, g: &GlobalArgs) -> Result<()> {
    let (mut config, mut origin) = resolve_config(&a)?;
    let mut sweep_info = None;
    if let Some(path) = &a.sweep {
        let sweep = Sweep::from_file(path)?;
        let index = a.sweep_index.ok_or_else(|| Error::ConfigValue {
            origin: path.display().to_string(),
            key: "--sweep-index".into(),
            value: "(none)".into(),
            reason: format!(
                "say which of its {} points to train with --sweep-index N or JOB_COMPLETION_INDEX, \
                 or train them all with `iris-trainer sweep`",
                sweep.len()
            ),
        })?;
        let root = config.output.dir.clone();
        config = sweep.apply(&config, index)?;
        config.output.dir = sweep::point_dir(&root, index);
        origin = format!("{origin} and {} point {index}", path.display());
        sweep_info = Some(sweep.info(index)?);
    }
    config.validate(&origin)?;

    let table = Table::load(&config.data)?;
    let params = crate::model::MlpConfig {
        inputs: table.width(),
        hidden: config.model.hidden.clone(),
        outputs: table.class_names.len(),
        activation: config.model.activation,
        dropout: config.model.dropout,
    }
    .num_params();
    if params > crate::artifact::MAX_PARAMETERS {
        // Refused now: the saved model would be refused by every command that loads it.
        return Err(Error::ConfigValue {
            origin,
            key: "model.hidden".into(),
            value: format!("{:?}", config.model.hidden),
            reason: format!(
                "makes {params} parameters for this data; at most {} are supported",
                crate::artifact::MAX_PARAMETERS
            ),
        });
    }
    let out = ModelDir::new(&config.output.dir);
    let lock = out.lock_for_writing()?;
    let selected = init_device(g)?;
    if !g.quiet {
        eprintln!(
            "training on {} ({} rows, {} features, {} classes: {})",
            table.source,
            table.rows(),
            table.width(),
            table.class_names.len(),
            table.class_names.join(", ")
        );
    }

    let caught = install_signal_flag();
    let stop = || match caught.load(Ordering::Relaxed) {
        0 => None,
        s if s == signal_hook::consts::SIGTERM as usize => Some("SIGTERM"),
        _ => Some("SIGINT"),
    };
    let fitted = train::fit::<TrainBackend>(
        &table,
        &config,
        &selected.device,
        ProgressMode::detect(g.quiet),
        &stop,
    )?;

    let metadata = Metadata {
        format_version: crate::artifact::FORMAT_VERSION,
        created_by: format!("iris-trainer {}", env!("CARGO_PKG_VERSION")),
        created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        device: selected.info.clone(),
        config: config.clone(),
        parameters: fitted.mlp.num_params(),
        model: fitted.mlp.clone(),
        features: table.feature_names.clone(),
        label: table.label_name.clone(),
        classes: table.class_names.clone(),
        scaling: fitted.standardizer.clone(),
        data: DataInfo {
            source: table.source.clone(),
            sha256: table.sha256.clone(),
            rows: table.rows(),
            class_counts: table.class_counts(),
        },
        split: fitted.split,
        seed: config.training.seed,
        duration_s: fitted.duration.as_secs_f64(),
        metrics: TrainingSummary {
            epochs_run: fitted.history.len(),
            best_epoch: fitted.best_epoch,
            stopped_early: fitted.stopped_early,
            train: fitted.train.clone(),
            test: fitted.test.clone(),
        },
        record: RecordInfo {
            file: String::new(),
            sha256: String::new(),
            bytes: 0,
        },
        sweep: sweep_info,
    };
    let metrics_csv = history_csv(&fitted.history)?;
    // Training is done: a signal from here on no longer stops anything, the save completes.
    let saved = out.save(
        &lock,
        fitted.model,
        metadata,
        &metrics_csv,
        Metadata::summary,
    )?;
    let t = &saved.metrics.test;
    emit(&format!(
        "trained {} MLP in {:.2}s ({} epochs{}): test accuracy {:.4} ({}/{}), test loss {:.4}; model saved to {}\n",
        saved
            .model
            .widths()
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("-"),
        saved.duration_s,
        saved.metrics.epochs_run,
        if saved.metrics.stopped_early {
            format!(", stopped early, best {}", saved.metrics.best_epoch)
        } else {
            String::new()
        },
        t.accuracy,
        (t.accuracy * t.rows as f64).round() as usize,
        t.rows,
        t.loss,
        out.path().display()
    ))?;
    Ok(())
}

fn sweep_command(a: SweepArgs, g: &GlobalArgs) -> Result<()> {
    let Some(path) = a.train.sweep.clone() else {
        return Err(Error::ConfigValue {
            origin: "command line".into(),
            key: "--sweep".into(),
            value: "(none)".into(),
            reason: "`iris-trainer sweep` needs --sweep FILE".into(),
        });
    };
    let sweep = Sweep::from_file(&path)?;
    let (config, origin) = resolve_config(&a.train)?;
    // Every point's config is checked before any training starts.
    for i in 0..sweep.len() {
        sweep
            .apply(&config, i)?
            .validate(&format!("{origin} and {} point {i}", path.display()))?;
    }
    let root = config.output.dir.clone();
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, sweep.len());
    if !g.quiet {
        eprintln!(
            "sweep {}: {} points into {}, {jobs} at a time",
            path.display(),
            sweep.len(),
            root.display()
        );
    }
    let exe = std::env::current_exe()
        .map_err(|e| Error::Input(format!("cannot find this program to run the points: {e}")))?;
    let base_args = a.train.to_args();
    let next = AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= sweep.len() {
                        break;
                    }
                    let out = std::process::Command::new(&exe)
                        .arg("train")
                        .arg("--quiet")
                        .args(&base_args)
                        .arg("--sweep-index")
                        .arg(i.to_string())
                        .env_remove("JOB_COMPLETION_INDEX")
                        .output();
                    let ok = matches!(&out, Ok(o) if o.status.success());
                    if !ok {
                        let why = match out {
                            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
                            Err(e) => e.to_string(),
                        };
                        if let Ok(mut f) = failures.lock() {
                            f.push((i, why));
                        }
                    }
                    if !g.quiet {
                        eprintln!("point {i}: {}", if ok { "done" } else { "FAILED" });
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap_or_default();
    failures.sort();
    let failed: Vec<usize> = failures.iter().map(|(i, _)| *i).collect();
    match sweep::report(&root, a.rank_by, Some(sweep.len()), &failed) {
        Ok(report) => {
            write_reports(&root, &report)?;
            emit(&report.markdown())?;
        }
        // Nothing finished: the failures below say why.
        Err(_) if !failures.is_empty() => {}
        Err(e) => return Err(e),
    }
    if failures.is_empty() {
        return Ok(());
    }
    Err(Error::SweepFailed(format!(
        "{} of {} sweep points failed:\n{}",
        failures.len(),
        sweep.len(),
        failures
            .iter()
            .map(|(i, why)| format!("  point {i}: {why}"))
            .collect::<Vec<_>>()
            .join("\n")
    )))
}

fn write_reports(root: &Path, report: &sweep::Report) -> Result<()> {
    for (name, text) in [
        ("sweep-report.md", report.markdown()),
        ("sweep-report.csv", report.csv()),
        ("sweep-report.json", report.json()),
    ] {
        std::fs::write(root.join(name), text)
            .map_err(|e| Error::output(root, format!("writing {name}: {e}")))?;
    }
    Ok(())
}

fn sweep_report_command(a: SweepReportArgs) -> Result<()> {
    let report = sweep::report(&a.dir, a.rank_by, None, &[])?;
    write_reports(&a.dir, &report)?;
    emit(&match a.format {
        TableFormat::Markdown => report.markdown(),
        TableFormat::Csv => report.csv(),
        TableFormat::Json => report.json(),
    })?;
    if let Some(best_dir) = &a.best {
        let best = &report.rows[0];
        let dest = ModelDir::new(best_dir);
        let lock = dest.lock_for_writing()?;
        dest.copy_from(&lock, &ModelDir::new(&best.dir))?;
        eprintln!(
            "best: point {} (test accuracy {:.4}) copied to {}",
            best.index,
            best.test_accuracy,
            best_dir.display()
        );
    }
    Ok(())
}

fn history_csv(history: &[train::EpochStats]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in history {
        w.serialize(row)
            .map_err(|e| Error::Input(format!("cannot format metrics.csv: {e}")))?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::Input(format!("cannot format metrics.csv: {e}")))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn load_predictor(model: &Path, g: &GlobalArgs) -> Result<Predictor<Backend>> {
    // Check the directory before touching the device, so a wrong path is reported first.
    ModelDir::new(model).read_metadata()?;
    let selected = backend::init(g.require_gpu)?;
    Predictor::load(model, &selected.device)
}

fn predict_command(a: PredictArgs, g: &GlobalArgs) -> Result<()> {
    let predictor = load_predictor(&a.model.model, g)?;
    let features = predictor.features().to_vec();
    let values: Vec<f32> = match &a.input {
        Some(path) => {
            let (bytes, source) = if path.as_os_str() == "-" {
                let mut buf = Vec::new();
                std::io::stdin()
                    .take(data::MAX_CSV_BYTES + 1)
                    .read_to_end(&mut buf)
                    .map_err(|e| Error::Input(format!("cannot read standard input: {e}")))?;
                if buf.len() as u64 > data::MAX_CSV_BYTES {
                    return Err(Error::Input(format!(
                        "standard input is over {} bytes; split it into smaller batches",
                        data::MAX_CSV_BYTES
                    )));
                }
                (buf, "standard input".to_string())
            } else {
                (
                    data::read_limited(path).map_err(|e| Error::Input(e.to_string()))?,
                    path.display().to_string(),
                )
            };
            data::read_feature_rows(&bytes, &source, &features)?
        }
        None => {
            if a.values.len() != features.len() {
                return Err(Error::Input(format!(
                    "expected {} values ({}), got {}; or pass rows with --input FILE",
                    features.len(),
                    features.join(", "),
                    a.values.len()
                )));
            }
            a.values
                .iter()
                .zip(&features)
                .map(|(v, name)| {
                    data::parse_value(v.trim(), 1, name)
                        .map_err(|m| Error::Input(m.replacen("line 1, ", "", 1)))
                })
                .collect::<Result<_>>()?
        }
    };
    let predictions = predictor.predict(&values)?;
    let classes = predictor.classes();
    let text = match a.format {
        PredictFormat::Text => predictions
            .iter()
            .map(|p| format!("{}\t{:.4}\n", p.species, p.probability))
            .collect::<String>(),
        PredictFormat::Json => {
            let rows: Vec<_> = predictions
                .iter()
                .map(|p| {
                    let probs: serde_json::Map<_, _> = classes
                        .iter()
                        .cloned()
                        .zip(p.probabilities.iter().map(|&x| json!(x)))
                        .collect();
                    json!({"species": p.species, "probability": p.probability, "probabilities": probs})
                })
                .collect();
            format!("{}\n", json!({ "predictions": rows }))
        }
        PredictFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let header = ["species".to_string(), "probability".to_string()]
                .into_iter()
                .chain(classes.iter().cloned());
            let mut rows = vec![header.collect::<Vec<_>>()];
            for p in &predictions {
                rows.push(
                    [p.species.clone(), p.probability.to_string()]
                        .into_iter()
                        .chain(p.probabilities.iter().map(f32::to_string))
                        .collect(),
                );
            }
            for r in rows {
                w.write_record(&r)
                    .map_err(|e| Error::Input(format!("cannot format CSV: {e}")))?;
            }
            String::from_utf8_lossy(
                &w.into_inner()
                    .map_err(|e| Error::Input(format!("cannot format CSV: {e}")))?,
            )
            .into_owned()
        }
    };
    emit(&text)
}

fn evaluate_command(a: EvaluateArgs, g: &GlobalArgs) -> Result<()> {
    let predictor = load_predictor(&a.model.model, g)?;
    let meta = predictor.metadata();
    let (bytes, source) = match &a.data {
        Some(p) => (data::read_limited(p)?, p.display().to_string()),
        None => (data::IRIS_CSV.to_vec(), data::EMBEDDED_IRIS.to_string()),
    };
    // Columns by the model's names when the header has them all; by position otherwise.
    let header = data::first_row(&bytes);
    let named = std::iter::once(&meta.label)
        .chain(&meta.features)
        .all(|name| header.contains(name));
    let columns = if named {
        DataConfig {
            label: Some(ColumnRef::Name(meta.label.clone())),
            features: Some(meta.features.iter().cloned().map(ColumnRef::Name).collect()),
            ..DataConfig::default()
        }
    } else {
        DataConfig::default()
    };
    let table = Table::from_csv(&bytes, &source, &columns)?;
    if table.width() != meta.features.len() {
        return Err(Error::Data {
            source_name: source,
            message: format!(
                "{} feature columns, but the model takes {} ({})",
                table.width(),
                meta.features.len(),
                meta.features.join(", ")
            ),
        });
    }
    let unknown: Vec<&String> = table
        .class_names
        .iter()
        .filter(|c| !meta.classes.contains(c))
        .collect();
    if !unknown.is_empty() {
        return Err(Error::Data {
            source_name: source,
            message: format!(
                "labels the model was not trained on: {}; it knows {}",
                unknown
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                meta.classes.join(", ")
            ),
        });
    }
    let labels: Vec<usize> = table
        .labels
        .iter()
        .map(|&l| {
            meta.classes
                .iter()
                .position(|c| *c == table.class_names[l])
                .unwrap_or(0)
        })
        .collect();
    let logits = predictor.logits(&table.features)?;
    let eval = Evaluation::from_logits(&logits, &labels, &meta.classes);
    let text = match a.format {
        ReportFormat::Text => format!("{source}\n{}", eval.report(&meta.classes)),
        ReportFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({"data": source, "evaluation": eval}))
                .unwrap_or_default()
        ),
    };
    emit(&text)
}

fn info_command(a: InfoArgs) -> Result<()> {
    let dir = ModelDir::new(&a.model.model);
    let meta = dir.read_metadata()?;
    match a.format {
        ReportFormat::Text => emit(&meta.summary()),
        ReportFormat::Json => emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&meta).unwrap_or_default()
        )),
    }
}

fn serve_command(a: ServeArgs, g: &GlobalArgs) -> Result<()> {
    let mut addr = a.addr;
    if let Some(port) = a.port {
        addr.set_port(port);
    }
    let predictor = load_predictor(&a.model.model, g)?;
    serve(
        predictor,
        ServeOptions {
            addr,
            model_name: a.model_name,
            max_instances: a.max_instances,
            max_body_bytes: a.max_body_bytes,
            timeout: std::time::Duration::from_secs(a.timeout.max(1)),
            max_concurrency: a.max_concurrency.max(1),
            quiet: g.quiet,
        },
    )
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
