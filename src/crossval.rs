//! K-fold cross-validation on the training split: the standard way to compare settings on a
//! small table, where one validation split is a handful of rows.
//!
//! The test split is drawn first, exactly as `train` draws it, and left out: the folds deal
//! only the training rows, so cross-validated scores can choose settings and the test score of
//! the model finally trained stays an honest estimate. Folds are stratified by class for
//! classification and drawn at random for regression, seeded by the split seed (`data.split_seed`,
//! or `training.seed`) on a generator stream of their own, so every point of a sweep and every
//! run gets the same folds.
//!
//! Folds run one after another in this process: the backends seed one global generator per
//! process, so folds trained side by side in threads would not be reproducible. (A sweep runs its
//! points, each with its folds, as separate processes in parallel.)

use burn::tensor::backend::AutodiffBackend;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::TrainConfig;
use crate::data::split::{random_folds, stratified_folds};
use crate::data::{Dataset, Split, Target, TrainingData};
use crate::error::{Error, Result};
use crate::metadata::{CrossValidation, FoldResult};
use crate::train::{self, Interrupter, TrainObserver};

/// The generator stream the folds are dealt from (the test split uses stream 0).
const FOLD_STREAM: u64 = 1;
/// Fold `f`'s early-stopping split is drawn from stream `VALID_STREAM + f`.
const VALID_STREAM: u64 = 2;

/// One fold's rows, as row numbers of the dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fold {
    /// Rows the optimiser fits on.
    pub fit: Vec<usize>,
    /// Rows of the other folds held out for early stopping (empty when it is off).
    pub valid: Vec<usize>,
    /// The fold's own rows, which it is scored on.
    pub held_out: Vec<usize>,
}

/// A cross-validation that has passed every check that can be made before training: the
/// config is valid, the data loaded, split into train and test, and the training rows dealt
/// into folds that each can be trained (and, with early stopping, hold out validation rows).
#[derive(Debug, Clone)]
pub struct CrossValidationRun {
    config: TrainConfig,
    dataset: Dataset,
    test_rows: Vec<usize>,
    train_rows: usize,
    folds: Vec<Fold>,
}

impl CrossValidationRun {
    /// Checks `config` (`origin` names it in messages), loads its data and deals `k` folds.
    pub fn prepare(config: TrainConfig, origin: &str, k: usize) -> Result<Self> {
        config.validate(origin)?;
        check_k(k, origin)?;
        let dataset = Dataset::load(&config.data)?;
        Self::from_dataset(dataset, config, origin, k)
    }

