//! Hyperparameter sweeps: a TOML file of config overrides (a grid, a list, or both), one
//! training run per point, and a report that ranks the points.
//!
//! ```toml
//! [grid]                                   # every combination, last key varying fastest
//! "training.learning_rate" = [0.003, 0.01, 0.03]
//! "model.hidden" = [[16], [32, 16]]
//!
//! [[points]]                               # and/or explicit points, after the grid
//! "training.epochs" = 500
//! "model.dropout" = 0.1
//! ```
//!
//! A sweep's points are trained by index (`train --sweep FILE --sweep-index N`, as a Kubernetes
//! Indexed Job runs them) or all on this machine, by [`LocalSweep`].

mod local;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::artifact::ModelDir;
use crate::config::TrainConfig;
use crate::data::Task;
use crate::error::{Error, Result};
use crate::metadata::{Metadata, SweepInfo};
use crate::plot::SweepPoint;
use crate::track::{ActiveRun, RunStatus, Tracker, config_params};

pub use local::{
    LocalOptions, LocalSweep, PointCommand, PointError, PointFailure, PointsFailed, SweepError,
    SweepObserver, SweepOutcome,
};

/// At most this many points: a grid that multiplies past it is more likely a mistake.
pub const MAX_POINTS: usize = 10_000;

/// Most dotted parts a point's key may have (the configuration's deepest keys, as
/// `data.types.COLUMN`, have three).
pub const MAX_KEY_PARTS: usize = 8;

/// One point: dotted config keys and their values.
pub type Point = BTreeMap<String, toml::Value>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    #[serde(default)]
    grid: BTreeMap<String, Vec<toml::Value>>,
    #[serde(default)]
    points: Vec<Point>,
}

/// A parsed sweep: its points, in index order.
#[derive(Debug, Clone)]
pub struct Sweep {
    origin: String,
    points: Vec<Point>,
}

