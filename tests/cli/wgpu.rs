//! The wgpu build, for real: built by this test into its own target directory and run on
//! whatever Vulkan/Metal adapter the machine has (CI installs Mesa's software Vulkan, lavapipe).
//! Models cross between the two builds in both directions.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::common::{bin, metadata, predict_json, shared_model};

/// Builds the binary with `--features wgpu` once per test run.
fn wgpu_bin() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| root.join("target"), PathBuf::from)
            .join("wgpu-tests");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(&root)
            .args([
                "build",
                "--quiet",
                "--locked",
                "--features",
                "wgpu",
                "--bin",
                "iris-trainer",
                "--target-dir",
            ])
            .arg(&target)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the wgpu binary failed");
        target
            .join("debug")
            .join(format!("iris-trainer{}", std::env::consts::EXE_SUFFIX))
    })
}

fn wgpu() -> Command {
    let mut c = Command::new(wgpu_bin());
    c.env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .env_remove("IRIS_TRAINER_REQUIRE_GPU")
        .env_remove("MODEL_DIR");
    c
}

#[test]
fn wgpu_build_trains_reports_its_adapter_and_models_cross_backends() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("wgpu-model");
    let out = wgpu()
        .args(["--epochs", "30", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "wgpu training failed (is a Vulkan driver installed? CI uses mesa-vulkan-drivers): {stderr}"
    );
    assert!(stderr.contains("using backend wgpu, device "), "{stderr}");
    let m = metadata(&out_dir);
    assert_eq!(m["device"]["backend"], "wgpu");
    assert_eq!(m["metrics"]["epochs_run"], 30);
    if m["device"]["kind"] == "software_gpu" {
        assert!(
            stderr.contains("warning: no hardware GPU found"),
            "{stderr}"
        );
        // --require-gpu turns the software fallback into a clear error.
        let strict = wgpu()
            .args(["--require-gpu", "--epochs", "1", "--out"])
            .arg(dir.path().join("x"))
            .output()
            .unwrap();
        assert_eq!(strict.status.code(), Some(7));
        assert!(String::from_utf8_lossy(&strict.stderr).contains("a GPU is required"));
    }

    // wgpu-trained model in the CPU build, and the CPU-trained model in the wgpu build:
    // the same classes and probabilities to within float rounding.
    let rows = "5.1,3.5,1.4,0.2\n6.0,2.9,4.5,1.5\n6.7,3.0,5.2,2.3\n";
    for model in [out_dir.as_path(), shared_model()] {
        let (cpu, gpu) = (
            predict_json(bin(), model, rows),
            predict_json(wgpu(), model, rows),
        );
        assert_eq!(cpu.len(), 3);
        for (a, b) in cpu.iter().zip(&gpu) {
            assert_eq!(a["species"], b["species"]);
            for (pa, pb) in a["probabilities"]
                .as_object()
                .unwrap()
                .values()
                .zip(b["probabilities"].as_object().unwrap().values())
            {
                let (pa, pb) = (pa.as_f64().unwrap(), pb.as_f64().unwrap());
                assert!((pa - pb).abs() < 1e-5, "{pa} vs {pb}");
            }
        }
    }
}

#[test]
fn wgpu_build_without_any_adapter_is_a_clear_error() {
    // Point the Vulkan loader at no driver at all.
    let dir = tempfile::tempdir().unwrap();
    let out = wgpu()
        .env("VK_ICD_FILENAMES", dir.path().join("none.json"))
        .env("VK_DRIVER_FILES", dir.path().join("none.json"))
        .args(["--epochs", "1", "--out"])
        .arg(dir.path().join("m"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains("no GPU adapter found") && stderr.contains("--gpus all"),
        "{stderr}"
    );
    assert!(!dir.path().join("m").join("model.json").exists());
}
