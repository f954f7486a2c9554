//! [`TrainingData`]: a [`Dataset`] split (seeded: stratified for classes, random for numbers), the
//! [`Preprocessor`] fitted on the rows the optimiser sees, and every split encoded.

use std::borrow::Cow;

use rand_chacha::ChaCha8Rng;

use super::dataset::{Dataset, Target};
use super::encoded::Encoded;
use super::preprocess::Preprocessor;
use super::schema::Task;
use super::split::{Split, SplitError};
use super::table::Table;
use crate::config::TrainConfig;
use crate::error::{Error, Result};

/// Labels of one split.
#[derive(Debug, Clone, PartialEq)]
pub enum Labels {
    /// Class indices.
    Classes(Vec<usize>),
    /// Targets standardised with [`TrainingData::target_scaling`].
    Numbers(Vec<f32>),
}

/// One split's rows, encoded for the network, with their labels.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedSplit {
    /// The rows as the network takes them.
    pub inputs: Encoded,
    /// Their labels.
    pub labels: Labels,
}

impl EncodedSplit {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.inputs.rows()
    }
}

/// Mean and standard deviation of a regression target, fitted on the training rows.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TargetScaling {
    /// Mean.
    pub mean: f32,
    /// Population standard deviation (1 when constant).
    pub std: f32,
}

/// A dataset split, its preprocessor fitted on the training rows, every split encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingData {
    /// Classification or regression.
    pub task: Task,
    /// Class names (empty for regression).
    pub classes: Vec<String>,
    /// The transform from raw columns to inputs.
    pub preprocessor: Preprocessor,
    /// Scaling of a regression target.
    pub target_scaling: Option<TargetScaling>,
    /// Rows the optimiser sees.
    pub train: EncodedSplit,
    /// Rows that decide early stopping (carved out of the training split).
    pub valid: Option<EncodedSplit>,
    /// Held-out rows, reported, never used for a decision.
    pub test: EncodedSplit,
}

impl TrainingData {
    /// Number of inputs.
    pub fn width(&self) -> usize {
        self.preprocessor.width()
    }

    /// Splits `data` (seeded by `rng`: stratified for classes, random for numbers), holds out a
    /// validation split when early stopping is on, fits the preprocessor on the rows the
    /// optimiser sees and encodes every split. The dataset is lent, so its table stays whole
    /// beside the encoded matrix ([`TrainingData::from_dataset`] gives it up as it encodes).
    pub fn new(data: &Dataset, config: &TrainConfig, rng: &mut ChaCha8Rng) -> Result<Self> {
        // `draw_splits` holds out a validation split whenever early stopping is on.
        let rows = Self::draw_splits(data, config, rng, false)?;
        Self::encode_splits(
            data,
            Cow::Borrowed(&data.table),
            config,
            rows,
            RELEASE_BLOCK_ROWS,
        )
    }

    /// [`TrainingData::from_dataset`] over a lent dataset: what the tests compare it with.
    #[cfg(test)]
    pub fn with_validation(
        data: &Dataset,
        config: &TrainConfig,
        rng: &mut ChaCha8Rng,
        validation: bool,
    ) -> Result<Self> {
        let rows = Self::draw_splits(data, config, rng, validation)?;
        Self::encode_splits(
            data,
            Cow::Borrowed(&data.table),
            config,
            rows,
            RELEASE_BLOCK_ROWS,
        )
    }

    /// The rows of the training, validation (see [`TrainingData::from_dataset`]) and test
    /// splits, drawn from `rng`: the test split first, the validation split from its rest.
    fn draw_splits(
        data: &Dataset,
        config: &TrainConfig,
        rng: &mut ChaCha8Rng,
        validation: bool,
    ) -> Result<SplitRows> {
        let outer = Self::test_split(data, config, rng)?;
        if validation || config.training.early_stopping_patience.is_some() {
            let inner = Self::validation_split(data, config, &outer.train, rng)?;
            Ok((inner.train, Some(inner.test), outer.test))
        } else {
            Ok((outer.train, None, outer.test))
        }
    }

