//! The training loop: seeded split, standardisation, Adam on cross-entropy, early stopping.
//!
//! The loop's concerns are types, as in burn-train: [`EarlyStopping`] decides when to stop,
//! an [`Interrupter`] lets the caller stop it between epochs, and a [`TrainObserver`] is told
//! about every epoch (the command line draws its progress bar with one). Nothing here prints.

mod control;

use std::time::{Duration, Instant};

use burn::module::AutodiffModule;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

pub use control::{EarlyStopping, Interrupter, Verdict};

use crate::config::TrainConfig;
use crate::data::{Split, Standardizer, Table};
use crate::error::{Error, Result};
use crate::metadata::{EpochStats, SplitSizes};
use crate::metrics::Evaluation;
use crate::model::{Mlp, MlpConfig};

/// Told about a run as it goes; every method has an empty default.
pub trait TrainObserver {
    /// Training is about to start `epochs` epochs (early stopping may end it sooner).
    fn started(&mut self, epochs: usize) {
        let _ = epochs;
    }
    /// An epoch finished.
    fn epoch(&mut self, stats: &EpochStats) {
        let _ = stats;
    }
    /// The loop ended (normally, early, or with an error).
    fn finished(&mut self) {}
}

/// An observer that ignores everything.
impl TrainObserver for () {}

/// A trained model and everything measured while training it.
#[derive(Debug)]
pub struct Fitted<B: Backend> {
    /// The trained network (at its best epoch when early stopping is on).
    pub model: Mlp<B>,
    /// Its architecture.
    pub mlp: MlpConfig,
    /// Scaling fitted on the training rows.
    pub standardizer: Standardizer,
    /// Row counts.
    pub split: SplitSizes,
    /// One entry per epoch run.
    pub history: Vec<EpochStats>,
    /// The epoch whose weights were kept.
    pub best_epoch: usize,
    /// Whether early stopping ended the run before `epochs`.
    pub stopped_early: bool,
    /// Final scores on the training rows.
    pub train: Evaluation,
    /// Final scores on the test rows.
    pub test: Evaluation,
    /// Wall time of the training loop.
    pub duration: Duration,
}

/// The architecture `config` asks for on `table`.
pub fn mlp_config(table: &Table, config: &TrainConfig) -> MlpConfig {
    MlpConfig {
        inputs: table.width(),
        hidden: config.model.hidden.clone(),
        outputs: table.class_names.len(),
        activation: config.model.activation,
        dropout: config.model.dropout,
    }
}

/// The rows of each split, standardised with statistics of the fitting rows only.
struct Splits {
    /// Rows the optimiser sees.
    train: Table,
    /// Rows that decide early stopping (carved out of the training split).
    valid: Option<Table>,
    /// Held-out rows, reported, never used for a decision.
    test: Table,
    /// The whole training split (train + valid), for the final training score.
    train_all: Table,
    standardizer: Standardizer,
}

impl Splits {
    fn new(table: &Table, config: &TrainConfig, rng: &mut ChaCha8Rng) -> Result<Self> {
        let data_err = |message: String| Error::Data {
            source_name: table.source.clone(),
            message,
        };
        let split = Split::stratified(
            &table.labels,
            &table.class_names,
            config.data.test_fraction,
            rng,
        )
        .map_err(|m| data_err(format!("cannot split into train and test: {m}")))?;
        let train_all = table.subset(&split.train);
        let (mut train, mut valid) = (train_all.clone(), None);
        if config.training.early_stopping_patience.is_some() {
            let inner = Split::stratified(
                &train_all.labels,
                &train_all.class_names,
                config.training.validation_fraction,
                rng,
            )
            .map_err(|m| {
                data_err(format!(
                    "cannot hold out a validation split for early stopping: {m}"
                ))
            })?;
            valid = Some(train_all.subset(&inner.test));
            train = train_all.subset(&inner.train);
        }
        let standardizer = Standardizer::fit(&train);
        let mut parts = Splits {
            train,
            valid,
            test: table.subset(&split.test),
            train_all,
            standardizer,
        };
        let s = &parts.standardizer;
        for part in [&mut parts.train, &mut parts.test, &mut parts.train_all] {
            s.transform(&mut part.features);
        }
        if let Some(v) = parts.valid.as_mut() {
            s.transform(&mut v.features);
        }
        Ok(parts)
    }

