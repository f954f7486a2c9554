//! The training loop: Adam on cross-entropy (classification) or on MSE / Huber of the
//! standardised target (regression), with early stopping.
//!
//! The data arrive split and encoded ([`TrainingData`]); the loop's concerns are types, as in
//! burn-train: [`EarlyStopping`] decides when to stop, an [`Interrupter`] lets the caller stop it
//! before any batch, a [`CheckpointStore`] keeps its progress so a killed run can carry on, and a
//! [`TrainObserver`] is told about every epoch (the command line draws its progress bar with
//! one). Nothing here prints.

mod checkpoint;
mod control;

use std::ops::Range;
use std::time::{Duration, Instant};

use burn::module::AutodiffModule;
use burn::nn::loss::{
    CrossEntropyLoss, CrossEntropyLossConfig, HuberLoss, HuberLossConfig, MseLoss, Reduction,
};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use rand::RngCore;
use rand::seq::SliceRandom;

pub use checkpoint::{CheckpointStore, epoch_rng, fingerprint};
pub use control::{EarlyStopping, Interrupter, Verdict};

use checkpoint::{Adaptor, Checkpoint, CheckpointRef, OptimizerRecord};

use crate::config::TrainConfig;
use crate::data::{Labels, Task, TrainingData};
use crate::error::{Error, Result};
use crate::metadata::{EpochStats, SplitSizes};
use crate::metrics::{Scorer, Scores, Tally, Truth};
use crate::model::{Ensemble, EnsembleConfig, Inputs, Mlp, MlpConfig};
use crate::recipe;

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
    /// Something went wrong that does not stop training (e.g. the tracking server went away).
    fn warning(&mut self, message: &str) {
        let _ = message;
    }
    /// The loop ended (normally, early, or with an error).
    fn finished(&mut self) {}
}

/// An observer that ignores everything.
impl TrainObserver for () {}

/// A trained model and everything measured while training it.
#[derive(Debug)]
pub struct TrainedModel<B: Backend> {
    /// The trained model (at its best epoch when early stopping is on).
    pub model: Ensemble<B>,
    /// Its architecture.
    pub architecture: EnsembleConfig,
    /// Row counts.
    pub split: SplitSizes,
    /// One entry per epoch run.
    pub history: Vec<EpochStats>,
    /// The epoch whose weights were kept.
    pub best_epoch: usize,
    /// Whether early stopping ended the run before `epochs`.
    pub stopped_early: bool,
    /// Final scores on the training rows.
    pub train: Scores,
    /// Final scores on the test rows.
    pub test: Scores,
    /// Final scores on the validation rows, when there are some.
    pub valid: Option<Scores>,
    /// Wall time of the training loop.
    pub duration: Duration,
}

/// The architecture `config` asks for on `data`.
pub fn mlp_config(data: &TrainingData, config: &TrainConfig) -> MlpConfig {
    MlpConfig {
        inputs: data.width(),
        hidden: config.model.hidden.clone(),
        outputs: match data.task {
            Task::Classification => data.classes.len(),
            Task::Regression => 1,
        },
        activation: config.model.activation,
        dropout: config.model.dropout,
    }
}

/// The targets of a split as the loss wants them: class indices or a `[rows, 1]` column.
enum Targets<B: Backend> {
    Classes(Tensor<B, 1, Int>),
    Numbers(Tensor<B, 2>),
}

impl<B: Backend> Targets<B> {
    fn new(labels: &Labels, device: &B::Device) -> Self {
        match labels {
            Labels::Classes(l) => {
                let v: Vec<i64> = l.iter().map(|&c| c as i64).collect();
                Targets::Classes(Tensor::from_data(TensorData::new(v, [l.len()]), device))
            }
            Labels::Numbers(v) => Targets::Numbers(Tensor::from_data(
                TensorData::new(v.clone(), [v.len(), 1]),
                device,
            )),
        }
    }

    /// The rows `idx` lists, in that order (one gather on the device).
    fn select(&self, idx: Tensor<B, 1, Int>) -> Self {
        match self {
            Targets::Classes(t) => Targets::Classes(t.clone().select(0, idx)),
            Targets::Numbers(t) => Targets::Numbers(t.clone().select(0, idx)),
        }
    }

    /// The contiguous rows `rows`.
    fn slice(&self, rows: std::ops::Range<usize>) -> Self {
        match self {
            Targets::Classes(t) => Targets::Classes(t.clone().slice([rows])),
            Targets::Numbers(t) => Targets::Numbers(t.clone().slice([rows])),
        }
    }
}

