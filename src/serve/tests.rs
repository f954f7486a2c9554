//! In-process tests of the router (tower's `oneshot`, no sockets): every protocol's answers,
//! compared with the predictor's own, and its refusals, with exact statuses and bodies.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;

const FEATURES: [&str; 4] = ["sepal_length", "sepal_width", "petal_length", "petal_width"];
/// One flower of each class, and a fourth.
const ROWS: [[f32; 4]; 4] = [
    [5.1, 3.5, 1.4, 0.2],
    [6.0, 2.9, 4.5, 1.5],
    [6.7, 3.0, 5.2, 2.3],
    [5.9, 3.0, 5.1, 1.8],
];
const LIMIT: usize = 4096;

/// A model trained once for this test binary (the default Iris config, fewer epochs).
fn model_dir() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = crate::TrainConfig::default();
        config.training.epochs = 150;
        config.output.dir = dir.path().join("model");
        let _training = crate::training_lock();
        crate::train_and_save(config).expect("training the test model");
        let path = dir.path().join("model");
        (dir, path)
    })
    .1
}

fn predictor() -> Predictor<Backend> {
    let device = crate::backend::init(false).expect("a device").device;
    Predictor::load(model_dir(), &device).expect("the test model loads")
}

/// The predictor's own answers for [`ROWS`]: labels and probabilities.
fn reference() -> (Vec<String>, Vec<Vec<f32>>) {
    let flat: Vec<f32> = ROWS.iter().flatten().copied().collect();
    let p = predictor().predict(&flat).expect("predictions");
    (
        p.iter().map(|p| p.class.clone()).collect(),
        p.iter().map(|p| p.probabilities.clone()).collect(),
    )
}

fn options() -> ServeOptions {
    ServeOptions {
        addr: "127.0.0.1:0".parse().expect("an address"),
        model_name: DEFAULT_MODEL_NAME.to_string(),
        max_instances: 5,
        max_body_bytes: LIMIT,
        timeout: Duration::from_secs(30),
        max_concurrency: 16,
        quiet: true,
    }
}

/// A router for one test; clones share its state (and metrics).
struct App(Router);

/// What the router answered.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Status and JSON body, for exact comparisons.
    fn both(&self) -> (u16, Value) {
        (self.status.as_u16(), self.json())
    }
}

impl App {
    fn new() -> Self {
        App::with(options())
    }

    fn with(opts: ServeOptions) -> Self {
        App(router(predictor(), &opts))
    }

    async fn call(&self, req: Request<Body>) -> Answer {
        let response = self.0.clone().oneshot(req).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, uri: &str) -> Answer {
        self.send(Method::GET, uri, &[], Body::empty()).await
    }

    async fn post(&self, uri: &str, content_type: Option<&str>, body: impl Into<Body>) -> Answer {
        let headers: Vec<(&str, &str)> = content_type
            .map(|ct| vec![("content-type", ct)])
            .unwrap_or_default();
        self.send(Method::POST, uri, &headers, body.into()).await
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.call(req.body(body).expect("a request")).await
    }
}

fn json_body(v: &Value) -> String {
    v.to_string()
}

/// JSON numbers as the f32 they stand for.
fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().expect("a number") as f32)
        .collect()
}

// ---- the service's own routes ----

#[tokio::test]
async fn own_routes_answer_as_the_predictor_does() {
    let app = App::new();
    let (labels, probs) = reference();
    let a = app
        .get("/prediction?slength=5.1&swidth=3.5&plength=1.4&pwidth=0.2")
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let v = a.json();
    assert_eq!(
        (v["species"].as_str(), v["slength"].as_f64()),
        (Some(labels[0].as_str()), Some(5.1))
    );
    let batch = json!({"instances": [ROWS[0], ROWS[1], ROWS[2], ROWS[3]]});
    let a = app
        .post("/predict", Some("application/json"), json_body(&batch))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    for (i, p) in a.json()["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        assert_eq!(p["species"], labels[i]);
        let got: Vec<f32> = p["probabilities"]
            .as_object()
            .unwrap()
            .values()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(got, probs[i]);
    }
    let a = app.get("/health").await;
    assert_eq!(
        (a.status, &a.json()["status"]),
        (StatusCode::OK, &json!("ok"))
    );
    assert_eq!(
        app.get("/metadata").await.json()["features"],
        json!(FEATURES)
    );
}

