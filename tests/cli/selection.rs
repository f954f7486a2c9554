//! Model selection: `cross-validate`, sweeps ranked on validation rows or on cross-validation
//! folds (never on the test split), and the refusals of folds that cannot work.

use iris_trainer::config::TrainConfig;
use iris_trainer::data::{Dataset, TrainingData};
use predicates::str::contains;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use crate::common::{Fails, cmd, metadata, write};

const SWEEP: &str =
    "[grid]\n\"training.learning_rate\" = [0.001, 0.03]\n\"model.hidden\" = [[4], [16]]\n";

fn json_of(out: &[u8]) -> Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(out)))
}

fn cross_validate(extra: &[&str]) -> Value {
    let out = cmd()
        .args(["cross-validate", "--quiet", "--format", "json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_of(&out.stdout)
}

#[test]
fn cross_validate_reports_folds_mean_and_std_and_is_repeatable() {
    let a = cross_validate(&["--folds", "4", "--epochs", "40"]);
    let b = cross_validate(&["--folds", "4", "--epochs", "40"]);
    assert_eq!(a, b, "the same seed gives the same folds and scores");
    assert_eq!(a["k"], 4);
    assert_eq!(a["seed"], 42);
    assert_eq!(a["stratified"], true);
    // Iris: 150 rows, 30 test rows left out, 120 dealt into 4 folds of 30.
    assert_eq!(a["rows"], 120);
    assert_eq!(a["test_rows_left_out"], 30);
    let folds = a["folds"].as_array().unwrap();
    assert_eq!(folds.len(), 4);
    let accs: Vec<f64> = folds
        .iter()
        .map(|f| {
            assert_eq!(f["held_out_rows"], 30);
            assert_eq!(f["train_rows"], 90);
            f["scores"]["accuracy"].as_f64().unwrap()
        })
        .collect();
    let mean = accs.iter().sum::<f64>() / 4.0;
    let std = (accs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 4.0).sqrt();
    assert!((a["mean"]["accuracy"].as_f64().unwrap() - mean).abs() < 1e-12);
    assert!((a["std"]["accuracy"].as_f64().unwrap() - std).abs() < 1e-12);
    for key in ["accuracy", "macro_f1", "loss"] {
        assert!(a["std"][key].is_number(), "{key}: {a}");
    }
    // Another seed deals other folds (the scores of each fold change with them).
    let c = cross_validate(&["--folds", "4", "--epochs", "40", "--seed", "7"]);
    assert_eq!(c["seed"], 7);
    assert_ne!(a["folds"], c["folds"]);

    cmd()
        .args(["cross-validate", "--quiet", "--folds", "3", "--epochs", "20"])
        .assert()
        .success()
        .stdout(contains(
            "3-fold cross-validation (stratified, seed 42) on 120 training rows; the 30 test rows were left out",
        ))
        .stdout(contains("mean"))
        .stdout(contains("std"));
}

#[test]
fn bad_folds_are_refused_before_training_naming_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    cmd()
        .args(["cross-validate", "--folds", "1"])
        .fails(3, &["`--folds` = 1", "at least 2 folds"]);
    // Iris keeps 40 rows of each class in the training split.
    cmd().args(["cross-validate", "--folds", "41"]).fails(
        3,
        &[
            "`--folds` = 41",
            "class `setosa` has 40 rows",
            "at most 40 folds",
        ],
    );
    // Class b has 3 rows: 1 test row, 2 training rows. Two folds work; with early stopping each
    // fold trains on 1 row of b and cannot hold one out for validation.
    let mut text = String::from("x,y\n");
    for i in 0..12 {
        text += &format!("{i},a\n");
    }
    for i in 0..3 {
        text += &format!("{},b\n", 100 + i);
    }
    let data = write(dir.path(), "small.csv", text);
    cmd()
        .args([
            "cross-validate",
            "--quiet",
            "--folds",
            "2",
            "--epochs",
            "5",
            "--data",
        ])
        .arg(&data)
        .assert()
        .success();
    cmd()
        .args([
            "cross-validate",
            "--folds",
            "2",
            "--patience",
            "3",
            "--data",
        ])
        .arg(&data)
        .fails(
            3,
            &[
                "`--folds` = 2",
                "with early stopping on, fold 1 trains on",
                "class `b` has 1 row",
                "use fewer folds",
            ],
        );
    cmd()
        .args(["cross-validate", "--folds", "3", "--data"])
        .arg(&data)
        .fails(
            3,
            &[
                "class `b` has 2 rows in the training split",
                "at most 2 folds",
            ],
        );
    // A sweep refuses them before any point is trained.
    let sweep = write(dir.path(), "s.toml", SWEEP);
    let root = dir.path().join("sweep");
    cmd()
        .args(["sweep", "--folds", "41", "--sweep"])
        .arg(&sweep)
        .arg("--out")
        .arg(&root)
        .fails(3, &["`--folds` = 41", "class `setosa` has 40 rows"]);
    assert!(!root.join("point-000").exists(), "nothing was trained");
    cmd()
        .args(["cross-validate", "--sweep"])
        .arg(&sweep)
        .fails(3, &["sweep --folds K"]);
}

fn report_json(root: &std::path::Path, extra: &[&str]) -> Value {
    let out = cmd()
        .args(["sweep-report", "--format", "json"])
        .args(extra)
        .arg(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_of(&out.stdout)
}

#[test]
fn sweeps_rank_on_validation_rows_by_default_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = write(dir.path(), "s.toml", SWEEP);
    let root = dir.path().join("sweep");
    let table = cmd()
        .args([
            "sweep", "--quiet", "--jobs", "2", "--epochs", "60", "--sweep",
        ])
        .arg(&sweep)
        .arg("--out")
        .arg(&root)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let table = String::from_utf8(table).unwrap();
    assert!(table.contains("ranked by `valid_accuracy`"), "{table}");
    assert!(table.contains("decided nothing"), "{table}");
    assert!(table.contains("**valid_accuracy**"), "{table}");
    assert!(table.contains("test_accuracy (info)"), "{table}");
    // Each point held out 10% of its 120 training rows, the same rows for every point.
    let m = metadata(&root.join("point-000"));
    assert_eq!(m["split"]["valid"], 12);
    assert_eq!(m["split"]["train"], 108);
    assert_eq!(m["metrics"]["valid"]["rows"], 12, "{}", m["metrics"]);
    let v = report_json(&root, &[]);
    assert_eq!(v["ranked_by"], "valid_accuracy");
    assert_eq!(v["selection"], "validation");
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let key = |r: &Value| {
        (
            r["selection"]["accuracy"].as_f64().unwrap(),
            -r["selection"]["loss"].as_f64().unwrap(),
        )
    };
    assert!(
        rows.windows(2).all(|w| key(&w[0]) >= key(&w[1])),
        "best first by validation accuracy, ties by validation loss: {rows:?}"
    );
    assert!(
        rows.iter()
            .all(|r| r["score"] == r["selection"]["accuracy"])
    );
    assert!(rows.iter().all(|r| r["test"]["accuracy"].is_number()));
    // By loss: ascending.
    let v = report_json(&root, &["--rank-by", "loss"]);
    assert_eq!(v["ranked_by"], "valid_loss");
    let losses: Vec<f64> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .collect();
    assert!(losses.windows(2).all(|w| w[0] <= w[1]), "{losses:?}");
    // CSV names the deciding column on every row.
    cmd()
        .args(["sweep-report", "--format", "csv"])
        .arg(&root)
        .assert()
        .success()
        .stdout(contains("rank,point,overrides,ranked_by,valid_accuracy"))
        .stdout(contains(",valid_accuracy,"));
    // A regression metric for classification points is refused, naming the choices.
    cmd()
        .args(["sweep-report", "--rank-by", "r2"])
        .arg(&root)
        .fails(
            3,
            &[
                "`--rank-by` = r2",
                "classification",
                "accuracy, macro-f1, loss",
            ],
        );
}

#[test]
fn cross_validated_sweep_ranks_by_mean_with_std_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = write(dir.path(), "s.toml", SWEEP);
    let root = dir.path().join("sweep");
    let table = cmd()
        .args([
            "sweep", "--quiet", "--jobs", "2", "--epochs", "40", "--folds", "3", "--sweep",
        ])
        .arg(&sweep)
        .arg("--out")
        .arg(&root)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let table = String::from_utf8(table).unwrap();
    assert!(table.contains("ranked by `cv_mean_accuracy`"), "{table}");
    assert!(table.contains("3 cross-validation folds"), "{table}");
    assert!(table.contains("± std accuracy"), "{table}");
    let v = report_json(&root, &[]);
    assert_eq!(v["selection"], "cross-validation");
    assert_eq!(v["folds"], 3);
    let rows = v["rows"].as_array().unwrap();
    let means: Vec<f64> = rows.iter().map(|r| r["score"].as_f64().unwrap()).collect();
    assert!(means.windows(2).all(|w| w[0] >= w[1]), "{means:?}");
    for r in rows {
        let dir = std::path::PathBuf::from(r["dir"].as_str().unwrap());
        let cv = &metadata(&dir)["metrics"]["cross_validation"];
        assert_eq!(cv["k"], 3);
        assert_eq!(r["score"], cv["mean"]["accuracy"]);
        assert_eq!(r["score_std"], cv["std"]["accuracy"]);
        // The same folds for every point.
        let held: Vec<&Value> = cv["folds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| &f["held_out_rows"])
            .collect();
        assert_eq!(held, [&Value::from(40); 3]);
    }
    // Best installed, with the deciding score named.
    let best = dir.path().join("best");
    cmd()
        .args(["sweep-report", "--best"])
        .arg(&best)
        .arg(&root)
        .assert()
        .success()
        .stderr(contains("cv_mean_accuracy"))
        .stderr(contains("±"));
    assert_eq!(metadata(&best)["sweep"]["index"], rows[0]["index"]);
}

/// A regression table whose test rows can be poisoned without moving the split: a random split
/// depends only on the row count, not the labels.
fn regression_csv(poison: &[usize]) -> String {
    let mut s = String::from("a,b,y\n");
    for i in 0..80usize {
        let a = (i * 37 % 80) as f64 / 10.0;
        let b = (i * 11 % 17) as f64 / 3.0;
        let mut y = 3.0 * a - 2.0 * b + ((i * 7 % 5) as f64 - 2.0) * 0.1;
        if poison.contains(&i) {
            y = -100.0 * y + 1000.0;
        }
        s += &format!("{a},{b},{y}\n");
    }
    s
}

#[test]
fn no_selection_path_reads_the_test_split() {
    let dir = tempfile::tempdir().unwrap();
    let clean = write(dir.path(), "clean.csv", regression_csv(&[]));
    // The test rows, as `train` draws them (the library's own split).
    let mut config = TrainConfig::default();
    config.data.path = Some(clean.clone());
    let dataset = Dataset::load(&config.data).unwrap();
    let split = TrainingData::test_split(
        &dataset,
        &config,
        &mut ChaCha8Rng::seed_from_u64(config.split_seed()),
    )
    .unwrap();
    assert_eq!(split.test.len(), 16);
    let poisoned = write(dir.path(), "poisoned.csv", regression_csv(&split.test));

    let sweep = write(
        dir.path(),
        "s.toml",
        "[grid]\n\"training.learning_rate\" = [0.003, 0.03]\n\"model.hidden\" = [[4], [16]]\n\
         \"training.seed\" = [1, 2]\n",
    );
    let run = |data: &std::path::Path, name: &str, folds: Option<&str>| {
        let root = dir.path().join(name);
        let mut c = cmd();
        c.args([
            "sweep",
            "--quiet",
            "--jobs",
            "2",
            "--epochs",
            "60",
            "--task",
            "regression",
        ]);
        if let Some(k) = folds {
            c.args(["--folds", k]);
        }
        c.arg("--sweep")
            .arg(&sweep)
            .arg("--data")
            .arg(data)
            .arg("--out")
            .arg(&root)
            .assert()
            .success();
        report_json(&root, &[])
    };
    for folds in [None, Some("3")] {
        let a = run(&clean, &format!("clean-{folds:?}"), folds);
        let b = run(&poisoned, &format!("poisoned-{folds:?}"), folds);
        assert_eq!(
            a["ranked_by"],
            if folds.is_some() {
                "cv_mean_r2"
            } else {
                "valid_r2"
            }
        );
        let pick = |v: &Value| -> Vec<(Value, Value, Value, Value)> {
            v["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["index"].clone(),
                        r["score"].clone(),
                        r["score_std"].clone(),
                        r["selection"].clone(),
                    )
                })
                .collect()
        };
        assert_eq!(
            pick(&a),
            pick(&b),
            "the ranking and its scores ignore the test rows"
        );
        // The poison did reach the test scores, which are only shown.
        let test_r2 = |v: &Value| v["rows"][0]["test"]["r2"].as_f64().unwrap();
        assert!(
            (test_r2(&a) - test_r2(&b)).abs() > 0.5,
            "{} vs {}",
            test_r2(&a),
            test_r2(&b)
        );
    }
    let cv = |data: &std::path::Path| {
        let v = cross_validate(&[
            "--folds",
            "4",
            "--epochs",
            "30",
            "--task",
            "regression",
            "--data",
            data.to_str().unwrap(),
        ]);
        assert_eq!(v["stratified"], false);
        v
    };
    assert_eq!(
        cv(&clean),
        cv(&poisoned),
        "cross-validation never reads the test rows"
    );
}

