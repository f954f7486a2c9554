//! Training progress on stderr: a bar on a terminal, a line every tenth of the run otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use iris_trainer::metadata::EpochStats;
use iris_trainer::train::TrainObserver;

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

/// The [`TrainObserver`] that draws training progress.
pub struct Progress {
    mode: ProgressMode,
    bar: Option<ProgressBar>,
    epochs: usize,
}

impl Progress {
    /// Progress shown as `mode` says.
    pub fn new(mode: ProgressMode) -> Self {
        Progress {
            mode,
            bar: None,
            epochs: 0,
        }
    }
}

impl Progress {
    /// A line on stderr, above the bar if there is one.
    fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}

impl TrainObserver for Progress {
    fn started(&mut self, epochs: usize) {
        self.epochs = epochs;
        self.bar = (self.mode == ProgressMode::Bar).then(|| {
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
    }

    fn epoch(&mut self, s: &EpochStats) {
        let msg = match (s.train_r2, s.test_r2) {
            (Some(train), Some(test)) => format!(
                "loss {:.4} r2 {train:.3} | test loss {:.4} r2 {test:.3}",
                s.train_loss, s.test_loss
            ),
            _ => format!(
                "loss {:.4} acc {:.3} | test loss {:.4} acc {:.3}",
                s.train_loss, s.train_accuracy, s.test_loss, s.test_accuracy
            ),
        };
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

    fn resumed(&mut self, epoch: usize) {
        if let Some(bar) = &self.bar {
            bar.set_position(epoch as u64);
            bar.reset_eta();
        }
        if self.mode != ProgressMode::Quiet {
            self.println(&format!(
                "resuming from the checkpoint of epoch {epoch}/{}",
                self.epochs
            ));
        }
    }

    fn checkpoint_ignored(&mut self, reason: &str) {
        if self.mode != ProgressMode::Quiet {
            self.println(&format!(
                "note: not resuming from the checkpoint in the model directory: {reason}; \
                 starting from epoch 1 (it will be replaced)"
            ));
        }
    }

    fn warning(&mut self, message: &str) {
        // Shown even with --quiet: it says that something the user asked for did not happen.
        self.println(&format!("warning: {message}"));
    }

    fn finished(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finished();
    }
}
