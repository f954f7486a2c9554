//! Checkpoints: a run's whole state at the end of an epoch, so a killed run can carry on.
//!
//! A checkpoint holds the weights, Adam's moments and step count, the epoch, the history, the
//! early-stopping state and the best weights so far. It needs no generator state: every epoch
//! draws its batch order and its dropout masks from a generator seeded with (seed, epoch) (see
//! [`epoch_rng`]), and the split is redrawn from the seed. So a run resumed from the checkpoint of
//! epoch k computes exactly what the uninterrupted run computes from epoch k + 1 on.
//!
//! The bytes are Burn's named MessagePack at full precision; where they are kept is the caller's
//! business ([`CheckpointStore`]: the model directory writes them atomically).

use burn::module::{AutodiffModule, Module};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, Optimizer};
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use super::EarlyStopping;
use crate::config::TrainConfig;
use crate::data::{Labels, Task, TrainingData};
use crate::error::Result;
use crate::metadata::EpochStats;
use crate::model::{Mlp, MlpConfig, MlpRecord};

/// Bumped whenever the checkpoint's contents change meaning; other versions are not resumed.
const CHECKPOINT_VERSION: u32 = 2;

/// Where a run's checkpoint is kept. The model directory implements it (atomically, beside its
/// staging area); `()` keeps nothing.
pub trait CheckpointStore {
    /// The last checkpoint's bytes, if there is one.
    fn load(&self) -> Result<Option<Vec<u8>>>;
    /// Replaces the checkpoint with `bytes`, atomically: a crash leaves the old one or the new one.
    fn save(&mut self, bytes: &[u8]) -> Result<()>;
}

/// Keeps nothing and finds nothing.
impl CheckpointStore for () {
    fn load(&self) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
    fn save(&mut self, _bytes: &[u8]) -> Result<()> {
        Ok(())
    }
}

/// The generator of epoch `epoch`'s randomness (batch order, then the backend's seed for dropout
/// masks): a function of the run's seed and the epoch alone, so that a resumed run draws what the
/// uninterrupted run drew.
pub fn epoch_rng(seed: u64, epoch: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Stream 0 is the split's; every epoch gets a stream of its own.
    rng.set_stream(epoch as u64);
    rng
}

/// What identifies a run for resuming: every config key that changes what is computed, and the
/// data as the loop sees it (the task, the classes, the target's scaling and every split's
/// encoded rows and labels). The epoch count, the checkpoint interval, the data file's path and
/// the output directory are left out: a run resumed with more epochs continues exactly as a
/// longer run would have.
pub fn fingerprint(config: &TrainConfig, data: &TrainingData) -> String {
    let mut c = config.clone();
    c.training.epochs = 0;
    c.training.checkpoint_every = None;
    c.output.dir = Default::default();
    // The data is identified by its contents, wherever the file now is.
    c.data.path = None;
    let text = serde_json::to_string(&c).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(CHECKPOINT_VERSION.to_le_bytes());
    // A run of another recipe (or another version of it) fits another model.
    let recipe = c.recipe();
    h.update((recipe.name.len() as u64).to_le_bytes());
    h.update(recipe.name.as_bytes());
    h.update(recipe.version.to_le_bytes());
    h.update((text.len() as u64).to_le_bytes());
    h.update(text.as_bytes());
    h.update([match data.task {
        Task::Classification => 0u8,
        Task::Regression => 1,
    }]);
    h.update((data.classes.len() as u64).to_le_bytes());
    for name in &data.classes {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
    }
    match data.target_scaling {
        Some(s) => {
            h.update([1u8]);
            update_f32s(&mut h, &[s.mean, s.std]);
        }
        None => h.update([0u8]),
    }
    h.update((data.width() as u64).to_le_bytes());
    for part in [Some(&data.train), data.valid.as_ref(), Some(&data.test)] {
        let Some(p) = part else {
            h.update([0u8]);
            continue;
        };
        h.update([1u8]);
        h.update((p.rows() as u64).to_le_bytes());
        h.update((p.inputs.dense().len() as u64).to_le_bytes());
        update_f32s(&mut h, p.inputs.dense());
        if p.inputs.code_width() > 0 {
            for chunk in p.inputs.codes().chunks(4096) {
                let bytes: Vec<u8> = chunk.iter().flat_map(|c| c.to_le_bytes()).collect();
                h.update(&bytes);
            }
        }
        match &p.labels {
            Labels::Classes(l) => {
                h.update([0u8]);
                for chunk in l.chunks(4096) {
                    let bytes: Vec<u8> = chunk
                        .iter()
                        .flat_map(|&c| (c as u64).to_le_bytes())
                        .collect();
                    h.update(&bytes);
                }
            }
            Labels::Numbers(v) => {
                h.update([1u8]);
                update_f32s(&mut h, v);
            }
        }
    }
    format!("{:x}", h.finalize())
}

