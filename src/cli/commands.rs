//! One function per subcommand: turn the arguments into library calls, print, return errors.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use iris_trainer::artifact::{FileState, ModelDir};
use iris_trainer::backend::{self, Backend, DeviceKind, TrainBackend};
use iris_trainer::config::TrainConfig;
use iris_trainer::crossval::CrossValidationRun;
use iris_trainer::data;
use iris_trainer::error::{Error, Result};
use iris_trainer::metadata::CrossValidation;
use iris_trainer::metrics::Scores;
use iris_trainer::predict::{PredictionFormat, Predictor, format_rows};
use iris_trainer::serve::ServeOptions;
use iris_trainer::sweep::{self, LocalOptions, LocalSweep, Sweep, SweepError, SweepObserver};
use iris_trainer::track::{ActiveRun, Tracker};
use iris_trainer::train::Interrupter;
use iris_trainer::{TrainRun, evaluate as evaluate_model};
use serde_json::json;

use super::progress::{Progress, ProgressMode};
use super::{
    CrossValidateArgs, EvaluateArgs, ExportArgs, ExportFormat, GlobalArgs, HealthcheckArgs,
    InfoArgs, PredictArgs, ReportFormat, ServeArgs, SweepArgs, SweepReportArgs, TableFormat,
    TrainArgs,
};

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::WriteOutput {
            what: "standard output".into(),
            source: e,
        }),
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

/// Raises `interrupter` on SIGINT/SIGTERM so training stops between epochs; a second signal
/// exits at once.
fn stop_on_signals(interrupter: &Interrupter) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::flag;
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
        let _ = flag::register_usize(sig, interrupter.flag(), sig as usize);
    }
}

/// The config file (or the defaults) with the command-line overrides applied, not yet
/// validated, and where it came from (for messages).
fn resolve_config(a: &TrainArgs) -> Result<(TrainConfig, String)> {
    let (mut config, origin) = match &a.config {
        Some(path) => (TrainConfig::from_file(path)?, path.display().to_string()),
        None => (TrainConfig::default(), "(built-in defaults)".to_string()),
    };
    config.apply(&a.overrides());
    Ok((config, format!("{origin} with command-line overrides")))
}

/// `--register-model NAME`, checked before anything is trained: it needs a tracking server and
/// a name (the registry judges the rest).
fn registered_name(a: &TrainArgs, command: &str) -> Result<Option<String>> {
    let Some(name) = &a.register_model else {
        return Ok(None);
    };
    let refuse = |reason: &str| Error::ConfigValue {
        origin: "command line".into(),
        key: "--register-model".into(),
        value: name.clone(),
        reason: reason.into(),
    };
    if command != "train" {
        return Err(refuse(&format!(
            "registers the one model `train` saves; `{command}` does not take it"
        )));
    }
    if a.tracking().is_none() {
        return Err(refuse(
            "the model registry is the tracking server's: add --tracking-uri (or set \
             MLFLOW_TRACKING_URI)",
        ));
    }
    if name.trim().is_empty() {
        return Err(refuse("a registered model needs a name"));
    }
    Ok(Some(name.clone()))
}

