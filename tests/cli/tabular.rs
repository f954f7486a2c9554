//! Real tables, as the README's "Bring your own table" section uses them: penguins (categories,
//! blanks, the label first), diabetes (regression), the flags that choose columns and the task,
//! every input format, and the bad tables each with its exit code.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow_array::{ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray};
use serde_json::{Value, json};

use crate::common::{Fails, Server, cmd, get, json, metadata, post, predict_json, write};

/// A file shipped in `data/`.
fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name)
}

/// The README's example rows: a blank bill length, body mass and sex in the second.
const NEW_ROWS: &str = "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex\n\
                        Biscoe,48.7,14.1,210,4450,female\n\
                        Dream,,18.4,190,,\n";

/// Runs `train` with `args` into a fresh directory, asserting success; returns the directory
/// and stderr.
fn train(args: &[&str]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = cmd()
        .arg("train")
        .args(args)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "train {args:?}: {stderr}");
    (dir, stderr)
}

/// The README's penguins model, trained once: `train --data data/penguins.csv --label species
/// --ignore year`, with its stderr.
fn penguins() -> &'static (tempfile::TempDir, String) {
    static MODEL: OnceLock<(tempfile::TempDir, String)> = OnceLock::new();
    MODEL.get_or_init(|| {
        let p = data("penguins.csv");
        train(&[
            "--data",
            p.to_str().unwrap(),
            "--label",
            "species",
            "--ignore",
            "year",
        ])
    })
}

/// The README's diabetes model, trained once: `train --data data/diabetes.csv --label target`.
fn diabetes() -> &'static (tempfile::TempDir, String) {
    static MODEL: OnceLock<(tempfile::TempDir, String)> = OnceLock::new();
    MODEL.get_or_init(|| {
        let p = data("diabetes.csv");
        train(&["--data", p.to_str().unwrap(), "--label", "target"])
    })
}

