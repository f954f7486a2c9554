# iris-trainer, CPU image: one static binary on an empty base (about 10 MB), linux/amd64 or
# linux/arm64 (Apple Silicon laptops, Graviton and Ampere servers).
#
#   docker build -t iris-trainer:0.1.0 .
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD/artifacts:/artifacts" iris-trainer:0.1.0
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/iris-trainer:0.1.0 --push .
#
# The builder stage runs on the build machine's own platform (BUILDPLATFORM) and cross-compiles
# for the platform asked for (TARGETARCH): nothing is compiled under emulation.
#
# No `# syntax=` line on purpose: BuildKit would fetch that frontend image from a registry, and
# the frontend built into Docker Engine 20.10 and later has all that is used here.

ARG RUST_IMAGE=rust:1.97.1-slim-trixie

FROM --platform=$BUILDPLATFORM ${RUST_IMAGE} AS builder
ARG TARGETARCH
WORKDIR /build
ENV CARGO_TERM_COLOR=never

# The target triple, C cross compiler and linker for TARGETARCH, written once for every RUN below.
# A static glibc executable (+crt-static) runs FROM scratch with no loader and no libraries; with
# --target, RUSTFLAGS reach only the target's code, not build scripts.
# (DL4006: the pipes only reshape a fixed string.)
# hadolint ignore=DL3008,DL4006
RUN arch="${TARGETARCH:-$(dpkg --print-architecture)}" \
 && case "$arch" in \
      amd64) rust=x86_64-unknown-linux-gnu gnu=x86_64-linux-gnu gcc=gcc-x86-64-linux-gnu ;; \
      arm64) rust=aarch64-unknown-linux-gnu gnu=aarch64-linux-gnu gcc=gcc-aarch64-linux-gnu ;; \
      *) echo "unsupported target architecture '$arch': amd64 or arm64" >&2; exit 1 ;; \
    esac \
 && env_name=$(echo "$rust" | tr 'a-z-' 'A-Z_') \
 && if [ "$arch" = "$(dpkg --print-architecture)" ]; then \
      cc=gcc; \
    else \
      cc="$gnu-gcc"; \
      dpkg -s "$gcc" "libc6-dev-$arch-cross" >/dev/null 2>&1 || { \
        apt-get update \
        && apt-get install -y --no-install-recommends "$gcc" "libc6-dev-$arch-cross" \
        && rm -rf /var/lib/apt/lists/*; }; \
    fi \
 && { [ -d "$(rustc --print sysroot)/lib/rustlib/$rust/lib" ] || rustup target add "$rust"; } \
 && printf 'export %s\n' "RUST_TARGET=$rust" "CARGO_TARGET_${env_name}_LINKER=$cc" \
      "CC_$(echo "$rust" | tr - _)=$cc" "RUSTFLAGS='-C target-feature=+crt-static'" >/cross.env \
 && cat /cross.env

# Dependencies first, in their own layer: rebuilt only when Cargo.toml or Cargo.lock change.
# The crates' sources live in a cache mount (kept across builds, never in an image); `locked`
# because cargo's own lock file is outside the mount, so parallel platform builds must take turns.
COPY Cargo.toml Cargo.lock ./
# (The manifest names a criterion bench; an empty stand-in satisfies it, benches are not built.)
RUN --mount=type=cache,id=iris-trainer-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    . /cross.env \
 && mkdir src benches \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs benches/core.rs \
 && cargo build --release --locked --target "$RUST_TARGET" \
 && rm -rf src

# Then the project: a code change rebuilds only this layer.
COPY src ./src
COPY data ./data
COPY configs ./configs
# touch: COPY keeps the files' old times, which cargo would take for "already built".
RUN --mount=type=cache,id=iris-trainer-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    . /cross.env \
 && touch src/main.rs src/lib.rs \
 && cargo build --release --locked --target "$RUST_TARGET" \
 && install -D "target/$RUST_TARGET/release/iris-trainer" /out/usr/local/bin/iris-trainer \
 && install -D -m 0644 configs/mlp.toml /out/configs/mlp.toml \
 && mkdir -p /out/artifacts

FROM scratch
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="iris-trainer" \
      org.opencontainers.image.description="Train a small MLP on tabular data with Burn and serve it (CPU)" \
      org.opencontainers.image.source="https://github.com/iris-trainer/iris-trainer" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
COPY --from=builder /out/usr/local/bin/iris-trainer /usr/local/bin/iris-trainer
COPY --from=builder /out/configs /configs
COPY --from=builder --chown=65532:65532 /out/artifacts /artifacts
# An unprivileged user with no name: scratch has no /etc/passwd, and needs none.
USER 65532:65532
ENV MODEL_DIR=/artifacts
VOLUME ["/artifacts"]
EXPOSE 5000
ENTRYPOINT ["/usr/local/bin/iris-trainer"]
CMD ["train", "--config", "/configs/mlp.toml", "--out", "/artifacts"]
