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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::artifact::ModelDir;
use crate::config::{Task, TrainConfig};
use crate::error::{Error, Result};
use crate::metadata::{Metadata, SweepInfo};

/// At most this many points: a grid that multiplies past it is more likely a mistake.
pub const MAX_POINTS: usize = 10_000;

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
        let mut config = self.apply(base, index)?;
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

/// How points are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankBy {
    /// Test accuracy, higher first (ties: lower test loss). Classifiers only.
    TestAccuracy,
    /// Test loss, lower first.
    TestLoss,
    /// Macro-averaged test F1, higher first. Classifiers only.
    TestF1,
    /// Test R², higher first. Regressors only.
    R2,
    /// Test RMSE, lower first. Regressors only.
    Rmse,
    /// Test MAE, lower first. Regressors only.
    Mae,
}

impl RankBy {
    /// The default for a task: test accuracy for classifiers, R² for regressors.
    pub fn default_for(task: Task) -> Self {
        match task {
            Task::Classification => RankBy::TestAccuracy,
            Task::Regression => RankBy::R2,
        }
    }

    /// The name used in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            RankBy::TestAccuracy => "test_accuracy",
            RankBy::TestLoss => "test_loss",
            RankBy::TestF1 => "test_macro_f1",
            RankBy::R2 => "test_r2",
            RankBy::Rmse => "test_rmse",
            RankBy::Mae => "test_mae",
        }
    }

    /// The task whose points this metric can rank (`None`: either).
    pub fn task(self) -> Option<Task> {
        match self {
            RankBy::TestAccuracy | RankBy::TestF1 => Some(Task::Classification),
            RankBy::R2 | RankBy::Rmse | RankBy::Mae => Some(Task::Regression),
            RankBy::TestLoss => None,
        }
    }

    fn flag(self) -> &'static str {
        match self {
            RankBy::TestAccuracy => "test-accuracy",
            RankBy::TestLoss => "test-loss",
            RankBy::TestF1 => "test-f1",
            RankBy::R2 => "r2",
            RankBy::Rmse => "rmse",
            RankBy::Mae => "mae",
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
    /// The point's task.
    pub task: Task,
    /// Test accuracy (NaN for a regressor; `null` in JSON).
    pub test_accuracy: f64,
    /// Test loss.
    pub test_loss: f64,
    /// Macro-averaged test F1 (NaN for a regressor).
    pub test_macro_f1: f64,
    /// Test R² (NaN for a classifier).
    pub test_r2: f64,
    /// Test RMSE in the target's units (NaN for a classifier).
    pub test_rmse: f64,
    /// Test MAE in the target's units (NaN for a classifier).
    pub test_mae: f64,
    /// Epochs run.
    pub epochs_run: usize,
    /// Training seconds.
    pub duration_s: f64,
}

/// A ranked sweep.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The metric that ranks.
    pub ranked_by: String,
    /// Points found, best first.
    pub rows: Vec<ReportRow>,
    /// Indices of the sweep with no finished model (failed or not run yet).
    pub missing: Vec<usize>,
}

/// Collects the finished points under `root` and ranks them by `rank_by` (`None`: test accuracy
/// for classifiers, R² for regressors). A metric that does not fit the points' task (accuracy for
/// regressors, R² for classifiers) is an error, as are points of both tasks ranked by default.
///
/// A point counts only if its directory name matches its recorded index; with `sweep_len`, only
/// points of a sweep of that many points count (so leftovers of an earlier, different sweep do
/// not), and the indices in `exclude` (points that just failed, whose directory may still hold an
/// older model) are reported missing.
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
    let total = sweep_len.unwrap_or_else(|| {
        metas
            .iter()
            .filter_map(|(_, m)| m.sweep.as_ref().map(|s| s.points))
            .max()
            .unwrap_or(0)
    });
    let mut rows: Vec<ReportRow> = metas
        .into_iter()
        .filter_map(|(dir, m)| {
            let s = m.sweep?;
            let regression = m.metrics.test.regression();
            Some(ReportRow {
                rank: 0,
                index: s.index,
                dir: dir.display().to_string(),
                overrides: s.overrides,
                task: m.task,
                test_accuracy: m.metrics.test.accuracy().unwrap_or(f64::NAN),
                test_loss: m.metrics.test.loss(),
                test_macro_f1: m.metrics.test.macro_f1().unwrap_or(f64::NAN),
                test_r2: regression.map_or(f64::NAN, |r| r.r2),
                test_rmse: regression.map_or(f64::NAN, |r| r.rmse),
                test_mae: regression.map_or(f64::NAN, |r| r.mae),
                epochs_run: m.metrics.epochs_run,
                duration_s: m.duration_s,
            })
        })
        .collect();
    let rank_by = fitting_metric(root, rank_by, &rows)?;
    rows.sort_by(|a, b| {
        let primary = match rank_by {
            RankBy::TestAccuracy => b.test_accuracy.total_cmp(&a.test_accuracy),
            RankBy::TestLoss => a.test_loss.total_cmp(&b.test_loss),
            RankBy::TestF1 => b.test_macro_f1.total_cmp(&a.test_macro_f1),
            RankBy::R2 => b.test_r2.total_cmp(&a.test_r2),
            RankBy::Rmse => a.test_rmse.total_cmp(&b.test_rmse),
            RankBy::Mae => a.test_mae.total_cmp(&b.test_mae),
        };
        primary
            .then(a.test_loss.total_cmp(&b.test_loss))
            .then(a.index.cmp(&b.index))
    });
    for (i, r) in rows.iter_mut().enumerate() {
        r.rank = i + 1;
    }
    let found: Vec<usize> = rows.iter().map(|r| r.index).collect();
    let missing = (0..total).filter(|i| !found.contains(i)).collect();
    Ok(Report {
        ranked_by: rank_by.name().into(),
        rows,
        missing,
    })
}

