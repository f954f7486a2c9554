//! `iris-trainer [train]`: the happy path, reproducibility, the model directory, bad input.

use predicates::prelude::*;
use predicates::str::contains;

use crate::common::{Fails, bin, cmd, metadata, snapshot, train_into, write};

#[test]
fn help_and_version() {
    cmd().arg("--help").assert().success().stdout(
        contains("predict")
            .and(contains("serve"))
            .and(contains("--config")),
    );
    for sub in ["train", "predict", "evaluate", "info", "serve"] {
        cmd()
            .args([sub, "--help"])
            .assert()
            .success()
            .stdout(contains("Usage"));
    }
    cmd()
        .arg("--version")
        .assert()
        .success()
        .stdout(contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn default_training_writes_a_complete_accurate_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model");
    let assert = cmd().arg("--out").arg(&out).assert().success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stdout.starts_with("trained 4-16-3 MLP"), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "one summary line: {stdout}");
    // Not a terminal: plain progress lines, and the backend line.
    assert!(stderr.contains("using backend flex"), "{stderr}");
    assert!(stderr.contains("epoch   300/300"), "{stderr}");

    let m = metadata(&out);
    // Version 3: the recipe whole, the model as an ensemble of networks, and the fitted
    // preprocessing as one unit.
    assert_eq!(m["format_version"], 3);
    assert_eq!(m["task"], "classification");
    assert_eq!(m["recipe"]["name"], "mlp");
    assert_eq!(m["recipe"]["version"], 2);
    assert_eq!(m["model"]["members"], 1);
    assert_eq!(
        m["preprocessing"]["encoding"]["columns"][0]["type"],
        "numeric"
    );
    assert_eq!(
        m["classes"],
        serde_json::json!(["setosa", "versicolor", "virginica"])
    );
    assert_eq!(
        m["features"],
        serde_json::json!(["sepal_length", "sepal_width", "petal_length", "petal_width"])
    );
    assert_eq!(m["split"]["train"], 120);
    assert_eq!(m["split"]["test"], 30);
    assert_eq!(m["data"]["source"], "embedded:iris.csv");
    assert_eq!(m["device"]["backend"], "flex");
    assert_eq!(m["config"]["training"]["epochs"], 300);
    let acc = m["metrics"]["test"]["accuracy"].as_f64().unwrap();
    assert!(acc >= 0.95, "test accuracy {acc}");
    assert_eq!(
        m["metrics"]["test"]["confusion"].as_array().unwrap().len(),
        3
    );
    assert_eq!(m["metrics"]["test"]["per_class"][0]["class"], "setosa");
    assert_eq!(
        m["preprocessing"]["scaling"]["mean"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let record = std::fs::read(out.join("model.mpk")).unwrap();
    assert_eq!(m["record"]["bytes"], record.len());
    assert_eq!(m["record"]["sha256"].as_str().unwrap().len(), 64);

    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "epoch,train_loss,train_accuracy,valid_loss,valid_accuracy,test_loss,test_accuracy"
    );
    assert_eq!(lines.count(), 300);
    let txt = std::fs::read_to_string(out.join("model.txt")).unwrap();
    assert!(
        txt.contains("MLP 4-16-3") && txt.contains("confusion matrix"),
        "{txt}"
    );
}

#[test]
fn same_seed_gives_byte_identical_records_and_another_seed_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, seed: &str| {
        let out = dir.path().join(name);
        cmd()
            .args([
                "train",
                "--quiet",
                "--epochs",
                "50",
                "--batch-size",
                "16",
                "--seed",
                seed,
                "--out",
            ])
            .arg(&out)
            .assert()
            .success();
        std::fs::read(out.join("model.mpk")).unwrap()
    };
    let a = run("a", "7");
    let b = run("b", "7");
    let c = run("c", "8");
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn config_file_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "c.toml",
        "[model]\nhidden = [8, 8]\nactivation = \"tanh\"\n[training]\nepochs = 40\nlearning_rate = 0.05\n",
    );
    let out = dir.path().join("m");
    cmd()
        .args(["--quiet", "--config"])
        .arg(&cfg)
        .args(["--epochs", "25", "--out"])
        .arg(&out)
        .assert()
        .success();
    let m = metadata(&out);
    assert_eq!(m["config"]["training"]["epochs"], 25);
    assert_eq!(m["config"]["training"]["learning_rate"], 0.05);
    assert_eq!(m["model"]["hidden"], serde_json::json!([8, 8]));
    assert_eq!(m["model"]["activation"], "tanh");
    assert_eq!(m["metrics"]["epochs_run"], 25);
}