/// `evaluate --format json` of a model on a file.
fn evaluate_json(model: &Path, file: &Path) -> Value {
    let out = cmd()
        .args(["evaluate", "--format", "json", "--model"])
        .arg(model)
        .arg("--data")
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

const SPECIES: [&str; 3] = ["Adelie", "Chinstrap", "Gentoo"];

#[test]
fn penguins_train_with_categories_blanks_and_the_label_first() {
    let (model, stderr) = penguins();
    assert!(
        stderr.contains("task: classification (label `species` holds text: 3 classes)"),
        "{stderr}"
    );
    // One line per column of the schema it decided: island and sex are categories, year is
    // ignored, the blanks are counted.
    for needle in ["island", "categorical", "sex", "year", "ignored"] {
        assert!(stderr.contains(needle), "`{needle}` in: {stderr}");
    }
    let m = metadata(model.path());
    assert_eq!(m["task"], "classification");
    assert_eq!(m["label"], "species");
    assert_eq!(m["classes"], json!(SPECIES));
    let features: Vec<&str> = m["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(
        features,
        [
            "island",
            "bill_length_mm",
            "bill_depth_mm",
            "flipper_length_mm",
            "body_mass_g",
            "sex"
        ]
    );
    let test_accuracy = m["metrics"]["test"]["accuracy"].as_f64().unwrap();
    assert!(test_accuracy >= 0.9, "test accuracy {test_accuracy}");

    // `evaluate --format json` has `accuracy` at the top level: every row of the table,
    // train and test, so it is high.
    let v = evaluate_json(model.path(), &data("penguins.csv"));
    let accuracy = v["accuracy"].as_f64().unwrap();
    assert!(accuracy >= 0.9, "{v}");
    assert_eq!(v["rows"], 344);
}

#[test]
fn penguins_predict_from_raw_rows_on_the_command_line_and_over_http() {
    let (model, _) = penguins();
    let dir = tempfile::tempdir().unwrap();
    let new = write(dir.path(), "new.csv", NEW_ROWS);
    // The README's command, text output: a class and its probability per row.
    let out = cmd()
        .args(["predict", "--model"])
        .arg(model.path())
        .arg("--input")
        .arg(&new)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for line in &lines {
        let (species, p) = line.split_once('\t').unwrap();
        assert!(SPECIES.contains(&species), "{line}");
        let p: f64 = p.parse().unwrap();
        assert!((0.0..=1.0).contains(&p), "{line}");
    }
    // A deep, heavy, flipper-210 Biscoe bird is a Gentoo.
    assert!(lines[0].starts_with("Gentoo\t"), "{text}");

    let cli = predict_json(crate::common::bin(), model.path(), NEW_ROWS);
    assert_eq!(cli.len(), 2);

    // The same rows over HTTP, as raw values: strings for categories, null for the blanks.
    let server = Server::start(model.path(), &[]);
    let body = json!({"instances": [
        {"island": "Biscoe", "bill_length_mm": 48.7, "bill_depth_mm": 14.1,
         "flipper_length_mm": 210, "body_mass_g": 4450, "sex": "female"},
        {"island": "Dream", "bill_length_mm": null, "bill_depth_mm": 18.4,
         "flipper_length_mm": 190, "body_mass_g": null, "sex": null},
    ]});
    let (status, answer) = post(&server.url("/predict"), &body.to_string());
    assert_eq!(status, 200, "{answer}");
    let answer = json(&answer);
    let http = answer["predictions"].as_array().unwrap();
    assert_eq!(http.len(), 2);
    for (h, c) in http.iter().zip(&cli) {
        assert_eq!(h["species"], c["species"], "{h} vs {c}");
        let (a, b) = (
            h["probability"].as_f64().unwrap(),
            c["probability"].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }

    // The Open Inference Protocol: one input per feature, BYTES for the categories.
    let (status, meta) = get(&server.url("/v2/models/iris-trainer"));
    assert_eq!(status, 200, "{meta}");
    let meta = json(&meta);
    assert_eq!(
        meta["inputs"][0],
        json!({"name": "island", "datatype": "BYTES", "shape": [-1]})
    );
    assert_eq!(
        meta["inputs"][1],
        json!({"name": "bill_length_mm", "datatype": "FP32", "shape": [-1]})
    );
    let infer = json!({"inputs": [
        {"name": "island", "datatype": "BYTES", "shape": [2], "data": ["Biscoe", "Dream"]},
        {"name": "bill_length_mm", "datatype": "BYTES", "shape": [2], "data": ["48.7", ""]},
        {"name": "bill_depth_mm", "datatype": "FP32", "shape": [2], "data": [14.1, 18.4]},
        {"name": "flipper_length_mm", "datatype": "FP32", "shape": [2], "data": [210, 190]},
        {"name": "body_mass_g", "datatype": "BYTES", "shape": [2], "data": ["4450", "NA"]},
        {"name": "sex", "datatype": "BYTES", "shape": [2], "data": ["female", ""]},
    ]});
    let (status, answer) = post(
        &server.url("/v2/models/iris-trainer/infer"),
        &infer.to_string(),
    );
    assert_eq!(status, 200, "{answer}");
    let answer = json(&answer);
    let labels = &answer["outputs"][0];
    assert_eq!(labels["name"], "label");
    for (l, c) in labels["data"].as_array().unwrap().iter().zip(&cli) {
        assert_eq!(l, &c["species"]);
    }

    // MLflow's scoring protocol: a pandas DataFrame with strings and NaN (null in JSON).
    let split = json!({"dataframe_split": {
        "columns": ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"],
        "data": [["Biscoe", 48.7, 14.1, 210, 4450, "female"], ["Dream", null, 18.4, 190, null, null]],
    }});
    let (status, answer) = post(&server.url("/invocations"), &split.to_string());
    assert_eq!(status, 200, "{answer}");
    let answer = json(&answer);
    let expected: Vec<&Value> = cli.iter().map(|c| &c["species"]).collect();
    let got: Vec<&Value> = answer["predictions"].as_array().unwrap().iter().collect();
    assert_eq!(got, expected);

    // An island never seen in training: answered (all-zero one-hot) and counted.
    let (_, before) = get(&server.url("/metrics"));
    assert_eq!(unseen_count(&before), 0.0, "{before}");
    let atlantis = json!({"island": "Atlantis", "bill_length_mm": 40.0, "bill_depth_mm": 18.0,
                          "flipper_length_mm": 190, "body_mass_g": 3700, "sex": "male"});
    let (status, answer) = post(&server.url("/predict"), &atlantis.to_string());
    assert_eq!(status, 200, "{answer}");
    assert!(SPECIES.contains(&json(&answer)["species"].as_str().unwrap()));
    let (_, after) = get(&server.url("/metrics"));
    assert_eq!(unseen_count(&after), 1.0, "{after}");
}

/// The `unseen_categories` counter of a Prometheus exposition.
fn unseen_count(metrics: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.contains("unseen_categories") && !l.starts_with('#'))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no unseen_categories counter in:\n{metrics}"))
}

#[test]
fn an_unseen_category_is_predicted_and_counted_with_a_warning() {
    let (model, _) = penguins();
    let dir = tempfile::tempdir().unwrap();
    let rows = write(
        dir.path(),
        "rows.csv",
        "sex,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g\n\
         male,Atlantis,40,18,190,3700\nfemale,Dream,39,17,185,3400\nmale,Atlantis,41,18,192,3800\n",
    );
    let out = cmd()
        .args(["predict", "--model"])
        .arg(model.path())
        .arg("--input")
        .arg(&rows)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    assert!(
        stderr.contains("warning: 2 value(s) of categorical columns were never seen in training")
            && stderr.contains("Atlantis"),
        "{stderr}"
    );
}

#[test]
fn diabetes_is_a_regression_with_r2_rmse_and_mae() {
    let (model, stderr) = diabetes();
    assert!(stderr.contains("task: regression"), "{stderr}");
    let m = metadata(model.path());
    assert_eq!(m["task"], "regression");
    let test = &m["metrics"]["test"];
    for k in ["r2", "rmse", "mae"] {
        assert!(test[k].is_number(), "{k} in {test}");
    }
    // The README's command: r2, rmse and mae at the top level.
    let v = evaluate_json(model.path(), &data("diabetes.csv"));
    let (r2, rmse, mae) = (
        v["r2"].as_f64().unwrap(),
        v["rmse"].as_f64().unwrap(),
        v["mae"].as_f64().unwrap(),
    );
    // The target spans 25..346 with a standard deviation of 77: a useful model explains a
    // good part of it; MAE is never above RMSE.
    assert!(r2 > 0.3 && r2 < 1.0, "{v}");
    assert!(mae > 0.0 && mae <= rmse && rmse < 77.0, "{v}");
    assert!(v.get("accuracy").is_none(), "{v}");
    assert_eq!(v["rows"], 442);

    // predict prints a number for each row; `info` shows the regression scores.
    let out = cmd()
        .args(["predict", "--model"])
        .arg(model.path())
        .args([
            "59", "2", "32.1", "101", "157", "93.2", "38", "4", "4.8598", "87",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let y: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!((25.0..=346.0).contains(&y), "{y}");
    let info = cmd()
        .args(["info", "--model"])
        .arg(model.path())
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains("regression") && info.contains("r2"), "{info}");

    // Served: /predict answers a number, the v2 protocol a `value` tensor, MLflow numbers.
    let server = Server::start(model.path(), &[]);
    let row = json!({"age": 59, "sex": 2, "bmi": 32.1, "bp": 101, "s1": 157, "s2": 93.2,
                     "s3": 38, "s4": 4, "s5": 4.8598, "s6": 87});
    let (status, answer) = post(&server.url("/predict"), &row.to_string());
    assert_eq!(status, 200, "{answer}");
    let value = json(&answer)["value"].as_f64().unwrap();
    assert!(
        (value - y).abs() < 1e-3 * y.abs().max(1.0),
        "{value} vs {y}"
    );
    let flat = [59.0, 2.0, 32.1, 101.0, 157.0, 93.2, 38.0, 4.0, 4.8598, 87.0];
    let infer =
        json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 10], "data": flat}]});
    let (status, answer) = post(
        &server.url("/v2/models/iris-trainer/infer"),
        &infer.to_string(),
    );
    assert_eq!(status, 200, "{answer}");
    let out = &json(&answer)["outputs"][0];
    assert_eq!(out["name"], "value");
    assert!((out["data"][0].as_f64().unwrap() - y).abs() < 1e-3 * y.abs().max(1.0));
    let (status, answer) = post(
        &server.url("/invocations"),
        &json!({"dataframe_records": [row]}).to_string(),
    );
    assert_eq!(status, 200, "{answer}");
    let p = json(&answer)["predictions"][0].as_f64().unwrap();
    assert!((p - y).abs() < 1e-3 * y.abs().max(1.0), "{p} vs {y}");
}

