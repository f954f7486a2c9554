"""`model.safetensors` read by a reader iris-trainer did not write: the `safetensors` package.

For Iris, for Palmer penguins (categories, missing values) and for the diabetes table
(regression): train a model with iris-trainer, load its `model.safetensors` with
`safetensors.numpy` and the file's `__metadata__` with `safe_open`, redo the preprocessing and
the forward pass with numpy alone, and compare with `iris-trainer predict --format json` on every
row of the table: class probabilities to 1e-5, regression values to 1e-5 relative. Also checks
that `iris-trainer export --output FILE` writes the same bytes as the model directory holds, and
runs the README's Python snippet as written.

Usage: python safetensors_check.py BINARY README  (scripts/interop-test.sh sets up the venv).
Ends with a line `interop: N passed, N failed`; exits 1 if anything failed.
"""

import ast
import csv
import json
import math
import os
import sys
import tempfile

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

import harness
from harness import check, finish, run

harness.BIN, README = sys.argv[1], sys.argv[2]
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
TOLERANCE = 1e-5



def encode(rows, meta):
    """The network's inputs for raw CSV rows (dicts of strings), as the metadata describes."""
    pre = json.loads(meta["preprocess"])
    missing = set(pre["missing_values"])
    scaling = json.loads(meta["scaling"])
    x = []
    for row in rows:
        inputs = []
        for col in pre["columns"]:
            raw = row.get(col["name"], "").strip()
            absent = raw == "" or raw in missing
            kind = col["type"]
            if kind == "numeric":
                inputs.append(col["fill"] if absent else float(raw))
                if col["indicator"]:
                    inputs.append(1.0 if absent else 0.0)
            elif kind == "boolean":
                truth = {"true": 1.0, "yes": 1.0, "y": 1.0, "t": 1.0, "1": 1.0,
                         "false": 0.0, "no": 0.0, "n": 0.0, "f": 0.0, "0": 0.0}
                inputs.append(col["fill"] if absent else truth[raw.lower()])
            elif kind == "categorical":
                # One 0/1 input per level; a level without an input of its own is the shared
                # "other" input when there is one, else all zeros.
                inputs.extend(1.0 if (not absent and raw == level) else 0.0 for level in col["levels"])
                if col["missing_level"]:
                    inputs.append(1.0 if absent else 0.0)
                if col.get("other_level", False):
                    inputs.append(1.0 if (not absent and raw not in col["levels"]) else 0.0)
            else:
                raise ValueError(f"unknown encoder type {kind}")
        x.append(inputs)
    x = np.asarray(x, dtype=np.float32)
    mean = np.asarray(scaling["mean"], dtype=np.float32)
    std = np.asarray(scaling["std"], dtype=np.float32)
    x = (x - mean) / std
    if scaling.get("clip", False):
        # Robust scaling's smooth clipping, of every input.
        x = x / np.sqrt(1 + (x / 3) ** 2)
    return x


ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "gelu": lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))).astype(np.float32),
}


def forward(x, tensors, meta):
    layers = json.loads(meta["layers"])
    act = ACTIVATIONS[meta["activation"]]
    for i, name in enumerate(layers):
        w, b = tensors[f"{name}.weight"], tensors[f"{name}.bias"]
        # PyTorch's layout: weight [out, in].
        assert w.shape == (b.shape[0], x.shape[1]), f"{name}.weight is {w.shape}, input {x.shape}"
        x = x @ w.T + b
        if i + 1 < len(layers):
            x = act(x)
    return x


def softmax(z):
    z = z.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def case(name, data, train_args, config=None):
    def body():
        with tempfile.TemporaryDirectory() as tmp:
            model = os.path.join(tmp, "model")
            table = os.path.join(ROOT, "data", data)
            args = [a.replace("{data}", table) for a in train_args]
            if config:
                with open(os.path.join(tmp, "config.toml"), "w") as f:
                    f.write(config)
                args += ["--config", os.path.join(tmp, "config.toml")]
            run("train", "--quiet", "--out", model, *args)
            path = os.path.join(model, "model.safetensors")
            tensors = load_file(path)
            with safe_open(path, framework="np") as f:
                meta = f.metadata()
            with open(table) as f:
                rows = list(csv.DictReader(f))
            out = forward(encode(rows, meta), tensors, meta)
            answers = json.loads(run("predict", "--quiet", "--model", model, "--input", table,
                                     "--format", "json"))["predictions"]
            assert len(answers) == len(rows), f"{len(answers)} predictions for {len(rows)} rows"
            if meta["task"] == "classification":
                classes = json.loads(meta["classes"])
                theirs = softmax(out)
                ours = np.array([[a["probabilities"][c] for c in classes] for a in answers])
                worst = float(np.abs(theirs - ours).max())
                assert worst <= TOLERANCE, f"probabilities differ by up to {worst}"
                labels = [classes[i] for i in theirs.argmax(axis=1)]
                assert labels == [a["species"] for a in answers], "predicted classes differ"
                detail = f"{len(rows)} rows, {len(classes)} classes, max |dp| {worst:.1e}"
            else:
                t = json.loads(meta["target_scaling"])
                theirs = out[:, 0].astype(np.float64) * t["std"] + t["mean"]
                ours = np.array([a["value"] for a in answers])
                worst = float((np.abs(theirs - ours) / np.maximum(1, np.abs(ours))).max())
                assert worst <= TOLERANCE, f"values differ by up to {worst} (relative)"
                detail = f"{len(rows)} rows, max relative |dy| {worst:.1e}"
            # `export --output` writes what the model directory holds.
            exported = os.path.join(tmp, "exported.safetensors")
            run("export", "--quiet", "--model", model, "--output", exported)
            with open(exported, "rb") as a, open(path, "rb") as b:
                assert a.read() == b.read(), "export --output differs from model.safetensors"
            return detail + f"; {len(tensors)} tensors, activation {meta['activation']}"

    check(f"safetensors {name}", body)


case("iris", "iris.csv", ["--data", "{data}"])
case("penguins (categories, missing values)", "penguins.csv",
     ["--data", "{data}", "--label", "species", "--ignore", "year", "--epochs", "100"],
     config='[model]\nactivation = "gelu"\n')
case("diabetes (regression)", "diabetes.csv",
     ["--data", "{data}", "--label", "target", "--epochs", "100", "--hidden", "16,8"],
     config='[model]\nactivation = "tanh"\n')

def readme_snippet():
    out, answer = harness.readme_snippet(README, "safetensors.numpy")
    printed = ast.literal_eval(out.strip())
    expected = answer["probabilities"]
    assert printed.keys() == expected.keys(), f"the snippet printed {printed}"
    # Rounded to 4 decimals by the snippet.
    worst = max(abs(printed[c] - expected[c]) for c in expected)
    assert worst <= 0.5e-4 + TOLERANCE, f"the snippet printed {printed}, predict says {expected}"
    return f"prints {printed}"


check("README safetensors snippet", readme_snippet)

finish()
