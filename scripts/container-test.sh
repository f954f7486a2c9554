#!/usr/bin/env bash
# Builds the images and runs them for real, on Docker Engine (BuildKit and the compose plugin)
# when a daemon answers, podman otherwise:
# - every command of the README's "Containers" section, run as written (a README command this
#   test does not run, or a command here that the README lost, is a failure);
# - the CPU image (linux/amd64): trains into a mounted directory as the host user, predicts,
#   trains with a mounted config and data under --read-only, trains as the image's own user into
#   a named volume, serves and stops gracefully;
# - the CPU image for linux/arm64, cross-compiled by the same Dockerfile, run under QEMU
#   user-mode emulation: trains, predicts, serves;
# - the CPU image started as KServe's iris-trainer runtime starts it (deploy/kserve/), queried
#   with tritonclient;
# - the compose stack: train once into a named volume, then serve with a health check;
# - the GPU image: fails clearly without a GPU and, with Mesa's software Vulkan added, trains.
# Base images that cannot be pulled (no registry reachable) are replaced by local stand-ins.
#
#   scripts/container-test.sh            # build, run, report sizes and times
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
T0=$SECONDS

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
CPU_IMAGE="iris-trainer:${VERSION}"
ARM_IMAGE="iris-trainer:${VERSION}-arm64"
GPU_IMAGE="iris-trainer:${VERSION}-gpu"
RUST_IMAGE=$(sed -n 's/^ARG RUST_IMAGE=//p' Dockerfile)
RUNTIME_IMAGE=$(sed -n 's/^ARG RUNTIME_IMAGE=//p' Dockerfile.gpu)
PYTHON_IMAGE=$(sed -n 's/^ARG PYTHON_IMAGE=//p' docker/mlflow.Dockerfile)
MLFLOW_VERSION=$(sed -n 's/^ARG MLFLOW_VERSION=//p' docker/mlflow.Dockerfile)
grep -q "image: iris-trainer-mlflow:$MLFLOW_VERSION\$" compose.yaml \
    || { echo "FAIL: compose.yaml does not name iris-trainer-mlflow:$MLFLOW_VERSION" >&2; exit 1; }
[ "$RUST_IMAGE" = "$(sed -n 's/^ARG RUST_IMAGE=//p' Dockerfile.gpu)" ] \
    || { echo "FAIL: Dockerfile and Dockerfile.gpu name different Rust images" >&2; exit 1; }
# 25 MB: the static CPU binary carries Parquet (arrow), the plots with their embedded font, the
# MLflow client and safetensors since the 15 MB limit of its first version (9 to 10.5 MB then).
CPU_LIMIT_MB=25
GPU_LIMIT_MB=150

step() { printf '\n==> %s  [%d s]\n' "$*" "$((SECONDS - T0))"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

WORK=$(mktemp -d /var/tmp/iris-container-test.XXXXXX)
CLEANUP=()
cleanup() {
    local c
    for c in "${CLEANUP[@]}"; do eval "$c" >/dev/null 2>&1 || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- Engine --------------------------------------------------------------------------------
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    ENGINE=docker
    docker buildx version >/dev/null 2>&1 \
        || fail "docker answers but has no buildx plugin (BuildKit): install docker-buildx"
    docker compose version >/dev/null 2>&1 \
        || fail "docker answers but has no compose plugin: install docker-compose (v2)"
    echo "engine: $(docker version --format 'Docker Engine {{.Server.Version}}'), $(docker buildx version | cut -d' ' -f1-2), $(docker compose version)"
elif command -v podman >/dev/null 2>&1; then
    ENGINE=podman
    # The README's commands say `docker`: run them with podman (runc: crun fails on some cgroup
    # setups; explicit ulimits: the defaults can be refused).
    docker() {
        local sub=$1
        shift
        case $sub in
            run | build) podman --runtime runc "$sub" --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "$@" ;;
            buildx) shift && podman --runtime runc build --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
                "${@/--load/}" ;;
            compose) podman compose "$@" ;;
            *) podman --runtime runc "$sub" "$@" ;;
        esac
    }
    export -f docker
    echo "engine: $(podman --version) (running the README's docker commands through it)"
