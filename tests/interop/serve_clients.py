"""`iris-trainer serve` against clients it did not write.

- Open Inference Protocol v2: tritonclient's HTTP client (`InferenceServerClient`), with its
  default binary tensor data and with JSON, and the same calls refused for a wrong shape,
  datatype, model name or version.
- MLflow's scoring protocol: bodies built the way MLflow's client builds them
  (`mlflow.utils.proto_json_utils.dump_input_data`: `{"dataframe_split": df.to_dict(orient="split")}`)
  and with pandas for every other format MLflow's scoring server reads, plus CSV from `to_csv`.
- The README's service commands (curl and Python), run as written against a live server.

Every answer is compared with `iris-trainer predict` on the same rows.

Usage: python serve_clients.py BINARY README  (scripts/interop-test.sh sets up the venv).
Ends with a line `interop: N passed, N failed`; exits 1 if anything failed.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import traceback
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

BIN, README = sys.argv[1], sys.argv[2]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROWS = [
    [5.1, 3.5, 1.4, 0.2],
    [4.9, 3.0, 1.4, 0.2],
    [6.0, 2.9, 4.5, 1.5],
    [5.7, 2.8, 4.1, 1.3],
    [6.7, 3.0, 5.2, 2.3],
    [5.9, 3.0, 5.1, 1.8],
]
NAME = "iris"

results = {"passed": 0, "failed": 0}


def check(name):
    """Runs a check, counting and reporting it; a failure does not stop the others."""

    def run(fn):
        try:
            fn()
            results["passed"] += 1
            print(f"ok    {name}")
        except Exception:  # noqa: BLE001 - every failure is reported, then counted
            results["failed"] += 1
            print(f"FAIL  {name}\n{traceback.format_exc()}")
        return fn

    return run


def refused(call, status, needle):
    """`call` raises InferenceServerException with this status and a message naming `needle`."""
    try:
        call()
    except InferenceServerException as e:
        assert e.status() == str(status), (e.status(), e.message())
        assert needle in e.message(), e.message()
        return
    raise AssertionError(f"expected a {status} refusal naming {needle!r}")


def http(path, body=None, content_type=None, method=None):
    """(status, headers, body text) of a plain HTTP request to the server."""
    req = urllib.request.Request(BASE + path, data=body, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def invoke(body, content_type="application/json"):
    """POST /invocations; returns (status, parsed JSON)."""
    data = body if isinstance(body, bytes) else body.encode()
    status, _, text = http("/invocations", data, content_type)
    return status, json.loads(text)


work = tempfile.mkdtemp(prefix="iris-interop-")
model = os.path.join(work, "model")
subprocess.run([BIN, "--quiet", "--out", model], check=True, stdout=subprocess.DEVNULL)

# What `predict` answers for the rows: the reference for every protocol.
csv_rows = "".join(",".join(map(str, r)) + "\n" for r in ROWS)
cli = json.loads(
    subprocess.run(
        [BIN, "predict", "-f", "json", "--input", "-", "-m", model],
        input=csv_rows, capture_output=True, text=True, check=True,
    ).stdout
)["predictions"]
LABELS = [p["species"] for p in cli]
PROBS = np.array([list(p["probabilities"].values()) for p in cli], dtype=np.float32)
assert len(set(LABELS)) == 3, LABELS
VERSION_TEXT = subprocess.run([BIN, "--version"], capture_output=True, text=True, check=True).stdout


def start(*extra):
    """Starts `serve` on a free loopback port; returns (process, base URL)."""
    proc = subprocess.Popen(
        [BIN, "serve", "--quiet", "--addr", "127.0.0.1:0", "--model", model, *extra],
        stderr=subprocess.PIPE, text=True,
    )
    line = proc.stderr.readline()
    m = re.match(r"listening on (http://\S+)", line)
    assert m, f"server did not start: {line!r}"
    return proc, m.group(1)


server, BASE = start("--model-name", NAME)
HOSTPORT = BASE.removeprefix("http://")
client = triton.InferenceServerClient(url=HOSTPORT)
X = np.array(ROWS, dtype=np.float32)


def fp32_input(x, binary=True, name="input"):
    i = triton.InferInput(name, list(x.shape), triton_dtype(x))
    i.set_data_from_numpy(x, binary_data=binary)
    return i


def triton_dtype(x):
    from tritonclient.utils import np_to_triton_dtype

    return np_to_triton_dtype(x.dtype)


def assert_answers(result, rows=slice(None)):
    # BYTES elements: bytes when sent as binary, str when sent as JSON.
    labels = [s.decode() if isinstance(s, bytes) else s for s in result.as_numpy("label")]
    assert labels == LABELS[rows], (labels, LABELS[rows])
    np.testing.assert_array_equal(result.as_numpy("probabilities"), PROBS[rows])


# ---- Open Inference Protocol v2 with tritonclient ----


@check("v2: server live and ready, metadata names the server and the binary extension")
def _():
    assert client.is_server_live()
    assert client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == "iris-trainer" and "binary_tensor_data" in meta["extensions"], meta


VERSION = client.get_model_metadata(NAME)["versions"][0]


@check("v2: model ready by name and by version; unknown name or version not ready")
def _():
    assert client.is_model_ready(NAME)
    assert client.is_model_ready(NAME, model_version=VERSION)
    assert not client.is_model_ready("iris-trainer")
    assert not client.is_model_ready(NAME, model_version="0")


@check("v2: model metadata: input FP32 [-1, 4], outputs label BYTES [-1], probabilities FP32 [-1, 3]")
def _():
    meta = client.get_model_metadata(NAME, model_version=VERSION)
    assert meta["name"] == NAME, meta
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}], meta
    assert meta["outputs"] == [
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
    ], meta


@check("v2: infer, binary tensor data both ways (the client's default), matches predict")
def _():
    result = client.infer(NAME, [fp32_input(X)], request_id="req-1")
    assert result.get_response()["id"] == "req-1"
    assert_answers(result)


@check("v2: infer, JSON tensor data both ways, versioned path, matches predict")
def _():
    outputs = [triton.InferRequestedOutput(n, binary_data=False) for n in ("label", "probabilities")]
    result = client.infer(NAME, [fp32_input(X, binary=False)], model_version=VERSION, outputs=outputs)
    response = result.get_response()
    assert response["model_version"] == VERSION and "id" not in response, response
    assert all("data" in o for o in response["outputs"]), response
    assert_answers(result)


@check("v2: one input per feature ([N, 1] each), FP64, matches predict")
def _():
    inputs = [fp32_input(X[:, [j]].astype(np.float64), name=f) for j, f in enumerate(FEATURES)]
    assert_answers(client.infer(NAME, inputs))


@check("v2: `outputs` picks probabilities only")
def _():
    result = client.infer(NAME, [fp32_input(X[:2])], outputs=[triton.InferRequestedOutput("probabilities")])
    assert result.as_numpy("label") is None
    np.testing.assert_array_equal(result.as_numpy("probabilities"), PROBS[:2])


@check("v2: wrong shape refused with 400")
def _():
    refused(lambda: client.infer(NAME, [fp32_input(X[:, :3])]), 400, "expected [N, 4]")
    refused(lambda: client.infer(NAME, [fp32_input(X.reshape(-1))]), 400, "has shape [24]")


@check("v2: wrong datatype refused with 400")
def _():
    strings = np.array([["5.1"] * 4], dtype=np.object_)
    refused(lambda: client.infer(NAME, [fp32_input(strings)]), 400, "input `input` must be numeric (FP32)")
    refused(lambda: client.infer(NAME, [fp32_input(X > 3)]), 400, "input `input` must be numeric (FP32)")
    refused(lambda: client.infer(NAME, [fp32_input(X.astype(np.float16))]), 400, "datatype FP16 is not accepted")


@check("v2: wrong model name or version refused with 404, wrong input name with 400")
def _():
    refused(lambda: client.infer("iris-trainer", [fp32_input(X)]), 404, "unknown model `iris-trainer`")
    refused(lambda: client.get_model_metadata("nope"), 404, "unknown model `nope`")
    refused(lambda: client.infer(NAME, [fp32_input(X)], model_version="7"), 404, "no version `7`")
    refused(lambda: client.infer(NAME, [fp32_input(X, name="x")]), 400, "unknown input `x`")


# ---- MLflow scoring protocol ----

df = pd.DataFrame(ROWS, columns=FEATURES)
MLFLOW_BODIES = {
    # What MLflow's own client (ScoringServerClient.invoke -> dump_input_data) sends for a DataFrame.
    "dataframe_split (MLflow's client)": json.dumps({"dataframe_split": df.to_dict(orient="split")}),
    "dataframe_split (pandas to_json)": '{"dataframe_split": ' + df.to_json(orient="split") + "}",
    "dataframe_records": json.dumps({"dataframe_records": df.to_dict(orient="records")}),
    "instances (rows)": json.dumps({"instances": df.values.tolist()}),
    "instances (records)": json.dumps({"instances": df.to_dict(orient="records")}),
    "inputs (ndarray.tolist)": json.dumps({"inputs": df.to_numpy().tolist()}),
    "inputs (columns)": json.dumps({"inputs": {c: df[c].tolist() for c in FEATURES}}),
}


@check("mlflow: every JSON format gives predict's labels")
def _():
    for name, body in MLFLOW_BODIES.items():
        status, answer = invoke(body)
        assert (status, answer) == (200, {"predictions": LABELS}), (name, status, answer)


@check("mlflow: text/csv from to_csv (with and without the index) gives predict's labels")
def _():
    for body in (df.to_csv(), df.to_csv(index=False)):
        status, answer = invoke(body, "text/csv")
        assert (status, answer) == (200, {"predictions": LABELS}), (status, answer)


@check("mlflow: extra columns (a label) are ignored; column order does not matter")
def _():
    shuffled = df[FEATURES[::-1]].assign(species="?")
    status, answer = invoke(json.dumps({"dataframe_split": shuffled.to_dict(orient="split")}))
    assert (status, answer) == (200, {"predictions": LABELS}), (status, answer)


@check("mlflow: params predict_method=predict_proba gives predict's probabilities")
def _():
    body = {"dataframe_split": df.to_dict(orient="split"), "params": {"predict_method": "predict_proba"}}
    status, answer = invoke(json.dumps(body))
    assert status == 200, answer
    np.testing.assert_array_equal(np.array(answer["predictions"], dtype=np.float32), PROBS)


@check("mlflow: /ping 200, /version the server's version")
def _():
    status, _, _ = http("/ping")
    assert status == 200
    status, _, text = http("/version")
    assert status == 200 and text in VERSION_TEXT, (text, VERSION_TEXT)


@check("mlflow: bad requests get 4xx with error_code and message")
def _():
    cases = [
        ("{", "application/json", 400, "not valid JSON"),
        (json.dumps({"dataframe_records": [], "instances": []}), "application/json", 400, "exactly one"),
        (json.dumps({"dataframe_split": df.drop(columns="petal_width").to_dict(orient="split")}),
         "application/json", 400, "missing column(s) petal_width"),
        (json.dumps({"instances": df.values.tolist(), "params": {"predict_method": "score"}}),
         "application/json", 400, "predict_method"),
        (df.drop(columns="sepal_width").to_csv(index=False), "text/csv", 400, "no column `sepal_width`"),
        (df.to_csv(), "text/plain", 415, "application/json or text/csv"),
    ]
    for body, ctype, code, needle in cases:
        status, answer = invoke(body, ctype)
        assert status == code, (body[:60], status, answer)
        assert answer["error_code"] == "BAD_REQUEST" and needle in answer["message"], answer


# ---- The README's commands, as written ----


def readme_blocks(language):
    """The code blocks of one language in the README's service section."""
    text = open(README, encoding="utf-8").read()
    section = text.split("## The HTTP service", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


@check("readme: the service section's curl commands answer as shown")
def _():
    readme_server, readme_base = start()  # the default model name, as the README uses
    try:
        blocks = readme_blocks("sh")
        assert blocks, "no sh blocks in the service section"
        for block in blocks:
            script = block.replace("localhost:5000", readme_base.removeprefix("http://"))
            out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True)
            assert out.returncode == 0, (block, out.stderr)
            # Each `# -> ...` comment shows text its command prints.
            for shown in re.findall(r"# -> (.*)", block):
                assert shown.strip() in out.stdout, (shown, out.stdout)
    finally:
        readme_server.terminate()
        readme_server.wait()


