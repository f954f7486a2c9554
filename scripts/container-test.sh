#!/usr/bin/env bash
# Builds both images and runs them for real: the CPU image trains into a mounted directory,
# predicts, serves (health and the workshop request) and runs with a read-only root; the GPU
# image fails clearly without a GPU and, with Mesa's software Vulkan added, trains.
#
# Uses docker when a daemon answers, podman otherwise. Base images that cannot be pulled
# (no registry reachable) are replaced by local stand-ins built with debootstrap.
#
#   scripts/container-test.sh            # build, run, report sizes
#   KEEP_IMAGES=1 scripts/container-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
CPU_IMAGE="iris-trainer:${VERSION}"
GPU_IMAGE="iris-trainer:${VERSION}-gpu"
RUST_IMAGE=$(sed -n 's/^ARG RUST_IMAGE=//p' Dockerfile)
RUNTIME_IMAGE=$(sed -n 's/^ARG RUNTIME_IMAGE=//p' Dockerfile.gpu)
CPU_LIMIT_MB=15
GPU_LIMIT_MB=150

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    ENGINE=(docker)
    BUILD_OPTS=()
    RUN_OPTS=()
elif command -v podman >/dev/null 2>&1; then
    # runc: crun fails on some cgroup setups; explicit ulimits: the defaults can be refused.
    ENGINE=(podman --runtime runc)
    BUILD_OPTS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
    RUN_OPTS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
else
    fail "neither a docker daemon nor podman is available (apt-get install podman runc debootstrap)"
fi
echo "engine: ${ENGINE[*]}"

have_image() { "${ENGINE[@]}" image exists "$1" 2>/dev/null || "${ENGINE[@]}" image inspect "$1" >/dev/null 2>&1; }
pullable() { have_image "$1" || "${ENGINE[@]}" pull -q "$1" >/dev/null 2>&1; }

# --- Stand-ins for base images no registry can give us -------------------------------------
apt_mirror() {
    local m
    m=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
    [ -n "$m" ] || m=$(grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -n1 || true)
    echo "${m:-http://deb.debian.org/debian}"
}

standin_rootfs() { # DIR [extra packages]
    local dir=$1 include=${2:-}
    command -v debootstrap >/dev/null || fail "debootstrap is needed to make stand-in base images"
    rm -rf "$dir"
    debootstrap --variant=minbase ${include:+--include="$include"} trixie "$dir" "$(apt_mirror)" >/dev/null
    # Like the official slim images: no docs, man pages or translations, and apt keeps no .debs.
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* \
        "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/locale/*
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
        'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' \
        >"$dir/etc/dpkg/dpkg.cfg.d/docker"
    printf '%s\n' 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb || true"; };' \
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb || true"; };' \
        'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";' >"$dir/etc/apt/apt.conf.d/docker-clean"
}

