//! The wgpu build, for real (`cargo test --features wgpu`): the binary under test is built with
//! wgpu and runs on whatever adapter the machine has, a GPU or Mesa's software Vulkan
//! (lavapipe, which CI installs). With no adapter at all these tests fail; they never skip.
//! Models cross between this build and the default (flex, CPU) one in both directions.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::common::{Fails, bin, metadata, predict_json};

/// The wgpu binary under test.
fn wgpu() -> Command {
    let mut c = bin();
    // Without it, EGL complains on stderr on headless machines.
    c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    c
}

/// The default (flex, CPU) binary: `IRIS_TRAINER_CPU_BIN` when set (a default build already
/// made, as CI passes the one its `cargo test` built), else built once per test run into
/// `<target>/cpu-tests`: its own directory, since building into the running `cargo test`'s one
/// would replace the wgpu binary under test.
fn cpu() -> Command {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    let path = BIN.get_or_init(|| {
        if let Some(given) = std::env::var_os("IRIS_TRAINER_CPU_BIN") {
            let given = PathBuf::from(given);
            assert!(
                given.is_file(),
                "IRIS_TRAINER_CPU_BIN={} is not a file",
                given.display()
            );
            return given;
        }
        // `<target>/<profile>/iris-trainer`
        let target = Path::new(env!("CARGO_BIN_EXE_iris-trainer"))
            .parent()
            .and_then(Path::parent)
            .expect("the binary lies in <target>/<profile>")
            .join("cpu-tests");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--quiet", "--locked", "--bin", "iris-trainer"])
            .arg("--target-dir")
            .arg(&target)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the default CPU binary failed");
        target
            .join("debug")
            .join(format!("iris-trainer{}", std::env::consts::EXE_SUFFIX))
    });
    let mut c = Command::new(path);
    c.env_remove("MODEL_DIR")
        .env_remove("IRIS_TRAINER_REQUIRE_GPU");
    c
}

/// A model trained once by the wgpu build (10 epochs), with what it printed on stderr.
fn wgpu_model() -> &'static (tempfile::TempDir, String) {
    static MODEL: OnceLock<(tempfile::TempDir, String)> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = wgpu()
            .args(["--epochs", "10", "--out"])
            .arg(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "the wgpu build could not train. `cargo test --features wgpu` needs a GPU or Mesa's \
             software Vulkan (Debian/Ubuntu: apt-get install mesa-vulkan-drivers libvulkan1). \
             It said: {stderr}"
        );
        (dir, stderr)
    })
}

#[test]
fn wgpu_build_trains_on_its_adapter_and_says_which() {
    let (dir, stderr) = wgpu_model();
    assert!(stderr.contains("using backend wgpu, device "), "{stderr}");
    let m = metadata(dir.path());
    assert_eq!(m["device"]["backend"], "wgpu");
    assert_eq!(m["metrics"]["epochs_run"], 10);
    let scratch = tempfile::tempdir().unwrap();
    let mut strict = wgpu();
    strict
        .args(["--quiet", "--require-gpu", "--epochs", "1", "--out"])
        .arg(scratch.path());
    if m["device"]["kind"] == "software_gpu" {
        assert!(
            stderr.contains("warning: no hardware GPU found"),
            "{stderr}"
        );
        // --require-gpu turns the software fallback into a clear error.
        strict.fails(7, &["a GPU is required"]);
        assert!(!scratch.path().join("model.json").exists());
    } else {
        assert!(!stderr.contains("no hardware GPU found"), "{stderr}");
        let out = strict.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn models_cross_between_the_wgpu_and_cpu_builds() {
    // First the wgpu model, so that a machine without an adapter fails before building.
    let gpu_model = wgpu_model().0.path();
    let cpu_model = tempfile::tempdir().unwrap();
    let out = cpu()
        .args(["--quiet", "--epochs", "10", "--out"])
        .arg(cpu_model.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(metadata(cpu_model.path())["device"]["backend"], "flex");

    // The wgpu-trained model in the CPU build, and the CPU-trained one in the wgpu
    // build: the same classes and probabilities to within float rounding.
    let rows = "5.1,3.5,1.4,0.2\n6.0,2.9,4.5,1.5\n6.7,3.0,5.2,2.3\n";
    for model in [gpu_model, cpu_model.path()] {
        let cpu = predict_json(cpu(), model, rows);
        let gpu = predict_json(wgpu(), model, rows);
        assert_eq!((cpu.len(), gpu.len()), (3, 3));
        for (a, b) in cpu.iter().zip(&gpu) {
            assert_eq!(a["species"], b["species"]);
            let (pa, pb) = (
                a["probabilities"].as_object().unwrap(),
                b["probabilities"].as_object().unwrap(),
            );
            assert_eq!(pa.len(), 3);
            for ((ka, va), (kb, vb)) in pa.iter().zip(pb) {
                assert_eq!(ka, kb);
                let (va, vb) = (va.as_f64().unwrap(), vb.as_f64().unwrap());
                assert!((va - vb).abs() < 1e-5, "{ka}: {va} vs {vb}");
            }
        }
    }
}

#[test]
fn wgpu_build_without_any_adapter_is_a_clear_error() {
    // Point the Vulkan loader at no driver at all.
    let dir = tempfile::tempdir().unwrap();
    let none = dir.path().join("none.json");
    wgpu()
        .env("VK_ICD_FILENAMES", &none)
        .env("VK_DRIVER_FILES", &none)
        .args(["--epochs", "1", "--out"])
        .arg(dir.path().join("m"))
        .fails(7, &["no GPU adapter found", "--gpus all"]);
    assert!(!dir.path().join("m").join("model.json").exists());
}
