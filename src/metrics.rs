//! Classification metrics from logits (accuracy, cross-entropy, confusion matrix, per-class
//! F1) and regression metrics from predicted numbers (R², RMSE, MAE).

use serde::{Deserialize, Serialize};

use crate::data::TargetScaling;
use crate::recipe::Loss;

/// Precision, recall and F1 of one class (one-vs-rest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Class name.
    pub class: String,
    /// Correct predictions of this class / all predictions of it (0 when never predicted).
    pub precision: f64,
    /// Correct predictions of this class / rows of it (0 when absent).
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Rows of this class.
    pub support: usize,
}

/// How a model did on a labelled set of rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Rows evaluated.
    pub rows: usize,
    /// Fraction predicted correctly.
    pub accuracy: f64,
    /// Mean cross-entropy (natural log).
    pub loss: f64,
    /// `confusion[true][predicted]` counts, in class order.
    pub confusion: Vec<Vec<usize>>,
    /// One entry per class, in class order.
    pub per_class: Vec<ClassMetrics>,
    /// Unweighted mean of the per-class F1 scores.
    pub macro_f1: f64,
}

/// Numerically stable softmax of each row of row-major `logits`.
pub fn softmax_rows(logits: &[f32], classes: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks(classes) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f32> = row.iter().map(|&x| (x - max).exp()).collect();
        let sum: f32 = exps.iter().sum();
        out.extend(exps.iter().map(|e| e / sum));
    }
    out
}

/// Index of the largest value of each row (the first one on ties).
pub fn argmax_rows(values: &[f32], classes: usize) -> Vec<usize> {
    values
        .chunks(classes)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 { (i, v) } else { best }
                })
                .0
        })
        .collect()
}

/// Classification scores accumulated chunk by chunk, in memory that does not grow with the rows
/// (a confusion matrix and a loss sum): how `evaluate` streams a file of any size.
///
/// ```
/// use iris_trainer::metrics::{ClassificationTally, Evaluation};
///
/// let classes = ["cat".to_string(), "dog".to_string()];
/// let mut t = ClassificationTally::new(2);
/// t.add(&[2.0, 0.0], &[0]);
/// t.add(&[1.0, 0.0], &[1]);
/// assert_eq!(t.finish(&classes), Evaluation::from_logits(&[2.0, 0.0, 1.0, 0.0], &[0, 1], &classes));
/// ```
#[derive(Debug, Clone)]
pub struct ClassificationTally {
    classes: usize,
    rows: usize,
    loss_sum: f64,
    confusion: Vec<Vec<usize>>,
}

impl ClassificationTally {
    /// An empty tally for `classes` classes.
    pub fn new(classes: usize) -> Self {
        ClassificationTally {
            classes,
            rows: 0,
            loss_sum: 0.0,
            confusion: vec![vec![0; classes]; classes],
        }
    }

    /// Adds rows: row-major `logits` (`labels.len()` rows of `classes` values) and their labels.
    pub fn add(&mut self, logits: &[f32], labels: &[usize]) {
        let k = self.classes;
        let probs = softmax_rows(logits, k);
        let predicted = argmax_rows(logits, k);
        for (i, (&truth, &pred)) in labels.iter().zip(&predicted).enumerate() {
            self.confusion[truth][pred] += 1;
            self.loss_sum -= f64::from(probs[i * k + truth].max(1e-12)).ln();
        }
        self.rows += labels.len();
    }

    /// Rows added so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The scores of every row added (`class_names` in class order).
    pub fn finish(&self, class_names: &[String]) -> Evaluation {
        Evaluation::from_tally(self, class_names)
    }
}

/// Regression scores accumulated chunk by chunk in constant memory: residual sums, and the
/// truth's mean and spread by Welford's update (no second pass over the rows).
///
/// ```
/// use iris_trainer::metrics::{RegressionEvaluation, RegressionTally};
///
/// let mut t = RegressionTally::default();
/// t.add(&[1.0, 2.0], &[1.0, 3.0]);
/// t.add(&[4.0], &[3.0]);
/// let whole = RegressionEvaluation::from_values(&[1.0, 2.0, 4.0], &[1.0, 3.0, 3.0], 0.0);
/// let e = t.finish(0.0);
/// assert!((e.r2 - whole.r2).abs() < 1e-12 && (e.rmse - whole.rmse).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Default)]
pub struct RegressionTally {
    rows: usize,
    mean: f64,
    m2: f64,
    ss_res: f64,
    abs: f64,
}