#[tokio::test]
async fn own_routes_refuse_bad_requests_exactly() {
    let app = App::new();
    let err = |status: u16, message: &str| (status, json!({"error": message, "status": status}));
    assert_eq!(
        app.get("/prediction?slength=x&swidth=3.5&plength=1.4&pwidth=0.2")
            .await
            .both(),
        err(400, "parameter `slength`: `x` is not a number")
    );
    assert_eq!(
        app.get("/prediction?slength=5.1&swidth=3.5&plength=1.4")
            .await
            .both(),
        err(
            400,
            "missing parameter(s): pwidth; expected slength, swidth, plength, pwidth (or \
             sepal_length, sepal_width, petal_length, petal_width)"
        )
    );
    let q = "/prediction?";
    for (query, message) in [
        (
            "slength=5.1&swidth=3.5&plength=1.4&pwidth=0.2&extra=1",
            "unknown parameter `extra`; expected slength, swidth, plength, pwidth (or \
             sepal_length, sepal_width, petal_length, petal_width)",
        ),
        (
            "slength=NaN&swidth=3.5&plength=1.4&pwidth=0.2",
            "parameter `slength`: `NaN` is not a finite number (NaN, infinity or out of range)",
        ),
        (
            "slength=5.1&swidth=inf&plength=1.4&pwidth=0.2",
            "parameter `swidth`: `inf` is not a finite number (NaN, infinity or out of range)",
        ),
        (
            "slength=5.1&swidth=3.5&plength=&pwidth=0.2",
            "parameter `plength`: missing value (empty field)",
        ),
        (
            "slength=1&sepal_length=2&swidth=3.5&plength=1.4&pwidth=0.2",
            "parameter for `sepal_length` given twice",
        ),
        (
            "slength=3e38&swidth=3.5&plength=1.4&pwidth=0.2",
            "row 1, column `sepal_length`: 300000000000000000000000000000000000000 is too large to use \
             (it overflows once scaled)",
        ),
    ] {
        assert_eq!(
            app.get(&format!("{q}{query}")).await.both(),
            err(400, message),
            "{query}"
        );
    }
    for (body, message) in [
        (
            r#"{"sepal_length":5.1}"#,
            "missing field `sepal_width` (send null for a missing value)",
        ),
        (
            "[1,2,3]",
            "expected 4 values (sepal_length, sepal_width, petal_length, petal_width), got 3",
        ),
        (
            r#"[1,2,3,"4"]"#,
            "`petal_width`: expected a number, got \"4\"",
        ),
        (
            r#"{"instances":[[1,2,3,4]],"extra":1}"#,
            "unknown field `extra` beside `instances`",
        ),
    ] {
        assert_eq!(
            app.post("/predict", Some("application/json"), body)
                .await
                .both(),
            err(400, message),
            "{body}"
        );
    }
    assert_eq!(
        app.post("/predict", Some("application/json"), "{")
            .await
            .both(),
        err(
            400,
            "body is not valid JSON: EOF while parsing an object at line 1 column 1"
        )
    );
    assert_eq!(
        app.post("/predict", Some("text/plain"), "[1,2,3,4]")
            .await
            .both(),
        err(
            415,
            "Content-Type must be application/json, got `text/plain`"
        )
    );
    let six = json!({"instances": vec![ROWS[0]; 6]});
    assert_eq!(
        app.post("/predict", Some("application/json"), json_body(&six))
            .await
            .both(),
        err(400, "6 instances in one request; at most 5 are accepted")
    );
    let gzip = app
        .send(
            Method::POST,
            "/predict",
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            Body::from("[1,2,3,4]"),
        )
        .await;
    assert_eq!(
        gzip.both(),
        err(
            415,
            "Content-Encoding `gzip` is not supported; send the body uncompressed"
        )
    );
    assert_eq!(
        app.send(Method::DELETE, "/predict", &[], Body::empty())
            .await
            .both(),
        err(405, "DELETE is not allowed on /predict")
    );
    assert_eq!(
        app.get("/nowhere").await.both(),
        err(404, "no route GET /nowhere; see GET /openapi.json")
    );
    oversized(
        &app,
        "/predict",
        |message| json!({"error": message, "status": 413}),
    )
    .await;
}