impl<B: Backend> Clone for Targets<B> {
    fn clone(&self) -> Self {
        match self {
            Targets::Classes(t) => Targets::Classes(t.clone()),
            Targets::Numbers(t) => Targets::Numbers(t.clone()),
        }
    }
}

/// Targets kept on the inner backend, handed to the autodiff loss (no gradient flows into them).
fn targets_from_inner<B: AutodiffBackend>(t: Targets<B::InnerBackend>) -> Targets<B> {
    match t {
        Targets::Classes(t) => Targets::Classes(Tensor::from_inner(t)),
        Targets::Numbers(t) => Targets::Numbers(Tensor::from_inner(t)),
    }
}

/// The loss of the task.
enum Loss<B: Backend> {
    CrossEntropy(CrossEntropyLoss<B>),
    Mse(MseLoss),
    Huber(HuberLoss),
}

impl<B: Backend> Loss<B> {
    fn forward(&self, outputs: Tensor<B, 2>, targets: Targets<B>) -> Tensor<B, 1> {
        match (self, targets) {
            (Loss::CrossEntropy(l), Targets::Classes(y)) => l.forward(outputs, y),
            (Loss::Mse(l), Targets::Numbers(y)) => l.forward(outputs, y, Reduction::Mean),
            (Loss::Huber(l), Targets::Numbers(y)) => l.forward(outputs, y, Reduction::Mean),
            // The loss is chosen from the same task as the targets.
            (Loss::CrossEntropy(_), Targets::Numbers(y)) => y.sum().reshape([1]) * 0.0,
            (_, Targets::Classes(_)) => outputs.sum().reshape([1]) * 0.0,
        }
    }
}

/// `epochs`, or fewer when that many would take more than `max_steps` optimiser steps of
/// `batches` batches each (at least one epoch).
pub fn capped_epochs(epochs: usize, max_steps: usize, batches: usize) -> usize {
    epochs.min((max_steps / batches.max(1)).max(1))
}

/// Rows read back from the device at a time when scoring a split: bounds the host memory
/// scoring needs, whatever the split's size.
const SCORE_CHUNK_ROWS: usize = 65_536;

/// The truth of the rows `rows` of `labels` (regression targets are held standardised).
fn truth(labels: &Labels, rows: Range<usize>) -> Truth<'_> {
    match labels {
        Labels::Classes(l) => Truth::Classes(&l[rows]),
        Labels::Numbers(y) => Truth::Standardised(&y[rows]),
    }
}

/// Adds the outputs of a model (without dropout) on `x`, whose rows are `labels`, to every one
/// of `tallies`, reading them back a chunk at a time; `false` when an output is not finite.
fn add_scores<B: Backend>(
    model: &Mlp<B>,
    x: &Inputs<B>,
    labels: &Labels,
    scorer: Scorer,
    tallies: &mut [&mut Tally],
) -> bool {
    let rows = x.rows();
    for start in (0..rows).step_by(SCORE_CHUNK_ROWS) {
        let end = (start + SCORE_CHUNK_ROWS).min(rows);
        let chunk = if start == 0 && end == rows {
            x.clone()
        } else {
            x.slice(start..end)
        };
        let outputs = model.logits_to_host(chunk);
        if outputs.iter().any(|v| !v.is_finite()) {
            return false;
        }
        for tally in tallies.iter_mut() {
            scorer.add(tally, &outputs, truth(labels, start..end));
        }
    }
    true
}

/// Scores a model (without dropout) on an encoded split.
fn score<B: Backend>(model: &Mlp<B>, x: &Inputs<B>, labels: &Labels, scorer: Scorer) -> Scores {
    let mut tally = scorer.tally();
    add_scores(model, x, labels, scorer, &mut [&mut tally]);
    scorer.finish(&tally)
}

/// An epoch's training figures, from the outputs each batch was trained on.
struct EpochFigures {
    loss: f64,
    accuracy: Option<f64>,
    r2: Option<f64>,
}