    /// As [`CrossValidationRun::prepare`], on a dataset already loaded (with `config` already
    /// validated). The test split is drawn as `train` draws it.
    pub fn from_dataset(
        dataset: Dataset,
        config: TrainConfig,
        origin: &str,
        k: usize,
    ) -> Result<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(config.split_seed());
        let split = TrainingData::test_split(&dataset, &config, &mut rng)?;
        Self::with_test_split(dataset, config, origin, k, split)
    }

    /// Deals the training rows of `split` into `k` folds; its test rows are never read. (The
    /// library hook that lets a test poison the test rows while keeping the split.)
    pub fn with_test_split(
        dataset: Dataset,
        config: TrainConfig,
        origin: &str,
        k: usize,
        split: Split,
    ) -> Result<Self> {
        check_k(k, origin)?;
        let seed = config.split_seed();
        let refuse = |reason: String| Error::ConfigValue {
            origin: origin.to_string(),
            key: "--folds".into(),
            value: k.to_string(),
            reason,
        };
        let train = &split.train;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(FOLD_STREAM);
        let positions = match &dataset.target {
            Target::Classes { names, labels } => {
                let mut counts = vec![0usize; names.len()];
                for &r in train {
                    counts[labels[r]] += 1;
                }
                if let Some((class, &n)) = counts.iter().enumerate().min_by_key(|(_, n)| **n)
                    && n < k
                {
                    return Err(refuse(format!(
                        "class `{}` has {n} rows in the training split ({} of its rows are test \
                         rows, left out of cross-validation), so some folds would hold none of \
                         it: use at most {n} folds",
                        names[class],
                        split.test.iter().filter(|&&r| labels[r] == class).count()
                    )));
                }
                let sub: Vec<usize> = train.iter().map(|&r| labels[r]).collect();
                stratified_folds(&sub, names.len(), k, &mut rng)
            }
            Target::Numbers(_) => {
                if train.len() < k {
                    return Err(refuse(format!(
                        "the training split has {} rows: use at most {} folds",
                        train.len(),
                        train.len()
                    )));
                }
                random_folds(train.len(), k, &mut rng)
            }
        };
        let early_stopping = config.training.early_stopping_patience.is_some();
        let mut folds = Vec::with_capacity(k);
        for (f, held) in positions.iter().enumerate() {
            let held_out: Vec<usize> = held.iter().map(|&i| train[i]).collect();
            let rest: Vec<usize> = train
                .iter()
                .enumerate()
                .filter(|(i, _)| held.binary_search(i).is_err())
                .map(|(_, &r)| r)
                .collect();
            let (fit, valid) = if early_stopping {
                let mut vrng = ChaCha8Rng::seed_from_u64(seed);
                vrng.set_stream(VALID_STREAM + f as u64);
                let inner = TrainingData::validation_split(&dataset, &config, &rest, &mut vrng)
                    .map_err(|e| {
                        let why = match e {
                            Error::Data { message, .. } => message,
                            other => other.to_string(),
                        };
                        refuse(format!(
                            "with early stopping on, fold {} trains on the other folds' {} rows and \
                             must hold out `training.validation_fraction` = {} of them: {why}; use \
                             fewer folds, or turn early stopping off",
                            f + 1,
                            rest.len(),
                            config.training.validation_fraction
                        ))
                    })?;
                (inner.train, inner.test)
            } else {
                (rest, Vec::new())
            };
            folds.push(Fold {
                fit,
                valid,
                held_out,
            });
        }
        Ok(CrossValidationRun {
            config,
            dataset,
            test_rows: split.test,
            train_rows: train.len(),
            folds,
        })
    }

    /// The folds, in order.
    pub fn folds(&self) -> &[Fold] {
        &self.folds
    }

    /// The test rows left out of every fold.
    pub fn test_rows(&self) -> &[usize] {
        &self.test_rows
    }

    /// The validated configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The data, as loaded.
    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }

    /// Trains one model per fold on `device`, one after another, and scores each on its fold.
    /// `observer` hears every fold's epochs; raising `interrupter` stops with
    /// [`Error::Interrupted`]. Nothing is written.
    pub fn run<B: AutodiffBackend>(
        &self,
        device: &B::Device,
        observer: &mut dyn TrainObserver,
        interrupter: &Interrupter,
    ) -> Result<CrossValidation> {
        let mut results = Vec::with_capacity(self.folds.len());
        for (f, fold) in self.folds.iter().enumerate() {
            let valid = (!fold.valid.is_empty()).then_some(fold.valid.as_slice());
            let prepared = TrainingData::from_rows(
                &self.dataset,
                &self.config,
                &fold.fit,
                valid,
                &fold.held_out,
            )?;
            // The fold's own rows take the place of the test rows: reported after every epoch,
            // never used for a decision inside the fold.
            let fitted = train::fit::<B>(
                prepared,
                &self.config,
                device,
                observer,
                interrupter,
                &mut (),
            )?;
            results.push(FoldResult {
                fold: f + 1,
                train_rows: fold.fit.len(),
                valid_rows: fold.valid.len(),
                held_out_rows: fold.held_out.len(),
                epochs_run: fitted.history.len(),
                scores: fitted.test.named(),
            });
        }
        Ok(CrossValidation::new(
            self.config.split_seed(),
            matches!(self.dataset.target, Target::Classes { .. }),
            self.train_rows,
            self.test_rows.len(),
            results,
        ))
    }
}

