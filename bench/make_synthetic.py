"""A larger synthetic tabular set: ROWS x FEATURES numeric features, CLASSES classes.

Gaussian clusters (one centre per class, unit noise), seeded, so every run writes the same file.
  python bench/make_synthetic.py OUT.csv [--rows 100000] [--features 32] [--classes 10]
"""
import argparse

import numpy as np

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--rows", type=int, default=100_000)
p.add_argument("--features", type=int, default=32)
p.add_argument("--classes", type=int, default=10)
p.add_argument("--seed", type=int, default=7)
a = p.parse_args()

rng = np.random.default_rng(a.seed)
centres = rng.normal(0.0, 1.5, size=(a.classes, a.features))
labels = rng.integers(0, a.classes, size=a.rows)
x = centres[labels] + rng.normal(0.0, 1.0, size=(a.rows, a.features))
with open(a.out, "w") as f:
    f.write(",".join([f"f{i}" for i in range(a.features)] + ["label"]) + "\n")
    for row, label in zip(x, labels):
        f.write(",".join(f"{v:.5f}" for v in row) + f",c{label}\n")
