//! An MLflow model directory (MLflow's `MLmodel` format) for a saved model, which MLflow's model
//! registry, `mlflow.pyfunc.load_model` and `mlflow models serve` use:
//!
//! ```text
//! MLmodel                      the flavors, the signature, the input example's description
//! model.onnx                   the whole model (see crate::onnx)
//! code/iris_trainer_pyfunc.py  the python_function flavor's loader: model.onnx on onnxruntime
//! input_example.json           two rows (the second one blank), pandas' "split" orient
//! serving_input_example.json   the same as a request body of /invocations
//! requirements.txt, python_env.yaml, conda.yaml   what the loader needs
//! ```
//!
//! The `onnx` flavor is MLflow's own (`mlflow.onnx.load_model` gives the ONNX graph). The
//! `python_function` flavor's loader is this crate's
//! (`src/mlflow_model/iris_trainer_pyfunc.py`): MLflow's `mlflow.onnx` loader feeds a
//! DataFrame's columns to the graph as rank-1 arrays and flattens every output, which a graph
//! of [N, 1] column inputs and [N, classes] probabilities cannot take.
//!
//! The signature names every feature column in order, all required: a category is `string`;
//! numbers and yes/no columns are `any` (MLflow's `double` refuses a DataFrame's integer columns,
//! and a yes/no column may hold booleans, numbers or words), read by the loader, which names a
//! column it cannot read. The parameter `predict_method` (`predict` or `predict_proba`, MLflow's
//! scikit-learn convention) picks labels or class probabilities, as `/invocations` does.
//!
//! `MLmodel` is written as JSON, which is YAML (MLflow reads it with `yaml.safe_load`). The same
//! model and run write the same bytes: the creation time is the model's.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::data::Encoder;
use crate::metadata::Metadata;
use crate::recipe::Task;

/// A logged model's path among its run's artifacts (MLflow's convention).
pub const ARTIFACT_PATH: &str = "model";
/// The description of the directory.
pub const MLMODEL_FILE: &str = "MLmodel";
/// The `python_function` flavor's loader module, in `code/`.
pub const LOADER_MODULE: &str = "iris_trainer_pyfunc";
/// Its source.
pub const LOADER_SOURCE: &str = include_str!("mlflow_model/iris_trainer_pyfunc.py");
/// The ONNX version whose `onnx.proto` the graph is written from (the `onnx` flavor records it).
pub const ONNX_VERSION: &str = "1.23.0";
/// The Python the environment files ask for (any 3.10 or later runs the loader).
pub const PYTHON_VERSION: &str = "3.11";
/// The loader's Python packages, with the oldest versions it is known to work with.
pub const REQUIREMENTS: [&str; 5] = [
    "mlflow>=2.16",
    "onnx>=1.16",
    "onnxruntime>=1.17",
    "numpy>=1.24",
    "pandas>=2.0",
];

