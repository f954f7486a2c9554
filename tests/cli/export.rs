//! `model.safetensors` and the pictures from the command line: what `train` writes, what `info`
//! says about them, `export`, and the sweep chart.

use predicates::str::contains;

use crate::common::{Fails, cmd, copy_model, metadata, shared_model, train_into};

const PICTURES: [&str; 4] = [
    "training_curves.svg",
    "training_curves.png",
    "confusion_matrix.svg",
    "confusion_matrix.png",
];

#[test]
fn train_writes_the_weights_and_pictures_and_info_lists_them() {
    let model = shared_model();
    for f in PICTURES.iter().chain(&["model.safetensors", "model.onnx"]) {
        let bytes = std::fs::read(model.join(f)).unwrap();
        assert!(bytes.len() > 500, "{f} is only {} bytes", bytes.len());
    }
    assert!(
        std::fs::read(model.join("training_curves.png"))
            .unwrap()
            .starts_with(b"\x89PNG")
    );
    assert!(
        std::fs::read_to_string(model.join("confusion_matrix.svg"))
            .unwrap()
            .starts_with("<svg")
    );
    let listed: Vec<String> = metadata(model)["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed[..2], ["model.safetensors", "model.onnx"]);
    assert_eq!(listed[2..], PICTURES);
    cmd()
        .args(["info", "--model"])
        .arg(model)
        .assert()
        .success()
        .stdout(contains(
            "weights:   model.safetensors (PyTorch layout, for other tools)",
        ))
        .stdout(contains(
            "onnx:      model.onnx (raw columns to answers, for ONNX runtimes)",
        ))
        .stdout(contains(
            "pictures:  training_curves.svg, training_curves.png, confusion_matrix.svg, confusion_matrix.png",
        ))
        .stderr("");
}

#[test]
fn info_warns_about_a_missing_or_changed_file_but_still_describes_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    train_into(&model, 5);
    std::fs::write(model.join("model.safetensors"), b"edited").unwrap();
    std::fs::remove_file(model.join("training_curves.png")).unwrap();
    std::fs::remove_file(model.join("model.onnx")).unwrap();
    let out = cmd()
        .args(["info", "--model"])
        .arg(&model)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("model.safetensors does not match the SHA-256 in model.json")
            && stderr.contains("training_curves.png is missing")
            && stderr.contains("iris-trainer export"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "model.onnx is missing; `iris-trainer export --format onnx` rewrites model.onnx"
        ),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("network:   MLP 4-16-3"));
    // `export` rewrites the weights, `export --format onnx` the graph, and the warnings go.
    cmd()
        .args(["export", "--quiet", "--model"])
        .arg(&model)
        .assert()
        .success()
        .stdout("");
    cmd()
        .args(["export", "--quiet", "--format", "onnx", "--model"])
        .arg(&model)
        .assert()
        .success()
        .stdout("");
    // The missing picture is no longer listed (the model never needed it).
    cmd()
        .args(["info", "--model"])
        .arg(&model)
        .assert()
        .success()
        .stdout(contains(
            "onnx:      model.onnx (raw columns to answers, for ONNX runtimes)",
        ))
        .stdout(contains(
            "pictures:  training_curves.svg, confusion_matrix.svg, confusion_matrix.png",
        ))
        .stderr("");
}

#[test]
fn export_writes_the_file_a_model_directory_holds() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("weights.safetensors");
    cmd()
        .args(["export", "--format", "safetensors", "--model"])
        .arg(shared_model())
        .arg("--output")
        .arg(&out)
        .assert()
        .success()
        .stderr(contains("wrote"));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(shared_model().join("model.safetensors")).unwrap()
    );
    // A directory copied without the file (as one saved by an older version): `export` adds it
    // and lists it in model.json.
    let copy = copy_model(shared_model());
    cmd()
        .args(["export", "--quiet", "--model"])
        .arg(copy.path())
        .assert()
        .success();
    assert_eq!(
        std::fs::read(copy.path().join("model.safetensors")).unwrap(),
        std::fs::read(&out).unwrap()
    );
    assert_eq!(
        metadata(copy.path())["files"][0]["file"],
        "model.safetensors"
    );
}

#[test]
fn export_writes_onnx_and_a_triton_repository() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.onnx");
    cmd()
        .args(["export", "--quiet", "--format", "onnx", "--model"])
        .arg(shared_model())
        .arg("--output")
        .arg(&out)
        .assert()
        .success()
        .stderr("");
    let onnx = std::fs::read(shared_model().join("model.onnx")).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), onnx);
    // A directory without it (as one saved by an older version): added and listed.
    let copy = copy_model(shared_model());
    cmd()
        .args(["export", "--quiet", "--format", "onnx", "--model"])
        .arg(copy.path())
        .assert()
        .success();
    assert_eq!(std::fs::read(copy.path().join("model.onnx")).unwrap(), onnx);
    let listed = metadata(copy.path())["files"].clone();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["file"] == "model.onnx"),
        "{listed}"
    );
    // Into a repository that holds another model, twice: the entry is replaced whole.
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(repo.join("other/1")).unwrap();
    for _ in 0..2 {
        cmd()
            .args([
                "export",
                "--format",
                "triton-repository",
                "--model-name",
                "iris",
                "--model",
            ])
            .arg(shared_model())
            .arg("--output")
            .arg(&repo)
            .assert()
            .success()
            .stderr(contains("repo/iris"));
    }
    assert_eq!(std::fs::read(repo.join("iris/1/model.onnx")).unwrap(), onnx);
    let config = std::fs::read_to_string(repo.join("iris/config.pbtxt")).unwrap();
    assert!(
        config.contains("name: \"iris\"\nbackend: \"onnxruntime\""),
        "{config}"
    );
    let mut entries: Vec<String> = std::fs::read_dir(&repo)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["iris", "other"]);
}