    fn sizes(&self) -> SplitSizes {
        SplitSizes {
            train: self.train.rows(),
            valid: self.valid.as_ref().map_or(0, Table::rows),
            test: self.test.rows(),
        }
    }
}

fn features_tensor<B: Backend>(t: &Table, device: &B::Device) -> Tensor<B, 2> {
    Tensor::from_data(
        TensorData::new(t.features.clone(), [t.rows(), t.width()]),
        device,
    )
}

fn labels_tensor<B: Backend>(t: &Table, device: &B::Device) -> Tensor<B, 1, Int> {
    let labels: Vec<i64> = t.labels.iter().map(|&l| l as i64).collect();
    Tensor::from_data(TensorData::new(labels, [t.rows()]), device)
}

/// Scores a model (without dropout) on a standardised split in one forward pass.
fn score<B: Backend>(model: &Mlp<B>, x: &Tensor<B, 2>, part: &Table) -> Evaluation {
    Evaluation::from_logits(
        &model.logits_to_host(x.clone()),
        &part.labels,
        &part.class_names,
    )
}

/// One pass over the training rows in (shuffled) batches, updating `model`.
///
/// Returns the updated model and the epoch's training scores, from the logits each batch was
/// trained on (copied to the host in one read per epoch, scored there).
struct Epoch<'a, B: AutodiffBackend> {
    x: &'a Tensor<B, 2>,
    y: &'a Tensor<B, 1, Int>,
    rows: &'a Table,
    order: &'a [usize],
    batch: usize,
    learning_rate: f64,
    loss_fn: &'a CrossEntropyLoss<B>,
}

impl<B: AutodiffBackend> Epoch<'_, B> {
    fn run<O: Optimizer<Mlp<B>, B>>(
        &self,
        mut model: Mlp<B>,
        optim: &mut O,
        device: &B::Device,
    ) -> (Mlp<B>, Vec<f32>) {
        let n = self.order.len();
        let mut epoch_logits = Vec::with_capacity(n.div_ceil(self.batch));
        for chunk in self.order.chunks(self.batch) {
            let (x, y) = if self.batch == n {
                (self.x.clone(), self.y.clone())
            } else {
                let idx: Vec<i64> = chunk.iter().map(|&i| i as i64).collect();
                let idx =
                    Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [chunk.len()]), device);
                (
                    self.x.clone().select(0, idx.clone()),
                    self.y.clone().select(0, idx),
                )
            };
            let logits = model.forward(x);
            let loss = self.loss_fn.forward(logits.clone(), y);
            epoch_logits.push(logits.inner());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(self.learning_rate, model, grads);
        }
        let logits = Tensor::cat(epoch_logits, 0)
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .unwrap_or_default();
        (model, logits)
    }

    /// Training scores of the epoch's logits, rows in the order they were trained on.
    fn score(&self, logits: &[f32]) -> Evaluation {
        let labels: Vec<usize> = self.order.iter().map(|&i| self.rows.labels[i]).collect();
        Evaluation::from_logits(logits, &labels, &self.rows.class_names)
    }
}

/// Whether a set of outputs shows the run has diverged.
fn diverged(logits: &[f32], expected_len: usize, loss: f64) -> bool {
    logits.len() != expected_len || logits.iter().any(|v| !v.is_finite()) || !loss.is_finite()
}

