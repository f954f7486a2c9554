"""`model.onnx` run by runtimes iris-trainer did not write: `onnx.checker` and `onnxruntime`;
a Triton model repository entry's `config.pbtxt` parsed by Triton's own `ModelConfig` message.

For Iris, Palmer penguins (categories, missing values), the diabetes table (regression) and a
made table with a category of 150 levels (more than `max_categories`: the rare ones share
`<other>`), blanks in every column and, at prediction time, levels never seen in training:
train with iris-trainer, check the model directory's `model.onnx` with
`onnx.checker.check_model(full_check=True)`, run it with onnxruntime on the CPU on every row of
the table (each raw column one input: float with NaN for a blank, string for a category), and
compare with `iris-trainer predict --format json`: probabilities and values to 1e-5 (values
relative), labels equal. Also: `export --format onnx --output FILE` writes the same bytes, and
`export --format triton-repository` writes `NAME/config.pbtxt` (parsed by tritonclient's
`model_config_pb2`, its inputs and outputs those of the graph) and `NAME/1/model.onnx`.

Last, it runs the README's onnxruntime snippet as written.

Usage: python onnx_check.py BINARY README  (scripts/interop-test.sh sets up the venv).
Ends with a line `interop: N passed, N failed`; exits 1 if anything failed.
"""

import csv
import json
import os
import random
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

import harness
from harness import check, finish, run

harness.BIN, README = sys.argv[1], sys.argv[2]
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
TOLERANCE = 1e-5
BOOLEAN = {"true": 1.0, "yes": 1.0, "y": 1.0, "t": 1.0, "1": 1.0,
           "false": 0.0, "no": 0.0, "n": 0.0, "f": 0.0, "0": 0.0}



def feeds(rows, model_json, session):
    """One input per raw column, as the README describes them."""
    encoding = model_json["preprocessing"]["encoding"]
    missing = set(encoding["missing_values"])
    kinds = {c["name"]: c["type"] for c in encoding["columns"]}
    names = {i.name for i in session.get_inputs()}
    out = {}
    for column in model_json["features"]:
        name = column if column in names else f"column:{column}"
        values = [row.get(column, "").strip() for row in rows]
        kind = kinds[column]
        if kind == "categorical":
            out[name] = np.array(values, dtype=object).reshape(-1, 1)
        else:
            def number(v):
                if v in missing:
                    return np.nan
                return BOOLEAN[v.lower()] if kind == "boolean" else float(v)
            out[name] = np.array([number(v) for v in values], dtype=np.float32).reshape(-1, 1)
    return out


def made_table(path, rows, seed, unseen=False):
    """A classification table: a number, a 150-level category, a small category and a yes/no
    column, blanks in each; with `unseen`, levels the training rows never had."""
    rng = random.Random(seed)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["amount", "city", "colour", "member", "outcome"])
        for _ in range(rows):
            amount = rng.gauss(50, 20)
            rank = int(rng.paretovariate(1.2)) if rng.random() < 0.6 else rng.randrange(150)
            city = f"city{rank % 150:03d}"
            colour = rng.choice(["red", "green", "blue"])
            member = rng.choice(["yes", "no"])
            score = amount / 25 + (city < "city010") + (colour == "red") - (member == "yes")
            outcome = "high" if score + rng.gauss(0, 0.5) > 2.5 else "low"
            if unseen and rng.random() < 0.2:
                city, colour = "atlantis", "purple"
            cells = [f"{amount:.2f}", city, colour, member]
            cells = ["" if rng.random() < 0.08 else c for c in cells]
            w.writerow(cells + [outcome])


def encoders(model_json):
    """What the encoders hold, e.g. `numeric+missing, categorical 40+missing+other`."""
    out = []
    for c in model_json["preprocessing"]["encoding"]["columns"]:
        text = c["type"]
        if c["type"] == "categorical":
            text += f" {len(c['levels'])}" + "+missing" * c["missing_level"] \
                + "+other" * c.get("other_level", False)
        if c.get("indicator"):
            text += "+missing"
        out.append(text)
    return ", ".join(out)