#[test]
fn export_refuses_bad_input_clearly() {
    let dir = tempfile::tempdir().unwrap();
    cmd()
        .args(["export", "--model"])
        .arg(dir.path().join("none"))
        .fails(5, &["none", "does not exist"]);
    assert!(!dir.path().join("none").exists());
    cmd()
        .args(["export", "--format", "pickle", "--model"])
        .arg(shared_model())
        .fails(2, &["pickle", "safetensors", "onnx", "triton-repository"]);
    cmd()
        .args(["export", "--format", "triton-repository", "--model"])
        .arg(shared_model())
        .fails(2, &["--output"]);
    cmd()
        .args([
            "export",
            "--format",
            "triton-repository",
            "--model-name",
            "a/b",
            "--model",
        ])
        .arg(shared_model())
        .arg("--output")
        .arg(dir.path().join("repo"))
        .fails(2, &["a/b"]);
    assert!(!dir.path().join("repo").exists());
    cmd()
        .args(["export", "--format", "onnx", "--model"])
        .arg(shared_model())
        .arg("--output")
        .arg(dir.path().join("no/such/dir/m.onnx"))
        .fails(6, &["no/such/dir"]);
    // A corrupt model directory: refused, nothing written beside it.
    let copy = copy_model(shared_model());
    std::fs::write(copy.path().join("model.mpk"), b"not a record").unwrap();
    let out = dir.path().join("corrupt.onnx");
    cmd()
        .args(["export", "--format", "onnx", "--model"])
        .arg(copy.path())
        .arg("--output")
        .arg(&out)
        .fails(5, &["model.mpk"]);
    assert!(!out.exists());
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.to_string_lossy().starts_with(".tmp")),
        "{names:?}"
    );
    cmd()
        .args(["export", "--model"])
        .arg(shared_model())
        .arg("--output")
        .arg(dir.path().join("no/such/dir/w.safetensors"))
        .fails(6, &["no/such/dir"]);
}

#[test]
fn export_writes_an_mlflow_model_and_refuses_bad_input_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mlflow-iris");
    cmd()
        .args(["export", "--format", "mlflow", "--model"])
        .arg(shared_model())
        .arg("--output")
        .arg(&out)
        .assert()
        .success()
        .stderr(contains("mlflow-iris"));
    let mlmodel: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("MLmodel")).unwrap()).unwrap();
    assert_eq!(
        mlmodel["flavors"]["python_function"]["loader_module"],
        "iris_trainer_pyfunc"
    );
    assert_eq!(
        std::fs::read(out.join("model.onnx")).unwrap(),
        std::fs::read(shared_model().join("model.onnx")).unwrap()
    );
    // Without --output: clap's usage error, naming it.
    cmd()
        .args(["export", "--format", "mlflow", "--model"])
        .arg(shared_model())
        .fails(2, &["--output"]);
    // Over a directory that is not an MLflow model: refused, its files kept.
    let notes = dir.path().join("notes");
    std::fs::create_dir(&notes).unwrap();
    std::fs::write(notes.join("keep.txt"), "mine").unwrap();
    cmd()
        .args(["export", "--format", "mlflow", "--model"])
        .arg(shared_model())
        .arg("--output")
        .arg(&notes)
        .fails(6, &["notes", "not an MLflow model directory"]);
    assert_eq!(
        std::fs::read_to_string(notes.join("keep.txt")).unwrap(),
        "mine"
    );
    // A corrupt model directory: refused, nothing written.
    let copy = copy_model(shared_model());
    std::fs::write(copy.path().join("model.mpk"), b"not a record").unwrap();
    cmd()
        .args(["export", "--format", "mlflow", "--model"])
        .arg(copy.path())
        .arg("--output")
        .arg(dir.path().join("corrupt"))
        .fails(5, &["model.mpk"]);
    assert!(!dir.path().join("corrupt").exists());
}

#[test]
fn register_model_is_refused_before_training_where_it_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    cmd()
        .env_remove("MLFLOW_TRACKING_URI")
        .args([
            "train",
            "--epochs",
            "2",
            "--register-model",
            "iris",
            "--out",
        ])
        .arg(&out)
        .fails(3, &["--register-model", "--tracking-uri"]);
    assert!(!out.exists());
    cmd()
        .args([
            "train",
            "--epochs",
            "2",
            "--tracking-uri",
            "http://127.0.0.1:9",
            "--register-model",
            " ",
            "--out",
        ])
        .arg(&out)
        .fails(3, &["--register-model", "needs a name"]);
    cmd()
        .args([
            "sweep",
            "--sweep",
            "configs/sweep.toml",
            "--register-model",
            "iris",
            "--out",
        ])
        .arg(&out)
        .fails(3, &["--register-model", "`sweep` does not take it"]);
    assert!(!out.exists());
}