@check("readme: the service section's Python runs as shown")
def _():
    readme_server, readme_base = start()
    try:
        blocks = readme_blocks("python")
        assert blocks, "no python blocks in the service section"
        for block in blocks:
            script = block.replace("localhost:5000", readme_base.removeprefix("http://"))
            out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
            assert out.returncode == 0, (block, out.stderr)
            for shown in re.findall(r"# -> (.*)", block):
                assert shown.strip() in out.stdout, (shown, out.stdout)
    finally:
        readme_server.terminate()
        readme_server.wait()


# ---- A table with categories and blanks (penguins) ----

PENGUINS = os.path.join(os.path.dirname(os.path.abspath(README)), "data", "penguins.csv")
penguin_model = os.path.join(work, "penguins")
subprocess.run([BIN, "train", "--quiet", "--data", PENGUINS, "--label", "species", "--ignore", "year",
                "--out", penguin_model], check=True)
PENGUIN_ROWS = pd.DataFrame({
    "island": ["Biscoe", "Dream", "Torgersen"],
    "bill_length_mm": [48.7, np.nan, 39.1],
    "bill_depth_mm": [14.1, 18.4, 18.7],
    "flipper_length_mm": [210.0, 190.0, 181.0],
    "body_mass_g": [4450.0, np.nan, 3750.0],
    "sex": ["female", None, "male"],
})
PENGUIN_LABELS = [p["species"] for p in json.loads(subprocess.run(
    [BIN, "predict", "-f", "json", "--input", "-", "-m", penguin_model],
    input=PENGUIN_ROWS.to_csv(index=False), capture_output=True, text=True, check=True,
).stdout)["predictions"]]


