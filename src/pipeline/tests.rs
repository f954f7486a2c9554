//! Train-and-save writes the weights for other tools and the pictures beside the record, lists
//! them in `model.json`, and `export` adds or writes them for existing models.

use std::fs;

use burn_store::{ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};

use super::*;
use crate::artifact::{
    CONFUSION_PNG, CONFUSION_SVG, CURVES_PNG, CURVES_SVG, FileState, METADATA_FILE,
};
use crate::backend::Backend;
use crate::data::{Encoded, sha256_hex};
use crate::model::Inputs;

fn train(dir: &Path, edit: impl FnOnce(&mut TrainConfig)) -> Metadata {
    let mut config = TrainConfig::default();
    config.training.epochs = 20;
    config.output.dir = dir.to_path_buf();
    edit(&mut config);
    let _training = crate::training_lock();
    train_and_save(config).unwrap()
}

fn header(bytes: &[u8]) -> serde_json::Value {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    serde_json::from_slice(&bytes[8..8 + n]).unwrap()
}

#[test]
fn a_saved_model_has_its_safetensors_and_pictures_listed_with_their_checksums() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let meta = train(&dir, |_| {});
    let listed: Vec<&str> = meta.files.iter().map(|f| f.file.as_str()).collect();
    assert_eq!(
        listed,
        [
            SAFETENSORS_FILE,
            ONNX_FILE,
            CURVES_SVG,
            CURVES_PNG,
            CONFUSION_SVG,
            CONFUSION_PNG
        ]
    );
    for f in &meta.files {
        let bytes = fs::read(dir.join(&f.file)).unwrap();
        assert_eq!(
            (sha256_hex(&bytes), bytes.len() as u64),
            (f.sha256.clone(), f.bytes)
        );
    }
    let model_dir = ModelDir::new(&dir);
    assert!(
        model_dir
            .check_files(&meta)
            .iter()
            .all(|(_, s)| *s == FileState::Ok)
    );
    fs::write(dir.join(CURVES_PNG), b"not a png").unwrap();
    fs::remove_file(dir.join(CONFUSION_SVG)).unwrap();
    let states: Vec<(String, FileState)> = model_dir
        .check_files(&meta)
        .into_iter()
        .map(|(f, s)| (f.file, s))
        .collect();
    assert!(states.contains(&(CURVES_PNG.into(), FileState::Changed)));
    assert!(states.contains(&(CONFUSION_SVG.into(), FileState::Missing)));
    assert!(states.contains(&(SAFETENSORS_FILE.into(), FileState::Ok)));
    // The model itself still loads: the pictures are not part of it.
    model_dir.load::<Backend>(&Default::default()).unwrap();
}

