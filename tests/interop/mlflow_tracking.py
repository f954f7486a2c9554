"""`iris-trainer` training runs tracked in a real MLflow tracking server, read back with MLflow's
own Python client (`MlflowClient`).

Starts `mlflow server` on loopback (sqlite backend, artifacts proxied by the server into a temp
dir), then checks:
- a training run: its experiment, name, status FINISHED, params (the resolved config), per-epoch
  metric history equal to `metrics.csv`, tags (version, backend, device, data SHA-256, source),
  and the model directory as artifacts, which `predict` can use once downloaded;
- MLFLOW_TRACKING_URI / MLFLOW_EXPERIMENT_NAME from the environment, and MLflow's default
  experiment when none is named;
- a local sweep: one parent run, a child run per point (`mlflow.parentRunId`), the report;
- a run stopped by SIGTERM ends KILLED (exit 143), and leaves no model;
- an unreachable tracking URI fails before training (exit 9), naming the URI;
- the model registry: `--register-model NAME` registers the run's MLflow model (MLmodel with the
  onnx and python_function flavors) as version 1, then 2; `mlflow.pyfunc.load_model("models:/
  NAME/1")` answers as `predict` does (labels, and probabilities with predict_proba), and so do
  `mlflow.onnx.load_model`, an exported MLflow model of penguins and of diabetes, and `mlflow
  models serve --env-manager local` on /invocations; a name the registry refuses is exit 10 with
  the model kept, and --register-model without a tracking server is refused before training;
- the server going away mid-run: one warning, training finishes, the model is saved, and its
  registration fails with exit 10.

- the README's tracking example (its `train` command and its Python), run as written.

Usage: python mlflow_tracking.py BINARY README   (scripts/mlflow-test.sh sets up the venv).
Ends with a line `interop: N passed, N failed`; exits 1 if anything failed.
"""

import ast
import csv
import json
import math
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

import mlflow
import mlflow.onnx
import numpy
import pandas
from mlflow.tracking import MlflowClient

BIN, README = sys.argv[1], sys.argv[2]
results = {"passed": 0, "failed": 0}


def check(name):
    """Runs a check, counting and reporting it; a failure does not stop the others."""

    def run(fn):
        start = time.monotonic()
        try:
            fn()
            results["passed"] += 1
            print(f"ok    {name} ({time.monotonic() - start:.1f}s)", flush=True)
        except Exception:  # noqa: BLE001 - every failure is reported, then counted
            results["failed"] += 1
            print(f"FAIL  {name}\n{traceback.format_exc()}", flush=True)
        return fn

    return run


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TMP = tempfile.mkdtemp(prefix="iris-mlflow-")
PORT = free_port()
URI = f"http://127.0.0.1:{PORT}"
# The trainer sees only what each check gives it.
BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


def trainer(*args, env=None, **kw):
    """Runs the binary; returns the CompletedProcess."""
    return subprocess.run(
        [BIN, *args], env={**BASE_ENV, **(env or {})}, capture_output=True, text=True,
        timeout=300, **kw,
    )


t0 = time.monotonic()
server = subprocess.Popen(
    [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(PORT),
     "--workers", "1",
     "--backend-store-uri", f"sqlite:///{TMP}/mlflow.db",
     "--artifacts-destination", f"{TMP}/artifacts", "--serve-artifacts"],
    stdout=open(f"{TMP}/server.log", "w"), stderr=subprocess.STDOUT,
    env=BASE_ENV, start_new_session=True,
)
for _ in range(600):
    try:
        with urllib.request.urlopen(URI + "/health", timeout=2) as r:
            if r.status == 200:
                break
    except OSError:
        pass
    if server.poll() is not None:
        sys.exit(f"mlflow server exited:\n{open(f'{TMP}/server.log').read()}")
    time.sleep(0.2)
else:
    sys.exit(f"mlflow server did not answer /health:\n{open(f'{TMP}/server.log').read()}")
print(f"mlflow {mlflow.__version__} server up at {URI} in {time.monotonic() - t0:.1f}s", flush=True)

client = MlflowClient(tracking_uri=URI)


def runs_named(experiment, name):
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r}"
    return client.search_runs(
        [exp.experiment_id], filter_string=f"tags.`mlflow.runName` = '{name}'"
    )


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def model_files(d):
    out = set()
    for root, dirs, files in os.walk(d):
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        for f in files:
            if not f.startswith("."):
                out.add(os.path.relpath(os.path.join(root, f), d))
    return out