    /// The train/test split of `data` (`data.test_fraction`, seeded by `rng`): the first draw
    /// from the split seed's generator.
    pub fn test_split(data: &Dataset, config: &TrainConfig, rng: &mut ChaCha8Rng) -> Result<Split> {
        // `split_rows` over every row, without its list of row numbers and their labels.
        let fraction = config.data.test_fraction;
        match &data.target {
            Target::Classes { names, labels } => Split::stratified(labels, names, fraction, rng),
            Target::Numbers(_) => Split::random(data.rows(), fraction, rng),
        }
        .map_err(|m| Error::Data {
            source_name: data.source.clone(),
            message: format!("cannot split into train and test: {m}"),
        })
    }

    /// `training.validation_fraction` of `rows` held out (stratified for classes), for early
    /// stopping or ranking.
    pub fn validation_split(
        data: &Dataset,
        config: &TrainConfig,
        rows: &[usize],
        rng: &mut ChaCha8Rng,
    ) -> Result<Split> {
        split_rows(data, rows, config.training.validation_fraction, rng).map_err(|m| Error::Data {
            source_name: data.source.clone(),
            message: format!("cannot hold out a validation split: {m}"),
        })
    }

    /// Fits the preprocessor (and a regression target's scaling) on `fit_rows` and encodes them,
    /// the `valid_rows` that decide early stopping, and the held-out `test_rows` (reported, never
    /// used for a decision). Row numbers index `data`; each split keeps its rows in file order
    /// (training shuffles them every epoch).
    pub fn from_rows(
        data: &Dataset,
        config: &TrainConfig,
        fit_rows: &[usize],
        valid_rows: Option<&[usize]>,
        test_rows: &[usize],
    ) -> Result<Self> {
        Self::encode_splits(
            data,
            Cow::Borrowed(&data.table),
            config,
            (
                fit_rows.to_vec(),
                valid_rows.map(<[usize]>::to_vec),
                test_rows.to_vec(),
            ),
            RELEASE_BLOCK_ROWS,
        )
    }

    /// As [`TrainingData::new`], holding out a validation split (`training.validation_fraction` of
    /// the training rows, drawn after the test split from the same `rng`) whenever `validation`
    /// is true or early stopping is on: a sweep point holds one out to be ranked on. The dataset
    /// is taken: its columns are given back to the allocator block by block as the rows are
    /// encoded, so the raw table and the encoded matrix are never both whole in memory (peak
    /// about the larger of the two, not their sum).
    pub fn from_dataset(
        mut data: Dataset,
        config: &TrainConfig,
        rng: &mut ChaCha8Rng,
        validation: bool,
    ) -> Result<Self> {
        let rows = Self::draw_splits(&data, config, rng, validation)?;
        let table = std::mem::take(&mut data.table);
        Self::encode_splits(&data, Cow::Owned(table), config, rows, RELEASE_BLOCK_ROWS)
    }