#[test]
fn task_flag_overrides_the_inferred_task() {
    // `year` holds three whole numbers: taken as classes unless told otherwise.
    let p = data("penguins.csv");
    let p = p.to_str().unwrap();
    let common = ["--data", p, "--label", "year", "--epochs", "20"];
    let (inferred, stderr) = train(&common);
    assert_eq!(
        metadata(inferred.path())["task"],
        "classification",
        "{stderr}"
    );
    assert!(stderr.contains("--task"), "says how to change it: {stderr}");
    let (regression, _) = train(&[&common[..], &["--task", "regression"]].concat());
    assert_eq!(metadata(regression.path())["task"], "regression");
}

/// Penguins' rows as (species, island, bill_length_mm, sex) records, blanks as `None`.
fn penguin_rows() -> Vec<[Option<String>; 4]> {
    let text = std::fs::read_to_string(data("penguins.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let cell = |i: usize| Some(f[i].to_string()).filter(|s| s != "NA" && !s.is_empty());
            [cell(0), cell(1), cell(2), cell(6)]
        })
        .collect()
}

/// The four columns above as CSV with `sep`, NA for a blank.
fn penguins_csv(sep: &str) -> String {
    let mut s = ["species", "island", "bill_length_mm", "sex"].join(sep) + "\n";
    for r in penguin_rows() {
        let cells: Vec<&str> = r.iter().map(|c| c.as_deref().unwrap_or("NA")).collect();
        s += &(cells.join(sep) + "\n");
    }
    s
}

