//! The training loop: seeded split, standardisation, Adam on cross-entropy, early stopping.
//!
//! The loop's concerns are types, as in burn-train: [`EarlyStopping`] decides when to stop,
//! an [`Interrupter`] lets the caller stop it between epochs, and a [`TrainObserver`] is told
//! about every epoch (the command line draws its progress bar with one). Nothing here prints.

mod checkpoint;
mod control;

use std::time::{Duration, Instant};

use burn::module::AutodiffModule;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use rand::seq::SliceRandom;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use checkpoint::{CheckpointStore, epoch_rng, fingerprint};
pub use control::{EarlyStopping, Interrupter, Verdict};

use checkpoint::{Adaptor, Checkpoint, CheckpointRef, OptimizerRecord};

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
    /// The run carries on from the checkpoint of epoch `epoch` (called after `started`).
    fn resumed(&mut self, epoch: usize) {
        let _ = epoch;
    }
    /// A checkpoint was found but not resumed from, for the reason given; the run starts over.
    fn checkpoint_ignored(&mut self, reason: &str) {
        let _ = reason;
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

/// One pass over the training rows in (shuffled) batches, updating the model.
///
/// The rows live on the device from the start. An epoch puts them in its batch order with one
/// gather on the device (only the order's indices travel), then every batch is a contiguous
/// slice of that copy. The logits each batch was trained on stay on the device and are read
/// back once, at the end of the epoch, to score it.
struct Epoch<'a, B: AutodiffBackend> {
    x: &'a Tensor<B::InnerBackend, 2>,
    y: &'a Tensor<B::InnerBackend, 1, Int>,
    rows: &'a Table,
    /// The epoch's row order; `None`: as stored (full batch).
    order: Option<&'a [usize]>,
    batch: usize,
    learning_rate: f64,
    loss_fn: &'a CrossEntropyLoss<B>,
}

impl<B: AutodiffBackend> Epoch<'_, B> {
    /// Runs the epoch; `None` when `interrupter` was raised before its last batch (the model
    /// and optimiser are then part-way through it).
    fn run<O: Optimizer<Mlp<B>, B>>(
        &self,
        mut model: Mlp<B>,
        optim: &mut O,
        device: &B::Device,
        interrupter: &Interrupter,
    ) -> Option<(Mlp<B>, Vec<f32>)> {
        let n = self.rows.rows();
        let (x, y) = match self.order {
            Some(order) => {
                let idx: Vec<i64> = order.iter().map(|&i| i as i64).collect();
                let idx =
                    Tensor::<B::InnerBackend, 1, Int>::from_data(TensorData::new(idx, [n]), device);
                (
                    self.x.clone().select(0, idx.clone()),
                    self.y.clone().select(0, idx),
                )
            }
            None => (self.x.clone(), self.y.clone()),
        };
        let mut epoch_logits = Vec::with_capacity(n.div_ceil(self.batch));
        for start in (0..n).step_by(self.batch) {
            if interrupter.signal().is_some() {
                return None;
            }
            let (xb, yb) = if self.batch >= n {
                (x.clone(), y.clone())
            } else {
                let end = (start + self.batch).min(n);
                (x.clone().slice([start..end]), y.clone().slice([start..end]))
            };
            let logits = model.forward(Tensor::from_inner(xb));
            let loss = self.loss_fn.forward(logits.clone(), Tensor::from_inner(yb));
            epoch_logits.push(logits.inner());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(self.learning_rate, model, grads);
        }
        let logits = Tensor::cat(epoch_logits, 0)
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .unwrap_or_default();
        Some((model, logits))
    }

    /// Training scores of the epoch's logits, rows in the order they were trained on.
    fn score(&self, logits: &[f32]) -> Evaluation {
        let labels: Vec<usize> = match self.order {
            Some(order) => order.iter().map(|&i| self.rows.labels[i]).collect(),
            None => self.rows.labels.clone(),
        };
        Evaluation::from_logits(logits, &labels, &self.rows.class_names)
    }
}

