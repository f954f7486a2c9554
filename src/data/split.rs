//! Seeded train/test splits: stratified by class for classification, random for regression.

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Why rows cannot be split in two.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// A class has too few rows to appear on both sides of the split.
    #[error(
        "class `{class}` has {rows} row(s); every class needs at least 2 to appear on both sides \
         of the split"
    )]
    ClassTooSmall {
        /// The class's name.
        class: String,
        /// Its rows.
        rows: usize,
    },
    /// Too few rows to hold one out.
    #[error("{rows} row(s); at least 2 are needed to hold one out")]
    TooFewRows {
        /// The rows there are.
        rows: usize,
    },
}

/// Row indices of a split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Rows to fit on, ascending.
    pub train: Vec<usize>,
    /// Held-out rows, ascending.
    pub test: Vec<usize>,
}

impl Split {
    /// Holds out `fraction` of each class (rounded, at least one row, and at least one row kept).
    /// `labels` are class indices below `class_names.len()`.
    pub fn stratified(
        labels: &[usize],
        class_names: &[String],
        fraction: f64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Split, SplitError> {
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); class_names.len()];
        for (i, &l) in labels.iter().enumerate() {
            by_class[l].push(i);
        }
        let mut train = Vec::new();
        let mut test = Vec::new();
        for (mut rows, name) in by_class.into_iter().zip(class_names) {
            if rows.len() < 2 {
                return Err(SplitError::ClassTooSmall {
                    class: name.clone(),
                    rows: rows.len(),
                });
            }
            rows.shuffle(rng);
            let n_test = ((rows.len() as f64 * fraction).round() as usize).clamp(1, rows.len() - 1);
            test.extend_from_slice(&rows[..n_test]);
            train.extend_from_slice(&rows[n_test..]);
        }
        train.sort_unstable();
        test.sort_unstable();
        Ok(Split { train, test })
    }

    /// Holds out `fraction` of `rows` rows at random (rounded, at least one row each side).
    pub fn random(rows: usize, fraction: f64, rng: &mut ChaCha8Rng) -> Result<Split, SplitError> {
        if rows < 2 {
            return Err(SplitError::TooFewRows { rows });
        }
        let mut order: Vec<usize> = (0..rows).collect();
        order.shuffle(rng);
        let n_test = ((rows as f64 * fraction).round() as usize).clamp(1, rows - 1);
        let mut test = order[..n_test].to_vec();
        let mut train = order[n_test..].to_vec();
        train.sort_unstable();
        test.sort_unstable();
        Ok(Split { train, test })
    }

    /// The split of a subset: `self`'s positions mapped through `rows`.
    pub fn within(&self, rows: &[usize]) -> Split {
        Split {
            train: self.train.iter().map(|&i| rows[i]).collect(),
            test: self.test.iter().map(|&i| rows[i]).collect(),
        }
    }
}

/// The held-out rows of each of `k` folds (positions into `labels`, each list ascending):
/// every class's rows are shuffled and dealt to the folds in turn, each class starting where
/// the previous one stopped, so every fold holds its share of every class and fold sizes differ
/// by at most one row. `labels` are class indices below `classes`.
pub fn stratified_folds(
    labels: &[usize],
    classes: usize,
    k: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<Vec<usize>> {
    let k = k.max(1);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        by_class[l].push(i);
    }
    let mut folds = vec![Vec::new(); k];
    let mut next = 0;
    for mut rows in by_class {
        rows.shuffle(rng);
        for r in rows {
            folds[next].push(r);
            next = (next + 1) % k;
        }
    }
    folds.iter_mut().for_each(|f| f.sort_unstable());
    folds
}