/// The same four columns as Parquet: strings and a float column with nulls.
fn penguins_parquet() -> Vec<u8> {
    let rows = penguin_rows();
    let text = |i: usize| -> ArrayRef {
        Arc::new(StringArray::from(
            rows.iter().map(|r| r[i].clone()).collect::<Vec<_>>(),
        ))
    };
    let bill: Vec<Option<f64>> = rows
        .iter()
        .map(|r| r[2].as_ref().map(|s| s.parse().unwrap()))
        .collect();
    let batch = RecordBatch::try_from_iter(vec![
        ("species", text(0)),
        ("island", text(1)),
        (
            "bill_length_mm",
            Arc::new(Float64Array::from(bill)) as ArrayRef,
        ),
        ("sex", text(3)),
    ])
    .unwrap();
    parquet_bytes(&batch)
}

fn parquet_bytes(batch: &RecordBatch) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn comma_semicolon_tab_gzip_and_parquet_train_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        write(dir.path(), "p.csv", penguins_csv(",")),
        write(dir.path(), "p-semicolon.csv", penguins_csv(";")),
        write(dir.path(), "p.tsv", penguins_csv("\t")),
        write(dir.path(), "p.csv.gz", gzip(penguins_csv(",").as_bytes())),
        write(dir.path(), "p.parquet", penguins_parquet()),
    ];
    let mut models = Vec::new();
    for f in &files {
        let (model, stderr) = train(&[
            "--data",
            f.to_str().unwrap(),
            "--label",
            "species",
            "--epochs",
            "30",
        ]);
        let m = metadata(model.path());
        assert_eq!(m["classes"], json!(SPECIES), "{}: {stderr}", f.display());
        assert_eq!(m["data"]["rows"], 344, "{}", f.display());
        models.push((
            f,
            std::fs::read(model.path().join("model.mpk")).unwrap(),
            model,
        ));
    }
    // The same table, read from any format, trains bit-identical weights.
    for (f, weights, _) in &models[1..] {
        assert!(
            weights == &models[0].1,
            "{} trained other weights than the CSV",
            f.display()
        );
    }
    // predict and evaluate read every format too.
    let parquet_model = models[0].2.path();
    for f in &files {
        let v = evaluate_json(parquet_model, f);
        assert_eq!(v["rows"], 344, "{}", f.display());
        assert!(
            v["accuracy"].as_f64().unwrap() > 0.5,
            "{}: {v}",
            f.display()
        );
        let out = cmd()
            .args(["predict", "--model"])
            .arg(parquet_model)
            .arg("--input")
            .arg(f)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {out:?}", f.display());
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 344);
    }
}