/// Whether a set of outputs shows the run has diverged.
fn diverged(logits: &[f32], expected_len: usize, loss: f64) -> bool {
    logits.len() != expected_len || logits.iter().any(|v| !v.is_finite()) || !loss.is_finite()
}

/// Trains a model on `table` as `config` says.
///
/// `interrupter` is checked before every batch; when raised, training ends with
/// [`Error::Interrupted`] and nothing is returned. `observer` hears about every epoch.
///
/// `checkpoints` keeps the run's progress: a checkpoint found there that belongs to this run
/// (same data, same settings but for the epoch count) is resumed from; with
/// `training.checkpoint_every` set, one is saved every that many epochs and when the run is
/// interrupted. Pass `&mut ()` for neither.
pub fn fit<B: AutodiffBackend>(
    table: &Table,
    config: &TrainConfig,
    device: &B::Device,
    observer: &mut dyn TrainObserver,
    interrupter: &Interrupter,
    checkpoints: &mut dyn CheckpointStore,
) -> Result<Fitted<B::InnerBackend>> {
    let started = Instant::now();
    let t = &config.training;

    // The model's initial weights come from the backend's generator seeded here, the split from
    // ours; every epoch then draws its batch order and dropout masks from a generator of its own
    // (`epoch_rng`). All seeded, so a run is reproducible on a given backend, resumed or not.
    B::seed(device, t.seed);
    let mut rng = ChaCha8Rng::seed_from_u64(t.seed);
    let parts = Splits::new(table, config, &mut rng)?;

    let mlp = mlp_config(table, config);
    let mut model: Mlp<B> = mlp.init(device);
    let mut adam = AdamConfig::new();
    if t.weight_decay > 0.0 {
        adam = adam.with_weight_decay(Some(WeightDecayConfig::new(t.weight_decay as f32)));
    }
    let mut optim: Adaptor<B> = adam.init::<B, Mlp<B>>();
    let loss_fn = CrossEntropyLossConfig::new().init(device);

    // Everything goes to the device once.
    let x_train = features_tensor::<B::InnerBackend>(&parts.train, device);
    let y_train = labels_tensor::<B::InnerBackend>(&parts.train, device);
    let x_test = features_tensor::<B::InnerBackend>(&parts.test, device);
    let x_valid = parts
        .valid
        .as_ref()
        .map(|v| features_tensor::<B::InnerBackend>(v, device));

    let n = parts.train.rows();
    let batch = t.batch_size.unwrap_or(n).min(n);
    let mut order: Vec<usize> = (0..n).collect();
    let mut state = LoopState::<B> {
        epoch: 0,
        early_stopping: t.early_stopping_patience.map(EarlyStopping::new),
        history: Vec::with_capacity(t.epochs.min(100_000)),
        best: None,
    };
    let fingerprint = checkpoint::fingerprint(config, &table.sha256);
    let mut saved_epoch = None;
    observer.started(t.epochs);
    if let Some(bytes) = checkpoints.load()? {
        match Checkpoint::<B>::from_bytes(bytes, &fingerprint, &mlp, model.clone(), device) {
            Ok(c) if c.epoch <= t.epochs => {
                model = c.model;
                optim = optim.load_record(c.optimizer);
                state = LoopState {
                    epoch: c.epoch,
                    early_stopping: c.early_stopping,
                    history: c.history,
                    best: c.best,
                };
                saved_epoch = Some(state.epoch);
                observer.resumed(state.epoch);
            }
            Ok(c) => observer.checkpoint_ignored(&format!(
                "it is of epoch {}, past the {} epochs asked for",
                c.epoch, t.epochs
            )),
            Err(why) => observer.checkpoint_ignored(&why),
        }
    }
    let mut stopped_early = false;
    let result: Result<()> = 'train: {
        for epoch in state.epoch + 1..=t.epochs {
            // Interrupted between epochs, or part-way through one: keep the last epoch completed.
            let mut interrupted = interrupter.signal();
            if interrupted.is_none() {
                let mut erng = checkpoint::epoch_rng(t.seed, epoch);
                B::seed(device, erng.next_u64());
                if batch < n {
                    order.iter_mut().enumerate().for_each(|(i, o)| *o = i);
                    order.shuffle(&mut erng);
                }
                let pass = Epoch {
                    x: &x_train,
                    y: &y_train,
                    rows: &parts.train,
                    order: (batch < n).then_some(order.as_slice()),
                    batch,
                    learning_rate: t.learning_rate,
                    loss_fn: &loss_fn,
                };
                // `model` stays the epoch's starting point until the epoch completes; the
                // optimiser's starting point is kept to checkpoint an epoch interrupted part-way.
                let optim_before = t.checkpoint_every.map(|_| optim.to_record());
                match pass.run(model.clone(), &mut optim, device, interrupter) {
                    Some((m, logits)) => {
                        model = m;
                        let train_eval = pass.score(&logits);
                        if diverged(&logits, n * mlp.outputs, train_eval.loss) {
                            break 'train Err(Error::Diverged {
                                epoch,
                                learning_rate: t.learning_rate,
                            });
                        }
                        if state.finish_epoch(
                            epoch, train_eval, &model, &parts, &x_test, &x_valid, observer,
                        ) {
                            stopped_early = epoch < t.epochs;
                            break;
                        }
                        if t.checkpoint_every.is_some_and(|k| epoch % k == 0) && epoch < t.epochs {
                            checkpoints.save(&state.encode(
                                &model,
                                &optim.to_record(),
                                &fingerprint,
                            )?)?;
                            saved_epoch = Some(epoch);
                        }
                        continue;
                    }
                    None => {
                        if let Some(o) = optim_before {
                            optim = optim.load_record(o);
                        }
                        interrupted = interrupter.signal();
                    }
                }
            }
            let signal = interrupted.unwrap_or(crate::error::Signal::Interrupt);
            let mut checkpoint = None;
            if t.checkpoint_every.is_some() && state.epoch > 0 {
                if saved_epoch != Some(state.epoch) {
                    checkpoints.save(&state.encode(&model, &optim.to_record(), &fingerprint)?)?;
                }
                checkpoint = Some(state.epoch);
            }
            break 'train Err(Error::Interrupted { signal, checkpoint });
        }
        Ok(())
    };
    observer.finished();
    result?;

    let LoopState { history, best, .. } = state;
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

