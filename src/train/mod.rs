//! The training loop: Adam on cross-entropy (classification) or on MSE / Huber of the
//! standardised target (regression), with early stopping.
//!
//! The data arrive split and encoded ([`Prepared`]); the loop's concerns are types, as in
//! burn-train: [`EarlyStopping`] decides when to stop, an [`Interrupter`] lets the caller stop it
//! between epochs, and a [`TrainObserver`] is told about every epoch (the command line draws its
//! progress bar with one). Nothing here prints.

mod control;

use std::time::{Duration, Instant};

use burn::module::AutodiffModule;
use burn::nn::loss::{
    CrossEntropyLoss, CrossEntropyLossConfig, HuberLoss, HuberLossConfig, MseLoss, Reduction,
};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

pub use control::{EarlyStopping, Interrupter, Verdict};

use crate::config::{RegressionLoss, TrainConfig};
use crate::data::{Labels, Part, Prepared, TargetScaling, Task};
use crate::error::{Error, Result};
use crate::metadata::{EpochStats, SplitSizes};
use crate::metrics::{Evaluation, RegressionEvaluation, Scores};
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
    /// Wall time of the training loop.
    pub duration: Duration,
}

/// The architecture `config` asks for on `data`.
pub fn mlp_config(data: &Prepared, config: &TrainConfig) -> MlpConfig {
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

fn features_tensor<B: Backend>(p: &Part, device: &B::Device) -> Tensor<B, 2> {
    let width = p.x.len().checked_div(p.rows).unwrap_or(0);
    Tensor::from_data(TensorData::new(p.x.clone(), [p.rows, width]), device)
}

/// The targets of a split as the loss wants them: class indices or a `[rows, 1]` column.
enum Targets<B: Backend> {
    Classes(Tensor<B, 1, Int>),
    Numbers(Tensor<B, 2>),
}

impl<B: Backend> Targets<B> {
    fn new(p: &Part, device: &B::Device) -> Self {
        match &p.y {
            Labels::Classes(l) => {
                let v: Vec<i64> = l.iter().map(|&c| c as i64).collect();
                Targets::Classes(Tensor::from_data(TensorData::new(v, [p.rows]), device))
            }
            Labels::Numbers(v) => Targets::Numbers(Tensor::from_data(
                TensorData::new(v.clone(), [p.rows, 1]),
                device,
            )),
        }
    }

    fn select(&self, idx: Tensor<B, 1, Int>) -> Self {
        match self {
            Targets::Classes(t) => Targets::Classes(t.clone().select(0, idx)),
            Targets::Numbers(t) => Targets::Numbers(t.clone().select(0, idx)),
        }
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

/// How outputs are scored on the host for a task.
#[derive(Clone, Copy)]
struct Scorer<'a> {
    classes: &'a [String],
    target: Option<TargetScaling>,
    loss: RegressionLoss,
    huber_delta: f64,
}

impl Scorer<'_> {
    /// Scores row-major `outputs` against `labels` (rows in the same order).
    fn score(&self, outputs: &[f32], labels: &Labels) -> Scores {
        match labels {
            Labels::Classes(l) => {
                Scores::Classification(Evaluation::from_logits(outputs, l, self.classes))
            }
            Labels::Numbers(y) => {
                let n = y.len().max(1) as f64;
                let loss = outputs
                    .iter()
                    .zip(y)
                    .map(|(&p, &t)| {
                        let r = f64::from(p) - f64::from(t);
                        match self.loss {
                            RegressionLoss::Mse => r * r,
                            RegressionLoss::Huber if r.abs() <= self.huber_delta => 0.5 * r * r,
                            RegressionLoss::Huber => {
                                self.huber_delta * (r.abs() - 0.5 * self.huber_delta)
                            }
                        }
                    })
                    .sum::<f64>()
                    / n;
                let s = self.target.unwrap_or(TargetScaling {
                    mean: 0.0,
                    std: 1.0,
                });
                let unscale =
                    |v: &[f32]| -> Vec<f32> { v.iter().map(|&x| x * s.std + s.mean).collect() };
                Scores::Regression(RegressionEvaluation::from_values(
                    &unscale(outputs),
                    &unscale(y),
                    loss,
                ))
            }
        }
    }
}

/// Scores a model (without dropout) on an encoded split in one forward pass.
fn score<B: Backend>(model: &Mlp<B>, x: &Tensor<B, 2>, part: &Part, scorer: Scorer) -> Scores {
    scorer.score(&model.logits_to_host(x.clone()), &part.y)
}

/// The labels of `part` in the order `order` lists its rows.
fn reordered(part: &Part, order: &[usize]) -> Labels {
    match &part.y {
        Labels::Classes(l) => Labels::Classes(order.iter().map(|&i| l[i]).collect()),
        Labels::Numbers(v) => Labels::Numbers(order.iter().map(|&i| v[i]).collect()),
    }
}

/// One pass over the training rows in (shuffled) batches, updating `model`.
///
/// Returns the updated model and the outputs each batch was trained on, copied to the host in
/// one read per epoch (scored there).
struct Epoch<'a, B: AutodiffBackend> {
    x: &'a Tensor<B, 2>,
    y: &'a Targets<B>,
    order: &'a [usize],
    batch: usize,
    learning_rate: f64,
    loss_fn: &'a Loss<B>,
}