pub fn train(a: TrainArgs, g: &GlobalArgs) -> Result<()> {
    let register = registered_name(&a, "train")?;
    let (config, origin) = resolve_config(&a)?;
    let (config, origin, sweep_info) = match &a.sweep {
        None => (config, origin, None),
        Some(path) => {
            let sweep = Sweep::from_file(path)?;
            let index = a.sweep_index.ok_or_else(|| Error::ConfigValue {
                origin: path.display().to_string(),
                key: "--sweep-index".into(),
                value: "(none)".into(),
                reason: format!(
                    "say which of its {} points to train with --sweep-index N or \
                     JOB_COMPLETION_INDEX, or train them all with `iris-trainer sweep`",
                    sweep.len()
                ),
            })?;
            let (config, origin, info) = sweep.resolve(&config, &origin, index)?;
            (config, origin, Some(info))
        }
    };
    let run = TrainRun::prepare(config, &origin, sweep_info, a.folds)?;
    // An unreachable tracking server stops the run here, before anything is trained.
    let tracker = a.tracking().map(Tracker::connect).transpose()?;
    let selected = init_device(g)?;
    if !g.quiet {
        eprint!("{}", run.describe_data());
        if let Some(t) = &tracker {
            eprintln!(
                "tracking in MLflow at {} (experiment id {})",
                t.uri(),
                t.experiment_id()
            );
        }
    }
    let out = run.output().path().to_path_buf();
    let interrupter = Interrupter::new();
    stop_on_signals(&interrupter);
    let mut progress = Progress::new(ProgressMode::detect(g.quiet));
    let (saved, logged) = match &tracker {
        Some(t) => t
            .train::<TrainBackend>(
                run,
                &selected.device,
                selected.info,
                &mut progress,
                &interrupter,
            )
            .map(|(saved, logged)| (saved, Some(logged)))?,
        None => (
            run.run::<TrainBackend>(&selected.device, selected.info, &mut progress, &interrupter)?,
            None,
        ),
    };
    drop(progress);
    let widths = saved
        .model
        .widths()
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("-");
    let early = if saved.metrics.stopped_early {
        format!(", stopped early, best {}", saved.metrics.best_epoch)
    } else {
        String::new()
    };
    let scores = match &saved.metrics.test {
        Scores::Classification(t) => format!(
            "test accuracy {:.4} ({}/{}), test loss {:.4}",
            t.accuracy,
            (t.accuracy * t.rows as f64).round() as usize,
            t.rows,
            t.loss
        ),
        Scores::Regression(t) => format!(
            "test r2 {:.4}, rmse {:.4}, mae {:.4} ({} rows)",
            t.r2, t.rmse, t.mae, t.rows
        ),
    };
    let cv = saved
        .metrics
        .cross_validation
        .as_ref()
        .map(|cv| format!("; {}", cv_headline(cv)))
        .unwrap_or_default();
    emit(&format!(
        "trained {widths} MLP in {:.2}s ({} epochs{early}): {scores}{cv}; model saved to {}\n",
        saved.duration_s,
        saved.metrics.epochs_run,
        out.display()
    ))?;
    if let (Some(name), Some(tracker), Some(logged)) = (register, &tracker, &logged) {
        let version = tracker.register_model(logged, &name)?;
        emit(&format!(
            "registered {} as version {} of {:?} in MLflow's model registry\n",
            version.uri(),
            version.version,
            version.name
        ))?;
    }
    Ok(())
}

/// `cv accuracy 0.9583 ± 0.0264 (5 folds)`: the first headline metric's mean and spread.
fn cv_headline(cv: &CrossValidation) -> String {
    let key = ["accuracy", "r2"]
        .into_iter()
        .find(|k| cv.mean.contains_key(*k))
        .unwrap_or("loss");
    format!(
        "cv {key} {:.4} ± {:.4} ({} folds)",
        cv.mean.get(key).copied().unwrap_or(f64::NAN),
        cv.std.get(key).copied().unwrap_or(f64::NAN),
        cv.k
    )
}