/// One pass over the training rows in (shuffled) batches, updating the model.
///
/// The rows live on the device from the start; each batch gathers its rows there (only the
/// batch's row numbers travel), as PyTorch's samplers do, so no shuffled copy of the whole split
/// is made. Each batch's loss (and its count of correct predictions, or its squared error) stays
/// on the device; they are read back together once, at the end of the epoch.
struct Epoch<'a, B: AutodiffBackend> {
    x: &'a Inputs<B::InnerBackend>,
    y: &'a Targets<B::InnerBackend>,
    rows: usize,
    /// The sum of squares of the training targets about their mean (regression), for R².
    target_m2: f64,
    /// The epoch's row order; `None`: as stored.
    order: Option<&'a [usize]>,
    batch: usize,
    learning_rate: f64,
    loss_fn: &'a Loss<B>,
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
    ) -> Option<(Mlp<B>, EpochFigures)> {
        let n = self.rows;
        let batches = n.div_ceil(self.batch);
        let mut losses = Vec::with_capacity(batches);
        let mut hits = Vec::with_capacity(batches);
        for start in (0..n).step_by(self.batch) {
            if interrupter.signal().is_some() {
                return None;
            }
            let end = (start + self.batch).min(n);
            let (xb, yb) = match self.order {
                Some(order) => {
                    let idx: Vec<i64> = order[start..end].iter().map(|&i| i as i64).collect();
                    let idx = Tensor::<B::InnerBackend, 1, Int>::from_data(
                        TensorData::new(idx, [end - start]),
                        device,
                    );
                    (self.x.select(idx.clone()), self.y.select(idx))
                }
                None if self.batch >= n => (self.x.clone(), self.y.clone()),
                None => (self.x.slice(start..end), self.y.slice(start..end)),
            };
            let outputs = model.forward_inputs(Inputs::from_inner(xb));
            let loss = self
                .loss_fn
                .forward(outputs.clone(), targets_from_inner::<B>(yb.clone()));
            losses.push(loss.clone().inner());
            hits.push(match yb {
                // Correct predictions (classification), squared error (regression).
                Targets::Classes(y) => outputs
                    .inner()
                    .argmax(1)
                    .reshape([end - start])
                    .equal(y)
                    .float()
                    .sum(),
                Targets::Numbers(y) => (outputs.inner() - y).powi_scalar(2).sum(),
            });
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(self.learning_rate, model, grads);
        }
        // One read back per epoch: the batches' losses, then their hits or squared errors.
        let sums = Tensor::cat(vec![Tensor::cat(losses, 0), Tensor::cat(hits, 0)], 0)
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .unwrap_or_default();
        let (losses, hits) = sums.split_at(sums.len() / 2);
        let weight = |b: usize| ((n - b * self.batch).min(self.batch)) as f64;
        let loss = losses
            .iter()
            .enumerate()
            .map(|(b, &l)| f64::from(l) * weight(b))
            .sum::<f64>()
            / n as f64;
        let hits = hits.iter().map(|&h| f64::from(h)).sum::<f64>();
        let figures = match self.y {
            Targets::Classes(_) => EpochFigures {
                loss,
                accuracy: Some(hits / n as f64),
                r2: None,
            },
            Targets::Numbers(_) => EpochFigures {
                loss: if hits.is_finite() { loss } else { f64::NAN },
                accuracy: None,
                r2: Some(if self.target_m2 > 0.0 {
                    1.0 - hits / self.target_m2
                } else {
                    0.0
                }),
            },
        };
        Some((model, figures))
    }
}

/// The sum of squares of `labels` about their mean (0 for classes).
fn target_m2(labels: &Labels) -> f64 {
    match labels {
        Labels::Classes(_) => 0.0,
        Labels::Numbers(y) => {
            let n = y.len().max(1) as f64;
            let mean = y.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            y.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum()
        }
    }
}

/// The epoch's row of `metrics.csv` from its scores.
fn epoch_stats(
    epoch: usize,
    train: &EpochFigures,
    valid: Option<&Scores>,
    test: &Scores,
) -> EpochStats {
    let acc = |s: &Scores| s.accuracy().unwrap_or(f64::NAN);
    let reg = |s: &Scores| s.regression().cloned();
    EpochStats {
        epoch,
        train_loss: train.loss,
        train_accuracy: train.accuracy.unwrap_or(f64::NAN),
        valid_loss: valid.map(Scores::loss),
        valid_accuracy: valid.and_then(Scores::accuracy),
        test_loss: test.loss(),
        test_accuracy: acc(test),
        train_r2: train.r2,
        valid_r2: valid.and_then(reg).map(|e| e.r2),
        test_r2: reg(test).map(|e| e.r2),
        test_rmse: reg(test).map(|e| e.rmse),
        test_mae: reg(test).map(|e| e.mae),
    }
}

