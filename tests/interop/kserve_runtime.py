"""The CPU image started exactly as KServe starts a predictor on the iris-trainer runtime
(deploy/kserve/serving-runtime.yaml) for deploy/kserve/inferenceservice.yaml, then queried with
tritonclient over the Open Inference Protocol (v2), as KServe's clients and its v2 router do.

From the manifests, not restated here: the container's image, its arguments with `{{.Name}}`
replaced by the InferenceService's name, its environment, its port, its user and group, the
read-only root filesystem and dropped capabilities; the model directory mounted read-only at
/mnt/models, where KServe's storage initializer puts storageUri. Checked: the readiness probe's
path answers 200, the server and the model (by the InferenceService's name) are ready, the
model's metadata, an inference of two flowers against `iris-trainer predict` on the same model,
the Prometheus annotations' port and path, and a clean shutdown on `docker stop` (SIGTERM, as
the kubelet stops a pod).

Usage: python kserve_runtime.py MODEL_DIR PREDICT_BINARY_CMD...  (scripts/container-test.sh).
Ends with `interop: N passed, N failed`; exits 1 if anything failed.
"""

import json
import os
import subprocess
import sys
import time
import urllib.request

import numpy as np
import tritonclient.http as httpclient
import yaml

import harness
from harness import check

MODEL_DIR = os.path.realpath(sys.argv[1])
# How to run `iris-trainer predict` on MODEL_DIR (the image itself, with the directory mounted).
PREDICT = sys.argv[2:]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
runtime = yaml.safe_load(open(os.path.join(ROOT, "deploy/kserve/serving-runtime.yaml")))
isvc = yaml.safe_load(open(os.path.join(ROOT, "deploy/kserve/inferenceservice.yaml")))
NAME = isvc["metadata"]["name"]
assert isvc["spec"]["predictor"]["model"]["runtime"] == runtime["metadata"]["name"]
(container,) = runtime["spec"]["containers"]
PORT = container["ports"][0]["containerPort"]
security = container["securityContext"]

# Not --rm: its logs are read after it stops.
command = ["docker", "run", "-d", "-p", f"127.0.0.1::{PORT}",
           "-v", f"{MODEL_DIR}:/mnt/models:ro",
           "--user", f"{security['runAsUser']}:{security['runAsGroup']}"]
if security.get("readOnlyRootFilesystem"):
    command.append("--read-only")
if security.get("allowPrivilegeEscalation") is False:
    command += ["--security-opt", "no-new-privileges"]
for cap in security.get("capabilities", {}).get("drop", []):
    command += ["--cap-drop", cap]
for env in container.get("env", []):
    command += ["-e", f"{env['name']}={env['value']}"]
command += [container["image"], *[a.replace("{{.Name}}", NAME) for a in container["args"]]]
print("$ " + " ".join(command), flush=True)
cid = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()

try:
    host = subprocess.run(["docker", "port", cid, f"{PORT}/tcp"], check=True,
                          capture_output=True, text=True).stdout.split()[0]
    base = f"http://{host}"
    probe = container["readinessProbe"]["httpGet"]
    assert probe["port"] == PORT
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(base + probe["path"], timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the runtime's container never got ready:\n" + subprocess.run(
                ["docker", "logs", cid], capture_output=True, text=True).stderr)
        time.sleep(0.2)
    client = httpclient.InferenceServerClient(host)

    def ready():
        assert client.is_server_live() and client.is_server_ready(), "server not ready"
        assert client.is_model_ready(NAME), f"model {NAME} not ready"
        return f"/v2/models/{NAME}"
    check("server live and ready, the model ready under the InferenceService's name", ready)

    def metadata():
        meta = client.get_model_metadata(NAME)
        assert meta["name"] == NAME, meta
        assert [o["name"] for o in meta["outputs"]] == ["label", "probabilities"], meta
        return [(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]]
    check("model metadata", metadata)

    def infer():
        x = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
        inp = httpclient.InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        result = client.infer(NAME, [inp])
        labels = [v.decode() for v in result.as_numpy("label").tolist()]
        probabilities = result.as_numpy("probabilities")
        ours = []
        for row in x.tolist():
            out = subprocess.run([*PREDICT, *map(str, row)], check=True, capture_output=True,
                                 text=True).stdout
            ours.append(json.loads(out)["predictions"][0])
        assert labels == [o["species"] for o in ours], (labels, ours)
        classes = list(ours[0]["probabilities"])
        want = np.array([[o["probabilities"][c] for c in classes] for o in ours])
        worst = float(np.abs(probabilities - want).max())
        assert worst < 1e-6, worst
        return labels
    check("tritonclient inference equals predict's", infer)

    def metrics():
        annotations = runtime["spec"]["annotations"]
        assert int(annotations["prometheus.kserve.io/port"]) == PORT
        with urllib.request.urlopen(base + annotations["prometheus.kserve.io/path"]) as r:
            text = r.read().decode()
        assert "requests_total" in text, text[:300]
        return "Prometheus text at the annotated port and path"
    check("metrics", metrics)

    def stop():
        subprocess.run(["docker", "stop", "-t", "10", cid], check=True, capture_output=True)
        return "SIGTERM, 10 s grace"
    check("docker stop", stop)
finally:
    logs = subprocess.run(["docker", "logs", cid], capture_output=True, text=True)
    subprocess.run(["docker", "rm", "-f", cid], capture_output=True)

def shutdown():
    assert "shut down cleanly" in logs.stderr + logs.stdout, logs.stderr[-500:]
    return "shut down cleanly"
check("graceful shutdown on SIGTERM", shutdown)
harness.finish()
