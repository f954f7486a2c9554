#!/usr/bin/env bash
# MLflow tracking against a real MLflow tracking server: training runs, a sweep, SIGTERM, an
# unreachable server and a server gone mid-run, read back with MLflow's own Python client.
#
# Usage: scripts/mlflow-test.sh [BINARY]   (default: builds target/release/iris-trainer)
# mlflow lives in a venv of its own under target/ (made once, remade when its pin changes):
# installing it takes minutes, a warm run of the checks well under one.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/mlflow-venv
req=tests/interop/mlflow-requirements.txt
if ! cmp -s "$req" "$venv/requirements.txt" 2>/dev/null; then
    start=$SECONDS
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$venv/requirements.txt"
    echo "installed $(grep -v '^#' "$req" | tr '\n' ' ')into $venv in $((SECONDS - start))s"
fi

bin=${1:-}
if [ -z "$bin" ]; then
    cargo build --locked --quiet --release --bin iris-trainer
    bin=target/release/iris-trainer
fi
exec "$venv/bin/python" tests/interop/mlflow_tracking.py "$(realpath "$bin")" README.md
