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
- the server going away mid-run: one warning, training finishes, the model is saved.

- the README's tracking example (its `train` command and its Python), run as written.

Usage: python mlflow_tracking.py BINARY README   (scripts/mlflow-test.sh sets up the venv).
Ends with a line `interop: N passed, N failed`; exits 1 if anything failed.
"""

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
    assert artifact_files(run.info.run_id) == files
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


def start_long_run(out, name, epochs):
    """A training run; returns it once its run is on the server with metrics."""
    proc = subprocess.Popen(
        [BIN, "train", "--epochs", str(epochs), "--out", out, "--tracking-uri", URI,
         "--experiment", "iris-ci", "--run-name", name],
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


# Last: it stops the server.
@check("the server gone mid-run: one warning, training finishes, the model is saved")
def _():
    out = f"{TMP}/orphan"
    # About 10 s of training at this binary's speed (a debug build is a hundred times slower
    # than a release build), so the server is gone long before the end.
    start = time.monotonic()
    p = trainer("train", "--quiet", "--epochs", "1000", "--out", f"{TMP}/timing")
    assert p.returncode == 0, p.stderr
    epochs = max(1000, int(1000 * 10 / (time.monotonic() - start)))
    proc, _ = start_long_run(out, "ci-orphan", epochs)
    os.killpg(server.pid, signal.SIGKILL)
    server.wait()
    assert proc.poll() is None, "the run ended before the server was stopped: make it longer"
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, (proc.returncode, err)
    assert err.count("warning: MLflow tracking") == 1, err
    assert URI in err and "model is saved" in err, err
    meta = json.load(open(f"{out}/model.json"))
    assert meta["metrics"]["epochs_run"] == epochs


print(f"mlflow checks took {time.monotonic() - t0:.1f}s")
try:
    os.killpg(server.pid, signal.SIGTERM)
except ProcessLookupError:
    pass
print(f"interop: {results['passed']} passed, {results['failed']} failed")
sys.exit(1 if results["failed"] else 0)