impl Sweep {
    /// Reads a sweep file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, &origin)
    }

    /// Parses sweep TOML; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self> {
        let err = |message: String| Error::ConfigParse {
            origin: origin.to_string(),
            message,
        };
        let file: SweepFile = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let mut points: Vec<Point> = vec![Point::new()];
        for (key, values) in &file.grid {
            if values.is_empty() {
                return Err(err(format!("grid key `{key}` has no values")));
            }
            if points.len().saturating_mul(values.len()) > MAX_POINTS {
                return Err(err(format!("the grid has more than {MAX_POINTS} points")));
            }
            points = points
                .iter()
                .flat_map(|p| {
                    values.iter().map(move |v| {
                        let mut p = p.clone();
                        p.insert(key.clone(), v.clone());
                        p
                    })
                })
                .collect();
        }
        if file.grid.is_empty() {
            points.clear();
        }
        points.extend(file.points);
        if points.is_empty() {
            return Err(err(
                "no points: add a [grid] table or [[points]] entries".into()
            ));
        }
        if points.len() > MAX_POINTS {
            return Err(err(format!("more than {MAX_POINTS} points")));
        }
        let sweep = Sweep {
            origin: origin.to_string(),
            points,
        };
        // Every point must make a valid config: fail now, not in the 37th pod.
        for i in 0..sweep.len() {
            sweep.apply(&TrainConfig::default(), i)?;
        }
        Ok(sweep)
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether there are no points (never true for a parsed sweep).
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The overrides of point `index`.
    pub fn point(&self, index: usize) -> Result<&Point> {
        self.points.get(index).ok_or_else(|| Error::ConfigValue {
            origin: self.origin.clone(),
            key: "--sweep-index".into(),
            value: index.to_string(),
            reason: format!(
                "out of range: the sweep has {} points (0 to {})",
                self.len(),
                self.len() - 1
            ),
        })
    }

    /// `base` with point `index`'s overrides applied (not yet validated).
    pub fn apply(&self, base: &TrainConfig, index: usize) -> Result<TrainConfig> {
        let origin = format!("{} (point {index})", self.origin);
        let err = |message: String| Error::ConfigParse {
            origin: origin.clone(),
            message,
        };
        let mut value = toml::Value::try_from(base).map_err(|e| err(e.to_string()))?;
        for (key, v) in self.point(index)? {
            // Each part nests a table: a key of thousands of parts is a mistake, not a section.
            let depth = key.split('.').count();
            if depth > MAX_KEY_PARTS {
                return Err(err(format!(
                    "`{}...`: a key of {depth} dotted parts; configuration keys have at most \
                     {MAX_KEY_PARTS} (e.g. `training.epochs`)",
                    key.chars().take(40).collect::<String>()
                )));
            }
            let mut parts = key.split('.').peekable();
            let mut table = value
                .as_table_mut()
                .ok_or_else(|| err("config is not a table".into()))?;
            while let Some(part) = parts.next() {
                if parts.peek().is_none() {
                    table.insert(part.to_string(), v.clone());
                } else {
                    table = table
                        .entry(part.to_string())
                        .or_insert_with(|| toml::Value::Table(Default::default()))
                        .as_table_mut()
                        .ok_or_else(|| err(format!("`{key}`: `{part}` is not a section")))?;
                }
            }
        }
        value
            .try_into::<TrainConfig>()
            .map_err(|e| err(e.to_string().trim_end().to_string()))
    }

    /// Point `index` of this sweep as a run: `base` with its overrides applied, writing into
    /// its own directory under `base.output.dir`, and what to record in its metadata. The
    /// returned origin names the sweep and point for messages; the config is not yet validated.
    pub fn resolve(
        &self,
        base: &TrainConfig,
        base_origin: &str,
        index: usize,
    ) -> Result<(TrainConfig, String, SweepInfo)> {
        let mut fixed = base.clone();
        // Every point is compared on the same rows, even one that overrides `training.seed`
        // (a point may still set `data.split_seed` itself).
        fixed.data.split_seed = Some(base.split_seed());
        let mut config = self.apply(&fixed, index)?;
        config.output.dir = point_dir(&base.output.dir, index);
        let origin = format!("{base_origin} and {} point {index}", self.origin);
        Ok((config, origin, self.info(index)?))
    }

    /// Checks every point's config against `base` before any is trained.
    pub fn validate_all(&self, base: &TrainConfig, base_origin: &str) -> Result<()> {
        for i in 0..self.len() {
            let (config, origin, _) = self.resolve(base, base_origin, i)?;
            config.validate(&origin)?;
        }
        Ok(())
    }

    /// What to record in the point's metadata.
    pub fn info(&self, index: usize) -> Result<SweepInfo> {
        let overrides = self
            .point(index)?
            .iter()
            .map(|(k, v)| {
                let json = serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
                (k.clone(), json)
            })
            .collect();
        Ok(SweepInfo {
            index,
            points: self.len(),
            overrides,
        })
    }
}

/// The directory of point `index` under a sweep's output directory.
pub fn point_dir(root: &Path, index: usize) -> PathBuf {
    root.join(format!("point-{index:03}"))
}

/// The metric points are ranked by. Which scores it is read from is decided by what the points
/// recorded: the mean over cross-validation folds when every point was trained with `--folds`,
/// else the held-out validation rows. Never the test split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankBy {
    /// Accuracy, higher first (classification).
    Accuracy,
    /// Macro-averaged F1, higher first (classification).
    MacroF1,
    /// The training loss, lower first (either task).
    Loss,
    /// R², higher first (regression).
    R2,
    /// Root mean squared error, lower first (regression).
    Rmse,
    /// Mean absolute error, lower first (regression).
    Mae,
}

impl RankBy {
    /// The metric's key in [`crate::metrics::Scores::named`].
    pub fn key(self) -> &'static str {
        match self {
            RankBy::Accuracy => "accuracy",
            RankBy::MacroF1 => "macro_f1",
            RankBy::Loss => "loss",
            RankBy::R2 => "r2",
            RankBy::Rmse => "rmse",
            RankBy::Mae => "mae",
        }
    }

    /// Whether a higher value is better.
    pub fn higher_is_better(self) -> bool {
        matches!(self, RankBy::Accuracy | RankBy::MacroF1 | RankBy::R2)
    }

    /// The metrics a task's models have.
    pub fn choices(task: Task) -> &'static [RankBy] {
        match task {
            Task::Classification => &[RankBy::Accuracy, RankBy::MacroF1, RankBy::Loss],
            Task::Regression => &[RankBy::R2, RankBy::Rmse, RankBy::Mae, RankBy::Loss],
        }
    }

    /// What ranks a task's points when nothing is asked: accuracy, or R².
    pub fn default_for(task: Task) -> RankBy {
        match task {
            Task::Classification => RankBy::Accuracy,
            Task::Regression => RankBy::R2,
        }
    }
}

