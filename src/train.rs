//! The training loop: seeded split, standardisation, Adam on cross-entropy, early stopping,
//! progress reporting.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::data::{Split, Standardizer, Table};
use crate::error::{Error, Result};
use crate::metrics::Evaluation;
use crate::model::{Mlp, MlpConfig};

/// What one epoch measured; one row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (with dropout active).
    pub train_loss: f64,
    /// Training accuracy over the epoch's batches.
    pub train_accuracy: f64,
    /// Validation loss (only with early stopping).
    pub valid_loss: Option<f64>,
    /// Validation accuracy (only with early stopping).
    pub valid_accuracy: Option<f64>,
    /// Test loss after the epoch (reported, never used for decisions).
    pub test_loss: f64,
    /// Test accuracy after the epoch.
    pub test_accuracy: f64,
}

/// Row counts of each split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitSizes {
    /// Rows the optimiser fitted on.
    pub train: usize,
    /// Rows held out from the training split to watch for early stopping.
    pub valid: usize,
    /// Held-out test rows.
    pub test: usize,
}

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

/// How progress is shown on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A progress bar (stderr is a terminal).
    Bar,
    /// A plain line every tenth of the run (stderr is a file or pipe).
    Lines,
    /// Nothing.
    Quiet,
}

impl ProgressMode {
    /// A bar on a terminal, lines otherwise, nothing when `quiet`.
    pub fn detect(quiet: bool) -> Self {
        if quiet {
            ProgressMode::Quiet
        } else if std::io::stderr().is_terminal() {
            ProgressMode::Bar
        } else {
            ProgressMode::Lines
        }
    }
}

struct Progress {
    mode: ProgressMode,
    bar: Option<ProgressBar>,
    epochs: usize,
}