#[test]
fn the_safetensors_weights_are_pytorch_shaped_and_give_the_models_logits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    train(&dir, |c| c.model.hidden = vec![8, 5]);
    let bytes = fs::read(dir.join(SAFETENSORS_FILE)).unwrap();
    let h = header(&bytes);
    // torch.nn.Linear's layout: weight [out, in], bias [out].
    for (name, shape) in [
        ("layers.0.weight", [8, 4].as_slice()),
        ("layers.0.bias", &[8]),
        ("layers.1.weight", &[5, 8]),
        ("layers.2.weight", &[3, 5]),
        ("layers.2.bias", &[3]),
    ] {
        assert_eq!(h[name]["shape"], serde_json::json!(shape), "{name}");
        assert_eq!(h[name]["dtype"], "F32", "{name}");
    }
    let md = &h["__metadata__"];
    assert_eq!(md["task"], "classification");
    assert_eq!(md["activation"], "relu");
    assert_eq!(md["classes"], r#"["setosa","versicolor","virginica"]"#);
    assert_eq!(md["layers"], r#"["layers.0","layers.1","layers.2"]"#);
    let scaling: crate::data::Standardizer =
        serde_json::from_str(md["scaling"].as_str().unwrap()).unwrap();
    let (meta, model) = ModelDir::new(&dir)
        .load::<Backend>(&Default::default())
        .unwrap();
    assert_eq!(scaling, meta.preprocessing.scaling);

    // Read back through burn-store's reverse adapter: the same logits. Applying the stored
    // tensors initialises the fresh model's parameters, which draws from the backend's generator:
    // hold the lock so no training on another test thread sees its draws moved.
    let _training = crate::training_lock();
    let device = Default::default();
    // A model of one network stores that network's tensors under their own names.
    let mut fresh = meta.model.network().init::<Backend>(&device);
    let mut store =
        SafetensorsStore::from_bytes(Some(bytes)).with_from_adapter(PyTorchToBurnAdapter);
    let applied = fresh.load_from(&mut store).unwrap();
    assert!(applied.errors.is_empty(), "{applied:?}");
    let x = Inputs::<Backend>::new(
        Encoded::dense_only(vec![0.5, -1.0, 1.2, 0.3, -0.2, 0.1, -1.3, -1.1], 4).unwrap(),
        &device,
    );
    assert_eq!(model.outputs_to_host(x.clone()), fresh.logits_to_host(x));
}

#[test]
fn the_same_run_writes_the_same_safetensors_and_pictures() {
    let tmp = tempfile::tempdir().unwrap();
    let a = train(&tmp.path().join("a"), |_| {});
    let b = train(&tmp.path().join("b"), |_| {});
    assert_eq!(a.files, b.files);
}

#[test]
fn a_regressor_saved_over_a_classifier_leaves_no_confusion_matrix_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    train(&dir, |_| {});
    assert!(dir.join(CONFUSION_PNG).exists());
    let meta = train(&dir, |c| {
        c.data.path = Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/diabetes.csv"));
        c.data.label = Some(crate::config::ColumnRef::Name("target".into()));
    });
    assert!(!dir.join(CONFUSION_PNG).exists() && !dir.join(CONFUSION_SVG).exists());
    let listed: Vec<&str> = meta.files.iter().map(|f| f.file.as_str()).collect();
    assert_eq!(
        listed,
        [SAFETENSORS_FILE, ONNX_FILE, CURVES_SVG, CURVES_PNG]
    );
    let h = header(&fs::read(dir.join(SAFETENSORS_FILE)).unwrap());
    assert_eq!(h["__metadata__"]["task"], "regression");
    assert!(
        h["__metadata__"]["target_scaling"]
            .as_str()
            .unwrap()
            .contains("\"std\"")
    );
}

#[test]
fn export_adds_the_file_to_a_directory_saved_without_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let saved = train(&dir, |_| {});
    let original = fs::read(dir.join(SAFETENSORS_FILE)).unwrap();
    // As an older iris-trainer left it: no safetensors file, none listed.
    let mut old = saved.clone();
    old.files.retain(|f| f.file != SAFETENSORS_FILE);
    fs::write(
        dir.join(METADATA_FILE),
        serde_json::to_string_pretty(&old).unwrap(),
    )
    .unwrap();
    fs::remove_file(dir.join(SAFETENSORS_FILE)).unwrap();

    let device = Default::default();
    let written = export::<Backend>(&dir, ExportFormat::Safetensors, None, &device).unwrap();
    assert_eq!(written, dir.join(SAFETENSORS_FILE));
    assert_eq!(fs::read(&written).unwrap(), original);
    let meta = ModelDir::new(&dir).read_metadata().unwrap();
    assert_eq!(meta.files, saved.files);
    assert!(
        fs::read_to_string(dir.join("model.txt"))
            .unwrap()
            .contains("weights:   model.safetensors")
    );

    // To a file of its own choosing, the directory untouched.
    let out = tmp.path().join("iris.safetensors");
    export::<Backend>(&dir, ExportFormat::Safetensors, Some(&out), &device).unwrap();
    assert_eq!(fs::read(&out).unwrap(), original);

    // A directory without a model is refused, and not created.
    let missing = tmp.path().join("nothing");
    let err = export::<Backend>(&missing, ExportFormat::Safetensors, None, &device).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!missing.exists());
}

#[test]
fn export_refuses_a_record_that_does_not_match_its_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    train(&dir, |_| {});
    let mut record = fs::read(dir.join("model.mpk")).unwrap();
    let last = record.len() - 1;
    record[last] ^= 1;
    fs::write(dir.join("model.mpk"), record).unwrap();
    let before = fs::read(dir.join(SAFETENSORS_FILE)).unwrap();
    let err =
        export::<Backend>(&dir, ExportFormat::Safetensors, None, &Default::default()).unwrap_err();
    assert!(err.to_string().contains("SHA-256"), "{err}");
    assert_eq!(fs::read(dir.join(SAFETENSORS_FILE)).unwrap(), before);
}