#[test]
fn identifier_columns_and_columns_of_many_levels_train() {
    // Recipe version 2 refuses neither (version 1 did): a column's frequent levels get an input
    // each, the rest one shared `<other>` input.
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("name,colour,size,kind\n");
    for i in 0..400 {
        csv += &format!(
            "bird-{i:03},c{},{},{}\n",
            i % 150,
            i % 7,
            if i % 2 == 0 { "a" } else { "b" }
        );
    }
    let f = write(dir.path(), "ids.csv", csv);
    let (model, _) = train(&["--data", f.to_str().unwrap(), "--epochs", "2"]);
    let m = metadata(model.path());
    assert_eq!(m["features"], json!(["name", "colour", "size"]));
    let columns = &m["preprocessing"]["encoding"]["columns"];
    // Every name occurs once: no level to learn, only the shared input.
    assert_eq!(columns[0]["levels"], json!([]));
    assert_eq!(columns[0]["other_level"], true);
    // 150 levels, each 2 or 3 times in the training rows: the 100 most frequent kept.
    assert_eq!(columns[1]["levels"].as_array().unwrap().len(), 100);
    assert_eq!(columns[1]["other_level"], true);
    // A name never seen predicts (through `<other>`), with no unseen-category warning.
    let out = cmd()
        .args(["predict", "--model"])
        .arg(model.path())
        .args(["bird-999", "c1", "3"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("never seen"),
        "{out:?}"
    );
}

#[test]
fn rows_with_a_missing_label_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("x,y,label\n");
    for i in 0..40 {
        let label = match i {
            3 => "",
            17 => "NA",
            _ if i % 2 == 0 => "even",
            _ => "odd",
        };
        csv += &format!("{i},{},{label}\n", i % 2);
    }
    let f = write(dir.path(), "labels.csv", csv);
    let (model, stderr) = train(&["--data", f.to_str().unwrap(), "--epochs", "5"]);
    assert!(
        stderr.contains("2 row(s) with a missing label `label` dropped"),
        "{stderr}"
    );
    let m = metadata(model.path());
    assert_eq!(m["data"]["dropped_rows"], 2);
    assert_eq!(m["data"]["rows"], 38);
    // evaluate leaves them out too, and says so.
    let out = cmd()
        .args(["evaluate", "--format", "json", "--model"])
        .arg(model.path())
        .arg("--data")
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("2 row(s) with a missing label left out")
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rows"], 38);
}