/// Trains a model on `data` as `config` says.
///
/// The encoded rows move to the device (on the CPU backend without a copy): a run holds its
/// data once, whatever its size.
///
/// `interrupter` is checked before every batch; when raised, training ends with
/// [`Error::Interrupted`] and nothing is returned. `observer` hears about every epoch.
///
/// `checkpoints` keeps the run's progress: a checkpoint found there that belongs to this run
/// (same data, same settings but for the epoch count) is resumed from; with
/// `training.checkpoint_every` set, one is saved every that many epochs and when the run is
/// interrupted. Pass `&mut ()` for neither.
pub fn fit<B: AutodiffBackend>(
    data: TrainingData,
    config: &TrainConfig,
    device: &B::Device,
    observer: &mut dyn TrainObserver,
    interrupter: &Interrupter,
    checkpoints: &mut dyn CheckpointStore,
) -> Result<TrainedModel<B::InnerBackend>> {
    let started = Instant::now();
    let t = &config.training;

    // The model's initial weights come from the backend's generator seeded here (the split was
    // drawn from the seed too); every epoch then draws its batch order and dropout masks from a
    // generator of its own (`epoch_rng`). All seeded, so a run is reproducible on a given
    // backend, resumed or not.
    B::seed(device, t.seed);

    let mlp = mlp_config(&data, config);
    let mut model: Mlp<B> = mlp.init(device);
    let mut adam = AdamConfig::new();
    if t.weight_decay > 0.0 {
        adam = adam.with_weight_decay(Some(WeightDecayConfig::new(t.weight_decay as f32)));
    }
    let mut optim: Adaptor<B> = adam.init::<B, Mlp<B>>();
    let loss_fn = match config.recipe().fitting.loss(data.task) {
        recipe::Loss::CrossEntropy => {
            Loss::CrossEntropy(CrossEntropyLossConfig::new().init(device))
        }
        recipe::Loss::SquaredError => Loss::Mse(MseLoss::new()),
        recipe::Loss::Huber { delta } => Loss::Huber(HuberLossConfig::new(delta as f32).init()),
    };
    // Hashing the data costs a pass over it: only when a checkpoint is read or written.
    let found = checkpoints.load()?;
    let fingerprint = if found.is_some() || t.checkpoint_every.is_some() {
        checkpoint::fingerprint(config, &data)
    } else {
        String::new()
    };
    let task = data.task;
    let TrainingData {
        classes,
        target_scaling,
        train,
        valid,
        test,
        ..
    } = data;
    let scorer = Scorer::new(&classes, target_scaling, config.recipe().fitting.loss(task));

    // Everything goes to the device once; the host keeps only the labels, to score.
    let n = train.rows();
    let train_m2 = target_m2(&train.labels);
    let y_train = Targets::<B::InnerBackend>::new(&train.labels, device);
    let x_train = Inputs::<B::InnerBackend>::new(train.inputs, device);
    let train_y = train.labels;
    let test_rows = test.rows();
    let x_test = Inputs::<B::InnerBackend>::new(test.inputs, device);
    let test_y = test.labels;
    let valid = valid.map(|v| (Inputs::<B::InnerBackend>::new(v.inputs, device), v.labels));
    let split = SplitSizes {
        train: n,
        valid: valid.as_ref().map_or(0, |(x, _)| x.rows()),
        test: test_rows,
    };

    let batch = t.batch_size.unwrap_or(n).min(n).max(1);
    // A large table gets fewer epochs: at most `max_steps` optimiser steps in all.
    let epochs = capped_epochs(t.epochs, t.max_steps, n.div_ceil(batch));
    let mut order: Vec<usize> = (0..n).collect();
    let mut state = LoopState::<B> {
        epoch: 0,
        early_stopping: t.early_stopping_patience.map(EarlyStopping::new),
        history: Vec::with_capacity(epochs.min(100_000)),
        best: None,
    };
    let mut saved_epoch = None;
    observer.started(epochs);
    if let Some(bytes) = found {
        match Checkpoint::<B>::from_bytes(bytes, &fingerprint, &mlp, model.clone(), device) {
            Ok(c) if c.epoch <= epochs => {
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
            Ok(c) => observer.checkpoint_ignored(
                &checkpoint::Refused::PastTheEnd {
                    epoch: c.epoch,
                    epochs,
                }
                .to_string(),
            ),
            Err(why) => observer.checkpoint_ignored(&why.to_string()),
        }
    }
    let mut stopped_early = false;
    let result: Result<()> = 'train: {
        for epoch in state.epoch + 1..=epochs {
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
                    rows: n,
                    target_m2: train_m2,
                    order: (batch < n).then_some(order.as_slice()),
                    batch,
                    learning_rate: t.learning_rate,
                    loss_fn: &loss_fn,
                };
                // `model` stays the epoch's starting point until the epoch completes; the
                // optimiser's starting point is kept to checkpoint an epoch interrupted part-way.
                let optim_before = t.checkpoint_every.map(|_| optim.to_record());
                match pass.run(model.clone(), &mut optim, device, interrupter) {
                    Some((m, train_eval)) => {
                        model = m;
                        if !train_eval.loss.is_finite() {
                            break 'train Err(Error::Diverged {
                                epoch,
                                learning_rate: t.learning_rate,
                            });
                        }
                        let scoring = Scoring {
                            test: (&x_test, &test_y),
                            valid: valid.as_ref().map(|(x, y)| (x, y)),
                            scorer,
                        };
                        if state.finish_epoch(epoch, &train_eval, &model, &scoring, observer) {
                            stopped_early = epoch < epochs;
                            break;
                        }
                        if t.checkpoint_every.is_some_and(|k| epoch % k == 0) && epoch < epochs {
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
    let (train, valid, test) = final_scores(
        &model,
        (&x_train, &train_y),
        valid.as_ref().map(|(x, y)| (x, y)),
        (&x_test, &test_y),
        scorer,
    )
    .ok_or(Error::Diverged {
        epoch: history.len(),
        learning_rate: t.learning_rate,
    })?;
    let architecture = EnsembleConfig::new(&mlp, 1);
    Ok(TrainedModel {
        model: Ensemble::new(vec![model], architecture.combine()),
        architecture,
        split,
        history,
        best_epoch,
        stopped_early,
        train,
        test,
        valid,
        duration: started.elapsed(),
    })
}

/// What an epoch's model is scored on after training it: the test (and validation) rows.
struct Scoring<'a, B: Backend> {
    test: (&'a Inputs<B>, &'a Labels),
    valid: Option<(&'a Inputs<B>, &'a Labels)>,
    scorer: Scorer<'a>,
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
    fn finish_epoch(
        &mut self,
        epoch: usize,
        train_eval: &EpochFigures,
        model: &Mlp<B>,
        on: &Scoring<'_, B::InnerBackend>,
        observer: &mut dyn TrainObserver,
    ) -> bool {
        let inner = model.valid();
        let test_eval = score(&inner, on.test.0, on.test.1, on.scorer);
        let valid_eval = on.valid.map(|(x, y)| score(&inner, x, y, on.scorer));
        let stats = epoch_stats(epoch, train_eval, valid_eval.as_ref(), &test_eval);
        observer.epoch(&stats);
        self.history.push(stats);
        self.epoch = epoch;
        if let (Some(es), Some(v)) = (self.early_stopping.as_mut(), valid_eval) {
            let verdict = es.update(epoch, v.loss());
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

/// Scores of the kept weights, without dropout, on the whole training split (the rows the
/// optimiser saw and the validation rows, when there are some), the validation rows and the test
/// split; `None` when an output is not finite (the last optimiser step diverged): such a model
/// is never saved.
fn final_scores<B: Backend>(
    model: &Mlp<B>,
    train: (&Inputs<B>, &Labels),
    valid: Option<(&Inputs<B>, &Labels)>,
    test: (&Inputs<B>, &Labels),
    scorer: Scorer,
) -> Option<(Scores, Option<Scores>, Scores)> {
    let mut train_all = scorer.tally();
    if !add_scores(model, train.0, train.1, scorer, &mut [&mut train_all]) {
        return None;
    }
    // The validation rows count once in their own scores and once in the whole training split's.
    let valid = match valid {
        Some((x, y)) => {
            let mut tally = scorer.tally();
            if !add_scores(model, x, y, scorer, &mut [&mut tally, &mut train_all]) {
                return None;
            }
            Some(scorer.finish(&tally))
        }
        None => None,
    };
    let mut tally = scorer.tally();
    if !add_scores(model, test.0, test.1, scorer, &mut [&mut tally]) {
        return None;
    }
    Some((scorer.finish(&train_all), valid, scorer.finish(&tally)))
}

#[cfg(test)]
mod tests;