#[test]
fn a_copy_leaves_out_a_damaged_picture_and_keeps_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let from = tmp.path().join("from");
    let saved = train(&from, |_| {});
    fs::write(from.join(CURVES_PNG), b"edited").unwrap();
    fs::remove_file(from.join(CONFUSION_SVG)).unwrap();
    let to = ModelDir::new(tmp.path().join("to"));
    let lock = to.lock_for_writing().unwrap();
    let meta = to.copy_from(&lock, &ModelDir::new(&from)).unwrap();
    let listed: Vec<&str> = meta.files.iter().map(|f| f.file.as_str()).collect();
    assert_eq!(
        listed,
        [SAFETENSORS_FILE, ONNX_FILE, CURVES_SVG, CONFUSION_PNG]
    );
    assert!(!to.path().join(CURVES_PNG).exists() && !to.path().join(CONFUSION_SVG).exists());
    assert_eq!(to.read_metadata().unwrap().files, meta.files);
    assert_eq!(meta.record, saved.record);
    assert!(
        to.check_files(&meta)
            .iter()
            .all(|(_, s)| *s == FileState::Ok)
    );
}

/// `model.onnx` of the model fixtures (run by onnxruntime in `scripts/interop-test.sh`).
mod onnx_graph {
    use std::collections::BTreeSet;

    use prost::Message;

    use crate::artifact::ModelDir;
    use crate::data::Encoder;
    use crate::metadata::Metadata;
    use crate::model::Ensemble;
    use crate::onnx::proto::tensor_proto::DataType;
    use crate::onnx::proto::{ModelProto, type_proto};
    use crate::onnx::{IR_VERSION, OPSET, model_onnx, triton_config};

    type B = crate::backend::Backend;

    fn fixture(name: &str) -> (Metadata, Ensemble<B>) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        ModelDir::new(&dir).load::<B>(&Default::default()).unwrap()
    }

    fn decode(bytes: &[u8]) -> ModelProto {
        ModelProto::decode(bytes).unwrap()
    }

    fn ops(m: &ModelProto) -> Vec<String> {
        let g = m.graph.as_ref().unwrap();
        g.node.iter().map(|n| n.op_type.clone().unwrap()).collect()
    }

    /// The operators the graph may use: core ONNX, all defined at opset 19.
    const CORE: &[&str] = &[
        "IsNaN",
        "Where",
        "Cast",
        "Equal",
        "ReduceMax",
        "Mul",
        "Max",
        "Sub",
        "Concat",
        "Div",
        "Add",
        "Sqrt",
        "MatMul",
        "Relu",
        "Tanh",
        "Sigmoid",
        "Erf",
        "Softmax",
        "Sum",
        "ArgMax",
        "Gather",
        "Squeeze",
        "Identity",
    ];

    #[test]
    fn a_classifier_with_categories_takes_raw_columns_and_answers_label_and_probabilities() {
        let (meta, model) = fixture("v2-penguins");
        let bytes = model_onnx(&model, &meta);
        assert_eq!(
            bytes,
            model_onnx(&model, &meta),
            "the same model, other bytes"
        );
        let m = decode(&bytes);
        assert_eq!(m.ir_version, Some(IR_VERSION));
        assert_eq!(m.opset_import.len(), 1);
        assert_eq!(m.opset_import[0].domain.as_deref(), Some(""));
        assert_eq!(m.opset_import[0].version, Some(OPSET));
        let g = m.graph.as_ref().unwrap();
        let inputs: Vec<&str> = g.input.iter().map(|i| i.name.as_deref().unwrap()).collect();
        assert_eq!(
            inputs,
            meta.features.iter().map(String::as_str).collect::<Vec<_>>()
        );
        let outputs: Vec<&str> = g
            .output
            .iter()
            .map(|o| o.name.as_deref().unwrap())
            .collect();
        assert_eq!(outputs, ["label", "probabilities"]);
        // Strings for categories, floats for the rest.
        let encoding = meta.preprocessor().encoding;
        for (input, enc) in g.input.iter().zip(&encoding.columns) {
            let Some(type_proto::Value::TensorType(t)) = &input.r#type.as_ref().unwrap().value
            else {
                panic!("{input:?} is not a tensor");
            };
            let want = match enc {
                Encoder::Categorical { .. } => DataType::String,
                _ => DataType::Float,
            };
            assert_eq!(t.elem_type, Some(want as i32), "{}", enc.name());
        }
        assert!(
            encoding
                .columns
                .iter()
                .any(|e| matches!(e, Encoder::Categorical { .. }))
        );
        for op in ops(&m) {
            assert!(CORE.contains(&op.as_str()), "{op} is not in the core list");
        }
        // Every name is given once.
        let mut names: Vec<&str> = g
            .node
            .iter()
            .flat_map(|n| &n.output)
            .map(String::as_str)
            .collect();
        names.extend(g.initializer.iter().map(|t| t.name.as_deref().unwrap()));
        names.extend(inputs);
        let unique: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len());
        let classes = m
            .metadata_props
            .iter()
            .find(|p| p.key.as_deref() == Some("classes"));
        assert_eq!(
            classes.and_then(|p| p.value.clone()),
            Some(serde_json::json!(meta.classes).to_string())
        );
    }

    #[test]
    fn a_regressor_answers_one_value_and_several_networks_are_averaged() {
        let (meta, model) = fixture("v2-diabetes-huber");
        let m = decode(&model_onnx(&model, &meta));
        let g = m.graph.as_ref().unwrap();
        assert_eq!(g.output.len(), 1);
        assert_eq!(g.output[0].name.as_deref(), Some("value"));
        assert!(!ops(&m).contains(&"Softmax".to_string()));
        assert!(!ops(&m).contains(&"Sum".to_string()));
        let one = g.initializer.len();
        let (meta, model) = fixture("v2-iris");
        let net = model.members()[0].clone();
        let pair = Ensemble::new(
            vec![net.clone(), net],
            crate::model::Combine::MeanProbabilities,
        );
        let m = decode(&model_onnx(&pair, &meta));
        let ops = ops(&m);
        assert_eq!(ops.iter().filter(|o| *o == "Softmax").count(), 2);
        assert!(ops.contains(&"Sum".to_string()));
        let layers = meta.model.layer_shapes().len();
        let single = decode(&model_onnx(&model, &meta));
        assert_eq!(
            m.graph.unwrap().initializer.len(),
            single.graph.unwrap().initializer.len() + 2 * layers + 1,
            "a second network's weights and biases, and the count to divide by"
        );
        assert!(one > 0);
    }

    #[test]
    fn the_triton_config_lists_every_input_and_output_quoted() {
        let (meta, _) = fixture("v2-penguins");
        let text = triton_config(&meta, "pen\"guins");
        assert!(text.contains("name: \"pen\\\"guins\"\n"), "{text}");
        assert!(text.contains("backend: \"onnxruntime\""));
        assert_eq!(text.matches("data_type:").count(), meta.features.len() + 2);
        assert!(
            text.contains("name: \"probabilities\"\n    data_type: TYPE_FP32\n    dims: [ -1, 3 ]")
        );
        assert!(text.contains("TYPE_STRING"));
    }
}

