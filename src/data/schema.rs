//! What each column is: its role (label, feature, ignored), a feature's type (numeric,
//! categorical, boolean) and the task (classification or regression). Decided from the config
//! and the training file's values, printed at start, stored in `model.json`.

use serde::{Deserialize, Serialize};

use super::csv::ColumnKind;
use super::table::{ColumnData, MISSING, Table};
use crate::config::{ColumnRef, DataConfig};

pub use crate::config::{FeatureType, Task};

/// A column's part in training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// What is predicted.
    Label,
    /// An input, with its type when the config sets it.
    Feature(Option<FeatureType>),
    /// Not read.
    Ignored,
}

/// Words read as `false` / `true` in a boolean column (compared case-insensitively).
pub const BOOLEAN_WORDS: [(&str, &str); 4] =
    [("false", "true"), ("no", "yes"), ("n", "y"), ("f", "t")];

/// Whether `value` is a false (`Some(false)`) or true word, in any case.
pub fn boolean_value(value: &str) -> Option<bool> {
    let v = value.trim();
    BOOLEAN_WORDS.iter().find_map(|(f, t)| {
        if v.eq_ignore_ascii_case(f) {
            Some(false)
        } else if v.eq_ignore_ascii_case(t) {
            Some(true)
        } else {
            None
        }
    })
}

/// A numeric label with at most this many distinct whole values is taken as classes.
pub const MAX_NUMERIC_CLASSES: usize = 20;

/// The setting that names a column, as messages show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// `data.label`, `--label`.
    Label,
    /// `data.ignore`, `--ignore`.
    Ignore,
    /// `data.features`.
    Features,
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Setting::Label => "the label (`data.label`, --label)",
            Setting::Ignore => "`data.ignore` (--ignore)",
            Setting::Features => "`data.features`",
        })
    }
}

/// Why the columns' roles or types cannot be decided; the caller adds the file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchemaError {
    /// A setting names a column index past the last column.
    #[error(
        "{setting} names column index {index}, which is out of range: the file has {columns} \
         columns (0 to {})",
        .columns.saturating_sub(1)
    )]
    IndexOutOfRange {
        /// The setting.
        setting: Setting,
        /// The index it names.
        index: usize,
        /// The file's number of columns.
        columns: usize,
    },
    /// A setting names a column the file does not have.
    #[error(
        "{setting} names column `{name}`, which is not found; the columns are: {}",
        .columns.join(", ")
    )]
    NotFound {
        /// The setting.
        setting: Setting,
        /// The name it gives.
        name: String,
        /// The file's columns.
        columns: Vec<String>,
    },
    /// Fewer than two columns: no room for a feature and a label.
    #[error(
        "the file has {columns} column: expected at least one feature column and a label column"
    )]
    TooFewColumns {
        /// The file's number of columns.
        columns: usize,
    },
    /// The label is also ignored.
    #[error(
        "`{column}` is both the label and ignored; remove it from `data.ignore` (--ignore) or \
         choose another label"
    )]
    LabelIgnored {
        /// The label column.
        column: String,
    },
    /// `data.features` lists a column twice.
    #[error("feature column `{column}` is listed twice in `data.features`")]
    FeatureListedTwice {
        /// The column.
        column: String,
    },
    /// A listed feature is also ignored.
    #[error(
        "`{column}` is both a feature and ignored; remove it from one of `data.features` and \
         `data.ignore`"
    )]
    FeatureIgnored {
        /// The column.
        column: String,
    },
    /// The label is also listed as a feature.
    #[error("`{column}` is both the label and a feature; remove it from `data.features`")]
    LabelIsFeature {
        /// The label column.
        column: String,
    },
    /// Every column but the label is ignored.
    #[error("no feature columns are left: every column but the label (`{label}`) is ignored")]
    NoFeatures {
        /// The label column.
        label: String,
    },
    /// `[data.types]` names a column the file does not have.
    #[error(
        "`[data.types]` names column `{column}`, which the file does not have; the columns are: {}",
        .columns.join(", ")
    )]
    TypeForUnknownColumn {
        /// The column it names.
        column: String,
        /// The file's columns.
        columns: Vec<String>,
    },
    /// `[data.types]` sets a type for the label or an ignored column.
    #[error(
        "`[data.types]` sets a type for `{column}`, which is not a feature (it is the label or \
         ignored)"
    )]
    TypeForNonFeature {
        /// The column.
        column: String,
    },
    /// The table lacks the label column.
    #[error("label column `{label}` was not read")]
    LabelNotRead {
        /// The label column.
        label: String,
    },
    /// The table lacks a feature column.
    #[error("feature column `{column}` was not read")]
    FeatureNotRead {
        /// The column.
        column: String,
    },
    /// A numeric column declared boolean holds something other than 0 and 1.
    #[error(
        "column `{column}` is declared boolean but holds {value}; a numeric boolean column holds \
         only 0 and 1"
    )]
    NotZeroOrOne {
        /// The column.
        column: String,
        /// The first value that is neither 0 nor 1.
        value: f32,
    },
    /// A text column declared boolean holds a word that is not a boolean.
    #[error(
        "column `{column}` is declared boolean but holds `{value}`; boolean values are \
         true/false, yes/no, y/n, t/f or 1/0"
    )]
    NotBoolean {
        /// The column.
        column: String,
        /// The first value that is not a boolean word.
        value: String,
    },
}