def case(name, data, train_args, predict_on=None, config=None, expect=None):
    def body():
        with tempfile.TemporaryDirectory() as tmp:
            model = os.path.join(tmp, "model")
            table = data(tmp) if callable(data) else os.path.join(ROOT, "data", data)
            args = list(train_args)
            if config:
                with open(os.path.join(tmp, "config.toml"), "w") as f:
                    f.write(config)
                args += ["--config", os.path.join(tmp, "config.toml")]
            run("train", "--quiet", "--out", model, "--data", table, *args)
            path = os.path.join(model, "model.onnx")
            onnx.checker.check_model(onnx.load(path), full_check=True)
            with open(os.path.join(model, "model.json")) as f:
                model_json = json.load(f)
            rows_file = predict_on(tmp) if predict_on else table
            with open(rows_file) as f:
                rows = list(csv.DictReader(f))
            session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            result = dict(zip([o.name for o in session.get_outputs()],
                              session.run(None, feeds(rows, model_json, session))))
            answers = json.loads(run("predict", "--quiet", "--model", model, "--input",
                                     rows_file, "--format", "json"))["predictions"]
            assert len(answers) == len(rows), f"{len(answers)} predictions for {len(rows)} rows"
            if model_json["task"] == "classification":
                classes = model_json["classes"]
                ours = np.array([[a["probabilities"][c] for c in classes] for a in answers])
                theirs = result["probabilities"]
                assert theirs.shape == ours.shape, f"probabilities {theirs.shape}"
                worst = float(np.abs(theirs - ours).max())
                assert worst <= TOLERANCE, f"probabilities differ by up to {worst}"
                # The class is the one field that is not a probability.
                said = [next(v for k, v in a.items() if not k.startswith("probabilit"))
                        for a in answers]
                assert list(result["label"]) == said, "labels differ"
                detail = f"{len(rows)} rows, {len(classes)} classes, max |dp| {worst:.1e}"
            else:
                ours = np.array([a["value"] for a in answers])
                theirs = result["value"].astype(np.float64)
                assert theirs.shape == ours.shape, f"value {theirs.shape}"
                worst = float((np.abs(theirs - ours) / np.maximum(1, np.abs(ours))).max())
                assert worst <= TOLERANCE, f"values differ by up to {worst} (relative)"
                detail = f"{len(rows)} rows, max relative |dy| {worst:.1e}"
            # `export --output` writes what the model directory holds.
            exported = os.path.join(tmp, "exported.onnx")
            run("export", "--quiet", "--model", model, "--format", "onnx", "--output", exported)
            with open(exported, "rb") as a, open(path, "rb") as b:
                assert a.read() == b.read(), "export --output differs from model.onnx"
            # A Triton repository entry, its config read by Triton's own message type.
            repo = os.path.join(tmp, "repository")
            run("export", "--quiet", "--model", model, "--format", "triton-repository",
                "--output", repo, "--model-name", "tabular")
            with open(os.path.join(repo, "tabular", "config.pbtxt")) as f:
                config_pb = text_format.Parse(f.read(), model_config_pb2.ModelConfig())
            assert config_pb.name == "tabular" and config_pb.backend == "onnxruntime"
            graph = onnx.load(os.path.join(repo, "tabular", "1", "model.onnx")).graph
            assert [i.name for i in config_pb.input] == [i.name for i in graph.input]
            assert [o.name for o in config_pb.output] == [o.name for o in graph.output]
            with open(os.path.join(repo, "tabular", "1", "model.onnx"), "rb") as a, \
                    open(path, "rb") as b:
                assert a.read() == b.read(), "the repository's model.onnx differs"
            held = encoders(model_json)
            assert expect is None or held == expect, f"the encoders are {held}, expected {expect}"
            return detail + f"; {held}; {len(graph.node)} nodes, opset {onnx.load(path).opset_import[0].version}"

    check(f"onnxruntime {name}", body)


case("iris", "iris.csv", [])
case("penguins (categories, missing values)", "penguins.csv",
     ["--label", "species", "--ignore", "year", "--epochs", "100"],
     config='[model]\nactivation = "gelu"\n')
case("diabetes (regression)", "diabetes.csv",
     ["--label", "target", "--epochs", "100", "--hidden", "16,8"],
     config='[model]\nactivation = "tanh"\n')


def made(tmp):
    path = os.path.join(tmp, "made.csv")
    made_table(path, 1500, seed=1)
    return path


def made_unseen(tmp):
    path = os.path.join(tmp, "made-unseen.csv")
    made_table(path, 400, seed=2, unseen=True)
    return path


case("a 150-level category, blanks everywhere, unseen levels (robust scaling)", made,
     ["--label", "outcome", "--epochs", "60"], predict_on=made_unseen,
     config='[preprocess]\nmax_categories = 40\nmissing_indicators = true\nscaling = "robust"\n',
     expect="numeric+missing, categorical 40+missing+other, categorical 3+missing, boolean")



def readme_snippet():
    out, answer = harness.readme_snippet(README, "onnxruntime")
    label, probabilities = out.split(" ", 1)
    assert label == answer["species"], f"the snippet printed {out}, predict says {answer}"
    printed = json.loads(probabilities)
    expected = list(answer["probabilities"].values())
    worst = max(abs(a - b) for a, b in zip(printed, expected))
    # Rounded to 4 decimals by the snippet.
    assert worst <= 0.5e-4 + TOLERANCE, f"the snippet printed {out}, predict says {answer}"
    return f"prints {out.strip()}"


check("README onnxruntime snippet", readme_snippet)

finish()