mod mlflow_dir {
    use serde_json::Value;

    use crate::artifact::ModelDir;
    use crate::data::Encoder;
    use crate::error::Error;
    use crate::mlflow_model::{self, LOADER_MODULE, MLMODEL_FILE};
    use crate::onnx::model_onnx;
    use crate::pipeline::export_mlflow_model;

    type B = crate::backend::Backend;

    fn fixture_dir(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    #[test]
    fn an_mlflow_model_names_its_flavors_signature_example_and_files() {
        let (meta, model) = ModelDir::new(fixture_dir("v2-penguins"))
            .load::<B>(&Default::default())
            .unwrap();
        let onnx = model_onnx(&model, &meta);
        let files = mlflow_model::files(&meta, &onnx, Some("run-1"));
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                MLMODEL_FILE,
                "model.onnx",
                "code/iris_trainer_pyfunc.py",
                "input_example.json",
                "serving_input_example.json",
                "requirements.txt",
                "python_env.yaml",
                "conda.yaml"
            ]
        );
        assert_eq!(files[1].1, onnx);
        let mlmodel: Value = serde_json::from_slice(&files[0].1).unwrap();
        let pyfunc = &mlmodel["flavors"]["python_function"];
        assert_eq!(pyfunc["loader_module"], LOADER_MODULE);
        assert_eq!(pyfunc["code"], "code");
        assert_eq!(pyfunc["data"], "model.onnx");
        assert_eq!(mlmodel["flavors"]["onnx"]["data"], "model.onnx");
        assert_eq!(mlmodel["run_id"], "run-1");
        assert_eq!(mlmodel["artifact_path"], "model");
        let size: usize = files[1..].iter().map(|(_, b)| b.len()).sum();
        assert_eq!(mlmodel["model_size_bytes"], size);
        // The signature: every feature in order, a category as string, the rest as any.
        let inputs: Value =
            serde_json::from_str(mlmodel["signature"]["inputs"].as_str().unwrap()).unwrap();
        let inputs = inputs.as_array().unwrap();
        assert_eq!(inputs.len(), meta.features.len());
        let encoders = &meta.preprocessor().encoding.columns;
        for (spec, feature) in inputs.iter().zip(&meta.features) {
            assert_eq!(spec["name"], feature.as_str());
            assert_eq!(spec["required"], true);
            let e = encoders.iter().find(|e| e.name() == feature).unwrap();
            let want = match e {
                Encoder::Categorical { .. } => "string",
                _ => "any",
            };
            assert_eq!(spec["type"], want, "{feature}");
        }
        assert!(
            encoders
                .iter()
                .any(|e| matches!(e, Encoder::Categorical { .. }))
        );
        let outputs: Value =
            serde_json::from_str(mlmodel["signature"]["outputs"].as_str().unwrap()).unwrap();
        assert_eq!(outputs[0]["name"], "label");
        // The example: two rows of every column, the second blank.
        let example: Value = serde_json::from_slice(&files[3].1).unwrap();
        assert_eq!(example["columns"], serde_json::json!(meta.features));
        let rows = example["data"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows[0].as_array().unwrap().iter().all(|v| !v.is_null()));
        assert!(rows[1].as_array().unwrap().iter().all(Value::is_null));
        let serving: Value = serde_json::from_slice(&files[4].1).unwrap();
        assert_eq!(serving["dataframe_split"]["data"], example["data"]);
        // The same model and run write the same bytes; another run another model_uuid.
        assert_eq!(mlflow_model::files(&meta, &onnx, Some("run-1")), files);
        let other: Value =
            serde_json::from_slice(&mlflow_model::files(&meta, &onnx, Some("run-2"))[0].1).unwrap();
        assert_ne!(other["model_uuid"], mlmodel["model_uuid"]);
    }

    #[test]
    fn the_onnx_graph_says_each_feature_kind_for_the_loader() {
        use crate::onnx::proto::ModelProto;
        use prost::Message;
        let (meta, model) = ModelDir::new(fixture_dir("v2-penguins"))
            .load::<B>(&Default::default())
            .unwrap();
        let graph = ModelProto::decode(model_onnx(&model, &meta).as_slice()).unwrap();
        let kinds = graph
            .metadata_props
            .iter()
            .find(|p| p.key.as_deref() == Some("kinds"))
            .and_then(|p| p.value.clone())
            .unwrap();
        let kinds: Vec<String> = serde_json::from_str(&kinds).unwrap();
        let encoders = &meta.preprocessor().encoding.columns;
        let want: Vec<String> = meta
            .features
            .iter()
            .map(|f| {
                let e = encoders.iter().find(|e| e.name() == f).unwrap();
                e.kind().to_string()
            })
            .collect();
        assert_eq!(kinds, want);
        assert!(kinds.iter().any(|k| k == "categorical"));
        assert!(kinds.iter().any(|k| k == "numeric"));
    }

    #[test]
    fn export_replaces_an_mlflow_model_whole_and_refuses_any_other_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("mlflow");
        let device = Default::default();
        let written = export_mlflow_model::<B>(&fixture_dir("v2-iris"), &out, &device).unwrap();
        assert_eq!(written, out);
        assert!(out.join(MLMODEL_FILE).is_file());
        assert!(out.join("code/iris_trainer_pyfunc.py").is_file());
        // Again over it: replaced whole, so a file of the old one is gone.
        std::fs::write(out.join("stray.txt"), "old").unwrap();
        export_mlflow_model::<B>(&fixture_dir("v2-iris"), &out, &device).unwrap();
        assert!(!out.join("stray.txt").exists());
        assert!(out.join(MLMODEL_FILE).is_file());
        // Some other directory is not replaced, and keeps its files.
        let other = tmp.path().join("notes");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join("keep.txt"), "mine").unwrap();
        let err = export_mlflow_model::<B>(&fixture_dir("v2-iris"), &other, &device).unwrap_err();
        assert!(matches!(err, Error::Output { .. }), "{err}");
        assert!(
            err.to_string().contains("not an MLflow model directory"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(other.join("keep.txt")).unwrap(),
            "mine"
        );
        // Nothing is left beside them (no staging or old directory).
        let mut left: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["mlflow", "notes"]);
    }
}
