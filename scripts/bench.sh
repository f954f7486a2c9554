#!/usr/bin/env bash
# Benchmarks iris-trainer against scikit-learn and the workshop's Flask service, side by side
# in one run, and writes bench/results/results.{md,json} (quoted by BENCHMARKS.md).
#
#   scripts/bench.sh                 # everything but image builds (about 3 minutes)
#   scripts/bench.sh --images        # also cold and code-change image builds
#
# Installs what it needs: wrk, hyperfine and GNU time (apt, as root) and the Python peers
# (PyPI, into a throwaway virtualenv under target/).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v hyperfine >/dev/null || need+=(hyperfine)
[ -x /usr/bin/time ] || need+=(time)
if ((${#need[@]})); then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    else
        echo "please install: ${need[*]}" >&2
        exit 1
    fi
fi

venv=target/bench-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    scikit-learn==1.9.1 numpy==2.4.6 flask==3.1.3 gunicorn==27.0.1 joblib==1.6.0

cargo build --release --locked --quiet
exec "$venv/bin/python" bench/run.py --python "$venv/bin/python" "$@"