/// Which held-out scores rank the points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    /// The validation rows each point held out of its training split.
    Validation,
    /// The mean over the cross-validation folds of the training split.
    CrossValidation,
}

impl Selection {
    /// The column prefix: `valid` or `cv_mean`.
    fn prefix(self) -> &'static str {
        match self {
            Selection::Validation => "valid",
            Selection::CrossValidation => "cv_mean",
        }
    }
}

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    /// 1 is best.
    pub rank: usize,
    /// The point's index.
    pub index: usize,
    /// Its model directory.
    pub dir: String,
    /// Its overrides.
    pub overrides: BTreeMap<String, serde_json::Value>,
    /// The value that ranked it: the metric on the validation rows, or its mean over the folds.
    pub score: f64,
    /// The metric's standard deviation over the folds (cross-validation only).
    pub score_std: Option<f64>,
    /// Every metric on the validation rows, or its mean over the folds.
    pub selection: BTreeMap<String, f64>,
    /// Every metric's standard deviation over the folds (cross-validation only).
    pub selection_std: Option<BTreeMap<String, f64>>,
    /// The test split's scores: for information, never used to rank.
    pub test: BTreeMap<String, f64>,
    /// Epochs run.
    pub epochs_run: usize,
    /// Training seconds (of the final model; folds not counted).
    pub duration_s: f64,
}

/// A ranked sweep.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Classification or regression.
    pub task: Task,
    /// The column that decided the ranking, e.g. `cv_mean_accuracy` or `valid_r2`.
    pub ranked_by: String,
    /// The metric ranked by (`accuracy`, `r2`, ...).
    pub metric: String,
    /// Whether higher values of it rank first.
    pub higher_is_better: bool,
    /// Whose scores ranked: the validation rows or the cross-validation folds.
    pub selection: Selection,
    /// The number of folds, with cross-validation.
    pub folds: Option<usize>,
    /// The seed of the splits (and folds) the points were compared on.
    pub split_seed: Option<u64>,
    /// Points found, best first.
    pub rows: Vec<ReportRow>,
    /// Indices of the sweep with no finished model (failed or not run yet).
    pub missing: Vec<usize>,
}

