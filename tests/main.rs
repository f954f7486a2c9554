//! End-to-end tests of the real binary, all in one test binary to keep link time down
//! (`autotests = false` in Cargo.toml). `cargo test` tests the default (flex) build;
//! `cargo test --features wgpu` builds the binary with wgpu and runs the GPU tests instead.

mod common;

/// The default build: every command with good and bad input, the model directory's
/// guarantees, and the service.
#[cfg(not(feature = "wgpu"))]
mod cli {
    mod compat;
    mod export;
    mod inference;
    mod permissions;
    mod resume;
    mod selection;
    mod serve;
    mod soak;
    mod sweep;
    mod tabular;
    mod tracking;
    mod train;
}

/// The wgpu build on a real adapter, and models crossing between the two builds.
#[cfg(feature = "wgpu")]
mod wgpu;
