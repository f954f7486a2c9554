//! `model.onnx`: the whole model as one ONNX graph, from raw columns to answers, for runtimes
//! that are not iris-trainer (onnxruntime, Triton's onnxruntime backend, tract).
//!
//! - **Inputs**, one per feature column, in the model's feature order, each `[N, 1]`:
//!   `float` for a number (`NaN` for a missing value) and for a yes/no column (1 or 0, `NaN`
//!   for missing); `string` for a category, matched exactly against the training levels, one of
//!   the model's missing-value markers (`""`, `"NA"`... as `model.json` lists them) meaning
//!   missing. An input is named after its column; a column named like an output
//!   (`label`, `probabilities`, `value`) has its input named `column:<name>`.
//! - **Graph**: the imputation and "was missing" inputs, one-hot levels (a missing level, the
//!   shared level of rare categories), scaling and smooth clipping, every network of the model
//!   and the mean of their answers.
//! - **Outputs**: `label` (`string [N]`) and `probabilities` (`float [N, classes]`, the classes
//!   in `model.json`'s order, also in the metadata property `classes`) for a classifier, `value`
//!   (`float [N]`) for a regressor.
//!
//! Core operators of the default domain only, at opset [`OPSET`] (`Equal` on strings needs 19);
//! no `ai.onnx.ml` operator. The messages are prost's, generated from ONNX's own `onnx.proto`
//! (`proto`). The same model always writes the same bytes.

#[allow(missing_docs, clippy::all, clippy::pedantic)]
#[rustfmt::skip]
pub mod proto;

use std::collections::{BTreeMap, BTreeSet};

use burn::prelude::Backend;
use prost::Message;

use crate::data::{Encoder, Task};
use crate::metadata::Metadata;
use crate::model::Ensemble;
use crate::recipe::Activation;
use proto::tensor_proto::DataType;
use proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, attribute_proto::AttributeType,
    tensor_shape_proto::Dimension, tensor_shape_proto::dimension::Value as Dim, type_proto,
};

/// The opset of the default domain the graph is written for.
pub const OPSET: i64 = 19;
/// The ONNX IR version of that opset (ONNX 1.14).
pub const IR_VERSION: i64 = 9;
/// The outputs' names: a classifier's, then a regressor's.
pub const OUTPUTS: [&str; 3] = ["label", "probabilities", "value"];

/// The name of the graph input of feature column `column`.
pub fn input_name(column: &str) -> String {
    if OUTPUTS.contains(&column) || column.is_empty() {
        format!("column:{column}")
    } else {
        column.to_string()
    }
}