/// The files of the MLflow model directory of the model `meta` describes, whose ONNX graph is
/// `onnx`, as (relative path, bytes), `MLmodel` first. `run_id` is the run it is logged with,
/// if any.
pub fn files(meta: &Metadata, onnx: &[u8], run_id: Option<&str>) -> Vec<(String, Vec<u8>)> {
    let encoders = &meta.preprocessor().encoding;
    let columns: Vec<(&str, &Encoder)> = meta
        .features
        .iter()
        .filter_map(|f| {
            encoders
                .columns
                .iter()
                .find(|e| e.name() == f)
                .map(|e| (f.as_str(), e))
        })
        .collect();
    let inputs: Vec<Value> = columns
        .iter()
        .map(|(name, e)| {
            let ty = match e {
                Encoder::Categorical { .. } => "string",
                Encoder::Numeric { .. } | Encoder::Boolean { .. } => "any",
            };
            json!({"type": ty, "name": name, "required": true})
        })
        .collect();
    let outputs = match meta.task {
        Task::Classification => json!([{"type": "string", "name": "label", "required": true}]),
        Task::Regression => json!([{"type": "double", "name": "value", "required": true}]),
    };
    let params = json!([{
        "name": "predict_method", "type": "string", "default": "predict", "shape": null
    }]);
    let example = input_example(&columns);
    let input_example = json!({"columns": meta.features, "data": example}).to_string();
    let serving_example = serde_json::to_string_pretty(&json!({
        "dataframe_split": {"columns": meta.features, "data": example}
    }))
    .expect("JSON values serialise");

    let requirements = REQUIREMENTS.join("\n") + "\n";
    let python_env = format!(
        "python: {PYTHON_VERSION}\nbuild_dependencies:\n- pip\n- setuptools\n- wheel\n\
         dependencies:\n- -r requirements.txt\n"
    );
    let conda = format!(
        "channels:\n- conda-forge\ndependencies:\n- python={PYTHON_VERSION}\n- pip\n- pip:\n{}\
         name: mlflow-env\n",
        REQUIREMENTS
            .iter()
            .map(|r| format!("  - {r}\n"))
            .collect::<String>()
    );
    let mut body: Vec<(String, Vec<u8>)> = vec![
        (crate::artifact::ONNX_FILE.to_string(), onnx.to_vec()),
        (
            format!("code/{LOADER_MODULE}.py"),
            LOADER_SOURCE.as_bytes().to_vec(),
        ),
        ("input_example.json".into(), input_example.into_bytes()),
        (
            "serving_input_example.json".into(),
            serving_example.into_bytes(),
        ),
        ("requirements.txt".into(), requirements.into_bytes()),
        ("python_env.yaml".into(), python_env.into_bytes()),
        ("conda.yaml".into(), conda.into_bytes()),
    ];
    let size: usize = body.iter().map(|(_, b)| b.len()).sum();

    let mut digest = Sha256::new();
    digest.update(onnx);
    digest.update(run_id.unwrap_or_default().as_bytes());
    let uuid: String = digest.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut mlmodel = json!({
        "artifact_path": ARTIFACT_PATH,
        "flavors": {
            "onnx": {
                "code": null,
                "data": crate::artifact::ONNX_FILE,
                "onnx_session_options": null,
                "onnx_version": ONNX_VERSION,
                "providers": ["CPUExecutionProvider"],
            },
            "python_function": {
                "code": "code",
                "data": crate::artifact::ONNX_FILE,
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "loader_module": LOADER_MODULE,
                "python_version": PYTHON_VERSION,
            },
        },
        "metadata": {
            "created_by": meta.created_by,
            "task": meta.task.to_string(),
            "label": meta.label,
            "recipe": format!("{} version {}", meta.recipe.name, meta.recipe.version),
        },
        "model_size_bytes": size,
        "model_uuid": uuid,
        "saved_input_example_info": {
            "artifact_path": "input_example.json",
            "pandas_orient": "split",
            "serving_input_path": "serving_input_example.json",
            "type": "dataframe",
        },
        "signature": {
            "inputs": Value::Array(inputs).to_string(),
            "outputs": outputs.to_string(),
            "params": params.to_string(),
        },
        "utc_time_created": mlflow_time(&meta.created_at),
    });
    if let Some(run_id) = run_id {
        mlmodel["run_id"] = json!(run_id);
    }
    let text = yaml_safe(&serde_json::to_string_pretty(&mlmodel).expect("JSON values serialise"));
    let mut all = vec![(MLMODEL_FILE.to_string(), (text + "\n").into_bytes())];
    all.append(&mut body);
    all
}

/// Two rows: every column's typical value (a number's fill, a category's first level, a yes/no
/// column's more frequent value), then a row of blanks.
fn input_example(columns: &[(&str, &Encoder)]) -> Vec<Vec<Value>> {
    let typical = columns
        .iter()
        .map(|(_, e)| match e {
            Encoder::Numeric { fill, .. } => json!(f64::from(*fill)),
            Encoder::Boolean { fill, .. } => json!(if *fill >= 0.5 { 1 } else { 0 }),
            Encoder::Categorical { levels, .. } => levels.first().map_or(Value::Null, |l| json!(l)),
        })
        .collect();
    vec![typical, vec![Value::Null; columns.len()]]
}

/// `2026-12-07T10:00:00Z` as MLflow writes `utc_time_created` (`2026-12-07 10:00:00.000000`).
fn mlflow_time(rfc3339: &str) -> String {
    let t = rfc3339.trim_end_matches('Z').replacen('T', " ", 1);
    if t.contains('.') { t } else { t + ".000000" }
}

/// `json` with every character PyYAML refuses in a document (C0 and C1 controls but tab, line
/// feed, carriage return and NEL; U+FFFE and U+FFFF) escaped as `\uXXXX`. They can only be in
/// strings, where JSON's escape is YAML's too.
fn yaml_safe(json: &str) -> String {
    json.chars()
        .map(|c| {
            let n = c as u32;
            let refused = (n < 0x20 && !matches!(c, '\t' | '\n' | '\r'))
                || (0x7f..=0x9f).contains(&n) && n != 0x85
                || n == 0xfffe
                || n == 0xffff;
            if refused {
                format!("\\u{n:04x}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(
            yaml_safe("\"a\u{85}b\u{9f}\u{7f}é\t\""),
            "\"a\u{85}b\\u009f\\u007fé\t\""
        );
        assert_eq!(yaml_safe("\"\u{fffe}\""), "\"\\ufffe\"");
    }

    #[test]
    fn times_are_written_as_mlflow_writes_them() {
        assert_eq!(
            mlflow_time("2026-12-07T10:00:00Z"),
            "2026-12-07 10:00:00.000000"
        );
        assert_eq!(
            mlflow_time("2026-12-07T10:00:00.250000Z"),
            "2026-12-07 10:00:00.250000"
        );
    }
}