/// Feeds `values`' bytes to `h`, a block at a time.
fn update_f32s(h: &mut Sha256, values: &[f32]) {
    for chunk in values.chunks(4096) {
        let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_le_bytes()).collect();
        h.update(&bytes);
    }
}

/// One epoch's statistics as a record tuple (exact `f64`s): the classification columns, then
/// the regression ones (Burn's record tuples stop at ten).
type EpochItem = (
    (usize, f64, f64, Option<f64>, Option<f64>, f64, f64),
    RegressionItem,
);
/// R² on train, validation and test, test RMSE and MAE.
type RegressionItem = (
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);

/// The checkpoint as Burn stores it.
#[derive(burn::record::Record)]
struct CheckpointRecord<B: AutodiffBackend> {
    version: u32,
    fingerprint: String,
    epoch: usize,
    model: MlpRecord<B>,
    optimizer: OptimizerRecord<B>,
    best: Option<(usize, MlpRecord<B>)>,
    early_stopping: Option<(usize, Option<(f64, usize)>)>,
    history: Vec<EpochItem>,
}

/// The optimiser the loop uses.
pub(super) type Adaptor<B> = OptimizerAdaptor<Adam, Mlp<B>, B>;
/// Its state.
pub(super) type OptimizerRecord<B> = <Adaptor<B> as Optimizer<Mlp<B>, B>>::Record;

/// A run's state at the end of an epoch, borrowed from the loop to be saved.
pub(super) struct CheckpointRef<'a, B: AutodiffBackend> {
    /// The last epoch completed.
    pub epoch: usize,
    /// Weights after that epoch.
    pub model: &'a Mlp<B>,
    /// Adam's state after that epoch.
    pub optimizer: &'a OptimizerRecord<B>,
    /// The best epoch so far and its weights (with early stopping).
    pub best: Option<&'a (usize, Mlp<B::InnerBackend>)>,
    /// Early stopping's state.
    pub early_stopping: Option<&'a EarlyStopping>,
    /// One entry per epoch completed.
    pub history: &'a [EpochStats],
}

/// The bytes of a checkpoint.
pub(super) fn encode<B: AutodiffBackend>(
    c: CheckpointRef<'_, B>,
    fingerprint: &str,
) -> Result<Vec<u8>> {
    let record = CheckpointRecord::<B> {
        version: CHECKPOINT_VERSION,
        fingerprint: fingerprint.to_string(),
        epoch: c.epoch,
        model: c.model.clone().into_record(),
        optimizer: c.optimizer.clone(),
        best: c
            .best
            .map(|(e, m)| (*e, Mlp::<B>::from_inner(m.clone()).into_record())),
        early_stopping: c.early_stopping.map(EarlyStopping::to_parts),
        history: c.history.iter().map(to_item).collect(),
    };
    NamedMpkBytesRecorder::<FullPrecisionSettings>::default()
        .record(record, ())
        .map_err(|e| crate::error::Error::Internal(format!("encoding a checkpoint: {e}")))
}

