#!/usr/bin/env python3
"""Renders every kustomization with `kubectl kustomize` and checks what a cluster will get:
images, probes, security contexts, volumes, the GPU request and the sweep's index wiring.

Run by scripts/k8s-check.sh (which also validates the output against the Kubernetes schemas).
"""
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
IMAGE = "registry.example.com/ml/iris-trainer"
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL: {what}")


def render(overlay):
    out = subprocess.run(["kubectl", "kustomize", str(HERE / overlay)], check=True, capture_output=True,
                         text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def by_kind(docs, kind, name):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name)]
    check(len(found) == 1, f"one {kind} {name}, found {len(found)}")
    return found[0] if found else {}


def pod_checks(pod, what, writes_models):
    sc = pod.get("securityContext", {})
    check(sc.get("runAsNonRoot") is True, f"{what}: runAsNonRoot")
    check(sc.get("runAsUser") == 65532, f"{what}: runAsUser 65532 (the image's user)")
    check(sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{what}: seccomp RuntimeDefault")
    for c in pod["containers"]:
        csc = c.get("securityContext", {})
        check(csc.get("readOnlyRootFilesystem") is True, f"{what}/{c['name']}: read-only root filesystem")
        check(csc.get("allowPrivilegeEscalation") is False, f"{what}/{c['name']}: no privilege escalation")
        check(csc.get("capabilities", {}).get("drop") == ["ALL"], f"{what}/{c['name']}: drops all capabilities")
        res = c.get("resources", {})
        check("requests" in res and "limits" in res, f"{what}/{c['name']}: requests and limits")
        check(c["image"].startswith(IMAGE + ":") and not c["image"].endswith(":latest"),
              f"{what}/{c['name']}: image {c['image']} is the registry image with a version tag")
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
        check("/models" in mounts, f"{what}/{c['name']}: mounts /models")
        if "/models" in mounts:
            check(mounts["/models"].get("readOnly", False) is not writes_models,
                  f"{what}/{c['name']}: /models is {'writable' if writes_models else 'read-only'}")
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod.get("volumes", []) if "persistentVolumeClaim" in v]
    check(claims == ["iris-trainer-models"], f"{what}: uses the models PVC")


# Base: training Job, serving Deployment and Service, PVC, ConfigMap.
base = render("base")
kinds = sorted(d["kind"] for d in base)
check(kinds == ["ConfigMap", "Deployment", "Job", "PersistentVolumeClaim", "Service"], f"base kinds {kinds}")
cm = by_kind(base, "ConfigMap", "iris-trainer-config")
check(cm.get("data", {}).get("mlp.toml") == (ROOT / "configs" / "mlp.toml").read_text(),
      "the ConfigMap's mlp.toml equals configs/mlp.toml")
check(cm.get("data", {}).get("sweep.toml") == (ROOT / "configs" / "sweep.toml").read_text(),
      "the ConfigMap's sweep.toml equals configs/sweep.toml")
job = by_kind(base, "Job", "iris-trainer-train")
pod = job["spec"]["template"]["spec"]
pod_checks(pod, "train Job", writes_models=True)
args = pod["containers"][0]["args"]
check(args[:1] == ["train"] and "/models/current" in args, f"train Job args {args}")
# Preemption: the pod checkpoints, a restarted pod (same args) resumes, evictions are not failures.
check("--checkpoint-every" in args and int(args[args.index("--checkpoint-every") + 1]) >= 1,
      f"train Job checkpoints (--checkpoint-every N): {args}")
check(pod.get("terminationGracePeriodSeconds", 30) >= 30, "train Job gives SIGTERM time to checkpoint")
rules = job["spec"].get("podFailurePolicy", {}).get("rules", [])
check(any(r["action"] == "Ignore" and {"type": "DisruptionTarget", "status": "True"} in r.get("onPodConditions", [])
          for r in rules), "evicted/preempted training pods are replaced, not counted as failures")
