//! Request bodies of the three protocols through the router, in process (tower's `oneshot`):
//! the service's own REST (JSON and the query string), the Open Inference Protocol v2 (JSON and
//! the binary tensor extension) and MLflow's `/invocations` (its JSON layouts and CSV), against
//! a classifier with categories and blanks and a regressor. Whatever the body, the answer is a
//! 2xx or a 4xx with a message, never a 5xx or a panic.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use iris_trainer::Predictor;
use iris_trainer::backend::{self, Backend};
use iris_trainer::serve::{DEFAULT_MODEL_NAME, ServeOptions, router};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

/// The committed model directories the routers serve.
const MODELS: [(&str, &[u8], &[u8]); 2] = [
    (
        "penguins",
        include_bytes!("../../tests/fixtures/v2-penguins/model.json"),
        include_bytes!("../../tests/fixtures/v2-penguins/model.mpk"),
    ),
    (
        "diabetes",
        include_bytes!("../../tests/fixtures/v2-diabetes-huber/model.json"),
        include_bytes!("../../tests/fixtures/v2-diabetes-huber/model.mpk"),
    ),
];

struct Service {
    runtime: tokio::runtime::Runtime,
    routers: Vec<Router>,
}

fn service() -> &'static Service {
    static SERVICE: OnceLock<Service> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let device = backend::init(false).expect("the CPU device").device;
        let options = ServeOptions {
            addr: "127.0.0.1:0".parse().expect("an address"),
            model_name: DEFAULT_MODEL_NAME.to_string(),
            max_instances: 64,
            max_body_bytes: 1 << 20,
            timeout: Duration::from_secs(60),
            max_concurrency: 4,
            quiet: true,
        };
        let routers = MODELS
            .iter()
            .map(|(name, json, record)| {
                let dir = iris_trainer_fuzz::write_model(name, json, record);
                let predictor = Predictor::<Backend>::load(&dir, &device).expect("a fixture loads");
                router(predictor, &options)
            })
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        Service { runtime, routers }
    })
}

fn request(route: u8, binary_header: u16, body: &[u8]) -> Option<Request<Body>> {
    let post = |uri: &str, content_type: &str| {
        Request::post(uri)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body.to_vec()))
            .ok()
    };
    let infer = "/v2/models/iris-trainer/infer";
    match route % 8 {
        0 => post("/predict", "application/json"),
        1 => {
            // The body as the query string of `GET /prediction`, when it is a valid one.
            let query = std::str::from_utf8(body).ok()?;
            Request::get(format!("/prediction?{query}"))
                .body(Body::empty())
                .ok()
        }
        2 => post(infer, "application/json"),
        3 => Request::post(infer)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header("Inference-Header-Content-Length", binary_header)
            .body(Body::from(body.to_vec()))
            .ok(),
        4 => post("/invocations", "application/json"),
        5 => post("/invocations", "text/csv"),
        6 => post("/invocations", "application/json; format=pandas-split"),
        _ => post(
            "/v2/models/iris-trainer/versions/1/infer",
            "application/json",
        ),
    }
}

fuzz_target!(|input: &[u8]| {
    let [select, h0, h1, body @ ..] = input else {
        return;
    };
    let service = service();
    let router = service.routers[usize::from(select & 1)].clone();
    let Some(req) = request(select >> 1, u16::from_le_bytes([*h0, *h1]), body) else {
        return;
    };
    let (status, answer) = service.runtime.block_on(async move {
        let response = router.oneshot(req).await.expect("the router is infallible");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("the answer's body");
        (status, body)
    });
    assert!(
        !status.is_server_error(),
        "{status} for a request body: {}",
        String::from_utf8_lossy(&answer)
    );
    if status.is_client_error() {
        assert!(!answer.is_empty(), "{status} without a message");
    }
});
