//! `predict`, `evaluate` and `info` against real model directories, good and bad.

use predicates::prelude::*;
use predicates::str::contains;

use crate::common::{Fails, bin, cmd, copy_model, shared_model, write};

const SETOSA: [&str; 4] = ["5.1", "3.5", "1.4", "0.2"];
const VIRGINICA: [&str; 4] = ["6.7", "3.0", "5.2", "2.3"];

#[test]
fn predict_one_flower_in_each_format() {
    let m = shared_model();
    cmd()
        .args(["predict", "--model"])
        .arg(m)
        .args(SETOSA)
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"^setosa\t(0\.9\d{3}|1\.0000)\n$").unwrap());
    let out = cmd()
        .args(["predict", "-f", "json", "-m"])
        .arg(m)
        .args(VIRGINICA)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &v["predictions"][0];
    assert_eq!(p["species"], "virginica");
    let probs = p["probabilities"].as_object().unwrap();
    assert_eq!(probs.len(), 3);
    let sum: f64 = probs.values().map(|x| x.as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-4, "{sum}");
    assert_eq!(p["probability"], p["probabilities"]["virginica"]);
    cmd()
        .args(["predict", "-f", "csv", "-m"])
        .arg(m)
        .args(SETOSA)
        .assert()
        .success()
        .stdout(contains(
            "species,probability,setosa,versicolor,virginica\nsetosa,",
        ));
}

#[test]
fn model_dir_from_environment() {
    bin()
        .env("MODEL_DIR", shared_model())
        .args(["predict"])
        .args(SETOSA)
        .output()
        .map(|o| assert!(o.status.success() && o.stdout.starts_with(b"setosa")))
        .unwrap();
}

#[test]
fn predict_many_rows_from_a_file_or_stdin_with_or_without_header() {
    let m = shared_model();
    let dir = tempfile::tempdir().unwrap();
    let with_header = write(
        dir.path(),
        "h.csv",
        "species,petal_width,petal_length,sepal_width,sepal_length\nx,0.2,1.4,3.5,5.1\ny,2.3,5.2,3.0,6.7\n",
    );
    cmd()
        .args(["predict", "-m"])
        .arg(m)
        .arg("--input")
        .arg(&with_header)
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"^setosa\t\S+\nvirginica\t\S+\n$").unwrap());
    cmd()
        .args(["predict", "-m"])
        .arg(m)
        .args(["--input", "-", "--format", "csv"])
        .write_stdin("5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3,virginica\n")
        .assert()
        .success()
        .stdout(predicate::function(|s: &str| s.lines().count() == 3));
}

#[test]
fn predict_bad_input_names_the_problem() {
    let m = shared_model();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: &str, code: i32, needle: &str| {
        cmd()
            .args(["predict", "-m"])
            .arg(m)
            .args(args)
            .write_stdin(stdin)
            .fails(code, &[needle]);
    };
    run(&["1", "2", "3"], "", 4, "expected 4 values");
    run(&["1", "2", "3", "4", "5"], "", 4, "expected 4 values");
    run(
        &["1", "x", "3", "4"],
        "",
        4,
        "`sepal_width`: `x` is not a number",
    );
    // `NaN` (like `NA`, `?` and an empty value) means "missing" and is imputed; infinity is an
    // error.
    cmd()
        .args(["predict", "-m"])
        .arg(m)
        .args(["1", "NaN", "3", "4"])
        .assert()
        .success();
    run(&["1", "inf", "3", "4"], "", 4, "not a finite number");
    run(&["3e38", "3.5", "1.4", "0.2"], "", 4, "too large to use");
    run(&["--input", "-"], "1,2,3\n", 4, "line 1 has 3 fields");
    run(&["--input", "-"], "1,2,3,4\n5,6,seven,8\n", 4, "line 2");
    run(&["--input", "-"], "", 4, "no rows");
    run(
        &["--input", "-"],
        "a,b,c,d\n",
        4,
        "no column `sepal_length`",
    );
    let missing = dir.path().join("none.csv");
    run(&["--input", missing.to_str().unwrap()], "", 4, "none.csv");
    // Negative numbers are values, not flags.
    cmd()
        .args(["predict", "-m"])
        .arg(m)
        .args(["-1", "3.5", "1.4", "0.2"])
        .assert()
        .success();
}

#[test]
fn evaluate_reports_metrics_and_refuses_unknown_labels() {
    let m = shared_model();
    cmd()
        .args(["evaluate", "-m"])
        .arg(m)
        .assert()
        .success()
        .stdout(
            contains("rows 150")
                .and(contains("confusion matrix"))
                .and(contains("precision")),
        );
    let out = cmd()
        .args(["evaluate", "-f", "json", "-m"])
        .arg(m)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["evaluation"]["accuracy"].as_f64().unwrap() > 0.95);
    assert_eq!(v["evaluation"]["rows"], 150);

    let dir = tempfile::tempdir().unwrap();
    // Headerless UCI rows with the model's own label spelling work by position.
    let ok = write(
        dir.path(),
        "ok.csv",
        "5.1,3.5,1.4,0.2,setosa\n6.7,3.0,5.2,2.3,virginica\n",
    );
    cmd()
        .args(["evaluate", "-m"])
        .arg(m)
        .arg("--data")
        .arg(&ok)
        .assert()
        .success()
        .stdout(contains("rows 2  accuracy 1.0000"));
    let unknown = write(
        dir.path(),
        "u.csv",
        "5.1,3.5,1.4,0.2,Iris-setosa\n6.7,3.0,5.2,2.3,daisy\n",
    );
    cmd()
        .args(["evaluate", "-m"])
        .arg(m)
        .arg("--data")
        .arg(&unknown)
        .fails(
            4,
            &["labels the model was not trained on: `Iris-setosa`, `daisy`"],
        );
    let narrow = write(dir.path(), "n.csv", "1,2,x\n3,4,y\n");
    cmd()
        .args(["evaluate", "-m"])
        .arg(m)
        .arg("--data")
        .arg(&narrow)
        .fails(4, &["the model takes 4"]);
}