    /// [`TrainingData::from_rows`] over `table` (the columns of `data`, lent or given): an owned
    /// table is cut back as its rows are encoded, from the last rows to the first, each split's
    /// matrix filled from its end, so freed raw rows and newly written encoded rows balance.
    /// The training, validation and test rows are `rows`; `block_rows` rows are encoded between
    /// two cuts of an owned table.
    fn encode_splits(
        data: &Dataset,
        mut table: Cow<'_, Table>,
        config: &TrainConfig,
        rows: SplitRows,
        block_rows: usize,
    ) -> Result<Self> {
        let data_err = |message: String| Error::Data {
            source_name: data.source.clone(),
            message,
        };
        let sorted = |mut rows: Vec<usize>| {
            rows.sort_unstable();
            rows
        };
        let (fit_rows, valid_rows, test_rows) =
            (sorted(rows.0), rows.1.map(sorted), sorted(rows.2));
        let mut preprocessor = Preprocessor::fit_encoders(
            &table,
            &data.schema,
            &fit_rows,
            &config.preprocess,
            &data.missing_values,
        )
        .map_err(|e| data_err(e.to_string()))?;
        let w = preprocessor.width();
        let mut splits: Vec<(&[usize], Vec<f32>)> = std::iter::once(fit_rows.as_slice())
            .chain(valid_rows.as_deref())
            .chain(std::iter::once(test_rows.as_slice()))
            .map(|rows| (rows, vec![0f32; rows.len() * w]))
            .collect();
        let mut unknown = vec![(0, Vec::new()); preprocessor.encoding.columns.len()];
        let mut hi = table.rows();
        while hi > 0 {
            let lo = hi.saturating_sub(block_rows.max(1));
            for (rows, x) in &mut splits {
                let (a, b) = (
                    rows.partition_point(|&r| r < lo),
                    rows.partition_point(|&r| r < hi),
                );
                preprocessor
                    .encode_unscaled(
                        &table,
                        Some(&rows[a..b]),
                        &mut x[a * w..b * w],
                        a,
                        &mut unknown,
                    )
                    .map_err(|e| data_err(e.to_string()))?;
            }
            if let Cow::Owned(t) = &mut table {
                t.truncate_rows(lo);
            }
            hi = lo;
        }
        drop(table);
        preprocessor.fit_scaling(&splits[0].1, config.preprocess.scaling);
        for (_, x) in &mut splits {
            preprocessor.scaling.transform(x);
            preprocessor
                .check_finite(x, 0)
                .map_err(|e| data_err(e.to_string()))?;
        }
        let target_scaling = match &data.target {
            Target::Numbers(v) => {
                let n = fit_rows.len() as f64;
                let mean = fit_rows.iter().map(|&r| f64::from(v[r])).sum::<f64>() / n;
                let var = fit_rows
                    .iter()
                    .map(|&r| (f64::from(v[r]) - mean).powi(2))
                    .sum::<f64>()
                    / n;
                let std = var.sqrt();
                Some(TargetScaling {
                    mean: mean as f32,
                    std: if std > 1e-12 { std as f32 } else { 1.0 },
                })
            }
            Target::Classes { .. } => None,
        };
        let labels = |rows: &[usize]| match &data.target {
            Target::Classes { labels, .. } => {
                Labels::Classes(rows.iter().map(|&r| labels[r]).collect())
            }
            Target::Numbers(v) => {
                let s = target_scaling.unwrap_or(TargetScaling {
                    mean: 0.0,
                    std: 1.0,
                });
                Labels::Numbers(rows.iter().map(|&r| (v[r] - s.mean) / s.std).collect())
            }
        };
        let mut parts = splits.into_iter().map(|(rows, x)| EncodedSplit {
            inputs: Encoded::from_dense(rows.len(), x, w),
            labels: labels(rows),
        });
        let train = parts.next().expect("the training split");
        let valid = valid_rows.as_ref().and_then(|_| parts.next());
        let test = parts.next().expect("the test split");
        Ok(TrainingData {
            task: data.schema.task,
            classes: data.class_names().to_vec(),
            preprocessor,
            target_scaling,
            train,
            valid,
            test,
        })
    }
}

/// Row numbers of the training, validation (if any) and test splits.
type SplitRows = (Vec<usize>, Option<Vec<usize>>, Vec<usize>);

/// Rows encoded between two cuts of an owned table (`TrainingData::from_dataset`): 65,536 rows of a
/// numeric column are 256 KiB given back at a time.
const RELEASE_BLOCK_ROWS: usize = 65_536;

