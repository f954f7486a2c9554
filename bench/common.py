"""Shared by the scikit-learn peers: read a CSV the way iris-trainer does (header, label last)."""
import csv

import numpy as np


def read_csv(path):
    """Returns (feature names, X float32, labels as strings)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    x = np.array([[float(v) for v in r[:-1]] for r in body], dtype=np.float32)
    y = np.array([r[-1] for r in body])
    return header[:-1], x, y