/// Cross-validates the training flags' model on K folds (5 unless --folds says) of the training
/// split, one fold after another in this process (reproducible: the backends seed one global
/// generator per process), and prints the folds' scores. Writes nothing.
pub fn cross_validate(a: CrossValidateArgs, g: &GlobalArgs) -> Result<()> {
    registered_name(&a.train, "cross-validate")?;
    if a.train.sweep.is_some() {
        return Err(Error::ConfigValue {
            origin: "command line".into(),
            key: "--sweep".into(),
            value: a
                .train
                .sweep
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            reason: "`cross-validate` takes one configuration; to cross-validate every point of \
                     a sweep, run `iris-trainer sweep --folds K --sweep FILE`"
                .into(),
        });
    }
    let (config, origin) = resolve_config(&a.train)?;
    let k = a.train.folds.unwrap_or(5);
    let run = CrossValidationRun::prepare(config, &origin, k)?;
    let selected = init_device(g)?;
    if !g.quiet {
        eprint!("{}", run.dataset().describe());
        eprintln!(
            "{k} folds of {} training rows (seed {}; the {} test rows are left out)",
            run.folds().iter().map(|f| f.held_out.len()).sum::<usize>(),
            run.config().split_seed(),
            run.test_rows().len()
        );
    }
    let interrupter = Interrupter::new();
    stop_on_signals(&interrupter);
    let mut progress = Progress::new(ProgressMode::detect(g.quiet));
    let cv = run.run::<TrainBackend>(&selected.device, &mut progress, &interrupter)?;
    drop(progress);
    emit(&match a.format {
        ReportFormat::Text => cv.text(),
        ReportFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&cv).unwrap_or_default()
        ),
    })
}

/// Trains every point of a sweep on this machine, each in its own process, `--jobs` at a time,
/// then ranks them. A signal stops the points under way and exits 128 + its number.
pub fn sweep(a: SweepArgs, g: &GlobalArgs) -> std::result::Result<(), SweepError> {
    registered_name(&a.train, "sweep")?;
    let Some(path) = a.train.sweep.clone() else {
        return Err(Error::ConfigValue {
            origin: "command line".into(),
            key: "--sweep".into(),
            value: "(none)".into(),
            reason: "`iris-trainer sweep` needs --sweep FILE".into(),
        }
        .into());
    };
    let sweep = Sweep::from_file(&path)?;
    let (config, origin) = resolve_config(&a.train)?;
    let options = LocalOptions {
        jobs: a.jobs,
        folds: a.train.folds,
        rank_by: a.rank_by.map(Into::into),
    };
    let local = LocalSweep::prepare(sweep, &path, config, &origin, &options)?;
    if !g.quiet {
        eprintln!(
            "sweep {}: {} points into {}, {} at a time",
            path.display(),
            local.points(),
            local.root().display(),
            local.jobs()
        );
    }
    let exe = std::env::current_exe()
        .map_err(|e| Error::Internal(format!("cannot find this program to run the points: {e}")))?;
    let tracker = a.train.tracking().map(Tracker::connect).transpose()?;
    let base_args = a.train.to_args();
    let command = |index: usize, parent_run_id: Option<&str>| {
        let mut c = std::process::Command::new(&exe);
        c.arg("train").arg("--quiet").args(&base_args);
        if let Some(id) = parent_run_id {
            c.arg("--parent-run-id").arg(id);
        }
        c.arg("--sweep-index")
            .arg(index.to_string())
            .env_remove("JOB_COMPLETION_INDEX");
        c
    };
    let interrupter = Interrupter::new();
    stop_on_signals(&interrupter);
    let outcome = local.run(
        tracker.as_ref(),
        &command,
        &mut SweepProgress { quiet: g.quiet },
        &interrupter,
    )?;
    if let Some(report) = &outcome.report {
        emit(&report.markdown())?;
    }
    match outcome.failed {
        Some(failed) => Err(failed.into()),
        None => Ok(()),
    }
}

/// A local sweep's progress on stderr; a point's warnings even with `--quiet`.
struct SweepProgress {
    quiet: bool,
}

impl SweepObserver for SweepProgress {
    fn parent_run(&mut self, tracker: &Tracker, run: &ActiveRun) {
        if !self.quiet {
            eprintln!(
                "tracking in MLflow at {}: parent run {} (experiment id {})",
                tracker.uri(),
                run.run_id(),
                tracker.experiment_id()
            );
        }
    }

    fn point_warning(&mut self, index: usize, line: &str) {
        eprintln!("point {index}: {line}");
    }

    fn point_done(&mut self, index: usize, trained: bool) {
        if !self.quiet {
            eprintln!("point {index}: {}", if trained { "done" } else { "FAILED" });
        }
    }