def artifact_files(run_id, path=None):
    out = set()
    for a in client.list_artifacts(run_id, path):
        if a.is_dir:
            out |= artifact_files(run_id, a.path)
        else:
            out.add(a.path)
    return out


MODEL = f"{TMP}/model"
EPOCHS = 40


@check("a training run: experiment, name, status, params, tags")
def _():
    p = trainer("train", "--epochs", str(EPOCHS), "--out", MODEL, "--tracking-uri", URI,
                "--experiment", "iris-ci", "--run-name", "ci-train")
    assert p.returncode == 0, p.stderr
    assert f"tracking in MLflow at {URI}" in p.stderr, p.stderr
    runs = runs_named("iris-ci", "ci-train")
    assert len(runs) == 1, runs
    run = runs[0]
    assert run.info.status == "FINISHED", run.info.status
    assert run.info.end_time >= run.info.start_time
    meta = json.load(open(f"{MODEL}/model.json"))
    params = run.data.params
    assert params["training.epochs"] == str(EPOCHS), params
    assert params["model.hidden"] == json.dumps(meta["config"]["model"]["hidden"]).replace(" ", "")
    assert float(params["training.learning_rate"]) == meta["config"]["training"]["learning_rate"]
    assert params["output.dir"] == MODEL
    assert (params["recipe.name"], params["recipe.version"]) == (
        meta["recipe"]["name"], str(meta["recipe"]["version"])), params
    tags = run.data.tags
    assert tags["iris_trainer.data_sha256"] == meta["data"]["sha256"], tags
    assert tags["iris_trainer.backend"] == meta["device"]["backend"], tags
    assert meta["device"]["name"] in tags["iris_trainer.device"], tags
    assert tags["iris_trainer.version"] in meta["created_by"], tags
    assert tags["mlflow.source.name"] == "iris-trainer", tags
    assert tags["mlflow.runName"] == "ci-train", tags


@check("the run's metric history is metrics.csv, one step per epoch")
def _():
    run = runs_named("iris-ci", "ci-train")[0]
    rows = read_csv(f"{MODEL}/metrics.csv")
    assert len(rows) == EPOCHS
    for key in ["train_loss", "train_accuracy", "test_loss", "test_accuracy"]:
        history = sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)
        assert [m.step for m in history] == [int(r["epoch"]) for r in rows], key
        for m, r in zip(history, rows):
            assert math.isclose(m.value, float(r[key]), rel_tol=1e-12), (key, m, r)
    meta = json.load(open(f"{MODEL}/model.json"))
    final = run.data.metrics
    test = meta["metrics"]["test"]
    assert math.isclose(final["final_test_accuracy"], test["accuracy"], rel_tol=1e-12), final


@check("the model directory is the run's artifacts, and predicts once downloaded")
def _():
    run = runs_named("iris-ci", "ci-train")[0]
    files = model_files(MODEL)
    assert {"model.json", "model.mpk", "metrics.csv"} <= files, files
    # And the MLflow model of it under model/ (see the registry checks below).
    logged = artifact_files(run.info.run_id)
    assert {f for f in logged if not f.startswith("model/")} == files, logged
    assert "model/MLmodel" in logged, logged
    assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri
    got = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, tracking_uri=URI, dst_path=f"{TMP}/downloaded-ci"
    )
    for f in files:
        assert open(os.path.join(got, f), "rb").read() == open(os.path.join(MODEL, f), "rb").read(), f
    row = ["6.0", "2.9", "4.5", "1.5"]
    here = trainer("predict", "--model", MODEL, "--format", "json", *row)
    there = trainer("predict", "--model", got, "--format", "json", *row)
    assert here.returncode == 0 and there.returncode == 0, there.stderr
    assert here.stdout == there.stdout, (here.stdout, there.stdout)


@check("MLFLOW_TRACKING_URI and MLFLOW_EXPERIMENT_NAME from the environment")
def _():
    p = trainer("train", "--epochs", "5", "--out", f"{TMP}/env-model",
                env={"MLFLOW_TRACKING_URI": URI, "MLFLOW_EXPERIMENT_NAME": "iris-env"})
    assert p.returncode == 0, p.stderr
    runs = runs_named("iris-env", "env-model")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED", runs
    assert len(client.get_metric_history(runs[0].info.run_id, "train_loss")) == 5