/// Roles of a file's columns, from the config and the header, decided before rows are read.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnPlan {
    /// Column names in file order.
    pub names: Vec<String>,
    /// The role of each column.
    pub roles: Vec<Role>,
    /// The label's position.
    pub label: usize,
    /// The task, when the config sets it.
    pub task: Option<Task>,
}

impl ColumnPlan {
    /// Resolves `config`'s label, features, ignored columns, types and task against `names`.
    /// The caller adds the file to an error.
    pub fn new(names: &[String], config: &DataConfig) -> Result<Self, SchemaError> {
        let n = names.len();
        let resolve = |c: &ColumnRef, setting: Setting| -> Result<usize, SchemaError> {
            match c {
                ColumnRef::Index(i) if *i < n => Ok(*i),
                ColumnRef::Index(i) => Err(SchemaError::IndexOutOfRange {
                    setting,
                    index: *i,
                    columns: n,
                }),
                ColumnRef::Name(name) => {
                    names
                        .iter()
                        .position(|x| x == name)
                        .ok_or_else(|| SchemaError::NotFound {
                            setting,
                            name: name.clone(),
                            columns: names.to_vec(),
                        })
                }
            }
        };
        if n < 2 {
            return Err(SchemaError::TooFewColumns { columns: n });
        }
        let label = match &config.label {
            Some(c) => resolve(c, Setting::Label)?,
            None => n - 1,
        };
        let ignored: Vec<usize> = config
            .ignore
            .iter()
            .map(|c| resolve(c, Setting::Ignore))
            .collect::<Result<_, _>>()?;
        if ignored.contains(&label) {
            return Err(SchemaError::LabelIgnored {
                column: names[label].clone(),
            });
        }
        let features: Vec<usize> = match &config.features {
            Some(cs) => {
                let cols = cs
                    .iter()
                    .map(|c| resolve(c, Setting::Features))
                    .collect::<Result<Vec<_>, _>>()?;
                if let Some(dup) = cols
                    .iter()
                    .enumerate()
                    .find(|(i, c)| cols[..*i].contains(c))
                {
                    return Err(SchemaError::FeatureListedTwice {
                        column: names[*dup.1].clone(),
                    });
                }
                if let Some(&c) = cols.iter().find(|&&c| ignored.contains(&c)) {
                    return Err(SchemaError::FeatureIgnored {
                        column: names[c].clone(),
                    });
                }
                cols
            }
            None => (0..n)
                .filter(|&i| i != label && !ignored.contains(&i))
                .collect(),
        };
        if features.contains(&label) {
            return Err(SchemaError::LabelIsFeature {
                column: names[label].clone(),
            });
        }
        if features.is_empty() {
            return Err(SchemaError::NoFeatures {
                label: names[label].clone(),
            });
        }
        for name in config.types.keys() {
            let Some(i) = names.iter().position(|x| x == name) else {
                return Err(SchemaError::TypeForUnknownColumn {
                    column: name.clone(),
                    columns: names.to_vec(),
                });
            };
            if !features.contains(&i) {
                return Err(SchemaError::TypeForNonFeature {
                    column: name.clone(),
                });
            }
        }
        let roles = (0..n)
            .map(|i| {
                if i == label {
                    Role::Label
                } else if features.contains(&i) {
                    Role::Feature(config.types.get(&names[i]).copied())
                } else {
                    Role::Ignored
                }
            })
            .collect();
        Ok(ColumnPlan {
            names: names.to_vec(),
            roles,
            label,
            task: config.task,
        })
    }