impl RegressionTally {
    /// Adds rows: `predicted` against `truth`, in the target's units.
    pub fn add(&mut self, predicted: &[f32], truth: &[f32]) {
        for (&p, &y) in predicted.iter().zip(truth) {
            let (p, y) = (f64::from(p), f64::from(y));
            self.rows += 1;
            let delta = y - self.mean;
            self.mean += delta / self.rows as f64;
            self.m2 += delta * (y - self.mean);
            self.ss_res += (y - p).powi(2);
            self.abs += (y - p).abs();
        }
    }

    /// Rows added so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The scores of every row added; `loss` is reported as given.
    pub fn finish(&self, loss: f64) -> RegressionEvaluation {
        let n = self.rows;
        if n == 0 {
            return RegressionEvaluation {
                rows: 0,
                r2: 0.0,
                rmse: 0.0,
                mae: 0.0,
                loss,
            };
        }
        RegressionEvaluation {
            rows: n,
            r2: if self.m2 > 0.0 {
                1.0 - self.ss_res / self.m2
            } else {
                0.0
            },
            rmse: (self.ss_res / n as f64).sqrt(),
            mae: self.abs / n as f64,
            loss,
        }
    }
}

impl Evaluation {
    /// Scores row-major `logits` (`labels.len() * class_names.len()` values) against `labels`.
    ///
    /// ```
    /// use iris_trainer::metrics::Evaluation;
    ///
    /// let classes = ["cat".to_string(), "dog".to_string()];
    /// // Two rows: the first predicts cat (correct), the second cat too (wrong: it is a dog).
    /// let e = Evaluation::from_logits(&[2.0, 0.0, 1.0, 0.0], &[0, 1], &classes);
    /// assert_eq!(e.accuracy, 0.5);
    /// assert_eq!(e.confusion, vec![vec![1, 0], vec![1, 0]]);
    /// assert_eq!(e.per_class[1].recall, 0.0);
    /// ```
    pub fn from_logits(logits: &[f32], labels: &[usize], class_names: &[String]) -> Self {
        let mut acc = ClassificationTally::new(class_names.len());
        acc.add(logits, labels);
        acc.finish(class_names)
    }

    /// Scores from a finished [`ClassificationTally`].
    fn from_tally(t: &ClassificationTally, class_names: &[String]) -> Self {
        let k = class_names.len();
        let (n, loss, confusion) = (t.rows, t.loss_sum, t.confusion.clone());
        let correct: usize = (0..k).map(|c| confusion[c][c]).sum();
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let per_class: Vec<ClassMetrics> = class_names
            .iter()
            .enumerate()
            .map(|(c, name)| {
                let tp = confusion[c][c];
                let predicted_c: usize = (0..k).map(|t| confusion[t][c]).sum();
                let support: usize = confusion[c].iter().sum();
                let precision = ratio(tp, predicted_c);
                let recall = ratio(tp, support);
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                ClassMetrics {
                    class: name.clone(),
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect();
        let macro_f1 = per_class.iter().map(|m| m.f1).sum::<f64>() / k.max(1) as f64;
        Evaluation {
            rows: n,
            accuracy: ratio(correct, n),
            loss: if n == 0 { 0.0 } else { loss / n as f64 },
            confusion,
            per_class,
            macro_f1,
        }
    }

    /// A plain-text report: accuracy, loss, the confusion matrix and per-class scores.
    pub fn report(&self, class_names: &[String]) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "rows {}  accuracy {:.4}  loss {:.4}  macro-F1 {:.4}",
            self.rows, self.accuracy, self.loss, self.macro_f1
        );
        let w = class_names
            .iter()
            .map(String::len)
            .max()
            .unwrap_or(5)
            .max(9);
        let _ = writeln!(
            s,
            "\nconfusion matrix (rows: true class, columns: predicted)"
        );
        let _ = write!(s, "{:w$}", "");
        for c in class_names {
            let _ = write!(s, " {c:>w$}");
        }
        s.push('\n');
        for (c, row) in class_names.iter().zip(&self.confusion) {
            let _ = write!(s, "{c:w$}");
            for v in row {
                let _ = write!(s, " {v:>w$}");
            }
            s.push('\n');
        }
        let _ = writeln!(
            s,
            "\n{:w$} {:>9} {:>9} {:>9} {:>9}",
            "class", "precision", "recall", "f1", "support"
        );
        for m in &self.per_class {
            let _ = writeln!(
                s,
                "{:w$} {:>9.4} {:>9.4} {:>9.4} {:>9}",
                m.class, m.precision, m.recall, m.f1, m.support
            );
        }
        s
    }
}

/// How a regression model did on a set of rows, in the target's own units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionEvaluation {
    /// Rows evaluated.
    pub rows: usize,
    /// Coefficient of determination: 1 - residual sum of squares / total sum of squares
    /// (around these rows' mean); 0 when the target is constant here.
    pub r2: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// The training loss (MSE or Huber) on the standardised target.
    pub loss: f64,
}