def start_penguins():
    proc = subprocess.Popen([BIN, "serve", "--quiet", "--addr", "127.0.0.1:0", "--model", penguin_model],
                            stderr=subprocess.PIPE, text=True)
    m = re.match(r"listening on (http://\S+)", proc.stderr.readline())
    assert m, "penguins server did not start"
    return proc, m.group(1)


@check("v2 tritonclient: BYTES inputs for categories, binary and JSON, answer as predict does")
def _():
    proc, base = start_penguins()
    try:
        c = triton.InferenceServerClient(url=base.removeprefix("http://"))
        meta = c.get_model_metadata("iris-trainer")
        types = {i["name"]: i["datatype"] for i in meta["inputs"]}
        assert types["island"] == "BYTES" and types["bill_length_mm"] == "FP32", types
        for binary in (True, False):
            inputs = []
            for name in PENGUIN_ROWS.columns:
                col = PENGUIN_ROWS[name]
                if name in ("island", "sex"):
                    x = np.array([v if isinstance(v, str) else "" for v in col], dtype=object)
                    i = triton.InferInput(name, [len(x)], "BYTES")
                elif col.isna().any():
                    # A number that may be missing travels as text; "" is missing.
                    x = np.array(["" if np.isnan(v) else str(float(v)) for v in col], dtype=object)
                    i = triton.InferInput(name, [len(x)], "BYTES")
                else:
                    x = col.to_numpy(dtype=np.float32)
                    i = triton.InferInput(name, [len(x)], "FP32")
                i.set_data_from_numpy(x, binary_data=binary)
                inputs.append(i)
            result = c.infer("iris-trainer", inputs)
            labels = [s.decode() if isinstance(s, bytes) else s for s in result.as_numpy("label")]
            assert labels == PENGUIN_LABELS, (binary, labels, PENGUIN_LABELS)
    finally:
        proc.terminate()
        proc.wait()