/// The held-out rows of each of `k` folds of `rows` rows, shuffled and dealt in turn (sizes
/// differ by at most one row); each list ascending.
pub fn random_folds(rows: usize, k: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<usize>> {
    let k = k.max(1);
    let mut order: Vec<usize> = (0..rows).collect();
    order.shuffle(rng);
    let mut folds = vec![Vec::new(); k];
    for (i, r) in order.into_iter().enumerate() {
        folds[i % k].push(r);
    }
    folds.iter_mut().for_each(|f| f.sort_unstable());
    folds
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn stratified_is_seeded_disjoint_and_per_class() {
        let labels: Vec<usize> = (0..150).map(|i| i / 50).collect();
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let split = |seed| {
            Split::stratified(&labels, &names, 0.2, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap()
        };
        let (s1, s2, s3) = (split(1), split(1), split(2));
        assert_eq!(s1, s2);
        assert_ne!(s1, s3);
        assert_eq!((s1.train.len(), s1.test.len()), (120, 30));
        for c in 0..3 {
            assert_eq!(s1.test.iter().filter(|&&i| labels[i] == c).count(), 10);
        }
        assert!(s1.test.iter().all(|i| !s1.train.contains(i)));
        let m = Split::stratified(
            &[0, 0, 1],
            &names[..2],
            0.2,
            &mut ChaCha8Rng::seed_from_u64(0),
        )
        .unwrap_err()
        .to_string();
        assert!(m.contains("class `b` has 1 row"), "{m}");
    }

    #[test]
    fn random_holds_out_the_fraction() {
        let s = Split::random(442, 0.2, &mut ChaCha8Rng::seed_from_u64(3)).unwrap();
        assert_eq!((s.train.len(), s.test.len()), (354, 88));
        let mut all: Vec<usize> = s.train.iter().chain(&s.test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..442).collect::<Vec<_>>());
        assert!(Split::random(1, 0.2, &mut ChaCha8Rng::seed_from_u64(3)).is_err());
        let inner = Split {
            train: vec![0, 2],
            test: vec![1],
        }
        .within(&[10, 20, 30]);
        assert_eq!(
            inner,
            Split {
                train: vec![10, 30],
                test: vec![20]
            }
        );
    }

    #[test]
    fn stratified_folds_partition_the_rows_and_keep_class_shares() {
        // 40, 40 and 40 rows (Iris's training split), then an uneven 7/5 table.
        let labels: Vec<usize> = (0..120).map(|i| i % 3).collect();
        let folds = |seed| stratified_folds(&labels, 3, 5, &mut ChaCha8Rng::seed_from_u64(seed));
        let (a, b, c) = (folds(7), folds(7), folds(8));
        assert_eq!(a, b, "the same seed gives the same folds");
        assert_ne!(a, c, "another seed gives other folds");
        let mut all: Vec<usize> = a.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(
            all,
            (0..120).collect::<Vec<_>>(),
            "every row in exactly one fold"
        );
        for f in &a {
            assert_eq!(f.len(), 24);
            for class in 0..3 {
                assert_eq!(
                    f.iter().filter(|&&i| labels[i] == class).count(),
                    8,
                    "{f:?}"
                );
            }
        }
        let uneven: Vec<usize> = [0; 7].into_iter().chain([1; 5]).collect();
        let f = stratified_folds(&uneven, 2, 3, &mut ChaCha8Rng::seed_from_u64(1));
        let sizes: Vec<usize> = f.iter().map(Vec::len).collect();
        assert_eq!(sizes, [4, 4, 4]);
        for fold in &f {
            let ones = fold.iter().filter(|&&i| uneven[i] == 1).count();
            assert!((1..=2).contains(&ones), "{f:?}");
        }
    }

    #[test]
    fn random_folds_partition_the_rows() {
        let f = random_folds(11, 3, &mut ChaCha8Rng::seed_from_u64(2));
        assert_eq!(f, random_folds(11, 3, &mut ChaCha8Rng::seed_from_u64(2)));
        assert_eq!(f.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 3]);
        let mut all: Vec<usize> = f.concat();
        all.sort_unstable();
        assert_eq!(all, (0..11).collect::<Vec<_>>());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any labels and any k: the folds partition the rows, their sizes differ by at most
            /// one, and so do any class's rows across folds.
            #[test]
            fn stratified_folds_are_a_balanced_partition(
                labels in prop::collection::vec(0usize..4, 0..120),
                k in 1usize..12,
                seed in any::<u64>(),
            ) {
                let folds = stratified_folds(&labels, 4, k, &mut ChaCha8Rng::seed_from_u64(seed));
                prop_assert_eq!(folds.len(), k);
                let mut all: Vec<usize> = folds.concat();
                all.sort_unstable();
                prop_assert_eq!(all, (0..labels.len()).collect::<Vec<_>>());
                let spread = |counts: Vec<usize>| {
                    counts.iter().max().unwrap_or(&0) - counts.iter().min().unwrap_or(&0)
                };
                prop_assert!(spread(folds.iter().map(Vec::len).collect()) <= 1);
                for class in 0..4 {
                    let per_fold = folds
                        .iter()
                        .map(|f| f.iter().filter(|&&i| labels[i] == class).count())
                        .collect();
                    prop_assert!(spread(per_fold) <= 1, "class {class}: {folds:?}");
                }
                let again = stratified_folds(&labels, 4, k, &mut ChaCha8Rng::seed_from_u64(seed));
                prop_assert_eq!(folds, again);
            }
        }
    }
}
