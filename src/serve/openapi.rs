//! The OpenAPI 3.1 description of every route, with the served model's names and limits.

use serde_json::{Map, Value, json};

use super::oip;
use super::rest::iris_query_aliases;
use crate::data::Encoder;

/// What the document says about the served model.
#[derive(Debug, Clone, Copy)]
pub struct ServiceDescription<'a> {
    /// Feature names, in input order.
    pub features: &'a [String],
    /// Class names, in output order.
    pub classes: &'a [String],
    /// Most rows in one request.
    pub max_instances: usize,
    /// The model's name on the v2 routes.
    pub model_name: &'a str,
    /// The model's version on the v2 routes.
    pub model_version: &'a str,
    /// How each feature is read (types, category levels); empty: every feature a number.
    pub encoders: &'a [Encoder],
    /// Whether the model predicts a number (`{"value": x}`) rather than a class.
    pub regression: bool,
}

/// The JSON schema of one feature's raw value in `POST /predict`.
fn feature_schema(e: Option<&Encoder>) -> Value {
    match e {
        None => json!({"type": "number"}),
        Some(Encoder::Numeric { .. }) => {
            json!({"type": ["number", "null"], "description": "null: missing, filled in as in training"})
        }
        Some(Encoder::Boolean { .. }) => json!({"type": ["boolean", "string", "null"],
            "description": "true/false (or yes/no, y/n, t/f, 1/0); null: missing"}),
        Some(Encoder::Categorical {
            levels,
            other_level: false,
            ..
        }) => {
            let mut values: Vec<Value> = levels.iter().map(|l| json!(l)).collect();
            values.push(Value::Null);
            json!({"type": ["string", "null"], "enum": values,
                   "description": "a level seen in training; another value is accepted and encoded as all zeros (counted in /metrics as iris_trainer_unseen_categories_total)"})
        }
        Some(Encoder::Categorical { levels, .. }) => {
            let examples: Vec<Value> = levels.iter().take(20).map(|l| json!(l)).collect();
            json!({"type": ["string", "null"], "examples": examples,
                   "description": "any value: the frequent levels of training have an input each, every other value shares one"})
        }
    }
}