else
    fail "neither a docker daemon nor podman is available (apt-get install docker.io docker-buildx docker-compose debootstrap)"
fi

# --- QEMU user-mode emulation for the arm64 image ------------------------------------------
arm64_emulation() {
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && return 0
    [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
    command -v update-binfmts >/dev/null && update-binfmts --enable qemu-aarch64 2>/dev/null || true
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]
}
arm64_emulation || fail "no arm64 emulation: apt-get install qemu-user-static binfmt-support (binfmt_misc mounted)"
grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
    || fail "qemu-aarch64 is registered without the F flag: containers cannot use it"
echo "arm64 emulation: $(sed -n 's/^interpreter //p' /proc/sys/fs/binfmt_misc/qemu-aarch64) ($(sed -n 's/^flags: //p' /proc/sys/fs/binfmt_misc/qemu-aarch64))"

# --- Stand-ins for base images no registry can give us -------------------------------------
size_mb() { docker image inspect --format '{{.Size}}' "$1" | awk '{printf "%.1f", $1/1000000}'; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }
pullable() { have_image "$1" || docker pull -q "$1" >/dev/null 2>&1; }

apt_mirror() {
    local m
    m=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep '/debian/\?$' | head -n1 || true)
    [ -n "$m" ] || m=$(grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep '/debian/\?$' | head -n1 || true)
    [ -n "$m" ] || fail "no Debian mirror in this machine's apt sources (needed by debootstrap)"
    echo "$m"
}

standin_rootfs() { # SUITE DIR [extra packages]
    local suite=$1 dir=$2 include=${3:-}
    command -v debootstrap >/dev/null || fail "debootstrap is needed to make stand-in base images"
    rm -rf "$dir"
    debootstrap --variant=minbase ${include:+--include="$include"} "$suite" "$dir" "$(apt_mirror)" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -n 20 "$WORK/debootstrap.log"; fail "debootstrap $suite"; }
}

slim_rootfs() { # DIR: like the official slim images: no docs, man pages or translations
    local dir=$1
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* \
        "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/locale/*
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
        'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' \
        >"$dir/etc/dpkg/dpkg.cfg.d/docker"
    printf '%s\n' 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb || true"; };' \
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb || true"; };' \
        'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";' >"$dir/etc/apt/apt.conf.d/docker-clean"
}

RUST_STANDIN=0
pullable "$RUST_IMAGE" || RUST_STANDIN=1
if ! pullable "$RUNTIME_IMAGE"; then
    # The GPU image's binary links glibc dynamically, so its runtime needs a glibc at least as
    # new as its builder's. With the real images both are trixie (glibc 2.41). The only Rust of
    # the tag's version here is Debian sid's (glibc 2.43, below), so then the runtime stand-in
    # is sid too: a trixie one would refuse the binary ("GLIBC_2.43 not found").
    suite=trixie
    ((RUST_STANDIN)) && suite=sid
    step "stand-in for $RUNTIME_IMAGE (debootstrap $suite)"
    standin_rootfs "$suite" "$WORK/debian"
    slim_rootfs "$WORK/debian"
    # Valid-Until: a mirror's copy of sid may be older than its Release file allows.
    [ "$suite" = sid ] && echo 'Acquire::Check-Valid-Until "false";' >"$WORK/debian/etc/apt/apt.conf.d/99-standin"
    tar -C "$WORK/debian" -c . | docker import - "docker.io/library/$RUNTIME_IMAGE" >/dev/null
    rm -rf "$WORK/debian"