impl<B: AutodiffBackend> Epoch<'_, B> {
    fn run<O: Optimizer<Mlp<B>, B>>(
        &self,
        mut model: Mlp<B>,
        optim: &mut O,
        device: &B::Device,
    ) -> (Mlp<B>, Vec<f32>) {
        let n = self.order.len();
        let mut epoch_outputs = Vec::with_capacity(n.div_ceil(self.batch));
        for chunk in self.order.chunks(self.batch) {
            let (x, y) = if self.batch == n {
                (self.x.clone(), self.y.select_all())
            } else {
                let idx: Vec<i64> = chunk.iter().map(|&i| i as i64).collect();
                let idx =
                    Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [chunk.len()]), device);
                (self.x.clone().select(0, idx.clone()), self.y.select(idx))
            };
            let outputs = model.forward(x);
            let loss = self.loss_fn.forward(outputs.clone(), y);
            epoch_outputs.push(outputs.inner());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(self.learning_rate, model, grads);
        }
        let outputs = Tensor::cat(epoch_outputs, 0)
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .unwrap_or_default();
        (model, outputs)
    }
}

impl<B: Backend> Targets<B> {
    fn select_all(&self) -> Self {
        match self {
            Targets::Classes(t) => Targets::Classes(t.clone()),
            Targets::Numbers(t) => Targets::Numbers(t.clone()),
        }
    }
}

/// Whether a set of outputs shows the run has diverged.
fn diverged(outputs: &[f32], expected_len: usize, loss: f64) -> bool {
    outputs.len() != expected_len || outputs.iter().any(|v| !v.is_finite()) || !loss.is_finite()
}

/// The epoch's row of `metrics.csv` from its scores.
fn epoch_stats(epoch: usize, train: &Scores, valid: Option<&Scores>, test: &Scores) -> EpochStats {
    let acc = |s: &Scores| s.accuracy().unwrap_or(f64::NAN);
    let reg = |s: &Scores| s.regression().cloned();
    EpochStats {
        epoch,
        train_loss: train.loss(),
        train_accuracy: acc(train),
        valid_loss: valid.map(Scores::loss),
        valid_accuracy: valid.and_then(Scores::accuracy),
        test_loss: test.loss(),
        test_accuracy: acc(test),
        train_r2: reg(train).map(|e| e.r2),
        valid_r2: valid.and_then(reg).map(|e| e.r2),
        test_r2: reg(test).map(|e| e.r2),
        test_rmse: reg(test).map(|e| e.rmse),
        test_mae: reg(test).map(|e| e.mae),
    }
}