#[test]
fn info_in_text_and_json() {
    let m = shared_model();
    cmd().args(["info", "-m"]).arg(m).assert().success().stdout(
        contains("MLP 4-16-3")
            .and(contains("backend flex"))
            .and(contains("sepal_length")),
    );
    let out = cmd()
        .args(["info", "-f", "json", "-m"])
        .arg(m)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["classes"][2], "virginica");
}

/// Applies `damage` to a copy of the shared model and checks every command refuses it clearly.
fn refused(damage: impl Fn(&std::path::Path), needle: &str) {
    let dir = copy_model(shared_model());
    damage(dir.path());
    for sub in [&["predict", "5.1", "3.5", "1.4", "0.2"][..], &["evaluate"]] {
        bin()
            .args(sub)
            .arg("-m")
            .arg(dir.path())
            .fails(5, &[needle]);
    }
}

fn edit_json(dir: &std::path::Path, f: impl Fn(&mut serde_json::Value)) {
    let p = dir.join("model.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn damaged_model_directories_are_refused() {
    refused(
        |d| std::fs::remove_file(d.join("model.mpk")).unwrap(),
        "model.mpk: is missing",
    );
    refused(
        |d| std::fs::remove_file(d.join("model.json")).unwrap(),
        "model.json: is missing",
    );
    refused(
        |d| {
            let p = d.join("model.mpk");
            let b = std::fs::read(&p).unwrap();
            std::fs::write(&p, &b[..b.len() / 2]).unwrap();
        },
        "does not match the SHA-256",
    );
    refused(
        |d| {
            let p = d.join("model.mpk");
            let mut b = std::fs::read(&p).unwrap();
            let n = b.len();
            b[n - 3] ^= 0xff;
            std::fs::write(&p, b).unwrap();
        },
        "does not match the SHA-256",
    );
    refused(
        |d| std::fs::write(d.join("model.json"), "{not json").unwrap(),
        "not iris-trainer metadata",
    );
    refused(
        |d| std::fs::write(d.join("model.json"), [0xff, 0, 7]).unwrap(),
        "not iris-trainer metadata",
    );
    refused(
        |d| edit_json(d, |v| v["format_version"] = 99.into()),
        "format version 99",
    );
    refused(
        |d| {
            edit_json(d, |v| {
                // A consistent description of another architecture than the record's.
                v["model"]["hidden"] = serde_json::json!([32]);
                v["parameters"] = serde_json::json!(4 * 32 + 32 + 32 * 3 + 3);
            })
        },
        "model.mpk does not match model.json: layer 0 weight is [4, 16], expected [4, 32]",
    );
    refused(
        |d| edit_json(d, |v| v["classes"] = serde_json::json!(["a", "b"])),
        "2 class names for 3 model outputs",
    );
    refused(
        |d| edit_json(d, |v| v["model"]["dropout"] = serde_json::json!(2.0)),
        "dropout 2 is outside [0, 1)",
    );
    refused(
        |d| edit_json(d, |v| v["parameters"] = serde_json::json!(u64::MAX)),
        "`parameters` is 18446744073709551615, but the architecture",
    );
    refused(
        |d| {
            edit_json(d, |v| {
                v["model"]["hidden"] = serde_json::json!([1000000, 1000000])
            })
        },
        "parameters; at most",
    );
    refused(
        |d| {
            // A record crafted to be huge is refused before it is read.
            let f = std::fs::File::options()
                .append(true)
                .open(d.join("model.mpk"))
                .unwrap();
            f.set_len(64 << 20).unwrap();
        },
        "refusing to read it",
    );
    refused(
        |d| {
            // A consistent hash over garbage: the record itself is refused.
            let junk = b"\x93\x01\x02\x03 definitely not a burn record".to_vec();
            std::fs::write(d.join("model.mpk"), &junk).unwrap();
            let sha = sha256(&junk);
            edit_json(d, |v| v["record"]["sha256"] = sha.clone().into());
        },
        "model.mpk is not a valid record",
    );
    refused(
        |d| {
            std::fs::remove_file(d.join("model.mpk")).unwrap();
            std::fs::create_dir(d.join("model.mpk")).unwrap();
        },
        "is a directory",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "f", "x");
    cmd()
        .args(["info", "-m"])
        .arg(&file)
        .fails(5, &["is not a directory"]);
    cmd()
        .args(["info", "-m"])
        .arg(dir.path().join("nothing"))
        .fails(5, &["does not exist"]);
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn a_full_standard_output_is_an_output_error_not_bad_data() {
    let model = shared_model();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = bin()
        .args(["predict", "--model"])
        .arg(model)
        .args(["5.1", "3.5", "1.4", "0.2"])
        .stdout(full)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("cannot write standard output"), "{stderr}");
}