impl RegressionEvaluation {
    /// Scores `predicted` against `truth` (same units); `loss` is reported as given.
    ///
    /// ```
    /// use iris_trainer::metrics::RegressionEvaluation;
    ///
    /// let e = RegressionEvaluation::from_values(&[1.0, 2.0, 4.0], &[1.0, 3.0, 3.0], 0.0);
    /// assert!((e.mae - 2.0 / 3.0).abs() < 1e-12);
    /// assert!((e.rmse - (2.0f64 / 3.0).sqrt()).abs() < 1e-12);
    /// // Truth mean 7/3: total sum of squares 8/3, residual 2: R² = 1 - 2 / (8/3) = 0.25.
    /// assert!((e.r2 - 0.25).abs() < 1e-12);
    /// ```
    pub fn from_values(predicted: &[f32], truth: &[f32], loss: f64) -> Self {
        let mut t = RegressionTally::default();
        t.add(predicted, truth);
        t.finish(loss)
    }

    /// One line: rows, R², RMSE, MAE, loss.
    pub fn report(&self) -> String {
        format!(
            "rows {}  r2 {:.4}  rmse {:.4}  mae {:.4}  loss {:.4}\n",
            self.rows, self.r2, self.rmse, self.mae, self.loss
        )
    }
}

/// Scores of either task; serialised as the inner object (`accuracy`... or `r2`...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scores {
    /// A classifier's scores.
    Classification(Evaluation),
    /// A regressor's scores.
    Regression(RegressionEvaluation),
}

impl Scores {
    /// Rows evaluated.
    pub fn rows(&self) -> usize {
        match self {
            Scores::Classification(e) => e.rows,
            Scores::Regression(e) => e.rows,
        }
    }

    /// The loss.
    pub fn loss(&self) -> f64 {
        match self {
            Scores::Classification(e) => e.loss,
            Scores::Regression(e) => e.loss,
        }
    }

    /// Accuracy, for a classifier.
    pub fn accuracy(&self) -> Option<f64> {
        match self {
            Scores::Classification(e) => Some(e.accuracy),
            Scores::Regression(_) => None,
        }
    }

    /// Macro-averaged F1, for a classifier.
    pub fn macro_f1(&self) -> Option<f64> {
        match self {
            Scores::Classification(e) => Some(e.macro_f1),
            Scores::Regression(_) => None,
        }
    }

    /// The classifier's scores, if it is one.
    pub fn classification(&self) -> Option<&Evaluation> {
        match self {
            Scores::Classification(e) => Some(e),
            Scores::Regression(_) => None,
        }
    }

    /// The regressor's scores, if it is one.
    pub fn regression(&self) -> Option<&RegressionEvaluation> {
        match self {
            Scores::Regression(e) => Some(e),
            Scores::Classification(_) => None,
        }
    }