    /// How the reader should read each column.
    pub fn kinds(&self) -> Vec<ColumnKind> {
        self.roles
            .iter()
            .map(|r| match r {
                Role::Ignored => ColumnKind::Skip,
                Role::Label => match self.task {
                    Some(Task::Regression) => ColumnKind::Numeric,
                    Some(Task::Classification) => ColumnKind::Text,
                    None => ColumnKind::Auto,
                },
                Role::Feature(Some(FeatureType::Numeric)) => ColumnKind::Numeric,
                Role::Feature(Some(_)) => ColumnKind::Text,
                Role::Feature(None) => ColumnKind::Auto,
            })
            .collect()
    }

    /// The label column's name.
    pub fn label_name(&self) -> &str {
        &self.names[self.label]
    }
}

/// One feature column and how it is encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feature {
    /// The column's name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: FeatureType,
}

/// The decided schema of a training table.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    /// Every column of the file, in order.
    pub columns: Vec<String>,
    /// The label column.
    pub label: String,
    /// What is predicted.
    pub task: Task,
    /// Feature columns in file order (the model's input order).
    pub features: Vec<Feature>,
    /// Columns not used.
    pub ignored: Vec<String>,
    /// Why the task was chosen, and how to change it.
    pub task_reason: String,
}

/// The levels of a text column in the rows given, in order of first appearance, with counts.
fn present_levels(codes: &[u32], levels: &[String]) -> Vec<(usize, usize)> {
    let mut counts = vec![0usize; levels.len()];
    for &c in codes {
        if c != MISSING {
            counts[c as usize] += 1;
        }
    }
    counts
        .into_iter()
        .enumerate()
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Orders values: numerically when every one is a number, otherwise lexically.
pub fn sort_levels(values: &mut [String]) {
    let numeric = values.iter().all(|v| v.parse::<f64>().is_ok());
    if numeric {
        values.sort_by(|a, b| {
            let (x, y) = (
                a.parse::<f64>().unwrap_or(0.0),
                b.parse::<f64>().unwrap_or(0.0),
            );
            x.total_cmp(&y).then_with(|| a.cmp(b))
        });
    } else {
        values.sort();
    }
}

impl Schema {
    /// Decides types and the task from `table` (read with `plan.kinds()`), checking that each
    /// feature is usable. A category column of any number of levels is: its encoder keeps an
    /// input for the most frequent (`preprocess.max_categories`) and one for the rest. The
    /// caller adds the file to an error.
    pub fn infer(plan: &ColumnPlan, table: &Table) -> Result<Self, SchemaError> {
        let label = plan.label_name().to_string();
        let label_col = table
            .column(&label)
            .ok_or_else(|| SchemaError::LabelNotRead {
                label: label.clone(),
            })?;
        let (task, task_reason) = infer_task(&label, &label_col.data, plan.task);
        let mut features = Vec::new();
        let mut ignored = Vec::new();
        for (name, role) in plan.names.iter().zip(&plan.roles) {
            let set = match role {
                Role::Label => continue,
                Role::Ignored => {
                    ignored.push(name.clone());
                    continue;
                }
                Role::Feature(set) => *set,
            };
            let col = table
                .column(name)
                .ok_or_else(|| SchemaError::FeatureNotRead {
                    column: name.clone(),
                })?;
            let kind = match (&col.data, set) {
                (ColumnData::Numeric(_), None) => FeatureType::Numeric,
                (ColumnData::Numeric(v), Some(FeatureType::Boolean)) => {
                    if let Some(x) = v.iter().find(|x| !x.is_nan() && **x != 0.0 && **x != 1.0) {
                        return Err(SchemaError::NotZeroOrOne {
                            column: name.clone(),
                            value: *x,
                        });
                    }
                    FeatureType::Boolean
                }
                (ColumnData::Numeric(_), Some(t)) => t,
                (ColumnData::Text { codes, levels }, set) => {
                    let present = present_levels(codes, levels);
                    // Any spelling and case of the boolean words (Yes, yes, no...).
                    let is_boolean = !present.is_empty()
                        && present
                            .iter()
                            .all(|&(i, _)| boolean_value(&levels[i]).is_some());
                    let kind = match set {
                        Some(t) => t,
                        None if is_boolean => FeatureType::Boolean,
                        None => FeatureType::Categorical,
                    };
                    if kind == FeatureType::Boolean && !is_boolean {
                        let bad = present
                            .iter()
                            .map(|&(i, _)| &levels[i])
                            .find(|l| boolean_value(l).is_none())
                            .cloned()
                            .unwrap_or_default();
                        return Err(SchemaError::NotBoolean {
                            column: name.clone(),
                            value: bad,
                        });
                    }
                    kind
                }
            };
            features.push(Feature {
                name: name.clone(),
                kind,
            });
        }
        Ok(Schema {
            columns: plan.names.clone(),
            label,
            task,
            features,
            ignored,
            task_reason,
        })
    }

    /// A compact table of the decisions, for stderr at the start of training; `label` is the
    /// label column's values when `table` no longer holds it.
    pub fn describe(&self, table: &Table, label: Option<&ColumnData>) -> String {
        use std::fmt::Write;
        let w = self
            .columns
            .iter()
            .map(String::len)
            .max()
            .unwrap_or(6)
            .max(6);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "  {:w$}  {:8} {:12} {:>8} {:>8}",
            "column", "role", "type", "missing", "distinct"
        );
        for name in &self.columns {
            let (role, kind) = if *name == self.label {
                ("label", self.task.to_string())
            } else if let Some(f) = self.features.iter().find(|f| f.name == *name) {
                ("feature", f.kind.to_string())
            } else {
                ("ignored", "-".to_string())
            };
            let data = table
                .column(name)
                .map(|c| &c.data)
                .or(label.filter(|_| *name == self.label));
            let (missing, distinct) = match data {
                Some(ColumnData::Numeric(v)) => (
                    v.iter().filter(|x| x.is_nan()).count().to_string(),
                    match distinct_numbers(v, DESCRIBE_DISTINCT_CAP) {
                        Some(n) => n.to_string(),
                        None => format!(">{DESCRIBE_DISTINCT_CAP}"),
                    },
                ),
                Some(ColumnData::Text { codes, levels }) => (
                    codes.iter().filter(|&&c| c == MISSING).count().to_string(),
                    present_levels(codes, levels).len().to_string(),
                ),
                None => ("-".into(), "-".into()),
            };
            let _ = writeln!(
                s,
                "  {name:w$}  {role:8} {kind:12} {missing:>8} {distinct:>8}"
            );
        }
        let _ = writeln!(s, "task: {} ({})", self.task, self.task_reason);
        s
    }
}