@check("mlflow: a DataFrame with strings and NaN answers as predict does")
def _():
    proc, base = start_penguins()
    try:
        body = json.dumps({"dataframe_split": json.loads(PENGUIN_ROWS.to_json(orient="split"))})
        req = urllib.request.Request(base + "/invocations", body.encode(), {"Content-Type": "application/json"})
        answer = json.load(urllib.request.urlopen(req, timeout=30))
        assert answer["predictions"] == PENGUIN_LABELS, answer
        req = urllib.request.Request(base + "/invocations", PENGUIN_ROWS.to_csv().encode(),
                                     {"Content-Type": "text/csv"})
        answer = json.load(urllib.request.urlopen(req, timeout=30))
        assert answer["predictions"] == PENGUIN_LABELS, answer
    finally:
        proc.terminate()
        proc.wait()


@check("readme: the own-table section's Python runs as shown against the penguins model")
def _():
    text = open(README, encoding="utf-8").read()
    section = text.split("## Bring your own table", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "no python blocks in the own-table section"
    proc, base = start_penguins()
    try:
        for block in blocks:
            script = block.replace("localhost:5000", base.removeprefix("http://"))
            out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
            assert out.returncode == 0, (block, out.stderr)
            for shown in re.findall(r"# -> (.*)", block):
                assert shown.strip() in out.stdout, (shown, out.stdout)
    finally:
        proc.terminate()
        proc.wait()


server.terminate()
server.wait()
print(f"interop: {results['passed']} passed, {results['failed']} failed")
sys.exit(1 if results["failed"] else 0)