WORK=$(mktemp -d /var/tmp/iris-container-test.XXXXXX)
CONTAINERS=()
VOLUMES=()
cleanup() {
    for c in "${CONTAINERS[@]}"; do "${ENGINE[@]}" rm -f "$c" >/dev/null 2>&1 || true; done
    for v in "${VOLUMES[@]}"; do "${ENGINE[@]}" volume rm -f "$v" >/dev/null 2>&1 || true; done
    rm -rf "$WORK"
    if [ -z "${KEEP_IMAGES:-}" ]; then
        "${ENGINE[@]}" rmi -f iris-trainer-gpu-lavapipe:test >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

if ! pullable "$RUNTIME_IMAGE"; then
    step "stand-in for $RUNTIME_IMAGE (debootstrap trixie)"
    standin_rootfs "$WORK/debian"
    tar -C "$WORK/debian" -c . | "${ENGINE[@]}" import - "docker.io/library/$RUNTIME_IMAGE" >/dev/null
    rm -rf "$WORK/debian"
fi
if ! pullable "$RUST_IMAGE"; then
    step "stand-in for $RUST_IMAGE (debootstrap trixie + this machine's Rust toolchain)"
    standin_rootfs "$WORK/rust" gcc,libc6-dev,ca-certificates
    toolchain=$(rustc --print sysroot)
    mkdir -p "$WORK/rust/usr/local/rustup/toolchains" "$WORK/rust/usr/local/cargo/bin"
    cp -a "$toolchain/." "$WORK/rust/usr/local/rustup/toolchains/stable/"
    for tool in cargo rustc rustdoc; do
        ln -s "/usr/local/rustup/toolchains/stable/bin/$tool" "$WORK/rust/usr/local/cargo/bin/$tool"
    done
    # Only the stand-in trusts this network's TLS proxy; the Dockerfiles never do.
    cp /etc/ssl/certs/ca-certificates.crt "$WORK/rust/etc/ssl/certs/ca-certificates.crt"
    tar -C "$WORK/rust" -c . | "${ENGINE[@]}" import \
        --change 'ENV CARGO_HOME=/usr/local/cargo' \
        --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
        --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        - "docker.io/library/$RUST_IMAGE" >/dev/null
    rm -rf "$WORK/rust"
fi

# --- Build ---------------------------------------------------------------------------------
build() { # IMAGE DOCKERFILE
    local start=$SECONDS
    if [ "${ENGINE[0]}" = podman ]; then
        "${ENGINE[@]}" build "${BUILD_OPTS[@]}" --pull=never -f "$2" -t "$1" . >"$WORK/build.log" 2>&1 \
            || { tail -n 40 "$WORK/build.log"; fail "building $1"; }
    else
        "${ENGINE[@]}" build -f "$2" -t "$1" . >"$WORK/build.log" 2>&1 \
            || { tail -n 40 "$WORK/build.log"; fail "building $1"; }
    fi
    echo "built $1 in $((SECONDS - start)) s"
}
step "docker build -t $CPU_IMAGE ."
build "$CPU_IMAGE" Dockerfile
step "docker build -f Dockerfile.gpu -t $GPU_IMAGE ."
build "$GPU_IMAGE" Dockerfile.gpu

run() { "${ENGINE[@]}" run --rm "${RUN_OPTS[@]}" "$@"; }
ME="$(id -u):$(id -g)"

# --- CPU image -----------------------------------------------------------------------------
ART="$WORK/artifacts"
mkdir -p "$ART"
step "train: docker run --rm --user $ME -v \$PWD/artifacts:/artifacts $CPU_IMAGE"
run --user "$ME" -v "$ART:/artifacts" "$CPU_IMAGE" | tee "$WORK/train.out"
grep -q "^trained 4-16-3 MLP" "$WORK/train.out" || fail "training summary missing"
for f in model.mpk model.json metrics.csv model.txt; do
    [ -f "$ART/$f" ] || fail "$f not written to the mounted directory"
    [ "$(stat -c %u:%g "$ART/$f")" = "$ME" ] || fail "$f is not owned by the host user"
done

step "predict: docker run --rm -v \$PWD/artifacts:/artifacts:ro $CPU_IMAGE predict --model /artifacts 5.1 3.5 1.4 0.2"
out=$(run -v "$ART:/artifacts:ro" "$CPU_IMAGE" predict --model /artifacts 5.1 3.5 1.4 0.2)
echo "$out"
[[ "$out" == setosa* ]] || fail "expected setosa, got: $out"

step "mounted config and data, read-only root filesystem"
mkdir -p "$WORK/configs" "$WORK/data" "$WORK/ro-artifacts"
cp data/iris.csv "$WORK/data/iris.csv"
# As in the README: the config's relative `output.dir = "artifacts"` lands in /artifacts.
printf '[training]\nepochs = 50\n[output]\ndir = "artifacts"\n' >"$WORK/configs/mlp.toml"
run --read-only --user "$ME" -v "$WORK/configs:/configs:ro" -v "$WORK/data:/data:ro" \
    -v "$WORK/ro-artifacts:/artifacts" "$CPU_IMAGE" \
    --config /configs/mlp.toml --data /data/iris.csv | tee "$WORK/ro.out"
grep -q "(50 epochs)" "$WORK/ro.out" || fail "mounted config not used"
grep -q '"source": "/data/iris.csv"' "$WORK/ro-artifacts/model.json" || fail "mounted data not used"

step "default user (65532) with a named volume"
vol="iris-trainer-test-$$"
"${ENGINE[@]}" volume create "$vol" >/dev/null
run -v "$vol:/artifacts" "$CPU_IMAGE" --quiet --epochs 20 >/dev/null || fail "training as the image's user"
VOLUMES+=("$vol")
info=$(run -v "$vol:/artifacts" "$CPU_IMAGE" info)
grep -q "20 epochs" <<<"$info" || fail "model not in the volume"

step "serve: docker run -p 5000:5000 ... $CPU_IMAGE serve --model /artifacts"
port=$(( (RANDOM % 20000) + 30000 ))
name="iris-trainer-serve-$$"
CONTAINERS+=("$name")
"${ENGINE[@]}" run -d --name "$name" "${RUN_OPTS[@]}" --read-only \
    -v "$ART:/artifacts:ro" -p "127.0.0.1:$port:5000" "$CPU_IMAGE" serve --model /artifacts >/dev/null
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/health" | tee "$WORK/health.json"; echo
grep -q '"status":"ok"' "$WORK/health.json" || fail "/health"
curl -fsS "http://127.0.0.1:$port/prediction?slength=5.1&swidth=3.5&plength=1.4&pwidth=0.2" | tee "$WORK/pred.json"; echo
grep -q '"species":"setosa"' "$WORK/pred.json" || fail "/prediction"
"${ENGINE[@]}" stop -t 10 "$name" >/dev/null
logs=$("${ENGINE[@]}" logs "$name" 2>&1)
grep -q "shut down cleanly" <<<"$logs" || fail "no graceful shutdown on stop"

# --- GPU image -----------------------------------------------------------------------------
step "GPU image without a GPU: a clear error"
set +e
run --user "$ME" -v "$ART:/artifacts" "$GPU_IMAGE" --epochs 1 --out /artifacts/gpu >"$WORK/gpu.out" 2>&1
code=$?
set -e
cat "$WORK/gpu.out"
[ "$code" = 7 ] || fail "expected exit code 7 without a GPU, got $code"
grep -q -- "--gpus all" "$WORK/gpu.out" || fail "the error does not say to use --gpus all"
grep -q "panicked" "$WORK/gpu.out" && fail "panic in the GPU image"

step "GPU image with software Vulkan added (test-only image): trains"
cat >"$WORK/Dockerfile.lavapipe" <<DOCKERFILE
FROM $GPU_IMAGE
USER root
RUN apt-get update && apt-get install -y --no-install-recommends mesa-vulkan-drivers && rm -rf /var/lib/apt/lists/*
USER 65532:65532
DOCKERFILE
if [ "${ENGINE[0]}" = podman ]; then
    "${ENGINE[@]}" build "${BUILD_OPTS[@]}" --pull=never -t iris-trainer-gpu-lavapipe:test -f "$WORK/Dockerfile.lavapipe" "$WORK" >"$WORK/build.log" 2>&1 \
        || { tail -n 20 "$WORK/build.log"; fail "building the lavapipe test image"; }
else
    "${ENGINE[@]}" build -t iris-trainer-gpu-lavapipe:test -f "$WORK/Dockerfile.lavapipe" "$WORK" >"$WORK/build.log" 2>&1 \
        || { tail -n 20 "$WORK/build.log"; fail "building the lavapipe test image"; }
fi
run --user "$ME" -e IRIS_TRAINER_REQUIRE_GPU=0 -v "$ART:/artifacts" iris-trainer-gpu-lavapipe:test \
    --epochs 20 --out /artifacts/gpu-soft 2>&1 | tee "$WORK/soft.out"
grep -q "using backend wgpu" "$WORK/soft.out" || fail "no adapter line"
grep -q "^trained" "$WORK/soft.out" || fail "software-Vulkan training failed"

# --- Sizes ---------------------------------------------------------------------------------
step "image sizes"
size_mb() { "${ENGINE[@]}" image inspect --format '{{.Size}}' "$1" | awk '{printf "%.1f", $1/1000000}'; }
cpu_mb=$(size_mb "$CPU_IMAGE")
gpu_mb=$(size_mb "$GPU_IMAGE")
printf '%-28s %8s MB (target < %s MB)\n' "$CPU_IMAGE" "$cpu_mb" "$CPU_LIMIT_MB" "$GPU_IMAGE" "$gpu_mb" "$GPU_LIMIT_MB"
awk -v s="$cpu_mb" -v l="$CPU_LIMIT_MB" 'BEGIN{exit !(s < l)}' || fail "CPU image over $CPU_LIMIT_MB MB"
awk -v s="$gpu_mb" -v l="$GPU_LIMIT_MB" 'BEGIN{exit !(s < l)}' || fail "GPU image over $GPU_LIMIT_MB MB"

echo
echo "container tests: 2 images built, all checks passed"