    /// The task's headline metrics by name: `accuracy`, `macro_f1` and `loss` for a classifier;
    /// `r2`, `rmse`, `mae` and `loss` for a regressor. What sweeps rank by and cross-validation
    /// averages.
    pub fn named(&self) -> std::collections::BTreeMap<String, f64> {
        let pairs: Vec<(&str, f64)> = match self {
            Scores::Classification(e) => vec![
                ("accuracy", e.accuracy),
                ("macro_f1", e.macro_f1),
                ("loss", e.loss),
            ],
            Scores::Regression(e) => {
                vec![
                    ("r2", e.r2),
                    ("rmse", e.rmse),
                    ("mae", e.mae),
                    ("loss", e.loss),
                ]
            }
        };
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// A plain-text report (`classes` names a classifier's classes).
    pub fn report(&self, classes: &[String]) -> String {
        match self {
            Scores::Classification(e) => e.report(classes),
            Scores::Regression(e) => e.report(),
        }
    }
}

/// What a row's answer is scored against: class indices, or a regression target, standardised
/// (as training holds it) or in its own units (as a file gives it).
#[derive(Debug, Clone, Copy)]
pub enum Truth<'a> {
    /// Class indices.
    Classes(&'a [usize]),
    /// Targets already standardised by the model's target scaling.
    Standardised(&'a [f32]),
    /// Targets in the target's units.
    Raw(&'a [f32]),
}

/// The one scoring function: training's epoch and final scores, `evaluate` and
/// cross-validation all add a model's outputs to a [`Tally`] through it, so they report the
/// same loss and metrics for the same rows.
///
/// Outputs are the network's: logits (classification), or the standardised target
/// (regression), which is unscaled for R², RMSE and MAE; the loss is the recipe's
/// ([`Loss`]), on the standardised target.
#[derive(Debug, Clone, Copy)]
pub struct Scorer<'a> {
    classes: &'a [String],
    target: TargetScaling,
    loss: Loss,
}

/// Scores summed chunk by chunk (see [`Scorer::add`]).
#[derive(Debug, Clone)]
pub enum Tally {
    /// A classifier's.
    Classes(ClassificationTally),
    /// A regressor's, with the sum of its losses.
    Numbers {
        /// R², RMSE, MAE.
        tally: RegressionTally,
        /// The losses' sum.
        loss_sum: f64,
    },
}

impl<'a> Scorer<'a> {
    /// A scorer for a classifier of `classes` (non-empty) or a regressor (`classes` empty) whose
    /// target was standardised by `target` (`None`: not at all), scored with `loss`.
    pub fn new(classes: &'a [String], target: Option<TargetScaling>, loss: Loss) -> Self {
        Scorer {
            classes,
            target: target.unwrap_or(TargetScaling {
                mean: 0.0,
                std: 1.0,
            }),
            loss,
        }
    }

    /// An empty tally.
    pub fn tally(&self) -> Tally {
        if self.classes.is_empty() {
            Tally::Numbers {
                tally: RegressionTally::default(),
                loss_sum: 0.0,
            }
        } else {
            Tally::Classes(ClassificationTally::new(self.classes.len()))
        }
    }

    /// Adds row-major `outputs` of the rows whose truth is `truth`.
    pub fn add(&self, tally: &mut Tally, outputs: &[f32], truth: Truth) {
        let s = self.target;
        match (tally, truth) {
            (Tally::Classes(t), Truth::Classes(labels)) => t.add(outputs, labels),
            (Tally::Numbers { tally, loss_sum }, Truth::Standardised(y)) => {
                *loss_sum += outputs
                    .iter()
                    .zip(y)
                    .map(|(&p, &t)| self.loss.of_residual(f64::from(p) - f64::from(t)))
                    .sum::<f64>();
                let unscale =
                    |v: &[f32]| -> Vec<f32> { v.iter().map(|&x| x * s.std + s.mean).collect() };
                tally.add(&unscale(outputs), &unscale(y));
            }
            (Tally::Numbers { tally, loss_sum }, Truth::Raw(y)) => {
                let mut predicted = Vec::with_capacity(outputs.len());
                for (&o, &y) in outputs.iter().zip(y) {
                    let r = f64::from(o) - f64::from((y - s.mean) / s.std);
                    *loss_sum += self.loss.of_residual(r);
                    predicted.push(o * s.std + s.mean);
                }
                tally.add(&predicted, y);
            }
            // A tally is made by the scorer of the task its truth comes from.
            _ => debug_assert!(
                false,
                "a class tally given numbers, or a number tally classes"
            ),
        }
    }

    /// Rows added to `tally` so far.
    pub fn rows(tally: &Tally) -> usize {
        match tally {
            Tally::Classes(t) => t.rows(),
            Tally::Numbers { tally, .. } => tally.rows(),
        }
    }

    /// The scores of every row added.
    pub fn finish(&self, tally: &Tally) -> Scores {
        match tally {
            Tally::Classes(t) => Scores::Classification(t.finish(self.classes)),
            Tally::Numbers { tally, loss_sum } => {
                let loss = loss_sum / tally.rows().max(1) as f64;
                Scores::Regression(tally.finish(loss))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["a", "b", "c"].map(String::from).to_vec()
    }

    #[test]
    fn counts_and_scores_by_hand() {
        // Predictions: a, a, b, c, c ; truth: a, b, b, c, a
        let logits = [
            5., 0., 0., //
            5., 0., 0., //
            0., 5., 0., //
            0., 0., 5., //
            0., 0., 5., //
        ];
        let e = Evaluation::from_logits(&logits, &[0, 1, 1, 2, 0], &names());
        assert_eq!(
            e.confusion,
            vec![vec![1, 0, 1], vec![1, 1, 0], vec![0, 0, 1]]
        );
        assert!((e.accuracy - 0.6).abs() < 1e-12);
        // class a: tp 1, predicted 2, support 2 -> p 0.5 r 0.5
        assert!((e.per_class[0].precision - 0.5).abs() < 1e-12);
        assert!((e.per_class[0].recall - 0.5).abs() < 1e-12);
        // class b: tp 1, predicted 1, support 2 -> p 1 r 0.5 f1 2/3
        assert!((e.per_class[1].f1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(e.per_class[2].support, 1);
    }

    #[test]
    fn loss_is_cross_entropy() {
        // Uniform logits over 3 classes: loss = ln 3.
        let e = Evaluation::from_logits(&[0., 0., 0.], &[1], &names());
        assert!((e.loss - 3f64.ln()).abs() < 1e-6, "{}", e.loss);
    }

    #[test]
    fn softmax_is_stable_and_normalised() {
        let p = softmax_rows(&[1000., 1000., 0.], 3);
        assert!((p[0] - 0.5).abs() < 1e-6 && p[2] < 1e-30);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn regression_scores_by_hand() {
        // Perfect predictions: R² 1, no error.
        let e = RegressionEvaluation::from_values(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0], 0.5);
        assert_eq!(
            (e.r2, e.rmse, e.mae, e.loss, e.rows),
            (1.0, 0.0, 0.0, 0.5, 3)
        );
        // Predicting the mean: R² 0.
        let e = RegressionEvaluation::from_values(&[2.0, 2.0, 2.0], &[1.0, 2.0, 3.0], 0.0);
        assert!(e.r2.abs() < 1e-12);
        // Untagged JSON: a regression summary reads back as one, a classification one too.
        let json = serde_json::to_string(&Scores::Regression(e.clone())).unwrap();
        assert!(
            json.contains("\"r2\"") && !json.contains("Regression"),
            "{json}"
        );
        let back: Scores = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Scores::Regression(e));
        let c = Evaluation::from_logits(&[1.0, 0.0], &[0], &names()[..2]);
        let back: Scores = serde_json::from_str(
            &serde_json::to_string(&Scores::Classification(c.clone())).unwrap(),
        )
        .unwrap();
        assert_eq!(back.accuracy(), Some(1.0));
    }

    proptest::proptest! {
        /// Tallying in chunks (how `evaluate` streams a file) gives the scores of the whole.
        #[test]
        fn chunked_tallies_equal_the_whole(
            rows in proptest::collection::vec((proptest::array::uniform3(-20f32..20.0), 0usize..3, -1e3f32..1e3), 1..200),
            cut in 0usize..200,
        ) {
            let cut = cut.min(rows.len());
            let logits: Vec<f32> = rows.iter().flat_map(|r| r.0).collect();
            let labels: Vec<usize> = rows.iter().map(|r| r.1).collect();
            let mut t = ClassificationTally::new(3);
            t.add(&logits[..cut * 3], &labels[..cut]);
            t.add(&logits[cut * 3..], &labels[cut..]);
            let whole = Evaluation::from_logits(&logits, &labels, &names());
            let chunked = t.finish(&names());
            proptest::prop_assert_eq!(&chunked.confusion, &whole.confusion);
            proptest::prop_assert!((chunked.loss - whole.loss).abs() <= 1e-9 * whole.loss.abs().max(1.0));

            let truth: Vec<f32> = rows.iter().map(|r| r.2).collect();
            let predicted: Vec<f32> = rows.iter().map(|r| r.0[0] * 10.0).collect();
            // The two-pass definition, independently of the tally.
            let n = truth.len() as f64;
            let mean = truth.iter().map(|&y| f64::from(y)).sum::<f64>() / n;
            let ss_tot: f64 = truth.iter().map(|&y| (f64::from(y) - mean).powi(2)).sum();
            let ss_res: f64 = truth.iter().zip(&predicted).map(|(&y, &p)| (f64::from(y) - f64::from(p)).powi(2)).sum();
            let mut r = RegressionTally::default();
            r.add(&predicted[..cut], &truth[..cut]);
            r.add(&predicted[cut..], &truth[cut..]);
            let e = r.finish(0.0);
            proptest::prop_assert!((e.rmse - (ss_res / n).sqrt()).abs() <= 1e-9 * e.rmse.max(1.0));
            if ss_tot > 1e-6 {
                let r2 = 1.0 - ss_res / ss_tot;
                proptest::prop_assert!((e.r2 - r2).abs() <= 1e-9 * r2.abs().max(1.0), "{} vs {}", e.r2, r2);
            }
        }
    }
}