fi
if ((RUST_STANDIN)); then
    # The official image has rustup, which adds the arm64 standard library on demand; rustup
    # cannot fetch it here, so the stand-in is Debian's own Rust (sid ships the same version
    # as the image's tag) with Debian's arm64 standard library and cross C toolchain.
    step "stand-in for $RUST_IMAGE (debootstrap sid: Debian's rustc, cargo, arm64 std, cross gcc)"
    standin_rootfs sid "$WORK/rust" rustc,cargo,gcc,libc6-dev,ca-certificates,gcc-aarch64-linux-gnu,libc6-dev-arm64-cross
    chroot "$WORK/rust" dpkg --add-architecture arm64
    # Valid-Until: a mirror's copy of sid may be older than its Release file allows.
    chroot "$WORK/rust" apt-get -qq -o Acquire::Check-Valid-Until=false update
    chroot "$WORK/rust" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        libstd-rust-dev:arm64 >"$WORK/apt.log" 2>&1 || { tail -n 20 "$WORK/apt.log"; fail "libstd-rust-dev:arm64"; }
    have=$(chroot "$WORK/rust" rustc -V)
    echo "stand-in: $have"
    want=${RUST_IMAGE#*:}
    want=${want%%-*}
    [[ "$have" == "rustc $want "* ]] || echo "WARNING: the stand-in's $have is not the $want that $RUST_IMAGE holds"
    slim_rootfs "$WORK/rust"
    mkdir -p "$WORK/rust/usr/local/cargo/bin"
    # Only the stand-in trusts this network's TLS proxy; the Dockerfiles never do.
    cp /etc/ssl/certs/ca-certificates.crt "$WORK/rust/etc/ssl/certs/ca-certificates.crt"
    tar -C "$WORK/rust" -c . | docker import \
        --change 'ENV CARGO_HOME=/usr/local/cargo' \
        --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        - "docker.io/library/$RUST_IMAGE" >/dev/null
    rm -rf "$WORK/rust"
fi

# --- The README's container commands -------------------------------------------------------
# Each shell command of the README's "Containers" section (comment lines dropped, continuation
# lines joined, spaces collapsed). `readme DIR CMD` runs CMD from DIR after checking that it is
# one of them, word for word; `readme_not_run WHY CMD` accounts for one that cannot run here.
mapfile -t README_CMDS < <(python3 - <<'PY'
import re
lines, section, fence = [], False, False
for line in open("README.md", encoding="utf-8"):
    line = line.rstrip("\n")
    if line.startswith("## "):
        section = line == "## Containers"
        continue
    if not section:
        continue
    if line.startswith("```"):
        fence = line == "```sh" if not fence else False
        continue
    if fence:
        lines.append(line)
cmd = ""
for line in lines:
    if not cmd and (not line.strip() or line.lstrip().startswith("#")):
        continue
    cmd += line
    if cmd.endswith("\\"):
        cmd = cmd[:-1]
        continue
    print(re.sub(r"\s+", " ", cmd).strip())
    cmd = ""
PY
)
((${#README_CMDS[@]})) || fail "no commands found in the README's Containers section"
# Commands used are recorded in a file: `readme` often runs in a pipeline's subshell, where a
# variable set would be lost.
README_USED="$WORK/readme-used"
: >"$README_USED"
readme_check() {
    local cmd c
    cmd=$(tr -s ' ' <<<"$1")
    for c in "${README_CMDS[@]}"; do
        if [ "$c" = "$cmd" ]; then
            printf '%s\n' "$c" >>"$README_USED"
            return 0
        fi
    done
    fail "not a command of the README's Containers section (did the README change?): $cmd"
}
readme() { # DIR CMD: run a README command as written, from DIR
    readme_check "$2"
    printf '$ %s\n' "$2"
    (cd "$1" && bash -c "$2")
}
readme_not_run() { # WHY CMD
    readme_check "$2"
    printf 'not run here (%s): %s\n' "$1" "$2"
}

# A user's working directory: the configs and data as in a clone of the repository.
USERDIR="$WORK/user"
mkdir -p "$USERDIR/configs" "$USERDIR/data"
cp data/iris.csv "$USERDIR/data/iris.csv"
# The user's own config (as in the README): the relative output.dir lands in /artifacts.
printf '[training]\nepochs = 50\n[output]\ndir = "artifacts"\n' >"$USERDIR/configs/mlp.toml"
ME="$(id -u):$(id -g)"

# --- Build ---------------------------------------------------------------------------------
timed_build() { # NAME CMD: a README build command, its log kept out of sight unless it fails
    local start=$SECONDS
    readme_check "$2"
    printf '$ %s\n' "$2"
    bash -c "$2" >"$WORK/build-$1.log" 2>&1 || { tail -n 40 "$WORK/build-$1.log"; fail "building $1"; }
    echo "built $1 in $((SECONDS - start)) s"
    BUILD_TIMES+=("$1 $((SECONDS - start)) s")
}
BUILD_TIMES=()
step "build the CPU image (linux/amd64, native)"
timed_build cpu-amd64 "docker build -t $CPU_IMAGE ."
[ "$(docker image inspect --format '{{.Architecture}}' "$CPU_IMAGE")" = amd64 ] || fail "$CPU_IMAGE is not an amd64 image"

# --- CPU image, linux/amd64: the README's commands ------------------------------------------
step "CPU image: train, predict, read-only root (the README's commands)"
readme "$USERDIR" "mkdir -p artifacts"
readme "$USERDIR" "docker run --rm --user \"\$(id -u):\$(id -g)\" -v \"\$PWD/artifacts:/artifacts\" $CPU_IMAGE" | tee "$WORK/train.out"
grep -q "^trained 4-16-3 MLP" "$WORK/train.out" || fail "training summary missing"
# The PNGs too: their text is drawn with the binary's embedded font (the image has no fonts).
for f in model.mpk model.json metrics.csv model.txt model.safetensors training_curves.png confusion_matrix.png; do
    [ -f "$USERDIR/artifacts/$f" ] || fail "$f not written to the mounted directory"
    [ "$(stat -c %u:%g "$USERDIR/artifacts/$f")" = "$ME" ] || fail "$f is not owned by the host user"
done
out=$(readme "$USERDIR" "docker run --rm -v \"\$PWD/artifacts:/artifacts:ro\" $CPU_IMAGE predict --model /artifacts 5.1 3.5 1.4 0.2")
echo "$out"
[[ "$(tail -n1 <<<"$out")" == setosa* ]] || fail "expected setosa, got: $out"
# The mounted config says 50 epochs and output.dir "artifacts": both must be what ran.
readme "$USERDIR" "docker run --rm --read-only --user \"\$(id -u):\$(id -g)\" -v \"\$PWD/configs:/configs:ro\" -v \"\$PWD/data:/data:ro\" -v \"\$PWD/artifacts:/artifacts\" $CPU_IMAGE --config /configs/mlp.toml --data /data/iris.csv" | tee "$WORK/ro.out"
grep -q "(50 epochs)" "$WORK/ro.out" || fail "mounted config not used"
grep -q '"source": "/data/iris.csv"' "$USERDIR/artifacts/model.json" || fail "mounted data not used"

step "CPU image: serve and query (the README's commands), stop gracefully"
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_free 5000 || fail "port 5000 is taken on this machine: the README's commands publish it"
serve_cmd="docker run --rm -p 5000:5000 -v \"\$PWD/artifacts:/artifacts:ro\" $CPU_IMAGE serve --model /artifacts"
readme_check "$serve_cmd"
printf '$ %s &\n' "$serve_cmd"
# exec: the docker client is the background process, and passes SIGTERM on to the container.
(cd "$USERDIR" && exec bash -c "exec $serve_cmd") >"$WORK/serve.log" 2>&1 &
serve_pid=$!
CLEANUP+=("kill $serve_pid")
for _ in $(seq 1 100); do
    curl -fsS http://localhost:5000/health >/dev/null 2>&1 && break
    sleep 0.2
done
readme "$USERDIR" "curl -fsS http://localhost:5000/health" | tee "$WORK/health.json"; echo
grep -q '"status":"ok"' "$WORK/health.json" || fail "/health"
readme "$USERDIR" "curl 'http://localhost:5000/prediction?slength=5.1&swidth=3.5&plength=1.4&pwidth=0.2'" | tee "$WORK/pred.json"; echo
grep -q '"species":"setosa"' "$WORK/pred.json" || fail "/prediction"
kill -TERM "$serve_pid"
wait "$serve_pid" || fail "the service did not exit cleanly on SIGTERM: $(tail -n 5 "$WORK/serve.log")"
grep -q "shut down cleanly" "$WORK/serve.log" || fail "no graceful shutdown on SIGTERM"

step "CPU image: the image's own user (65532) with a named volume"
vol="iris-trainer-test-$$"
docker volume create "$vol" >/dev/null
CLEANUP+=("docker volume rm -f $vol")
docker run --rm -v "$vol:/artifacts" "$CPU_IMAGE" --quiet --epochs 20 >/dev/null || fail "training as the image's user"
docker run --rm -v "$vol:/artifacts" "$CPU_IMAGE" info | grep -q "20 epochs" || fail "model not in the volume"

# --- KServe ----------------------------------------------------------------------------------
step "CPU image as KServe's iris-trainer runtime starts it (deploy/kserve/), queried with tritonclient"
runtime_image=$(sed -n 's/^ *image: //p' deploy/kserve/serving-runtime.yaml)
[ -n "$runtime_image" ] || fail "deploy/kserve/serving-runtime.yaml names no image"
# The runtime names the registry's image; here it is the one just built.
docker tag "$CPU_IMAGE" "$runtime_image"
CLEANUP+=("docker rmi $runtime_image")
venv=$(bash scripts/interop-test.sh --venv)
"$venv/bin/python" tests/interop/kserve_runtime.py "$USERDIR/artifacts" \
    docker run --rm -v "$USERDIR/artifacts:/model:ro" "$CPU_IMAGE" predict --quiet --model /model --format json \
    || fail "the CPU image as KServe's runtime starts it"

# --- Compose ---------------------------------------------------------------------------------
step "compose: train once into a named volume, then serve with a health check (the README's commands)"
port_free 5000 || fail "port 5000 is taken on this machine: compose publishes it"
CLEANUP+=("docker compose --project-directory $ROOT --profile gpu --profile mlflow down -v")
readme "$ROOT" "docker compose up -d --wait"
docker compose ps -a --format '{{.Service}}: {{.State}}, exit {{.ExitCode}}, {{.Health}}' | tee "$WORK/compose-ps.txt"
grep -q '^train: exited, exit 0' "$WORK/compose-ps.txt" || fail "compose: train did not complete successfully"
grep -q '^serve: running, exit 0, healthy' "$WORK/compose-ps.txt" || fail "compose: serve is not running and healthy"
readme "$ROOT" "curl 'http://localhost:5000/prediction?slength=5.1&swidth=3.5&plength=1.4&pwidth=0.2'" | tee "$WORK/compose-pred.json"; echo
grep -q '"species":"setosa"' "$WORK/compose-pred.json" || fail "compose: /prediction"
readme "$ROOT" "docker compose run --rm train info" | tee "$WORK/compose-info.txt"
grep -q "300 epochs" "$WORK/compose-info.txt" || fail "compose: the model in the volume is not the bundled config's"
volume=$(docker volume ls -q --filter label=com.docker.compose.project=iris-trainer --filter label=com.docker.compose.volume=models)
[ -n "$volume" ] || fail "compose: no models volume"
readme "$ROOT" "docker compose down -v"
[ -z "$(docker volume ls -q --filter name="^${volume}\$")" ] || fail "compose down -v left the volume $volume"
[ -z "$(docker compose ps -aq)" ] || fail "compose down left containers"

# CONTAINER_TEST_SCOPE=cpu stops here: the amd64 CPU image and the compose stack only (a quicker
# check while working on the CPU image; CI runs everything).
if [ "${CONTAINER_TEST_SCOPE:-all}" = cpu ]; then
    echo
    echo "container tests (scope cpu): the amd64 CPU image and compose checked in $((SECONDS - T0)) s;"
    echo "not run in this scope: the arm64 image, the GPU image, the compose gpu and mlflow profiles"
    exit 0
fi

# --- CPU image, linux/arm64: cross-compiled, run under QEMU ---------------------------------
step "build the CPU image for linux/arm64 (cross-compiled by the native builder)"
timed_build cpu-arm64 "docker buildx build --platform linux/arm64 -t $ARM_IMAGE --load ."
grep -q 'aarch64-unknown-linux-gnu' "$WORK/build-cpu-arm64.log" || fail "the arm64 build did not cross-compile"
[ "$(docker image inspect --format '{{.Architecture}}' "$ARM_IMAGE")" = arm64 ] || fail "$ARM_IMAGE is not an arm64 image"

step "arm64 image under QEMU user-mode emulation: train, predict, serve"
file_out=$(docker create --platform linux/arm64 "$ARM_IMAGE" >"$WORK/arm.cid" && docker cp "$(cat "$WORK/arm.cid")":/usr/local/bin/iris-trainer "$WORK/iris-trainer-arm64" && docker rm "$(cat "$WORK/arm.cid")" >/dev/null && file -b "$WORK/iris-trainer-arm64")
echo "binary: $file_out"
grep -q "ARM aarch64" <<<"$file_out" || fail "the arm64 image's binary is not aarch64"
grep -q "static" <<<"$file_out" || fail "the arm64 image's binary is not statically linked"
mkdir -p "$USERDIR/arm64/artifacts"
readme "$USERDIR/arm64" "docker run --rm --platform linux/arm64 --user \"\$(id -u):\$(id -g)\" -v \"\$PWD/artifacts:/artifacts\" $ARM_IMAGE" | tee "$WORK/arm-train.out"
grep -q "^trained 4-16-3 MLP" "$WORK/arm-train.out" || fail "arm64: training summary missing"
out=$(docker run --rm --platform linux/arm64 -v "$USERDIR/arm64/artifacts:/artifacts:ro" "$ARM_IMAGE" predict --model /artifacts 5.1 3.5 1.4 0.2)
echo "$out"
[[ "$out" == setosa* ]] || fail "arm64: expected setosa, got: $out"
# The model trained on arm64 loads and predicts on amd64 too.
out=$(docker run --rm -v "$USERDIR/arm64/artifacts:/artifacts:ro" "$CPU_IMAGE" predict --model /artifacts 6.7 3.0 5.2 2.3)
[[ "$out" == virginica* ]] || fail "amd64 predicting with the arm64 model: $out"
port=$(( (RANDOM % 20000) + 30000 ))
name="iris-trainer-arm64-$$"
CLEANUP+=("docker rm -f $name")
docker run -d --name "$name" --platform linux/arm64 --read-only \
    -v "$USERDIR/arm64/artifacts:/artifacts:ro" -p "127.0.0.1:$port:5000" "$ARM_IMAGE" serve --model /artifacts >/dev/null
for _ in $(seq 1 150); do
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/prediction?slength=5.1&swidth=3.5&plength=1.4&pwidth=0.2" | tee "$WORK/arm-pred.json"; echo
grep -q '"species":"setosa"' "$WORK/arm-pred.json" || fail "arm64: /prediction"
docker stop -t 10 "$name" >/dev/null
docker logs "$name" 2>&1 | grep -q "shut down cleanly" || fail "arm64: no graceful shutdown on stop"

# --- GPU image ---------------------------------------------------------------------------
step "build the GPU image"
timed_build gpu "docker build -f Dockerfile.gpu -t $GPU_IMAGE ."

step "GPU image without a GPU: Docker's own error for --gpus all, the image's exit 7 without it"
set +e
gpus_cmd="docker run --rm --gpus all --user \"\$(id -u):\$(id -g)\" -v \"\$PWD/artifacts:/artifacts\" $GPU_IMAGE"
readme "$USERDIR" "$gpus_cmd" >"$WORK/gpus.out" 2>&1
code=$?
set -e
cat "$WORK/gpus.out"
[ "$code" != 0 ] || fail "--gpus all succeeded on a machine without the NVIDIA runtime"
grep -q "could not select device driver" "$WORK/gpus.out" || fail "expected Docker's own error for --gpus all"
readme_not_run "needs an NVIDIA GPU" "docker run --rm --gpus all -p 5000:5000 -v \"\$PWD/artifacts:/artifacts:ro\" $GPU_IMAGE serve --model /artifacts"
set +e
readme "$USERDIR" "docker run --rm $GPU_IMAGE" >"$WORK/gpu.out" 2>&1
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
docker build -t iris-trainer-gpu-lavapipe:test -f "$WORK/Dockerfile.lavapipe" "$WORK" >"$WORK/build.log" 2>&1 \
    || { tail -n 20 "$WORK/build.log"; fail "building the lavapipe test image"; }
CLEANUP+=("docker rmi -f iris-trainer-gpu-lavapipe:test")
docker run --rm --user "$ME" -e IRIS_TRAINER_REQUIRE_GPU=0 -v "$USERDIR/artifacts:/artifacts" iris-trainer-gpu-lavapipe:test \
    --epochs 20 --out /artifacts/gpu-soft 2>&1 | tee "$WORK/soft.out"
grep -q "using backend wgpu" "$WORK/soft.out" || fail "no adapter line"
grep -q "^trained" "$WORK/soft.out" || fail "software-Vulkan training failed"

step "compose, gpu profile: valid, and Docker refuses it without the NVIDIA runtime"
docker compose --profile gpu config --quiet || fail "compose: the gpu profile does not validate"
docker compose --profile gpu config | grep -q 'capabilities:' || fail "compose: no GPU reservation"
set +e
readme "$ROOT" "docker compose --profile gpu up -d --wait serve-gpu" >"$WORK/compose-gpu.out" 2>&1
code=$?
set -e
cat "$WORK/compose-gpu.out"
[ "$code" != 0 ] || fail "compose: the gpu profile started on a machine without the NVIDIA runtime"
grep -q 'could not select device driver "nvidia" with capabilities: \[\[gpu\]\]' "$WORK/compose-gpu.out" \
    || fail "compose: expected Docker's own error for the GPU reservation"
docker compose --profile gpu down -v >/dev/null 2>&1

step "compose, mlflow profile: an MLflow tracking server, and the training run in it"
if ! pullable "$PYTHON_IMAGE"; then
    # The official image has python and pip in /usr/local/bin and no "externally managed" marker.
    cat >"$WORK/Dockerfile.python" <<DOCKERFILE
FROM $RUNTIME_IMAGE
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip ca-certificates \
 && rm -rf /var/lib/apt/lists/* /usr/lib/python3*/EXTERNALLY-MANAGED \
 && ln -s /usr/bin/python3 /usr/local/bin/python && ln -s /usr/bin/pip3 /usr/local/bin/pip
# Only the stand-in trusts this network's TLS proxy; the project's Dockerfiles never do.
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
DOCKERFILE
    cp /etc/ssl/certs/ca-certificates.crt "$WORK/ca-certificates.crt"
    step "stand-in for $PYTHON_IMAGE ($RUNTIME_IMAGE with Debian's python3 and pip)"
    docker build -t "docker.io/library/$PYTHON_IMAGE" -f "$WORK/Dockerfile.python" "$WORK" >"$WORK/build.log" 2>&1 \
        || { tail -n 20 "$WORK/build.log"; fail "building the $PYTHON_IMAGE stand-in"; }
fi
start=$SECONDS
readme "$ROOT" "MLFLOW_TRACKING_URI=http://mlflow:5000 docker compose --profile mlflow up -d --wait" >"$WORK/compose-mlflow.out" 2>&1 \
    || { tail -n 40 "$WORK/compose-mlflow.out"; fail "compose: the mlflow profile did not come up"; }
echo "up in $((SECONDS - start)) s (the MLflow image built: $(size_mb iris-trainer-mlflow:$MLFLOW_VERSION) MB)"
docker compose --profile mlflow ps -a --format '{{.Service}}: {{.State}}, exit {{.ExitCode}}, {{.Health}}' | tee "$WORK/compose-ps.txt"
grep -q '^mlflow: running, exit 0, healthy' "$WORK/compose-ps.txt" || fail "compose: mlflow is not healthy"
grep -q '^train: exited, exit 0' "$WORK/compose-ps.txt" || fail "compose: train failed with the mlflow profile"
readme "$ROOT" "curl -fsS http://localhost:5001/health"; echo
experiment=$(curl -fsS 'http://localhost:5001/api/2.0/mlflow/experiments/get-by-name?experiment_name=iris-trainer' || true)
train_help=$(docker run --rm "$CPU_IMAGE" train --help)
if grep -q MLFLOW_TRACKING_URI <<<"$train_help"; then
    id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["experiment"]["experiment_id"])' "$experiment") \
        || fail "compose: no iris-trainer experiment in MLflow: $experiment"
    runs=$(curl -fsS -X POST -H 'Content-Type: application/json' \
        -d "{\"experiment_ids\": [\"$id\"]}" http://localhost:5001/api/2.0/mlflow/runs/search)
    grep -q '"status": *"FINISHED"' <<<"$runs" || fail "compose: no finished run in MLflow: $runs"
    echo "MLflow holds the training run"
else
    echo "NOTE: this trainer does not read MLFLOW_TRACKING_URI (tracking not built in): only the server was checked"
fi
docker compose --profile mlflow down -v >/dev/null 2>&1

# --- Registry commands ---------------------------------------------------------------------
step "tag and push (the README's commands; no registry here)"
readme_not_run "no multi-platform builder and no registry here" \
    "docker buildx build --platform linux/amd64,linux/arm64 -t registry.example.com/ml/iris-trainer:$VERSION --push ."
readme "$ROOT" "docker tag $CPU_IMAGE registry.example.com/ml/iris-trainer:$VERSION"
readme "$ROOT" "docker tag $GPU_IMAGE registry.example.com/ml/iris-trainer:$VERSION-gpu"
CLEANUP+=("docker rmi registry.example.com/ml/iris-trainer:$VERSION registry.example.com/ml/iris-trainer:$VERSION-gpu")
readme_not_run "no registry here" "docker push registry.example.com/ml/iris-trainer:$VERSION"
readme_not_run "no registry here" "docker push registry.example.com/ml/iris-trainer:$VERSION-gpu"

# --- Sizes and coverage --------------------------------------------------------------------
step "image sizes"
cpu_mb=$(size_mb "$CPU_IMAGE")
arm_mb=$(size_mb "$ARM_IMAGE")
gpu_mb=$(size_mb "$GPU_IMAGE")
printf '%-28s %8s MB (linux/amd64; limit %s MB)\n' "$CPU_IMAGE" "$cpu_mb" "$CPU_LIMIT_MB"
printf '%-28s %8s MB (linux/arm64; limit %s MB)\n' "$ARM_IMAGE" "$arm_mb" "$CPU_LIMIT_MB"
printf '%-28s %8s MB (linux/amd64; limit %s MB)\n' "$GPU_IMAGE" "$gpu_mb" "$GPU_LIMIT_MB"
awk -v s="$cpu_mb" -v l="$CPU_LIMIT_MB" 'BEGIN{exit !(s < l)}' || fail "CPU image over $CPU_LIMIT_MB MB"
awk -v s="$arm_mb" -v l="$CPU_LIMIT_MB" 'BEGIN{exit !(s < l)}' || fail "arm64 CPU image over $CPU_LIMIT_MB MB"
awk -v s="$gpu_mb" -v l="$GPU_LIMIT_MB" 'BEGIN{exit !(s < l)}' || fail "GPU image over $GPU_LIMIT_MB MB"

step "every README container command was run or accounted for"
missing=0
for c in "${README_CMDS[@]}"; do
    grep -qxF -- "$c" "$README_USED" || { echo "not exercised: $c" >&2; missing=1; }
done
((missing == 0)) || fail "README container commands that this test does not run (add them here)"
echo "${#README_CMDS[@]} README commands"

echo
echo "build times: ${BUILD_TIMES[*]}"
echo "container tests: 3 images built, all checks passed in $((SECONDS - T0)) s"