fn error_response(description: &str, schema: &str) -> Value {
    json!({"description": description,
           "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn json_body(schema: Value) -> Value {
    json!({"content": {"application/json": {"schema": schema}}})
}

/// The v2 routes for one model path (with or without the version segment).
fn oip_model_paths(paths: &mut Map<String, Value>, base: &str, params: &[Value]) {
    let oip_error = |d: &str| error_response(d, "OipError");
    paths.insert(
        base.to_string(),
        json!({"parameters": params, "get": {
            "summary": "Open Inference Protocol v2: model metadata (inputs, outputs)",
            "responses": {
                "200": json_body(json!({"$ref": "#/components/schemas/OipModelMetadata"})),
                "404": oip_error("Unknown model name or version")
            }
        }}),
    );
    paths.insert(
        format!("{base}/ready"),
        json!({"parameters": params, "get": {
            "summary": "Open Inference Protocol v2: model readiness",
            "responses": {
                "200": json_body(json!({"type": "object", "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}}})),
                "404": oip_error("Unknown model name or version")
            }
        }}),
    );
    paths.insert(
        format!("{base}/infer"),
        json!({"parameters": params, "post": {
            "summary": "Open Inference Protocol v2: inference",
            "description": format!(
                "Inputs: one input per feature named after its column, of shape [N] or [N, 1]: BYTES for a \
                 category, FP32 for a number (FP64 and integer types are converted), BOOL for a boolean; a BYTES \
                 element that is one of the model's missing-value markers is a missing value. A model without \
                 categories also takes `{}` of shape [N, features]. Data row-major, nested or flat, in JSON or \
                 (Triton's binary tensor data extension) after the JSON header, whose length the \
                 Inference-Header-Content-Length header gives. Outputs: `{}` (BYTES [N]) and `{}` (FP32 [N, classes]) \
                 for a classifier, `{}` (FP32 [N]) for a regressor; `outputs` picks some.",
                oip::INPUT, oip::LABEL, oip::PROBABILITIES, oip::VALUE
            ),
            "requestBody": {"required": true, "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/OipInferRequest"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            }},
            "responses": {
                "200": {"description": "The outputs (JSON, or a JSON header and binary data when asked for)",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OipInferResponse"}}}},
                "400": oip_error("Malformed request: JSON, shapes, datatypes, names, counts, non-finite values"),
                "404": oip_error("Unknown model name or version"),
                "413": oip_error("Body over the size limit"),
                "415": oip_error("Content-Type is not application/json or application/octet-stream")
            }
        }}),
    );
}

/// The OpenAPI 3.1 description of this service, for the served model.
pub fn openapi_document(d: &ServiceDescription) -> Value {
    let features = d.features;
    let outputs: &[&str] = if d.regression {
        &[oip::VALUE]
    } else {
        &[oip::LABEL, oip::PROBABILITIES]
    };
    let feature_props: Map<String, Value> = features
        .iter()
        .map(|f| {
            let e = d.encoders.iter().find(|e| e.name() == f);
            (f.clone(), feature_schema(e))
        })
        .collect();
    let item_schemas: Vec<Value> = features
        .iter()
        .map(|f| feature_schema(d.encoders.iter().find(|e| e.name() == f)))
        .collect();
    let prob_props: Map<String, Value> = d
        .classes
        .iter()
        .map(|c| {
            (
                c.clone(),
                json!({"type": "number", "minimum": 0, "maximum": 1}),
            )
        })
        .collect();
    let aliases = iris_query_aliases(features);
    let query_params: Vec<Value> = features
        .iter()
        .enumerate()
        .map(|(i, feature)| {
            let name = aliases.get(i).copied().unwrap_or(feature.as_str());
            json!({
                "name": name, "in": "query", "required": true,
                "description": format!("`{feature}` (the model's own name is accepted too)"),
                "schema": {"type": "number"}
            })
        })
        .collect();
    let own_error = |desc: &str| error_response(desc, "Error");
    let mlflow_error = |desc: &str| error_response(desc, "MlflowError");
    let name_param = json!({"name": "name", "in": "path", "required": true,
                            "schema": {"type": "string", "enum": [d.model_name]}});
    let version_param = json!({"name": "version", "in": "path", "required": true,
                               "schema": {"type": "string", "enum": [d.model_version]}});
    let mut paths: Map<String, Value> = serde_json::from_value(json!({
        "/prediction": {"get": {
            "summary": "Predict one row from query parameters (the workshop's request)",
            "parameters": query_params,
            "responses": {
                "200": {"description": "The inputs echoed, with the prediction",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Prediction"}}}},
                "400": own_error("Missing, unknown, repeated or non-finite parameters")
            }
        }},
        "/predict": {"post": {
            "summary": "Predict one instance or a batch",
            "requestBody": {"required": true, "content": {"application/json": {"schema": {
                "oneOf": [
                    {"$ref": "#/components/schemas/Instance"},
                    {"type": "object", "required": ["instances"], "additionalProperties": false,
                     "properties": {"instances": {"type": "array", "minItems": 1, "maxItems": d.max_instances,
                                                  "items": {"$ref": "#/components/schemas/Instance"}}}}
                ]
            }}}},
            "responses": {
                "200": {"description": "A prediction, or `{\"predictions\": [...]}` for a batch",
                        "content": {"application/json": {"schema": {"oneOf": [
                            {"$ref": "#/components/schemas/Prediction"},
                            {"type": "object", "properties": {"predictions": {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}}}}
                        ]}}}},
                "400": own_error("Malformed JSON, missing or extra fields, wrong count, non-finite numbers, too many instances"),
                "413": own_error("Body over the size limit"),
                "415": own_error("Content-Type is not application/json")
            }
        }},
        "/health": {"get": {"summary": "Liveness and readiness", "responses": {"200": {"description": "The model is loaded"}}}},
        "/metadata": {"get": {"summary": "The model's metadata (model.json)", "responses": {"200": {"description": "Metadata"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics (OpenMetrics text)", "responses": {"200": {"description": "Metrics"}}}},
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI document"}}}},
        "/v2": {"get": {"summary": "Open Inference Protocol v2: server metadata",
                        "responses": {"200": json_body(json!({"type": "object", "required": ["name", "version", "extensions"], "properties": {
                            "name": {"type": "string"}, "version": {"type": "string"},
                            "extensions": {"type": "array", "items": {"type": "string"}}}}))}}},
        "/v2/health/live": {"get": {"summary": "Open Inference Protocol v2: liveness",
                                    "responses": {"200": {"description": "The server is live"}}}},
        "/v2/health/ready": {"get": {"summary": "Open Inference Protocol v2: readiness",
                                     "responses": {"200": {"description": "The model is loaded"}}}},
        "/invocations": {"post": {
            "summary": "MLflow scoring protocol: predict a batch",
            "description": "JSON with exactly one of `dataframe_split`, `dataframe_records`, `instances`, `inputs` \
                            (and optionally `params`: `{\"predict_method\": \"predict_proba\"}` for probabilities), \
                            or CSV with a header. Columns are matched to the features by name; others are ignored.",
            "requestBody": {"required": true, "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/MlflowRequest"}},
                "text/csv": {"schema": {"type": "string"}}
            }},
            "responses": {
                "200": json_body(json!({"type": "object", "required": ["predictions"], "properties": {
                    "predictions": {"type": "array", "maxItems": d.max_instances, "items": {"oneOf": [
                        {"type": "string", "enum": d.classes},
                        {"type": "array", "items": {"type": "number"}, "minItems": d.classes.len(), "maxItems": d.classes.len()}
                    ]}}}})),
                "400": mlflow_error("Malformed request: JSON, fields, columns, non-finite values, too many rows"),
                "413": mlflow_error("Body over the size limit"),
                "415": mlflow_error("Content-Type is not application/json or text/csv")
            }
        }},
        "/ping": {"get": {"summary": "MLflow scoring protocol: health", "responses": {"200": {"description": "The model is loaded"}}}},
        "/version": {"get": {"summary": "MLflow scoring protocol: the server's version",
                             "responses": {"200": {"description": "The version", "content": {"text/plain": {"schema": {"type": "string"}}}}}}}
    }))
    .unwrap_or_default();
    oip_model_paths(
        &mut paths,
        "/v2/models/{name}",
        std::slice::from_ref(&name_param),
    );
    oip_model_paths(
        &mut paths,
        "/v2/models/{name}/versions/{version}",
        &[name_param, version_param],
    );
    let parameters = json!({"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}});
    let tensor_data = json!({"type": "array", "items": {}});
    let row = json!({"type": "array", "items": {"type": "number"}});
    let record = json!({"type": "object", "required": features, "properties": feature_props});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "iris-trainer prediction service",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Predictions from a model trained by iris-trainer: its own routes, the Open Inference \
                            Protocol v2 and MLflow's scoring protocol."
        },
        "paths": paths,
        "components": {"schemas": {
            "Instance": {"oneOf": [
                {"type": "object", "additionalProperties": false, "required": features, "properties": feature_props},
                {"type": "array", "prefixItems": item_schemas, "items": false, "minItems": features.len(), "maxItems": features.len()}
            ]},
            "Prediction": if d.regression {
                json!({"type": "object", "required": ["value"], "properties": {"value": {"type": "number"}}})
            } else {
                json!({"type": "object", "required": ["species", "probability", "probabilities"], "properties": {
                    "species": {"type": "string", "enum": d.classes},
                    "probability": {"type": "number"},
                    "probabilities": {"type": "object", "properties": prob_props}
                }})
            },
            "Error": {"type": "object", "required": ["error", "status"], "properties": {
                "error": {"type": "string"}, "status": {"type": "integer"}
            }},
            "OipError": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            "MlflowError": {"type": "object", "required": ["error_code", "message"], "properties": {
                "error_code": {"type": "string"}, "message": {"type": "string"}
            }},
            "OipTensorMetadata": {"type": "object", "required": ["name", "datatype", "shape"], "properties": {
                "name": {"type": "string"}, "datatype": {"type": "string"},
                "shape": {"type": "array", "items": {"type": "integer"}}
            }},
            "OipModelMetadata": {"type": "object", "required": ["name", "platform", "inputs", "outputs"], "properties": {
                "name": {"type": "string", "enum": [d.model_name]},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/OipTensorMetadata"}},
                "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/OipTensorMetadata"}}
            }},
            "OipInferRequest": {"type": "object", "required": ["inputs"], "additionalProperties": false, "properties": {
                "id": {"type": "string"},
                "parameters": parameters,
                "inputs": {"type": "array", "minItems": 1, "items": {"type": "object",
                    "required": ["name", "shape", "datatype"], "additionalProperties": false, "properties": {
                        "name": {"type": "string"},
                        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                        "datatype": {"type": "string"},
                        "parameters": parameters,
                        "data": tensor_data
                    }}},
                "outputs": {"type": "array", "items": {"type": "object", "required": ["name"], "additionalProperties": false,
                    "properties": {"name": {"type": "string", "enum": outputs}, "parameters": parameters}}}
            }},
            "OipInferResponse": {"type": "object", "required": ["model_name", "outputs"], "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": {"type": "array", "items": {"type": "object", "required": ["name", "shape", "datatype"], "properties": {
                    "name": {"type": "string"},
                    "shape": {"type": "array", "items": {"type": "integer"}},
                    "datatype": {"type": "string"},
                    "parameters": parameters,
                    "data": tensor_data
                }}}
            }},
            "MlflowRequest": {"type": "object", "properties": {
                "dataframe_split": {"type": "object", "required": ["data"], "properties": {
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "index": {"type": "array"},
                    "data": {"type": "array", "items": row}
                }},
                "dataframe_records": {"type": "array", "items": record},
                "instances": {"type": "array", "items": {"oneOf": [row, record]}},
                "inputs": {"oneOf": [
                    {"type": "array", "items": {"oneOf": [row, record]}},
                    {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "number"}}}
                ]},
                "params": {"type": "object", "properties": {"predict_method": {"type": "string", "enum": ["predict", "predict_proba"]}}}
            }}
        }}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_document_is_valid_openapi_3_1_for_the_model() {
        let features = ["a", "b"].map(String::from);
        let classes = ["x", "y"].map(String::from);
        let doc = openapi_document(&ServiceDescription {
            features: &features,
            classes: &classes,
            max_instances: 7,
            model_name: "m",
            model_version: "v1",
            encoders: &[],
            regression: false,
        });
        let spec: oas3::Spec = serde_json::from_value(doc.clone()).expect("valid OpenAPI 3.1");
        assert_eq!(spec.openapi, "3.1.0");
        let paths = spec.paths.expect("paths");
        for p in [
            "/prediction",
            "/predict",
            "/health",
            "/metadata",
            "/metrics",
            "/openapi.json",
            "/v2",
            "/v2/health/live",
            "/v2/health/ready",
            "/v2/models/{name}",
            "/v2/models/{name}/ready",
            "/v2/models/{name}/infer",
            "/v2/models/{name}/versions/{version}",
            "/v2/models/{name}/versions/{version}/ready",
            "/v2/models/{name}/versions/{version}/infer",
            "/invocations",
            "/ping",
            "/version",
        ] {
            assert!(paths.contains_key(p), "{p}");
        }
        assert_eq!(paths.len(), 18);
        // The model's own names and limits are in the schemas.
        let instance = &doc["components"]["schemas"]["Instance"]["oneOf"][0];
        assert_eq!(instance["required"], json!(["a", "b"]));
        assert_eq!(
            doc["components"]["schemas"]["Prediction"]["properties"]["species"]["enum"],
            json!(["x", "y"])
        );
        let batch = &doc["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]["oneOf"][1];
        assert_eq!(batch["properties"]["instances"]["maxItems"], 7);
        let infer = &doc["paths"]["/v2/models/{name}/versions/{version}/infer"];
        assert_eq!(infer["parameters"][0]["schema"]["enum"], json!(["m"]));
        assert_eq!(infer["parameters"][1]["schema"]["enum"], json!(["v1"]));
        // Not 4 features: the short Iris names do not apply, the feature names are the parameters.
        let params = doc["paths"]["/prediction"]["get"]["parameters"]
            .as_array()
            .unwrap();
        assert_eq!(params[0]["name"], "a");
    }
}