/// Distinct values counted exactly up to this many when describing the data; more is shown as
/// `>10000` (counting every value of a continuous column of millions of rows is not worth it).
pub const DESCRIBE_DISTINCT_CAP: usize = 10_000;

/// The number of distinct present values in `v`, or `None` once there are more than `cap`.
fn distinct_numbers(v: &[f32], cap: usize) -> Option<usize> {
    let mut seen = std::collections::HashSet::with_capacity(cap.min(v.len()) + 1);
    for x in v.iter().filter(|x| !x.is_nan()) {
        // +0.0 and -0.0 are one value.
        seen.insert(if *x == 0.0 { 0 } else { x.to_bits() });
        if seen.len() > cap {
            return None;
        }
    }
    Some(seen.len())
}

/// Classification or regression, from the config or the label's values.
fn infer_task(name: &str, label: &ColumnData, set: Option<Task>) -> (Task, String) {
    match (label, set) {
        (_, Some(t)) => (t, "set by --task or `data.task`".into()),
        (ColumnData::Text { codes, levels }, None) => {
            let n = present_levels(codes, levels).len();
            (
                Task::Classification,
                format!("label `{name}` holds text: {n} classes"),
            )
        }
        (ColumnData::Numeric(v), None) => {
            let mut distinct: Vec<u32> = v
                .iter()
                .filter(|x| !x.is_nan())
                .map(|x| x.to_bits())
                .collect();
            distinct.sort_unstable();
            distinct.dedup();
            let whole = v.iter().filter(|x| !x.is_nan()).all(|x| x.fract() == 0.0);
            if whole && distinct.len() <= MAX_NUMERIC_CLASSES {
                (
                    Task::Classification,
                    format!(
                        "label `{name}` holds {} distinct whole numbers, taken as classes; \
                         pass --task regression to predict a number instead",
                        distinct.len()
                    ),
                )
            } else {
                (
                    Task::Regression,
                    format!(
                        "label `{name}` holds {} distinct numbers; pass --task classification to \
                         treat them as classes instead",
                        distinct.len()
                    ),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::table::Column;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    fn text(name: &str, values: &[Option<&str>]) -> Column {
        let mut levels: Vec<String> = Vec::new();
        let codes = values
            .iter()
            .map(|v| match v {
                None => MISSING,
                Some(v) => match levels.iter().position(|l| l == v) {
                    Some(i) => i as u32,
                    None => {
                        levels.push(v.to_string());
                        levels.len() as u32 - 1
                    }
                },
            })
            .collect();
        Column {
            name: name.into(),
            data: ColumnData::Text { codes, levels },
        }
    }

    fn num(name: &str, values: &[f32]) -> Column {
        Column {
            name: name.into(),
            data: ColumnData::Numeric(values.to_vec()),
        }
    }

    #[test]
    fn plan_resolves_label_ignore_and_types() {
        let cfg = DataConfig {
            label: Some(ColumnRef::Name("species".into())),
            ignore: vec![ColumnRef::Name("year".into())],
            types: [("island".to_string(), FeatureType::Categorical)].into(),
            ..DataConfig::default()
        };
        let plan = ColumnPlan::new(&names(&["species", "island", "bill", "year"]), &cfg).unwrap();
        assert_eq!(plan.label, 0);
        assert_eq!(
            plan.kinds(),
            [
                ColumnKind::Auto,
                ColumnKind::Text,
                ColumnKind::Auto,
                ColumnKind::Skip
            ]
        );
        let bad = |cfg: DataConfig| {
            ColumnPlan::new(&names(&["a", "b", "y"]), &cfg)
                .unwrap_err()
                .to_string()
        };
        let m = bad(DataConfig {
            label: Some(ColumnRef::Name("nope".into())),
            ..DataConfig::default()
        });
        assert!(
            m.contains("column `nope`, which is not found") && m.contains("a, b, y"),
            "{m}"
        );
        let m = bad(DataConfig {
            ignore: vec![ColumnRef::Name("y".into())],
            ..DataConfig::default()
        });
        assert!(m.contains("both the label and ignored"), "{m}");
        let m = bad(DataConfig {
            ignore: vec![ColumnRef::Index(0), ColumnRef::Index(1)],
            ..DataConfig::default()
        });
        assert!(m.contains("no feature columns"), "{m}");
        let m = bad(DataConfig {
            types: [("zz".to_string(), FeatureType::Numeric)].into(),
            ..DataConfig::default()
        });
        assert!(m.contains("`zz`"), "{m}");
        let m = bad(DataConfig {
            ignore: vec![ColumnRef::Index(9)],
            ..DataConfig::default()
        });
        assert!(m.contains("index 9, which is out of range"), "{m}");
    }

    fn infer(cols: Vec<Column>, cfg: &DataConfig) -> Result<Schema, SchemaError> {
        let n: Vec<String> = cols.iter().map(|c| c.name.clone()).collect();
        let plan = ColumnPlan::new(&n, cfg)?;
        Schema::infer(&plan, &Table::new(cols).unwrap())
    }

    #[test]
    fn types_and_task_are_inferred() {
        let s = infer(
            vec![
                num("x", &[1.0, 2.0, f32::NAN, 4.0]),
                text("c", &[Some("a"), Some("b"), None, Some("a")]),
                text("flag", &[Some("Yes"), Some("no"), Some("yes"), None]),
                text("y", &[Some("p"), Some("q"), Some("p"), Some("q")]),
            ],
            &DataConfig::default(),
        )
        .unwrap();
        assert_eq!(s.task, Task::Classification);
        let kinds: Vec<_> = s.features.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [
                FeatureType::Numeric,
                FeatureType::Categorical,
                FeatureType::Boolean
            ]
        );
        // Numeric labels: few whole values are classes, anything else a number.
        let s = infer(
            vec![num("x", &[1.0, 2.0, 3.0]), num("y", &[0.0, 1.0, 2.0])],
            &DataConfig::default(),
        )
        .unwrap();
        assert_eq!(s.task, Task::Classification);
        assert!(
            s.task_reason.contains("--task regression"),
            "{}",
            s.task_reason
        );
        let s = infer(
            vec![num("x", &[1.0, 2.0, 3.0]), num("y", &[0.5, 1.0, 2.0])],
            &DataConfig::default(),
        )
        .unwrap();
        assert_eq!(s.task, Task::Regression);
        let y: Vec<f32> = (0..30).map(|i| i as f32).collect();
        let s = infer(vec![num("x", &y), num("y", &y)], &DataConfig::default()).unwrap();
        assert_eq!(s.task, Task::Regression);
        let s = infer(
            vec![num("x", &y), num("y", &y)],
            &DataConfig {
                task: Some(Task::Classification),
                ..DataConfig::default()
            },
        )
        .unwrap();
        assert_eq!(s.task, Task::Classification);
    }

    #[test]
    fn identifiers_and_columns_of_many_levels_are_categories() {
        // Nearly one value per row, and many repeated levels: neither is refused (the encoder
        // keeps inputs for the frequent levels, one for the rest).
        let ids: Vec<String> = (0..50).map(|i| format!("id{i}")).collect();
        let id_col: Vec<Option<&str>> = ids.iter().map(|s| Some(s.as_str())).collect();
        let many: Vec<String> = (0..50).map(|i| format!("v{}", i % 20)).collect();
        let many_col: Vec<Option<&str>> = many.iter().map(|s| Some(s.as_str())).collect();
        let y: Vec<Option<&str>> = (0..50).map(|i| Some(["a", "b"][i % 2])).collect();
        let s = infer(
            vec![text("name", &id_col), text("zip", &many_col), text("y", &y)],
            &DataConfig::default(),
        )
        .unwrap();
        let kinds: Vec<_> = s
            .features
            .iter()
            .map(|f| (f.name.as_str(), f.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("name", FeatureType::Categorical),
                ("zip", FeatureType::Categorical)
            ]
        );
    }

    #[test]
    fn declared_booleans_are_checked() {
        let cfg = DataConfig {
            types: [("b".to_string(), FeatureType::Boolean)].into(),
            ..DataConfig::default()
        };
        let m = infer(
            vec![num("b", &[0.0, 2.0]), text("y", &[Some("a"), Some("b")])],
            &cfg,
        )
        .unwrap_err()
        .to_string();
        assert!(m.contains("holds 2"), "{m}");
        let m = infer(
            vec![
                text("b", &[Some("yes"), Some("maybe")]),
                text("y", &[Some("a"), Some("b")]),
            ],
            &cfg,
        )
        .unwrap_err()
        .to_string();
        assert!(m.contains("`maybe`"), "{m}");
        assert_eq!(boolean_value(" TRUE "), Some(true));
        assert_eq!(boolean_value("n"), Some(false));
        assert_eq!(boolean_value("2"), None);
    }

    #[test]
    fn levels_sort_numerically_or_lexically() {
        let mut v = names(&["10", "2", "1"]);
        sort_levels(&mut v);
        assert_eq!(v, ["1", "2", "10"]);
        let mut v = names(&["b", "10", "a"]);
        sort_levels(&mut v);
        assert_eq!(v, ["10", "a", "b"]);
    }
}
