"""Predict with a joblib model from sk_train.py: values as arguments, or --input CSV."""
import argparse
import csv
import sys

import joblib
import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--model", required=True)
p.add_argument("--input")
p.add_argument("values", nargs="*", type=float)
a = p.parse_args()

bundle = joblib.load(a.model)
if a.input:
    with open(a.input, newline="") as f:
        x = np.array([[float(v) for v in r[:4]] for r in csv.reader(f)], dtype=np.float32)
else:
    x = np.array([a.values], dtype=np.float32)
proba = bundle["model"].predict_proba(bundle["scaler"].transform(x))
classes = bundle["model"].classes_
out = sys.stdout
for row in proba:
    i = int(np.argmax(row))
    out.write(f"{classes[i]}\t{row[i]:.4f}\n")
