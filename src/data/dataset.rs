//! [`Dataset::load`]: the training table read whole, its [`Schema`] decided, the rows with a
//! missing label dropped and the label turned into the [`Target`] (classes or numbers).

use super::reader::{ReadOptions, TableReader};
use super::schema::{self, ColumnPlan, Schema, Task};
use super::source::Source;
use super::table::{ColumnData, Table};
use crate::config::DataConfig;
use crate::error::{Error, Result};

/// What a model predicts for each row of its training data.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Class indices into `names`.
    Classes {
        /// Class names, in output order.
        names: Vec<String>,
        /// One class index per row.
        labels: Vec<usize>,
    },
    /// Numbers.
    Numbers(Vec<f32>),
}

/// A labelled table, its schema decided: what training reads.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// A path, or `embedded:iris.csv`.
    pub source: String,
    /// SHA-256 of the file's bytes.
    pub sha256: String,
    /// How the file was read, for messages.
    pub format: String,
    /// The feature columns (rows with a missing label removed).
    pub table: Table,
    /// Roles, types and the task.
    pub schema: Schema,
    /// The label of each row.
    pub target: Target,
    /// Rows dropped because their label was missing.
    pub dropped: usize,
    /// Missing-value markers used.
    pub missing_values: Vec<String>,
}

