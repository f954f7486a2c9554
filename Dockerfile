# syntax=docker/dockerfile:1
# iris-trainer, CPU image: one static binary on an empty base (about 10 MB).
#
#   docker build -t iris-trainer:0.1.0 .
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD/artifacts:/artifacts" iris-trainer:0.1.0
#
# Multi-arch (Apple Silicon laptops included): nothing here names an architecture; the target
# triple comes from the platform each stage runs on.
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/iris-trainer:0.1.0 --push .

ARG RUST_IMAGE=rust:1.95.0-slim-trixie

FROM ${RUST_IMAGE} AS builder
WORKDIR /build
# A static glibc executable: runs FROM scratch with no loader and no libraries.
ENV RUSTFLAGS="-C target-feature=+crt-static" \
    CARGO_TERM_COLOR=never

# Dependencies first, in their own layer: rebuilt only when Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
# (The manifest names a criterion bench; an empty stand-in satisfies it, benches are not built.)
RUN mkdir src benches \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs benches/core.rs \
 && cargo build --release --locked --target "$(uname -m)-unknown-linux-gnu" \
 && rm -rf src

# Then the project: a code change rebuilds only this layer.
COPY src ./src
COPY data ./data
COPY configs ./configs
# touch: COPY keeps the files' old times, which cargo would take for "already built".
RUN touch src/main.rs src/lib.rs \
 && target="$(uname -m)-unknown-linux-gnu" \
 && cargo build --release --locked --target "$target" \
 && install -D "target/$target/release/iris-trainer" /out/usr/local/bin/iris-trainer \
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