/// Holds out `fraction` of `rows` (row numbers of `data`): stratified by class for
/// classification, at random for regression.
fn split_rows(
    data: &Dataset,
    rows: &[usize],
    fraction: f64,
    rng: &mut ChaCha8Rng,
) -> std::result::Result<Split, SplitError> {
    match &data.target {
        Target::Classes { names, labels } => {
            let sub: Vec<usize> = rows.iter().map(|&r| labels[r]).collect();
            Split::stratified(&sub, names, fraction, rng).map(|s| s.within(rows))
        }
        Target::Numbers(_) => Split::random(rows.len(), fraction, rng).map(|s| s.within(rows)),
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::config::{ColumnRef, DataConfig};
    use crate::data::fixtures::{load, write};

    #[test]
    fn regression_targets_are_standardised_on_the_training_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("x;y\n");
        for i in 0..50 {
            text.push_str(&format!("{i};{}\n", i as f32 * 2.5 + 1.0));
        }
        let p = write(dir.path(), "r.csv", text.as_bytes());
        let d = load(&p, DataConfig::default()).unwrap();
        assert_eq!(d.schema.task, Task::Regression);
        assert!(d.format.contains("delimiter ';'"), "{}", d.format);
        let prep = TrainingData::new(
            &d,
            &TrainConfig::default(),
            &mut ChaCha8Rng::seed_from_u64(1),
        )
        .unwrap();
        let Labels::Numbers(y) = &prep.train.labels else {
            panic!()
        };
        let mean: f32 = y.iter().sum::<f32>() / y.len() as f32;
        assert!(mean.abs() < 1e-5, "{mean}");
        assert_eq!((prep.train.rows(), prep.test.rows()), (40, 10));
        assert!(prep.target_scaling.is_some());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// A labelled table (`x`, `colour`, `label`) with blanks in every column, written as CSV
        /// and loaded: the label alternates `a`/`b` where it is not missing.
        fn labelled(rows: &[(Option<f32>, Option<usize>, bool)]) -> Result<Dataset> {
            let dir = tempfile::tempdir().unwrap();
            let mut text = String::from("x,colour,label\n");
            for (i, (x, colour, missing_label)) in rows.iter().enumerate() {
                let x = x.map_or("NA".to_string(), |x| x.to_string());
                let colour = colour.map_or("", |c| ["red", "green", "blue", "grey"][c]);
                let label = if *missing_label {
                    ""
                } else {
                    ["a", "b"][i % 2]
                };
                text += &format!("{x},{colour},{label}\n");
            }
            let p = write(dir.path(), "t.csv", text.as_bytes());
            load(
                &p,
                DataConfig {
                    label: Some(ColumnRef::Name("label".into())),
                    ..DataConfig::default()
                },
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(32))]

            /// A table given to `TrainingData`, cut back every `block` rows as they are encoded,
            /// encodes exactly as the same table lent: the same inputs, labels and preprocessor,
            /// with or without a validation split.
            #[test]
            fn an_owned_table_encodes_as_a_lent_one(
                rows in proptest::collection::vec(
                    (proptest::option::of(-1e3f32..1e3), proptest::option::of(0..4usize), prop::bool::weighted(0.1)),
                    12..60,
                ),
                block in 1usize..9,
                validation in any::<bool>(),
                seed in any::<u64>(),
            ) {
                let Ok(data) = labelled(&rows) else { return Ok(()) };
                let config = TrainConfig::default();
                let rng = || ChaCha8Rng::seed_from_u64(seed);
                let lent = TrainingData::with_validation(&data, &config, &mut rng(), validation);
                let whole = TrainingData::from_dataset(data.clone(), &config, &mut rng(), validation);
                let Ok(lent) = lent else {
                    prop_assert!(whole.is_err());
                    return Ok(());
                };
                prop_assert_eq!(&whole.unwrap(), &lent);

                let mut rng = rng();
                let outer = TrainingData::test_split(&data, &config, &mut rng).unwrap();
                let inner = validation
                    .then(|| TrainingData::validation_split(&data, &config, &outer.train, &mut rng).unwrap());
                let fit = inner.as_ref().map_or(&outer.train, |i| &i.train);
                let mut rest = data.clone();
                let table = std::mem::take(&mut rest.table);
                let owned = TrainingData::encode_splits(
                    &rest, Cow::Owned(table), &config, (fit.clone(), inner.as_ref().map(|i| i.test.clone()), outer.test.clone()), block,
                ).unwrap();
                prop_assert_eq!(&owned, &lent);
                prop_assert_eq!(lent.valid.is_some(), validation);
                prop_assert_eq!(lent.train.rows() + lent.valid.map_or(0, |v| v.rows()) + lent.test.rows(), data.rows());
            }
        }
    }
}