/// The ONNX file of `model`, described by `meta` (see the module docs).
pub fn model_onnx<B: Backend>(model: &Ensemble<B>, meta: &Metadata) -> Vec<u8> {
    let mut g = Graph::new(&meta.features);
    let pre = meta.preprocessor();
    let encoding = &pre.encoding;
    let mut pieces = Vec::new();
    for enc in &encoding.columns {
        let input = input_name(enc.name());
        match enc {
            Encoder::Numeric {
                fill, indicator, ..
            } => {
                let (value, nan) = g.imputed(&input, *fill);
                pieces.push(value);
                if *indicator {
                    pieces.push(g.op("Cast", &[&nan], &[int("to", DataType::Float as i64)]));
                }
            }
            Encoder::Boolean { fill, .. } => pieces.push(g.imputed(&input, *fill).0),
            Encoder::Categorical {
                levels,
                missing_level,
                other_level,
                ..
            } => {
                g.input(&input, DataType::String);
                let levels = g.strings("levels", levels);
                let hit = g.op("Equal", &[&input, &levels], &[]);
                let onehot = g.op("Cast", &[&hit], &[int("to", DataType::Float as i64)]);
                pieces.push(onehot.clone());
                if !(*missing_level || *other_level) {
                    continue;
                }
                let axis = g.i64s("axis", &[1], &[1]);
                let keep = [int("keepdims", 1)];
                // Whether the value is a level with an input of its own, [N, 1].
                let mut known = None;
                let missing = if encoding.missing_values.is_empty() {
                    // No string means missing: a column of zeros.
                    let k = g.op("ReduceMax", &[&onehot, &axis], &keep);
                    let zero = g.scalar("zero", 0.0);
                    let zeros = g.op("Mul", &[&k, &zero], &[]);
                    known = Some(k);
                    zeros
                } else {
                    let markers = g.strings("missing_values", &encoding.missing_values);
                    let is = g.op("Equal", &[&input, &markers], &[]);
                    let is = g.op("Cast", &[&is], &[int("to", DataType::Float as i64)]);
                    g.op("ReduceMax", &[&is, &axis], &keep)
                };
                if *missing_level {
                    pieces.push(missing.clone());
                }
                if *other_level {
                    // Neither a level with an input of its own nor missing.
                    let known =
                        known.unwrap_or_else(|| g.op("ReduceMax", &[&onehot, &axis], &keep));
                    let taken = g.op("Max", &[&known, &missing], &[]);
                    let one = g.scalar("one", 1.0);
                    pieces.push(g.op("Sub", &[&one, &taken], &[]));
                }
            }
        }
    }
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let mut x = g.op("Concat", &refs, &[int("axis", 1)]);
    let w = pre.scaling.mean.len() as i64;
    let mean = g.f32s("mean", &[w], &pre.scaling.mean);
    let std = g.f32s("std", &[w], &pre.scaling.std);
    x = g.op("Sub", &[&x, &mean], &[]);
    x = g.op("Div", &[&x, &std], &[]);
    if pre.scaling.clip {
        // x / sqrt(1 + (x / 3)^2), as the preprocessor computes it.
        let three = g.scalar("three", 3.0);
        let one = g.scalar("one", 1.0);
        let t = g.op("Div", &[&x, &three], &[]);
        let t = g.op("Mul", &[&t, &t], &[]);
        let t = g.op("Add", &[&t, &one], &[]);
        let t = g.op("Sqrt", &[&t], &[]);
        x = g.op("Div", &[&x, &t], &[]);
    }
    let activation = meta.model.activation;
    let answers: Vec<String> = model
        .members()
        .iter()
        .enumerate()
        .map(|(m, net)| {
            let layers = net.layers_to_host();
            let last = layers.len() - 1;
            let mut h = x.clone();
            for (i, layer) in layers.into_iter().enumerate() {
                let [d_in, d_out] = layer.shape.map(|d| d as i64);
                let wname = g.f32s(
                    &format!("net{m}.layer{i}.weight"),
                    &[d_in, d_out],
                    &layer.weight,
                );
                let bname = g.f32s(&format!("net{m}.layer{i}.bias"), &[d_out], &layer.bias);
                h = g.op("MatMul", &[&h, &wname], &[]);
                h = g.op("Add", &[&h, &bname], &[]);
                if i < last {
                    h = g.activation(activation, &h);
                }
            }
            match meta.task {
                Task::Classification => g.op("Softmax", &[&h], &[int("axis", 1)]),
                Task::Regression => h,
            }
        })
        .collect();
    let mean = match answers.as_slice() {
        [one] => one.clone(),
        many => {
            let refs: Vec<&str> = many.iter().map(String::as_str).collect();
            let sum = g.op("Sum", &refs, &[]);
            let k = g.scalar("members", many.len() as f32);
            g.op("Div", &[&sum, &k], &[])
        }
    };
    let mut properties = vec![
        ("task", meta.task.to_string()),
        ("label", meta.label.clone()),
        ("features", serde_json::json!(meta.features).to_string()),
        (
            "inputs",
            serde_json::json!(
                meta.features
                    .iter()
                    .map(|f| input_name(f))
                    .collect::<Vec<_>>()
            )
            .to_string(),
        ),
        (
            "kinds",
            serde_json::json!(
                meta.features
                    .iter()
                    .map(|f| encoding
                        .columns
                        .iter()
                        .find(|e| e.name() == f)
                        .map_or_else(String::new, |e| e.kind().to_string()))
                    .collect::<Vec<_>>()
            )
            .to_string(),
        ),
        (
            "missing_values",
            serde_json::json!(encoding.missing_values).to_string(),
        ),
    ];
    match meta.task {
        Task::Classification => {
            g.identity(&mean, OUTPUTS[1]);
            let index = g.op("ArgMax", &[&mean], &[int("axis", 1), int("keepdims", 0)]);
            let classes = g.strings("classes", &meta.classes);
            let label = g.op("Gather", &[&classes, &index], &[int("axis", 0)]);
            g.identity(&label, OUTPUTS[0]);
            g.output(OUTPUTS[0], DataType::String, &[None]);
            g.output(
                OUTPUTS[1],
                DataType::Float,
                &[None, Some(meta.classes.len() as i64)],
            );
            properties.push(("classes", serde_json::json!(meta.classes).to_string()));
        }
        Task::Regression => {
            let s = meta.target_scaling();
            let std = g.scalar("target_std", s.std);
            let mean_y = g.scalar("target_mean", s.mean);
            let y = g.op("Mul", &[&mean, &std], &[]);
            let y = g.op("Add", &[&y, &mean_y], &[]);
            let axes = g.i64s("axes", &[1], &[1]);
            let y = g.op("Squeeze", &[&y, &axes], &[]);
            g.identity(&y, OUTPUTS[2]);
            g.output(OUTPUTS[2], DataType::Float, &[None]);
        }
    }
    ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        producer_name: Some("iris-trainer".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some(format!(
            "{} of `{}` by {} (recipe {} version {}); inputs are the raw feature columns",
            meta.task, meta.label, meta.created_by, meta.recipe.name, meta.recipe.version
        )),
        graph: Some(g.finish(&meta.label)),
        metadata_props: properties
            .into_iter()
            .map(|(k, v)| StringStringEntryProto {
                key: Some(k.into()),
                value: Some(v),
            })
            .collect(),
        ..Default::default()
    }
    .encode_to_vec()
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(value),
        ..Default::default()
    }
}