/// Refuses fewer than two folds.
fn check_k(k: usize, origin: &str) -> Result<()> {
    if k < 2 {
        return Err(Error::ConfigValue {
            origin: origin.to_string(),
            key: "--folds".into(),
            value: k.to_string(),
            reason: "cross-validation needs at least 2 folds (5 or 10 are usual)".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{self, TrainBackend};

    fn iris() -> (Dataset, TrainConfig) {
        let mut config = TrainConfig::default();
        config.training.epochs = 30;
        let dataset = Dataset::load(&config.data).unwrap();
        (dataset, config)
    }

    #[test]
    fn folds_are_seeded_stratified_and_leave_the_test_rows_out() {
        let (dataset, config) = iris();
        let run = |config: &TrainConfig| {
            CrossValidationRun::from_dataset(dataset.clone(), config.clone(), "t", 5).unwrap()
        };
        let a = run(&config);
        assert_eq!(a.folds(), run(&config).folds());
        let mut other = config.clone();
        other.data.split_seed = Some(7);
        assert_ne!(a.folds(), run(&other).folds());
        // `training.seed` alone does not move the folds once the split seed is fixed.
        let mut reseeded = config.clone();
        reseeded.data.split_seed = Some(42);
        reseeded.training.seed = 1;
        assert_eq!(a.folds(), run(&reseeded).folds());

        let Target::Classes { labels, .. } = &dataset.target else {
            panic!("Iris is a classification table")
        };
        let mut seen: Vec<usize> = Vec::new();
        for fold in a.folds() {
            assert_eq!(fold.held_out.len(), 24);
            for class in 0..3 {
                let n = fold
                    .held_out
                    .iter()
                    .filter(|&&r| labels[r] == class)
                    .count();
                assert_eq!(n, 8, "each fold holds 8 of every class's 40 training rows");
            }
            assert!(fold.fit.iter().all(|r| !fold.held_out.contains(r)));
            seen.extend(&fold.held_out);
        }
        seen.sort_unstable();
        let mut train: Vec<usize> = (0..150).filter(|r| !a.test_rows().contains(r)).collect();
        train.sort_unstable();
        assert_eq!(seen, train, "the folds deal exactly the training split");
    }

    #[test]
    fn poisoned_test_labels_change_nothing() {
        let (dataset, config) = iris();
        let split = {
            let mut rng = ChaCha8Rng::seed_from_u64(config.split_seed());
            TrainingData::test_split(&dataset, &config, &mut rng).unwrap()
        };
        let mut poisoned = dataset.clone();
        let Target::Classes { labels, .. } = &mut poisoned.target else {
            panic!("Iris is a classification table")
        };
        for &r in &split.test {
            labels[r] = (labels[r] + 1) % 3;
        }
        assert_ne!(
            format!("{:?}", dataset.target),
            format!("{:?}", poisoned.target)
        );
        let device = backend::init(false).unwrap().device;
        let cv = |d: Dataset| {
            let _training = crate::training_lock();
            CrossValidationRun::with_test_split(d, config.clone(), "t", 3, split.clone())
                .unwrap()
                .run::<TrainBackend>(&device, &mut (), &Interrupter::new())
                .unwrap()
        };
        let clean = cv(dataset);
        assert_eq!(clean.k, 3);
        assert_eq!(
            clean,
            cv(poisoned),
            "cross-validation never reads the test rows"
        );
    }

    #[test]
    fn fewer_than_two_folds_are_refused() {
        let (dataset, config) = iris();
        for k in [0, 1] {
            let m = CrossValidationRun::from_dataset(dataset.clone(), config.clone(), "t", k)
                .unwrap_err()
                .to_string();
            assert!(
                m.contains(&format!("`--folds` = {k}")) && m.contains("at least 2"),
                "{m}"
            );
        }
    }
}