@check("no experiment named: MLflow's default experiment")
def _():
    p = trainer("train", "--epochs", "3", "--out", f"{TMP}/default-exp", "--tracking-uri", URI)
    assert p.returncode == 0, p.stderr
    runs = runs_named("Default", "default-exp")
    assert len(runs) == 1 and runs[0].info.experiment_id == "0", runs


@check("a sweep: one parent run, a child run per point")
def _():
    sweep = f"{TMP}/lr.toml"
    with open(sweep, "w") as f:
        f.write('[grid]\n"training.learning_rate" = [0.01, 0.03]\n')
    p = trainer("sweep", "--sweep", sweep, "--out", f"{TMP}/sweep", "--epochs", "10",
                "--jobs", "2", "--tracking-uri", URI, "--experiment", "iris-sweep")
    assert p.returncode == 0, p.stderr
    parents = runs_named("iris-sweep", "sweep lr")
    assert len(parents) == 1, parents
    parent = parents[0]
    assert parent.info.status == "FINISHED", parent.info.status
    assert parent.data.params["sweep.points"] == "2", parent.data.params
    assert {"sweep-report.md", "sweep-report.csv", "sweep-report.json"} <= artifact_files(parent.info.run_id)
    report = json.load(open(f"{TMP}/sweep/sweep-report.json"))
    best = report["rows"][0]
    assert math.isclose(parent.data.metrics["best_test_accuracy"], best["test"]["accuracy"])
    assert math.isclose(parent.data.metrics["best_" + report["ranked_by"]], best["score"])
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
    )
    assert len(children) == 2, children
    names = sorted(c.data.tags["mlflow.runName"] for c in children)
    assert names == ["point-000", "point-001"], names
    assert sorted(float(c.data.params["training.learning_rate"]) for c in children) == [0.01, 0.03]
    for c in children:
        assert c.info.status == "FINISHED", c.info.status
        assert len(client.get_metric_history(c.info.run_id, "test_loss")) == 10
        assert "model.json" in artifact_files(c.info.run_id)


