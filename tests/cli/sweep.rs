//! Sweeps end to end: one point by index (as a Kubernetes Indexed Job runs it), a whole local
//! sweep across processes, the report and the installation of the best model.

use predicates::str::contains;

use crate::common::{Fails, bin, cmd, metadata, write};

const SWEEP: &str = "[grid]\n\"training.learning_rate\" = [0.001, 0.05]\n\"model.hidden\" = [[4], [16]]\n\
                     [[points]]\n\"training.epochs\" = 7\n";

#[test]
fn one_point_by_index_or_job_completion_index() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = write(dir.path(), "s.toml", SWEEP);
    let root = dir.path().join("sweep");
    cmd()
        .args(["train", "--quiet", "--epochs", "20", "--sweep"])
        .arg(&sweep)
        .args(["--sweep-index", "3", "--out"])
        .arg(&root)
        .assert()
        .success();
    let m = metadata(&root.join("point-003"));
    assert_eq!(m["model"]["hidden"], serde_json::json!([16]));
    assert_eq!(m["config"]["training"]["learning_rate"], 0.05);
    assert_eq!(m["config"]["training"]["epochs"], 20);
    assert_eq!(m["sweep"]["index"], 3);
    assert_eq!(m["sweep"]["points"], 5);
    assert_eq!(m["sweep"]["overrides"]["training.learning_rate"], 0.05);
    // The index from the environment, as in a Kubernetes Indexed Job.
    bin()
        .env("JOB_COMPLETION_INDEX", "4")
        .args(["--quiet", "--sweep"])
        .arg(&sweep)
        .arg("--out")
        .arg(&root)
        .output()
        .map(|o| assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr)))
        .unwrap();
    assert_eq!(
        metadata(&root.join("point-004"))["metrics"]["epochs_run"],
        7
    );
}

#[test]
fn bad_sweeps_and_indices_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = write(dir.path(), "s.toml", SWEEP);
    cmd()
        .args(["--sweep"])
        .arg(&sweep)
        .fails(3, &["--sweep-index", "JOB_COMPLETION_INDEX"]);
    cmd()
        .args(["--sweep"])
        .arg(&sweep)
        .args(["--sweep-index", "5"])
        .fails(3, &["the sweep has 5 points (0 to 4)"]);
    let typo = write(
        dir.path(),
        "typo.toml",
        "[grid]\n\"training.learning_rat\" = [0.1]\n",
    );
    cmd()
        .args(["--sweep"])
        .arg(&typo)
        .args(["--sweep-index", "0"])
        .fails(3, &["typo.toml", "learning_rat"]);
    let bad_value = write(
        dir.path(),
        "bad.toml",
        "[[points]]\n\"training.epochs\" = 0\n",
    );
    cmd()
        .args(["sweep", "--sweep"])
        .arg(&bad_value)
        .fails(3, &["`training.epochs` = 0", "point 0"]);
    cmd().args(["sweep"]).fails(3, &["needs --sweep FILE"]);
    cmd()
        .args(["sweep-report"])
        .arg(dir.path())
        .fails(5, &["no finished sweep points"]);
}