/// What the loop carries from epoch to epoch besides the weights and the optimiser.
struct LoopState<B: AutodiffBackend> {
    /// The last epoch completed.
    epoch: usize,
    early_stopping: Option<EarlyStopping>,
    history: Vec<EpochStats>,
    /// The best epoch so far and its weights (with early stopping).
    best: Option<(usize, Mlp<B::InnerBackend>)>,
}

impl<B: AutodiffBackend> LoopState<B> {
    /// Scores the model after `epoch` on the test (and validation) rows, records the epoch and
    /// tells the observer; returns whether early stopping ends the run.
    #[allow(clippy::too_many_arguments)]
    fn finish_epoch(
        &mut self,
        epoch: usize,
        train_eval: Evaluation,
        model: &Mlp<B>,
        parts: &Splits,
        x_test: &Tensor<B::InnerBackend, 2>,
        x_valid: &Option<Tensor<B::InnerBackend, 2>>,
        observer: &mut dyn TrainObserver,
    ) -> bool {
        let inner = model.valid();
        let test_eval = score(&inner, x_test, &parts.test);
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
        self.history.push(stats);
        self.epoch = epoch;
        if let (Some(es), Some(v)) = (self.early_stopping.as_mut(), valid_eval) {
            let verdict = es.update(epoch, v.loss);
            if verdict.improved {
                self.best = Some((epoch, inner));
            }
            return verdict.stop;
        }
        false
    }

    /// The checkpoint of the state after `self.epoch`.
    fn encode(
        &self,
        model: &Mlp<B>,
        optimizer: &OptimizerRecord<B>,
        fingerprint: &str,
    ) -> Result<Vec<u8>> {
        checkpoint::encode::<B>(
            CheckpointRef {
                epoch: self.epoch,
                model,
                optimizer,
                best: self.best.as_ref(),
                early_stopping: self.early_stopping.as_ref(),
                history: &self.history,
            },
            fingerprint,
        )
    }
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
