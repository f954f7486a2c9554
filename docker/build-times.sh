#!/usr/bin/env bash
# Times the CPU image's builds on Docker (BuildKit), for linux/amd64 and linux/arm64: cold (an
# empty build cache: no layers, no cache mounts) and warm (the same build after a one-line change
# to src/main.rs). Prints a Markdown table for BENCHMARKS.md.
#
#   docker/build-times.sh        # needs the base images (scripts/container-test.sh makes stand-ins)
#
# It empties this engine's whole build cache (`docker builder prune -af`) before each cold build.
set -euo pipefail
cd "$(dirname "$0")/.."

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"; docker rmi -f iris-trainer:build-times >/dev/null 2>&1 || true' EXIT
# The build context as the repository holds it (what .dockerignore lets through).
cp -a Cargo.toml Cargo.lock Dockerfile .dockerignore src data configs docker "$ctx/"

build() { # PLATFORM LOG: seconds taken
    local start end
    start=$(date +%s.%N)
    docker buildx build --progress plain --platform "$1" -t iris-trainer:build-times --load "$ctx" >"$2" 2>&1 \
        || { tail -n 30 "$2" >&2; echo "build failed" >&2; exit 1; }
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", b - a }'
}

rows=()
for platform in linux/amd64 linux/arm64; do
    cp Dockerfile "$ctx/Dockerfile"
    cp src/main.rs "$ctx/src/main.rs"
    docker builder prune -af >/dev/null
    cold=$(build "$platform" "$ctx/cold.log")
    echo "// build-times: a one-line change $(date +%s%N)" >>"$ctx/src/main.rs"
    warm=$(build "$platform" "$ctx/warm.log")
    # The dependency layer (the RUN that builds the stand-in main) must come from the cache.
    deps_step=$(grep -m1 -o '^#[0-9]* \[builder [0-9/]*\] RUN --mount=type=cache.*mkdir src benches' "$ctx/warm.log" | cut -d' ' -f1)
    if [ -n "$deps_step" ] && grep -q "^$deps_step CACHED" "$ctx/warm.log"; then reused=yes; else reused=NO; fi
    echo "$platform: cold ${cold} s, after a change to src/ ${warm} s (dependency layer reused: $reused)" >&2
    rows+=("| $platform | ${cold} s | ${warm} s | $reused |")
done

echo "Docker $(docker version --format '{{.Server.Version}}'), $(docker buildx version | cut -d' ' -f1-2), $(nproc) CPUs, $(uname -m) build machine"
echo
echo "| CPU image | cold build | after a change to src/ | dependency layer reused |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