impl Dataset {
    /// Reads the table `config` names (or the embedded Iris data) and decides its schema.
    pub fn load(config: &DataConfig) -> Result<Self> {
        let source = match &config.path {
            None => Source::Embedded,
            Some(p) => Source::Path(p.clone()),
        };
        let reader = TableReader::open(&source, &ReadOptions::from_config(config), &[], false)?;
        let name = reader.source_name().to_string();
        let data_err = |message: String| Error::Data {
            source_name: name.clone(),
            message,
        };
        let format = reader.format.clone();
        let plan = ColumnPlan::new(&reader.names, config).map_err(|e| data_err(e.to_string()))?;
        let (table, sha256) = reader.read_all(&plan.kinds())?;
        if table.rows() == 0 {
            return Err(data_err("no data rows after the header".into()));
        }
        let schema = Schema::infer(&plan, &table).map_err(|e| data_err(e.to_string()))?;
        let label = table
            .column(&schema.label)
            .ok_or_else(|| data_err(format!("label `{}` was not read", schema.label)))?;
        let keep: Vec<bool> = (0..table.rows())
            .map(|i| !label.data.is_missing(i))
            .collect();
        let dropped = keep.iter().filter(|&&k| !k).count();
        if dropped == table.rows() {
            return Err(data_err(format!(
                "every row's label (`{}`) is missing",
                schema.label
            )));
        }
        let mut table = table;
        if dropped > 0 {
            table.retain_rows(&keep);
        }
        let label = &table
            .column(&schema.label)
            .ok_or_else(|| data_err("label column lost".into()))?
            .data;
        let target = match schema.task {
            Task::Classification => {
                // Each row's value as a key (a text code, or a number's bits), each distinct
                // key written out once: no string per row.
                let key = |i: usize| -> u32 {
                    match label {
                        ColumnData::Text { codes, .. } => codes[i],
                        ColumnData::Numeric(v) if v[i] == 0.0 => 0,
                        ColumnData::Numeric(v) => v[i].to_bits(),
                    }
                };
                let mut texts: std::collections::HashMap<u32, String> =
                    std::collections::HashMap::new();
                for i in 0..label.len() {
                    if let std::collections::hash_map::Entry::Vacant(e) = texts.entry(key(i))
                        && let Some(t) = label.text(i)
                    {
                        e.insert(t);
                    }
                }
                let mut names: Vec<String> = texts
                    .values()
                    .cloned()
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                schema::sort_levels(&mut names);
                if names.len() < 2 {
                    return Err(data_err(format!(
                        "only one class (`{}`) in column `{}`: a classifier needs at least two",
                        names.first().cloned().unwrap_or_default(),
                        schema.label
                    )));
                }
                let index: std::collections::HashMap<&str, usize> = names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.as_str(), i))
                    .collect();
                let class_of: std::collections::HashMap<u32, usize> = texts
                    .iter()
                    .map(|(&k, t)| (k, index.get(t.as_str()).copied().unwrap_or(0)))
                    .collect();
                let labels = match label {
                    ColumnData::Text { codes, levels } => {
                        let map: Vec<usize> = (0..levels.len() as u32)
                            .map(|c| class_of.get(&c).copied().unwrap_or(0))
                            .collect();
                        codes.iter().map(|&c| map[c as usize]).collect()
                    }
                    ColumnData::Numeric(_) => (0..label.len())
                        .map(|i| class_of.get(&key(i)).copied().unwrap_or(0))
                        .collect(),
                };
                Target::Classes { names, labels }
            }
            Task::Regression => match label {
                ColumnData::Numeric(v) => {
                    let first = v[0];
                    if v.iter().all(|&x| x == first) {
                        return Err(data_err(format!(
                            "the label `{}` is {first} in every row: there is nothing to predict",
                            schema.label
                        )));
                    }
                    Target::Numbers(v.clone())
                }
                ColumnData::Text { .. } => {
                    return Err(data_err(format!(
                        "the label `{}` holds text; regression needs numbers (use --task classification)",
                        schema.label
                    )));
                }
            },
        };
        table.columns.retain(|c| c.name != schema.label);
        Ok(Dataset {
            source: name,
            sha256,
            format,
            table,
            schema,
            target,
            dropped,
            missing_values: config.missing_values.clone(),
        })
    }

    /// Number of rows with a label.
    pub fn rows(&self) -> usize {
        self.table.rows()
    }

    /// Class names (empty for regression).
    pub fn class_names(&self) -> &[String] {
        match &self.target {
            Target::Classes { names, .. } => names,
            Target::Numbers(_) => &[],
        }
    }

    /// Rows per class, in class order (empty for regression).
    pub fn class_counts(&self) -> Vec<usize> {
        match &self.target {
            Target::Classes { names, labels } => {
                let mut counts = vec![0; names.len()];
                for &l in labels {
                    counts[l] += 1;
                }
                counts
            }
            Target::Numbers(_) => Vec::new(),
        }
    }

    /// The schema as a compact table, with the file, its format and dropped rows: what the
    /// trainer prints at start.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "data: {} ({}; {} rows{})\n",
            self.source,
            self.format,
            self.rows(),
            if self.dropped > 0 {
                format!(
                    "; {} row(s) with a missing label `{}` dropped",
                    self.dropped, self.schema.label
                )
            } else {
                String::new()
            }
        );
        // The label column is gone from the features; show it from the target.
        let label = match &self.target {
            Target::Numbers(v) => ColumnData::Numeric(v.clone()),
            Target::Classes { names, labels } => ColumnData::Text {
                codes: labels.iter().map(|&l| l as u32).collect(),
                levels: names.clone(),
            },
        };
        s.push_str(&self.schema.describe(&self.table, Some(&label)));
        s
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::config::{ColumnRef, TrainConfig};
    use crate::data::fixtures::{load, write};
    use crate::data::{FeatureType, IRIS_CSV, TrainingData, sha256_hex};

    #[test]
    fn embedded_iris_is_150_by_4_with_50_per_class() {
        let d = Dataset::load(&DataConfig::default()).unwrap();
        assert_eq!((d.rows(), d.schema.features.len()), (150, 4));
        assert_eq!(d.class_names(), ["setosa", "versicolor", "virginica"]);
        assert_eq!(d.class_counts(), [50, 50, 50]);
        assert_eq!(d.schema.label, "species");
        assert_eq!(d.sha256, sha256_hex(IRIS_CSV));
        let x = match &d.table.column("sepal_width").unwrap().data {
            ColumnData::Numeric(v) => v.clone(),
            _ => panic!(),
        };
        // Fisher's values, not UCI's: samples 35 and 38 per UCI's errata.
        assert_eq!((x[34], x[37]), (3.1, 3.6));
    }

    #[test]
    fn penguin_like_file_with_label_first_blanks_and_categories() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("species,island,bill,sex,year\n");
        for i in 0..40 {
            let species = ["Adelie", "Gentoo"][i % 2];
            let bill = if i % 7 == 3 {
                "NA".to_string()
            } else {
                format!("{}.5", 35 + i % 2 * 10 + i % 3)
            };
            let sex = ["male", "female", ""][i % 3];
            text.push_str(&format!(
                "{species},{},{bill},{sex},{}\n",
                ["Biscoe", "Dream"][i % 3 % 2],
                2007 + i % 3
            ));
        }
        text.push_str("NA,Biscoe,40.1,male,2008\n");
        let p = write(dir.path(), "p.csv", text.as_bytes());
        let d = load(
            &p,
            DataConfig {
                label: Some(ColumnRef::Name("species".into())),
                ignore: vec![ColumnRef::Name("year".into())],
                ..DataConfig::default()
            },
        )
        .unwrap();
        assert_eq!(d.dropped, 1);
        assert_eq!(d.rows(), 40);
        assert_eq!(d.schema.task, Task::Classification);
        assert_eq!(d.class_names(), ["Adelie", "Gentoo"]);
        let kinds: Vec<_> = d
            .schema
            .features
            .iter()
            .map(|f| (f.name.as_str(), f.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("island", FeatureType::Categorical),
                ("bill", FeatureType::Numeric),
                ("sex", FeatureType::Categorical)
            ]
        );
        assert!(
            d.describe().contains("1 row(s) with a missing label"),
            "{}",
            d.describe()
        );
        let config = TrainConfig::default();
        let p = TrainingData::new(&d, &config, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        assert_eq!(p.train.rows() + p.test.rows(), 40);
        assert_eq!(p.width(), 2 + 1 + 3);
        assert_eq!(p.train.inputs.dense_width(), 2 + 1 + 3);
        assert!(
            p.train
                .inputs
                .dense()
                .iter()
                .chain(p.test.inputs.dense())
                .all(|v| v.is_finite())
        );
    }

    #[test]
    fn bad_tables_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = |name: &str, text: &str, cfg: DataConfig| {
            let p = write(dir.path(), name, text.as_bytes());
            load(&p, cfg).unwrap_err().to_string()
        };
        let m = err("one.csv", "a,y\n1,x\n2,x\n", DataConfig::default());
        assert!(m.contains("only one class (`x`)"), "{m}");
        let m = err("h.csv", "a,b,y\n", DataConfig::default());
        assert!(m.contains("no data rows"), "{m}");
        let m = err(
            "missing.csv",
            "a,y\n1,x\n2,z\n",
            DataConfig {
                label: Some(ColumnRef::Name("species".into())),
                ..DataConfig::default()
            },
        );
        assert!(
            m.contains("`species`, which is not found") && m.contains("a, y"),
            "{m}"
        );
        let m = err(
            "reg.csv",
            "a,y\n1,x\n2,z\n",
            DataConfig {
                task: Some(Task::Regression),
                ..DataConfig::default()
            },
        );
        assert!(
            m.contains("line 2") && m.contains("`x` is not a number"),
            "{m}"
        );
        let m = err(
            "const.csv",
            "a,y\n1,2.5\n2,2.5\n",
            DataConfig {
                task: Some(Task::Regression),
                ..DataConfig::default()
            },
        );
        assert!(m.contains("nothing to predict"), "{m}");
        let e = load(dir.path(), DataConfig::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a directory"), "{e}");
    }
}
