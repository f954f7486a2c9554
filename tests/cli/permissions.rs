//! Permission denied and a full disk, for real: as root the binary is run as `nobody`
//! (setpriv), since root ignores file modes; a file-size limit (prlimit) stands in for a full
//! disk, failing writes the way ENOSPC does.
#![cfg(target_os = "linux")]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{Fails, copy_model, shared_model, snapshot, train_into};

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A world-readable scratch directory holding a copy of the binary `nobody` can run.
struct Scratch {
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        chmod(dir.path(), 0o755);
        let bin = dir.path().join("iris-trainer");
        std::fs::copy(bin_path(), &bin).unwrap();
        chmod(&bin, 0o755);
        Scratch { dir, bin }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs the binary without privileges.
    fn run_unprivileged(&self, args: &[&str]) -> Output {
        let mut c = if is_root() {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(&self.bin);
            c
        } else {
            Command::new(&self.bin)
        };
        c.args(args)
            .current_dir(self.path())
            .env_remove("MODEL_DIR")
            .output()
            .unwrap()
    }
}

fn bin_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_iris-trainer"))
}

#[test]
fn read_only_model_directory_refuses_training_and_still_serves_predictions() {
    let s = Scratch::new();
    let model = s.path().join("model");
    std::fs::create_dir(&model).unwrap();
    for f in ["model.mpk", "model.json", "metrics.csv", "model.txt"] {
        std::fs::copy(shared_model().join(f), model.join(f)).unwrap();
        chmod(&model.join(f), 0o444);
    }
    chmod(&model, 0o555);
    let before = snapshot(&model);
    let m = model.to_str().unwrap();
    s.run_unprivileged(&["--quiet", "--epochs", "3", "--out", m])
        .fails(6, &["cannot write model directory", "Permission denied"]);
    assert_eq!(before, snapshot(&model));
    // Reading needs no write access.
    let out = s.run_unprivileged(&["predict", "-m", m, "5.1", "3.5", "1.4", "0.2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.starts_with(b"setosa"));
}

#[test]
fn unreadable_inputs_are_named() {
    let s = Scratch::new();
    let data = s.path().join("data.csv");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/data/iris.csv"), &data).unwrap();
    chmod(&data, 0o000);
    let config = s.path().join("c.toml");
    std::fs::write(&config, "").unwrap();
    chmod(&config, 0o000);
    let out_dir = s.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    chmod(&out_dir, 0o777);
    s.run_unprivileged(&[
        "--data",
        data.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ])
    .fails(
        4,
        &["cannot read data file", "data.csv", "Permission denied"],
    );
    s.run_unprivileged(&["--config", config.to_str().unwrap()])
        .fails(
            3,
            &["cannot read config file", "c.toml", "Permission denied"],
        );

    let model = copy_model(shared_model());
    let model_dir = s.path().join("model");
    std::fs::create_dir(&model_dir).unwrap();
    for e in std::fs::read_dir(model.path()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), model_dir.join(e.file_name())).unwrap();
    }
    chmod(&model_dir, 0o755);
    chmod(&model_dir.join("model.json"), 0o000);
    s.run_unprivileged(&["info", "-m", model_dir.to_str().unwrap()])
        .fails(5, &["model.json", "Permission denied"]);
}

#[test]
fn a_full_disk_during_the_save_keeps_the_previous_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    train_into(&out, 5);
    let before = snapshot(&out);
    // 8 KiB per file: model.mpk fits, metrics.csv of 300 epochs (about 20 KiB) does not.
    Command::new("prlimit")
        .arg("--fsize=8192")
        .arg("--")
        .arg(bin_path())
        .args(["--quiet", "--out"])
        .arg(&out)
        .fails(
            6,
            &[
                "cannot write model directory",
                "metrics.csv",
                "File too large",
            ],
        );
    // The previous model, byte for byte, and nothing half-written beside it.
    assert_eq!(before, snapshot(&out));
}