/// Bodies over the limit: refused from the declared length, and cut off when no length is
/// declared; the error in the route's protocol shape.
async fn oversized(app: &App, uri: &str, shape: impl Fn(&str) -> Value) {
    let big = vec![b' '; LIMIT + 1];
    let declared = app
        .send(
            Method::POST,
            uri,
            &[
                ("content-type", "application/json"),
                ("content-length", &big.len().to_string()),
            ],
            Body::from(big.clone()),
        )
        .await;
    assert_eq!(
        declared.both(),
        (
            413,
            shape(&format!(
                "request body is {} bytes; the limit is {LIMIT} bytes",
                LIMIT + 1
            ))
        ),
        "{uri}"
    );
    let streamed = app.post(uri, Some("application/json"), big).await;
    assert_eq!(
        streamed.both(),
        (
            413,
            shape("Failed to buffer the request body: length limit exceeded")
        ),
        "{uri}"
    );
}

// ---- Open Inference Protocol v2 ----

fn infer_body(rows: &[[f32; 4]]) -> Value {
    json!({"inputs": [{"name": "input", "shape": [rows.len(), 4], "datatype": "FP32", "data": rows}]})
}

fn version() -> String {
    predictor().metadata().record.sha256[..12].to_string()
}

#[tokio::test]
async fn oip_health_and_metadata_follow_the_spec() {
    let app = App::new();
    assert_eq!(
        app.get("/v2").await.both(),
        (
            200,
            json!({"name": "iris-trainer", "version": env!("CARGO_PKG_VERSION"), "extensions": ["binary_tensor_data"]})
        )
    );
    assert_eq!(
        app.get("/v2/health/live").await.both(),
        (200, json!({"live": true}))
    );
    assert_eq!(
        app.get("/v2/health/ready").await.both(),
        (200, json!({"ready": true}))
    );
    let v = version();
    let metadata = json!({
        "name": "iris-trainer",
        "versions": [v],
        "platform": "burn_mpk",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "label", "datatype": "BYTES", "shape": [-1]},
                    {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}]
    });
    assert_eq!(
        app.get("/v2/models/iris-trainer").await.both(),
        (200, metadata.clone())
    );
    assert_eq!(
        app.get(&format!("/v2/models/iris-trainer/versions/{v}"))
            .await
            .both(),
        (200, metadata)
    );
    let ready = json!({"name": "iris-trainer", "ready": true});
    assert_eq!(
        app.get("/v2/models/iris-trainer/ready").await.both(),
        (200, ready.clone())
    );
    assert_eq!(
        app.get(&format!("/v2/models/iris-trainer/versions/{v}/ready"))
            .await
            .both(),
        (200, ready)
    );
    let unknown = json!({"error": "unknown model `iris`; this server serves `iris-trainer`"});
    assert_eq!(
        app.get("/v2/models/iris").await.both(),
        (404, unknown.clone())
    );
    assert_eq!(
        app.get("/v2/models/iris/ready").await.both(),
        (404, unknown)
    );
    let no_version = json!({"error": format!(
        "model `iris-trainer` has no version `1`; its version is `{v}` (or leave the version out)"
    )});
    assert_eq!(
        app.get("/v2/models/iris-trainer/versions/1/ready")
            .await
            .both(),
        (404, no_version)
    );
}

#[tokio::test]
async fn oip_model_name_comes_from_the_options() {
    let app = App::with(ServeOptions {
        model_name: "flowers".into(),
        ..options()
    });
    assert_eq!(
        app.get("/v2/models/flowers/ready").await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/v2/models/iris-trainer").await.both(),
        (
            404,
            json!({"error": "unknown model `iris-trainer`; this server serves `flowers`"})
        )
    );
    let a = app
        .post(
            "/v2/models/flowers/infer",
            Some("application/json"),
            json_body(&infer_body(&ROWS[..1])),
        )
        .await;
    assert_eq!(a.json()["model_name"], "flowers");
}

