//! The pieces of the loop that decide when it ends: early stopping and interruption.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::Signal;

/// Stops training when the validation loss has not improved for `patience` epochs
/// (burn-train's `MetricEarlyStoppingStrategy` with a patience, for one metric).
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    patience: usize,
    best: Option<(f64, usize)>,
}

/// What [`EarlyStopping::update`] concluded about an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The best validation loss so far: keep these weights.
    pub improved: bool,
    /// No improvement for `patience` epochs: stop.
    pub stop: bool,
}

impl EarlyStopping {
    /// Stops after `patience` epochs without a lower validation loss.
    pub fn new(patience: usize) -> Self {
        EarlyStopping {
            patience,
            best: None,
        }
    }

    /// Records epoch `epoch`'s validation loss.
    pub fn update(&mut self, epoch: usize, valid_loss: f64) -> Verdict {
        let improved = self.best.is_none_or(|(best, _)| valid_loss < best);
        if improved {
            self.best = Some((valid_loss, epoch));
        }
        let best_epoch = self.best.map_or(epoch, |(_, e)| e);
        Verdict {
            improved,
            stop: epoch - best_epoch >= self.patience,
        }
    }

    /// The epoch with the lowest validation loss so far.
    pub fn best_epoch(&self) -> Option<usize> {
        self.best.map(|(_, e)| e)
    }

    /// The patience and the best (loss, epoch) so far, for a checkpoint.
    pub(super) fn to_parts(&self) -> (usize, Option<(f64, usize)>) {
        (self.patience, self.best)
    }

    /// The state [`Self::to_parts`] saved.
    pub(super) fn from_parts((patience, best): (usize, Option<(f64, usize)>)) -> Self {
        EarlyStopping { patience, best }
    }
}

/// A flag the caller raises to stop training between epochs (burn-train's `Interrupter`).
///
/// Cloning shares the flag. It holds a raw signal number so that a signal handler can set it
/// directly (`signal_hook::flag::register_usize` with [`Interrupter::flag`]).
#[derive(Debug, Clone, Default)]
pub struct Interrupter(Arc<AtomicUsize>);

const SIGINT: usize = 2;
const SIGTERM: usize = 15;

impl Interrupter {
    /// A flag nobody has raised yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the run to stop, as if `signal` had arrived.
    pub fn stop(&self, signal: Signal) {
        let raw = match signal {
            Signal::Interrupt => SIGINT,
            Signal::Terminate => SIGTERM,
        };
        self.0.store(raw, Ordering::Relaxed);
    }

    /// The signal that asked the run to stop, if any (anything but SIGTERM counts as SIGINT).
    pub fn signal(&self) -> Option<Signal> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            SIGTERM => Some(Signal::Terminate),
            _ => Some(Signal::Interrupt),
        }
    }

    /// The shared cell, for a signal handler to store the signal number into.
    pub fn flag(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_stopping_keeps_the_best_epoch_and_stops_after_patience() {
        let v = |improved, stop| Verdict { improved, stop };
        let mut es = EarlyStopping::new(2);
        assert_eq!(es.update(1, 1.0), v(true, false));
        assert_eq!(es.update(2, 0.5), v(true, false));
        assert_eq!(es.update(3, 0.5), v(false, false), "equal is not better");
        assert_eq!(es.update(4, 0.7), v(false, true));
        assert_eq!(es.best_epoch(), Some(2));
    }

    #[test]
    fn zero_patience_stops_at_the_first_epoch_without_improvement() {
        let mut es = EarlyStopping::new(0);
        let first = es.update(1, 1.0);
        assert!(first.improved && first.stop);
    }

    #[test]
    fn interrupter_reports_the_signal_it_was_given() {
        let i = Interrupter::new();
        assert_eq!(i.signal(), None);
        let shared = i.clone();
        shared.stop(Signal::Terminate);
        assert_eq!(i.signal(), Some(Signal::Terminate));
        i.flag().store(2, Ordering::Relaxed);
        assert_eq!(shared.signal(), Some(Signal::Interrupt));
    }
}