/// A graph being written: nodes in order, constants as initializers, names kept unique.
struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    /// Names already given (the inputs' and outputs' too), so no internal name repeats one.
    used: BTreeSet<String>,
    next: usize,
    /// The one-value constants written so far, by their bits: each is written once.
    scalars: BTreeMap<u32, String>,
}

impl Graph {
    fn new(features: &[String]) -> Self {
        let mut used: BTreeSet<String> = features.iter().map(|f| input_name(f)).collect();
        used.extend(OUTPUTS.iter().map(|o| o.to_string()));
        Graph {
            nodes: Vec::new(),
            initializers: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            used,
            next: 0,
            scalars: BTreeMap::new(),
        }
    }

    /// A fresh internal name starting `stem`.
    fn name(&mut self, stem: &str) -> String {
        loop {
            let name = format!("/{stem}_{}", self.next);
            self.next += 1;
            if self.used.insert(name.clone()) {
                return name;
            }
        }
    }

    /// The float input `name` with a missing value (`NaN`) filled by `fill`, and whether each
    /// was missing.
    fn imputed(&mut self, name: &str, fill: f32) -> (String, String) {
        self.input(name, DataType::Float);
        let nan = self.op("IsNaN", &[name], &[]);
        let fill = self.scalar("fill", fill);
        (self.op("Where", &[&nan, &fill, name], &[]), nan)
    }

    fn input(&mut self, name: &str, ty: DataType) {
        self.inputs.push(value_info(name, ty, &[None, Some(1)]));
    }

    fn output(&mut self, name: &str, ty: DataType, dims: &[Option<i64>]) {
        self.outputs.push(value_info(name, ty, dims));
    }

    /// A node of `op` on `inputs`; returns the name of its one output.
    fn op(&mut self, op: &str, inputs: &[&str], attributes: &[AttributeProto]) -> String {
        let out = self.name(op);
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: Some(out.clone()),
            op_type: Some(op.into()),
            attribute: attributes.to_vec(),
            ..Default::default()
        });
        out
    }

    /// `value` under the graph output name `name`.
    fn identity(&mut self, value: &str, name: &str) {
        self.nodes.push(NodeProto {
            input: vec![value.into()],
            output: vec![name.into()],
            name: Some(format!("/{name}")),
            op_type: Some("Identity".into()),
            ..Default::default()
        });
    }

    fn activation(&mut self, activation: Activation, x: &str) -> String {
        match activation {
            Activation::Relu => self.op("Relu", &[x], &[]),
            Activation::Tanh => self.op("Tanh", &[x], &[]),
            Activation::Sigmoid => self.op("Sigmoid", &[x], &[]),
            // x * (1 + erf(x / sqrt 2)) / 2, as Burn computes it; `Gelu` needs opset 20.
            Activation::Gelu => {
                let root2 = self.scalar("sqrt2", std::f32::consts::SQRT_2);
                let one = self.scalar("one", 1.0);
                let half = self.scalar("half", 0.5);
                let t = self.op("Div", &[x, &root2], &[]);
                let t = self.op("Erf", &[&t], &[]);
                let t = self.op("Add", &[&t, &one], &[]);
                let t = self.op("Mul", &[x, &t], &[]);
                self.op("Mul", &[&t, &half], &[])
            }
        }
    }

    fn constant(&mut self, stem: &str, mut tensor: TensorProto) -> String {
        let name = self.name(stem);
        tensor.name = Some(name.clone());
        self.initializers.push(tensor);
        name
    }

    fn f32s(&mut self, stem: &str, dims: &[i64], values: &[f32]) -> String {
        self.constant(
            stem,
            TensorProto {
                dims: dims.to_vec(),
                data_type: Some(DataType::Float as i32),
                float_data: values.to_vec(),
                ..Default::default()
            },
        )
    }

    /// A `[1]` float constant (broadcast against any shape), written once per value.
    fn scalar(&mut self, stem: &str, value: f32) -> String {
        if let Some(name) = self.scalars.get(&value.to_bits()) {
            return name.clone();
        }
        let name = self.f32s(stem, &[1], &[value]);
        self.scalars.insert(value.to_bits(), name.clone());
        name
    }

    fn i64s(&mut self, stem: &str, dims: &[i64], values: &[i64]) -> String {
        self.constant(
            stem,
            TensorProto {
                dims: dims.to_vec(),
                data_type: Some(DataType::Int64 as i32),
                int64_data: values.to_vec(),
                ..Default::default()
            },
        )
    }

    fn strings(&mut self, stem: &str, values: &[String]) -> String {
        self.constant(
            stem,
            TensorProto {
                dims: vec![values.len() as i64],
                data_type: Some(DataType::String as i32),
                string_data: values.iter().map(|v| v.clone().into_bytes()).collect(),
                ..Default::default()
            },
        )
    }

    fn finish(self, label: &str) -> GraphProto {
        GraphProto {
            name: Some(format!("iris-trainer: {label}")),
            node: self.nodes,
            initializer: self.initializers,
            input: self.inputs,
            output: self.outputs,
            ..Default::default()
        }
    }
}