    fn warning(&mut self, message: &str) {
        eprintln!("warning: {message}");
    }
}

pub fn sweep_report(a: SweepReportArgs) -> Result<()> {
    let report = sweep::report(&a.dir, a.rank_by.map(Into::into), None, &[])?;
    report.write(&a.dir)?;
    emit(&match a.format {
        TableFormat::Markdown => report.markdown(),
        TableFormat::Csv => report.csv(),
        TableFormat::Json => report.json(),
    })?;
    if let Some(best_dir) = &a.best {
        let best = report.install_best(best_dir)?;
        eprintln!(
            "best: point {} ({} {:.4}{}) copied to {}",
            best.index,
            report.ranked_by,
            best.score,
            best.score_std
                .map(|sd| format!(" ± {sd:.4}"))
                .unwrap_or_default(),
            best_dir.display()
        );
    }
    Ok(())
}

fn load_predictor(model: &Path, g: &GlobalArgs) -> Result<Predictor<Backend>> {
    // Check the directory before touching the device, so a wrong path is reported first.
    ModelDir::new(model).read_metadata()?;
    let selected = backend::init(g.require_gpu)?;
    Predictor::load(model, &selected.device)
}

pub fn predict(a: PredictArgs, g: &GlobalArgs) -> Result<()> {
    let predictor = load_predictor(&a.model.model, g)?;
    let format = a.format.into();
    let mut unseen = data::Unseen::default();
    match &a.input {
        Some(path) => {
            let source = if path.as_os_str() == "-" {
                data::Source::Stdin
            } else {
                data::Source::Path(path.clone())
            };
            // Rows are read, predicted and written chunk by chunk: memory stays flat whatever
            // the file's size. JSON is one object, so its rows are collected.
            let mut rows = 0usize;
            let mut all = Vec::new();
            for (i, chunk) in predictor.open_rows(&source, true)?.enumerate() {
                let chunk = chunk?;
                rows += chunk.table.rows();
                let p = predictor.predict_chunk(&chunk)?;
                unseen.merge(p.unseen);
                if format == PredictionFormat::Json {
                    all.extend(p.rows);
                } else {
                    emit(&format_rows(&p.rows, predictor.classes(), format, i == 0)?)?;
                }
            }
            if rows == 0 {
                return Err(Error::Input(format!(
                    "{}: no rows to predict",
                    source.name()
                )));
            }
            if format == PredictionFormat::Json {
                emit(&format_rows(&all, predictor.classes(), format, true)?)?;
            }
        }
        None => {
            let p = predictor.predict_values(&a.values)?;
            unseen.merge(p.unseen);
            emit(&format_rows(&p.rows, predictor.classes(), format, true)?)?;
        }
    }
    if unseen.total() > 0 && !g.quiet {
        eprintln!(
            "warning: {} value(s) of categorical columns were never seen in training and were \
             encoded as all zeros: {}",
            unseen.total(),
            unseen.describe()
        );
    }
    Ok(())
}

pub fn evaluate(a: EvaluateArgs, g: &GlobalArgs) -> Result<()> {
    let predictor = load_predictor(&a.model.model, g)?;
    let report = evaluate_model(&predictor, a.data.as_deref())?;
    if !g.quiet {
        if report.dropped_rows > 0 {
            eprintln!(
                "note: {} row(s) with a missing label left out",
                report.dropped_rows
            );
        }
        if report.unseen_categories > 0 {
            eprintln!(
                "warning: {} value(s) of categorical columns were never seen in training and were \
                 encoded as all zeros",
                report.unseen_categories
            );
        }
    }
    emit(&match a.format {
        ReportFormat::Text => format!(
            "{}\n{}",
            report.data,
            report.evaluation.report(predictor.classes())
        ),
        ReportFormat::Json => {
            // The headline scores at the top level (`accuracy`, or `r2`, `rmse`, `mae`), then
            // the whole report.
            let mut v = json!({});
            match &report.evaluation {
                Scores::Classification(e) => {
                    v["accuracy"] = json!(e.accuracy);
                    v["loss"] = json!(e.loss);
                }
                Scores::Regression(e) => {
                    v["r2"] = json!(e.r2);
                    v["rmse"] = json!(e.rmse);
                    v["mae"] = json!(e.mae);
                    v["loss"] = json!(e.loss);
                }
            }
            v["rows"] = json!(report.evaluation.rows());
            if let (Some(obj), serde_json::Value::Object(rest)) = (v.as_object_mut(), json!(report))
            {
                obj.extend(rest);
            }
            format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
        }
    })
}