/// Trains a model on `data` as `config` says; `rng` (seeded, as it was for the split) orders
/// the batches.
///
/// `interrupter` is checked once per epoch; when raised, training ends with
/// [`Error::Interrupted`] and nothing is returned. `observer` hears about every epoch.
pub fn fit<B: AutodiffBackend>(
    data: &Prepared,
    config: &TrainConfig,
    device: &B::Device,
    rng: &mut ChaCha8Rng,
    observer: &mut dyn TrainObserver,
    interrupter: &Interrupter,
) -> Result<Fitted<B::InnerBackend>> {
    let started = Instant::now();
    let t = &config.training;

    // The model's initial weights and dropout masks come from the backend's generator, the split
    // and the batch order from ours: both seeded, so a run is reproducible on a given backend.
    B::seed(device, t.seed);

    let mlp = mlp_config(data, config);
    let mut model: Mlp<B> = mlp.init(device);
    let mut adam = AdamConfig::new();
    if t.weight_decay > 0.0 {
        adam = adam.with_weight_decay(Some(WeightDecayConfig::new(t.weight_decay as f32)));
    }
    let mut optim = adam.init::<B, Mlp<B>>();
    let loss_fn = match data.task {
        Task::Classification => Loss::CrossEntropy(CrossEntropyLossConfig::new().init(device)),
        Task::Regression => match t.regression_loss {
            RegressionLoss::Mse => Loss::Mse(MseLoss::new()),
            RegressionLoss::Huber => Loss::Huber(HuberLossConfig::new(t.huber_delta as f32).init()),
        },
    };
    let scorer = Scorer {
        classes: &data.classes,
        target: data.target_scaling,
        loss: t.regression_loss,
        huber_delta: t.huber_delta,
    };

    let x_train = features_tensor::<B>(&data.train, device);
    let y_train = Targets::<B>::new(&data.train, device);
    let x_test = features_tensor::<B::InnerBackend>(&data.test, device);
    let x_valid = data
        .valid
        .as_ref()
        .map(|v| features_tensor::<B::InnerBackend>(v, device));

    let n = data.train.rows;
    let batch = t.batch_size.unwrap_or(n).min(n).max(1);
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
                order.shuffle(rng);
            }
            let pass = Epoch {
                x: &x_train,
                y: &y_train,
                order: &order,
                batch,
                learning_rate: t.learning_rate,
                loss_fn: &loss_fn,
            };
            let outputs;
            (model, outputs) = pass.run(model, &mut optim, device);
            let train_eval = scorer.score(&outputs, &reordered(&data.train, &order));
            if diverged(&outputs, n * mlp.outputs, train_eval.loss()) {
                break 'train Err(Error::Diverged {
                    epoch,
                    learning_rate: t.learning_rate,
                });
            }

            let inner = model.valid();
            let test_eval = score(&inner, &x_test, &data.test, scorer);
            let valid_eval = data
                .valid
                .as_ref()
                .zip(x_valid.as_ref())
                .map(|(v, x)| score(&inner, x, v, scorer));
            let stats = epoch_stats(epoch, &train_eval, valid_eval.as_ref(), &test_eval);
            observer.epoch(&stats);
            history.push(stats);

            if let (Some(es), Some(v)) = (early_stopping.as_mut(), valid_eval) {
                let verdict = es.update(epoch, v.loss());
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
    let (train, test) =
        final_scores(&model, data, &x_test, device, scorer).ok_or(Error::Diverged {
            epoch: history.len(),
            learning_rate: t.learning_rate,
        })?;
    Ok(Fitted {
        model,
        mlp,
        split: SplitSizes {
            train: data.train.rows,
            valid: data.valid.as_ref().map_or(0, |v| v.rows),
            test: data.test.rows,
        },
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
    data: &Prepared,
    x_test: &Tensor<B, 2>,
    device: &B::Device,
    scorer: Scorer,
) -> Option<(Scores, Scores)> {
    let train_all = data.train_all.as_ref().unwrap_or(&data.train);
    let train_out = model.logits_to_host(features_tensor(train_all, device));
    let test_out = model.logits_to_host(x_test.clone());
    if train_out.iter().chain(&test_out).any(|v| !v.is_finite()) {
        return None;
    }
    Some((
        scorer.score(&train_out, &train_all.y),
        scorer.score(&test_out, &data.test.y),
    ))
}
