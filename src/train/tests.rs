//! The training figures summed on the device batch by batch agree with the host's scoring of the
//! same model on the same rows.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::backend::{Backend as Inner, TrainBackend as B};
use crate::config::ColumnRef;
use crate::data::Dataset;

/// One epoch at learning rate 0 (the weights never move), in shuffled batches of 16 (the last
/// one short), on Iris: as a classifier, or predicting petal width.
fn one_frozen_epoch(regression: bool, validation: bool) -> TrainedModel<Inner> {
    let mut config = TrainConfig::default();
    config.training.epochs = 1;
    config.training.learning_rate = 0.0;
    config.training.batch_size = Some(16);
    config.model.dropout = 0.0;
    if regression {
        config.data.label = Some(ColumnRef::Name("petal_width".into()));
        config.data.task = Some(Task::Regression);
    }
    let dataset = Dataset::load(&config.data).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let prepared = TrainingData::with_validation(&dataset, &config, &mut rng, validation).unwrap();
    assert_ne!(
        prepared.train.rows() % 16,
        0,
        "the last batch should be a short one"
    );
    let device = Default::default();
    let _training = crate::training_lock();
    fit::<B>(
        prepared,
        &config,
        &device,
        &mut (),
        &Interrupter::new(),
        &mut (),
    )
    .unwrap()
}

#[test]
fn an_epochs_classification_figures_match_the_host_scores_of_the_same_weights() {
    let fitted = one_frozen_epoch(false, false);
    let epoch = &fitted.history[0];
    let host = fitted.train.classification().unwrap();
    assert_eq!(epoch.train_accuracy, host.accuracy);
    assert!(
        (epoch.train_loss - host.loss).abs() < 1e-5,
        "{} vs {}",
        epoch.train_loss,
        host.loss
    );
    assert!(host.accuracy > 0.0 && host.loss > 0.1, "{host:?}");
}

#[test]
fn an_epochs_regression_figures_match_the_host_scores_of_the_same_weights() {
    let fitted = one_frozen_epoch(true, false);
    let epoch = &fitted.history[0];
    let host = fitted.train.regression().unwrap();
    let r2 = epoch.train_r2.unwrap();
    assert!((r2 - host.r2).abs() < 1e-4, "{r2} vs {}", host.r2);
    assert!(
        (epoch.train_loss - host.loss).abs() < 1e-5,
        "{} vs {}",
        epoch.train_loss,
        host.loss
    );
    assert!(epoch.train_accuracy.is_nan());
}

#[test]
fn the_final_training_scores_cover_the_validation_rows_too() {
    let fitted = one_frozen_epoch(false, true);
    let valid = fitted.valid.as_ref().unwrap();
    assert!(fitted.split.valid > 0);
    assert_eq!(fitted.split.valid, valid.rows());
    assert_eq!(fitted.train.rows(), fitted.split.train + fitted.split.valid);
    assert_eq!(fitted.test.rows(), fitted.split.test);
    // The whole training split's loss is the row-weighted mean of its two parts'.
    let epoch_rows = fitted.split.train as f64;
    let mixed = (fitted.history[0].train_loss * epoch_rows + valid.loss() * valid.rows() as f64)
        / (epoch_rows + valid.rows() as f64);
    assert!(
        (mixed - fitted.train.loss()).abs() < 1e-5,
        "{mixed} vs {}",
        fitted.train.loss()
    );
}

#[test]
fn max_steps_caps_the_epochs_of_a_table_of_many_batches() {
    assert_eq!(
        super::capped_epochs(300, 100_000, 1),
        300,
        "full batch: uncapped"
    );
    assert_eq!(super::capped_epochs(200, 10_000, 100), 100);
    assert_eq!(
        super::capped_epochs(200, 10_000, 50_000),
        1,
        "at least one epoch"
    );
    assert_eq!(super::capped_epochs(5, 10, 3), 3);
}