impl Progress {
    fn new(mode: ProgressMode, epochs: usize) -> Self {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::new(epochs as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "epoch {pos:>5}/{len} [{bar:30}] {msg} ({elapsed} elapsed, ETA {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        Progress { mode, bar, epochs }
    }

    fn update(&self, s: &EpochStats) {
        let msg = format!(
            "loss {:.4} acc {:.3} | test loss {:.4} acc {:.3}",
            s.train_loss, s.train_accuracy, s.test_loss, s.test_accuracy
        );
        match self.mode {
            ProgressMode::Bar => {
                if let Some(bar) = &self.bar {
                    bar.set_position(s.epoch as u64);
                    bar.set_message(msg);
                }
            }
            ProgressMode::Lines => {
                let every = (self.epochs / 10).max(1);
                if s.epoch.is_multiple_of(every) || s.epoch == self.epochs || s.epoch == 1 {
                    eprintln!("epoch {:>5}/{}  {msg}", s.epoch, self.epochs);
                }
            }
            ProgressMode::Quiet => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
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

/// Logits of a model for row-major standardised features, copied to the host.
pub fn logits_of<B: Backend>(model: &Mlp<B>, x: Tensor<B, 2>) -> Vec<f32> {
    let data = model.forward(x).into_data();
    data.convert::<f32>().into_vec::<f32>().unwrap_or_default()
}

/// Trains a model on `table` as `config` says.
///
/// `stop` is polled once per epoch; when it names a signal, training ends with
/// [`Error::Interrupted`] and nothing is kept.
pub fn fit<B: AutodiffBackend>(
    table: &Table,
    config: &TrainConfig,
    device: &B::Device,
    progress: ProgressMode,
    stop: &dyn Fn() -> Option<&'static str>,
) -> Result<Fitted<B::InnerBackend>> {
    let started = Instant::now();
    let t = &config.training;
    let data_err = |message: String| Error::Data {
        source_name: table.source.clone(),
        message,
    };

    // The model's initial weights and dropout masks come from the backend's generator, the split
    // and the batch order from ours: both seeded, so a run is reproducible on a given backend.
    B::seed(device, t.seed);
    let mut rng = ChaCha8Rng::seed_from_u64(t.seed);

    let split = Split::stratified(
        &table.labels,
        &table.class_names,
        config.data.test_fraction,
        &mut rng,
    )
    .map_err(|m| data_err(format!("cannot split into train and test: {m}")))?;
    let mut train = table.subset(&split.train);
    let test = table.subset(&split.test);
    let mut valid = None;
    if t.early_stopping_patience.is_some() {
        let inner = Split::stratified(
            &train.labels,
            &train.class_names,
            t.validation_fraction,
            &mut rng,
        )
        .map_err(|m| {
            data_err(format!(
                "cannot hold out a validation split for early stopping: {m}"
            ))
        })?;
        valid = Some(train.subset(&inner.test));
        train = train.subset(&inner.train);
    }

    let standardizer = Standardizer::fit(&train);
    for part in [Some(&mut train), valid.as_mut()].into_iter().flatten() {
        standardizer.transform(&mut part.features);
    }
    let mut test = test;
    standardizer.transform(&mut test.features);

    let mlp = MlpConfig {
        inputs: table.width(),
        hidden: config.model.hidden.clone(),
        outputs: table.class_names.len(),
        activation: config.model.activation,
        dropout: config.model.dropout,
    };
    let mut model: Mlp<B> = mlp.init(device);
    let mut adam = AdamConfig::new();
    if t.weight_decay > 0.0 {
        adam = adam.with_weight_decay(Some(WeightDecayConfig::new(t.weight_decay as f32)));
    }
    let mut optim = adam.init::<B, Mlp<B>>();
    let loss_fn = CrossEntropyLossConfig::new().init(device);

    let x_train = features_tensor::<B>(&train, device);
    let y_train = labels_tensor::<B>(&train, device);
    let x_test = features_tensor::<B::InnerBackend>(&test, device);
    let x_valid = valid
        .as_ref()
        .map(|v| features_tensor::<B::InnerBackend>(v, device));

    let n = train.rows();
    let batch = t.batch_size.unwrap_or(n).min(n);
    let mut order: Vec<usize> = (0..n).collect();
    let report = Progress::new(progress, t.epochs);
    let mut history = Vec::with_capacity(t.epochs.min(100_000));
    let mut best: Option<(f64, usize, Mlp<B::InnerBackend>)> = None;
    let mut stopped_early = false;

    for epoch in 1..=t.epochs {
        if let Some(signal) = stop() {
            return Err(Error::Interrupted { signal });
        }
        if batch < n {
            order.shuffle(&mut rng);
        }
        // The training logits of the epoch go to the host in one read, and the loss and
        // accuracy are computed there: far fewer tensor operations than reducing on the device.
        let mut epoch_logits = Vec::with_capacity(n.div_ceil(batch));
        for chunk in order.chunks(batch) {
            let (x, y) = if batch == n {
                (x_train.clone(), y_train.clone())
            } else {
                let idx: Vec<i64> = chunk.iter().map(|&i| i as i64).collect();
                let idx =
                    Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [chunk.len()]), device);
                (
                    x_train.clone().select(0, idx.clone()),
                    y_train.clone().select(0, idx),
                )
            };
            let logits = model.forward(x);
            let loss = loss_fn.forward(logits.clone(), y);
            epoch_logits.push(logits.inner());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(t.learning_rate, model, grads);
        }
        let logits = Tensor::cat(epoch_logits, 0)
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .unwrap_or_default();
        // Rows in the order they were trained on.
        let labels: Vec<usize> = order.iter().map(|&i| train.labels[i]).collect();
        let train_eval = Evaluation::from_logits(&logits, &labels, &train.class_names);
        let (train_loss, train_accuracy) = (train_eval.loss, train_eval.accuracy);
        if logits.len() != n * train.class_names.len()
            || logits.iter().any(|v| !v.is_finite())
            || !train_loss.is_finite()
        {
            return Err(Error::Diverged {
                epoch,
                learning_rate: t.learning_rate,
            });
        }

        let inner = model.valid();
        let test_eval = Evaluation::from_logits(
            &logits_of(&inner, x_test.clone()),
            &test.labels,
            &test.class_names,
        );
        let valid_eval = valid.as_ref().zip(x_valid.as_ref()).map(|(v, x)| {
            Evaluation::from_logits(&logits_of(&inner, x.clone()), &v.labels, &v.class_names)
        });
        let stats = EpochStats {
            epoch,
            train_loss,
            train_accuracy,
            valid_loss: valid_eval.as_ref().map(|e| e.loss),
            valid_accuracy: valid_eval.as_ref().map(|e| e.accuracy),
            test_loss: test_eval.loss,
            test_accuracy: test_eval.accuracy,
        };
        report.update(&stats);
        history.push(stats);

        if let (Some(patience), Some(v)) = (t.early_stopping_patience, valid_eval) {
            match &best {
                Some((loss, _, _)) if v.loss >= *loss => {}
                _ => best = Some((v.loss, epoch, inner)),
            }
            let best_epoch = best.as_ref().map_or(epoch, |b| b.1);
            if epoch - best_epoch >= patience {
                stopped_early = epoch < t.epochs;
                break;
            }
        }
    }
    report.finish();

    let last_epoch = history.len();
    let (model, best_epoch) = match best {
        Some((_, epoch, m)) => (m, epoch),
        None => (model.valid(), last_epoch),
    };
    // Final scores use the kept weights, without dropout, on the whole training split.
    let mut train_all = table.subset(&split.train);
    standardizer.transform(&mut train_all.features);
    let train_logits = logits_of(&model, features_tensor(&train_all, device));
    let test_logits = logits_of(&model, x_test);
    // The last optimiser step is checked here: a model with non-finite outputs is never saved.
    if train_logits
        .iter()
        .chain(&test_logits)
        .any(|v| !v.is_finite())
    {
        return Err(Error::Diverged {
            epoch: history.len(),
            learning_rate: t.learning_rate,
        });
    }
    let train_eval = Evaluation::from_logits(&train_logits, &train_all.labels, &table.class_names);
    let test_eval = Evaluation::from_logits(&test_logits, &test.labels, &table.class_names);

    Ok(Fitted {
        model,
        mlp,
        standardizer,
        split: SplitSizes {
            train: train.rows(),
            valid: valid.as_ref().map_or(0, Table::rows),
            test: test.rows(),
        },
        history,
        best_epoch,
        stopped_early,
        train: train_eval,
        test: test_eval,
        duration: started.elapsed(),
    })
}