#[test]
fn shipped_config_trains_the_same_as_no_config() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    cmd()
        .args(["--quiet", "--epochs", "20", "--config"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/mlp.toml"))
        .arg("--out")
        .arg(&a)
        .assert()
        .success();
    cmd()
        .args(["train", "--quiet", "--epochs", "20", "--out"])
        .arg(&b)
        .assert()
        .success();
    assert_eq!(
        std::fs::read(a.join("model.mpk")).unwrap(),
        std::fs::read(b.join("model.mpk")).unwrap()
    );
}

#[test]
fn trains_on_other_csv_layouts() {
    let dir = tempfile::tempdir().unwrap();
    // The UCI/workshop layout: no header, string labels last.
    let iris =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/data/iris.csv")).unwrap();
    let uci: String = iris
        .lines()
        .skip(1)
        .map(|l| {
            let (x, y) = l.rsplit_once(',').unwrap();
            format!("{x},Iris-{y}\n")
        })
        .collect();
    let data = write(dir.path(), "iris.data", uci);
    let out = dir.path().join("uci");
    cmd()
        .args(["--quiet", "--epochs", "100", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let m = metadata(&out);
    assert_eq!(m["classes"][0], "Iris-setosa");
    assert_eq!(m["features"][0], "column_0");
    assert!(m["metrics"]["test"]["accuracy"].as_f64().unwrap() > 0.9);

    // Any tabular CSV: label first, numeric labels, chosen by name in the config.
    let mut rows = String::from("grade,x,noise,y\n");
    for i in 0..60 {
        let g = i % 3;
        rows += &format!(
            "{g},{},{},{}\n",
            g as f32 * 2.0 + (i % 5) as f32 * 0.1,
            i % 7,
            -(g as f32)
        );
    }
    let data = write(dir.path(), "grades.csv", rows);
    let cfg = write(
        dir.path(),
        "g.toml",
        format!(
            "[data]\npath = {:?}\nlabel = \"grade\"\nfeatures = [\"x\", 3]\n[training]\nepochs = 60\n",
            data.display().to_string()
        ),
    );
    let out = dir.path().join("grades");
    cmd()
        .args(["--quiet", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let m = metadata(&out);
    assert_eq!(m["classes"], serde_json::json!(["0", "1", "2"]));
    assert_eq!(m["features"], serde_json::json!(["x", "y"]));
    assert_eq!(m["label"], "grade");
}

#[test]
fn early_stopping_keeps_the_best_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    cmd()
        .args([
            "--quiet",
            "--epochs",
            "5000",
            "--lr",
            "0.05",
            "--patience",
            "10",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success()
        .stdout(contains("stopped early"));
    let m = metadata(&out);
    let run = m["metrics"]["epochs_run"].as_u64().unwrap();
    let best = m["metrics"]["best_epoch"].as_u64().unwrap();
    assert!(run < 5000 && best + 10 == run, "run {run}, best {best}");
    assert_eq!(m["split"]["valid"], 12);
    assert_eq!(m["split"]["train"], 108);
}

#[test]
fn max_steps_bounds_the_epochs_of_a_table_of_many_batches() {
    // 120 training rows in batches of 8: 15 steps an epoch, so 40 steps allow 2 of the 50.
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "c.toml",
        "[training]\nepochs = 50\nbatch_size = 8\nmax_steps = 40\n",
    );
    let out = dir.path().join("m");
    cmd()
        .args(["--quiet", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let m = metadata(&out);
    assert_eq!(m["metrics"]["epochs_run"], 2);
    assert_eq!(m["recipe"]["fitting"]["max_steps"], 40);
}

#[test]
fn robust_scaling_is_recorded_and_applied_at_prediction_time() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "c.toml", "[preprocess]\nscaling = \"robust\"\n");
    let out = dir.path().join("m");
    cmd()
        .args(["--quiet", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let m = metadata(&out);
    assert_eq!(m["recipe"]["features"]["numeric"], "robust");
    assert_eq!(m["preprocessing"]["scaling"]["clip"], true);
    // Iris's petal length: median 4.35 of all 150 rows, near it on the 120 training rows.
    let centre = m["preprocessing"]["scaling"]["mean"][2].as_f64().unwrap();
    assert!((4.0..4.7).contains(&centre), "{centre}");
    // `evaluate` reads the model back and scores what training scored: the same test loss.
    let report = cmd()
        .args(["evaluate", "--format", "json", "--model"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(report.status.success(), "{report:?}");
    let v: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert!(v["accuracy"].as_f64().unwrap() > 0.9, "{v}");
}

#[test]
fn quiet_prints_only_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    cmd()
        .args(["--quiet", "--epochs", "3", "--out"])
        .arg(dir.path())
        .assert()
        .success()
        .stderr("")
        .stdout(contains("trained"));
}

#[test]
fn bad_data_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out");
    let out = out.to_str().unwrap();
    let p = |name: &str, text: &str| write(d, name, text).to_string_lossy().into_owned();
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            d.join("missing.csv").to_string_lossy().into_owned(),
            vec!["cannot read data file", "missing.csv"],
        ),
        (
            // A word among numbers: a typo, not a category (NaN, NA, ? and blanks are missing).
            p(
                "text.csv",
                &format!(
                    "a,b,y\n{}3,oops,y\n",
                    (0..30)
                        .map(|i| format!("{i},{i}.5,{}\n", ["x", "y"][i % 2]))
                        .collect::<String>()
                ),
            ),
            vec!["line 32", "`b`", "`oops` is not a number"],
        ),
        (
            p("inf.csv", "a,b,y\n1,-inf,x\n3,1,y\n"),
            vec!["line 2", "not a finite number"],
        ),
        (
            p("ragged.csv", "a,b,y\n1,2,x\n3,y\n"),
            vec!["line 3 has 2 fields, expected 3"],
        ),
        (p("empty.csv", ""), vec!["empty"]),
        (p("header.csv", "a,b,y\n"), vec!["no data rows"]),
        (
            p("one.csv", "a,b,y\n1,2,x\n3,4,x\n"),
            vec!["only one class (`x`)"],
        ),
        (
            p("few.csv", "a,y\n1,x\n2,x\n3,z\n"),
            vec!["class `z` has 1 row"],
        ),
    ];
    for (path, needles) in cases {
        bin()
            .args(["--data", &path, "--out", out])
            .fails(4, &needles);
    }
    bin()
        .args(["--data", d.to_str().unwrap(), "--out", out])
        .fails(4, &["is a directory"]);
    assert!(!d.join("out").join("model.json").exists());
}

#[test]
fn bad_configs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = |name: &str, text: &str| write(d, name, text).to_string_lossy().into_owned();
    let c = cfg("typo.toml", "[training]\nepoch = 10\n");
    bin()
        .args(["--config", &c])
        .fails(3, &["typo.toml", "unknown field `epoch`", "line 2"]);
    let c = cfg("section.toml", "[optimizer]\nlr = 1\n");
    bin()
        .args(["--config", &c])
        .fails(3, &["unknown field `optimizer`"]);
    let c = cfg("type.toml", "[model]\nhidden = 16\n");
    bin().args(["--config", &c]).fails(3, &["hidden"]);
    let c = cfg("zero.toml", "[training]\nepochs = 0\n");
    bin()
        .args(["--config", &c])
        .fails(3, &["zero.toml", "`training.epochs` = 0"]);
    let c = cfg("frac.toml", "[data]\ntest_fraction = 1.5\n");
    bin()
        .args(["--config", &c])
        .fails(3, &["`data.test_fraction` = 1.5"]);
    let c = cfg("syntax.toml", "[training\n");
    bin()
        .args(["--config", &c])
        .fails(3, &["syntax.toml", "line 1"]);
    let c = cfg("binary.toml", "\u{0}\u{1}\u{2}");
    bin().args(["--config", &c]).fails(3, &["binary.toml"]);
    std::fs::write(d.join("latin1.toml"), b"# caf\xe9\n").unwrap();
    bin()
        .args(["--config", d.join("latin1.toml").to_str().unwrap()])
        .fails(3, &["UTF-8"]);
    bin()
        .args(["--config", d.join("nope.toml").to_str().unwrap()])
        .fails(3, &["cannot read config file", "nope.toml"]);
    bin()
        .args(["--config", d.to_str().unwrap()])
        .fails(3, &["cannot read config file"]);
    bin()
        .args(["--lr", "-1"])
        .fails(3, &["`training.learning_rate` = -1", "command-line"]);
    bin().args(["--hidden", "16,0"]).fails(3, &["model.hidden"]);
    // A network the loader would refuse is refused before training, not after.
    bin()
        .args(["--hidden", "8000,8000"])
        .fails(3, &["model.hidden", "parameters", "at most 50000000"]);
    // clap's own usage errors exit 2.
    bin().args(["--epochs", "many"]).fails(2, &["--epochs"]);
    bin().args(["--no-such-flag"]).fails(2, &["--no-such-flag"]);
}

#[test]
fn unwritable_output_is_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "file", "x");
    bin()
        .args(["--out", file.to_str().unwrap()])
        .fails(6, &["not a directory"]);
    let below = file.join("sub");
    bin()
        .args(["--out", below.to_str().unwrap()])
        .fails(6, &["cannot write model directory"]);
}

#[test]
fn a_failed_run_leaves_the_previous_model_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    train_into(&out, 20);
    let before = snapshot(&out);
    // One row of class `x`: the data cannot be split into train and test.
    let bad = write(dir.path(), "bad.csv", "a,y\n1,x\n2,y\n3,y\n");
    bin()
        .args(["--quiet", "--data"])
        .arg(&bad)
        .arg("--out")
        .arg(&out)
        .fails(4, &["bad.csv", "class `x` has 1 row(s)"]);
    // Diverging training fails too and keeps the old model.
    let huge = write(
        dir.path(),
        "huge.csv",
        "a,y\n1e38,x\n-1e38,y\n1e38,x\n-1e38,y\n",
    );
    bin()
        .args(["--quiet", "--data"])
        .arg(&huge)
        .args(["--lr", "1e30", "--out"])
        .arg(&out)
        .fails(8, &["training diverged"]);
    assert_eq!(before, snapshot(&out));
}

#[cfg(unix)]
#[test]
fn signals_during_training_keep_the_previous_model() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    train_into(&out, 10);
    let before = snapshot(&out);
    for (sig, code) in [("INT", Some(130)), ("TERM", Some(143)), ("KILL", None)] {
        let mut child = bin()
            .args(["--epochs", "10000000", "--out"])
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until training is under way (first progress line), then signal.
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("epoch") {
            line.clear();
            assert!(
                err.read_line(&mut line).unwrap() > 0,
                "no progress before exit"
            );
        }
        std::process::Command::new("kill")
            .args([&format!("-{sig}"), &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
        assert_eq!(status.code(), code, "SIG{sig}: {rest}");
        if code.is_some() {
            assert!(rest.contains("interrupted by SIG"), "{rest}");
        }
        let after: Vec<_> = snapshot(&out)
            .into_iter()
            .filter(|(name, _)| !name.starts_with(".staging-"))
            .collect();
        assert_eq!(before, after, "SIG{sig} changed the model");
    }
    // Whatever SIGKILL left behind is cleaned by the next writer.
    train_into(&out, 5);
    assert!(
        !snapshot(&out)
            .iter()
            .any(|(n, _)| n.starts_with(".staging-"))
    );
}

#[test]
fn interrupted_saves_are_finished_or_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old"), dir.path().join("new"));
    for (d, epochs) in [(&old, "5"), (&new, "9")] {
        cmd()
            .args(["--quiet", "--epochs", epochs, "--out"])
            .arg(d)
            .assert()
            .success();
    }
    // A save killed after it was complete but before every file was moved: rolled forward.
    let staging = old.join(".staging-done");
    std::fs::create_dir(&staging).unwrap();
    for f in ["model.json", "model.txt"] {
        std::fs::copy(new.join(f), staging.join(f)).unwrap();
    }
    std::fs::copy(new.join("model.mpk"), old.join("model.mpk")).unwrap(); // already moved
    std::fs::write(staging.join("COMPLETE"), "").unwrap();
    // A save killed while still writing: discarded.
    let partial = old.join(".staging-partial");
    std::fs::create_dir(&partial).unwrap();
    std::fs::write(partial.join("model.mpk"), "half").unwrap();

    cmd()
        .args(["info", "--model"])
        .arg(&old)
        .assert()
        .success()
        .stdout(contains("9 epochs"));
    assert!(!staging.exists() && !partial.exists());
    cmd()
        .args(["predict", "--model"])
        .arg(&old)
        .args(["5.1", "3.5", "1.4", "0.2"])
        .assert()
        .success();
}