pub fn info(a: InfoArgs) -> Result<()> {
    let dir = ModelDir::new(&a.model.model);
    let meta = dir.read_metadata()?;
    match a.format {
        ReportFormat::Text => emit(&meta.summary())?,
        ReportFormat::Json => emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&meta).unwrap_or_default()
        ))?,
    }
    // The model itself is usable without these: say what is wrong, do not fail.
    for (file, state) in dir.check_files(&meta) {
        let problem = match state {
            FileState::Ok => continue,
            FileState::Missing => "is missing",
            FileState::Changed => "does not match the SHA-256 in model.json",
        };
        let export = match file.file.as_str() {
            iris_trainer::artifact::ONNX_FILE => {
                "`iris-trainer export --format onnx` rewrites \
                 model.onnx"
            }
            _ => "`iris-trainer export` rewrites model.safetensors",
        };
        eprintln!(
            "warning: {} {problem}; {export}, retraining rewrites every file",
            dir.path().join(&file.file).display()
        );
    }
    Ok(())
}

pub fn export(a: ExportArgs, g: &GlobalArgs) -> Result<()> {
    use iris_trainer::pipeline::{self, ExportFormat as Format};
    // Check the directory before touching the device, so a wrong path is reported first.
    ModelDir::new(&a.model.model).read_metadata()?;
    let selected = backend::init(g.require_gpu)?;
    let file = |format| {
        pipeline::export::<Backend>(
            &a.model.model,
            format,
            a.output.as_deref(),
            &selected.device,
        )
    };
    let written = match a.format {
        ExportFormat::Safetensors => file(Format::Safetensors)?,
        ExportFormat::Onnx => file(Format::Onnx)?,
        ExportFormat::TritonRepository => {
            // clap requires --output with this format.
            let repository = a.output.as_deref().ok_or_else(|| {
                Error::Internal("export --format triton-repository without --output".into())
            })?;
            pipeline::export_triton_repository::<Backend>(
                &a.model.model,
                repository,
                &a.model_name,
                &selected.device,
            )?
        }
        ExportFormat::Mlflow => {
            // clap requires --output with this format.
            let output = a
                .output
                .as_deref()
                .ok_or_else(|| Error::Internal("export --format mlflow without --output".into()))?;
            pipeline::export_mlflow_model::<Backend>(&a.model.model, output, &selected.device)?
        }
    };
    if !g.quiet {
        eprintln!("wrote {}", written.display());
    }
    Ok(())
}

pub fn serve(a: ServeArgs, g: &GlobalArgs) -> Result<()> {
    let mut addr = a.addr;
    if let Some(port) = a.port {
        addr.set_port(port);
    }
    let predictor = load_predictor(&a.model.model, g)?;
    iris_trainer::serve::serve(
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

/// `GET /health` on the local service: what a container health check runs, since the CPU image
/// is FROM scratch and has no curl.
pub fn healthcheck(a: HealthcheckArgs) -> Result<()> {
    let url = format!("http://127.0.0.1:{}/health", a.port);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(2)))
        .build()
        .into();
    match agent.get(&url).call() {
        Ok(r) if r.status() == 200 => Ok(()),
        Ok(r) => Err(Error::Unhealthy {
            url,
            reason: format!("answered {}", r.status()),
        }),
        Err(e) => Err(Error::Unhealthy {
            url,
            reason: e.to_string(),
        }),
    }
}