fn value_info(name: &str, ty: DataType, dims: &[Option<i64>]) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(ty as i32),
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: Some(match d {
                                Some(n) => Dim::DimValue(*n),
                                None => Dim::DimParam("N".into()),
                            }),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The `config.pbtxt` of a Triton model repository entry `name` serving `model.onnx` of the
/// model `meta` describes with Triton's onnxruntime backend: every input and output, its type
/// and its shape (`-1` for the rows; no Triton batching, the graph takes any number of rows).
pub fn triton_config(meta: &Metadata, name: &str) -> String {
    let quote = |s: &str| {
        let mut q = String::with_capacity(s.len() + 2);
        q.push('"');
        for c in s.chars() {
            match c {
                '"' => q.push_str("\\\""),
                '\\' => q.push_str("\\\\"),
                '\n' => q.push_str("\\n"),
                c => q.push(c),
            }
        }
        q.push('"');
        q
    };
    let tensor = |name: &str, ty: &str, dims: &str| {
        format!(
            "  {{\n    name: {}\n    data_type: {ty}\n    dims: [ {dims} ]\n  }}",
            quote(name)
        )
    };
    let encoding = meta.preprocessor().encoding;
    let inputs: Vec<String> = encoding
        .columns
        .iter()
        .map(|enc| {
            let ty = match enc {
                Encoder::Categorical { .. } => "TYPE_STRING",
                _ => "TYPE_FP32",
            };
            tensor(&input_name(enc.name()), ty, "-1, 1")
        })
        .collect();
    let outputs = match meta.task {
        Task::Classification => vec![
            tensor(OUTPUTS[0], "TYPE_STRING", "-1"),
            tensor(
                OUTPUTS[1],
                "TYPE_FP32",
                &format!("-1, {}", meta.classes.len()),
            ),
        ],
        Task::Regression => vec![tensor(OUTPUTS[2], "TYPE_FP32", "-1")],
    };
    format!(
        "# Written by {}: `{}` ({}) as ONNX, for Triton's onnxruntime backend.\n\
         name: {}\nbackend: \"onnxruntime\"\nmax_batch_size: 0\ninput [\n{}\n]\noutput [\n{}\n]\n",
        meta.created_by,
        meta.label,
        meta.task,
        quote(name),
        inputs.join(",\n"),
        outputs.join(",\n"),
    )
}

#[cfg(test)]
mod tests {
    //! The graph of real models is tested in `pipeline`, which may load model directories.
    use super::*;

    #[test]
    fn columns_named_like_an_output_get_their_own_input_name() {
        assert_eq!(input_name("label"), "column:label");
        assert_eq!(input_name("value"), "column:value");
        assert_eq!(input_name(""), "column:");
        assert_eq!(input_name("sepal length (cm)"), "sepal length (cm)");
        let mut g = Graph::new(&["/Add_0".to_string()]);
        assert_eq!(g.name("Add"), "/Add_1");
    }
}