#[test]
fn bad_tables_are_errors_naming_file_column_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let fails = |file: &Path, extra: &[&str], code: i32, needles: &[&str]| {
        cmd()
            .args(["train", "--quiet", "--epochs", "2", "--data"])
            .arg(file)
            .args(extra)
            .arg("--out")
            .arg(&out)
            .fails(code, needles)
    };
    // A stray word in a numeric column: file, line and column.
    let mut csv = penguins_csv(",");
    csv = csv.replacen("39.5", "thirty-nine", 1);
    let f = write(dir.path(), "stray.csv", &csv);
    fails(
        &f,
        &["--label", "species"],
        4,
        &["stray.csv", "line 3", "bill_length_mm", "thirty-nine"],
    );
    // One class only.
    let f = write(
        dir.path(),
        "one.csv",
        (0..30).map(|i| format!("{i},same\n")).collect::<String>(),
    );
    fails(&f, &[], 4, &["one.csv", "only one class", "at least two"]);
    // A Parquet column of a type that is not read (dates).
    let batch = RecordBatch::try_from_iter(vec![
        (
            "day",
            Arc::new(Date32Array::from(vec![1, 2, 3, 4])) as ArrayRef,
        ),
        (
            "x",
            Arc::new(Int64Array::from(vec![1, 2, 3, 4])) as ArrayRef,
        ),
        (
            "y",
            Arc::new(StringArray::from(vec!["a", "b", "a", "b"])) as ArrayRef,
        ),
    ])
    .unwrap();
    let f = write(dir.path(), "dates.parquet", parquet_bytes(&batch));
    fails(
        &f,
        &[],
        4,
        &["dates.parquet", "column `day`", "--ignore day"],
    );
    // Parquet that is not Parquet.
    let f = write(dir.path(), "broken.parquet", b"PAR1 and then nothing");
    fails(
        &f,
        &[],
        4,
        &["broken.parquet", "not a readable Parquet file"],
    );
    // A Parquet file that panicked the Parquet reader (found by fuzzing): a bad data file too.
    let malformed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/malformed/parquet-negative-column-offset.parquet");
    let f = write(
        dir.path(),
        "offset.parquet",
        std::fs::read(malformed).unwrap(),
    );
    fails(&f, &[], 4, &["offset.parquet", "a malformed Parquet file"]);
    // A config (or flag) naming a column the file does not have.
    let p = data("penguins.csv");
    let config = write(
        dir.path(),
        "c.toml",
        format!(
            "[data]\npath = {:?}\nlabel = \"species\"\nignore = [\"colour\"]\n",
            p.to_str().unwrap()
        ),
    );
    cmd()
        .args(["train", "--quiet", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .fails(
            4,
            &[
                "penguins.csv",
                "`data.ignore` (--ignore) names column `colour`",
                "species, island",
            ],
        );
    fails(
        &p,
        &["--label", "kind"],
        4,
        &[
            "penguins.csv",
            "(`data.label`, --label) names column `kind`",
            "species, island",
        ],
    );
    assert!(!out.join("model.json").exists());
}

#[test]
fn a_regression_sweep_ranks_by_r2_rmse_or_mae() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = write(
        dir.path(),
        "s.toml",
        "[grid]\n\"training.learning_rate\" = [0.001, 0.01, 0.03]\n",
    );
    let root = dir.path().join("sweep");
    let p = data("diabetes.csv");
    let out = cmd()
        .args([
            "sweep", "--quiet", "--jobs", "2", "--epochs", "40", "--label", "target",
        ])
        .arg("--data")
        .arg(&p)
        .arg("--sweep")
        .arg(&sweep)
        .arg("--out")
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = |rank_by: Option<&str>| -> Value {
        let out = cmd()
            .args(["sweep-report", "--format", "json"])
            .args(rank_by.map(|m| vec!["--rank-by", m]).unwrap_or_default())
            .arg(&root)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let scores = |v: &Value| -> Vec<f64> {
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["score"].as_f64().unwrap())
            .collect()
    };
    // R² ranks a regression sweep by default, higher first; RMSE and MAE lower first.
    let default = report(None);
    assert_eq!(default["ranked_by"], "valid_r2", "{default}");
    for (metric, higher_first) in [("r2", true), ("rmse", false), ("mae", false)] {
        let v = report(Some(metric));
        assert_eq!(v["ranked_by"], format!("valid_{metric}"), "{v}");
        let s = scores(&v);
        assert_eq!(s.len(), 3, "{v}");
        assert!(
            s.windows(2).all(|w| if higher_first {
                w[0] >= w[1]
            } else {
                w[0] <= w[1]
            }),
            "{metric}: {s:?}"
        );
        // Every row carries its test R², RMSE and MAE for information.
        for k in ["r2", "rmse", "mae"] {
            assert!(v["rows"][0]["test"][k].is_number(), "{v}");
        }
    }
    // A classifier's metric does not rank regressors.
    cmd()
        .args(["sweep-report", "--rank-by", "accuracy"])
        .arg(&root)
        .fails(3, &["`--rank-by` = accuracy", "regression"]);
    let best = dir.path().join("best");
    cmd()
        .args(["sweep-report", "--best"])
        .arg(&best)
        .arg(&root)
        .assert()
        .success();
    assert_eq!(metadata(&best)["task"], "regression");
}
