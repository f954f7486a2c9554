#!/usr/bin/env bash
# Data at scale on a machine with an NVIDIA GPU and PyTorch (CUDA), pandas and numpy installed:
# the GPU section (iris-trainer built with --features wgpu against the PyTorch script on CUDA),
# then the CPU sections of bench/scale.py pinned to two cores (`taskset -c 0,1`, the 2-core
# budget the CPU figures are quoted for), and streaming evaluate/predict on a 10,000,000-row file.
#
#   cargo build --release --locked && cp target/release/iris-trainer /tmp/iris-cpu
#   cargo build --release --locked --features wgpu && cp target/release/iris-trainer /tmp/iris-gpu
#   bash bench/gpu-host.sh /tmp/iris-cpu /tmp/iris-gpu [OUT_DIR]
#
# Tables are written first with every CPU (bench/make_synthetic.py) into $DATA_DIR
# (target/bench-data). Results: OUT_DIR/scale.{json,md} (bench/results by default).
set -euo pipefail
cd "$(dirname "$0")/.."
cpu_bin=$(realpath "$1") gpu_bin=$(realpath "$2") out=${3:-bench/results}
py=${PYTHON:-python3}
data=${DATA_DIR:-target/bench-data}
runs=${RUNS:-3}
mkdir -p "$data" "$out"

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
grep -m1 'model name' /proc/cpuinfo; nproc
"$py" -c 'import torch, pandas, numpy; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "pandas", pandas.__version__, "numpy", numpy.__version__)'

echo "== tables"
for rows in 10000 100000 1000000 5000000 10000000; do
    f="$data/synthetic-${rows}x32.csv"
    [ -e "$f" ] || { "$py" bench/make_synthetic.py "$f.tmp" --rows "$rows" --features 32 --classes 10 && mv "$f.tmp" "$f"; }
done
ls -l "$data"

echo "== the GPU build finds the GPU"
IRIS_TRAINER_REQUIRE_GPU=1 "$gpu_bin" --data "$data/synthetic-10000x32.csv" --epochs 1 --out "$(mktemp -d)/m" 2>&1 | tail -5 \
    || echo "the GPU build found no GPU: the GPU section will show what it did instead" >&2

echo "== scale benchmark (CPU figures on cores 0,1)"
pin=()
command -v taskset >/dev/null && pin=(taskset -c 0,1) || echo "no taskset: CPU figures use every core" >&2
"${pin[@]}" "$py" bench/scale.py --bin "$cpu_bin" --gpu-bin "$gpu_bin" \
    --python "$py" --runs "$runs" --data-dir "$data" --out-dir "$out" --stream-rows 10000000 \
    --only "${ONLY:-gpu,million,loop,stream,growth}"
