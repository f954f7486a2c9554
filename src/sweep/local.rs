//! A sweep trained on this machine: every point in its own process, some at a time, with an
//! MLflow parent run when tracked, stopped cleanly by a signal. Progress goes to a
//! [`SweepObserver`]; nothing here prints or exits.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use super::{RankBy, Report, Sweep, end_parent_run, report, start_parent_run};
use crate::config::TrainConfig;
use crate::crossval::CrossValidationRun;
use crate::error::{Error, Result, Signal, exit_code};
use crate::track::{ActiveRun, RunStatus, Tracker};
use crate::train::Interrupter;

/// How often a running point is checked for its end and for a signal.
const POLL: Duration = Duration::from_millis(50);

/// How a local sweep runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalOptions {
    /// Points trained at once [default: the number of CPUs]; never more than the points.
    pub jobs: Option<usize>,
    /// Every point cross-validates on this many folds; checked for every point before any
    /// trains.
    pub folds: Option<usize>,
    /// The metric that ranks the points [default: by the task].
    pub rank_by: Option<RankBy>,
}

/// The command that trains one point, given its index and, when the sweep is tracked, the id of
/// the parent run it belongs under. Its standard output is discarded; its standard error is
/// read for warnings and, when it fails, for the reason.
pub trait PointCommand: Sync {
    /// The command for point `index`.
    fn command(&self, index: usize, parent_run_id: Option<&str>) -> Command;
}

impl<F: Fn(usize, Option<&str>) -> Command + Sync> PointCommand for F {
    fn command(&self, index: usize, parent_run_id: Option<&str>) -> Command {
        self(index, parent_run_id)
    }
}

/// Hears how a local sweep goes, on the thread that called [`LocalSweep::run`].
pub trait SweepObserver {
    /// The sweep's parent run was created.
    fn parent_run(&mut self, _tracker: &Tracker, _run: &ActiveRun) {}
    /// A point that trained printed this warning line (its other output is not shown).
    fn point_warning(&mut self, _index: usize, _line: &str) {}
    /// A point ended: trained, or failed (the outcome says why). Points stopped by a signal
    /// are not told.
    fn point_done(&mut self, _index: usize, _trained: bool) {}
    /// Something that does not stop the sweep went wrong (its parent run's tracking failed).
    fn warning(&mut self, _message: &str) {}
}

/// Why a point's process failed.
#[derive(Debug, thiserror::Error)]
pub enum PointError {
    /// It could not be started or waited for.
    #[error("{0}")]
    Process(std::io::Error),
    /// It failed; what it printed on standard error.
    #[error("{stderr}")]
    Exited {
        /// How it ended.
        status: ExitStatus,
        /// Its standard error, trimmed.
        stderr: String,
    },
}

/// A point that failed.
#[derive(Debug, thiserror::Error)]
#[error("point {index}: {reason}")]
pub struct PointFailure {
    /// The point.
    pub index: usize,
    /// Why.
    pub reason: PointError,
}

/// The points of a local sweep that failed, by index.
#[derive(Debug, thiserror::Error)]
#[error("{} of {points} sweep points failed:\n{}", .failures.len(), list(.failures))]
pub struct PointsFailed {
    /// Points in the sweep.
    pub points: usize,
    /// The failed ones, in index order.
    pub failures: Vec<PointFailure>,
}

