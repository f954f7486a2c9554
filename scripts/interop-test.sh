#!/usr/bin/env bash
# The HTTP service against clients it did not write: tritonclient (Open Inference Protocol v2),
# MLflow scoring bodies built as MLflow's client builds them, and the README's service commands;
# then model.safetensors read by the `safetensors` package, its forward pass redone with numpy;
# then model.onnx checked by `onnx` and run by onnxruntime, and a Triton repository's
# config.pbtxt parsed by Triton's own message type.
#
# Usage: scripts/interop-test.sh [BINARY]   (default: builds target/release/iris-trainer)
#        scripts/interop-test.sh --venv     (only makes the venv, and prints its path)
# The clients live in a venv under target/ (made once, remade when requirements change).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/interop-venv
req=tests/interop/requirements.txt
if ! cmp -s "$req" "$venv/requirements.txt" 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$venv/requirements.txt"
fi

if [ "${1:-}" = --venv ]; then
    echo "$venv"
    exit 0
fi

bin=${1:-}
if [ -z "$bin" ]; then
    cargo build --locked --quiet --release --bin iris-trainer
    bin=target/release/iris-trainer
fi
status=0
"$venv/bin/python" tests/interop/serve_clients.py "$(realpath "$bin")" README.md || status=1
"$venv/bin/python" tests/interop/safetensors_check.py "$(realpath "$bin")" README.md || status=1
"$venv/bin/python" tests/interop/onnx_check.py "$(realpath "$bin")" README.md || status=1
exit "$status"