#[tokio::test]
async fn oip_infer_answers_as_the_predictor_does() {
    let app = App::new();
    let (labels, probs) = reference();
    let flat: Vec<f32> = probs.iter().flatten().copied().collect();
    let v = version();
    let mut body = infer_body(&ROWS);
    body["id"] = json!("req-7");
    let a = app
        .post(
            "/v2/models/iris-trainer/infer",
            Some("application/json"),
            json_body(&body),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.headers[header::CONTENT_TYPE], "application/json");
    let answer = a.json();
    assert_eq!(
        answer,
        json!({
            "model_name": "iris-trainer",
            "model_version": v,
            "id": "req-7",
            "outputs": [
                {"name": "label", "datatype": "BYTES", "shape": [4], "data": labels},
                {"name": "probabilities", "datatype": "FP32", "shape": [4, 3], "data": answer["outputs"][1]["data"]}
            ]
        })
    );
    assert_eq!(floats(&answer["outputs"][1]["data"]), flat);

    // One input per feature, on the versioned path, asking for probabilities only.
    let columns: Vec<Value> = FEATURES
        .iter()
        .enumerate()
        .map(|(j, f)| {
            let column: Vec<f32> = ROWS.iter().map(|r| r[j]).collect();
            json!({"name": f, "shape": [4, 1], "datatype": "FP64", "data": column})
        })
        .collect();
    let body = json!({"inputs": columns, "outputs": [{"name": "probabilities"}]});
    let a = app
        .post(
            &format!("/v2/models/iris-trainer/versions/{v}/infer"),
            None,
            json_body(&body),
        )
        .await;
    let outputs = &a.json()["outputs"];
    assert_eq!(outputs.as_array().map(Vec::len), Some(1), "{}", a.text());
    assert_eq!(floats(&outputs[0]["data"]), flat);
}