fn list(failures: &[PointFailure]) -> String {
    failures
        .iter()
        .map(|f| format!("  {f}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Why a local sweep did not finish.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A configuration, data, tracking or output error, before the points ran or in the report.
    #[error(transparent)]
    Run(#[from] Error),
    /// A signal stopped it: the points under way were stopped, the parent run ended KILLED and
    /// no report was written.
    #[error("sweep interrupted by {signal}")]
    Interrupted {
        /// The signal.
        signal: Signal,
    },
    /// Some points failed (the others were trained and reported).
    #[error(transparent)]
    PointsFailed(#[from] PointsFailed),
}

impl SweepError {
    /// The process exit code for this error: a signal's is 128 + its number.
    pub fn exit_code(&self) -> u8 {
        match self {
            SweepError::Run(e) => e.exit_code(),
            SweepError::Interrupted { signal } => signal.exit_code(),
            SweepError::PointsFailed(_) => exit_code::FAILURE,
        }
    }
}

/// What a local sweep did.
#[derive(Debug)]
pub struct SweepOutcome {
    /// The report of the finished points, also written into the sweep's directory; `None` when
    /// no point finished.
    pub report: Option<Report>,
    /// The points that failed; `None` when every point trained.
    pub failed: Option<PointsFailed>,
}

/// A sweep to train on this machine, each point in its own process (the backends seed one
/// global generator per process, so points trained side by side in one process would not be
/// reproducible), [`LocalSweep::jobs`] at a time.
#[derive(Debug)]
pub struct LocalSweep {
    sweep: Sweep,
    file: PathBuf,
    base: TrainConfig,
    jobs: usize,
    rank_by: Option<RankBy>,
}

impl LocalSweep {
    /// Checks every point of `sweep` (read from `file`) against `base` before any is trained,
    /// and with `options.folds`, that its data can be dealt into that many folds (once per
    /// distinct data and hold-out setting).
    pub fn prepare(
        sweep: Sweep,
        file: &Path,
        base: TrainConfig,
        origin: &str,
        options: &LocalOptions,
    ) -> Result<Self> {
        sweep.validate_all(&base, origin)?;
        if let Some(k) = options.folds {
            let mut checked = std::collections::BTreeSet::new();
            for i in 0..sweep.len() {
                let (c, point_origin, _) = sweep.resolve(&base, origin, i)?;
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
        let jobs = options
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .clamp(1, sweep.len());
        Ok(LocalSweep {
            sweep,
            file: file.to_path_buf(),
            base,
            jobs,
            rank_by: options.rank_by,
        })
    }

    /// Points in the sweep.
    pub fn points(&self) -> usize {
        self.sweep.len()
    }

    /// Points trained at once.
    pub fn jobs(&self) -> usize {
        self.jobs
    }

    /// The sweep's directory: one `point-NNN` directory per point, and the report.
    pub fn root(&self) -> &Path {
        &self.base.output.dir
    }

    /// Trains every point with `command`, [`LocalSweep::jobs`] at a time, then writes the
    /// report. With `tracker`, a parent run holds the points' runs and ends FINISHED, FAILED or
    /// KILLED as the sweep did.
    ///
    /// When `interrupter` is raised, no further point starts, the running ones are asked to
    /// stop (as SIGTERM asks a training run) and waited for, and the sweep ends with
    /// [`SweepError::Interrupted`].
    pub fn run(
        &self,
        tracker: Option<&Tracker>,
        command: &dyn PointCommand,
        observer: &mut dyn SweepObserver,
        interrupter: &Interrupter,
    ) -> std::result::Result<SweepOutcome, SweepError> {
        let root = self.root();
        let mut parent = match tracker {
            None => None,
            Some(tracker) => {
                let run = start_parent_run(tracker, &self.base, &self.file, &self.sweep)?;
                observer.parent_run(tracker, &run);
                Some(run)
            }
        };
        let parent_id = parent.as_ref().map(|r| r.run_id().to_string());
        let mut failures = self.train_points(command, parent_id.as_deref(), observer, interrupter);
        if let Some(signal) = interrupter.signal() {
            if let Some(run) = parent.as_mut() {
                run.end(RunStatus::Killed);
            }
            return Err(SweepError::Interrupted { signal });
        }
        failures.sort_by_key(|f| f.index);
        let failed: Vec<usize> = failures.iter().map(|f| f.index).collect();
        let reported = match report(root, self.rank_by, Some(self.points()), &failed) {
            Ok(report) => report.write(root).map(|()| Some(report)),
            // Nothing finished: the failures say why.
            Err(_) if !failures.is_empty() => Ok(None),
            Err(e) => Err(e),
        };
        if let Some(run) = parent.as_mut() {
            let report = reported.as_ref().ok().and_then(Option::as_ref);
            end_parent_run(run, root, report, failures.len(), self.points());
            if let Some(w) = run.take_warning() {
                observer.warning(&w);
            }
        }
        let report = reported?;
        let failed = (!failures.is_empty()).then(|| PointsFailed {
            points: self.points(),
            failures,
        });
        Ok(SweepOutcome { report, failed })
    }

    /// Runs the points in `jobs` worker threads, each starting one point's process after
    /// another; tells `observer` (on this thread) as they end. Returns the failures.
    fn train_points(
        &self,
        command: &dyn PointCommand,
        parent_run_id: Option<&str>,
        observer: &mut dyn SweepObserver,
        interrupter: &Interrupter,
    ) -> Vec<PointFailure> {
        let next = AtomicUsize::new(0);
        let mut failures = Vec::new();
        std::thread::scope(|scope| {
            let (ended, ends) = mpsc::channel();
            for _ in 0..self.jobs {
                let ended = ended.clone();
                let next = &next;
                scope.spawn(move || {
                    while interrupter.signal().is_none() {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= self.points() {
                            break;
                        }
                        let end = run_point(command.command(index, parent_run_id), interrupter);
                        if ended.send((index, end)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(ended);
            for (index, end) in ends {
                match end {
                    PointEnd::Trained { warnings } => {
                        for line in &warnings {
                            observer.point_warning(index, line);
                        }
                        observer.point_done(index, true);
                    }
                    PointEnd::Failed(reason) => {
                        observer.point_done(index, false);
                        failures.push(PointFailure { index, reason });
                    }
                    PointEnd::Stopped => {}
                }
            }
        });
        failures
    }
}

/// How one point's process ended.
enum PointEnd {
    /// It trained; the warning lines it printed.
    Trained { warnings: Vec<String> },
    /// It failed.
    Failed(PointError),
    /// A signal stopped the sweep while it ran.
    Stopped,
}

/// Runs one point's process to its end, asking it to stop when `interrupter` is raised.
fn run_point(mut command: Command, interrupter: &Interrupter) -> PointEnd {
    let spawned = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return PointEnd::Failed(PointError::Process(e)),
    };
    // Read as it comes, so that a point never waits on a full pipe.
    let stderr = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    });
    let mut asked_to_stop = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(e);
            }
        }
        if !asked_to_stop && interrupter.signal().is_some() {
            ask_to_stop(&mut child);
            asked_to_stop = true;
        }
        std::thread::sleep(POLL);
    };
    let stderr = stderr
        .and_then(|reader| reader.join().ok())
        .unwrap_or_default();
    if interrupter.signal().is_some() {
        return PointEnd::Stopped;
    }
    let stderr = String::from_utf8_lossy(&stderr);
    match status {
        Err(e) => PointEnd::Failed(PointError::Process(e)),
        Ok(status) if status.success() => PointEnd::Trained {
            warnings: stderr
                .lines()
                .filter(|l| l.starts_with("warning: "))
                .map(str::to_string)
                .collect(),
        },
        Ok(status) => PointEnd::Failed(PointError::Exited {
            status,
            stderr: stderr.trim().to_string(),
        }),
    }
}

/// Asks a point's process to stop: SIGTERM where this build can send it (the point then stops
/// between epochs, saves its checkpoint when it keeps one and ends its own tracked run as
/// KILLED), otherwise it is killed.
fn ask_to_stop(child: &mut Child) {
    #[cfg(unix)]
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: `kill` takes no pointers; the child has not been waited for, so its pid is
        // still its own.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        return;
    }
    let _ = child.kill();
}