/// Collects the finished points under `root` and ranks them by `rank_by` (`None`: the task's
/// default, [`RankBy::default_for`]) on their validation or cross-validation scores.
///
/// A point counts only if its directory name matches its recorded index; with `sweep_len`, only
/// points of a sweep of that many points count (so leftovers of an earlier, different sweep do
/// not), and the indices in `exclude` (points that just failed, whose directory may still hold an
/// older model) are reported missing. Ties are broken by the loss on the same rows, then by
/// index. A metric of the other task, or points without held-out scores (trained outside a
/// sweep), are errors.
pub fn report(
    root: &Path,
    rank_by: Option<RankBy>,
    sweep_len: Option<usize>,
    exclude: &[usize],
) -> Result<Report> {
    let entries = std::fs::read_dir(root).map_err(|e| Error::model(root, e.to_string()))?;
    let mut metas: Vec<(PathBuf, Metadata)> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("point-") || !entry.path().is_dir() {
            continue;
        }
        if let Ok(meta) = ModelDir::new(entry.path()).read_metadata()
            && let Some(s) = &meta.sweep
            && name == format!("point-{:03}", s.index)
            && sweep_len.is_none_or(|n| s.points == n)
            && !exclude.contains(&s.index)
        {
            metas.push((entry.path(), meta));
        }
    }
    if metas.is_empty() {
        return Err(Error::model(
            root,
            "holds no finished sweep points (point-NNN directories with a model.json); run the sweep first",
        ));
    }
    metas.sort_by_key(|(_, m)| m.sweep.as_ref().map_or(0, |s| s.index));
    let task = metas[0].1.task;
    if let Some((_, m)) = metas.iter().find(|(_, m)| m.task != task) {
        return Err(Error::model(
            root,
            format!(
                "mixes {task} and {} points (point {}): rank one sweep at a time",
                m.task,
                m.sweep.as_ref().map_or(0, |s| s.index)
            ),
        ));
    }
    let rank_by = rank_by.unwrap_or(RankBy::default_for(task));
    if !RankBy::choices(task).contains(&rank_by) {
        return Err(Error::ConfigValue {
            origin: "command line".into(),
            key: "--rank-by".into(),
            value: rank_by.key().replace('_', "-"),
            reason: format!(
                "is not a metric of {task} models, which these points are; use one of: {}",
                RankBy::choices(task)
                    .iter()
                    .map(|r| r.key().replace('_', "-"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let selection = if metas
        .iter()
        .all(|(_, m)| m.metrics.cross_validation.is_some())
    {
        Selection::CrossValidation
    } else {
        let lacking: Vec<usize> = metas
            .iter()
            .filter(|(_, m)| m.metrics.valid.is_none())
            .filter_map(|(_, m)| m.sweep.as_ref().map(|s| s.index))
            .collect();
        if !lacking.is_empty() {
            return Err(Error::model(
                root,
                format!(
                    "point(s) {lacking:?} have no validation or cross-validation scores to rank                      on (trained by an iris-trainer older than model selection): train them                      again with `iris-trainer train --sweep FILE --sweep-index N`"
                ),
            ));
        }
        Selection::Validation
    };
    let total = sweep_len.unwrap_or_else(|| {
        metas
            .iter()
            .filter_map(|(_, m)| m.sweep.as_ref().map(|s| s.points))
            .max()
            .unwrap_or(0)
    });
    let cv_of = |m: &Metadata| m.metrics.cross_validation.clone();
    let folds = cv_of(&metas[0].1).map(|c| c.k);
    let split_seed = Some(metas[0].1.config.split_seed());
    let key = rank_by.key();
    let mut rows: Vec<ReportRow> = metas
        .into_iter()
        .filter_map(|(dir, m)| {
            let (sel, sel_std) = match selection {
                Selection::CrossValidation => {
                    let cv = cv_of(&m)?;
                    (cv.mean, Some(cv.std))
                }
                Selection::Validation => (m.metrics.valid.as_ref()?.named(), None),
            };
            let s = m.sweep?;
            Some(ReportRow {
                rank: 0,
                index: s.index,
                dir: dir.display().to_string(),
                overrides: s.overrides,
                score: sel.get(key).copied().unwrap_or(f64::NAN),
                score_std: sel_std.as_ref().and_then(|d| d.get(key).copied()),
                selection: sel,
                selection_std: sel_std,
                test: m.metrics.test.named(),
                epochs_run: m.metrics.epochs_run,
                duration_s: m.duration_s,
            })
        })
        .collect();
    let loss = |r: &ReportRow| r.selection.get("loss").copied().unwrap_or(f64::NAN);
    // NaN (a point whose scores are not finite) ranks last either way.
    let nan_last = |v: f64| if v.is_nan() { f64::INFINITY } else { v };
    let order = |r: &ReportRow| {
        nan_last(if rank_by.higher_is_better() {
            -r.score
        } else {
            r.score
        })
    };
    rows.sort_by(|a, b| {
        order(a)
            .total_cmp(&order(b))
            .then(nan_last(loss(a)).total_cmp(&nan_last(loss(b))))
            .then(a.index.cmp(&b.index))
    });
    for (i, r) in rows.iter_mut().enumerate() {
        r.rank = i + 1;
    }
    let found: Vec<usize> = rows.iter().map(|r| r.index).collect();
    let missing = (0..total).filter(|i| !found.contains(i)).collect();
    Ok(Report {
        task,
        ranked_by: format!("{}_{key}", selection.prefix()),
        metric: key.into(),
        higher_is_better: rank_by.higher_is_better(),
        selection,
        folds,
        split_seed,
        rows,
        missing,
    })
}

fn overrides_text(o: &BTreeMap<String, serde_json::Value>) -> String {
    o.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Report {
    /// Writes `sweep-report.md`, `.csv` and `.json`, and the chart of the points
    /// (`sweep-report.svg`, `.png`), into `root`.
    pub fn write(&self, root: &Path) -> Result<()> {
        let chart = self.chart()?;
        for (name, bytes) in [
            ("sweep-report.md", self.markdown().into_bytes()),
            ("sweep-report.csv", self.csv().into_bytes()),
            ("sweep-report.json", self.json().into_bytes()),
            ("sweep-report.svg", chart.svg.into_bytes()),
            ("sweep-report.png", chart.png),
        ] {
            std::fs::write(root.join(name), bytes)
                .map_err(|e| Error::output(root, format!("writing {name}: {e}")))?;
        }
        Ok(())
    }

    /// Each point's ranking score (with its spread over the folds) and, for information, the same
    /// metric on the test split; the best in red.
    pub fn chart(&self) -> Result<crate::plot::Picture> {
        let points: Vec<SweepPoint> = self
            .rows
            .iter()
            .map(|r| SweepPoint {
                index: r.index,
                score: r.score,
                score_std: r.score_std,
                test: r.test.get(&self.metric).copied().unwrap_or(f64::NAN),
                best: r.rank == 1,
            })
            .collect();
        crate::plot::sweep_chart(&points, &self.ranked_by, &self.metric)
    }

    /// Copies the best point's model into the model directory `dest`, atomically.
    pub fn install_best(&self, dest: &Path) -> Result<&ReportRow> {
        let best = self
            .rows
            .first()
            .ok_or_else(|| Error::Internal("a report always holds at least one point".into()))?;
        let dest = ModelDir::new(dest);
        let lock = dest.lock_for_writing()?;
        dest.copy_from(&lock, &ModelDir::new(&best.dir))?;
        Ok(best)
    }

    /// The metrics shown per source: the one ranked by, then the loss that breaks ties.
    fn shown(&self) -> Vec<String> {
        let mut v = vec![self.metric.clone()];
        if self.metric != "loss" {
            v.push("loss".into());
        }
        v
    }

    /// One sentence: what ranked the points, and that the test scores did not.
    pub fn rule(&self) -> String {
        let what = match (self.selection, self.folds) {
            (Selection::CrossValidation, k) => format!(
                "mean {} over {} cross-validation folds of the training split",
                self.metric,
                k.map_or("the".to_string(), |k| k.to_string())
            ),
            (Selection::Validation, _) => format!(
                "{} on the validation rows held out of the training split",
                self.metric
            ),
        };
        format!(
            "ranked by `{}`: {what} ({}{} first; ties: lower loss on the same rows). \
             Test scores are for information only and decided nothing.",
            self.ranked_by,
            self.split_seed
                .map(|s| format!("split seed {s}; "))
                .unwrap_or_default(),
            if self.higher_is_better {
                "higher"
            } else {
                "lower"
            },
        )
    }

    /// A Markdown table, best first, under the ranking rule.
    pub fn markdown(&self) -> String {
        let cv = self.selection == Selection::CrossValidation;
        let prefix = self.selection.prefix();
        let mut head = vec!["rank".to_string(), "point".into(), "overrides".into()];
        for m in self.shown() {
            let name = format!("{prefix}_{m}");
            head.push(if name == self.ranked_by {
                format!("**{name}**")
            } else {
                name
            });
            if cv {
                head.push(format!("± std {m}"));
            }
        }
        for m in self.shown() {
            head.push(format!("test_{m} (info)"));
        }
        head.extend(["epochs".into(), "seconds".into()]);
        let mut s = format!("{}\n\n| {} |\n|", self.rule(), head.join(" | "));
        for (i, _) in head.iter().enumerate() {
            s += if i == 2 { "---|" } else { "---:|" };
        }
        s.push('\n');
        let num = |m: &BTreeMap<String, f64>, k: &str| {
            m.get(k).map_or("-".to_string(), |v| format!("{v:.4}"))
        };
        for r in &self.rows {
            let mut cells = vec![
                r.rank.to_string(),
                r.index.to_string(),
                overrides_text(&r.overrides).replace('|', "\\|"),
            ];
            for m in self.shown() {
                cells.push(num(&r.selection, &m));
                if let Some(sd) = &r.selection_std {
                    cells.push(num(sd, &m));
                }
            }
            for m in self.shown() {
                cells.push(num(&r.test, &m));
            }
            cells.push(r.epochs_run.to_string());
            cells.push(format!("{:.2}", r.duration_s));
            s += &format!("| {} |\n", cells.join(" | "));
        }
        if !self.missing.is_empty() {
            s += &format!("\nmissing points (failed or not run): {:?}\n", self.missing);
        }
        s
    }

    /// CSV with a header, best first; the `ranked_by` column names the column that decided.
    pub fn csv(&self) -> String {
        let prefix = self.selection.prefix();
        let metrics: Vec<String> = self
            .rows
            .first()
            .map_or_else(Vec::new, |r| r.selection.keys().cloned().collect());
        let mut header = vec![
            "rank".to_string(),
            "point".into(),
            "overrides".into(),
            "ranked_by".into(),
        ];
        for m in &metrics {
            header.push(format!("{prefix}_{m}"));
            if self.selection == Selection::CrossValidation {
                header.push(format!("cv_std_{m}"));
            }
        }
        for m in &metrics {
            header.push(format!("test_{m}"));
        }
        header.extend(["epochs_run".into(), "duration_s".into(), "dir".into()]);
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record(&header);
        let num =
            |m: &BTreeMap<String, f64>, k: &str| m.get(k).map_or(String::new(), f64::to_string);
        for r in &self.rows {
            let mut rec = vec![
                r.rank.to_string(),
                r.index.to_string(),
                overrides_text(&r.overrides),
                self.ranked_by.clone(),
            ];
            for m in &metrics {
                rec.push(num(&r.selection, m));
                if self.selection == Selection::CrossValidation {
                    rec.push(
                        r.selection_std
                            .as_ref()
                            .map_or(String::new(), |sd| num(sd, m)),
                    );
                }
            }
            for m in &metrics {
                rec.push(num(&r.test, m));
            }
            rec.extend([
                r.epochs_run.to_string(),
                r.duration_s.to_string(),
                r.dir.clone(),
            ]);
            let _ = w.write_record(&rec);
        }
        String::from_utf8_lossy(&w.into_inner().unwrap_or_default()).into_owned()
    }

    /// Pretty JSON: `ranked_by`, `selection`, `folds`, then the rows, best first.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

/// Starts a sweep's parent run in MLflow, named `sweep FILE-STEM`, with the base config, the
/// sweep file and its number of points as params. Each point's run names it as its parent
/// (`TrackingOptions::parent_run_id`). Fails with [`Error::Tracking`].
fn start_parent_run(
    tracker: &Tracker,
    base: &TrainConfig,
    file: &Path,
    sweep: &Sweep,
) -> Result<ActiveRun> {
    let stem = file
        .file_stem()
        .map_or_else(|| "sweep".into(), |s| s.to_string_lossy().into_owned());
    let mut params = config_params(base);
    params.push(("sweep.file".into(), file.display().to_string()));
    params.push(("sweep.points".into(), sweep.len().to_string()));
    tracker.start_run(
        &format!("sweep {stem}"),
        vec![
            (
                "iris_trainer.version".into(),
                env!("CARGO_PKG_VERSION").into(),
            ),
            ("iris_trainer.sweep_file".into(), file.display().to_string()),
            (
                "iris_trainer.model_dir".into(),
                base.output.dir.display().to_string(),
            ),
        ],
        params,
    )
}

/// Logs a sweep's outcome to its parent run (points finished and failed; the best point's
/// scores and the report files written into `root`, when there is a report) and ends it:
/// FINISHED when every point trained, FAILED otherwise. Failures are kept in the run, as warnings.
fn end_parent_run(
    run: &mut ActiveRun,
    root: &Path,
    report: Option<&Report>,
    failed: usize,
    points: usize,
) {
    let mut metrics: Vec<(String, f64)> = vec![
        (
            "points_finished".into(),
            points.saturating_sub(failed) as f64,
        ),
        ("points_failed".into(), failed as f64),
    ];
    if let Some((report, best)) = report.and_then(|r| r.rows.first().map(|b| (r, b))) {
        metrics.push(("best_point".into(), best.index as f64));
        metrics.push((format!("best_{}", report.ranked_by), best.score));
        if let Some(std) = best.score_std {
            metrics.push((format!("best_{}_std", report.ranked_by), std));
        }
        for (name, value) in &best.test {
            metrics.push((format!("best_test_{name}"), *value));
        }
        let files: Vec<PathBuf> = ["sweep-report.md", "sweep-report.csv", "sweep-report.json"]
            .iter()
            .map(PathBuf::from)
            .collect();
        run.upload_files(root, &files);
    }
    let metrics: Vec<(&str, f64)> = metrics.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    run.log_metrics(0, &metrics);
    run.end(if failed == 0 && report.is_some() {
        RunStatus::Finished
    } else {
        RunStatus::Failed
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_expands_in_key_order_then_points_follow() {
        let s = Sweep::from_toml_str(
            "[grid]\n\"training.learning_rate\" = [0.1, 0.2]\n\"model.hidden\" = [[4], [8, 4]]\n\
             [[points]]\n\"training.epochs\" = 5\n",
            "s.toml",
        )
        .unwrap();
        assert_eq!(s.len(), 5);
        let c = s.apply(&TrainConfig::default(), 1).unwrap();
        // Keys are sorted: model.hidden varies slowest, learning_rate fastest.
        assert_eq!(c.model.hidden, [4]);
        assert_eq!(c.training.learning_rate, 0.2);
        let c = s.apply(&TrainConfig::default(), 2).unwrap();
        assert_eq!(c.model.hidden, [8, 4]);
        assert_eq!(c.training.learning_rate, 0.1);
        let c = s.apply(&TrainConfig::default(), 4).unwrap();
        assert_eq!(c.training.epochs, 5);
        assert_eq!(c.training.learning_rate, 0.01);
    }

    #[test]
    fn bad_sweeps_are_refused_with_the_key_named() {
        let bad = |text: &str, needle: &str| {
            let m = Sweep::from_toml_str(text, "s.toml")
                .unwrap_err()
                .to_string();
            assert!(m.contains(needle) && m.contains("s.toml"), "{text}: {m}");
        };
        bad("", "no points");
        bad("[grid]\n\"training.epoch\" = [1]\n", "epoch");
        bad("[grid]\n\"training.epochs\" = [\"x\"]\n", "epochs");
        bad("[grid]\n\"training.epochs\" = []\n", "no values");
        bad("[grd]\n", "grd");
        let s = Sweep::from_toml_str("[[points]]\n\"training.seed\" = 1\n", "s.toml").unwrap();
        let m = s.point(3).unwrap_err().to_string();
        assert!(m.contains("the sweep has 1 points (0 to 0)"), "{m}");
    }

    #[test]
    fn a_key_of_thousands_of_dotted_parts_is_refused_not_a_stack_overflow() {
        // Once nested a table per part, which overflowed the stack when dropped.
        let key = vec!["a"; 100_000].join(".");
        for text in [
            format!("[[points]]\n\"{key}\" = 1\n"),
            format!("[grid]\n\"{key}\" = [1]\n"),
        ] {
            let m = Sweep::from_toml_str(&text, "s.toml")
                .unwrap_err()
                .to_string();
            assert!(m.contains("parts") && m.contains("s.toml"), "{m}");
        }
        // A real key of the deepest section still applies.
        let text = "[[points]]\n\"data.types.colour\" = \"categorical\"\n";
        let s = Sweep::from_toml_str(text, "s.toml").unwrap();
        let types = s.apply(&TrainConfig::default(), 0).unwrap().data.types;
        assert_eq!(types.len(), 1, "{types:?}");
    }

    #[test]
    fn points_that_vary_the_seed_keep_the_base_split_seed() {
        let s = Sweep::from_toml_str("[grid]\n\"training.seed\" = [1, 2]\n", "s.toml").unwrap();
        let mut base = TrainConfig::default();
        base.training.seed = 9;
        for i in 0..2 {
            let (c, _, _) = s.resolve(&base, "base", i).unwrap();
            assert_eq!(c.training.seed, i as u64 + 1);
            assert_eq!(
                c.split_seed(),
                9,
                "every point is split as the base config is"
            );
        }
        let s = Sweep::from_toml_str("[[points]]\n\"data.split_seed\" = 5\n", "s.toml").unwrap();
        assert_eq!(s.resolve(&base, "base", 0).unwrap().0.split_seed(), 5);
    }

    #[test]
    fn rank_by_choices_follow_the_task() {
        for task in [Task::Classification, Task::Regression] {
            assert!(RankBy::choices(task).contains(&RankBy::default_for(task)));
            assert!(RankBy::choices(task).contains(&RankBy::Loss));
        }
        assert!(!RankBy::choices(Task::Classification).contains(&RankBy::R2));
        assert!(!RankBy::choices(Task::Regression).contains(&RankBy::Accuracy));
        assert!(RankBy::R2.higher_is_better() && !RankBy::Rmse.higher_is_better());
    }
}