/// Trains a model on `table` as `config` says.
///
/// `interrupter` is checked once per epoch; when raised, training ends with
/// [`Error::Interrupted`] and nothing is returned. `observer` hears about every epoch.
pub fn fit<B: AutodiffBackend>(
    table: &Table,
    config: &TrainConfig,
    device: &B::Device,
    observer: &mut dyn TrainObserver,
    interrupter: &Interrupter,
) -> Result<Fitted<B::InnerBackend>> {
    let started = Instant::now();
    let t = &config.training;

    // The model's initial weights and dropout masks come from the backend's generator, the split
    // and the batch order from ours: both seeded, so a run is reproducible on a given backend.
    B::seed(device, t.seed);
    let mut rng = ChaCha8Rng::seed_from_u64(t.seed);
    let parts = Splits::new(table, config, &mut rng)?;

    let mlp = mlp_config(table, config);
    let mut model: Mlp<B> = mlp.init(device);
    let mut adam = AdamConfig::new();
    if t.weight_decay > 0.0 {
        adam = adam.with_weight_decay(Some(WeightDecayConfig::new(t.weight_decay as f32)));
    }
    let mut optim = adam.init::<B, Mlp<B>>();
    let loss_fn = CrossEntropyLossConfig::new().init(device);

    let x_train = features_tensor::<B>(&parts.train, device);
    let y_train = labels_tensor::<B>(&parts.train, device);
    let x_test = features_tensor::<B::InnerBackend>(&parts.test, device);
    let x_valid = parts
        .valid
        .as_ref()
        .map(|v| features_tensor::<B::InnerBackend>(v, device));

    let n = parts.train.rows();
    let batch = t.batch_size.unwrap_or(n).min(n);
    let mut order: Vec<usize> = (0..n).collect();
    let mut early_stopping = t.early_stopping_patience.map(EarlyStopping::new);
    let mut history = Vec::with_capacity(t.epochs.min(100_000));
    let mut best: Option<(usize, Mlp<B::InnerBackend>)> = None;
    let mut stopped_early = false;
    observer.started(t.epochs);
    let result: Result<()> = 'train: {
        for epoch in 1..=t.epochs {
            if let Some(signal) = interrupter.signal() {
                break 'train Err(Error::Interrupted { signal });
            }
            if batch < n {
                order.shuffle(&mut rng);
            }
            let pass = Epoch {
                x: &x_train,
                y: &y_train,
                rows: &parts.train,
                order: &order,
                batch,
                learning_rate: t.learning_rate,
                loss_fn: &loss_fn,
            };
            let logits;
            (model, logits) = pass.run(model, &mut optim, device);
            let train_eval = pass.score(&logits);
            if diverged(&logits, n * mlp.outputs, train_eval.loss) {
                break 'train Err(Error::Diverged {
                    epoch,
                    learning_rate: t.learning_rate,
                });
            }

            let inner = model.valid();
            let test_eval = score(&inner, &x_test, &parts.test);
            let valid_eval = parts
                .valid
                .as_ref()
                .zip(x_valid.as_ref())
                .map(|(v, x)| score(&inner, x, v));
            let stats = EpochStats {
                epoch,
                train_loss: train_eval.loss,
                train_accuracy: train_eval.accuracy,
                valid_loss: valid_eval.as_ref().map(|e| e.loss),
                valid_accuracy: valid_eval.as_ref().map(|e| e.accuracy),
                test_loss: test_eval.loss,
                test_accuracy: test_eval.accuracy,
            };
            observer.epoch(&stats);
            history.push(stats);

            if let (Some(es), Some(v)) = (early_stopping.as_mut(), valid_eval) {
                let verdict = es.update(epoch, v.loss);
                if verdict.improved {
                    best = Some((epoch, inner));
                }
                if verdict.stop {
                    stopped_early = epoch < t.epochs;
                    break;
                }
            }
        }
        Ok(())
    };
    observer.finished();
    result?;

    let (model, best_epoch) = match best {
        Some((epoch, m)) => (m, epoch),
        None => (model.valid(), history.len()),
    };
    let (train, test) = final_scores(&model, &parts, &x_test, device).ok_or(Error::Diverged {
        epoch: history.len(),
        learning_rate: t.learning_rate,
    })?;
    Ok(Fitted {
        model,
        mlp,
        split: parts.sizes(),
        standardizer: parts.standardizer,
        history,
        best_epoch,
        stopped_early,
        train,
        test,
        duration: started.elapsed(),
    })
}

/// Scores of the kept weights, without dropout, on the whole training split and the test split;
/// `None` when their outputs are not finite (the last optimiser step diverged): such a model is
/// never saved.
fn final_scores<B: Backend>(
    model: &Mlp<B>,
    parts: &Splits,
    x_test: &Tensor<B, 2>,
    device: &B::Device,
) -> Option<(Evaluation, Evaluation)> {
    let train_logits = model.logits_to_host(features_tensor(&parts.train_all, device));
    let test_logits = model.logits_to_host(x_test.clone());
    if train_logits
        .iter()
        .chain(&test_logits)
        .any(|v| !v.is_finite())
    {
        return None;
    }
    let classes = &parts.train_all.class_names;
    Some((
        Evaluation::from_logits(&train_logits, &parts.train_all.labels, classes),
        Evaluation::from_logits(&test_logits, &parts.test.labels, classes),
    ))
}
