//! End-to-end tests of the real binary. One test binary, several modules, to keep link time down.

mod common;

#[path = "cli/inference.rs"]
mod inference;
#[path = "cli/permissions.rs"]
mod permissions;
#[path = "cli/resume.rs"]
mod resume;
#[path = "cli/serve.rs"]
mod serve;
#[path = "cli/soak.rs"]
mod soak;
#[path = "cli/sweep.rs"]
mod sweep;
#[path = "cli/train.rs"]
mod train;
#[path = "cli/wgpu.rs"]
mod wgpu;