/// Why a checkpoint found in the output directory is not resumed from (the run starts over).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Not a checkpoint Burn can read.
    #[error("it is unreadable ({0})")]
    Unreadable(String),
    /// Burn read it, but its tensors are malformed.
    #[error("it holds malformed tensors")]
    MalformedTensors,
    /// Another checkpoint format.
    #[error("it has checkpoint format {0}, this program writes {CHECKPOINT_VERSION}")]
    Version(u32),
    /// Another run's: other data or settings.
    #[error("it was written by a run with other data or settings")]
    OtherRun,
    /// Its weights are of another network.
    #[error("its weights do not fit this network: {0}")]
    Weights(crate::model::RecordMismatch),
    /// Of an epoch past the run's last.
    #[error("it is of epoch {epoch}, past the {epochs} epochs asked for")]
    PastTheEnd {
        /// The checkpoint's epoch.
        epoch: usize,
        /// The run's epochs.
        epochs: usize,
    },
}

/// A run's state at the end of an epoch, read back.
pub(super) struct Checkpoint<B: AutodiffBackend> {
    /// The last epoch completed.
    pub epoch: usize,
    /// Weights after that epoch.
    pub model: Mlp<B>,
    /// Adam's state after that epoch.
    pub optimizer: OptimizerRecord<B>,
    /// The best epoch so far and its weights (with early stopping).
    pub best: Option<(usize, Mlp<B::InnerBackend>)>,
    /// Early stopping's state.
    pub early_stopping: Option<EarlyStopping>,
    /// One entry per epoch completed.
    pub history: Vec<EpochStats>,
}

impl<B: AutodiffBackend> Checkpoint<B> {
    /// Reads a checkpoint written by [`encode`] into `model` (freshly initialised). Refused,
    /// with the reason, when the bytes are not a checkpoint of this version, of a run with this
    /// fingerprint, or of this network: the caller starts from scratch.
    pub fn from_bytes(
        bytes: Vec<u8>,
        fingerprint: &str,
        mlp: &MlpConfig,
        model: Mlp<B>,
        device: &B::Device,
    ) -> std::result::Result<Self, Refused> {
        let recorder = NamedMpkBytesRecorder::<FullPrecisionSettings>::default();
        // Burn panics on some malformed tensors; a bad checkpoint is only a missing one.
        let loaded = crate::error::catch_panic(|| {
            Recorder::<B>::load::<CheckpointRecord<B>>(&recorder, bytes, device)
        });
        let record = match loaded {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                let e = e.to_string();
                return Err(Refused::Unreadable(
                    e.lines().next().unwrap_or_default().to_string(),
                ));
            }
            Err(_) => return Err(Refused::MalformedTensors),
        };
        if record.version != CHECKPOINT_VERSION {
            return Err(Refused::Version(record.version));
        }
        if record.fingerprint != fingerprint {
            return Err(Refused::OtherRun);
        }
        crate::model::check_record(mlp, &record.model).map_err(Refused::Weights)?;
        Ok(Checkpoint {
            epoch: record.epoch,
            model: model.clone().load_record(record.model),
            optimizer: record.optimizer,
            best: record.best.map(|(e, r)| (e, model.load_record(r).valid())),
            early_stopping: record.early_stopping.map(EarlyStopping::from_parts),
            history: record.history.into_iter().map(from_item).collect(),
        })
    }
}

fn to_item(s: &EpochStats) -> EpochItem {
    (
        (
            s.epoch,
            s.train_loss,
            s.train_accuracy,
            s.valid_loss,
            s.valid_accuracy,
            s.test_loss,
            s.test_accuracy,
        ),
        (s.train_r2, s.valid_r2, s.test_r2, s.test_rmse, s.test_mae),
    )
}

fn from_item((c, r): EpochItem) -> EpochStats {
    EpochStats {
        epoch: c.0,
        train_loss: c.1,
        train_accuracy: c.2,
        valid_loss: c.3,
        valid_accuracy: c.4,
        test_loss: c.5,
        test_accuracy: c.6,
        train_r2: r.0,
        valid_r2: r.1,
        test_r2: r.2,
        test_rmse: r.3,
        test_mae: r.4,
    }
}
