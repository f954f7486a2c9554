//! One function per subcommand: turn the arguments into library calls, print, return errors.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use iris_trainer::artifact::ModelDir;
use iris_trainer::backend::{self, Backend, DeviceKind, TrainBackend};
use iris_trainer::config::TrainConfig;
use iris_trainer::crossval::CrossValidationRun;
use iris_trainer::data;
use iris_trainer::error::{Error, Result};
use iris_trainer::metadata::CrossValidation;
use iris_trainer::metrics::Scores;
use iris_trainer::predict::{PredictionFormat, Predictor, format_rows};
use iris_trainer::serve::ServeOptions;
use iris_trainer::sweep::{self, Sweep};
use iris_trainer::track::{RunStatus, Tracker};
use iris_trainer::train::Interrupter;
use iris_trainer::{TrainRun, evaluate as evaluate_model};
use serde_json::json;

use super::progress::{Progress, ProgressMode};
use super::{
    CrossValidateArgs, EvaluateArgs, GlobalArgs, HealthcheckArgs, InfoArgs, PredictArgs,
    ReportFormat, ServeArgs, SweepArgs, SweepReportArgs, TableFormat, TrainArgs,
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

pub fn train(a: TrainArgs, g: &GlobalArgs) -> Result<()> {
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
    let saved = match &tracker {
        Some(t) => t.train::<TrainBackend>(
            run,
            &selected.device,
            selected.info,
            &mut progress,
            &interrupter,
        ),
        None => {
            run.run::<TrainBackend>(&selected.device, selected.info, &mut progress, &interrupter)
        }
    }?;
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
    ))
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

/// Trains every point in its own process (the backends seed one global generator per process,
/// so points trained side by side in one process would not be reproducible), `jobs` at a time.
pub fn sweep(a: SweepArgs, g: &GlobalArgs) -> Result<()> {
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
    // Every point's config is checked before any training starts, and with --folds, that its
    // data can be dealt into that many folds (once per distinct data and hold-out setting).
    sweep.validate_all(&config, &origin)?;
    if let Some(k) = a.train.folds {
        let mut checked = std::collections::BTreeSet::new();
        for i in 0..sweep.len() {
            let (c, point_origin, _) = sweep.resolve(&config, &origin, i)?;
            let key = serde_json::json!([
                c.data,
                c.preprocess,
                c.training.early_stopping_patience.is_some(),
                c.training.validation_fraction
            ])
            .to_string();
            if checked.insert(key) {
                CrossValidationRun::prepare(c, &point_origin, k)?;
            }
        }
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
        .map_err(|e| Error::Internal(format!("cannot find this program to run the points: {e}")))?;
    let mut base_args = a.train.to_args();
    // With tracking: one parent run, and each point's run its child.
    let parent = match a.train.tracking() {
        None => None,
        Some(options) => {
            let tracker = Tracker::connect(options)?;
            let run = sweep::start_parent_run(&tracker, &config, &path, &sweep)?;
            if !g.quiet {
                eprintln!(
                    "tracking in MLflow at {}: parent run {} (experiment id {})",
                    tracker.uri(),
                    run.run_id(),
                    tracker.experiment_id()
                );
            }
            base_args.push("--parent-run-id".into());
            base_args.push(run.run_id().into());
            Some(run)
        }
    };
    let parent = std::sync::Mutex::new(parent);
    let done = std::sync::atomic::AtomicBool::new(false);
    let interrupter = Interrupter::new();
    if parent.lock().is_ok_and(|p| p.is_some()) {
        stop_on_signals(&interrupter);
    }
    let next = AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        if parent.lock().is_ok_and(|p| p.is_some()) {
            // Ctrl-C or SIGTERM ends the parent run as KILLED and exits at once, as an untracked
            // sweep does; points already started finish (or are stopped) on their own.
            scope.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    if let Some(signal) = interrupter.signal() {
                        if let Ok(mut p) = parent.lock()
                            && let Some(run) = p.as_mut()
                        {
                            run.end(RunStatus::Killed);
                        }
                        eprintln!("error: sweep interrupted by {signal}");
                        std::process::exit(signal.exit_code().into());
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            });
        }
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
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
                        if let Ok(o) = &out
                            && ok
                        {
                            // A point's warnings (e.g. its tracking failed) are shown even though its
                            // output is otherwise kept quiet.
                            for line in String::from_utf8_lossy(&o.stderr)
                                .lines()
                                .filter(|l| l.starts_with("warning: "))
                            {
                                eprintln!("point {i}: {line}");
                            }
                        }
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
                })
            })
            .collect();
        for worker in workers {
            let _ = worker.join();
        }
        done.store(true, Ordering::Relaxed);
    });
    let mut parent = parent.into_inner().unwrap_or_default();
    let mut failures = failures.into_inner().unwrap_or_default();
    failures.sort();
    let failed: Vec<usize> = failures.iter().map(|(i, _)| *i).collect();
    let reported = match sweep::report(&root, a.rank_by.map(Into::into), Some(sweep.len()), &failed)
    {
        Ok(report) => report.write(&root).map(|()| Some(report)),
        // Nothing finished: the failures below say why.
        Err(_) if !failures.is_empty() => Ok(None),
        Err(e) => Err(e),
    };
    if let Some(run) = parent.as_mut() {
        let report = reported.as_ref().ok().and_then(Option::as_ref);
        sweep::end_parent_run(run, &root, report, failures.len(), sweep.len());
        if let Some(w) = run.take_warning() {
            eprintln!("warning: {w}");
        }
    }
    if let Some(report) = reported? {
        emit(&report.markdown())?;
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
                let p = predictor
                    .predict_rows(&chunk.table)
                    .map_err(|e| shift_rows(e, chunk.first_row))?;
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
            let row = predictor.parse_row(&a.values)?;
            let p = predictor.predict_rows(&row).map_err(|e| match e {
                Error::Input(m) => Error::Input(m.replacen("row 1, ", "", 1)),
                other => other,
            })?;
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

/// A chunk's row numbers made file-wide.
fn shift_rows(e: Error, first_row: usize) -> Error {
    match e {
        Error::Input(m) => match m
            .strip_prefix("row ")
            .and_then(|r| r.split_once(','))
            .and_then(|(n, rest)| Some((n.parse::<usize>().ok()?, rest)))
        {
            Some((n, rest)) => Error::Input(format!("row {},{rest}", n + first_row)),
            None => Error::Input(m),
        },
        other => other,
    }
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
    let meta = ModelDir::new(&a.model.model).read_metadata()?;
    match a.format {
        ReportFormat::Text => emit(&meta.summary()),
        ReportFormat::Json => emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&meta).unwrap_or_default()
        )),
    }
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