def start_long_run(out, name, epochs, *extra):
    """A training run; returns it once its run is on the server with metrics."""
    proc = subprocess.Popen(
        [BIN, "train", "--epochs", str(epochs), "--out", out, "--tracking-uri", URI,
         "--experiment", "iris-ci", "--run-name", name, *extra],
        env=BASE_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = runs_named("iris-ci", name)
        if runs and client.get_metric_history(runs[0].info.run_id, "train_loss"):
            return proc, runs[0].info.run_id
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the run never showed metrics")


@check("the README's tracking example runs as written")
def _():
    text = open(README).read()
    section = text[text.index("## Experiment tracking (MLflow)"):]
    section = section[: section.index("\n## ", 1)]
    sh, py = re.findall(r"```(?:sh|python)\n(.*?)```", section, re.S)[:2]
    readme_uri = "http://127.0.0.1:5001"
    train = next(line for line in sh.splitlines() if line.startswith("iris-trainer train"))
    args = shlex.split(train)[1:]
    args[args.index("--out") + 1] = f"{TMP}/readme-model"
    p = trainer(*args, env={"MLFLOW_TRACKING_URI": URI})
    assert p.returncode == 0, p.stderr
    assert readme_uri in py
    p = subprocess.run([sys.executable, "-c", py.replace(readme_uri, URI)], cwd=TMP,
                       env=BASE_ENV, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("FINISHED 0.01 "), p.stdout
    assert os.path.exists(f"{TMP}/downloaded/model.json")
    q = trainer("predict", "--model", f"{TMP}/downloaded", "5.1", "3.5", "1.4", "0.2")
    assert q.returncode == 0 and q.stdout.startswith("setosa"), q


@check("SIGTERM: exit 143, the run KILLED, no model")
def _():
    out = f"{TMP}/killed"
    proc, run_id = start_long_run(out, "ci-killed", 2_000_000)
    assert client.get_run(run_id).info.status == "RUNNING"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, (proc.returncode, err)
    assert "SIGTERM" in err, err
    assert client.get_run(run_id).info.status == "KILLED"
    assert not os.path.exists(f"{out}/model.json")


@check("SIGTERM to a sweep: its parent run KILLED (exit 143); its points, stopped too, KILLED")
def _():
    sweep = f"{TMP}/long.toml"
    with open(sweep, "w") as f:
        f.write('[grid]\n"training.seed" = [1, 2]\n')
    proc = subprocess.Popen(
        [BIN, "sweep", "--sweep", sweep, "--out", f"{TMP}/long-sweep", "--epochs", "2000000",
         "--jobs", "2", "--tracking-uri", URI, "--experiment", "iris-sweep-killed"],
        env=BASE_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        children = []
        while len(children) < 2:
            assert time.monotonic() < deadline, "the points' runs never showed metrics"
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
            exp = client.get_experiment_by_name("iris-sweep-killed")
            if exp is None:
                continue
            children = [
                r for r in client.search_runs([exp.experiment_id])
                if "mlflow.parentRunId" in r.data.tags
                and client.get_metric_history(r.info.run_id, "train_loss")
            ]
        parent_id = children[0].data.tags["mlflow.parentRunId"]
        # Only the sweep is signalled: it must stop its points itself and wait for them.
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 143, (proc.returncode, err)
        assert client.get_run(parent_id).info.status == "KILLED"
        try:
            os.killpg(proc.pid, 0)
            survivors = True
        except ProcessLookupError:
            survivors = False
        assert not survivors, "a point outlived the sweep that started it"
    finally:
        # The points share the sweep's process group: whatever is left of it after a failed
        # check is stopped, as a terminal would.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 60
    while any(client.get_run(c.info.run_id).info.status == "RUNNING" for c in children):
        assert time.monotonic() < deadline, "a point's run is still RUNNING"
        time.sleep(0.2)
    assert [client.get_run(c.info.run_id).info.status for c in children] == ["KILLED", "KILLED"]


@check("an unreachable tracking URI fails before training, naming it")
def _():
    dead = f"http://127.0.0.1:{free_port()}"
    out = f"{TMP}/unreachable"
    start = time.monotonic()
    p = trainer("train", "--epochs", "5", "--out", out, "--tracking-uri", dead)
    assert p.returncode == 9, (p.returncode, p.stderr)
    assert dead in p.stderr and "nothing was trained" in p.stderr, p.stderr
    assert not os.path.exists(f"{out}/model.json")
    assert time.monotonic() - start < 20


def predictions(model_dir, csv_path):
    """`iris-trainer predict --format json` on a file: labels, probabilities (class order)."""
    p = trainer("predict", "--quiet", "--model", model_dir, "--input", csv_path, "--format", "json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["predictions"]


def same_answers(model_dir, pyfunc_model, csv_path):
    """The pyfunc model's labels (or values) and probabilities against `predict`'s, on every
    row of `csv_path` read by pandas; returns the largest probability (or relative value)
    difference."""
    meta = json.load(open(f"{model_dir}/model.json"))
    # The feature columns only, as a user would send them (MLflow warns about others).
    frame = pandas.read_csv(csv_path)[meta["features"]]
    ours = predictions(model_dir, csv_path)
    assert len(ours) == len(frame)
    answers = pyfunc_model.predict(frame)
    if meta["task"] == "regression":
        values = numpy.array([a["value"] for a in ours], dtype=numpy.float64)
        theirs = numpy.asarray(answers, dtype=numpy.float64)
        worst = float((numpy.abs(theirs - values) / numpy.maximum(1.0, numpy.abs(values))).max())
        assert worst < 1e-5, worst
        return worst
    assert list(answers) == [a["species"] for a in ours]
    probs = pyfunc_model.predict(frame, params={"predict_method": "predict_proba"})
    assert list(probs.columns) == meta["classes"], list(probs.columns)
    mine = numpy.array([[a["probabilities"][c] for c in meta["classes"]] for a in ours])
    worst = float(numpy.abs(probs.to_numpy() - mine).max())
    assert worst < 1e-5, worst
    return worst


REGISTERED = "iris"
README_URI = "http://127.0.0.1:5001"


def registry_section():
    """The README's "MLflow model registry" commands: the shell lines (comments dropped) and the
    Python block."""
    text = open(README).read()
    section = text[text.index("### MLflow model registry"):]
    section = section[: section.index("\n### ", 1)]
    sh, py = re.findall(r"```(?:sh|python)\n(.*?)```", section, re.S)[:2]
    lines = [line for line in sh.splitlines() if line.strip() and not line.startswith("#")]
    return lines, py


@check("--register-model: version 1 in the registry, loaded by mlflow.pyfunc and mlflow.onnx, "
       "answers equal to predict's; a second run is version 2")
def _():
    # The README's command as written, but for the server's address and the model directory.
    out = f"{TMP}/registered"
    lines, _ = registry_section()
    args = shlex.split(next(line for line in lines if line.startswith("iris-trainer train")))[1:]
    args[args.index("--out") + 1] = out
    args[args.index("--tracking-uri") + 1] = URI
    assert args[args.index("--register-model") + 1] == REGISTERED, args
    p = trainer(*args, "--run-name", "registered")
    assert p.returncode == 0, p.stderr
    assert f"registered models:/{REGISTERED}/1 as version 1" in p.stdout, p.stdout
    (run,) = runs_named(args[args.index("--experiment") + 1], "registered")
    version = client.get_model_version(REGISTERED, "1")
    assert version.run_id == run.info.run_id, version
    assert version.source == run.info.artifact_uri + "/model", version.source
    logged = artifact_files(run.info.run_id, "model")
    for f in ["MLmodel", "model.onnx", "code/iris_trainer_pyfunc.py", "input_example.json",
              "serving_input_example.json", "requirements.txt", "python_env.yaml", "conda.yaml"]:
        assert f"model/{f}" in logged, (f, logged)
    mlflow.set_tracking_uri(URI)
    model = mlflow.pyfunc.load_model(f"models:/{REGISTERED}/1")
    meta = json.load(open(f"{out}/model.json"))
    assert model.metadata.get_input_schema().input_names() == meta["features"]
    assert model.metadata.run_id == run.info.run_id
    worst = same_answers(out, model, "data/iris.csv")
    graph = mlflow.onnx.load_model(f"models:/{REGISTERED}/1")
    assert [o.name for o in graph.graph.output] == ["label", "probabilities"]
    # MLflow's own reading of the input example: the signature accepts it, the model answers.
    example = model.metadata.load_input_example(mlflow.artifacts.download_artifacts(
        f"models:/{REGISTERED}/1"))
    assert len(model.predict(example)) == 2
    p = trainer("train", "--quiet", "--epochs", "5", "--out", f"{TMP}/registered-2",
                "--tracking-uri", URI, "--register-model", REGISTERED)
    assert p.returncode == 0, p.stderr
    assert client.get_model_version(REGISTERED, "2").run_id != run.info.run_id
    print(f"      largest probability difference {worst:.1e}")


@check("export --format mlflow: penguins (categories, blanks) and diabetes (regression) "
       "through mlflow.pyfunc equal predict's answers")
def _():
    for name, flags in [("penguins", ["--label", "species", "--ignore", "year"]),
                        ("diabetes", ["--label", "target"])]:
        out = f"{TMP}/export-{name}"
        p = trainer("train", "--quiet", "--epochs", "30", "--data", f"data/{name}.csv", *flags,
                    "--out", out)
        assert p.returncode == 0, p.stderr
        p = trainer("export", "--quiet", "--model", out, "--format", "mlflow",
                    "--output", f"{out}-mlflow")
        assert p.returncode == 0, p.stderr
        worst = same_answers(out, mlflow.pyfunc.load_model(f"{out}-mlflow"), f"data/{name}.csv")
        print(f"      {name}: largest difference {worst:.1e}")


@check("the README's registry example (mlflow models serve --env-manager local, curl, "
       "mlflow.pyfunc) answers as predict does, and /invocations on every row")
def _():
    lines, py = registry_section()
    serve_args = shlex.split(next(line for line in lines if line.startswith("mlflow models serve")))
    readme_port = serve_args[serve_args.index("--port") + 1]
    port = str(free_port())
    serve_args[serve_args.index("--port") + 1] = port
    # `mlflow models serve` starts `uvicorn` by name: the venv's bin first, as once activated.
    path = os.path.dirname(sys.executable) + os.pathsep + BASE_ENV.get("PATH", "")
    serve = subprocess.Popen(
        [sys.executable, "-m", *serve_args],
        env={**BASE_ENV, "MLFLOW_TRACKING_URI": URI, "PATH": path},
        stdout=open(f"{TMP}/serve.log", "w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert serve.poll() is None, open(f"{TMP}/serve.log").read()
            assert time.monotonic() < deadline, open(f"{TMP}/serve.log").read()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        frame = pandas.read_csv("data/iris.csv").drop(columns=["species"])

        def invoke(body):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/invocations", data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as r:
                return json.load(r)["predictions"]

        flower = trainer("predict", "--quiet", "--model", f"{TMP}/registered", "--format", "json",
                         "6.0", "2.7", "5.1", "1.6")
        assert flower.returncode == 0, flower.stderr
        flower = json.loads(flower.stdout)["predictions"][0]
        curl = next(line for line in lines if line.startswith("curl "))
        answer = subprocess.run(curl.replace(f":{readme_port}/", f":{port}/"), shell=True,
                                capture_output=True, text=True, timeout=60)
        assert json.loads(answer.stdout) == {"predictions": [flower["species"]]}, answer
        printed = subprocess.run([sys.executable, "-c", py.replace(README_URI, URI)], cwd=TMP,
                                 env=BASE_ENV, capture_output=True, text=True, timeout=120)
        assert printed.returncode == 0, printed.stderr
        label, probs = printed.stdout.splitlines()[-2:]
        assert label == flower["species"], printed.stdout
        printed_probs = ast.literal_eval(probs)
        assert printed_probs.keys() == flower["probabilities"].keys(), (probs, flower)
        # Rounded to 4 places: within half a unit of the last place (and float noise).
        assert all(abs(printed_probs[c] - p) <= 0.5e-4 + 1e-6
                   for c, p in flower["probabilities"].items()), (probs, flower)
        split = json.loads(frame.to_json(orient="split", index=False))
        ours = predictions(f"{TMP}/registered", "data/iris.csv")
        assert invoke({"dataframe_split": split}) == [a["species"] for a in ours]
        probs = invoke({"dataframe_split": split, "params": {"predict_method": "predict_proba"}})
        worst = max(abs(row[c] - a["probabilities"][c]) for row, a in zip(probs, ours)
                    for c in a["probabilities"])
        assert worst < 1e-5, worst
    finally:
        try:
            os.killpg(serve.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        serve.wait(timeout=30)


@check("--register-model with a name the registry refuses: exit 10, the model saved and logged")
def _():
    out = f"{TMP}/refused-name"
    p = trainer("train", "--epochs", "5", "--out", out, "--tracking-uri", URI,
                "--experiment", "iris-registry", "--run-name", "refused",
                "--register-model", "team/iris")
    assert p.returncode == 10, (p.returncode, p.stderr)
    assert "registering it as \"team/iris\"" in p.stderr and "trained and saved" in p.stderr, \
        p.stderr
    assert "trained" in p.stdout, p.stdout
    (run,) = runs_named("iris-registry", "refused")
    assert run.info.status == "FINISHED"
    assert "model/MLmodel" in artifact_files(run.info.run_id, "model")
    q = trainer("predict", "--model", out, "5.1", "3.5", "1.4", "0.2")
    assert q.returncode == 0 and q.stdout.startswith("setosa"), q


@check("--register-model is refused before training without a tracking server (exit 3)")
def _():
    out = f"{TMP}/untracked-register"
    p = trainer("train", "--epochs", "5", "--out", out, "--register-model", "iris")
    assert p.returncode == 3, (p.returncode, p.stderr)
    assert "--register-model" in p.stderr and "--tracking-uri" in p.stderr, p.stderr
    assert not os.path.exists(f"{out}/model.json")


# Last: it stops the server.
@check("the server gone mid-run: one warning, training finishes, the model is saved; its "
       "registration fails with exit 10")
def _():
    out = f"{TMP}/orphan"
    # About 10 s of training at this binary's speed (a debug build is a hundred times slower
    # than a release build), so the server is gone long before the end.
    start = time.monotonic()
    p = trainer("train", "--quiet", "--epochs", "1000", "--out", f"{TMP}/timing")
    assert p.returncode == 0, p.stderr
    epochs = max(1000, int(1000 * 10 / (time.monotonic() - start)))
    proc, _ = start_long_run(out, "ci-orphan", epochs, "--register-model", "iris-orphan")
    os.killpg(server.pid, signal.SIGKILL)
    server.wait()
    assert proc.poll() is None, "the run ended before the server was stopped: make it longer"
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 10, (proc.returncode, err)
    assert err.count("warning: MLflow tracking") == 1, err
    assert URI in err and "model is saved" in err, err
    assert "registering it as \"iris-orphan\"" in err, err
    meta = json.load(open(f"{out}/model.json"))
    assert meta["metrics"]["epochs_run"] == epochs


print(f"mlflow checks took {time.monotonic() - t0:.1f}s")
try:
    os.killpg(server.pid, signal.SIGTERM)
except ProcessLookupError:
    pass
print(f"interop: {results['passed']} passed, {results['failed']} failed")
sys.exit(1 if results["failed"] else 0)
