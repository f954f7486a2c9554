#!/usr/bin/env python3
"""Real tables, side by side: iris-trainer and a scikit-learn pipeline of the same shape.

For each table (penguins from data/, and scikit-learn's bundled wine, breast cancer and
diabetes), one seeded 80/20 split (stratified for classes) is written as train.csv and
test.csv, and both tools get the same files:

- iris-trainer (release build): `train --config configs/<table>.toml --data train.csv`, then
  `evaluate --data test.csv --format json`;
- scikit-learn: impute (mean; a "missing" level for text), one-hot (unknown levels all zeros),
  standardise, then MLPClassifier / MLPRegressor (the regressor on a standardised target) with
  the config's hidden layers, learning rate, epochs and batch size, Adam, no L2 penalty and no
  early stopping; scored on test.csv.

iris-trainer holds `data.test_fraction` (5%) of train.csv out as its own test split, so it fits
on 95% of the rows scikit-learn fits on. Time and peak memory are of the whole training process
(start, read, fit, save; for Python including its imports), each the median of --runs runs, by
GNU time. Writes bench/results/tabular.{json,md}.

    target/bench-venv/bin/python bench/tabular.py [--runs 3]    # scripts/bench.sh runs it
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLES = {
    # name: (label column, task); the config is configs/<name>.toml
    "penguins": ("species", "classification"),
    "wine": ("target", "classification"),
    "breast_cancer": ("target", "classification"),
    "diabetes": ("target", "regression"),
}


def frame(name):
    """The whole table as a pandas DataFrame, as a user has it."""
    import pandas as pd
    from sklearn import datasets

    if name == "penguins":
        return pd.read_csv(ROOT / "data" / "penguins.csv")
    if name == "diabetes":
        return datasets.load_diabetes(as_frame=True, scaled=False).frame
    return getattr(datasets, f"load_{name}")(as_frame=True).frame


def split(name, out):
    """Writes train.csv and test.csv for a table; returns their paths."""
    from sklearn.model_selection import train_test_split

    label, task = TABLES[name]
    df = frame(name)
    train, test = train_test_split(
        df, test_size=0.2, random_state=0,
        stratify=df[label] if task == "classification" else None)
    out.mkdir(parents=True, exist_ok=True)
    paths = out / "train.csv", out / "test.csv"
    train.to_csv(paths[0], index=False)
    test.to_csv(paths[1], index=False)
    return paths


def sklearn_fit(name, train_csv, test_csv):
    """Fits the scikit-learn pipeline and prints its test score and fit time as JSON (run in a
    child process, so that its time and memory are a whole process's)."""
    import time

    import pandas as pd
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.metrics import accuracy_score, mean_absolute_error, r2_score, root_mean_squared_error
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    label, task = TABLES[name]
    cfg = tomllib.loads((ROOT / "configs" / f"{name}.toml").read_text())
    t = cfg["training"]
    train, test = pd.read_csv(train_csv), pd.read_csv(test_csv)
    x, y = train.drop(columns=[label]), train[label]
    numbers = [c for c in x.columns if pd.api.types.is_numeric_dtype(x[c])]
    text = [c for c in x.columns if c not in numbers]
    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="mean"), StandardScaler()), numbers),
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="<missing>"),
                              OneHotEncoder(handle_unknown="ignore")), text),
    ])
    mlp = dict(hidden_layer_sizes=tuple(cfg["model"]["hidden"]), solver="adam",
               learning_rate_init=t["learning_rate"], max_iter=t["epochs"],
               batch_size=t["batch_size"], alpha=0.0, shuffle=True, random_state=0,
               tol=0.0, n_iter_no_change=t["epochs"] + 1)
    if task == "classification":
        model = make_pipeline(prep, MLPClassifier(**mlp))
    else:
        model = TransformedTargetRegressor(make_pipeline(prep, MLPRegressor(**mlp)),
                                           transformer=StandardScaler())
    start = time.perf_counter()
    model.fit(x, y)
    fit_s = time.perf_counter() - start
    xt, yt = test.drop(columns=[label]), test[label]
    p = model.predict(xt)
    if task == "classification":
        scores = {"accuracy": accuracy_score(yt, p)}
    else:
        scores = {"r2": r2_score(yt, p), "rmse": root_mean_squared_error(yt, p),
                  "mae": mean_absolute_error(yt, p)}
    print(json.dumps({**scores, "fit_s": fit_s, "train_rows": len(train)}))