/// The lines of the README's console block that follows `$ {command}`.
fn readme_output(command: &str) -> Vec<String> {
    let readme = include_str!("../../README.md");
    let start = readme
        .find(&format!("$ {command}\n"))
        .unwrap_or_else(|| panic!("the README shows `{command}`"));
    readme[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .map(str::to_string)
        .collect()
}

fn run_readme(command: &str, dir: &std::path::Path) -> String {
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let out = cmd()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args.iter().map(|a| {
            if *a == "artifacts/sweep" {
                dir.join("sweep").display().to_string()
            } else {
                a.to_string()
            }
        }))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn readme_cross_validation_outputs_are_what_the_program_prints() {
    let dir = tempfile::tempdir().unwrap();
    let command = "iris-trainer cross-validate --quiet --config configs/mlp.toml --folds 5";
    let printed = run_readme(command, dir.path());
    assert_eq!(printed.lines().collect::<Vec<_>>(), readme_output(command));

    // The cross-validated sweep's point 1 is the shipped config (hidden [16], learning rate
    // 0.01): its row shows the same folds' mean and spread. (Running the whole README sweep
    // here would take minutes in a debug build.)
    let mean_std = |name: &str| {
        let line = printed.lines().find(|l| l.starts_with(name)).unwrap();
        let cells: Vec<&str> = line.split_whitespace().collect();
        // accuracy and loss columns
        (cells[1].to_string(), cells[2].to_string())
    };
    let (mean_acc, mean_loss) = mean_std("mean");
    let (std_acc, std_loss) = mean_std("std");
    let sweep = readme_output(
        "iris-trainer sweep --quiet --config configs/mlp.toml --sweep configs/sweep.toml --folds 5 --out artifacts/sweep",
    );
    let row = sweep
        .iter()
        .find(|l| l.contains("| 1 | model.hidden=[16] training.learning_rate=0.01 |"))
        .expect("the README's sweep table has point 1");
    assert!(
        row.contains(&format!(
            "| {mean_acc} | {std_acc} | {mean_loss} | {std_loss} |"
        )),
        "{row}"
    );
}
