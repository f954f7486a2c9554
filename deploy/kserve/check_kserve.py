#!/usr/bin/env python3
"""Checks deploy/kserve/ offline, as a cluster with KServe would take it, and as the runtime
contract asks:

- every manifest validates against KServe's own CRD schemas (crds/, from the kserve repository
  at the release named in crds/SOURCE), strictly: a field the schema does not define is an
  error, as `kubectl apply --validate=strict` makes it;
- the ClusterServingRuntime: protocol v2, its own model format named for every model.json
  format this build reads, the model read from /mnt/models under the InferenceService's name
  ({{.Name}}), port 8080, Prometheus annotations, the image's non-root user, a read-only root
  filesystem, no privilege escalation, all capabilities dropped, requests and limits, and the
  registry image tagged with this crate's version;
- the InferenceServices: one on that runtime and format, one on KServe's Triton runtime with
  the onnx format, both protocol v2 with a storageUri.

Usage: python check_kserve.py [MANIFEST...]  (default: every manifest here). Prints what it
checked; exits 1 on any failure. Run by scripts/k8s-check.sh.
"""
import gzip
import re
import sys
from pathlib import Path

import jsonschema
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
IMAGE = "registry.example.com/ml/iris-trainer"
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL: {what}")


def schemas():
    """(apiVersion, kind) -> openAPIV3Schema, from the vendored CRDs."""
    out = {}
    for path in sorted((HERE / "crds").glob("*.yaml.gz")):
        crd = yaml.safe_load(gzip.open(path, "rt"))
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for v in crd["spec"]["versions"]:
            out[(f"{group}/{v['name']}", kind)] = v["schema"]["openAPIV3Schema"]
    return out


def unknown_fields(value, schema, path):
    """Fields of `value` that `schema` does not define (where it defines its fields)."""
    found = []
    if isinstance(value, dict) and schema.get("type") == "object":
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
        for key, sub in value.items():
            if props is not None and key in props:
                found += unknown_fields(sub, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                found += unknown_fields(sub, extra, f"{path}.{key}")
            elif props is not None and not preserve and extra is not True:
                found.append(f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            found += unknown_fields(item, schema["items"], f"{path}[{i}]")
    return found


def validate(doc, where, known):
    key = (doc.get("apiVersion"), doc.get("kind"))
    schema = known.get(key)
    check(schema is not None, f"{where}: {key} is not a kind of the vendored KServe CRDs")
    if schema is None:
        return
    before = len(failures)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: e.path)
    for e in errors:
        check(False, f"{where}: {'.'.join(map(str, e.path)) or '(root)'}: {e.message}")
    for field in unknown_fields(doc, schema, doc["kind"]):
        check(False, f"{where}: {field} is not a field of {key[1]} ({key[0]})")
    if len(failures) == before:
        print(f"valid against KServe's CRD schema: {where} ({key[1]} {doc['metadata']['name']})")


def readable_versions():
    text = (ROOT / "src/metadata.rs").read_text()
    m = re.search(r"READABLE_VERSIONS: \[u32; \d+\] = \[([^\]]*)\]", text)
    return [v.strip() for v in m.group(1).split(",")]


def crate_version():
    return re.search(r'^version = "([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M).group(1)


def runtime_checks(rt, where):
    before = len(failures)
    spec = rt["spec"]
    check(spec.get("protocolVersions") == ["v2"], f"{where}: protocolVersions [v2]")
    formats = spec.get("supportedModelFormats", [])
    check(sorted(f["version"] for f in formats if f["name"] == "iris-trainer")
          == readable_versions(), f"{where}: an iris-trainer format per readable model.json format")
    check(all(f.get("autoSelect") for f in formats), f"{where}: formats auto-selected")
    ann = spec.get("annotations", {})
    check(ann.get("prometheus.kserve.io/port") == "8080"
          and ann.get("prometheus.kserve.io/path") == "/metrics", f"{where}: Prometheus annotations")
    (c,) = spec["containers"]
    check(c["name"] == "kserve-container", f"{where}: the container is kserve-container")
    check(c["image"] == f"{IMAGE}:{crate_version()}", f"{where}: image {c['image']}")
    args = c.get("args", [])
    check(args[:1] == ["serve"], f"{where}: runs `serve`")
    check(args[args.index("--model") + 1] == "/mnt/models" if "--model" in args else False,
          f"{where}: --model /mnt/models (where KServe puts storageUri)")
    check(args[args.index("--model-name") + 1] == "{{.Name}}" if "--model-name" in args else False,
          f"{where}: --model-name {{{{.Name}}}} (the InferenceService's name)")
    check(args[args.index("--addr") + 1] == "0.0.0.0:8080" if "--addr" in args else False,
          f"{where}: listens on 0.0.0.0:8080")
    check([p["containerPort"] for p in c.get("ports", [])] == [8080], f"{where}: port 8080")
    sc = c.get("securityContext", {})
    check(sc.get("runAsNonRoot") is True and sc.get("runAsUser") == 65532,
          f"{where}: non-root, the image's user 65532")
    check(sc.get("readOnlyRootFilesystem") is True, f"{where}: read-only root filesystem")
    check(sc.get("allowPrivilegeEscalation") is False, f"{where}: no privilege escalation")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: drops all capabilities")
    res = c.get("resources", {})
    check("requests" in res and "limits" in res, f"{where}: requests and limits")
    if len(failures) == before:
        print(f"runtime contract: {where}")


def isvc_checks(isvc, where, runtimes):
    model = isvc["spec"]["predictor"]["model"]
    check(model.get("protocolVersion") == "v2", f"{where}: protocol v2")
    check(bool(model.get("storageUri")), f"{where}: a storageUri")
    runtime, fmt = model.get("runtime"), model["modelFormat"]
    if runtime in runtimes:
        offered = {(f["name"], f["version"]) for f in runtimes[runtime]["spec"]["supportedModelFormats"]}
        check((fmt["name"], fmt.get("version")) in offered,
              f"{where}: format {fmt} is one runtime {runtime} offers")
    else:
        check(runtime == "kserve-tritonserver" and fmt["name"] == "onnx",
              f"{where}: {runtime} is neither here nor KServe's Triton runtime with onnx")
    print(f"inference service: {where} ({runtime}, {fmt['name']})")


def main(paths):
    known = schemas()
    docs = []
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((f"{path.name}", doc))
    for where, doc in docs:
        validate(doc, where, known)
    runtimes = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "ClusterServingRuntime"}
    for where, d in docs:
        if d["kind"] == "ClusterServingRuntime":
            runtime_checks(d, where)
        elif d["kind"] == "InferenceService":
            isvc_checks(d, where, runtimes)
    kinds = sorted(d["kind"] for _, d in docs)
    check(kinds == ["ClusterServingRuntime", "InferenceService", "InferenceService"] or paths != DEFAULT,
          f"a runtime and two inference services, found {kinds}")
    if failures:
        print(f"{len(failures)} KServe check(s) failed")
        sys.exit(1)
    print(f"KServe manifests: {len(docs)} objects checked")


DEFAULT = sorted(HERE.glob("*.yaml"))
if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]] or DEFAULT)