#[test]
fn local_sweep_ranks_every_point_and_installs_the_best() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = write(dir.path(), "s.toml", SWEEP);
    let root = dir.path().join("sweep");
    let out = cmd()
        .args([
            "sweep", "--quiet", "--jobs", "2", "--epochs", "60", "--sweep",
        ])
        .arg(&sweep)
        .arg("--out")
        .arg(&root)
        .assert()
        .success()
        .stdout(contains("| rank | point |"))
        .get_output()
        .stdout
        .clone();
    let table = String::from_utf8(out).unwrap();
    assert_eq!(
        table
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| rank"))
            .count(),
        5,
        "{table}"
    );
    for i in 0..5 {
        assert!(
            root.join(format!("point-{i:03}"))
                .join("model.mpk")
                .exists()
        );
    }
    // The report, as JSON: ranked by validation accuracy, best first, nothing missing.
    let json = cmd()
        .args(["sweep-report", "--format", "json"])
        .arg(&root)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    assert!(v["missing"].as_array().unwrap().is_empty());
    assert_eq!(v["ranked_by"], "valid_accuracy");
    let accs: Vec<f64> = rows
        .iter()
        .map(|r| r["selection"]["accuracy"].as_f64().unwrap())
        .collect();
    assert!(accs.windows(2).all(|w| w[0] >= w[1]), "{accs:?}");
    for f in ["sweep-report.md", "sweep-report.csv", "sweep-report.json"] {
        assert!(root.join(f).exists(), "{f}");
    }
    // The chart of the points names the best one.
    let best = rows[0]["index"].as_u64().unwrap();
    let svg = std::fs::read_to_string(root.join("sweep-report.svg")).unwrap();
    assert!(
        svg.contains(&format!("best point {best} (ranked by valid_accuracy)")),
        "{svg}"
    );
    // The test split is drawn beside it, marked as information only.
    assert!(
        svg.contains("test accuracy (information, not ranked by)"),
        "{svg}"
    );
    assert!(
        std::fs::read(root.join("sweep-report.png"))
            .unwrap()
            .starts_with(b"\x89PNG")
    );
    // By loss: ascending.
    let json = cmd()
        .args(["sweep-report", "--rank-by", "loss", "--format", "json"])
        .arg(&root)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let losses: Vec<f64> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["selection"]["loss"].as_f64().unwrap())
        .collect();
    assert!(losses.windows(2).all(|w| w[0] <= w[1]), "{losses:?}");

    // Install the best point as a model directory that predicts.
    let best = dir.path().join("best");
    cmd()
        .args(["sweep-report", "--format", "csv", "--best"])
        .arg(&best)
        .arg(&root)
        .assert()
        .success()
        .stdout(contains("rank,point,overrides"));
    let best_index = rows[0]["index"].as_u64().unwrap();
    assert_eq!(metadata(&best)["sweep"]["index"], best_index);
    assert_eq!(
        std::fs::read(best.join("model.mpk")).unwrap(),
        std::fs::read(
            root.join(format!("point-{best_index:03}"))
                .join("model.mpk")
        )
        .unwrap()
    );
    cmd()
        .args(["predict", "-m"])
        .arg(&best)
        .args(["5.1", "3.5", "1.4", "0.2"])
        .assert()
        .success();

    // A copied or leftover directory whose name does not match its recorded index is ignored.
    let stray = root.join("point-009");
    std::fs::create_dir(&stray).unwrap();
    for f in ["model.mpk", "model.json", "metrics.csv", "model.txt"] {
        std::fs::copy(root.join("point-000").join(f), stray.join(f)).unwrap();
    }
    let json = cmd()
        .args(["sweep-report", "--format", "json"])
        .arg(&root)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["rows"].as_array().unwrap().len(), 5);

    // A missing point is reported as missing.
    std::fs::remove_dir_all(root.join("point-002")).unwrap();
    let json = cmd()
        .args(["sweep-report", "--format", "json"])
        .arg(&root)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["missing"], serde_json::json!([2]));
}

#[test]
fn failed_points_fail_the_sweep_and_are_named() {
    let dir = tempfile::tempdir().unwrap();
    // Point 1 diverges (a huge learning rate on extreme data); point 0 trains.
    let data = write(
        dir.path(),
        "d.csv",
        "a,y\n1e38,x\n-1e38,y\n1e38,x\n-1e38,y\n3,x\n-3,y\n",
    );
    let sweep = write(
        dir.path(),
        "s.toml",
        "[[points]]\n\"training.learning_rate\" = 0.01\n[[points]]\n\"training.learning_rate\" = 1e30\n",
    );
    cmd()
        .args(["sweep", "--quiet", "--epochs", "5", "--sweep"])
        .arg(&sweep)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(dir.path().join("out"))
        .fails(
            1,
            &[
                "1 of 2 sweep points failed",
                "point 1: error: training diverged",
            ],
        );
}