def timed(cmd, runs):
    """Median wall seconds and peak RSS (MiB) of a command over `runs` runs, and its last stdout."""
    walls, rss, stdout = [], [], ""
    for _ in range(runs):
        with tempfile.NamedTemporaryFile("r") as f:
            r = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", f.name, *cmd],
                               capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"failed: {' '.join(map(str, cmd))}\n{r.stderr}")
            wall, kib = f.read().split()[-2:]
        walls.append(float(wall))
        rss.append(int(kib) / 1024)
        stdout = r.stdout
    return statistics.median(walls), statistics.median(rss), stdout


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=str(ROOT / "target" / "release" / "iris-trainer"))
    p.add_argument("--runs", type=int, default=3, help="runs per table and tool (median)")
    p.add_argument("--tables", default=",".join(TABLES), help="comma-separated tables to run")
    p.add_argument("--sklearn-fit", nargs=3, metavar=("TABLE", "TRAIN", "TEST"),
                   help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.sklearn_fit:
        return sklearn_fit(*a.sklearn_fit)
    import sklearn

    work = Path(tempfile.mkdtemp(prefix="iris-tabular."))
    rows, results = [], {}
    for name in a.tables.split(","):
        label, task = TABLES[name]
        train_csv, test_csv = split(name, work / name)
        model = work / name / "model"
        config = ROOT / "configs" / f"{name}.toml"
        it_wall, it_rss, _ = timed([a.bin, "train", "--quiet", "--config", str(config),
                                    "--data", str(train_csv), "--out", str(model)], a.runs)
        ev = subprocess.run([a.bin, "evaluate", "--quiet", "--model", str(model), "--data",
                             str(test_csv), "--format", "json"],
                            capture_output=True, text=True, check=True)
        it = json.loads(ev.stdout)
        sk_wall, sk_rss, out = timed([sys.executable, __file__, "--sklearn-fit", name,
                                      str(train_csv), str(test_csv)], a.runs)
        sk = json.loads(out)
        metric = "accuracy" if task == "classification" else "r2"
        results[name] = {
            "task": task, "metric": metric, "train_rows": sk["train_rows"],
            "test_rows": it["rows"],
            "iris_trainer": {metric: it[metric], "wall_s": it_wall, "peak_rss_mib": it_rss},
            "sklearn": {metric: sk[metric], "wall_s": sk_wall, "fit_s": sk["fit_s"],
                        "peak_rss_mib": sk_rss},
        }
        if task == "regression":
            for k in ("rmse", "mae"):
                results[name]["iris_trainer"][k] = it[k]
                results[name]["sklearn"][k] = sk[k]
        diff = it[metric] - sk[metric]
        results[name]["difference"] = diff
        rows.append(f"| {name} | {task} | {sk['train_rows']} / {it['rows']} | {metric} "
                    f"| {it[metric]:.3f} | {sk[metric]:.3f} | {diff:+.3f} "
                    f"| {it_wall:.2f} s | {sk_wall:.2f} s ({sk['fit_s']:.2f} s fit) "
                    f"| {it_rss:.0f} MiB | {sk_rss:.0f} MiB |")
        print(rows[-1], flush=True)
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(),
               "python": platform.python_version(), "sklearn": sklearn.__version__,
               "runs": a.runs}
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "tabular.json").write_text(json.dumps({"machine": machine, "tables": results},
                                                 indent=2) + "\n")
    table = ("| table | task | train / test rows | metric | iris-trainer | scikit-learn "
             "| difference | iris-trainer time | scikit-learn time | iris-trainer peak RSS "
             "| scikit-learn peak RSS |\n"
             "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n")
    (out / "tabular.md").write_text(
        f"{table}\nMedian of {a.runs} runs per tool and table; {machine['cpus']} CPUs, "
        f"scikit-learn {machine['sklearn']}, Python {machine['python']}.\n")
    print(table)


if __name__ == "__main__":
    main()