/// The metric to rank `rows` by: `rank_by`, or the default for their task; refused when it does
/// not fit every point's task.
fn fitting_metric(root: &Path, rank_by: Option<RankBy>, rows: &[ReportRow]) -> Result<RankBy> {
    let task_of = |t: Task| match t {
        Task::Classification => "classifiers",
        Task::Regression => "regressors",
    };
    let choices = |t: Task| match t {
        Task::Classification => "test-accuracy, test-f1 or test-loss",
        Task::Regression => "r2, rmse, mae or test-loss",
    };
    let first = rows.first().map_or(Task::Classification, |r| r.task);
    let Some(rank_by) = rank_by else {
        if let Some(other) = rows.iter().find(|r| r.task != first) {
            return Err(Error::ConfigValue {
                origin: "command line".into(),
                key: "--rank-by".into(),
                value: "(default)".into(),
                reason: format!(
                    "the sweep in {} holds both {} (point {}) and {} (point {}): give \
                     --rank-by test-loss, or report each task's points apart",
                    root.display(),
                    task_of(first),
                    rows[0].index,
                    task_of(other.task),
                    other.index
                ),
            });
        }
        return Ok(RankBy::default_for(first));
    };
    if let Some(task) = rank_by.task()
        && let Some(other) = rows.iter().find(|r| r.task != task)
    {
        return Err(Error::ConfigValue {
            origin: "command line".into(),
            key: "--rank-by".into(),
            value: rank_by.flag().into(),
            reason: format!(
                "it ranks {} but point {} in {} is one of the {}: rank them by {}",
                task_of(task),
                other.index,
                root.display(),
                task_of(other.task),
                choices(other.task)
            ),
        });
    }
    Ok(rank_by)
}

/// A number for the CSV report: empty where the metric does not apply (NaN).
fn csv_number(x: f64) -> String {
    if x.is_nan() {
        String::new()
    } else {
        x.to_string()
    }
}

fn overrides_text(o: &BTreeMap<String, serde_json::Value>) -> String {
    o.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Report {
    /// Writes `sweep-report.md`, `.csv` and `.json` into `root`.
    pub fn write(&self, root: &Path) -> Result<()> {
        for (name, text) in [
            ("sweep-report.md", self.markdown()),
            ("sweep-report.csv", self.csv()),
            ("sweep-report.json", self.json()),
        ] {
            std::fs::write(root.join(name), text)
                .map_err(|e| Error::output(root, format!("writing {name}: {e}")))?;
        }
        Ok(())
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

    /// A Markdown table, best first: accuracy and macro-F1 for classifiers, R², RMSE and MAE
    /// for regressors.
    pub fn markdown(&self) -> String {
        let regression = self.rows.iter().all(|r| r.task == Task::Regression);
        let mut s = if regression {
            String::from(
                "| rank | point | overrides | test R² | test RMSE | test MAE | test loss | epochs | seconds |\n\
                 |---:|---:|---|---:|---:|---:|---:|---:|---:|\n",
            )
        } else {
            String::from(
                "| rank | point | overrides | test accuracy | test loss | test macro-F1 | epochs | seconds |\n\
                 |---:|---:|---|---:|---:|---:|---:|---:|\n",
            )
        };
        for r in &self.rows {
            let overrides = overrides_text(&r.overrides).replace('|', "\\|");
            s += &if regression {
                format!(
                    "| {} | {} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {} | {:.2} |\n",
                    r.rank,
                    r.index,
                    overrides,
                    r.test_r2,
                    r.test_rmse,
                    r.test_mae,
                    r.test_loss,
                    r.epochs_run,
                    r.duration_s
                )
            } else {
                format!(
                    "| {} | {} | {} | {:.4} | {:.4} | {:.4} | {} | {:.2} |\n",
                    r.rank,
                    r.index,
                    overrides,
                    r.test_accuracy,
                    r.test_loss,
                    r.test_macro_f1,
                    r.epochs_run,
                    r.duration_s
                )
            };
        }
        if !self.missing.is_empty() {
            s += &format!("\nmissing points (failed or not run): {:?}\n", self.missing);
        }
        s
    }

    /// CSV with a header, best first.
    pub fn csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record([
            "rank",
            "point",
            "overrides",
            "test_accuracy",
            "test_loss",
            "test_macro_f1",
            "test_r2",
            "test_rmse",
            "test_mae",
            "epochs_run",
            "duration_s",
            "dir",
        ]);
        for r in &self.rows {
            let _ = w.write_record([
                r.rank.to_string(),
                r.index.to_string(),
                overrides_text(&r.overrides),
                csv_number(r.test_accuracy),
                r.test_loss.to_string(),
                csv_number(r.test_macro_f1),
                csv_number(r.test_r2),
                csv_number(r.test_rmse),
                csv_number(r.test_mae),
                r.epochs_run.to_string(),
                r.duration_s.to_string(),
                r.dir.clone(),
            ]);
        }
        String::from_utf8_lossy(&w.into_inner().unwrap_or_default()).into_owned()
    }

    /// Pretty JSON.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
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
}