#[tokio::test]
async fn oip_binary_tensor_data_both_ways() {
    let app = App::new();
    let (labels, probs) = reference();
    let head = json!({
        "inputs": [{"name": "input", "shape": [4, 4], "datatype": "FP32", "parameters": {"binary_data_size": 64}}],
        "parameters": {"binary_data_output": true},
        "outputs": [{"name": "label"}, {"name": "probabilities"}]
    })
    .to_string();
    let mut body = head.clone().into_bytes();
    body.extend(ROWS.iter().flatten().flat_map(|x| x.to_le_bytes()));
    let length = head.len().to_string();
    let a = app
        .send(
            Method::POST,
            "/v2/models/iris-trainer/infer",
            &[
                ("content-type", "application/octet-stream"),
                ("inference-header-content-length", &length),
            ],
            Body::from(body),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.headers[header::CONTENT_TYPE], "application/octet-stream");
    let n: usize = a.headers["inference-header-content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let answer: Value = serde_json::from_slice(&a.body[..n]).unwrap();
    let label_bytes: usize = labels.iter().map(|l| 4 + l.len()).sum();
    assert_eq!(
        answer["outputs"][0]["parameters"],
        json!({"binary_data_size": label_bytes})
    );
    assert_eq!(
        answer["outputs"][1]["parameters"],
        json!({"binary_data_size": 48})
    );
    assert!(answer["outputs"][0].get("data").is_none());
    // Labels: a 4-byte little-endian length, then the bytes; probabilities: little-endian f32.
    let mut rest = &a.body[n..];
    for label in &labels {
        let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        assert_eq!(&rest[4..4 + len], label.as_bytes());
        rest = &rest[4 + len..];
    }
    let got: Vec<f32> = rest
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(got, probs.concat());
}

#[tokio::test]
async fn oip_refuses_bad_requests_exactly() {
    let app = App::new();
    let infer = "/v2/models/iris-trainer/infer";
    let err = |status: u16, message: &str| (status, json!({"error": message}));
    let json_ct = Some("application/json");
    assert_eq!(
        app.post(infer, json_ct, "{").await.both(),
        err(
            400,
            "body is not valid JSON: EOF while parsing an object at line 1 column 1"
        )
    );
    let mut wrong_shape = infer_body(&ROWS[..2]);
    wrong_shape["inputs"][0]["shape"] = json!([2, 3]);
    wrong_shape["inputs"][0]["data"] = json!([1, 2, 3, 4, 5, 6]);
    assert_eq!(
        app.post(infer, json_ct, json_body(&wrong_shape))
            .await
            .both(),
        err(
            400,
            "input `input` has shape [2, 3]; expected [N, 4] (N rows of sepal_length, \
             sepal_width, petal_length, petal_width)"
        )
    );
    let mut wrong_type = infer_body(&ROWS[..1]);
    wrong_type["inputs"][0]["datatype"] = json!("BYTES");
    assert_eq!(
        app.post(infer, json_ct, json_body(&wrong_type))
            .await
            .both(),
        err(
            400,
            "input `input`, element 0: expected a string, got 5.099999904632568"
        )
    );
    assert_eq!(
        app.post(infer, json_ct, json_body(&infer_body(&[ROWS[0]; 6])))
            .await
            .both(),
        err(400, "6 rows in one request; at most 5 are accepted")
    );
    let overflow = infer_body(&[[3e38, 3e38, 3e38, 3e38]]);
    let a = app.post(infer, json_ct, json_body(&overflow)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text());
    assert_eq!(
        app.post(infer, Some("text/csv"), "1,2,3,4").await.both(),
        err(
            415,
            "Content-Type must be application/json (or application/octet-stream with binary \
             tensor data), got `text/csv`"
        )
    );
    let bad_length = app
        .send(
            Method::POST,
            infer,
            &[("inference-header-content-length", "ten")],
            Body::from(json_body(&infer_body(&ROWS[..1]))),
        )
        .await;
    assert_eq!(
        bad_length.both(),
        err(400, "Inference-Header-Content-Length must be a byte count")
    );
    assert_eq!(
        app.post(
            "/v2/models/iris/infer",
            json_ct,
            json_body(&infer_body(&ROWS[..1]))
        )
        .await
        .both(),
        err(
            404,
            "unknown model `iris`; this server serves `iris-trainer`"
        )
    );
    assert_eq!(
        app.get(infer).await.both(),
        err(405, "GET is not allowed on /v2/models/iris-trainer/infer")
    );
    assert_eq!(
        app.get("/v2/models").await.both(),
        err(404, "no route GET /v2/models; see GET /openapi.json")
    );
    oversized(&app, infer, |message| json!({"error": message})).await;
}

// ---- MLflow scoring protocol ----

#[tokio::test]
async fn mlflow_formats_answer_as_the_predictor_does() {
    let app = App::new();
    let (labels, probs) = reference();
    let records: Vec<Value> = ROWS
        .iter()
        .map(|r| {
            Value::Object(
                FEATURES
                    .iter()
                    .map(|f| f.to_string())
                    .zip(r.iter().map(|x| json!(x)))
                    .collect(),
            )
        })
        .collect();
    let columns: serde_json::Map<String, Value> = FEATURES
        .iter()
        .enumerate()
        .map(|(j, f)| {
            (
                f.to_string(),
                json!(ROWS.iter().map(|r| r[j]).collect::<Vec<_>>()),
            )
        })
        .collect();
    let expected = json!({"predictions": labels});
    for body in [
        json!({"dataframe_split": {"index": [0, 1, 2, 3], "columns": FEATURES, "data": ROWS}}),
        json!({"dataframe_records": records}),
        json!({"instances": ROWS}),
        json!({"instances": records}),
        json!({"inputs": ROWS}),
        json!({"inputs": columns}),
    ] {
        let a = app
            .post("/invocations", Some("application/json"), json_body(&body))
            .await;
        assert_eq!(a.both(), (200, expected.clone()), "{body}");
    }
    let csv: String = std::iter::once(format!(",{}\n", FEATURES.join(",")))
        .chain(ROWS.iter().enumerate().map(|(i, r)| {
            let cells: Vec<String> = r.iter().map(f32::to_string).collect();
            format!("{i},{}\n", cells.join(","))
        }))
        .collect();
    assert_eq!(
        app.post("/invocations", Some("text/csv"), csv).await.both(),
        (200, expected)
    );
    let proba = json!({"instances": ROWS, "params": {"predict_method": "predict_proba"}});
    let a = app
        .post(
            "/invocations",
            Some("application/json; charset=utf-8"),
            json_body(&proba),
        )
        .await;
    let got: Vec<Vec<f32>> = a.json()["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();
    assert_eq!(got, probs);
    let ping = app.get("/ping").await;
    assert_eq!((ping.status, ping.text().as_str()), (StatusCode::OK, "\n"));
    let version = app.get("/version").await;
    assert_eq!(
        (version.status, version.text().as_str()),
        (StatusCode::OK, env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn mlflow_refuses_bad_requests_exactly() {
    let app = App::new();
    let err = |status: u16, code: &str, message: &str| {
        (status, json!({"error_code": code, "message": message}))
    };
    let body = json_body(&json!({"instances": ROWS}));
    assert_eq!(
        app.post("/invocations", None, body.clone()).await.both(),
        err(
            415,
            "BAD_REQUEST",
            "Content-Type must be application/json or text/csv; none was sent"
        )
    );
    assert_eq!(
        app.post("/invocations", Some("text/plain"), body)
            .await
            .both(),
        err(
            415,
            "BAD_REQUEST",
            "Content-Type must be application/json or text/csv, got `text/plain`"
        )
    );
    assert_eq!(
        app.post("/invocations", Some("application/json"), "{")
            .await
            .both(),
        err(
            400,
            "BAD_REQUEST",
            "body is not valid JSON: EOF while parsing an object at line 1 column 1"
        )
    );
    let missing = json!({"dataframe_split": {"columns": ["sepal_length"], "data": [[1.0]]}});
    assert_eq!(
        app.post(
            "/invocations",
            Some("application/json"),
            json_body(&missing)
        )
        .await
        .both(),
        err(
            400,
            "BAD_REQUEST",
            "missing column(s) sepal_width, petal_length, petal_width; the model's features are \
             sepal_length, sepal_width, petal_length, petal_width"
        )
    );
    assert_eq!(
        app.post(
            "/invocations",
            Some("text/csv"),
            "sepal_length,sepal_width\n1,2\n"
        )
        .await
        .both(),
        err(
            400,
            "BAD_REQUEST",
            "CSV body: the header has no column `petal_length`; the model needs sepal_length, \
             sepal_width, petal_length, petal_width"
        )
    );
    assert_eq!(
        app.get("/invocations").await.both(),
        err(
            405,
            "ENDPOINT_NOT_FOUND",
            "GET is not allowed on /invocations"
        )
    );
    assert_eq!(
        app.post("/ping", None, "").await.both(),
        err(405, "ENDPOINT_NOT_FOUND", "POST is not allowed on /ping")
    );
    oversized(
        &app,
        "/invocations",
        |message| json!({"error_code": "BAD_REQUEST", "message": message}),
    )
    .await;
}

// ---- around the protocols ----

#[tokio::test]
async fn metrics_count_every_protocol_by_route_pattern() {
    let app = App::new();
    let one = json_body(&infer_body(&ROWS[..1]));
    app.post("/v2/models/iris-trainer/infer", None, one.clone())
        .await;
    app.post("/v2/models/iris/infer", None, one).await;
    app.post(
        "/invocations",
        Some("application/json"),
        json_body(&json!({"instances": ROWS})),
    )
    .await;
    app.get("/prediction?slength=5.1&swidth=3.5&plength=1.4&pwidth=0.2")
        .await;
    let text = app.get("/metrics").await.text();
    for line in [
        r#"iris_trainer_http_requests_total{method="POST",route="/v2/models/{name}/infer",status="200"} 1"#,
        r#"iris_trainer_http_requests_total{method="POST",route="/v2/models/{name}/infer",status="404"} 1"#,
        r#"iris_trainer_http_requests_total{method="POST",route="/invocations",status="200"} 1"#,
        r#"iris_trainer_http_requests_total{method="GET",route="/prediction",status="200"} 1"#,
        r#"iris_trainer_http_request_duration_seconds_count{route="/invocations"} 1"#,
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    // Rows predicted by every protocol: 1 (v2) + 4 (MLflow) + 1 (the query-string route).
    let (labels, _) = reference();
    let mut counts = std::collections::BTreeMap::new();
    for l in labels.iter().chain([&labels[0], &labels[0]]) {
        *counts.entry(l.clone()).or_insert(0) += 1;
    }
    for (class, n) in counts {
        let line = format!(r#"iris_trainer_predictions_total{{class="{class}"}} {n}"#);
        assert!(text.contains(&line), "{line}\n{text}");
    }
}

#[tokio::test]
async fn openapi_json_describes_every_protocol_for_this_model() {
    let app = App::new();
    let doc = app.get("/openapi.json").await.json();
    let infer = &doc["paths"]["/v2/models/{name}/versions/{version}/infer"];
    assert_eq!(
        infer["parameters"][0]["schema"]["enum"],
        json!(["iris-trainer"])
    );
    assert_eq!(infer["parameters"][1]["schema"]["enum"], json!([version()]));
    assert!(doc["paths"]["/invocations"]["post"].is_object());
    assert_eq!(
        doc["components"]["schemas"]["MlflowRequest"]["properties"]["dataframe_records"]["items"]["required"],
        json!(FEATURES)
    );
}

// ---- real tables: categories and blanks, and a regression ----

/// A model trained once on a table shipped in `data/`: `label`, `ignore`, few epochs.
fn table_model(
    cell: &'static OnceLock<(tempfile::TempDir, PathBuf)>,
    file: &str,
    label: &str,
    ignore: &[&str],
) -> Predictor<Backend> {
    let dir = &cell
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let mut config = crate::TrainConfig::default();
            config.data.path = Some(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("data")
                    .join(file),
            );
            config.data.label = Some(crate::config::ColumnRef::Name(label.into()));
            config.data.ignore = ignore
                .iter()
                .map(|c| crate::config::ColumnRef::Name(c.to_string()))
                .collect();
            config.training.epochs = 60;
            config.output.dir = dir.path().join("model");
            let _training = crate::training_lock();
            crate::train_and_save(config).expect("training the table model");
            let path = dir.path().join("model");
            (dir, path)
        })
        .1;
    let device = crate::backend::init(false).expect("a device").device;
    Predictor::load(dir, &device).expect("the table model loads")
}

fn penguins() -> Predictor<Backend> {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    table_model(&DIR, "penguins.csv", "species", &["year"])
}

fn diabetes() -> Predictor<Backend> {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    table_model(&DIR, "diabetes.csv", "target", &[])
}

/// Three penguins as raw records: categories as text, blanks as null, one island never seen.
fn penguin_records() -> Value {
    json!([
        {"island": "Biscoe", "bill_length_mm": 48.7, "bill_depth_mm": 14.1,
         "flipper_length_mm": 210, "body_mass_g": 4450, "sex": "female"},
        {"island": "Dream", "bill_length_mm": null, "bill_depth_mm": 18.4,
         "flipper_length_mm": 190, "body_mass_g": null, "sex": null},
        {"island": "Atlantis", "bill_length_mm": 46.0, "bill_depth_mm": 17.8,
         "flipper_length_mm": 195, "body_mass_g": 3700, "sex": "male"},
    ])
}

/// The predictor's own labels for [`penguin_records`], from the same rows as a table.
fn penguin_reference(p: &Predictor<Backend>) -> Vec<String> {
    let (table, _) = super::rest::parse_predict_body(
        json!({"instances": penguin_records()})
            .to_string()
            .as_bytes(),
        &p.preprocessor().encoding.columns,
        10,
    )
    .expect("the records parse");
    p.predict_rows(&table)
        .expect("predictions")
        .rows
        .iter()
        .map(|r| match r {
            crate::predict::RowPrediction::Class(c) => c.class.clone(),
            crate::predict::RowPrediction::Number(_) => panic!("a classifier answers classes"),
        })
        .collect()
}

#[tokio::test]
async fn categories_travel_as_text_in_every_protocol() {
    let app = App(router(penguins(), &options()));
    let expected = penguin_reference(&penguins());
    let records = penguin_records();
    let rows = records.as_array().unwrap();
    let column = |name: &str| -> Vec<Value> { rows.iter().map(|r| r[name].clone()).collect() };

    // v2 metadata: one input per feature, BYTES for the categories.
    let meta = app.get("/v2/models/iris-trainer").await.json();
    let inputs: Vec<(String, String)> = meta["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().into(),
                i["datatype"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        inputs,
        [
            ("island", "BYTES"),
            ("bill_length_mm", "FP32"),
            ("bill_depth_mm", "FP32"),
            ("flipper_length_mm", "FP32"),
            ("body_mass_g", "FP32"),
            ("sex", "BYTES"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );

    // v2 inference: BYTES for text, and for numbers that may be missing ("" is missing).
    let as_text = |name: &str| -> Vec<String> {
        column(name)
            .iter()
            .map(|v| match v {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect()
    };
    let mut inputs = Vec::new();
    for name in ["island", "bill_length_mm", "body_mass_g", "sex"] {
        inputs
            .push(json!({"name": name, "datatype": "BYTES", "shape": [3], "data": as_text(name)}));
    }
    for name in ["bill_depth_mm", "flipper_length_mm"] {
        inputs
            .push(json!({"name": name, "datatype": "FP32", "shape": [3, 1], "data": column(name)}));
    }
    let a = app
        .post(
            "/v2/models/iris-trainer/infer",
            Some("application/json"),
            json_body(&json!({"inputs": inputs, "outputs": [{"name": "label"}]})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.json()["outputs"][0]["data"], json!(expected));
    // The all-feature `input` tensor cannot carry categories.
    let a = app
        .post(
            "/v2/models/iris-trainer/infer",
            Some("application/json"),
            json_body(&json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 6], "data": [1, 2, 3, 4, 5, 6]}]})),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.json()["error"]
            .as_str()
            .unwrap()
            .contains("island (BYTES)"),
        "{}",
        a.text()
    );

    // MLflow: records, a split DataFrame, and CSV with the model's missing-value markers.
    for body in [
        json!({"dataframe_records": records}),
        json!({"dataframe_split": {
            "columns": ["sex", "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"],
            "data": rows.iter().map(|r| json!([r["sex"], r["island"], r["bill_length_mm"],
                r["bill_depth_mm"], r["flipper_length_mm"], r["body_mass_g"]])).collect::<Vec<_>>()}}),
    ] {
        let a = app
            .post("/invocations", Some("application/json"), json_body(&body))
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
        assert_eq!(a.json()["predictions"], json!(expected), "{body}");
    }
    let csv = "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex\n\
               Biscoe,48.7,14.1,210,4450,female\nDream,NA,18.4,190,,\n\
               Atlantis,46.0,17.8,195,3700,male\n";
    let a = app.post("/invocations", Some("text/csv"), csv).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.json()["predictions"], json!(expected));

    // Atlantis was never seen: once per protocol call above (v2, two JSON bodies, CSV).
    let metrics = app.get("/metrics").await.text();
    let unseen = metrics
        .lines()
        .find(|l| l.starts_with("iris_trainer_unseen_categories_total"))
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(unseen.ends_with(" 4"), "{unseen}");
}

#[tokio::test]
async fn a_regressor_answers_numbers_in_every_protocol() {
    let p = diabetes();
    let row = [
        59.0f32, 2.0, 32.1, 101.0, 157.0, 93.2, 38.0, 4.0, 4.8598, 87.0,
    ];
    let table = crate::data::Table::new(
        p.features()
            .iter()
            .zip(row)
            .map(|(f, x)| crate::data::Column {
                name: f.clone(),
                data: crate::data::ColumnData::Numeric(vec![x]),
            })
            .collect(),
    )
    .expect("a table");
    let expected = match p.predict_rows(&table).expect("a prediction").rows[0] {
        crate::predict::RowPrediction::Number(v) => v,
        crate::predict::RowPrediction::Class(_) => panic!("a regressor answers numbers"),
    };
    let features: Vec<String> = p.features().to_vec();
    let app = App(router(p, &options()));
    let meta = app.get("/v2/models/iris-trainer").await.json();
    assert_eq!(
        meta["inputs"],
        json!([{"name": "input", "datatype": "FP32", "shape": [-1, 10]}])
    );
    assert_eq!(
        meta["outputs"],
        json!([{"name": "value", "datatype": "FP32", "shape": [-1]}])
    );
    let a = app
        .post(
            "/v2/models/iris-trainer/infer",
            None,
            json_body(&json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 10], "data": row}]})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(floats(&a.json()["outputs"][0]["data"]), [expected]);
    let record: serde_json::Map<String, Value> = features
        .iter()
        .zip(row)
        .map(|(f, x)| (f.clone(), json!(x)))
        .collect();
    let a = app
        .post(
            "/invocations",
            Some("application/json"),
            json_body(&json!({"dataframe_records": [record]})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(floats(&a.json()["predictions"]), [expected]);
    let a = app
        .post(
            "/invocations",
            Some("application/json"),
            json_body(&json!({"instances": [row], "params": {"predict_method": "predict_proba"}})),
        )
        .await;
    assert_eq!(
        a.both(),
        (
            400,
            json!({"error_code": "BAD_REQUEST", "message": "`predict_method` predict_proba needs a classifier; this model predicts a number"})
        )
    );
}
