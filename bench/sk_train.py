"""scikit-learn's MLPClassifier, configured like iris-trainer's default config.

Same architecture (one hidden layer of 16, ReLU), optimiser (Adam, learning rate 0.01, no L2),
epochs (all of them: no early stop), batch (full by default), split (stratified 80/20, seeded)
and scaling (standardisation fitted on the training rows). Saves a joblib file like the workshop.
"""
import argparse
import json
import time

import joblib
import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from common import read_csv

p = argparse.ArgumentParser()
p.add_argument("--data", required=True)
p.add_argument("--out", required=True)
p.add_argument("--epochs", type=int, default=300)
p.add_argument("--lr", type=float, default=0.01)
p.add_argument("--batch-size", type=int, default=0, help="0: full batch")
p.add_argument("--hidden", type=int, default=16)
p.add_argument("--seed", type=int, default=42)
a = p.parse_args()

names, x, y = read_csv(a.data)
x_train, x_test, y_train, y_test = train_test_split(
    x, y, test_size=0.2, stratify=y, random_state=a.seed
)
scaler = StandardScaler().fit(x_train)
model = MLPClassifier(
    hidden_layer_sizes=(a.hidden,),
    activation="relu",
    solver="adam",
    alpha=0.0,
    learning_rate_init=a.lr,
    batch_size=a.batch_size or len(x_train),
    max_iter=a.epochs,
    tol=0.0,
    n_iter_no_change=a.epochs + 1,
    shuffle=True,
    random_state=a.seed,
)
start = time.perf_counter()
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # ConvergenceWarning: we ask for exactly `epochs`
    model.fit(scaler.transform(x_train), y_train)
fit_s = time.perf_counter() - start
accuracy = float(np.mean(model.predict(scaler.transform(x_test)) == y_test))
joblib.dump({"model": model, "scaler": scaler, "features": names}, a.out)
print(json.dumps({"fit_s": fit_s, "epochs": model.n_iter_, "epochs_per_s": model.n_iter_ / fit_s,
                  "test_accuracy": accuracy}))