check(pod.get("restartPolicy") == "Never", "podFailurePolicy needs restartPolicy: Never")
config_vol = [v for v in pod["volumes"] if "configMap" in v][0]["configMap"]["name"]
check(config_vol == cm["metadata"]["name"], "the Job mounts the generated ConfigMap (hashed name)")
dep = by_kind(base, "Deployment", "iris-trainer-serve")
pod = dep["spec"]["template"]["spec"]
pod_checks(pod, "serve Deployment", writes_models=False)
c = pod["containers"][0]
check(c["args"][:1] == ["serve"], "the Deployment serves")
for probe in ("livenessProbe", "readinessProbe"):
    check(c.get(probe, {}).get("httpGet", {}).get("path") == "/health", f"{probe} on /health")
    check(c.get(probe, {}).get("httpGet", {}).get("port") == "http", f"{probe} on the http port")
check(c["ports"] == [{"name": "http", "containerPort": 5000}], "container port 5000")
svc = by_kind(base, "Service", "iris-trainer")
check(svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"], "the Service selects the Deployment's pods")
check(svc["spec"]["ports"][0]["targetPort"] == "http", "the Service targets the http port")

# GPU overlay: only the training Job changes.
gpu = render("overlays/gpu")
job = by_kind(gpu, "Job", "iris-trainer-train")
c = job["spec"]["template"]["spec"]["containers"][0]
check(c["image"] == f"{IMAGE}:0.1.0-gpu", f"GPU Job image {c['image']}")
check(c["resources"]["limits"].get("nvidia.com/gpu") == 1, "GPU Job requests nvidia.com/gpu: 1")
env = {e["name"]: e["value"] for e in c.get("env", [])}
check(env.get("NVIDIA_DRIVER_CAPABILITIES") == "compute,utility,graphics", "GPU Job asks for graphics")
check(env.get("IRIS_TRAINER_REQUIRE_GPU") == "1", "GPU Job requires a GPU")
pod_checks(job["spec"]["template"]["spec"], "GPU train Job", writes_models=True)
dep = by_kind(gpu, "Deployment", "iris-trainer-serve")
check(dep["spec"]["template"]["spec"]["containers"][0]["image"] == f"{IMAGE}:0.1.0", "serving stays on the CPU image")

# Sweep overlay: an Indexed Job with one completion per point.
sweep = render("overlays/sweep")
job = by_kind(sweep, "Job", "iris-trainer-sweep")
spec = job["spec"]
check(spec.get("completionMode") == "Indexed", "the sweep Job is Indexed (sets JOB_COMPLETION_INDEX)")
s = tomllib.loads((ROOT / "configs" / "sweep.toml").read_text())
points = 1
for values in s.get("grid", {}).values():
    points *= len(values)
points = (points if s.get("grid") else 0) + len(s.get("points", []))
check(spec.get("completions") == points, f"completions {spec.get('completions')} == {points} sweep points")
pod = spec["template"]["spec"]
pod_checks(pod, "sweep Job", writes_models=True)
args = pod["containers"][0]["args"]
check("--sweep" in args and args[args.index("--sweep") + 1] == "/config/sweep.toml", f"sweep args {args}")
check("--sweep-index" not in args, "the index comes from JOB_COMPLETION_INDEX, not a fixed flag")
# Model selection: each point's pod cross-validates on folds of the training split, so the
# report ranks on mean CV scores (never on the test split).
check("--folds" in args and int(args[args.index("--folds") + 1]) >= 2,
      f"each sweep pod cross-validates (--folds K, K >= 2): {args}")
report = render("overlays/sweep-report")
job = by_kind(report, "Job", "iris-trainer-sweep-report")
pod = job["spec"]["template"]["spec"]
pod_checks(pod, "sweep-report Job", writes_models=True)
report_args = pod["containers"][0]["args"]
check(report_args == ["sweep-report", "/models/sweep", "--best", "/models/current"],
      "the report installs the best model where the Deployment reads")
check(not any(a.startswith("test") or "--rank-by=test" in a for a in report_args),
      "the report ranks on validation or CV scores, never on a test metric")

if failures:
    print(f"\n{len(failures)} manifest checks failed", file=sys.stderr)
    sys.exit(1)
print("kubernetes manifests: all checks passed")
