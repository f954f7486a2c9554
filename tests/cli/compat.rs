//! Model directories written by an earlier release (format 2, committed under
//! `tests/fixtures/`) still load, predict what that release predicted, evaluate and describe
//! themselves.

use std::path::{Path, PathBuf};

use crate::common::cmd;

/// The fixture directory `name` and the table its predictions were made on.
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name)
}

/// `predict --format csv` on `table` matches what the release that wrote `model` printed:
/// the same header, the same classes, numbers within float noise.
fn predicts_as_written(model: &str, table: &str) {
    let out = cmd()
        .args(["predict", "--format", "csv", "--model"])
        .arg(fixture(model))
        .arg("--input")
        .arg(data(table))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{model}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = String::from_utf8(out.stdout).unwrap();
    let theirs = std::fs::read_to_string(fixture(&format!("{model}.expected.csv"))).unwrap();
    let (ours, theirs): (Vec<_>, Vec<_>) = (ours.lines().collect(), theirs.lines().collect());
    assert_eq!(ours.len(), theirs.len(), "{model}: rows");
    assert_eq!(ours[0], theirs[0], "{model}: header");
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate().skip(1) {
        let (a, b): (Vec<_>, Vec<_>) = (a.split(',').collect(), b.split(',').collect());
        assert_eq!(a.len(), b.len(), "{model} row {i}");
        for (x, y) in a.iter().zip(&b) {
            match (x.parse::<f64>(), y.parse::<f64>()) {
                (Ok(x), Ok(y)) => assert!(
                    (x - y).abs() <= 1e-5 * y.abs().max(1.0),
                    "{model} row {i}: {x} now, {y} when written"
                ),
                _ => assert_eq!(x, y, "{model} row {i}"),
            }
        }
    }
}

#[test]
fn format_2_directories_predict_what_they_predicted() {
    predicts_as_written("v2-iris", "iris.csv");
    // Categories, blanks, a missing-value indicator.
    predicts_as_written("v2-penguins", "penguins.csv");
    // Regression, fitted with the Huber loss.
    predicts_as_written("v2-diabetes-huber", "diabetes.csv");
}

#[test]
fn format_2_directories_evaluate_and_describe_themselves() {
    let out = cmd()
        .args(["evaluate", "--format", "json", "--model"])
        .arg(fixture("v2-penguins"))
        .arg("--data")
        .arg(data("penguins.csv"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let acc = v["accuracy"].as_f64().unwrap();
    assert!(acc > 0.9, "penguins accuracy {acc}");

    let out = cmd()
        .args(["info", "--model"])
        .arg(fixture("v2-diabetes-huber"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    // Read as the recipe it was made by: `mlp` version 1, one network, the Huber loss.
    assert!(
        text.contains("recipe:    mlp v1: huber (delta 1) loss"),
        "{text}"
    );
    assert!(text.contains("1 network (model.json format 2)"), "{text}");
}

/// `evaluate` scores as training did: on the whole table the Huber-trained regressor's loss is
/// the row-weighted mean of the losses training recorded on its train and test rows (no
/// validation rows), which a squared-error `evaluate` would not give.
#[test]
fn evaluate_reports_the_loss_the_model_was_trained_with() {
    let model = fixture("v2-diabetes-huber");
    let meta = crate::common::metadata(&model);
    assert_eq!(meta["split"]["valid"], 0);
    let rows = |split: &str| meta["split"][split].as_f64().unwrap();
    let loss = |split: &str| meta["metrics"][split]["loss"].as_f64().unwrap();
    let expected = (rows("train") * loss("train") + rows("test") * loss("test"))
        / (rows("train") + rows("test"));
    let out = cmd()
        .args(["evaluate", "--format", "json", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(data("diabetes.csv"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let got = v["loss"].as_f64().unwrap();
    assert!(
        (got - expected).abs() < 1e-5 * expected,
        "evaluate's loss {got}, training's {expected}"
    );
}
