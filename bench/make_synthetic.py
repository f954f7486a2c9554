"""A larger synthetic tabular set: ROWS x FEATURES numeric features, CLASSES classes.

Gaussian clusters (one centre per class, unit noise), seeded, so every run writes the same file
whatever --jobs is: the rows are drawn in blocks of 100,000, block i from the generator seeded
with (seed, i), formatted by --jobs processes (all CPUs by default) and written in order.
  python bench/make_synthetic.py OUT.csv [--rows 100000] [--features 32] [--classes 10] [--jobs N]
"""
import argparse
import os
from multiprocessing import Pool

import numpy as np

BLOCK = 100_000

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--rows", type=int, default=100_000)
p.add_argument("--features", type=int, default=32)
p.add_argument("--classes", type=int, default=10)
p.add_argument("--seed", type=int, default=7)
p.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
a = p.parse_args()

centres = np.random.default_rng(a.seed).normal(0.0, 1.5, size=(a.classes, a.features))


def block(i):
    """The CSV text of block i (rows i*BLOCK .. min((i+1)*BLOCK, rows))."""
    n = min(BLOCK, a.rows - i * BLOCK)
    rng = np.random.default_rng([a.seed, i])
    labels = rng.integers(0, a.classes, size=n)
    x = centres[labels] + rng.normal(0.0, 1.0, size=(n, a.features))
    return "".join(",".join(f"{v:.5f}" for v in row) + f",c{label}\n" for row, label in zip(x, labels))


if __name__ == "__main__":
    blocks = range((a.rows + BLOCK - 1) // BLOCK)
    with open(a.out, "w") as f:
        f.write(",".join([f"f{i}" for i in range(a.features)] + ["label"]) + "\n")
        with Pool(max(1, a.jobs)) as pool:
            for text in pool.imap(block, blocks):
                f.write(text)
